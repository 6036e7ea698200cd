"""Names and paths of a run folder, defined once: every reader and writer of ``results/<run>/`` asks here.

Environment names hold dots (``tf2.21-keras3``), so file names are built as strings, never with
``Path.with_suffix`` (which would cut ``tf2.21-keras3`` and ``tf2.16-keras3`` to the same ``tf2``).
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import ResultsError

__all__ = [
    "artifacts_dir",
    "is_safe_name",
    "ledger_file",
    "logs_dir",
    "path_stem",
    "records_file",
    "results_file",
    "verdict_file",
]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def is_safe_name(name: str) -> bool:
    """One plain file name of at most 100 characters: letters, digits, '.', '_', '+', '-'; never '..', '/' nor '__'
    (it joins a path's two names)."""
    return len(name) <= 100 and bool(_SAFE_NAME.fullmatch(name)) and ".." not in name and "__" not in name


def _name(env: str) -> str:
    """``env`` itself, or a refusal: names also arrive from results documents, which are untrusted."""
    if not is_safe_name(env):
        raise ResultsError(f"environment name {env!r} is not safe as a file name; refusing to write a path with it")
    return env


def results_file(run_dir: Path, env: str) -> Path:
    return Path(run_dir) / f"{_name(env)}.json"


def records_file(run_dir: Path, env: str) -> Path:
    return Path(run_dir) / f"{_name(env)}.npz"


def logs_dir(run_dir: Path, env: str) -> Path:
    return Path(run_dir) / "logs" / _name(env)


def artifacts_dir(run_dir: Path, env: str | None = None) -> Path:
    root = Path(run_dir) / "artifacts"
    return root / _name(env) if env else root


def path_stem(baseline: str, candidate: str) -> str:
    """One upgrade path's file stem, naming both environments in full (``tf2.15-keras2__tf2.21-keras3``)."""
    return f"{_name(baseline)}__{_name(candidate)}"


def ledger_file(run_dir: Path, baseline: str, candidate: str) -> Path:
    return Path(run_dir) / "ledger" / f"{path_stem(baseline, candidate)}.json"


def verdict_file(run_dir: Path, baseline: str, candidate: str, suffix: str = "json") -> Path:
    return Path(run_dir) / "gonogo" / f"{path_stem(baseline, candidate)}.{suffix}"
