"""The worker side of the boundary runs where only the standard library, numpy and the frameworks exist.

Every module of ``harness.worker`` is imported in a bare interpreter (``-I -S``: no site-packages, no user paths)
whose import system refuses any top-level module but the standard library, numpy and ``harness``; numpy must not
even be imported until a record needs it. The same happens under Python 3.9, the oldest interpreter a supported
framework release may run on, without numpy at all, and a small scenario runs there end to end.
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import harness.worker
from harness.supervisor import Supervisor, WorkerSpec
from harness.worker.protocol import CellResult

ROOT = Path(__file__).resolve().parent.parent
WORKER_MODULES = sorted(
    f"harness.worker.{m.name}" for m in pkgutil.iter_modules(harness.worker.__path__) if m.name != "__main__"
)
STDLIB = sorted(sys.stdlib_module_names)

#: Runs in the bare interpreter: argv = allowed top-level names, sys.path entries, modules, [scenario folder].
CHILD = r"""
import importlib, json, sys


class Boundary:
    allowed = set(json.loads(sys.argv[1]))

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in self.allowed:
            raise ImportError("outside the worker boundary: " + name)
        return None


sys.meta_path.insert(0, Boundary())
sys.path[:0] = json.loads(sys.argv[2])
for module in json.loads(sys.argv[3]):
    importlib.import_module(module)
report = {"imported": sorted({m.partition(".")[0] for m in sys.modules})}
if len(sys.argv) > 4:
    from pathlib import Path
    from harness.worker.loop import run_scenario
    from harness.worker.scenario import discover

    sys.path.insert(0, sys.argv[4])
    (Path(sys.argv[4]) / "scratch").mkdir()
    entry = discover(["tiny_scenarios"])["tiny.probe"]
    report["result"] = run_scenario(entry, Path(sys.argv[4]) / "scratch", 1337, context={"environment": "bare"})
print("REPORT " + json.dumps(report))
"""

TINY = """
import logging
import warnings

from harness.worker.scenario import scenario


@scenario(area="tiny")
def probe(ctx):
    ctx.record("config", {"rate": 0.5, "name": ctx.environment})
    ctx.record("flag", True)
    if ARRAYS:
        import numpy

        ctx.record("values", numpy.arange(4, dtype=numpy.float32))
    warnings.warn("old spelling", DeprecationWarning, stacklevel=1)
    logging.getLogger("absl").warning("logged through absl")
    ctx.check("sum", sum(range(4)) == 6, total=6)
"""


def _tiny_scenarios(folder: Path, arrays: bool) -> Path:
    package = folder / "tiny_scenarios"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "probe.py").write_text(f"ARRAYS = {arrays}\n" + TINY)
    return folder


def _run_bare(python: str, allowed: list[str], paths: list[str], scenarios: Path | None = None) -> dict:
    args = [python, "-I", "-S", "-c", CHILD, json.dumps(allowed), json.dumps(paths), json.dumps(WORKER_MODULES)]
    proc = subprocess.run([*args, *([str(scenarios)] if scenarios else [])], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :])


def _is_python39(candidate: str) -> bool:
    """Whether ``candidate`` runs and is 3.9 (a pyenv shim for a version that is not global does not run)."""
    probe = [candidate, "-I", "-c", "import sys; print(sys.version_info[:2] == (3, 9))"]
    return subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "True"


def _python39() -> str | None:
    """A Python 3.9 from pyenv's versions folder or the PATH; None when the machine has none."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        versions = Path(root) / "versions" if root else None
        if versions is not None and versions.is_dir():
            candidates += [str(p / "bin" / "python") for p in sorted(versions.glob("3.9*"), reverse=True)]
    candidates += [c for c in (shutil.which("python3.9"),) if c]
    return next((c for c in candidates if os.access(c, os.X_OK) and _is_python39(c)), None)


def _check_tiny_result(result: dict, arrays: bool) -> None:
    assert set(result) == set(CellResult.__annotations__)
    assert (result["status"], result["message"]) == ("pass", "")
    records = {r["name"]: r for r in result["records"]}
    assert records["config"]["value"] == {"rate": 0.5, "name": "bare"}
    assert ("values" in records) is arrays
    assert [(w["source"], w["message"], w["framework"]) for w in result["warnings"]] == [
        ("warnings", "old spelling", False),
        ("logging", "logged through absl", False),
    ]


def test_worker_modules_import_with_only_stdlib_and_numpy_and_numpy_lazily():
    numpy_site = str(Path(np.__file__).resolve().parent.parent)
    report = _run_bare(sys.executable, [*STDLIB, "harness", "numpy"], [str(ROOT), numpy_site])
    assert "harness" in report["imported"]
    assert "numpy" not in report["imported"]  # imported when a record needs it, never at import time


def test_a_scenario_with_arrays_runs_in_the_bare_interpreter(tmp_path):
    numpy_site = str(Path(np.__file__).resolve().parent.parent)
    folder = _tiny_scenarios(tmp_path, arrays=True)
    report = _run_bare(sys.executable, [*STDLIB, "harness", "numpy", "tiny_scenarios"], [str(ROOT), numpy_site], folder)
    _check_tiny_result(report["result"], arrays=True)
    assert (folder / "scratch" / "tiny.probe.npz").exists()


def test_the_boundary_hook_refuses_what_the_worker_must_not_import():
    # The check above is only worth something if the hook really refuses: pydantic is beside numpy here.
    args = [sys.executable, "-I", "-S", "-c", CHILD, json.dumps([*STDLIB, "numpy"])]
    paths = [str(ROOT), str(Path(np.__file__).resolve().parent.parent)]
    proc = subprocess.run([*args, json.dumps(paths), json.dumps(["pydantic"])], capture_output=True, text=True)
    assert proc.returncode != 0 and "outside the worker boundary: pydantic" in proc.stderr


PY39 = _python39()
needs_39 = pytest.mark.skipif(PY39 is None, reason="no Python 3.9 interpreter on this machine (pyenv or PATH)")


@needs_39
def test_worker_imports_and_runs_a_scenario_under_python_39_without_numpy(tmp_path):
    assert PY39 is not None
    folder = _tiny_scenarios(tmp_path, arrays=False)
    report = _run_bare(PY39, [*STDLIB, "harness", "tiny_scenarios"], [str(ROOT)], folder)
    assert "numpy" not in report["imported"]
    result = report["result"]
    _check_tiny_result(result, arrays=False)
    assert result["seeding"] == ["random.seed(1337)"]  # no numpy here: nothing else to seed


@needs_39
def test_the_worker_process_under_python_39_reports_through_the_supervisor(tmp_path):
    assert PY39 is not None
    folder = _tiny_scenarios(tmp_path, arrays=False)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)])}
    spec = WorkerSpec(
        python=PY39,
        env=env,
        scratch=tmp_path / "scratch",
        log_path=tmp_path / "scratch" / "worker.log",
        scenario_packages=("tiny_scenarios",),
        startup_timeout=60,
        context={"environment": "bare"},
    )
    results: list[dict] = []
    stats = Supervisor(spec, {"tiny.probe": 60, "tiny.gone": 60}, {}, results.append).run(["tiny.probe", "tiny.gone"])
    assert stats.python_version.startswith("3.9.")
    _check_tiny_result(results[0], arrays=False)
    assert (results[1]["status"], results[1]["area"]) == ("error", "tiny")
