"""The drift ledger of one upgrade path: everything measured between environment A and B, persisted. Measures only.

For the move A -> B the ledger holds, cell by cell, the status on each side; record by record, the drift of B's
value against A's (``harness.drift``); artifact by artifact, how B loads what A saved compared with how A loads it
itself; the framework warnings B raises that A did not; and the cells the matrix selected that either side lacks.
It is written to ``ledger/<A>__<B>.json`` in the run folder, so a verdict can be re-judged (other waivers, another
policy) without reading the environments' results again, and so a reviewer can check the numbers a reason cites.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.drift import Comparisons, DriftEntry, Tolerance, measure, unvalidated
from harness.results import EnvironmentResult, RelayResult, ScenarioResult, now_iso
from harness.worker.protocol import Status

__all__ = ["LEDGER_SCHEMA_VERSION", "CellDelta", "Ledger", "RelayDelta", "ledger_json", "measure_path", "read_ledger"]

LEDGER_SCHEMA_VERSION: Literal[1] = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CellDelta(_Model):
    """One scenario on both sides: statuses, B's full error, and the framework warnings only B raised."""

    scenario: str
    baseline_status: Status | Literal["absent"]
    candidate_status: Status | Literal["absent"]
    baseline_message: str = ""
    candidate_message: str = ""
    checks_failed: list[str] = Field(default_factory=list)
    records_lost: list[str] = Field(default_factory=list, description="Records A has that B does not.")
    new_framework_warnings: list[str] = Field(default_factory=list)


class RelayDelta(_Model):
    """One artifact A saved: B's load of it as the results hold it, beside how A loads it itself (plain call first)."""

    candidate: RelayResult
    baseline_outcome: str = Field(description="A loading its own artifact; 'absent' when A did not try.")
    baseline_optimizer: str = "n/a"
    baseline_signatures: str = Field("n/a", description="The serving signatures A reads from its own SavedModel.")
    candidate_own_outcome: str = Field(
        "absent", description="B loading its own artifact of the same model and format: is the break B's own?"
    )

    @property
    def error(self) -> str:
        return self.candidate.error


class Side(_Model):
    """What the ledger needs to know of one environment as a whole."""

    name: str
    state: str
    env_error: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list, description="Cells the matrix selected that this side lacks.")


class Ledger(_Model):
    """Everything measured along one upgrade path, A (baseline) -> B (candidate)."""

    schema_version: Literal[1]
    run_id: str
    measured_at: str
    baseline: Side
    candidate: Side
    cells: list[CellDelta] = Field(default_factory=list)
    records: list[DriftEntry] = Field(default_factory=list)
    relay: list[RelayDelta] = Field(default_factory=list)


def _side(doc: EnvironmentResult, expected: Iterable[str]) -> Side:
    present = {c.id for c in doc.scenarios}
    resolved = doc.environment.resolved
    return Side(
        name=doc.environment.name,
        state=doc.state,
        env_error=doc.env_error.message if doc.env_error else "",
        versions=dict(resolved.packages) if resolved else dict(doc.environment.declared.packages),
        missing=[sid for sid in expected if sid not in present],
    )


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")


def _framework_warnings(cell: ScenarioResult | None) -> dict[str, str]:
    """Framework warnings by their message (memory addresses masked, so one warning is one text), with category."""
    if cell is None:
        return {}
    return {_ADDRESS.sub("0x…", w.message): w.category for w in cell.warnings if w.framework}


def _new_warnings(base: ScenarioResult | None, cand: ScenarioResult | None) -> list[str]:
    """B's framework warnings whose message A never raised (a category change alone is not new)."""
    if cand is None or not cand.warnings:
        return []
    before, after = _framework_warnings(base), _framework_warnings(cand)
    return sorted(f"{category}: {message}" for message, category in after.items() if message not in before)


def _records_lost(base: ScenarioResult | None, cand: ScenarioResult | None) -> list[str]:
    if base is None or cand is None or not base.records:
        return []
    return sorted({r.name for r in base.records} - {r.name for r in cand.records})


def _cell_delta(scenario: str, base: ScenarioResult | None, cand: ScenarioResult | None) -> CellDelta:
    """One cell's delta, every field taken from validated documents: built as validation would build it, without
    validating again (a test holds the two equal), for each of a run's cells on each path through it."""
    fields = {
        "scenario": scenario,
        "baseline_status": base.status if base else "absent",
        "candidate_status": cand.status if cand else "absent",
        "baseline_message": base.message if base else "",
        "candidate_message": cand.message if cand else "",
        "checks_failed": [c.name for c in cand.checks if not c.ok] if cand else [],
        "records_lost": _records_lost(base, cand),
        "new_framework_warnings": _new_warnings(base, cand),
    }
    return unvalidated(CellDelta, fields, _DELTA_FIELDS)


_DELTA_FIELDS = frozenset(CellDelta.model_fields)


def _by_id(doc: EnvironmentResult) -> dict[str, ScenarioResult]:
    """The cells by id, the first of an id winning as in ``EnvironmentResult.cell`` (a lookup, not a scan per id)."""
    cells: dict[str, ScenarioResult] = {}
    for cell in doc.scenarios:
        cells.setdefault(cell.id, cell)
    return cells


def _cells(base: EnvironmentResult, cand: EnvironmentResult) -> list[CellDelta]:
    before, after = _by_id(base), _by_id(cand)
    ids = [c.id for c in base.scenarios] + [c.id for c in cand.scenarios if c.id not in before]
    return [_cell_delta(sid, before.get(sid), after.get(sid)) for sid in ids]


def _relay_key(row: RelayResult) -> tuple[str, str, str]:
    return row.family, row.format, row.model


def _relay(base: EnvironmentResult, cand: EnvironmentResult) -> list[RelayDelta]:
    """B loading A's artifacts, beside A loading its own (the reference: what A itself cannot load is no break)."""
    name, cand_name = base.environment.name, cand.environment.name
    own = {_relay_key(r): r for r in base.relay if r.producer == name}
    cand_own = {_relay_key(r): r.outcome for r in cand.relay if r.producer == cand_name}
    deltas = []
    for row in sorted((r for r in cand.relay if r.producer == name), key=_relay_key):
        ref = own.get(_relay_key(row))
        outcome, optimizer = (ref.outcome, ref.optimizer) if ref else ("absent", "n/a")
        delta = RelayDelta(
            candidate=row,
            baseline_outcome=outcome,
            baseline_optimizer=optimizer,
            baseline_signatures=ref.signatures if ref else "n/a",
            candidate_own_outcome=cand_own.get(_relay_key(row), "absent"),
        )
        deltas.append(delta)
    return deltas


def measure_path(
    base: EnvironmentResult,
    cand: EnvironmentResult,
    arrays: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
    *,
    expected: Iterable[str] = (),
    tolerances: Mapping[str, Tolerance] | None = None,
    known: Comparisons | None = None,
) -> Ledger:
    """Measure the move ``base`` -> ``cand``; ``arrays`` are their ``.npz`` values, ``expected`` the selected cells.

    ``known``: the comparisons already made on the run's other paths with these tolerances (``drift.measure``).
    """
    selected = list(expected)
    return Ledger(
        schema_version=LEDGER_SCHEMA_VERSION,
        run_id=cand.run_id,
        measured_at=now_iso(),
        baseline=_side(base, selected),
        candidate=_side(cand, selected),
        cells=_cells(base, cand),
        records=measure(cand, base, arrays[1], arrays[0], tolerances, known=known),
        relay=_relay(base, cand),
    )


def ledger_json(ledger: Ledger) -> str:
    """The ledger's file, every field written (a reader with ``jq`` sees each key; no default is assumed), indented a
    little for a reader."""
    return ledger.model_dump_json(indent=1) + "\n"


def read_ledger(path: Path) -> Ledger:
    return Ledger.model_validate_json(Path(path).read_bytes())
