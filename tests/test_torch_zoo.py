"""The torch relay zoo's tables and pure judgements, offline: no torch needed."""

from __future__ import annotations

import numpy as np

from scenarios import _torch_io, _torch_zoo, relay
from scenarios._relay_compare import compare_weights

ZOO = ("recurrent", "convolutional", "attention")


def test_the_zoo_holds_tinynet_and_one_model_per_layer_family():
    assert set(_torch_zoo.MODELS) == {"tinynet", *ZOO}
    assert _torch_zoo.MODELS["tinynet"] is _torch_io.TINYNET
    assert _torch_io.TINYNET.formats == ()  # TinyNet keeps every format it had, and the new ones


def test_every_zoo_model_goes_in_each_kind_of_format():
    for name in ZOO:
        formats = set(_torch_zoo.MODELS[name].formats)
        assert formats <= set(_torch_io.FORMATS)
        # weights only (two ways), a resumable checkpoint, a full pickle, TorchScript, an exported program
        assert {"state_dict", "safetensors", "training_checkpoint", "pickle_default_load", "torch_export"} <= formats
        assert formats & {"torchscript_trace", "torchscript_script"}


def test_formats_that_can_run_code_from_the_file_are_unsafe_and_the_rest_are_not():
    unsafe = {name for name, fmt in _torch_io.FORMATS.items() if fmt.unsafe}
    assert unsafe == {"pickle_default_load", "pickle_unsafe_load", "torchscript_script", "torchscript_trace",
                      "torch_export"}  # fmt: skip
    # what the relay's consumer asks, from its own table (never the manifest's word)
    assert relay.unsafe_reason({"family": "torch", "format": "safetensors", "unsafe": True}) == ""
    assert relay.unsafe_reason({"family": "torch", "format": "training_checkpoint"}) == ""
    assert "pickle" in relay.unsafe_reason({"family": "torch", "format": "pickle_default_load", "unsafe": False})


def test_training_checkpoint_keeps_the_optimizer_and_loads_by_the_plain_call():
    fmt = _torch_io.FORMATS["training_checkpoint"]
    assert fmt.keeps_optimizer and fmt.fallback is None  # a safe format never falls back to unpickling


def test_fixed_inputs_are_the_same_every_call_and_fit_the_layers():
    tokens, targets = _torch_zoo.MODELS["recurrent"].inputs()
    again, _ = _torch_zoo.MODELS["recurrent"].inputs()
    assert np.array_equal(tokens, again)
    assert tokens.dtype == np.int64 and tokens.min() >= 0 and tokens.max() < _torch_zoo.VOCAB  # Embedding ids
    images, _ = _torch_zoo.MODELS["convolutional"].inputs()
    assert images.shape == (8, 1, 8, 8) and images.dtype == np.float32
    sequences, _ = _torch_zoo.MODELS["attention"].inputs()
    assert sequences.shape[-1] % _torch_zoo.HEADS == 0  # MultiheadAttention splits the width across heads
    assert targets.shape == (8, 3) and targets.dtype == np.float32


def test_inputs_differ_between_models():
    first = _torch_zoo.MODELS["convolutional"].inputs()[1]
    assert not np.array_equal(first, _torch_zoo.MODELS["attention"].inputs()[1])


def test_schedule_outcome_names_what_did_not_come_back():
    want = {"epoch": 3, "last_epoch": 3, "lr": [0.005]}
    assert _torch_zoo.schedule_outcome(True, dict(want), want) == "kept"
    assert _torch_zoo.schedule_outcome(False, dict(want), want) == "changed"
    assert _torch_zoo.schedule_outcome(True, None, None) == "kept"  # a format without a scheduler
    moved = {"epoch": 3, "last_epoch": 0, "lr": [0.01]}
    assert _torch_zoo.schedule_outcome(True, moved, want).startswith("changed: scheduler")
    assert "did not load" in _torch_zoo.schedule_outcome(True, None, want)


def test_continued_outcome_catches_a_scheduler_that_steps_elsewhere():
    want = {"epoch": 4, "last_epoch": 4, "lr": [0.0025]}  # StepLR(2, 0.5) from 0.01 at epoch 4: halved twice
    assert _torch_zoo.continued_outcome("kept", dict(want), want) == "kept"
    other = {"epoch": 4, "last_epoch": 4, "lr": [0.005]}
    assert _torch_zoo.continued_outcome("kept", other, want).startswith("changed after one more step")
    assert _torch_zoo.continued_outcome("changed", other, want) == "changed"  # the first difference is the one told


def test_layout_follows_the_producers_order_only_when_the_names_agree():
    entry = {"weights": [["hidden.weight", [8, 4], "float32"], ["post.scale", [3], "float32"]]}
    reordered = [("post.scale", np.zeros(3, np.float32)), ("hidden.weight", np.zeros((8, 4), np.float32))]
    assert compare_weights(_torch_zoo.layout_like(reordered, entry), entry["weights"]) == "same"
    renamed = [("post.gain", np.zeros(3, np.float32)), ("hidden.weight", np.zeros((8, 4), np.float32))]
    assert compare_weights(_torch_zoo.layout_like(renamed, entry), entry["weights"]).startswith("layout-changed")
