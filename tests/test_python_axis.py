"""The Python axis with real interpreters and real releases: the same frameworks on another Python, and a release
that publishes no wheel for the Python an environment asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import matrix, results
from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def _run(tmp_path: Path, *args: str) -> int:
    return main(["run", "--results-dir", str(tmp_path / "res"), "--run-id", "r", *args])


def test_a_release_without_a_wheel_for_the_python_is_an_env_error_with_the_resolvers_cause(tmp_path, capsys):
    # TensorFlow 2.15 was published for Python 3.9-3.11 only: nothing installs on 3.13.
    (tmp_path / "m.yaml").write_text(
        'environments:\n  - {name: tf-py313, python: "3.13", packages: {tensorflow-cpu: "2.15.1"}}\n'
    )
    code = _run(tmp_path, "--matrix", str(tmp_path / "m.yaml"), "--env", "tf-py313", "--venv-dir", str(tmp_path / "v"))
    assert code == 1
    doc = results.read_result(tmp_path / "res" / "r" / "tf-py313.json")
    assert doc.state == "env-error" and doc.environment.resolved is None
    cause = doc.env_error.message + doc.env_error.installer_output
    assert "tensorflow-cpu" in cause and "no wheels with a matching Python ABI tag" in cause and "cp313" in cause
    assert "tf-py313" in capsys.readouterr().err


def test_the_nightly_extras_matrix_judges_a_move_of_the_interpreter_alone():
    m = matrix.load(ROOT / "matrix-extras.yaml")
    old, new = m.environments["tf2.21-keras3"], m.environments["tf2.21-keras3-py3.12"]
    assert old.packages == new.packages and (old.python, new.python) == ("3.11", "3.12")
    assert old.packages == matrix.load(ROOT / "matrix.yaml").environments["tf2.21-keras3"].packages  # shared venv
    paths = {(p.baseline, p.candidate) for p in matrix.upgrade_paths(m)}
    assert ("tf2.21-keras3", "tf2.21-keras3-py3.12") in paths


def test_the_same_frameworks_on_python_3_12_draw_the_same_initial_weights(tmp_path):
    """A negative control: seeded initializers are the framework's, not the interpreter's, so nothing moves."""
    for env in ("tf2.21-keras3", "tf2.21-keras3-py3.12"):
        extras = str(ROOT / "matrix-extras.yaml")
        assert _run(tmp_path, "--matrix", extras, "--env", env, "-k", "layer_init.keras_dense") == 0
    run = results.load_run(tmp_path / "res" / "r")
    resolved = {name: doc.environment.resolved for name, doc in run.items()}
    assert resolved["tf2.21-keras3-py3.12"].python_version.startswith("3.12.")
    assert resolved["tf2.21-keras3"].python_version.startswith("3.11.")
    assert (
        resolved["tf2.21-keras3-py3.12"].packages["tensorflow-cpu"]
        == resolved["tf2.21-keras3"].packages["tensorflow-cpu"]
    )
    digests = {
        name: {r.name: r.sha256 for r in doc.cell("layer_init.keras_dense").records if r.kind == "array"}
        for name, doc in run.items()
    }
    assert digests["tf2.21-keras3"] and digests["tf2.21-keras3"] == digests["tf2.21-keras3-py3.12"]
