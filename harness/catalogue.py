"""The scenario catalogue: every scenario, what change it catches, where it runs and the records it writes.

Gathered from the registry (ids, areas, requirements, docstrings) and from one run's results: where each scenario
ran or skipped (and why) and which records it wrote are read from what really happened in the environments, not
from what a docstring promises, since records are often named at run time (one per layer, per epoch, per model).
Formatting lives in ``harness.report.catalogue``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.relay import CONSUME_ID
from harness.results import EnvironmentResult
from harness.worker.scenario import Scenario, split_id

__all__ = ["CatalogueEntry", "catches", "gather"]


@dataclass
class CatalogueEntry:
    """One scenario as the catalogue shows it."""

    id: str
    area: str
    catches: str
    requires: tuple[str, ...]
    runs_in: list[str] = field(default_factory=list)
    skips: dict[str, list[str]] = field(default_factory=dict)  # reason -> environments
    records: dict[str, str] = field(default_factory=dict)  # record name (or pattern) -> kind
    cells: int = 0


def catches(doc: str) -> str:
    """The docstring's first paragraph on one line: by the house rule, it names the change the scenario catches."""
    paragraph = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return " ".join(paragraph.split()) or "(no docstring)"


def _observe_relay(entry: CatalogueEntry, env: str, doc: EnvironmentResult) -> None:
    """The consumer's cells become relay rows (one per artifact): what it loaded, by family and model."""
    for row in doc.relay:
        entry.cells += 1
        if row.outcome != "skip" and env not in entry.runs_in:
            entry.runs_in.append(env)
        entry.records.setdefault(f"{row.family}:{row.model}", "relay load")


def _observe(entry: CatalogueEntry, scenario: Scenario, env: str, doc: EnvironmentResult) -> None:
    if scenario.id == CONSUME_ID:
        _observe_relay(entry, env, doc)
        return
    for cell in doc.scenarios:
        if split_id(cell.id)[0] != scenario.id:
            continue
        entry.cells += 1
        if cell.status == "skip":
            reason = cell.message.split(";", 1)[0].strip() or "skipped"
            entry.skips.setdefault(reason, [])
            if env not in entry.skips[reason]:
                entry.skips[reason].append(env)
            continue
        if env not in entry.runs_in:
            entry.runs_in.append(env)
        for record in cell.records:
            entry.records.setdefault(record.name, record.kind)


def gather(
    registry: Mapping[str, Scenario], run: Mapping[str, EnvironmentResult] | None = None
) -> list[CatalogueEntry]:
    """Every registered scenario in id order, with what ``run`` (if any) observed of it."""
    entries = []
    for sid in sorted(registry):
        scenario = registry[sid]
        entry = CatalogueEntry(sid, scenario.area, catches(scenario.doc), scenario.requires)
        for env, doc in sorted((run or {}).items()):
            _observe(entry, scenario, env, doc)
        entries.append(entry)
    return entries
