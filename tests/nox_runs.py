"""Integration tests' one way to run a matrix's sessions through nox and to read back what the cells recorded.

Every integration module that measures real environments runs them as a user would (``nox -s <env> ...`` with
``COMPAT_MATRIX`` / ``COMPAT_RESULTS_DIR`` / ``COMPAT_RUN_ID``), then asserts on record values and arrays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import results
from harness.results import EnvironmentResult
from harness.sidecar import npz_key

ROOT = Path(__file__).resolve().parent.parent
#: A cold environment (torch's CUDA build from PyPI) takes minutes; half an hour is a hang.
SESSIONS_TIMEOUT_S = 1800

Run = tuple[Path, dict[str, EnvironmentResult]]


def run_sessions(out: Path, matrix: Path, run_id: str, sessions: Sequence[str]) -> Run:
    """Run ``sessions`` of ``matrix`` into ``out/<run_id>`` and return that folder with its documents."""
    env = {**os.environ, "COMPAT_MATRIX": str(matrix), "COMPAT_RESULTS_DIR": str(out), "COMPAT_RUN_ID": run_id}
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", *sessions]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SESSIONS_TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / run_id, results.load_run(out / run_id)


def value(docs: dict[str, EnvironmentResult], env: str, scenario_id: str, name: str) -> Any:
    """The value a cell recorded under ``name`` (its summary's value: configs, scalars, outcomes)."""
    cell = docs[env].cell(scenario_id)
    assert cell is not None, (env, scenario_id)
    return {r.name: r.value for r in cell.records}[name]


def arrays(run_dir: Path, doc: EnvironmentResult, scenario_id: str, *names: str) -> list[np.ndarray]:
    """The arrays a cell recorded, from its environment's ``.npz``."""
    assert doc.records_file is not None, doc.environment.name
    with np.load(run_dir / doc.records_file) as archive:
        return [np.array(archive[npz_key(scenario_id, name)]) for name in names]


def array(run: Run, env: str, scenario_id: str, name: str) -> np.ndarray:
    run_dir, docs = run
    return arrays(run_dir, docs[env], scenario_id, name)[0]
