"""The Keras relay zoo for real: TensorFlow 2.15 with Keras 2 and TensorFlow 2.21 with Keras 3 save the zoo
(recurrent, convolutional, attention, lambda) and load each other's files in both directions through nox.

Asserts what the two lines really do with each other's files, and that a saved weight changed after the fact
is caught as a drift by a real consumer (the comparison is not vacuous)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import results
from scenarios import _keras_zoo
from scenarios.relay import file_hashes

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "keras-zoo-matrix.yaml"
K2, K3 = "tf2.15-keras2", "tf2.21-keras3"
ZOO = tuple(_keras_zoo.MODELS)
pytestmark = pytest.mark.integration


def _nox(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


def _env(results_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COMPAT_MATRIX": str(MATRIX),
        "COMPAT_RESULTS_DIR": str(results_dir),
        "COMPAT_RUN_ID": "z",
        "COMPAT_NO_CACHE": "1",
    }


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    proc = _nox(_env(out))
    # Every session succeeds but the report, which fails on the NO-GO path: Keras 3 cannot read what Keras 2 saved.
    failed = re.findall(r"\* (\S+): failed", proc.stderr)
    assert proc.returncode == 1 and failed == ["report"], proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"upgrade path {K2} -> {K3}: NO-GO" in proc.stdout + proc.stderr
    return out / "z", results.load_run(out / "z")


def grid(run: dict, format_name: str) -> dict[tuple[str, str, str], results.RelayResult]:
    return {
        (r.producer, r.consumer, r.model): r
        for doc in run.values()
        for r in doc.relay
        if r.family == "keras" and r.format == format_name
    }


def test_every_zoo_model_is_in_the_grid_for_keras_and_weights_in_both_directions(zoo_run):
    _, run = zoo_run
    for format_name in ("keras", "weights_h5"):
        rows = grid(run, format_name)
        missing = [(p, c, m) for p in (K2, K3) for c in (K2, K3) for m in ZOO if (p, c, m) not in rows]
        assert not missing, (format_name, missing)


@pytest.mark.parametrize("env", [K2, K3])
def test_a_version_reads_its_own_zoo_weights_exactly(zoo_run, env):
    """Same version, same file: the numbers cannot differ, in inference or (where it repeats) training mode."""
    _, run = zoo_run
    rows = grid(run, "weights_h5")
    for model in ZOO:
        row = rows[(env, env, model)]
        assert row.outcome == "loaded" and row.max_abs_error == 0.0 and row.weights == "same", (model, row)
        deterministic = _keras_zoo.MODELS[model].deterministic
        assert row.training_max_abs_error == (0.0 if deterministic else None), (model, row)


@pytest.mark.parametrize("env", [K2, K3])
def test_a_version_reads_its_own_zoo_models_exactly_and_trains_on_alike(zoo_run, env):
    """Same version, same file, same optimizer state: the next training step is the producer's own, bit for bit."""
    _, run = zoo_run
    rows = grid(run, "keras")
    for model in ("recurrent", "convolutional", "attention"):
        row = rows[(env, env, model)]
        assert row.outcome == "loaded" and row.how == "loaded" and row.max_abs_error == 0.0, (model, row)
        assert row.optimizer == "kept", (model, row)
        assert not row.weights.startswith("layout-changed"), (model, row)
        deterministic = _keras_zoo.MODELS[model].deterministic  # Dropout's random masks are not compared
        assert row.continuation_max_abs_error == (0.0 if deterministic else None), (model, row)


@pytest.mark.parametrize("env", [K2, K3])
def test_a_lambda_in_the_keras_format_loads_only_without_safe_mode_even_in_its_own_version(zoo_run, env):
    _, run = zoo_run
    row = grid(run, "keras")[(env, env, "lambda")]
    assert row.outcome == "fallback-only" and row.how == "loaded-without-safe-mode", row
    assert row.error_class == "ValueError" and "Lambda" in row.message and "safe_mode" in row.message
    assert row.max_abs_error == 0.0  # what the fallback loaded is the saved model


def test_keras3_cannot_read_the_keras2_zoo_in_the_keras_format(zoo_run):
    _, run = zoo_run
    rows = grid(run, "keras")
    for model in ZOO:
        row = rows[(K2, K3, model)]
        assert row.outcome == "load-error" and row.error_class == "TypeError", (model, row)
        assert "keras.src.engine.functional cannot be imported" in row.message, (model, row.message[:300])


def test_keras3_cannot_read_keras2_h5_layers_whose_config_changed(zoo_run):
    """Keras 2's h5 configs carry arguments Keras 3's layers no longer take: each family fails on its own layer."""
    _, run = zoo_run
    rows = grid(run, "h5")
    assert rows[(K2, K3, "recurrent")].outcome == "load-error"
    assert "Unrecognized keyword arguments passed to LSTM: {'time_major': False}" in rows[(K2, K3, "recurrent")].message
    for model, layer in (("convolutional", "DepthwiseConv2D"), ("attention", "MultiHeadAttention")):
        row = rows[(K2, K3, model)]
        assert row.outcome == "load-error" and row.error_class == "TypeError", (model, row)
        assert f"Error when deserializing class '{layer}'" in row.message, (model, row.message[:300])


def test_keras3_cannot_read_its_own_h5_of_a_masking_embedding(zoo_run):
    """Keras 3 writes the mask of ``Embedding(mask_zero=True)`` into the h5 config as an operation node
    (``NotEqual``, class name and all) that its own h5 reader does not know; the ``.keras`` file of it loads."""
    _, run = zoo_run
    row = grid(run, "h5")[(K3, K3, "recurrent")]
    assert row.outcome == "load-error" and "Unknown layer: 'NotEqual'" in row.message, row


def test_keras3_reads_a_lambda_from_h5_only_without_safe_mode_and_compiling(zoo_run):
    _, run = zoo_run
    rows = grid(run, "h5")
    for producer in (K2, K3):
        row = rows[(producer, K3, "lambda")]
        assert row.outcome == "fallback-only" and row.how == "loaded-without-safe-mode-without-compile", row
        assert row.max_abs_error is not None and row.max_abs_error < 1e-6 and row.optimizer == "lost"


def test_keras2_zoo_weights_load_in_keras3_under_new_names(zoo_run):
    _, run = zoo_run
    rows = grid(run, "weights_h5")
    for model in ZOO:
        row = rows[(K2, K3, model)]
        assert row.outcome == "loaded" and row.max_abs_error is not None and row.max_abs_error < 1e-6, (model, row)
        count = int(re.fullmatch(r"renamed \((\d+) of (\d+)\)", row.weights).group(2))  # Keras 2 names end in ":0"
        assert row.weights == f"renamed ({count} of {count})", (model, row.weights)


def test_keras2_cannot_read_keras3_attention_weights(zoo_run):
    """Keras 3 stores MultiHeadAttention's projections under new names; Keras 2.15 finds none of them (no rollback)."""
    _, run = zoo_run
    rows = grid(run, "weights_h5")
    row = rows[(K3, K2, "attention")]
    assert row.outcome == "load-error" and row.error_class == "ValueError", row
    assert "expected 2 variables, but received 0 variables" in row.message
    assert all(rows[(K3, K2, m)].outcome == "loaded" for m in ("recurrent", "convolutional", "lambda"))


# ------------------------------------------------------------------------------------------------ tampering

#: Per zoo model, a weight of its own family in Keras 3's ``.weights.h5``: the forward LSTM's kernel,
#: BatchNormalization's moving variance (inference reads it), the attention's query projection, the Dense the
#: Lambda reads. Adding 0.5 to one value of weights drawn from [-0.5, 0.5] changes the predictions.
TAMPERED = {
    "recurrent": "layers/bidirectional/forward_layer/cell/vars/0",
    "convolutional": "layers/batch_normalization/vars/3",
    "attention": "layers/multi_head_attention/query_dense/vars/0",
    "lambda": "layers/dense/vars/0",
}
_ADD_HALF = """
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    data = f[sys.argv[2]]
    value = data[()]
    value.flat[0] += 0.5
    data[...] = value
"""


@pytest.fixture(scope="module")
def tampered(zoo_run, tmp_path_factory):
    """A copy of the run where Keras 3's weights files each have one value changed and the manifest's hashes
    updated (so the integrity check passes); then Keras 3's relay consumer runs again over it, measuring anew."""
    run_dir, _ = zoo_run
    copy = tmp_path_factory.mktemp("tampered")
    shutil.copytree(run_dir, copy / "z")
    producer = copy / "z" / "artifacts" / K3
    python = ROOT / ".nox" / "tf2-21-keras3" / "bin" / "python"  # h5py comes with Keras; the tool env has none
    for model, dataset in TAMPERED.items():
        path = producer / "keras" / model / "weights_h5" / "model.weights.h5"
        subprocess.run([str(python), "-c", _ADD_HALF, str(path), dataset], check=True, capture_output=True)
    manifest_path = producer / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["artifacts"]:
        entry["files"] = file_hashes(producer / entry["path"])
    manifest_path.write_text(json.dumps(manifest))
    proc = _nox(_env(copy), "-s", f"relay-{K3}", "--no-dependencies")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = results.read_result(copy / "z" / f"{K3}.json")
    return {(r.producer, r.format, r.model): r for r in doc.relay}


@pytest.mark.parametrize("model", list(TAMPERED))
def test_a_changed_weight_in_a_saved_file_is_caught_as_a_drift(tampered, model):
    row = tampered[(K3, "weights_h5", model)]
    assert row.outcome == "loaded-drifted", row
    # far above float32 rounding: the same weights loaded across versions differ by less than 1e-7
    assert row.max_abs_error is not None and row.max_abs_error > 1e-5, row


def test_the_untouched_files_of_the_same_producer_still_load_exactly(tampered):
    for model in ("recurrent", "convolutional", "attention"):
        row = tampered[(K3, "keras", model)]
        assert row.outcome == "loaded" and row.max_abs_error == 0.0, (model, row)
