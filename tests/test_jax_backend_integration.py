"""Integration: Keras 3 on the JAX backend beside the TensorFlow backend, same Keras release (3.15.1), through nox.

The environments are matrix-extras.yaml's `keras3-jax` and the default matrix's `tf2.21-keras3` (same names and
pins, shared venvs). What is asserted has an independent reason: Keras 3 backends draw from their own RNG
(``keras.random`` is implemented per backend), so seeded draws differ; a layer calling TensorFlow ops needs
TensorFlow, which the JAX environment does not install; the backend-neutral ``keras.ops`` spelling and a
``.keras`` file (a backend-independent format) must give the same numbers on both backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.nox_runs import Run, array, run_sessions

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
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("jax")
    return run_sessions(out, composed_matrix(out), "j", [JAX, TF, f"relay-{JAX}", f"relay-{TF}"])


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
