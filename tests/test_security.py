"""The security suite: each way a hostile or unlucky input once got through, reproduced and shown refused.

Here: the sandbox itself (no writes outside its folder, no network, its own PIDs, limits), fail-closed when there is
none, a planted pickle and a hostile manifest in the relay, an interpreter that does not exist, and resuming an
interrupted run. Real torch and TensorFlow payloads (a pickle with a marker payload, a SavedModel whose graph
writes a file) run in ``test_security_integration.py``. The other findings have their tests beside the code:

- traversal names in results: ``test_gonogo_cli.py::test_a_results_document_with_an_unsafe_name_never_becomes_a_path``
  and ``::test_a_name_ending_in_a_newline_is_not_safe``; symlinks and outside paths in artifacts and shards:
  ``test_relay.py::test_a_symlinked_artifact_is_never_followed``, ``::test_an_artifact_path_leaving_the_producers_
  folder_is_refused``, ``::test_a_symlinked_or_oddly_named_manifest_is_refused_not_read``,
  ``test_results.py::test_merge_refuses_a_symlink_in_a_shard``;
- alias bomb, huge ``generate``, depth, non-UTF-8: ``test_matrix_bounds.py``; the fuzzer: ``test_matrix_fuzz.py``;
- corrupted results and record archives: ``test_gonogo_cli.py::test_a_corrupt_results_file_is_named_and_every_other_
  environment_still_reported`` and ``::test_a_corrupt_record_archive_is_a_one_line_error``; a truncated artifact:
  ``test_relay.py::test_truncated_artifact_is_a_load_error_not_a_crash``;
- Ctrl-C / SIGTERM, two commands on one run id, a full disk: ``test_pipeline.py::test_sigterm_ends_the_worker_tree_
  and_keeps_the_finished_cells``, ``::test_a_second_command_on_the_same_run_and_environment_is_refused``,
  ``::test_a_full_disk_ends_in_one_line_and_keeps_the_cells_already_written``;
- output: ``test_report_markdown.py::test_untrusted_text_cannot_break_tables_code_or_inject_html``,
  ``test_report_html.py::test_untrusted_text_is_escaped_and_cleaned``, ``test_provision.py::test_redact_hides_
  credentials``, ``test_gonogo_cli.py::test_files_are_written_with_the_users_umask``.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import results
from harness.matrix import load as load_matrix
from harness.sandbox import Sandbox, find_sandbox
from harness.worker import scenario as scenario_mod
from scenarios.relay import consume_entry, file_hashes
from tests.test_pipeline import _offline_run

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = find_sandbox()
needs_sandbox = pytest.mark.skipif(
    not isinstance(SANDBOX, Sandbox), reason=f"{SANDBOX} (scripts/test-prerequisites.sh installs bubblewrap)"
)


def _sandboxed(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    assert isinstance(SANDBOX, Sandbox)
    argv = SANDBOX.wrap([sys.executable, "-c", code], [tmp_path / "scratch"])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, preexec_fn=SANDBOX.limit_resources)


# ------------------------------------------------------------------------------------------------- the sandbox


@needs_sandbox
def test_the_sandbox_writes_only_into_its_scratch_folder(tmp_path):
    outside = tmp_path / "outside.txt"
    code = textwrap.dedent(f"""
        from pathlib import Path
        Path({str(tmp_path / "scratch" / "inside.txt")!r}).write_text("ok")
        try:
            Path({str(outside)!r}).write_text("escaped")
        except OSError as exc:
            print(type(exc).__name__, exc.errno)
    """)
    proc = _sandboxed(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "scratch" / "inside.txt").read_text() == "ok"
    assert not outside.exists() and proc.stdout.split() == ["OSError", "30"]  # EROFS: read-only file system


@needs_sandbox
def test_the_sandbox_has_no_network_not_even_the_hosts_loopback(tmp_path):
    """Its own network namespace; and where the host's loopback works (not under `unshare -rn`), it is refused."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    # no thread to accept: the kernel completes a connection to a listening socket (a thread blocked in accept()
    # where nothing connects, under `unshare -rn`, would outlive the test and keep later ones from forking)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # the control: outside, it connects
        host_loopback = True
    except OSError:
        host_loopback = False
    code = textwrap.dedent(f"""
        import os, socket
        print(os.readlink("/proc/self/ns/net"))
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=5)
            print("connected")
        except OSError as exc:
            print("refused", type(exc).__name__)
    """)
    proc = _sandboxed(tmp_path, code)
    server.close()
    namespace, outcome = proc.stdout.splitlines()[:2]
    assert namespace != os.readlink("/proc/self/ns/net"), proc.stderr
    # where the host's loopback works the refusal is the sandbox's; where it does not, the namespace says enough
    assert outcome.startswith("refused") or not host_loopback, proc.stdout + proc.stderr


@needs_sandbox
def test_the_sandbox_sees_only_its_own_processes_and_no_core_dumps(tmp_path):
    code = "import os, resource\n"
    code += (
        f"try:\n    os.kill({os.getpid()}, 0)\n    print('sees-host')\nexcept ProcessLookupError:\n    print('alone')\n"
    )
    code += "print(resource.getrlimit(resource.RLIMIT_CORE)[1], resource.getrlimit(resource.RLIMIT_FSIZE)[1])"
    proc = _sandboxed(tmp_path, code)
    lines = proc.stdout.split("\n")
    assert lines[0] == "alone" and lines[1] == f"0 {4 << 30}", proc.stdout + proc.stderr


def test_no_working_bwrap_is_a_reason_not_a_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.sandbox.shutil.which", lambda name: None)
    assert find_sandbox.__wrapped__() == (
        "no sandbox: bwrap is not on PATH; install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
    )
    gone = find_sandbox.__wrapped__(str(tmp_path / "missing-bwrap"))
    assert isinstance(gone, str) and gone.startswith("no sandbox:") and "could not be started" in gone
    failing = tmp_path / "bwrap"
    failing.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    failing.chmod(0o755)
    found = find_sandbox.__wrapped__(str(failing))
    assert isinstance(found, str) and "No permissions to create new namespace" in found and "bubblewrap" in found


def test_unsafe_formats_fail_closed_without_a_sandbox(tmp_path, monkeypatch):
    """Opted in, on a machine without a sandbox: the unsafe formats are not loaded, and the cells say why."""
    from harness import pipeline

    matrix_file = tmp_path / "m.yaml"
    matrix_file.write_text('unsafe_formats: true\nenvironments:\n  - {name: e, packages: {six: "1.16.0"}}\n')
    registry = scenario_mod.discover(["scenarios"])
    opted_in = load_matrix(matrix_file, registry)
    monkeypatch.setattr(pipeline, "find_sandbox", lambda: "no sandbox: bwrap is not on PATH; install bubblewrap")
    sandbox, unsafe = pipeline.relay_sandbox(opted_in)
    assert sandbox is None and unsafe.startswith("unsafe_formats is on but this machine has no sandbox")
    matrix_file.write_text('environments:\n  - {name: e, packages: {six: "1.16.0"}}\n')
    sandbox, unsafe = pipeline.relay_sandbox(load_matrix(matrix_file, registry))
    assert sandbox is None and "unsafe_formats is off" in unsafe
    if isinstance(SANDBOX, Sandbox):
        monkeypatch.setattr(pipeline, "find_sandbox", lambda: SANDBOX)
        assert pipeline.relay_sandbox(opted_in) == (SANDBOX, "load")


# ------------------------------------------------------------------------------------------ hostile artifacts


class _Payload:
    """Unpickling this runs its ``__reduce__`` call: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the payload ran"))


def _planted(tmp_path: Path, fmt: str, claims_unsafe: bool) -> tuple[dict, Path, Path]:
    """A producer folder holding a pickle with a marker payload under ``fmt``, hashes and all consistent."""
    marker = tmp_path / "marker.txt"
    folder = tmp_path / "artifacts" / "evil" / "torch" / "tinynet" / fmt
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(FileNotFoundError):  # the control: the file really is a payload (into a missing folder)
        pickle.loads(pickle.dumps(_Payload(tmp_path / "no-such-dir" / "x")))
    entry = {"family": "torch", "model": "tinynet", "format": fmt, "unsafe": claims_unsafe,
             "path": f"torch/tinynet/{fmt}", "files": file_hashes(folder)}  # fmt: skip
    return entry, tmp_path / "artifacts" / "evil", marker


@pytest.mark.parametrize("claims_unsafe", [True, False])
def test_a_planted_pickle_is_verified_then_not_loaded_by_default(tmp_path, claims_unsafe):
    """The manifest may lie about ``unsafe``: the consumer judges the format by its own table."""
    entry, root, marker = _planted(tmp_path, "pickle_unsafe_load", claims_unsafe)
    row = consume_entry(entry, root, "unsafe_formats is off in m.yaml")
    assert row["outcome"] == "skip" and row["how"] == "not-loaded-unsafe" and row["unsafe"] is True
    assert "a full pickle" in row["message"] and "unsafe_formats is off in m.yaml" in row["message"]
    assert not marker.exists()


def test_the_relay_row_keeps_the_consumers_label_not_the_manifests(tmp_path):
    from harness.relay import Manifest, Planned, relay_results

    entry, root, _ = _planted(tmp_path, "pickle_unsafe_load", claims_unsafe=False)
    value = consume_entry(entry, root, "off")
    manifest = Manifest.model_validate({"manifest_version": 1, "producer": "evil", "artifacts": [entry]})
    cell = results.ScenarioResult.model_validate(
        {"id": "relay.consume[evil:torch:pickle_unsafe_load]", "area": "relay", "status": "pass",
         "records": [{"name": "tinynet", "kind": "config", "value": value, "sha256": "0" * 64}]}
    )  # fmt: skip
    [row] = relay_results("c", Planned("evil", "torch", "pickle_unsafe_load"), manifest, cell)
    assert row.unsafe and not row.sandboxed and row.outcome == "skip"


# -------------------------------------------------------------------------------------- environments and runs


def test_an_environment_asking_for_python_3_99_gets_an_env_error_results_file(tmp_path, capsys):
    """Through nox it used to fail before the harness ran, so no results and a silent gap in the report."""
    from harness.cli import main

    (tmp_path / "m.yaml").write_text('environments:\n  - {name: py399, python: "3.99", packages: {six: "1.16.0"}}\n')
    args = ["run", "--matrix", str(tmp_path / "m.yaml"), "--env", "py399", "--run-id", "r"]
    code = main([*args, "--results-dir", str(tmp_path / "res"), "--venv-dir", str(tmp_path / "venv")])
    assert code == 1 and "no Python 3.99 interpreter" in capsys.readouterr().err
    doc = results.read_result(tmp_path / "res" / "r" / "py399.json")
    assert doc.state == "env-error" and "no Python 3.99 interpreter" in doc.env_error.message
    assert doc.scenarios and {c.status for c in doc.scenarios} == {"env-error"}


def test_the_nox_session_of_a_missing_python_writes_its_results_too(tmp_path):
    (tmp_path / "m.yaml").write_text(
        'scenarios: {ids: ["layer_init.*"]}\n'
        'environments:\n  - {name: py399, python: "3.99", packages: {six: "1.16.0"}}\n'
    )
    env = {**os.environ, "COMPAT_MATRIX": str(tmp_path / "m.yaml"), "COMPAT_RESULTS_DIR": str(tmp_path / "res"),
           "COMPAT_RUN_ID": "r"}  # fmt: skip
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", "py399", "--envdir", str(tmp_path)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    doc = results.read_result(tmp_path / "res" / "r" / "py399.json")
    assert doc.state == "env-error" and "no Python 3.99 interpreter" in doc.env_error.message


def test_the_same_run_id_after_an_interruption_runs_only_the_missing_cells(tmp_path, monkeypatch):
    first = _offline_run(tmp_path, monkeypatch)
    ids = [c.id for c in first.scenarios]
    path = tmp_path / "results" / "run1" / "plain.json"
    interrupted = results.read_result(path)
    interrupted.scenarios = interrupted.scenarios[:2]  # as if Ctrl-C came during the third cell
    interrupted.state = "interrupted"
    results.write_result(path, interrupted)
    resumed = _offline_run(tmp_path, monkeypatch)
    assert [c.id for c in resumed.scenarios] == ids and resumed.state == "complete"
    assert resumed.invocations[1].cells == ids[2:]  # what this invocation measured
    origin = {c.id: c.invocation for c in resumed.scenarios}
    assert {origin[i] for i in ids[:2]} == {first.invocations[0].id}
    assert {origin[i] for i in ids[2:]} == {resumed.invocations[1].id}
    again = _offline_run(tmp_path, monkeypatch)  # a completed run re-run measures everything again
    assert again.invocations[2].cells == ids and {c.invocation for c in again.scenarios} == {again.invocations[2].id}
