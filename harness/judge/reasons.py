"""From a ledger to reasons, one per root cause: the grouping half of the go/no-go policy (``harness.judge.policy``).

Grouping rules, each because one cause otherwise shows as many lines:
- a cell that regressed is one reason; its records' drift is folded into it (a crashed cell loses every record);
- a scenario's blocking record changes (values beyond tolerance, changed config values, reordered data) are one
  reason: they come from one behaviour of one API;
- config keys added or removed, and class renames whose values stay bitwise equal, are warnings grouped by their
  signature across scenarios (Keras adding ``input_axes`` to every initializer config is one change);
- drift within tolerance is grouped by record name across scenarios (the same model's predictions in five formats);
- call records (one API call's outcome) are grouped per scenario by how the outcome moved, and warnings records by
  whether a warning is new or reworded (``harness.judge.calls``): wording alone never blocks;
- relay loads are grouped by format, outcome and error: three models failing the same way in ``.h5`` are one cause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from harness import commands
from harness.drift import DriftEntry
from harness.judge.records import add_record_reasons, grouped
from harness.judge.relay import add_relay_reasons
from harness.ledger import CellDelta, Ledger, Side
from harness.worker.protocol import BROKEN

__all__ = ["KIND_ORDER", "Reason", "ReasonKind", "Severity", "collect"]

Severity = Literal["no-go", "warning", "waived", "fixed", "info"]
ReasonKind = Literal[
    "env-error",
    "incomplete",
    "regression",
    "relay",
    "api-removed",
    "drift",
    "call-broken",
    "scan-broken",
    "config-keys",
    "renamed",
    "drift-within",
    "deprecation",
    "call-changed",
    "scan-changed",
    "new-warning",
    "new-skip",
    "optimizer-state-lost",
    "new-failure",
    "fixed",
    "call-fixed",
    "scan-fixed",
    "warning-reworded",
    "flaky",
    "shared-failure",
    "own-failure",
    "not-run",
]
KIND_ORDER = {kind: i for i, kind in enumerate(get_args(ReasonKind))}


def is_pseudo(scenario: str) -> bool:
    """'(environment)' and '(run)': a reason about a whole side, not about one of its cells."""
    return scenario.startswith("(")


class Reason(BaseModel):
    """One root cause: what changed, which records it covers, the numbers, the error, how to re-run it."""

    severity: Severity
    kind: ReasonKind
    scenarios: list[str]
    records: list[str] = Field(
        default_factory=list, description="'<scenario>::<record>' (relay: 'relay:<family>:<format>::<model>')."
    )
    count: int = Field(0, description="How many records (or artifacts) the reason covers.")
    summary: str
    numbers: dict[str, Any] = Field(default_factory=dict)
    error: str = Field("", description="The exact error on the candidate: full text, control characters removed.")
    reproduce: str
    waiver: dict[str, Any] | None = None


class Builder:
    """Collects reasons for one ledger and knows how to write its reproduce commands."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.base, self.cand = ledger.baseline.name, ledger.candidate.name
        self.reasons: list[Reason] = []

    def rerun(self, scenarios: Iterable[str]) -> str:
        """One command re-running exactly these cells on both sides (every part quoted: ids come from files)."""
        return commands.rerun(self.ledger.run_id, [self.base, self.cand], scenarios)

    def relay_rerun(self) -> str:
        """Save A's artifacts again, then load them in A (the reference) and in B."""
        return commands.relay_rerun(self.ledger.run_id, self.base, self.cand)

    def add(self, severity: Severity, kind: ReasonKind, scenarios: list[str], summary: str, **extra: Any) -> None:
        records = list(extra.pop("records", []))
        reproduce = extra.pop("reproduce", None) or self.rerun(scenarios)
        self.reasons.append(
            Reason(
                severity=severity,
                kind=kind,
                scenarios=scenarios,
                records=records,
                count=extra.pop("count", len(records)),
                summary=summary,
                reproduce=reproduce,
                **extra,
            )
        )


# ----------------------------------------------------------------------------------------------------- cells


def _environment(builder: Builder) -> bool:
    """Provisioning failures and missing cells; True when the candidate cannot be judged further."""
    ledger = builder.ledger
    unprovisioned: tuple[tuple[Side, Severity, ReasonKind, str], ...] = (
        (ledger.candidate, "no-go", "env-error", f"{builder.cand} could not be provisioned"),
        (ledger.baseline, "info", "incomplete", f"the baseline {builder.base} could not be provisioned"),
    )
    for side, severity, kind, summary in unprovisioned:
        if side.state == "env-error":
            builder.add(
                severity,
                kind,
                ["(environment)"],
                summary,
                error=side.env_error,
                reproduce=commands.run_environment(None, side.name),
            )
            return True
    for side in (ledger.baseline, ledger.candidate):
        if side.missing:
            builder.add(
                "info",
                "incomplete",
                side.missing,
                f"{side.name} lacks {len(side.missing)} selected cells",
                count=len(side.missing),
                reproduce=commands.run_environment(ledger.run_id, side.name),
            )
        elif side.state in ("running", "interrupted"):
            builder.add(
                "info",
                "incomplete",
                ["(run)"],
                f"the run of {side.name} was {'interrupted' if side.state == 'interrupted' else 'cut short'} "
                "before it finished",
                reproduce=commands.run_environment(ledger.run_id, side.name),
            )
    return False


def _cell(builder: Builder, delta: CellDelta, folded: dict[str, list[DriftEntry]]) -> None:
    before, after, sid = delta.baseline_status, delta.candidate_status, delta.scenario
    if before == "pass" and after in BROKEN:
        changed = {e.record for e in folded.get(sid, []) if e.verdict not in ("identical", "info")}
        lost = [f"{sid}::{name}" for name in sorted(changed | set(delta.records_lost))]
        checks = f" (failed checks: {', '.join(delta.checks_failed)})" if delta.checks_failed else ""
        builder.add(
            "no-go",
            "regression",
            [sid],
            f"passes on {builder.base}, {after} on {builder.cand}{checks}",
            error=delta.candidate_message,
            records=lost,
            numbers={"checks_failed": delta.checks_failed},
        )
    elif before in BROKEN and after == "pass":
        builder.add(
            "fixed",
            "fixed",
            [sid],
            f"{before} on {builder.base}, passes on {builder.cand}",
            error=delta.baseline_message,
            records=[f"{sid}::{e.record}" for e in folded.get(sid, []) if e.verdict not in ("identical", "info")],
        )
    elif before in BROKEN and after in BROKEN:
        statuses = before if before == after else f"{before} on {builder.base}, {after} on {builder.cand}"
        builder.add(
            "info", "shared-failure", [sid], f"broken on both sides ({statuses})", error=delta.candidate_message
        )
    elif before in ("skip", "absent") and after in BROKEN:
        builder.add(
            "warning",
            "new-failure",
            [sid],
            f"{'skipped' if before == 'skip' else 'not run'} on {builder.base}, {after} on {builder.cand}: "
            "nothing on the baseline used it, so it breaks no existing code",
            error=delta.candidate_message,
        )
    elif before == "pass" and after == "skip":
        builder.add(
            "warning",
            "new-skip",
            [sid],
            f"passes on {builder.base}, skipped on {builder.cand}",
            error=delta.candidate_message,
        )
    elif before == "pass" and after == "absent" and sid not in builder.ledger.candidate.missing:
        builder.add("warning", "not-run", [sid], f"passes on {builder.base}, not run on {builder.cand}")


_DEPRECATION_CATEGORIES = ("DeprecationWarning:", "PendingDeprecationWarning:", "FutureWarning:")
_DEPRECATION_WORDS = re.compile(r"deprecat|legacy|will be removed|no longer (be )?supported", re.IGNORECASE)


def is_deprecation(text: str) -> bool:
    """A deprecation by its category, or a logged line that says so (Keras's HDF5 'legacy format' warning)."""
    return text.startswith(_DEPRECATION_CATEGORIES) or bool(_DEPRECATION_WORDS.search(text))


_NAMED = re.compile(r"`[^`]*`")


def _deprecations(builder: Builder, cells: list[CellDelta]) -> None:
    """New framework deprecations on B, one reason per wording; other new warnings (retracing notes) are not.

    Messages that differ only in the API they name (``torch.jit.script`` / ``trace`` / ``save`` "is deprecated,
    switch to ``torch.export``") are one deprecation of one family of APIs.
    """
    by_shape: dict[str, dict[str, list[str]]] = {}
    for delta in cells:
        for text in filter(is_deprecation, delta.new_framework_warnings):
            by_shape.setdefault(_NAMED.sub("`…`", text), {}).setdefault(text, []).append(delta.scenario)
    for _, texts in sorted(by_shape.items()):
        scenarios = sorted({s for found in texts.values() for s in found})
        shown = "; ".join(sorted(texts)[:3]) + (f" (+{len(texts) - 3} alike)" if len(texts) > 3 else "")
        builder.add("warning", "deprecation", scenarios, f"new framework warning on {builder.cand}: {shown}"[:900])


def collect(ledger: Ledger) -> list[Reason]:
    """Every reason the ledger gives, before waivers."""
    builder = Builder(ledger)
    if _environment(builder):
        return builder.reasons
    # a cell whose status changed is one reason: the records it lost or changed are folded into it
    changed = {c.scenario for c in ledger.cells if (c.baseline_status in BROKEN) != (c.candidate_status in BROKEN)}
    folded = grouped([e for e in ledger.records if e.scenario in changed], lambda e: e.scenario)
    for delta in ledger.cells:
        _cell(builder, delta, folded)
    _deprecations(builder, ledger.cells)
    add_record_reasons(builder, [e for e in ledger.records if e.scenario not in changed])
    add_relay_reasons(builder, ledger.relay)
    return builder.reasons
