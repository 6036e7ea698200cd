"""Offline: the sub-process plumbing of scenarios.distribution (no framework is imported).

The distribution scenarios run their framework part in one fresh interpreter: these tests hold the promises the
cells depend on with real processes (the tool's own Python stands in for an environment's): the result travels as
one marked JSON line among other output, a timeout kills the whole process group (a forked grandchild included),
nothing the sub-process forked outlives it, an exception inside becomes an ``error`` result, and a machine whose
loopback refuses TCP is recognised before gloo is started (checked in a real network namespace with ``lo`` down).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.worker.scenario import Context, Skipped
from scenarios import distribution
from scenarios.distribution import ChildOutcome, parse_payload, run_child
from scenarios.mixed_precision import dtype_name

MARK = distribution.RESULT_MARK


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone: it runs nothing and is only waiting for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_the_last_marked_line_is_the_result_whatever_else_is_printed():
    stdout = f'banner\n{MARK}{{"a": 1}}\nnoise\n{MARK}{{"a": 2}}\ntrailing log\n'
    assert parse_payload(stdout) == {"a": 2}


@pytest.mark.parametrize("stdout", ["", "no mark here\n", f"{MARK}{{broken\n", f"{MARK}[1, 2]\n", f" {MARK}{{}}\n"])
def test_no_usable_result_line_is_none(stdout):
    assert parse_payload(stdout) is None


def test_a_child_result_travels_back_through_stdout():
    code = f"print('framework chatter'); import json; print({MARK!r} + json.dumps({{'x': [1.5, 2]}}))"
    outcome = run_child(code, timeout=30)
    assert outcome.payload == {"x": [1.5, 2]}
    assert outcome.returncode == 0 and not outcome.timed_out and outcome.problem() is None


def test_the_child_imports_these_scenarios_whatever_pythonpath_it_inherited():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "from scenarios.distribution import child_main; child_main(lambda: {'ok': True})"
    assert run_child(code, timeout=30, env=env).payload == {"ok": True}


def test_the_child_ends_once_its_result_is_out_without_running_a_destructor_that_hangs():
    # torch 2.13's DDP wrapper deadlocks in its destructor: a rank that dropped it at exit hung until the cell's
    # timeout (found in CI). The child keeps such objects alive and must leave without destroying them.
    code = (
        "import time\n"
        "from scenarios.distribution import child_main\n"
        "class Hangs:\n"
        "    def __del__(self):\n"
        "        time.sleep(120)\n"
        "kept = Hangs()\n"
        "child_main(lambda: {'ok': True})\n"
    )
    outcome = run_child(code, timeout=20)
    assert outcome.payload == {"ok": True}
    assert not outcome.timed_out and outcome.returncode == 0


def test_an_exception_in_the_child_body_comes_back_as_an_error_result():
    code = "from scenarios.distribution import child_main; child_main(lambda: {'x': 1 // 0})"
    payload = run_child(code, timeout=30).payload
    assert payload is not None and payload["error"].startswith("ZeroDivisionError")


def test_a_timeout_kills_the_whole_process_group_grandchildren_included(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time, pathlib\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    started = time.monotonic()
    outcome = run_child(code, timeout=3)
    assert outcome.timed_out and outcome.returncode is None and outcome.payload is None
    assert time.monotonic() - started < 30
    assert "timed out after" in (outcome.problem() or "")
    assert wait_gone(int(pid_file.read_text()))


def test_nothing_the_child_started_outlives_it(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, pathlib\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL)\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
        f"print({MARK!r} + '{{}}')\n"
    )
    outcome = run_child(code, timeout=30)
    assert outcome.payload == {} and outcome.returncode == 0
    assert wait_gone(int(pid_file.read_text()))


def test_a_child_that_dies_without_a_result_says_how():
    outcome = run_child("import sys; sys.stderr.write('boom happened\\n'); sys.exit(3)", timeout=30)
    assert outcome.returncode == 3 and outcome.payload is None
    assert outcome.problem() == "sub-process exited with 3 and no result line: boom happened"


def test_a_child_of_a_killed_parent_dies_with_it(tmp_path):
    """The worker can be killed on a cell timeout: the sub-process (own session) must not stay behind."""
    pid_file = tmp_path / "child.pid"
    child = f"import os, time, pathlib; from scenarios.distribution import die_with_parent; die_with_parent(); pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(120)"  # noqa: E501
    parent_code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"
    env = distribution.child_environment(os.environ)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child_pid = int(pid_file.read_text())
        parent.kill()  # the parent alone, not its group: only the death signal can end the child
        parent.wait()
        assert wait_gone(child_pid)
    finally:
        distribution.kill_group(parent.pid)


def test_outcome_without_result_names_the_last_stderr_lines():
    outcome = ChildOutcome(None, 1, "a\nb\nc\nd\n", 1.0, False)
    assert outcome.problem() == "sub-process exited with 1 and no result line: b | c | d"


def test_loopback_works_here():
    assert distribution.loopback_refusal() is None


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_network_namespace_with_loopback_down_is_refused_before_gloo_starts():
    """``unshare -rn``: a new network namespace, where ``lo`` exists but is down (bind works, connect does not)."""
    code = "from scenarios.distribution import loopback_refusal; print(loopback_refusal())"
    env = distribution.child_environment(os.environ)
    proc = subprocess.run(["unshare", "-rn", sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"unshare refused here: {proc.stderr.strip()}")
    assert proc.stdout.startswith("gloo needs TCP on 127.0.0.1"), proc.stdout + proc.stderr
    assert "Network is unreachable" in proc.stdout


def test_the_child_pythonpath_puts_this_repository_first_once():
    root = str(Path(distribution.__file__).resolve().parent.parent)
    env = distribution.child_environment({"PYTHONPATH": os.pathsep.join(["/elsewhere", root]), "X": "1"})
    assert env["PYTHONPATH"].split(os.pathsep) == [root, "/elsewhere"] and env["X"] == "1"


def test_dtype_names_read_the_same_from_numpy_and_from_text():
    assert dtype_name(np.dtype("float16")) == "float16"
    assert dtype_name("bfloat16") == "bfloat16"
    assert dtype_name("torch.bfloat16") == "bfloat16"  # a torch dtype prints as torch.<name>


def test_flat_keeps_the_order_of_every_value():
    assert distribution.flat([np.array([[1, 2], [3, 4]]), np.array([5.5])]) == [1.0, 2.0, 3.0, 4.0, 5.5]


def test_a_sub_process_timeout_is_this_cells_error_with_the_seconds_recorded():
    ctx = Context("distribution.probe")
    with pytest.raises(RuntimeError, match=r"sub-process timed out after \d+ s; its process group was killed"):
        distribution.child_result(ctx, "import time; time.sleep(60)", timeout=2)
    kind, seconds = ctx.records["subprocess_seconds"]
    assert kind == "info" and 2 <= seconds < 30


def test_a_skip_or_an_error_reported_by_the_sub_process_becomes_the_cells():
    ctx = Context("distribution.probe")
    skip = "from scenarios.distribution import child_main; child_main(lambda: {'skip': 'no loopback'})"
    with pytest.raises(Skipped, match="no loopback"):
        distribution.child_result(ctx, skip, timeout=30)
    error = "from scenarios.distribution import child_main; child_main(lambda: {'x': 1 // 0})"
    with pytest.raises(RuntimeError, match="in the sub-process: ZeroDivisionError"):
        distribution.child_result(Context("distribution.probe"), error, timeout=30)
