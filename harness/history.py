"""History across runs: when did a status or a record start being what it is, and is this run complete?

``results/`` holds many runs. The trend view lists, per environment and scenario, the status and a digest of the
records in each run, and the run since which the current state holds. A run that executed no scenario at all, or
fewer cells than the previous run of the same matrix, is flagged: it must never pass silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.results import EnvironmentResult, load_run

__all__ = ["completeness_flags", "list_runs", "new_releases", "trend"]


def _started(docs: dict[str, EnvironmentResult]) -> str:
    return min((d.started_at for d in docs.values()), default="")


Runs = list[tuple[Path, dict[str, EnvironmentResult]]]


def list_runs(results_dir: Path, known: Mapping[Path, dict[str, EnvironmentResult]] | None = None) -> Runs:
    """Every readable run folder under ``results_dir``, oldest first (by when its environments started).

    ``known`` holds runs the caller has already read (the one being reported), so no run is read twice.
    """
    seen = {Path(folder).resolve(): docs for folder, docs in (known or {}).items()}
    runs = []
    for folder in sorted(Path(results_dir).iterdir()) if Path(results_dir).is_dir() else []:
        if not folder.is_dir() or not any(folder.glob("*.json")):
            continue
        try:
            docs = seen[folder.resolve()] if folder.resolve() in seen else load_run(folder)
        except ResultsError:
            continue  # another schema version or a broken file: not part of this history
        if docs:
            runs.append((folder, docs))
    return sorted(runs, key=lambda item: (_started(item[1]), item[0].name))


def _cells(docs: dict[str, EnvironmentResult]) -> int:
    return sum(len(d.scenarios) for d in docs.values())


def completeness_flags(
    run_dir: Path, docs: dict[str, EnvironmentResult], results_dir: Path, runs: Runs | None = None
) -> list[str]:
    """Loud problems with the run as a whole: nothing executed, or fewer cells than the last run of its matrix."""
    flags = [
        f"the run of {name} was interrupted (Ctrl-C or SIGTERM): {len(d.scenarios)} finished cells kept"
        for name, d in docs.items()
        if d.state == "interrupted"
    ]
    executed = sum(len(d.ran) for d in docs.values())
    if executed == 0:
        flags.append(f"run {run_dir.name} executed no scenario at all ({_cells(docs)} cells, none ran)")
    sha = next((d.matrix_sha256 for d in docs.values() if d.matrix_sha256), "")
    previous = [
        (folder, other)
        for folder, other in (list_runs(results_dir) if runs is None else runs)
        if folder.resolve() != Path(run_dir).resolve()
        and _started(other) < _started(docs)
        and sha
        and any(d.matrix_sha256 == sha for d in other.values())
    ]
    if previous:
        folder, other = previous[-1]
        if _cells(docs) < _cells(other):
            flags.append(
                f"run {run_dir.name} has {_cells(docs)} cells, fewer than the {_cells(other)} of the previous run "
                f"of the same matrix ({folder.name}): environments or scenarios went missing"
            )
    return flags


def _digest(cell: Any) -> str:
    joined = "|".join(f"{r.name}={r.sha256}" for r in sorted(cell.records, key=lambda r: r.name))
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def trend(results_dir: Path, last: int = 20, runs: Runs | None = None) -> dict[str, Any]:
    """Status and record digest per environment x scenario over the last ``last`` runs, and since when each holds."""
    runs = (list_runs(results_dir) if runs is None else runs)[-last:]
    series: dict[tuple[str, str], list[dict[str, str]]] = {}
    for folder, docs in runs:
        for env, doc in docs.items():
            for cell in doc.scenarios:
                series.setdefault((env, cell.id), []).append(
                    {"run": folder.name, "status": cell.status, "records": _digest(cell)}
                )
    entries = []
    for (env, scenario), history in sorted(series.items()):
        current = history[-1]
        since = current["run"]
        for point in reversed(history):
            if (point["status"], point["records"]) != (current["status"], current["records"]):
                break
            since = point["run"]
        entries.append(
            {
                "environment": env,
                "scenario": scenario,
                "since": since,
                "history": history,
                "changed": since != history[0]["run"],
            }
        )
    return {"runs": [folder.name for folder, _ in runs], "entries": entries}


def new_releases(
    run_dir: Path, docs: dict[str, EnvironmentResult], results_dir: Path, runs: Runs | None = None
) -> list[dict[str, str]]:
    """Packages pinned to ``latest`` that resolved to another version than in the previous run of that environment."""
    found = []
    earlier = [
        (folder, other)
        for folder, other in (list_runs(results_dir) if runs is None else runs)
        if folder.resolve() != Path(run_dir).resolve() and _started(other) < _started(docs)
    ]
    for env, doc in docs.items():
        resolved = doc.environment.resolved
        if resolved is None or not resolved.latest:
            continue
        previous = next((o[env] for _, o in reversed(earlier) if env in o and o[env].environment.resolved), None)
        if previous is None or previous.environment.resolved is None:
            continue
        before = previous.environment.resolved.latest
        for package, version in resolved.latest.items():
            if package in before and before[package] != version:
                found.append(
                    {
                        "environment": env,
                        "package": package,
                        "version": version,
                        "previous": before[package],
                        "previous_run": previous.run_id,
                    }
                )
    return found
