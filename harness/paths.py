"""Names and paths of a run folder, defined once: every reader and writer of ``results/<run>/`` asks here.

Environment names hold dots (``tf2.21-keras3``), so file names are built as strings, never with
``Path.with_suffix`` (which would cut ``tf2.21-keras3`` and ``tf2.16-keras3`` to the same ``tf2``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["artifacts_dir", "ledger_file", "logs_dir", "path_stem", "records_file", "results_file", "verdict_file"]


def results_file(run_dir: Path, env: str) -> Path:
    return Path(run_dir) / f"{env}.json"


def records_file(run_dir: Path, env: str) -> Path:
    return Path(run_dir) / f"{env}.npz"


def logs_dir(run_dir: Path, env: str) -> Path:
    return Path(run_dir) / "logs" / env


def artifacts_dir(run_dir: Path, env: str | None = None) -> Path:
    root = Path(run_dir) / "artifacts"
    return root / env if env else root


def path_stem(baseline: str, candidate: str) -> str:
    """One upgrade path's file stem, naming both environments in full (``tf2.15-keras2__tf2.21-keras3``)."""
    return f"{baseline}__{candidate}"


def ledger_file(run_dir: Path, baseline: str, candidate: str) -> Path:
    return Path(run_dir) / "ledger" / f"{path_stem(baseline, candidate)}.json"


def verdict_file(run_dir: Path, baseline: str, candidate: str, suffix: str = "json") -> Path:
    return Path(run_dir) / "gonogo" / f"{path_stem(baseline, candidate)}.{suffix}"
