"""The relay for real: a Keras 2 era and a Keras 3 TensorFlow, torch 2.5 and 2.13, saving and loading each other's
artifacts in both directions through nox. Asserts the grid's content from the produced JSON."""

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
from scenarios.relay import file_hashes

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "relay-matrix.yaml"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def relay_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("relay")
    env = {**os.environ, "COMPAT_MATRIX": str(MATRIX), "COMPAT_RESULTS_DIR": str(out), "COMPAT_RUN_ID": "r"}
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py")], cwd=ROOT, env=env, capture_output=True, text=True
    )
    # Every session succeeds but the report, which fails the main job on the NO-GO paths of this matrix: torch 2.6
    # made weights_only=True the default of torch.load, and Keras 3 cannot read what Keras 2 saved with model.save.
    failed = re.findall(r"\* (\S+): failed", proc.stderr)
    assert proc.returncode == 1 and failed == ["report"], proc.stdout[-3000:] + proc.stderr[-3000:]
    said = proc.stdout + proc.stderr  # parallel nox relays a session's output on its own stdout
    assert "upgrade path torch2.5 -> torch2.13: NO-GO" in said
    assert "upgrade path tf2.15-keras2 -> tf2.21-keras3: NO-GO" in said
    return out / "r", results.load_run(out / "r")


def grid(run: dict, family: str, format_name: str) -> dict[tuple[str, str, str], results.RelayResult]:
    return {
        (r.producer, r.consumer, r.model): r
        for doc in run.values()
        for r in doc.relay
        if r.family == family and r.format == format_name
    }


def test_every_pair_both_directions_is_in_the_grid(relay_run):
    _, run = relay_run
    pairs = {(r.producer, r.consumer) for doc in run.values() for r in doc.relay}
    keras, torch = ("tf2.15-keras2", "tf2.21-keras3"), ("torch2.5", "torch2.13")
    assert {(p, c) for p in keras for c in keras} <= pairs
    assert {(p, c) for p in torch for c in torch} <= pairs
    assert not any(p in keras and c in torch for p, c in pairs)  # no Keras artifact offered to a torch-only env


def test_torch_grid(relay_run):
    _, run = relay_run
    default_load = grid(run, "torch", "pickle_default_load")
    assert default_load[("torch2.5", "torch2.5", "tinynet")].outcome == "loaded"
    assert default_load[("torch2.13", "torch2.5", "tinynet")].outcome == "loaded"
    for producer in ("torch2.5", "torch2.13"):  # torch 2.6 made weights_only=True the default
        row = default_load[(producer, "torch2.13", "tinynet")]
        # the plain torch.load(path) refuses; only the weights_only=False fallback loads it: a finding, not a rescue
        assert row.outcome == "fallback-only" and row.error_class == "UnpicklingError" and "weights-only" in row.how
        assert "weights_only" in row.message
    assert grid(run, "torch", "pickle_unsafe_load")[("torch2.5", "torch2.13", "tinynet")].unsafe
    for row in [*default_load.values(), *grid(run, "torch", "torchscript_script").values()]:
        assert row.unsafe and row.sandboxed  # formats that can run code from the file load only in the sandbox
    for row in grid(run, "torch", "checkpoint").values():
        assert row.outcome == "loaded" and row.optimizer == "kept" and row.continuation_max_abs_error == 0.0
    for row in grid(run, "torch", "state_dict").values():
        assert row.outcome == "loaded" and row.max_abs_error == 0.0


def test_keras_grid(relay_run):
    _, run = relay_run
    native = grid(run, "keras", "keras")
    for model in ("sequential", "functional", "subclassed"):
        assert native[("tf2.15-keras2", "tf2.15-keras2", model)].outcome == "loaded"
        assert native[("tf2.21-keras3", "tf2.21-keras3", model)].outcome == "loaded"
        assert native[("tf2.21-keras3", "tf2.15-keras2", model)].outcome == "load-error"  # no rollback
    saved_model = grid(run, "keras", "savedmodel_dir")
    assert {r.outcome for (p, c, _), r in saved_model.items() if c == "tf2.21-keras3"} == {"load-error"}
    for row in grid(run, "keras", "tf_saved_model").values():  # the serving format crosses both ways
        assert row.outcome == "loaded" and row.max_abs_error < 1e-6
    weights = grid(run, "keras", "weights_h5")
    assert all(weights[("tf2.15-keras2", "tf2.21-keras3", m)].outcome == "loaded" for m in ("sequential", "functional"))


def test_report_shows_one_grid_per_format(relay_run):
    run_dir, _ = relay_run
    report = (run_dir / "report.md").read_text()
    assert "### torch · pickle_default_load (unsafe: can run code from the file; loaded only in the sandbox)" in report
    assert "### keras · keras" in report and "| producer \\ consumer | tf2.15-keras2 | tf2.21-keras3 |" in report


def test_truncated_artifact_is_a_load_error_in_a_real_consumer(relay_run, tmp_path):
    run_dir, _ = relay_run
    source = tmp_path / "artifacts"
    shutil.copytree(run_dir / "artifacts" / "tf2.21-keras3", source / "tf2.21-keras3")
    model_file = source / "tf2.21-keras3" / "keras" / "sequential" / "keras" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:200])  # a producer that wrote half a file
    manifest_path = source / "tf2.21-keras3" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["artifacts"]:
        entry["files"] = file_hashes(source / "tf2.21-keras3" / entry["path"])
    manifest_path.write_text(json.dumps(manifest))
    env = {**os.environ, "COMPAT_RESULTS_DIR": str(tmp_path / "results")}
    command = [sys.executable, "-m", "harness", "relay", "--env", "tf2.21-keras3", "--matrix", str(MATRIX),
               "--run-id", "t", "--relay-from", str(source)]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = results.read_result(tmp_path / "results" / "t" / "tf2.21-keras3.json")
    rows = {(r.format, r.model): r for r in doc.relay}
    assert rows[("keras", "sequential")].outcome == "load-error"
    assert rows[("keras", "functional")].outcome == "loaded"  # the rest of the cell still loaded
