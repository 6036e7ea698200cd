"""Integration: the companion libraries and ONNX export for real, through nox, in one module-scoped run.

The run's matrix is composed here from the two committed files, so every environment keeps exactly the name and
pins it has there (and its venv under .nox/ is shared): the three environments of matrix-extras.yaml, and the
Keras 2 and Keras 3 TensorFlow environments of matrix.yaml for the keras.applications scenarios.

Each known change is asserted from the recorded values, with its independent reason: torchvision's PyPI wheel is
built against PyPI's torch (a local +cpu torch build lacks its operators); torch 2.6 made ``torch.load`` default to
``weights_only=True``; torch 2.9 made the dynamo exporter ``torch.onnx.export``'s default and deprecated the
TorchScript one; TensorFlow's fused batch norm updates moving variances with Bessel's correction (n / (n - 1)),
Keras 3's batch norm does not. Beside them, negative controls that must stay identical: published parameter counts,
onnxruntime against torch within 1e-5, GCNConv's output and parameter names, Lightning's fit against a plain loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness import results
from harness.sidecar import npz_key

ROOT = Path(__file__).resolve().parent.parent
KERAS_ENVIRONMENTS = ("tf2.15-keras2", "tf2.21-keras3")
OLD, NEW, VISION = "torch2.5-companions", "torch2.13-companions", "torch2.13-torchvision"
#: A companion pinned beside a torch it was not built for (torchvision 0.20.1 requires torch 2.5.1): a test-only
#: environment whose resolution fails in about a second, without downloading anything.
MISMATCH = {"name": "torch2.13-torchvision0.20", "packages": {"torch": "2.13.0", "torchvision": "0.20.1"}}
SESSIONS = (OLD, NEW, VISION, *KERAS_ENVIRONMENTS, MISMATCH["name"])
pytestmark = pytest.mark.integration
#: The run folder, its documents by environment, and nox's output.
Run = tuple[Path, dict[str, Any], str]


def composed_matrix(folder: Path) -> Path:
    """matrix-extras.yaml's environments and selection, plus the default matrix's two TensorFlow Keras ones."""
    extras = yaml.safe_load((ROOT / "matrix-extras.yaml").read_text())
    default = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    keras_envs = [env for env in default["environments"] if env["name"] in KERAS_ENVIRONMENTS]
    torch_envs = [env for env in extras["environments"] if env["name"] in (OLD, NEW, VISION)]
    ours = [sid for sid in extras["scenarios"]["ids"] if sid.startswith(("companions.", "onnx_export."))]
    composed = {
        "scenarios": {"ids": [*ours, "companions.keras_*"]},
        "environments": [*torch_envs, *keras_envs, MISMATCH],
    }
    path = folder / "companions-matrix.yaml"
    path.write_text(yaml.safe_dump(composed, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("companions")
    env = {
        **os.environ,
        "COMPAT_MATRIX": str(composed_matrix(out)),
        "COMPAT_RESULTS_DIR": str(out),
        "COMPAT_RUN_ID": "t",
    }
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", *SESSIONS]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]  # the mismatched environment's session, and only it, fails
    return out / "t", results.load_run(out / "t"), output


def test_only_the_mismatched_environment_fails_and_the_run_goes_on(run):
    output = run[2]
    for session in SESSIONS[:-1]:
        assert f"* {session}: success" in output, session
    assert f"* {MISMATCH['name']}: failed" in output


def value(run: Run, env: str, scenario_id: str, name: str) -> Any:
    return {r.name: r.value for r in run[1][env].cell(scenario_id).records}[name]


def array(run: Run, env: str, scenario_id: str, name: str) -> np.ndarray:
    run_dir, docs, _ = run
    with np.load(run_dir / docs[env].records_file) as archive:
        return np.array(archive[npz_key(scenario_id, name)])


def status(run: Run, env: str, scenario_id: str) -> str:
    return str(run[1][env].cell(scenario_id).status)


def test_a_companion_without_a_build_for_the_torch_is_an_env_error_with_the_resolvers_cause(run):
    cells = run[1][MISMATCH["name"]].scenarios
    assert cells and {cell.status for cell in cells} == {"env-error"}  # every selected cell says why it did not run
    assert all("torchvision==0.20.1 depends on torch==2.5.1" in cell.message for cell in cells)


def test_nothing_else_errors_crashes_or_fails(run):
    docs = {env: doc for env, doc in run[1].items() if env != MISMATCH["name"]}
    bad = [(env, c.id, c.status) for env, doc in docs.items() for c in doc.scenarios if c.status != "pass"]
    assert [item for item in bad if item[2] != "skip"] == []
    for env in (OLD, NEW):  # every torch companion and the ONNX export ran where the environment has them
        for scenario_id in ("companions.torch_geometric_gcnconv", "companions.lightning_fit_and_checkpoint",
                            "onnx_export.torch_onnx_exporters", "onnx_export.torch_onnx_dynamic_batch"):  # fmt: skip
            assert status(run, env, scenario_id) == "pass", (env, scenario_id)
    for env in KERAS_ENVIRONMENTS:
        for name in (
            "mobilenet_v3_small",
            "efficientnet_b0",
            "transfer_learning_freeze",
            "applications_preprocess_input",
        ):
            assert status(run, env, f"companions.keras_{name}") == "pass", (env, name)


def test_torchvision_imports_beside_its_own_torch_build_and_not_beside_a_local_cpu_one(run):
    sid = "companions.torchvision_resnet18"
    assert status(run, OLD, sid) == "pass" and value(run, OLD, sid, "import") == "imported"
    cell = run[1][VISION].cell(sid)
    assert cell.status == "skip" and "torchvision 0.28.0 does not import beside torch 2.13.0" in cell.message
    assert "operator torchvision::nms does not exist" in value(run, VISION, sid, "import")
    # the old era: resnet18 has the published parameter count, and pretrained= still builds, with a deprecation
    assert value(run, OLD, sid, "parameters") == 11_689_512
    pretrained = value(run, OLD, sid, "pretrained_false")
    assert pretrained["outcome"] == "deprecated"
    assert any("'pretrained' is deprecated since 0.13" in line for line in pretrained["warnings"])


def test_a_lightning_checkpoint_with_a_path_in_its_hparams_is_refused_by_torch_2_13_only(run):
    sid = "companions.lightning_fit_and_checkpoint"
    assert value(run, OLD, sid, "plain_hparams_torch_load") == "loaded, warned: FutureWarning"  # weights_only=False
    assert value(run, NEW, sid, "plain_hparams_torch_load") == "loaded"  # tensors and plain values pass weights_only
    assert value(run, OLD, sid, "path_in_hparams_torch_load").startswith("loaded")
    assert value(run, OLD, sid, "path_in_hparams_load_from_checkpoint") == "loaded"
    for how in ("torch_load", "load_from_checkpoint"):  # Lightning's own loader meets the same default
        refused = value(run, NEW, sid, f"path_in_hparams_{how}")
        assert refused.startswith("error: UnpicklingError: Weights only load failed"), how
        assert refused.endswith("(refused global pathlib.PurePosixPath)"), how


def test_lightning_negative_controls(run):
    sid = "companions.lightning_fit_and_checkpoint"
    assert value(run, OLD, sid, "plain_hparams_keys") == value(run, NEW, sid, "plain_hparams_keys")
    assert "state_dict" in value(run, NEW, sid, "plain_hparams_keys")
    np.testing.assert_allclose(array(run, OLD, sid, "fitted_weight"), array(run, NEW, sid, "fitted_weight"), atol=1e-7)


def test_gcnconv_is_unchanged_across_torch_geometric_releases(run):
    sid = "companions.torch_geometric_gcnconv"
    assert value(run, OLD, sid, "versions")["torch_geometric"] != value(run, NEW, sid, "versions")["torch_geometric"]
    assert value(run, OLD, sid, "parameter_names") == value(run, NEW, sid, "parameter_names") == ["bias", "lin.weight"]
    np.testing.assert_allclose(array(run, OLD, sid, "output"), array(run, NEW, sid, "output"), atol=1e-6)


def test_the_default_onnx_exporter_switched_from_legacy_to_dynamo(run):
    sid = "onnx_export.torch_onnx_exporters"
    for env in (OLD, NEW):
        assert value(run, env, sid, "outcomes") == {"legacy": "exported", "dynamo": "exported", "default": "exported"}
        assert value(run, env, sid, "legacy_returns") == "NoneType"
        assert value(run, env, sid, "dynamo_returns") == "ONNXProgram"
    assert value(run, OLD, sid, "default_returns") == "NoneType"  # torch 2.5: a plain call runs the legacy exporter
    assert value(run, NEW, sid, "default_returns") == "ONNXProgram"  # torch >= 2.9: the dynamo exporter
    assert value(run, OLD, sid, "legacy_warnings") == []
    assert any("legacy TorchScript-based ONNX export" in w for w in value(run, NEW, sid, "legacy_warnings"))


def test_the_legacy_export_runs_in_onnxruntime_as_in_torch_in_both_eras(run):
    sid = "onnx_export.torch_onnx_exporters"
    for env in (OLD, NEW):  # TinyNet: Linear, relu, Linear, then ScaleShift's multiply and add
        assert value(run, env, sid, "legacy_graph")["op_types"] == ["Gemm", "Relu", "Gemm", "Mul", "Add"]
        checks = {c.name: c for c in run[1][env].cell(sid).checks}
        assert checks["legacy_onnxruntime_matches_torch"].ok, env
    np.testing.assert_allclose(
        array(run, OLD, sid, "legacy_onnxruntime_output"), array(run, NEW, sid, "legacy_onnxruntime_output"), atol=1e-5
    )


def test_the_dynamo_exporter_of_torch_2_5_renamed_the_open_batch_dimension(run):
    sid = "onnx_export.torch_onnx_dynamic_batch"
    for env in (OLD, NEW):  # the static exports keep the traced batch of 8 rows and 4 features
        assert value(run, env, "onnx_export.torch_onnx_exporters", "legacy_graph")["input_dims"] == [[8, 4]]
        assert value(run, env, sid, "outcomes") == {"legacy": "exported", "dynamo": "exported"}
        assert value(run, env, sid, "legacy_graph")["input_dims"] == [["batch", 4]]  # the name the user gave
        assert array(run, env, sid, "dynamo_onnxruntime_output").shape == (3, 3)  # another batch size runs
    assert value(run, OLD, sid, "dynamo_graph")["input_dims"] == [["s0", 4]]  # torch.export's symbol, not "batch"
    assert value(run, NEW, sid, "dynamo_graph")["input_dims"] == [["batch", 4]]
    assert any("dynamic_axes" in w for w in value(run, NEW, sid, "dynamo_warnings"))
    assert not any("dynamic_axes" in w for w in value(run, OLD, sid, "dynamo_warnings"))


def test_keras_applications_keep_their_published_sizes_and_outputs(run):
    old, new = KERAS_ENVIRONMENTS
    # keras.io's applications table gives EfficientNetB0 5,330,571; MobileNetV3Small's summary totals 2,554,968
    for family, parameters in (("mobilenet_v3_small", 2_554_968), ("efficientnet_b0", 5_330_571)):
        sid = f"companions.keras_{family}"
        for env in KERAS_ENVIRONMENTS:
            assert value(run, env, sid, "parameters") == parameters, (env, family)
            assert value(run, env, sid, "output_shape") == [None, 1000]
        np.testing.assert_allclose(array(run, old, sid, "output"), array(run, new, sid, "output"), atol=1e-6)
    sid = "companions.keras_applications_preprocess_input"
    for module in ("mobilenet_v2", "densenet", "resnet50", "efficientnet", "mobilenet_v3"):
        assert np.array_equal(array(run, old, sid, f"{module}_output"), array(run, new, sid, f"{module}_output"))


def test_a_frozen_base_keeps_its_batch_norm_statistics_in_both_keras_generations(run):
    sid = "companions.keras_transfer_learning_freeze"
    for env in KERAS_ENVIRONMENTS:  # the head alone trains: a 576 x 3 kernel and 3 biases
        frozen = value(run, env, sid, "frozen_counts")
        assert frozen["trainable_weights"] == 2 and frozen["trainable_parameters"] == 576 * 3 + 3
        assert value(run, env, sid, "unfrozen_counts")["trainable_parameters"] > 900_000
        statistics = array(run, env, sid, "frozen_batch_norm_statistics")
        assert statistics.size == 12_112  # MobileNetV3Small's summary: non-trainable params, its BN statistics
        assert np.array_equal(statistics[16:32], np.ones(16))  # the first moving variance, never updated
    old, new = (array(run, env, sid, "frozen_head_after_fit") for env in KERAS_ENVIRONMENTS)
    np.testing.assert_allclose(old, new, atol=1e-6)


def test_keras2_updates_moving_variances_with_bessels_correction_and_keras3_does_not(run):
    """The first BatchNormalization sees 8 images of 16 x 16 per channel: n = 2048. Its moving variance starts at 1
    and moves by (1 - momentum) times the batch variance, which TensorFlow's fused kernel multiplies by n / (n - 1)."""
    sid = "companions.keras_transfer_learning_freeze"
    old, new = (array(run, env, sid, "unfrozen_batch_norm_statistics") for env in KERAS_ENVIRONMENTS)
    np.testing.assert_allclose(old[:16], new[:16], rtol=1e-5)  # the moving means agree
    momentum, n = 0.999, 8 * 16 * 16
    ratio = (old[16:32] - momentum) / (new[16:32] - momentum)
    np.testing.assert_allclose(ratio, n / (n - 1), atol=3e-4)  # float32 leaves about 4 digits of the update
    assert not np.allclose(old, new, rtol=1e-5)
