"""Integration: Keras 3 on the JAX backend beside the TensorFlow backend, same Keras release (3.15.1), through nox.

The environments are matrix-extras.yaml's `keras3-jax` and the default matrix's `tf2.21-keras3` (same names and
pins, shared venvs). What is asserted has an independent reason: Keras 3 backends draw from their own RNG
(``keras.random`` is implemented per backend), so seeded draws differ; a layer calling TensorFlow ops needs
TensorFlow, which the JAX environment does not install; the backend-neutral ``keras.ops`` spelling and a
``.keras`` file (a backend-independent format) must give the same numbers on both backends.
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
JAX, TF = "keras3-jax", "tf2.21-keras3"
pytestmark = pytest.mark.integration


def composed_matrix(folder: Path) -> Path:
    extras = yaml.safe_load((ROOT / "matrix-extras.yaml").read_text())
    composed = {
        "unsafe_formats": True,  # the producers are this run's own environments; loading happens in the sandbox
        "scenarios": {"ids": ["training.keras_layer_calling_tf_ops", "randomness.keras_random_ops", "relay.*"]},
        "environments": [env for env in extras["environments"] if env["name"] in (JAX, TF)],
    }
    path = folder / "jax-matrix.yaml"
    path.write_text(yaml.safe_dump(composed, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("jax")
    env = {**os.environ, "COMPAT_MATRIX": str(composed_matrix(out)), "COMPAT_RESULTS_DIR": str(out),
           "COMPAT_RUN_ID": "j"}  # fmt: skip
    sessions = [JAX, TF, f"relay-{JAX}", f"relay-{TF}"]
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", *sessions]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "j", results.load_run(out / "j")


def array(run: tuple[Path, dict[str, Any]], env: str, scenario_id: str, name: str) -> np.ndarray:
    run_dir, docs = run
    with np.load(run_dir / docs[env].records_file) as archive:
        return np.array(archive[npz_key(scenario_id, name)])


def test_the_jax_environment_runs_keras_3_on_jax(run):
    _, docs = run
    identity = {r.name: r.value for r in docs[JAX].cell("randomness.keras_random_ops").records}["keras"]
    assert identity["backend"] == "jax" and identity["version"] == "3.15.1"
    assert docs[JAX].environment.resolved.packages["jax"] == "0.10.2"


def test_a_layer_on_tensorflow_ops_runs_only_on_the_tensorflow_backend(run):
    _, docs = run
    outcomes = {env: {r.name: r.value for r in docs[env].cell("training.keras_layer_calling_tf_ops").records}
                ["outcomes"] for env in (JAX, TF)}  # fmt: skip
    assert outcomes[TF] == {"tf_ops": "works", "keras_ops": "works"}
    assert outcomes[JAX] == {"tf_ops": "error: ModuleNotFoundError", "keras_ops": "works"}
    np.testing.assert_allclose(  # the negative control: keras.ops computes the same on both backends
        array(run, JAX, "training.keras_layer_calling_tf_ops", "keras_ops_output"),
        array(run, TF, "training.keras_layer_calling_tf_ops", "keras_ops_output"),
        rtol=1e-6,
    )


def test_seeded_keras_random_draws_are_the_backends_own(run):
    _, docs = run
    assert docs[JAX].cell("randomness.keras_random_ops").status == "pass"  # the contract holds on both
    assert docs[TF].cell("randomness.keras_random_ops").status == "pass"
    for name in ("normal", "uniform", "normal_int_seed3"):
        jax_draw = array(run, JAX, "randomness.keras_random_ops", name)
        tf_draw = array(run, TF, "randomness.keras_random_ops", name)
        assert jax_draw.shape == tf_draw.shape and not np.allclose(jax_draw, tf_draw), name


def test_keras_files_cross_the_backends(run):
    _, docs = run
    rows = [r for doc in docs.values() for r in doc.relay if r.family == "keras" and r.format == "keras"]
    core = {(r.producer, r.consumer, r.model): r for r in rows if r.model in ("sequential", "functional")}
    for producer, consumer in ((TF, JAX), (JAX, TF)):
        for model in ("sequential", "functional"):
            row = core[(producer, consumer, model)]
            assert row.outcome == "loaded" and row.max_abs_error is not None and row.max_abs_error < 1e-5, row
    zoo = {r.model for r in rows if r.producer == TF and r.consumer == JAX}
    assert {"recurrent", "convolutional", "attention", "lambda"} <= zoo  # the zoo TF saved reaches the JAX consumer
