"""The Keras relay zoo without a framework: its inputs are fixed and valid, and it covers every family it promises."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios import _keras_io, _keras_relay, _keras_zoo

#: The families the relay zoo was asked to exercise (issue 16), written out here rather than read from the module.
ASKED_FOR = {
    "LSTM",
    "GRU",
    "SimpleRNN",
    "Bidirectional",
    "stacked return_sequences",
    "Conv1D",
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "pooling",
    "BatchNormalization moving statistics",
    "LayerNormalization",
    "Embedding mask_zero",
    "MultiHeadAttention",
    "Dropout",
    "Lambda",
    "registered custom layer",
    "registered custom loss",
    "registered custom metric",
    "multi-input multi-output",
    "nested model",
    "optimizer state",
}


def arrays(value):
    return value if isinstance(value, list) else [value]


def test_the_coverage_table_names_a_model_for_every_family_asked_for():
    assert set(_keras_zoo.COVERAGE) == ASKED_FOR
    assert all(_keras_zoo.COVERAGE[family] for family in ASKED_FOR), {
        f: m for f, m in _keras_zoo.COVERAGE.items() if not m
    }
    assert all(set(_keras_zoo.COVERAGE[family]) <= set(_keras_zoo.MODELS) for family in ASKED_FOR)


def test_every_zoo_model_is_trained_before_saving():
    assert _keras_zoo.COVERAGE["optimizer state"] == tuple(_keras_zoo.MODELS)
    assert _keras_zoo.TRAIN_STEPS > 1


def test_the_lambda_sits_alone_so_a_safe_mode_refusal_hides_nothing_else():
    assert _keras_zoo.COVERAGE["Lambda"] == ("lambda",)
    assert set(_keras_zoo.MODELS["lambda"].families) == {"Lambda", "optimizer state"}


@pytest.mark.parametrize("name", list(_keras_zoo.MODELS))
def test_inputs_and_targets_are_fixed(name):
    first, second = _keras_zoo.MODELS[name].data(), _keras_zoo.MODELS[name].data()
    for a, b in zip(arrays(first[0]) + arrays(first[1]), arrays(second[0]) + arrays(second[1]), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("name", list(_keras_zoo.MODELS))
def test_every_input_and_target_is_one_batch_of_eight(name):
    x, y = _keras_zoo.MODELS[name].data()
    assert {a.shape[0] for a in arrays(x) + arrays(y)} == {8}
    assert len(arrays(x)) == len(_keras_zoo.MODELS[name].input_names)


def test_token_ids_are_in_the_vocabulary_with_trailing_padding_zeros():
    tokens, _ = _keras_zoo.recurrent_data()
    assert tokens.dtype == np.int32 and tokens.min() >= 0 and tokens.max() < _keras_zoo.VOCAB
    lengths = (tokens != 0).sum(axis=1)
    for row, length in zip(tokens, lengths, strict=True):
        assert (row[:length] >= 1).all() and (row[length:] == 0).all()  # ids first, then only padding
    assert lengths.min() >= 2 and lengths.max() == tokens.shape[1]  # a full row and padded rows
    assert (lengths < tokens.shape[1]).sum() >= 2


def test_the_attention_model_has_two_inputs_and_two_named_outputs_with_a_one_hot_label():
    spec = _keras_zoo.MODELS["attention"]
    (tokens, context), (score, label) = spec.data()
    assert score.shape == (8, 2) and label.shape == (8, 3)
    assert spec.input_names == ("tokens", "context") and spec.output_names == ("score", "label")
    assert tokens.shape[1:] != context.shape[1:]  # attends to a context of another length
    assert set(np.unique(label)) == {0.0, 1.0} and (label.sum(axis=1) == 1).all()
    assert not spec.deterministic  # Dropout: training mode is random, only inference is compared


def test_the_models_own_data_differ():
    firsts = [arrays(spec.data()[0])[0] for spec in _keras_zoo.MODELS.values()]
    assert len({a.tobytes() for a in firsts}) == len(firsts)


def test_the_relay_saves_the_core_models_and_the_zoo_under_distinct_names():
    assert not set(_keras_io.MODELS) & set(_keras_zoo.MODELS)
    assert list(_keras_relay.RELAY_MODELS) == [*_keras_io.MODELS, *_keras_zoo.MODELS]
    for name in _keras_zoo.MODELS:
        assert _keras_relay.RELAY_MODELS[name].formats == _keras_zoo.FORMATS
    for name in _keras_io.MODELS:
        assert _keras_relay.RELAY_MODELS[name].formats == tuple(_keras_io.FORMATS)


def test_the_zoo_formats_are_known_formats_and_include_the_keras_format_and_weights():
    assert {"keras", "weights_h5"} <= set(_keras_zoo.FORMATS) <= set(_keras_io.FORMATS)


def test_the_training_mode_is_recorded_only_where_it_repeats():
    deterministic = {name for name, spec in _keras_zoo.MODELS.items() if spec.deterministic}
    assert deterministic == set(_keras_zoo.MODELS) - set(_keras_zoo.COVERAGE["Dropout"])
