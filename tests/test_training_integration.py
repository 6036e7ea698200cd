"""Integration: the training surface for real (training.*, callbacks.*, preprocessing.*) in a Keras 2 and a Keras 3
TensorFlow, Keras 3 on torch, torch 2.5 and 2.13 (tests/resources/training-matrix.yaml), through nox.

Each known change between these releases is asserted from the recorded values (the Keras 3 release notes and
migration guide name them: metrics_names, ModelCheckpoint's accepted paths, the History key of the learning rate,
jit_compile's default), beside negative controls that must stay identical: training from the same fixed weights
gives the same loss trajectory in both Keras generations, and torch's user-optimizer and encoder results agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.nox_runs import Run, array, run_sessions, value

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "training-matrix.yaml"
ENVIRONMENTS = ("tf2.15-keras2", "tf2.21-keras3", "keras3-torch", "torch2.5", "torch2.13")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_sessions(tmp_path_factory.mktemp("training"), MATRIX, "t", ENVIRONMENTS)


def test_the_cells_pass_or_fail_only_where_a_release_broke_something(run):
    _, docs = run
    statuses = {(env, c.id): c.status for env, doc in docs.items() for c in doc.scenarios}
    assert not [key for key, status in statuses.items() if status in ("error", "crash", "timeout")]
    failed = sorted(key for key, status in statuses.items() if status == "fail")
    # Keras 2.15's .keras file does not carry Discretization's adapted bin boundaries; Keras 3 fixed it
    assert failed == [("tf2.15-keras2", "preprocessing.keras_adapt_state_and_reload")]
    outcomes = value(docs, "tf2.15-keras2", "preprocessing.keras_adapt_state_and_reload", "outcomes")
    assert outcomes["discretization"] == "reloaded-different" and outcomes["normalization"] == "reloaded-same"


def test_keras3_changed_metrics_names_and_what_metric_strings_resolve_to(run):
    _, docs = run
    k2 = value(docs, "tf2.15-keras2", "training.keras_compile_strings", "metrics_names")
    assert k2 == ["loss", "accuracy", "mae"]
    for env in ("tf2.21-keras3", "keras3-torch"):  # Keras 3 folds the compiled metrics into one entry
        assert value(docs, env, "training.keras_compile_strings", "metrics_names") == ["loss", "compile_metrics"]
        assert value(docs, env, "training.keras_compile_strings", "metrics")["mae"]["class"] == "MeanAbsoluteError"
    assert value(docs, "tf2.15-keras2", "training.keras_compile_strings", "metrics")["mae"]["class"] != (
        "MeanAbsoluteError"
    )  # Keras 2's metrics.get("mae") hands back the function


def test_keras3_model_checkpoint_refuses_the_paths_keras2_took(run):
    _, docs = run
    k2 = value(docs, "tf2.15-keras2", "callbacks.keras_model_checkpoint_paths", "outcomes")
    assert set(k2.values()) == {"saved"}
    for env in ("tf2.21-keras3", "keras3-torch"):
        k3 = value(docs, env, "callbacks.keras_model_checkpoint_paths", "outcomes")
        assert k3["keras"] == "saved" and k3["weights_h5"] == "saved"
        for path in ("bare_directory", "h5_weights_only", "ckpt_weights_only"):
            assert k3[path] == "rejected: ValueError", (env, path)


def test_the_learning_rate_history_key_and_jit_compile_default_moved(run):
    _, docs = run
    assert value(docs, "tf2.15-keras2", "callbacks.keras_reduce_lr_on_plateau", "history_keys") == ["loss", "lr"]
    assert value(docs, "tf2.21-keras3", "callbacks.keras_reduce_lr_on_plateau", "history_keys") == [
        "learning_rate",
        "loss",
    ]
    assert value(docs, "tf2.15-keras2", "training.keras_gradient_tape_loop", "jit_compile_default") == "None"
    assert value(docs, "tf2.21-keras3", "training.keras_gradient_tape_loop", "jit_compile_default") == "False"


def test_tflite_converts_in_both_generations_and_its_interpreter_became_deprecated(run):
    _, docs = run
    for env in ("tf2.15-keras2", "tf2.21-keras3"):
        outcomes = value(docs, env, "converters.tflite", "outcomes")
        assert outcomes == {"keras_model": "converted", "saved_model": "converted"}, env
        np.testing.assert_allclose(  # the converted model predicts what the Keras model does, in both releases
            array(run, env, "converters.tflite", "keras_model_predictions"),
            array(run, "tf2.15-keras2", "converters.tflite", "saved_model_predictions"),
            atol=1e-5,
        )
    old = value(docs, "tf2.15-keras2", "converters.tflite", "interpreter_api")["warnings_on_construction"]
    new = value(docs, "tf2.21-keras3", "converters.tflite", "interpreter_api")["warnings_on_construction"]
    assert old == [] and any("tf.lite.Interpreter is deprecated" in w for w in new)
    assert docs["keras3-torch"].cell("converters.tflite").status == "skip"


def test_the_serving_signature_a_client_calls_changed_names_in_keras3(run):
    _, docs = run
    old = value(docs, "tf2.15-keras2", "converters.saved_model_signatures", "signatures")
    new = value(docs, "tf2.21-keras3", "converters.saved_model_signatures", "signatures")
    assert sorted(old) == ["serving_default"] and sorted(new) == ["serve", "serving_default"]
    assert list(old["serving_default"]["inputs"]) != list(new["serving_default"]["inputs"])  # a client's input key
    assert old["serving_default"]["outputs"] != new["serving_default"]["outputs"]
    for signatures in (old, new):  # the spec itself is the same: a batch of 4 float features
        assert list(signatures["serving_default"]["inputs"].values()) == [[[None, 4], "float32"]]
    np.testing.assert_allclose(
        array(run, "tf2.21-keras3", "converters.saved_model_signatures", "serving_default_predictions"),
        array(run, "tf2.15-keras2", "converters.saved_model_signatures", "serving_default_predictions"),
        atol=1e-6,
    )


def test_negative_controls_stay_identical(run):
    """Same fixed weights, data and plain SGD: the optimisation itself did not change between the generations."""
    for name in ("numpy_loss", "numpy_val_loss", "generator_loss"):
        k2 = array(run, "tf2.15-keras2", "training.keras_fit_history", name)
        for env in ("tf2.21-keras3", "keras3-torch"):
            np.testing.assert_allclose(array(run, env, "training.keras_fit_history", name), k2, rtol=1e-5)
    for env in ENVIRONMENTS[:3]:  # epoch 0 improves on "no best yet"; no later epoch can gain min_delta=10: halved
        trace = array(run, env, "callbacks.keras_reduce_lr_on_plateau", "learning_rates")
        np.testing.assert_allclose(trace, [0.4, 0.2, 0.1, 0.05], rtol=1e-6)
    _, docs = run
    for scenario_id, name in (("training.torch_custom_optimizer", "losses"),
                              ("training.torch_transformer_encoder", "encoder_output")):  # fmt: skip
        assert np.array_equal(array(run, "torch2.5", scenario_id, name), array(run, "torch2.13", scenario_id, name))
    assert docs["torch2.13"].cell("training.torch_custom_optimizer").status == "pass"  # the round trip is exact
