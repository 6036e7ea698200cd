"""Hostile artifacts in real consumers: a torch pickle with a marker payload, a SavedModel whose graph writes a file.

Each payload is first shown to work (loaded directly in the environment's Python, it creates its marker), then
planted in a producer's folder with a consistent manifest and handed to the relay consumer: with unsafe formats off
it is verified and not loaded; opted in, it is loaded in the sandbox, where its write fails and the marker never
appears. The environments are the default matrix's (shared under .nox/), provisioned here if missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import results
from harness.matrix import load as load_matrix
from harness.provision import provision
from harness.sandbox import Sandbox, find_sandbox
from harness.worker.scenario import discover
from scenarios.relay import MANIFEST, file_hashes

ROOT = Path(__file__).resolve().parent.parent
RELAY_MATRIX = ROOT / "tests" / "resources" / "relay-matrix.yaml"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not isinstance(find_sandbox(), Sandbox), reason=str(find_sandbox())),
]

PICKLE_PAYLOAD = """
import socket
from pathlib import Path
try:
    Path({marker!r}).write_text("the payload ran")
    wrote = "yes"
except OSError as exc:
    wrote = type(exc).__name__
try:
    socket.create_connection(("pypi.org", 443), timeout=5)
    net = "yes"
except OSError as exc:
    net = type(exc).__name__
if wrote != "yes":
    raise RuntimeError(f"payload: write={{wrote}} net={{net}}")
"""

MAKE_PICKLE = """
import pickle, sys
class Payload:
    def __reduce__(self):
        return (exec, (sys.argv[2],))
open(sys.argv[1], "wb").write(pickle.dumps(Payload()))
"""

MAKE_SAVED_MODEL = """
import sys
import tensorflow as tf
class Serve(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def serve(self, x):
        tf.io.write_file(sys.argv[2], "the graph ran")
        return tf.matmul(x, tf.ones([4, 3]))
tf.saved_model.save(Serve(), sys.argv[1])
"""

LOAD_SAVED_MODEL = "import sys, tensorflow as tf; tf.saved_model.load(sys.argv[1]).serve(tf.zeros([8, 4]))"


def _venv_python(env: str) -> Path:
    """The environment's interpreter, provisioned (or reused) where the relay consumer will look for it."""
    environment = load_matrix(RELAY_MATRIX, discover(["scenarios"])).environment(env)
    return provision(environment, ROOT / ".nox" / environment.venv_slug).python


def _plant(source: Path, family: str, model: str, fmt: str, build: list[str]) -> Path:
    """Build an artifact with ``build`` (its last argument the artifact's path) and write a consistent manifest."""
    folder = source / "evil" / family / model / fmt
    folder.mkdir(parents=True)
    subprocess.run(build, check=True, capture_output=True, text=True)
    entry = {"family": family, "model": model, "format": fmt, "unsafe": False,  # the manifest lies; no matter
             "path": f"{family}/{model}/{fmt}", "files": file_hashes(folder),
             "predictions": [[0.0] * 3] * 8, "optimizer": {"count": 0, "sha256": ""}}  # fmt: skip
    manifest = {"manifest_version": 1, "producer": "evil", "artifacts": [entry]}
    (source / "evil" / MANIFEST).write_text(json.dumps(manifest))
    return folder


def _consume(tmp_path: Path, env: str, source: Path, unsafe_formats: bool) -> results.RelayResult:
    matrix = tmp_path / f"m-{unsafe_formats}.yaml"
    shared = [line for line in RELAY_MATRIX.read_text().splitlines() if not line.startswith("unsafe_formats:")]
    matrix.write_text("\n".join([f"unsafe_formats: {str(unsafe_formats).lower()}", *shared, ""]))
    run_id = f"consume-{unsafe_formats}"
    command = [sys.executable, "-m", "harness", "relay", "--env", env, "--matrix", str(matrix), "--run-id", run_id,
               "--relay-from", str(source)]  # fmt: skip
    environ = {**os.environ, "COMPAT_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [row] = results.read_result(tmp_path / "results" / run_id / f"{env}.json").relay
    return row


def test_a_planted_torch_pickle_runs_its_payload_only_in_the_sandbox_where_it_cannot_write(tmp_path):
    python = _venv_python("torch2.13")
    marker = tmp_path / "pickle-marker.txt"
    source = tmp_path / "artifacts"
    folder = source / "evil" / "torch" / "tinynet" / "pickle_unsafe_load"
    payload = PICKLE_PAYLOAD.format(marker=str(marker))
    _plant(source, "torch", "tinynet", "pickle_unsafe_load",
           [str(python), "-c", MAKE_PICKLE, str(folder / "model.pkl"), payload])  # fmt: skip

    control = subprocess.run(
        [str(python), "-c", f"import torch; torch.load({str(folder / 'model.pkl')!r}, weights_only=False)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert marker.read_text() == "the payload ran", control.stderr[-2000:]  # outside a sandbox it runs
    marker.unlink()

    off = _consume(tmp_path, "torch2.13", source, unsafe_formats=False)
    assert off.outcome == "skip" and off.unsafe and "not loaded: a full pickle" in off.message
    assert not marker.exists()

    sandboxed = _consume(tmp_path, "torch2.13", source, unsafe_formats=True)
    assert sandboxed.sandboxed and sandboxed.outcome == "load-error" and sandboxed.error_class == "RuntimeError"
    assert "payload: write=OSError net=" in sandboxed.message and "net=yes" not in sandboxed.message
    assert not marker.exists()


def test_a_savedmodel_whose_graph_writes_a_file_cannot_write_it_from_the_sandbox(tmp_path):
    python = _venv_python("tf2.21-keras3")
    marker = tmp_path / "graph-marker.txt"
    source = tmp_path / "artifacts"
    folder = source / "evil" / "keras" / "sequential" / "tf_saved_model" / "model"  # where a Keras producer saves
    _plant(source, "keras", "sequential", "tf_saved_model",
           [str(python), "-c", MAKE_SAVED_MODEL, str(folder), str(marker)])  # fmt: skip
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    control = subprocess.run([str(python), "-c", LOAD_SAVED_MODEL, str(folder)], env=environ, capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert marker.read_text() == "the graph ran", control.stderr[-2000:]  # outside a sandbox it writes
    marker.unlink()

    off = _consume(tmp_path, "tf2.21-keras3", source, unsafe_formats=False)
    assert off.outcome == "skip" and "not loaded: a SavedModel" in off.message and not marker.exists()

    sandboxed = _consume(tmp_path, "tf2.21-keras3", source, unsafe_formats=True)
    assert sandboxed.sandboxed and sandboxed.outcome == "load-error", sandboxed
    assert "Read-only file system" in sandboxed.message or "Permission" in sandboxed.message, sandboxed.message
    assert not marker.exists()
