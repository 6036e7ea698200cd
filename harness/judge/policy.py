"""The go/no-go policy: a pure function from a path's ledger, the waivers and the date to a verdict. Judges only.

Severity follows direction: what is worse on the candidate B blocks (or warns), what is better on B is listed as
"fixed in B", what both sides share is a note. One reason per root cause: a scenario's blocking record changes form
one reason; a config change with the same signature in several scenarios (the same keys added, the same class
renamed) forms one reason; a relay failure forms one reason per format and error. Each reason lists the records it
covers, the numbers, the exact error and one command that re-runs exactly those cells.

Verdicts: NO-GO when anything blocks; else INCOMPLETE when a side lacks cells the matrix selected (never GO); else
GO-WITH-WARNINGS or GO. Exit codes 0 GO / GO-WITH-WARNINGS, 1 NO-GO / INCOMPLETE.
"""

from __future__ import annotations

import datetime
import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, Field

from harness.judge import reasons as found
from harness.judge.reasons import Reason, Severity, is_pseudo
from harness.ledger import Ledger
from harness.matrix import WaiverSpec
from harness.results import now_iso

__all__ = ["EXIT_CODES", "Reason", "Verdict", "judge", "verdict_schema"]

VERDICT_SCHEMA_VERSION: Literal[2] = 2
VerdictName = Literal["GO", "GO-WITH-WARNINGS", "NO-GO", "INCOMPLETE"]
EXIT_CODES: dict[str, int] = {"GO": 0, "GO-WITH-WARNINGS": 0, "NO-GO": 1, "INCOMPLETE": 1}
SEVERITIES: tuple[Severity, ...] = ("no-go", "warning", "waived", "fixed", "info")


class Verdict(BaseModel):
    """The decision on one upgrade path, its reasons, and what it was judged on."""

    schema_version: Literal[2] = VERDICT_SCHEMA_VERSION
    baseline: str
    candidate: str
    run_id: str
    decided_at: str
    verdict: VerdictName
    counts: dict[str, int]
    reasons: list[Reason]
    missing: dict[str, list[str]] = Field(
        default_factory=dict, description="Cells the matrix selected that an environment lacks (INCOMPLETE)."
    )
    changed: list[str] = Field(
        default_factory=list, description="Scenarios of the candidate that behave differently from the baseline."
    )
    versions: dict[str, dict[str, str]] = Field(default_factory=dict, description="Resolved packages per side.")
    ledger: str = Field("", description="The ledger this verdict was judged on, relative to the run folder.")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def verdict_schema() -> dict[str, Any]:
    schema = Verdict.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "compat-matrix/verdict.schema.json"
    return schema


def _covers(waiver: WaiverSpec, reason: Reason, candidate: str) -> bool:
    """A waiver applies when it names the candidate and every record (or scenario) of the reason."""
    if not fnmatch.fnmatchcase(candidate, waiver.candidate):
        return False
    keys = reason.records or [f"{s}::" for s in reason.scenarios]
    for key in keys:
        scenario, _, record = key.partition("::")
        if not (fnmatch.fnmatchcase(scenario, waiver.scenario) and fnmatch.fnmatchcase(record, waiver.record)):
            return False
    return True


def _waive(reason: Reason, waivers: list[WaiverSpec], candidate: str, today: datetime.date) -> Reason:
    if reason.severity not in ("no-go", "warning"):
        return reason
    matching = [w for w in waivers if _covers(w, reason, candidate)]
    # a live waiver wins over an expired one listed before it (a renewal is usually appended, not edited in)
    waiver = next((w for w in matching if w.expires >= today), matching[0] if matching else None)
    if waiver is None:
        return reason
    info = waiver.model_dump(mode="json")
    if waiver.expires < today:
        note = f" (waiver by {waiver.owner} expired {waiver.expires})"
        return reason.model_copy(update={"waiver": {**info, "expired": True}, "summary": reason.summary + note})
    note = f" (waived by {waiver.owner} until {waiver.expires}: {waiver.reason})"
    return reason.model_copy(
        update={"severity": "waived", "waiver": {**info, "expired": False}, "summary": reason.summary + note}
    )


def _decision(reasons: list[Reason], missing: dict[str, list[str]]) -> VerdictName:
    if any(r.severity == "no-go" for r in reasons):
        return "NO-GO"
    if missing or any(r.kind == "incomplete" for r in reasons):
        return "INCOMPLETE"
    return "GO-WITH-WARNINGS" if any(r.severity == "warning" for r in reasons) else "GO"


def _missing(ledger: Ledger) -> dict[str, list[str]]:
    return {side.name: side.missing for side in (ledger.baseline, ledger.candidate) if side.missing}


def _changed(reasons: list[Reason]) -> list[str]:
    """Scenarios that behave differently on B: every reason that is more than a note names them."""
    shown = {s for r in reasons if r.severity in ("no-go", "warning", "waived") for s in r.scenarios}
    return sorted(s for s in shown if not is_pseudo(s))


def judge(
    ledger: Ledger,
    *,
    waivers: list[WaiverSpec] | None = None,
    today: datetime.date | None = None,
    ledger_path: str = "",
) -> Verdict:
    """The verdict on ``ledger``'s path: pure, so the same ledger, waivers and date always give the same verdict."""
    day = today or datetime.date.today()
    candidate = ledger.candidate.name
    reasons = [_waive(r, waivers or [], candidate, day) for r in found.collect(ledger)]
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    reasons.sort(key=lambda r: (order[r.severity], found.KIND_ORDER[r.kind], r.scenarios, r.records))
    missing = _missing(ledger)
    return Verdict(
        baseline=ledger.baseline.name,
        candidate=candidate,
        run_id=ledger.run_id,
        decided_at=now_iso(),
        verdict=_decision(reasons, missing),
        counts={severity: sum(1 for r in reasons if r.severity == severity) for severity in SEVERITIES},
        reasons=reasons,
        missing=missing,
        changed=_changed(reasons),
        versions={ledger.baseline.name: ledger.baseline.versions, candidate: ledger.candidate.versions},
        ledger=ledger_path,
    )
