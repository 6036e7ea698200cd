"""Fault injection: crashes, aborts, hangs, exceptions and exits are contained, and later scenarios still run."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.supervisor import Supervisor, WorkerSpec, stuck_at
from harness.worker import scenario as scenario_mod
from harness.worker.protocol import CellResult

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "tests" / "resources"


def _discover():
    sys.path.insert(0, str(RESOURCES))
    return scenario_mod.discover(["fake_scenarios"])


def _spec(tmp_path: Path, environ: Mapping[str, str], scenarios_root: Path, package: str, context: dict[str, str]):
    """A worker in the tool's own interpreter, running the scenarios of ``package`` found under ``scenarios_root``."""
    return WorkerSpec(
        python=sys.executable,
        env=dict(environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(scenarios_root)])),
        scratch=tmp_path / "scratch",
        log_path=tmp_path / "scratch" / "worker.log",
        scenario_packages=(package,),
        startup_timeout=60,
        context=context,
    )


def run_fakes(
    tmp_path: Path, ids: list[str], timeouts: dict[str, float] | None = None, context: dict[str, str] | None = None
):
    registry = _discover()
    spec = _spec(tmp_path, os.environ, RESOURCES, "fake_scenarios", context or {})
    results: list[dict] = []
    base = {i: scenario_mod.split_id(i)[0] for i in ids}
    limits = {i: (timeouts or {}).get(i, registry[base[i]].timeout or 60) if base[i] in registry else 60 for i in ids}
    areas = {i: registry[base[i]].area for i in ids if base[i] in registry}
    stats = Supervisor(spec, limits, areas, results.append).run(ids)
    return {r["id"]: r for r in results}, [r["id"] for r in results], stats


ALL = [
    "fault.a_first_passes",
    "fault.b_segfault",
    "fault.c_abort",
    "fault.d_hang",
    "fault.e_raises",
    "fault.f_sys_exit",
    "fault.g_os_exit",
    "fault.h_swallowed_skip",
    "fault.i_swallowed_check",
    "fault.j_warns",
    "fault.z_last_passes",
]


def test_every_fault_is_contained_and_the_rest_still_run(tmp_path):
    by_id, order, stats = run_fakes(tmp_path, ALL)
    assert order == ALL  # every scenario reported exactly once, in order
    status = {k: v["status"] for k, v in by_id.items()}
    assert status == {
        "fault.a_first_passes": "pass",
        "fault.b_segfault": "crash",
        "fault.c_abort": "crash",
        "fault.d_hang": "timeout",
        "fault.e_raises": "error",
        "fault.f_sys_exit": "error",
        "fault.g_os_exit": "crash",
        "fault.h_swallowed_skip": "skip",
        "fault.i_swallowed_check": "fail",
        "fault.j_warns": "pass",
        "fault.z_last_passes": "pass",
    }
    assert "SIGSEGV" in by_id["fault.b_segfault"]["message"]
    assert "Segmentation fault" in by_id["fault.b_segfault"]["output_tail"]  # faulthandler's report, kept
    assert "SIGABRT" in by_id["fault.c_abort"]["message"]
    assert "timeout of 2 s" in by_id["fault.d_hang"]["message"]
    hang_line = 1 + (RESOURCES / "fake_scenarios" / "faults.py").read_text().splitlines().index("    time.sleep(120)")
    assert by_id["fault.d_hang"]["message"].endswith(
        f"stuck in d_hang ({RESOURCES}/fake_scenarios/faults.py:{hang_line})"
    )
    assert 2 <= by_id["fault.d_hang"]["duration_s"] < 30
    assert by_id["fault.e_raises"]["message"] == "ValueError: this scenario is broken"
    assert "raise ValueError" in by_id["fault.e_raises"]["traceback"]
    assert by_id["fault.f_sys_exit"]["message"] == "scenario called sys.exit(3)"
    assert "exited with code 7" in by_id["fault.g_os_exit"]["message"]
    assert by_id["fault.h_swallowed_skip"]["message"] == "needs something this environment lacks"
    assert "must_hold: arithmetic changed" in by_id["fault.i_swallowed_check"]["message"]
    assert by_id["fault.i_swallowed_check"]["checks"][0]["values"] == {"left": 2, "right": 3}
    assert by_id["fault.j_warns"]["warnings"] == [
        {
            "source": "warnings",
            "category": "DeprecationWarning",
            "message": "this API is deprecated",
            "module": "fake_scenarios.faults",
            "framework": False,
        }
    ]
    assert all(set(r) == set(CellResult.__annotations__) for r in by_id.values())  # crash cells included
    # one worker at the start, plus one after each crash or timeout (segfault, abort, hang, os._exit)
    assert stats.worker_starts == 5


def test_one_worker_runs_everything_when_nothing_crashes(tmp_path):
    by_id, _, stats = run_fakes(tmp_path, ["fault.a_first_passes", "fault.e_raises", "fault.z_last_passes"])
    assert stats.worker_starts == 1
    first = by_id["fault.a_first_passes"]
    assert "hello from stdout" in first["output_tail"] and "hello from stderr" in first["output_tail"]
    records = {r["name"]: r for r in first["records"]}
    assert records["values"]["shape"] == [2, 3] and records["values"]["max"] == 5.0
    assert records["values"]["in_npz"] is True
    assert records["order"]["kind"] == "ordering" and records["order"]["value"] == [2, 0, 1]
    assert records["config"]["value"] == {"momentum": 0.99, "epsilon": 0.001}
    assert records["rate"]["kind"] == "scalar" and records["rate"]["value"] == 0.5
    assert (tmp_path / "scratch" / "fault.a_first_passes.npz").exists()
    assert first["seeding"][:2] == ["random.seed(1337)", "numpy.random.seed(1337)"]


def test_worker_that_cannot_start_marks_every_cell(tmp_path):
    spec = WorkerSpec(
        python=sys.executable,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        scratch=tmp_path / "s",
        log_path=tmp_path / "s" / "worker.log",
        scenario_packages=("no_such_package_anywhere",),
    )
    results: list[dict] = []
    Supervisor(spec, {"x.a": 5, "x.b": 5}, {}, results.append).run(["x.a", "x.b"])
    assert [r["status"] for r in results] == ["crash", "crash"]
    assert "exited with code 1 before running any scenario" in results[0]["message"]
    assert "No module named 'no_such_package_anywhere'" in results[0]["output_tail"]


def test_unknown_scenario_is_a_full_error_cell_the_orchestrator_accepts(tmp_path):
    # Regression: the worker used to send only id/status/message, which the results model rejected (no area).
    by_id, order, _ = run_fakes(tmp_path, ["fault.no_such_probe", "fault.z_last_passes"])
    assert order == ["fault.no_such_probe", "fault.z_last_passes"]
    missing = by_id["fault.no_such_probe"]
    assert set(missing) == set(CellResult.__annotations__)
    assert (missing["status"], missing["area"]) == ("error", "fault")
    assert "'fault.no_such_probe' not found in the worker" in missing["message"]
    assert by_id["fault.z_last_passes"]["status"] == "pass"  # the worker went on


CONTEXT_PROBE = """
import json
from harness.worker.scenario import scenario


def _text(path):
    return None if path is None else str(path)


@scenario(area="probe")
def context(ctx):
    folders = {"artifacts_dir": _text(ctx.artifacts_dir), "relay_source": _text(ctx.relay_source)}
    ctx.note(json.dumps({"environment": ctx.environment, **folders}))
"""


def _run_context_probe(tmp_path: Path, context: dict[str, str], environ: dict[str, str]) -> dict:
    package = tmp_path / "pkg" / "ctx_scenarios"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "probes.py").write_text(CONTEXT_PROBE)
    spec = _spec(tmp_path, environ, tmp_path / "pkg", "ctx_scenarios", context)
    results: list[dict] = []
    Supervisor(spec, {"probe.context": 60}, {}, results.append).run(["probe.context"])
    return json.loads(results[0]["notes"][0])


def test_context_travels_in_the_plan_not_the_environment(tmp_path):
    context = {"environment": "envA", "artifacts_dir": str(tmp_path / "art")}
    stale = {**os.environ, "COMPAT_ENV_NAME": "stale", "COMPAT_RELAY_SOURCE": "/stale"}
    seen = _run_context_probe(tmp_path, context, stale)
    assert seen == {"environment": "envA", "artifacts_dir": str(tmp_path / "art"), "relay_source": None}
    assert json.loads((tmp_path / "scratch" / "plan-1.json").read_text())["context"] == context


def test_a_plan_without_context_gives_none_whatever_the_environment_says(tmp_path):
    old = {**os.environ, "COMPAT_ENV_NAME": "envB", "COMPAT_RELAY_SOURCE": str(tmp_path / "src")}
    seen = _run_context_probe(tmp_path, {}, old)
    assert seen == {"environment": "", "artifacts_dir": None, "relay_source": None}


def test_unknown_context_key_is_refused():
    with pytest.raises(ValueError, match="unknown worker context keys"):
        WorkerSpec(python="python", env={}, scratch=Path("s"), log_path=Path("s/l"), context={"artifact_dir": "x"})


# What faulthandler writes (documented format: one block per thread, innermost frame first), with a helper thread
# listed before the main one, as happens when the signal lands while another thread holds the GIL.
DUMP = """some output the scenario printed
Thread 0x00007f0000000001 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 327 in wait
  File "/usr/lib/python3.11/threading.py", line 1002 in _bootstrap

Current thread 0x00007f0000000002 (most recent call first):
  File "/venv/lib/torch/distributed/c10d.py", line 1711 in init_process_group
  File "/repo/scenarios/distribution.py", line 403 in _single_rank_ddp
  File "/repo/harness/worker/loop.py", line 180 in run_scenario
  File "/repo/harness/worker/loop.py", line 270 in main
"""


def test_stuck_at_names_the_main_threads_innermost_frame():
    assert stuck_at(DUMP) == "init_process_group (/venv/lib/torch/distributed/c10d.py:1711)"


def test_stuck_at_without_a_dump_says_nothing():
    assert stuck_at('Traceback (most recent call last):\n  File "x.py", line 3, in f\n') is None
    assert stuck_at("") is None
