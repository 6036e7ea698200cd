"""Offline tests of the companion and ONNX-export scenarios' pure parts, and of matrix-extras.yaml.

The GCN reference, the preprocessing modes and the error summary are checked against values worked out by hand
from their definitions; the extras matrix must parse with its own environment names (never a default-matrix name
with other pins, which would share and clobber that environment's venv).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from harness import matrix
from harness.worker import scenario as scenario_mod
from scenarios.companions import expected_preprocessing, fixed_image, gcn_reference
from scenarios.onnx_export import EXPORTERS, short_error

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ROOT / "matrix-extras.yaml"
EXTRA_ENVIRONMENTS = ("torch2.5-companions", "torch2.13-companions", "torch2.13-torchvision", "keras3-jax")
TENSORFLOW_ENVIRONMENTS = ("tf2.15-keras2", "tf2.16-keras3", "tf2.21-keras3", "tf2.21-keras3-py3.12")


def test_the_extras_matrix_parses_and_shares_a_venv_only_with_the_same_pins():
    extras = matrix.load(EXTRAS)
    default = matrix.load(ROOT / "matrix.yaml")
    assert tuple(extras.environments) == EXTRA_ENVIRONMENTS + TENSORFLOW_ENVIRONMENTS
    for name, env in extras.environments.items():  # a shared name (and venv) is the same environment exactly
        twin = default.environments.get(name)
        assert twin is None or (twin.packages, twin.env, twin.python) == (env.packages, env.env, env.python), name
    slugs = {env.venv_slug: name for name, env in default.environments.items()}
    assert all(slugs.get(env.venv_slug, name) == name for name, env in extras.environments.items())
    assert set(extras.upgrades) == {
        ("torch2.5-companions", "torch2.13-companions"),
        ("torch2.5-companions", "torch2.13-torchvision"),
        ("tf2.15-keras2", "tf2.16-keras3"),
        ("tf2.16-keras3", "tf2.21-keras3"),
        ("tf2.21-keras3", "tf2.21-keras3-py3.12"),
    }


def test_what_the_default_matrix_leaves_out_for_time_the_extras_matrix_runs():
    registry = scenario_mod.discover(("scenarios",))
    default, extras = (matrix.load(ROOT / name, registry) for name in ("matrix.yaml", "matrix-extras.yaml"))
    left_out = set(registry) - set(default.scenario_ids) - {"relay.consume"}
    assert left_out == {  # the torch companions stay selected: they skip where their package is not installed
        "distribution.keras_mirrored_two_cpus",
        "distribution.torch_ddp_gloo_two_processes",
        "serialization.keras_subclassed_fresh_process",
        "companions.keras_efficientnet_b0",
        "companions.keras_mobilenet_v3_small",
        "companions.keras_transfer_learning_freeze",
        "distribution.torch_ddp_teardown",  # 13-25 s per torch environment, a fresh interpreter too
        # second-tier scenarios of the training surface, 1-3 s per Keras environment each (issue 19's wall time)
        "callbacks.keras_csv_logger_and_hook_order",
        "callbacks.keras_early_stopping",
        "callbacks.keras_reduce_lr_on_plateau",
        "training.keras_evaluate_predict",
        "serialization.keras_lr_schedule_save",
        "serialization.keras_save_path_forms",
    }
    # issue 19: the default matrix keeps a scenario of each area it moved out
    for area in ("distribution.", "serialization.", "companions.keras_", "callbacks.", "training.keras_"):
        assert any(sid.startswith(area) for sid in default.scenario_ids), area
    assert left_out <= set(extras.scenario_ids)
    for moved in ("keras3-jax", "tf2.21-keras3-py3.12"):  # nightly only: their time
        assert moved in extras.environments and moved not in default.environments


def test_each_extras_environment_pins_its_torch_and_companions_exactly():
    envs = matrix.load(EXTRAS).environments
    assert envs["torch2.5-companions"].packages["torch"] == "2.5.1"
    assert envs["torch2.5-companions"].packages["torchvision"] == "0.20.1"  # the release built for torch 2.5.1
    for name in ("torch2.13-companions", "torch2.13-torchvision"):
        assert envs[name].packages["torch"] == "2.13.0"
    assert "torchvision" not in envs["torch2.13-companions"].packages  # kept apart: it fails on import there
    for env in envs.values():
        assert all(version != "latest" for version in env.packages.values()), env.name


def test_the_extras_matrix_selects_the_torch_companions_and_onnx_export():
    extras = matrix.load(EXTRAS, scenario_mod.discover(("scenarios",)))
    assert {"onnx_export.torch_onnx_exporters", "onnx_export.torch_onnx_dynamic_batch"} <= set(extras.scenario_ids)
    assert "companions.lightning_fit_and_checkpoint" in extras.scenario_ids
    keras_apps = [sid for sid in extras.scenario_ids if sid.startswith("companions.keras_")]
    assert keras_apps == [  # preprocess_input runs in the default matrix
        "companions.keras_efficientnet_b0",
        "companions.keras_mobilenet_v3_small",
        "companions.keras_transfer_learning_freeze",
    ]


def test_every_scenario_names_what_it_catches_and_what_it_needs():
    registry = scenario_mod.discover(("scenarios",))
    ours = {sid: entry for sid, entry in registry.items() if entry.area in ("companions", "onnx_export")}
    assert len(ours) == 9
    for sid, entry in ours.items():
        assert entry.doc.startswith("Catches"), sid
        assert entry.requires, sid
    assert registry["companions.torchvision_resnet18"].requires == ("torch", "torchvision")
    for sid in ("keras_mobilenet_v3_small", "keras_efficientnet_b0", "keras_transfer_learning_freeze"):
        assert registry[f"companions.{sid}"].requires == ("keras",)


def test_the_gcn_reference_on_a_path_graph_by_hand():
    # 0 - 1 - 2 with self loops: degrees 2, 3, 2; entry (i, j) of D^-1/2 (A + I) D^-1/2 is 1 / sqrt(d_i d_j)
    edges = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
    one_hot = np.eye(3, dtype=np.float32)
    got = gcn_reference(edges, one_hot, np.eye(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    third = 1 / np.sqrt(6)
    expected = [[1 / 2, third, 0], [third, 1 / 3, third], [0, third, 1 / 2]]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    shifted = gcn_reference(edges, one_hot[:, :1], np.array([[2.0]]), np.array([1.0]))
    np.testing.assert_allclose(shifted[:, 0], [2, 1 + 2 * third, 1], rtol=1e-6)  # weight 2, bias 1, node 0's column


def test_the_gcn_reference_follows_edge_direction():
    one_way = np.array([[0], [1]])  # a message from node 0 to node 1 only
    got = gcn_reference(one_way, np.array([[1.0], [0.0]], dtype=np.float32), np.array([[1.0]]), np.array([0.0]))
    # node 0 has only its self loop (degree 1), node 1 has its loop and node 0's edge (degree 2)
    np.testing.assert_allclose(got[:, 0], [1.0, 1 / np.sqrt(2)], rtol=1e-6)


def test_the_documented_preprocessing_modes_on_a_white_and_a_black_pixel():
    pixels = np.array([[[[255.0, 255.0, 255.0], [0.0, 0.0, 0.0]]]])
    np.testing.assert_allclose(expected_preprocessing("mobilenet_v2", pixels)[0, 0], [[1, 1, 1], [-1, -1, -1]])
    densenet = expected_preprocessing("densenet", pixels)[0, 0]
    np.testing.assert_allclose(densenet[1], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    caffe = expected_preprocessing("resnet50", np.array([[[[10.0, 20.0, 30.0]]]]))[0, 0, 0]
    np.testing.assert_allclose(caffe, [30 - 103.939, 20 - 116.779, 10 - 123.68])  # BGR, then the BGR means
    assert expected_preprocessing("efficientnet", pixels) is pixels


def test_the_fixed_image_is_the_same_bytes_every_time_and_in_range():
    first, again = fixed_image((2, 8, 8, 3)), fixed_image((2, 8, 8, 3))
    assert first.dtype == np.float32 and np.array_equal(first, again)
    assert first.min() >= 0 and first.max() <= 255 and first.std() > 50
    assert not np.array_equal(first, fixed_image((2, 8, 8, 3), seed=12))


def _refusal() -> pickle.UnpicklingError:
    text = (
        "Weights only load failed. This file can still be loaded, to do so you have two options.\n"
        "WeightsUnpickler error: Unsupported global: GLOBAL pathlib.PurePosixPath was not an allowed global by "
        "default."
    )
    return pickle.UnpicklingError(text)


def test_short_error_keeps_the_first_line_and_names_a_refused_global():
    summary = short_error(_refusal())
    assert summary.startswith("error: UnpicklingError: Weights only load failed.")
    assert summary.endswith("(refused global pathlib.PurePosixPath)")
    assert "WeightsUnpickler" not in summary


@pytest.mark.parametrize("message", ["", "x" * 5000])
def test_short_error_is_bounded_and_never_empty(message):
    summary = short_error(ValueError(message))
    assert summary.startswith("error: ValueError") and len(summary) <= 220


def test_the_exporters_select_by_the_dynamo_keyword_and_default_passes_none():
    assert EXPORTERS == {"legacy": {"dynamo": False}, "dynamo": {"dynamo": True}, "default": {}}
