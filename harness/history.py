"""History across runs: when did a status or a record start being what it is, and is this run complete?

``results/`` holds many runs. The trend view lists, per environment and scenario, the status and a digest of the
records in each run, and the run since which the current state holds. A run that executed no scenario at all, or
fewer cells than the previous run of the same matrix, is flagged: it must never pass silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from harness.errors import ResultsError
from harness.results import EnvironmentResult, collector_paused, load_run

#: ``load_run`` is re-exported: a caller that reads one run beside its history needs both.
__all__ = ["PastDocument", "completeness_flags", "list_runs", "load_run", "new_releases", "trend"]


class _PastRecord(BaseModel):
    name: str
    sha256: str


class _PastCell(BaseModel):
    id: str
    status: str
    records: list[_PastRecord] = Field(default_factory=list)


class _PastResolved(BaseModel):
    latest: dict[str, str] = Field(default_factory=dict)


class _PastEnvironment(BaseModel):
    name: str
    resolved: _PastResolved | None = None


class PastDocument(BaseModel):
    """What history needs of an earlier run's document, and nothing more: when it started, its matrix, its latest
    versions and each cell's status and record digests. pydantic reads only these fields from the file (every
    other key is skipped, never built), so 30 nights of results cost a fraction of reading them in full; the
    fields are the same in every schema version this harness reads."""

    schema_version: Literal[1, 2, 3]
    run_id: str
    started_at: str
    matrix_sha256: str = ""
    environment: _PastEnvironment
    scenarios: list[_PastCell] = Field(default_factory=list)


#: A run as history sees it: the one reported in full, the earlier ones as ``PastDocument``.
Document = EnvironmentResult | PastDocument
Runs = list[tuple[Path, Mapping[str, Document]]]


def _started(docs: Mapping[str, Document]) -> str:
    return min((d.started_at for d in docs.values()), default="")


def _read_past(folder: Path) -> dict[str, Document]:
    """An earlier run's documents by environment, or ``ResultsError`` when one cannot be read (the run is then no
    part of this history: another schema version, or a broken file)."""
    docs: dict[str, Document] = {}
    with collector_paused():
        for path in sorted(folder.glob("*.json")):
            try:
                doc = PastDocument.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                raise ResultsError(f"{path}: not part of the history ({type(exc).__name__})") from None
            docs[doc.environment.name] = doc
    return docs


def list_runs(results_dir: Path, known: Mapping[Path, Mapping[str, Document]] | None = None) -> Runs:
    """Every readable run folder under ``results_dir``, oldest first (by when its environments started).

    ``known`` holds runs the caller has already read (the one being reported), so no run is read twice; the others
    are read as ``PastDocument``.
    """
    seen = {Path(folder).resolve(): docs for folder, docs in (known or {}).items()}
    runs: Runs = []
    for folder in sorted(Path(results_dir).iterdir()) if Path(results_dir).is_dir() else []:
        if not folder.is_dir() or not any(folder.glob("*.json")):
            continue
        try:
            docs = seen[folder.resolve()] if folder.resolve() in seen else _read_past(folder)
        except ResultsError:
            continue  # another schema version or a broken file: not part of this history
        if docs:
            runs.append((folder, docs))
    return sorted(runs, key=lambda item: (_started(item[1]), item[0].name))


def _cells(docs: Mapping[str, Document]) -> int:
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
    joined = "|".join(f"{r.name}={r.sha256}" for r in sorted(cell.records, key=_by_name))
    return _short_digest(joined)


def _by_name(record: Any) -> str:
    return str(record.name)


@lru_cache(maxsize=4096)
def _short_digest(joined: str) -> str:
    """The digest of a cell's records, worked out once per distinct set (most cells agree across environments)."""
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def trend(results_dir: Path, last: int = 20, runs: Runs | None = None) -> dict[str, Any]:
    """Status and record digest per environment x scenario over the last ``last`` runs, and since when each holds."""
    runs = (list_runs(results_dir) if runs is None else runs)[-last:]
    series: dict[tuple[str, str], list[dict[str, str]]] = {}
    points: dict[tuple[str, str, str], dict[str, str]] = {}  # one point per run, status and digest: read, never changed
    for folder, docs in runs:
        run = folder.name
        for env, doc in docs.items():
            for cell in doc.scenarios:
                key = (run, cell.status, _digest(cell))
                point = points.get(key) or points.setdefault(key, {"run": key[0], "status": key[1], "records": key[2]})
                series.setdefault((env, cell.id), []).append(point)
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
