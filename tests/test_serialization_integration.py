"""Integration: serialization.* for real in Keras 2.15, Keras 3.3, Keras 3.15 and tf-keras 2.21
(tests/resources/serialization-matrix.yaml), through nox.

The differences asserted are the ones the Keras 3 release notes and migration guide announce: ``model.save`` needs
a ``.keras`` or ``.h5`` extension and ``save_format=`` is gone, ``load_model`` no longer reads a SavedModel and
``TFSMLayer`` serves one instead, ``reduction="auto"`` is no longer a loss reduction. Negative controls stay
identical: the same fixed weights predict the same through ``to_json``/``model_from_json`` in every version, and
an ExponentialDecay schedule resumes at the same step with the same next rate (0.1 * 0.5 ** 0.3) everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.nox_runs import Run, run_sessions
from tests.nox_runs import array as record_array
from tests.nox_runs import value as record_value

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "serialization-matrix.yaml"
KERAS2 = ("tf2.15-keras2", "tf2.21-tfkeras")
KERAS3 = ("tf2.16-keras3", "tf2.21-keras3")
ENVIRONMENTS = KERAS2 + KERAS3
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_sessions(tmp_path_factory.mktemp("serialization"), MATRIX, "s", ENVIRONMENTS)


def value(run: Run, env: str, scenario: str, name: str) -> Any:
    return record_value(run[1], env, f"serialization.{scenario}", name)


def array(run: Run, env: str, scenario: str, name: str) -> np.ndarray:
    return record_array(run, env, f"serialization.{scenario}", name)


def test_only_keras3_fails_and_only_on_the_untracked_tf_variable(run):
    _, docs = run
    statuses = {(env, c.id): c.status for env, doc in docs.items() for c in doc.scenarios}
    assert len(statuses) == 7 * len(ENVIRONMENTS)
    assert not [key for key, status in statuses.items() if status in ("error", "crash", "timeout", "skip")]
    failed = sorted(key for key, status in statuses.items() if status == "fail")
    assert failed == [(env, "serialization.keras_raw_variable_attribute") for env in KERAS3]
    for env in KERAS3:  # keras.Variable attributes are tracked, tf.Variable ones are not: reset to 0 on load
        after = value(run, env, "keras_raw_variable_attribute", "after_load")
        assert after == {"from_add_weight": "tracked: 1", "framework_variable": "tracked: 10",
                         "tf_variable": "untracked: 0"}  # fmt: skip
    for env in KERAS2:
        assert set(value(run, env, "keras_raw_variable_attribute", "after_load").values()) == {
            "tracked: 1", "tracked: 10", "tracked: 100"
        }  # fmt: skip


def test_keras3_refuses_extensionless_paths_and_save_format(run):
    refused = ("save_no_extension", "save_format_tf", "save_format_h5", "save_model_no_extension")
    for env in KERAS2:
        assert set(value(run, env, "keras_save_path_forms", "saves").values()) == {"saved"}
        assert set(value(run, env, "keras_save_path_forms", "loads").values()) == {"loaded"}
    for env in KERAS3:
        saves = value(run, env, "keras_save_path_forms", "saves")
        assert {form: saves[form] for form in refused} == dict.fromkeys(refused, "ValueError")
        assert saves["save_model_keras"] == saves["save_model_h5"] == "saved"
        assert set(value(run, env, "keras_save_path_forms", "loads").values()) == {"loaded"}


def test_tfsm_layer_is_keras3_s_only_way_back_into_a_tf_saved_model(run):
    for env in ENVIRONMENTS:
        outcomes = value(run, env, "keras_tf_saved_model_reload", "outcomes")
        assert outcomes["load_model"] == "ValueError"  # neither generation's load_model reads it
        assert outcomes["tfsm_layer_api"] == ("present" if env in KERAS3 else "absent")
    for env in KERAS3:
        served = array(run, env, "keras_tf_saved_model_reload", "tfsm_layer.predictions")
        rebuilt = array(run, "tf2.15-keras2", "keras_json_round_trip", "functional.predictions")
        np.testing.assert_allclose(served, rebuilt, rtol=0, atol=1e-5)  # the same weights, served from the graph


def test_a_subclassed_model_without_its_class_in_a_fresh_process(run):
    for env in KERAS2:  # the SavedModel revives without the class; the .keras file needs it
        assert value(run, env, "keras_subclassed_fresh_process", "loads") == {
            "artifact_savedmodel": "loaded", "artifact_file.keras": "TypeError"
        }  # fmt: skip
    for env in KERAS3:
        assert value(run, env, "keras_subclassed_fresh_process", "loads") == {
            "artifact_savedmodel": "ValueError", "artifact_savedmodel.tfsm_layer": "loaded",
            "artifact_file.keras": "TypeError",
        }  # fmt: skip
    keras2 = array(run, "tf2.15-keras2", "keras_subclassed_fresh_process", "artifact_savedmodel.predictions")
    keras3 = array(run, "tf2.21-keras3", "keras_subclassed_fresh_process", "artifact_savedmodel.tfsm_layer.predictions")
    np.testing.assert_allclose(keras3, keras2, rtol=0, atol=1e-5)


def test_configs_of_the_other_generation(run):
    for env in KERAS3:
        outcomes = value(run, env, "keras_configs_across_generations", "outcomes")
        assert outcomes["ScaledSquaredError.from_keras2"] == "ValueError"  # reduction="auto" is gone
        assert outcomes["Adam.from_keras2"] == "ValueError"  # is_legacy_optimizer, jit_compile not recognised
        assert outcomes["ScaledSquaredError.from_this_version"] == "loaded"
    for env in KERAS2:
        outcomes = value(run, env, "keras_configs_across_generations", "outcomes")
        assert outcomes["Adam.from_keras3"] == "TypeError"  # loss_scale_factor
        assert outcomes["ScaledSquaredError.from_keras3"] == "loaded"  # "sum_over_batch_size" is a Keras 2 name too


def test_json_envelope_and_subclassed_json_differ_between_generations(run):
    for env in KERAS2:
        assert value(run, env, "keras_json_round_trip", "outcomes")["subclassed"] == "TypeError"
        assert "keras_version" in value(run, env, "keras_json_round_trip", "sequential.json_keys")
    for env in KERAS3:
        assert value(run, env, "keras_json_round_trip", "outcomes")["subclassed"] == "loaded"
        assert "registered_name" in value(run, env, "keras_json_round_trip", "sequential.json_keys")


def test_negative_controls_stay_identical(run):
    """Same fixed weights through to_json/model_from_json, and the same schedule after three steps, everywhere."""
    reference = array(run, "tf2.15-keras2", "keras_json_round_trip", "sequential.predictions")
    for env in ENVIRONMENTS:
        np.testing.assert_allclose(array(run, env, "keras_json_round_trip", "sequential.predictions"), reference,
                                   rtol=0, atol=1e-6)  # fmt: skip
        for fmt in ("keras", "h5"):
            assert array(run, env, "keras_lr_schedule_save", f"{fmt}.iterations").tolist() == [3.0]
            np.testing.assert_allclose(array(run, env, "keras_lr_schedule_save", f"{fmt}.next_rate"),
                                       [0.1 * 0.5**0.3], rtol=1e-6)  # fmt: skip


def test_what_optimizer_learning_rate_reads_after_loading_moved(run):
    """Keras 2 reads the rate of the last step taken (stale at the initial 0.1 after loading); Keras 3 the next."""
    for env in KERAS2:
        np.testing.assert_allclose(array(run, env, "keras_lr_schedule_save", "keras.learning_rate_attribute"),
                                   [0.1], rtol=1e-6)  # fmt: skip
    for env in KERAS3:
        np.testing.assert_allclose(array(run, env, "keras_lr_schedule_save", "keras.learning_rate_attribute"),
                                   [0.1 * 0.5**0.3], rtol=1e-6)  # fmt: skip
