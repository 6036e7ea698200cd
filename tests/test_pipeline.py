"""One environment end to end through the real pipeline (uv venv, worker, results), with fake scenarios."""

from __future__ import annotations

import functools
import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness import matrix, results
from harness.pipeline import EnvironmentPipeline
from harness.worker import scenario

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "tests" / "resources"

MATRIX = """
scenarios:
  ids: [fault.a_first_passes, fault.b_segfault, fault.d_hang, fault.k_needs_torch, fault.z_last_passes]
environments:
  - name: plain
    packages: {six: "1.16.0"}
  - name: broken
    packages: {six: "0.0.99"}
"""


def _setup(tmp_path):
    if str(RESOURCES) not in sys.path:
        sys.path.insert(0, str(RESOURCES))
    registry = scenario.discover(["fake_scenarios"])
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX))
    return matrix.load(path, registry), registry


def _run(tmp_path, name):
    m, registry = _setup(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return EnvironmentPipeline(
        m,
        name,
        tmp_path / "results" / "run1",
        tmp_path / "venvs" / name,
        registry,
        run_id="run1",
        scenario_packages=("fake_scenarios",),
        extra_pythonpath=(RESOURCES,),
        environ=environ,
    ).run()


@pytest.mark.integration  # provisions a real venv with uv from the package registry
def test_environment_end_to_end(tmp_path):
    doc = _run(tmp_path, "plain")
    path = tmp_path / "results" / "run1" / "plain.json"
    assert results.read_result(path) == doc  # written, schema-valid, and complete
    assert doc.state == "complete" and doc.finished_at
    statuses = {c.id: c.status for c in doc.scenarios}
    assert statuses == {
        "fault.a_first_passes": "pass",
        "fault.b_segfault": "crash",
        "fault.d_hang": "timeout",
        "fault.k_needs_torch": "skip",
        "fault.z_last_passes": "pass",
    }
    assert [c.id for c in doc.scenarios] == sorted(statuses)  # matrix order, whatever the finishing order
    assert doc.cell("fault.k_needs_torch").message == "requires torch>=2.0; the environment has no torch"
    resolved = doc.environment.resolved
    assert resolved.packages["six"] == "1.16.0" and "numpy" in resolved.packages
    assert resolved.python_version.startswith("3.11") and len(resolved.lock_sha256) == 64
    assert doc.timings.worker_starts == 3 and doc.timings.import_s is not None
    assert doc.timings.provision_s is not None and doc.timings.total_s >= doc.timings.scenarios_s
    with np.load(tmp_path / "results" / "run1" / doc.records_file) as data:
        assert data["fault.a_first_passes::values"].tolist() == [[0, 1, 2], [3, 4, 5]]
        assert data["fault.a_first_passes::order"].tolist() == [2, 0, 1]


@pytest.mark.integration  # provisions a real venv with uv from the package registry
def test_failed_install_is_env_error_for_every_cell(tmp_path):
    doc = _run(tmp_path, "broken")
    assert doc.state == "env-error"
    assert {c.status for c in doc.scenarios} == {"env-error"} and len(doc.scenarios) == 5
    assert "six==0.0.99" in doc.env_error.message
    on_disk = json.loads((tmp_path / "results" / "run1" / "broken.json").read_text())
    assert on_disk["state"] == "env-error" and on_disk["env_error"]["installer_output"]


@pytest.mark.integration  # provisions a real venv with uv from the package registry
def test_repeats_mark_records_that_change_as_flaky(tmp_path):
    if str(RESOURCES) not in sys.path:
        sys.path.insert(0, str(RESOURCES))
    registry = scenario.discover(["fake_scenarios"])
    path = tmp_path / "matrix.yaml"
    path.write_text(
        "scenarios:\n  ids: [fault.a_first_passes, fault.l_flaky]\nenvironments:\n"
        '  - {name: plain, packages: {six: "1.16.0"}}\n'
    )
    doc = EnvironmentPipeline(
        matrix.load(path, registry),
        "plain",
        tmp_path / "r",
        tmp_path / "venv",
        registry,
        run_id="r",
        scenario_packages=("fake_scenarios",),
        extra_pythonpath=(RESOURCES,),
        environ={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    ).run(repeat=3)
    assert doc.repeats == 3 and doc.flaky == ["fault.l_flaky::noisy"]
    assert results.read_result(tmp_path / "r" / "plain.json").flaky == ["fault.l_flaky::noisy"]


def _fake_provision(env, venv_dir, *, environ=None, lock="0" * 64):
    """The tool's own interpreter as the 'environment': plumbing tests need no registry (and run offline)."""
    from harness.provision import Provisioned

    packages = {"six": "1.16.0", "numpy": np.__version__}
    return Provisioned(python=Path(sys.executable), packages=packages, lock_text="", lock_sha256=lock)


def _offline_run(tmp_path, monkeypatch, selection=(), provisioner=_fake_provision):
    monkeypatch.setattr("harness.pipeline.provision", provisioner)
    m, registry = _setup(tmp_path)
    return EnvironmentPipeline(
        m,
        "plain",
        tmp_path / "results" / "run1",
        tmp_path / "venvs" / "plain",
        registry,
        run_id="run1",
        scenario_packages=("fake_scenarios",),
        extra_pythonpath=(RESOURCES,),
        environ={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    ).run(selection=selection)


def test_cells_measured_with_another_lock_are_dropped_not_mixed(tmp_path, monkeypatch):
    """A `latest` that moved between two invocations: the old cells describe another environment."""
    _offline_run(tmp_path, monkeypatch)
    moved = functools.partial(_fake_provision, lock="1" * 64)
    doc = _offline_run(tmp_path, monkeypatch, selection=["fault.z_*"], provisioner=moved)
    assert [c.id for c in doc.scenarios] == ["fault.z_last_passes"]


def test_env_error_cells_of_a_failed_install_do_not_survive_a_later_run(tmp_path, monkeypatch):
    from harness.errors import ProvisionError

    def refuse(env, venv_dir, *, environ=None):
        raise ProvisionError("resolving failed: index unreachable")

    failed = _offline_run(tmp_path, monkeypatch, provisioner=refuse)
    assert {c.status for c in failed.scenarios} == {"env-error"}
    doc = _offline_run(tmp_path, monkeypatch, selection=["fault.a_*"])
    assert [(c.id, c.status) for c in doc.scenarios] == [("fault.a_first_passes", "pass")]


def test_a_subset_rerun_keeps_every_other_cell_and_its_values(tmp_path, monkeypatch):
    """The reproduce command a verdict prints (-k ...) must never throw the rest of the run away."""
    first = _offline_run(tmp_path, monkeypatch)
    assert len(first.scenarios) == 5
    again = _offline_run(tmp_path, monkeypatch, selection=["fault.z_*"])
    assert [c.id for c in again.scenarios] == [c.id for c in first.scenarios]
    kept = {c.id: c.status for c in again.scenarios}
    assert kept == {c.id: c.status for c in first.scenarios}
    assert [i.cells for i in again.invocations] == [[c.id for c in first.scenarios], ["fault.z_last_passes"]]
    origin = {c.id: c.invocation for c in again.scenarios}
    assert origin["fault.z_last_passes"] == again.invocations[1].id
    assert origin["fault.a_first_passes"] == again.invocations[0].id
    with np.load(tmp_path / "results" / "run1" / again.records_file) as data:
        assert data["fault.a_first_passes::order"].tolist() == [2, 0, 1]  # values of kept cells survive


def test_a_subset_run_into_a_new_run_holds_only_that_subset(tmp_path, monkeypatch):
    doc = _offline_run(tmp_path, monkeypatch, selection=["fault.a_*"])
    assert [c.id for c in doc.scenarios] == ["fault.a_first_passes"]


def test_a_pin_that_does_not_exist_fails_the_run_command_naming_it(tmp_path, monkeypatch, capsys):
    """The run command (and so its nox session) fails, with the resolver's words on screen and in the results."""
    from harness.cli import main
    from harness.errors import ProvisionError

    words = "Because there is no version of six==0.0.99 and you require six==0.0.99, we can conclude ..."

    def refuse(env, venv_dir, *, environ=None):
        raise ProvisionError(f"resolving six==0.0.99 failed: {words}", installer_output=words)

    monkeypatch.setattr("harness.pipeline.provision", refuse)
    if str(RESOURCES) not in sys.path:
        sys.path.insert(0, str(RESOURCES))
    (tmp_path / "m.yaml").write_text(textwrap.dedent(MATRIX))
    common = ["--matrix", str(tmp_path / "m.yaml"), "--scenario-packages", "fake_scenarios"]
    code = main(["run", *common, "--env", "broken", "--run-id", "r", "--results-dir", str(tmp_path / "res")])
    assert code == 1 and "six==0.0.99" in capsys.readouterr().err
    doc = results.read_result(tmp_path / "res" / "r" / "broken.json")
    assert doc.state == "env-error" and words in doc.env_error.message
    assert {c.status for c in doc.scenarios} == {"env-error"} and len(doc.scenarios) == 5


def test_dropping_a_cell_drops_its_values_and_flaky_marks(tmp_path):
    from harness.documents import drop_cells
    from tests.factories import cell, env_doc

    doc = env_doc(tmp_path, "e", [cell("a.x", w=np.ones(3)), cell("a.y", v=np.zeros(2))], flaky=["a.x::w", "a.y::v"])
    drop_cells(doc, tmp_path, {"a.x"})
    assert [c.id for c in doc.scenarios] == ["a.y"] and doc.flaky == ["a.y::v"]
    with np.load(tmp_path / "e.npz") as data:
        assert sorted(data.files) == ["a.y::v"]


INTERRUPTED_RUN = """
import sys
from pathlib import Path

import tests.test_pipeline as t
from harness.cli import main

t.pytest.MonkeyPatch().setattr("harness.pipeline.provision", t._fake_provision)
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_ends_the_worker_tree_and_keeps_the_finished_cells(tmp_path):
    """A cancelled CI job: no orphaned worker, the finished cell kept, the document marked interrupted."""
    import signal
    import subprocess
    import time

    (tmp_path / "m.yaml").write_text(
        "scenarios:\n  ids: [fault.a_first_passes, fault.d_hang]\n  timeouts: {fault.d_hang: 120}\n"
        'environments:\n  - {name: plain, packages: {six: "1.16.0"}}\n'
    )
    script = tmp_path / "run.py"
    script.write_text(INTERRUPTED_RUN)
    results_dir = tmp_path / "res"
    command = [
        sys.executable,
        str(script),
        "run",
        "--matrix",
        str(tmp_path / "m.yaml"),
        "--env",
        "plain",
        "--run-id",
        "r",
        "--results-dir",
        str(results_dir),
        "--scenario-packages",
        "fake_scenarios",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(RESOURCES)]),
        "COMPAT_EXTRA_PYTHONPATH": str(RESOURCES),
    }
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    doc_path = results_dir / "r" / "plain.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (doc_path.exists() and "fault.a_first_passes" in doc_path.read_text()):
        time.sleep(0.2)
    time.sleep(1.0)  # the worker is now inside the hanging scenario
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "every finished cell is kept" in err
    assert time.monotonic() - signalled < 15  # the worker is killed at once, not waited for (finish() waits 30 s)
    doc = results.read_result(doc_path)
    assert doc.state == "interrupted" and [(c.id, c.status) for c in doc.scenarios] == [
        ("fault.a_first_passes", "pass")
    ]
    leftover = subprocess.run(["pgrep", "-f", str(results_dir)], capture_output=True, text=True).stdout.split()
    assert leftover == []  # the worker (its own process group) died with the run


def test_a_second_command_on_the_same_run_and_environment_is_refused(tmp_path, monkeypatch):
    from harness.documents import locked
    from harness.errors import ResultsError

    with (
        locked(tmp_path / "results" / "run1", "plain"),
        pytest.raises(ResultsError, match="plain is being written by pid"),
    ):
        _offline_run(tmp_path, monkeypatch)
    assert [c.status for c in _offline_run(tmp_path, monkeypatch, selection=["fault.a_*"]).scenarios] == ["pass"]


def test_a_full_disk_ends_in_one_line_and_keeps_the_cells_already_written(tmp_path, monkeypatch, capsys):
    import errno

    from harness import documents
    from harness.cli import main

    real, calls = documents.write_result, []

    def fill_up(path, doc):
        calls.append(path)
        if len(calls) > 2:  # the empty document, then the first cell, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, doc)

    monkeypatch.setattr(documents, "write_result", fill_up)
    monkeypatch.setattr("harness.pipeline.provision", _fake_provision)
    monkeypatch.setenv("COMPAT_EXTRA_PYTHONPATH", str(RESOURCES))
    if str(RESOURCES) not in sys.path:
        sys.path.insert(0, str(RESOURCES))
    (tmp_path / "m.yaml").write_text(textwrap.dedent(MATRIX))
    common = ["--matrix", str(tmp_path / "m.yaml"), "--scenario-packages", "fake_scenarios"]
    code = main(["run", *common, "--env", "plain", "--run-id", "r", "--results-dir", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    kept = results.read_result(tmp_path / "res" / "r" / "plain.json")
    assert [(c.id, c.status) for c in kept.scenarios] == [("fault.k_needs_torch", "skip")]  # written first
