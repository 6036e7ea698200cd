"""Merge result folders produced on different machines (CI shards) into one run.

Each environment's document comes from the job that ran it; the relay jobs rewrite the same document with the
consumer results added. Merging copies every document, sidecar, artifact and log into one folder. The same
environment met twice must be the same cells with the same statuses and records (then the relay rows are unioned);
anything else is a conflict, refused with a clear message, as are documents of different schema versions. The
result is exactly what a single-machine run of the same matrix writes.
"""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

from harness import paths
from harness.errors import ResultsError
from harness.results import EnvironmentResult, read_result, write_result

__all__ = ["merge_runs"]


def _schema_version(path: Path) -> object:
    try:
        return json.loads(path.read_text()).get("schema_version")
    except (OSError, ValueError, AttributeError):
        raise ResultsError(f"{path}: not a readable results document") from None


def _cells_signature(doc: EnvironmentResult) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return [(c.id, c.status, tuple((r.name, r.sha256) for r in c.records)) for c in doc.scenarios]


def _merge_docs(path: Path, first: EnvironmentResult, second: EnvironmentResult, where: Path) -> EnvironmentResult:
    name = first.environment.name
    if first.run_id != second.run_id:
        raise ResultsError(f"{where}: {name} belongs to run {second.run_id}, the merge holds run {first.run_id}")
    if _cells_signature(first) != _cells_signature(second):
        raise ResultsError(
            f"{where}: conflicting results for {name}: its cells, statuses or records differ from {path}"
        )
    rows = {(r.producer, r.family, r.format, r.model): r for r in first.relay}
    for row in second.relay:
        key = (row.producer, row.family, row.format, row.model)
        if key in rows and rows[key].outcome != row.outcome:
            raise ResultsError(f"{where}: conflicting relay result for {name} loading {key}")
        rows.setdefault(key, row)
    merged = first if len(first.relay) >= len(second.relay) else second
    merged = merged.model_copy(deep=True)
    merged.relay = sorted(rows.values(), key=lambda r: (r.producer, r.family, r.format, r.model))
    return merged


def _copy_tree(source: Path, target: Path) -> None:
    """Copy files; an existing file must be identical (artifacts and sidecars are written once)."""
    for path in sorted(source.rglob("*")):
        if path.is_symlink():  # a shard is untrusted: its links would copy whatever they point at
            raise ResultsError(f"{path}: a symlink in a shard; refusing to merge it (copy real files only)")
        if not path.is_file():
            continue
        destination = target / path.relative_to(source)
        if destination.exists():
            if path.suffix in (".log", ".json") or "logs" in destination.parts:
                continue  # logs and plans legitimately differ between the env and the relay job
            if not filecmp.cmp(path, destination, shallow=False):
                raise ResultsError(f"{path}: differs from {destination} already in the merge")
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def merge_runs(target: Path, sources: list[Path]) -> dict[str, EnvironmentResult]:
    """Merge run folders ``sources`` into ``target``; returns the merged documents by environment."""
    target.mkdir(parents=True, exist_ok=True)
    versions: dict[object, Path] = {}
    for source in sources:
        if not source.is_dir():
            raise ResultsError(f"{source}: no such results folder")
        for path in sorted(source.glob("*.json")):
            versions.setdefault(_schema_version(path), path)
    if len(versions) > 1:
        listing = ", ".join(f"{v} ({p})" for v, p in versions.items())
        raise ResultsError(f"refusing to merge mixed schema versions: {listing}; re-run the older shards")
    docs: dict[str, EnvironmentResult] = {}
    origin: dict[str, Path] = {}
    for source in sources:
        for path in sorted(source.glob("*.json")):
            doc = read_result(path)
            name = doc.environment.name
            docs[name] = _merge_docs(origin[name], docs[name], doc, path) if name in docs else doc
            origin.setdefault(name, path)
        for sub in ("artifacts", "logs"):
            if (source / sub).is_dir():
                _copy_tree(source / sub, target / sub)
        for sidecar in sorted(source.glob("*.npz")):
            _copy_tree_file(sidecar, target / sidecar.name)
    for name, doc in docs.items():
        write_result(paths.results_file(target, name), doc)  # refuses a name that would leave the folder
    return docs


def _copy_tree_file(path: Path, destination: Path) -> None:
    if path.is_symlink():
        raise ResultsError(f"{path}: a symlink in a shard; refusing to merge it (copy real files only)")
    if destination.exists() and destination.resolve() != path.resolve():
        if not filecmp.cmp(path, destination, shallow=False):
            raise ResultsError(f"{path}: differs from {destination} already in the merge")
        return
    if destination.resolve() != path.resolve():
        shutil.copy2(path, destination)
