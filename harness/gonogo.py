"""The upgrade go/no-go policy: judges a candidate environment against the baseline. Judges, never measures.

NO-GO when a scenario that passes on the baseline fails, errors, crashes or times out on the candidate (or the
candidate cannot be provisioned); when an artifact saved on the baseline, which the baseline itself loads, does not
load on the candidate or loads with predictions beyond tolerance; when an API present on the baseline is gone on
the candidate; when a record drifts beyond tolerance (or a config changes) and no live waiver covers it.
GO-WITH-WARNINGS for drift within tolerance, new deprecations, new skips, a lost optimizer state. A waiver turns a
reason into "waived"; an expired waiver counts as absent, and the reason says it expired. Flaky records are
reported as flaky, never as drift. Every reason names the scenario and record, the numbers, and the command that
re-runs that cell.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from harness.drift import DriftEntry, Tolerance, load_arrays, measure
from harness.matrix import WaiverSpec
from harness.results import EnvironmentResult, RelayResult, now_iso

__all__ = ["EXIT_CODES", "Reason", "Verdict", "decide"]

VERDICT_SCHEMA_VERSION = 1
VERDICT_SCHEMA_PATH = Path(__file__).parent / "schemas" / "verdict.schema.json"
EXIT_CODES = {"GO": 0, "GO-WITH-WARNINGS": 0, "NO-GO": 1}
_BROKEN = ("fail", "error", "crash", "timeout", "env-error")
_LOADED = ("loaded", "optimizer-state-lost")

Severity = Literal["no-go", "warning", "waived", "info"]
ReasonKind = Literal[
    "env-error",
    "incomplete",
    "regression",
    "relay",
    "api-removed",
    "drift",
    "drift-within",
    "deprecation",
    "new-skip",
    "optimizer-state-lost",
    "flaky",
    "not-run",
]


class Reason(BaseModel):
    severity: Severity
    kind: ReasonKind
    scenario: str
    record: str | None = None
    summary: str
    numbers: dict[str, Any] = Field(default_factory=dict)
    reproduce: str
    waiver: dict[str, Any] | None = None


class Verdict(BaseModel):
    """The decision, its reasons, and the drift it was judged on."""

    schema_version: Literal[1] = VERDICT_SCHEMA_VERSION
    baseline: str
    candidate: str
    run_id: str
    decided_at: str
    verdict: Literal["GO", "GO-WITH-WARNINGS", "NO-GO"]
    counts: dict[str, int]
    reasons: list[Reason]
    drift: list[DriftEntry] = Field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def verdict_schema() -> dict[str, Any]:
    schema = Verdict.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "compat-matrix/verdict.schema.json"
    return schema


class _Judge:
    def __init__(self, baseline: str, candidate: str, run_id: str, waivers: list[WaiverSpec], today: datetime.date):
        self.baseline, self.candidate, self.run_id = baseline, candidate, run_id
        self.waivers, self.today = waivers, today
        self.reasons: list[Reason] = []

    def rerun(self, scenario: str) -> str:
        return f"COMPAT_RUN_ID={self.run_id} ./cm -s {self.baseline} {self.candidate} -- -k '{scenario}'"

    def relay_rerun(self) -> str:
        return (
            f"COMPAT_RUN_ID={self.run_id} ./cm -s {self.baseline} -- -k 'relay.produce' && "
            f"COMPAT_RUN_ID={self.run_id} ./cm -s relay-{self.candidate} --no-dependencies"
        )

    def add(
        self,
        severity: Severity,
        kind: ReasonKind,
        scenario: str,
        summary: str,
        *,
        record: str | None = None,
        numbers: dict[str, Any] | None = None,
        reproduce: str | None = None,
    ) -> None:
        waiver = None
        if severity == "no-go" or kind in ("drift-within", "deprecation"):
            severity, waiver, summary = self._apply_waiver(severity, scenario, record, summary)
        self.reasons.append(
            Reason(
                severity=severity,
                kind=kind,
                scenario=scenario,
                record=record,
                summary=summary,
                numbers=numbers or {},
                reproduce=reproduce or self.rerun(scenario),
                waiver=waiver,
            )
        )

    def _apply_waiver(
        self, severity: Severity, scenario: str, record: str | None, summary: str
    ) -> tuple[Severity, dict[str, Any] | None, str]:
        for waiver in self.waivers:
            if not (
                fnmatch.fnmatchcase(scenario, waiver.scenario)
                and fnmatch.fnmatchcase(record or "", waiver.record)
                and fnmatch.fnmatchcase(self.candidate, waiver.candidate)
            ):
                continue
            info = waiver.model_dump(mode="json")
            if waiver.expires < self.today:
                return (
                    severity,
                    {**info, "expired": True},
                    f"{summary} (waiver by {waiver.owner} expired {waiver.expires})",
                )
            return "waived", {**info, "expired": False}, f"{summary} (waived by {waiver.owner} until {waiver.expires})"
        return severity, None, summary


def _judge_cells(judge: _Judge, base: EnvironmentResult, cand: EnvironmentResult) -> None:
    if cand.state == "env-error":
        message = cand.env_error.message.splitlines()[0] if cand.env_error else "provisioning failed"
        judge.add(
            "no-go",
            "env-error",
            "(environment)",
            f"{cand.environment.name} could not be provisioned: {message}",
            reproduce=f"./cm -s {cand.environment.name}",
        )
        return
    executed = [c for c in cand.scenarios if c.status not in ("skip", "env-error")]
    if not executed:
        judge.add("no-go", "incomplete", "(run)", "the candidate executed no scenario at all")
    for cell in base.scenarios:
        mine = cand.cell(cell.id)
        if cell.status != "pass":
            continue
        if mine is None:
            judge.add("warning", "not-run", cell.id, "passes on the baseline, not run on the candidate")
        elif mine.status in _BROKEN:
            first = mine.message.splitlines()[0] if mine.message else ""
            judge.add(
                "no-go",
                "regression",
                cell.id,
                f"passes on {base.environment.name}, {mine.status} on {cand.environment.name}: {first}"[:400],
                numbers={"checks_failed": [c.name for c in mine.checks if not c.ok]},
            )
        elif mine.status == "skip":
            judge.add(
                "warning", "new-skip", cell.id, f"passes on the baseline, skipped on the candidate: {mine.message}"
            )


def _relay_key(row: RelayResult) -> tuple[str, str, str]:
    return row.family, row.format, row.model


def _judge_relay(judge: _Judge, base: EnvironmentResult, cand: EnvironmentResult) -> None:
    own = {_relay_key(r): r for r in base.relay if r.producer == judge.baseline}
    for row in cand.relay:
        if row.producer != judge.baseline:
            continue
        scenario = f"relay:{row.family}:{row.format}:{row.model}"
        self_row = own.get(_relay_key(row))
        baseline_loads = self_row is None or self_row.outcome in _LOADED
        numbers = {
            "max_abs_error": row.max_abs_error,
            "max_rel_error": row.max_rel_error,
            "how": row.how,
            "error": f"{row.error_class}: {row.message}"[:300] if row.error_class else "",
        }
        if row.outcome in ("load-error", "loaded-drifted"):
            text = (
                f"{row.family} {row.model} saved as {row.format} on {judge.baseline}: {row.outcome} on "
                f"{judge.candidate}" + (f" ({row.error_class})" if row.error_class else "")
            )
            severity: Severity = "no-go" if baseline_loads else "info"
            if not baseline_loads:
                text += "; the baseline cannot load its own artifact either"
            judge.add(severity, "relay", scenario, text, numbers=numbers, reproduce=judge.relay_rerun())
        elif row.outcome == "optimizer-state-lost" and (self_row is None or self_row.optimizer == "kept"):
            judge.add(
                "warning",
                "optimizer-state-lost",
                scenario,
                f"{row.model} {row.format} from {judge.baseline} loads on {judge.candidate} "
                "without its optimizer state",
                numbers=numbers,
                reproduce=judge.relay_rerun(),
            )


def _judge_drift(judge: _Judge, entries: list[DriftEntry]) -> None:
    for entry in entries:
        if entry.verdict in ("identical", "info", "added"):
            continue
        record, numbers = entry.record, dict(entry.metrics)
        if entry.tolerance is not None:
            numbers["tolerance"] = entry.tolerance.model_dump()
        if entry.verdict == "flaky":
            judge.add("info", "flaky", entry.scenario, f"{record} is flaky: {entry.detail}", record=record)
        elif entry.kind == "api_map":
            removed, moved = entry.metrics.get("removed", []), entry.metrics.get("moved", {})
            if removed or moved:
                gone = removed + [f"{old} (now {new})" for old, new in moved.items()]
                judge.add(
                    "no-go",
                    "api-removed",
                    entry.scenario,
                    f"{len(gone)} API(s) present on the baseline are gone: "
                    + ", ".join(gone[:8])
                    + ("…" if len(gone) > 8 else ""),
                    record=record,
                    numbers=numbers,
                )
            if entry.metrics.get("newly_deprecated"):
                judge.add(
                    "warning",
                    "deprecation",
                    entry.scenario,
                    "newly deprecated: " + ", ".join(entry.metrics["newly_deprecated"][:8]),
                    record=record,
                )
        elif entry.verdict in ("beyond", "changed", "missing"):
            judge.add("no-go", "drift", entry.scenario, f"{record}: {_describe(entry)}", record=record, numbers=numbers)
        elif entry.verdict == "within":
            judge.add(
                "warning",
                "drift-within",
                entry.scenario,
                f"{record}: {_describe(entry)}",
                record=record,
                numbers=numbers,
            )


def _describe(entry: DriftEntry) -> str:
    m = entry.metrics
    if entry.verdict == "missing":
        return "recorded on the baseline, absent on the candidate"
    if entry.kind == "ordering":
        parts = [f"{m.get('positions_differ', '?')} of {m.get('size', '?')} positions moved"]
        if "kendall_tau" in m:
            parts.append(f"Kendall tau {m['kendall_tau']:.3f}")
        return ", ".join(parts)
    if "max_abs_error" in m:
        tol = entry.tolerance
        m = {k: (float(v) if isinstance(v, str) and v in ("inf", "nan") else v) for k, v in m.items()}
        return (
            f"{entry.verdict} tolerance: max abs {m['max_abs_error']:.3g}, max rel {m['max_rel_error']:.3g}, "
            f"max ULP {m.get('max_ulp', '?')}, {m['share_beyond']:.1%} beyond"
            + (f" (rtol {tol.rtol:g}, atol {tol.atol:g})" if tol else "")
        )
    if "detail" in m:
        return str(m["detail"])
    if "changed" in m:
        changed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(m["changed"].items())[:4])
        extra = [f"+{k}" for k in m.get("added", [])[:3]] + [f"-{k}" for k in m.get("removed", [])[:3]]
        return "config changed: " + "; ".join(x for x in [changed, " ".join(extra)] if x)
    if "old" in m:
        return f"{m['old']!r} -> {m['new']!r}"[:300]
    return entry.verdict


_ORDER = {"no-go": 0, "warning": 1, "waived": 2, "info": 3}
_KIND_ORDER = {kind: i for i, kind in enumerate(ReasonKind.__args__)}  # type: ignore[attr-defined]


def decide(
    docs: Mapping[str, EnvironmentResult],
    run_dirs: Mapping[str, Path],
    baseline: str,
    candidate: str,
    *,
    tolerances: Mapping[str, Tolerance] | None = None,
    waivers: list[WaiverSpec] | None = None,
    today: datetime.date | None = None,
) -> Verdict:
    """Measure drift of ``candidate`` against ``baseline`` and judge it."""
    base, cand = docs[baseline], docs[candidate]
    judge = _Judge(baseline, candidate, cand.run_id, waivers or [], today or datetime.date.today())
    _judge_cells(judge, base, cand)
    _judge_relay(judge, base, cand)
    entries = measure(
        cand, base, load_arrays(run_dirs[candidate], cand), load_arrays(run_dirs[baseline], base), tolerances
    )
    _judge_drift(judge, entries)
    reasons = sorted(judge.reasons, key=lambda r: (_ORDER[r.severity], _KIND_ORDER[r.kind], r.scenario, r.record or ""))
    counts = {severity: sum(1 for r in reasons if r.severity == severity) for severity in _ORDER}
    verdict = "NO-GO" if counts["no-go"] else "GO-WITH-WARNINGS" if counts["warning"] else "GO"
    return Verdict(
        baseline=baseline,
        candidate=candidate,
        run_id=cand.run_id,
        decided_at=now_iso(),
        verdict=verdict,
        counts=counts,
        reasons=reasons,
        drift=entries,
    )
