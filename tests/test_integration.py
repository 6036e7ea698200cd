"""Integration: real environments provisioned by the harness through nox, real TensorFlow/Keras 3 and torch.

These run ``nox`` exactly as a user does (the repository's noxfile and matrix.yaml), writing into a temporary
results folder, and assert on the JSON the run produced.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import matrix, results, scenario

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def nox(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env or os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"{command} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_nox_lists_one_session_per_environment():
    listed = json.loads(nox("-l", "--json").stdout)
    env_sessions = [s["session"] for s in listed if "env" in s["tags"]]
    default = matrix.load(ROOT / "matrix.yaml", scenario.discover())
    assert env_sessions == list(default.environments)
    assert {"report"} <= {s["session"] for s in listed}


def test_broken_matrix_stops_nox_before_provisioning(tmp_path):
    broken = tmp_path / "matrix.yaml"
    broken.write_text('environments:\n  - name: a\n    packages: {torch: ">=2"}\n')
    envdir = tmp_path / "envs"
    proc = nox("--envdir", str(envdir), env={**os.environ, "COMPAT_MATRIX": str(broken)}, check=False)
    assert proc.returncode != 0
    assert f"{broken}:3: environments[0].packages.torch: bad version '>=2'" in proc.stderr
    assert not envdir.exists()


def test_keras3_and_torch_environments_end_to_end(tmp_path):
    env = {**os.environ, "COMPAT_RESULTS_DIR": str(tmp_path), "COMPAT_RUN_ID": "itest"}
    nox("-s", "tf2.21-keras3", "torch2.13", "report", env=env)
    run = results.load_run(tmp_path / "itest")
    assert sorted(run) == ["tf2.21-keras3", "torch2.13"]

    tf = run["tf2.21-keras3"]
    assert tf.state == "complete"
    assert tf.environment.resolved.packages["tensorflow-cpu"] == "2.21.0"
    assert tf.environment.resolved.packages["keras"] == "3.15.1"
    dense = tf.cell("layer_init.keras_dense")
    assert dense.status == "pass", dense.message
    rec = {r.name: r for r in dense.records}
    bound = math.sqrt(6 / (32 + 64))
    assert rec["kernel"].shape == [32, 64] and -bound <= rec["kernel"].min < rec["kernel"].max <= bound
    assert rec["kernel_initializer"].value["class_name"] == "GlorotUniform"
    assert rec["keras"].value["version"] == "3.15.1"
    assert tf.cell("layer_init.torch_linear").status == "skip"
    assert tf.timings.import_s > 0.5  # TensorFlow really was imported, once
    assert tf.timings.worker_starts == 1

    torch = run["torch2.13"]
    assert torch.environment.resolved.packages["torch"].startswith("2.13.0")
    linear = torch.cell("layer_init.torch_linear")
    assert linear.status == "pass", linear.message
    weight = {r.name: r for r in linear.records}["weight"]
    assert weight.shape == [64, 32] and max(abs(weight.min), abs(weight.max)) <= 1 / math.sqrt(32)
    assert torch.cell("layer_init.keras_dense").status == "skip"

    report = (tmp_path / "itest" / "report.md").read_text()
    assert "| `layer_init.keras_dense` | pass | skip |" in report
