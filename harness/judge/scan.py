"""A scan's findings as verdict reasons (``gonogo --scan PATH``): one reason per root cause, with every line it hits.

Severity follows the findings (``harness.scan.findings``): a name that works in A and is missing in B, or a keyword
B no longer binds, blocks (``scan-broken``); a deprecation, a move whose old name still works, a changed default or
a keyword only ``**kwargs`` still takes warns (``scan-changed``); what works only in B is ``scan-fixed``. Findings of
the same symbol, change and detail are one cause: ``tf.keras.optimizers.experimental.SGD`` missing in four files is
one reason covering four lines. Waivers match them as ``scenario: "scan:<path>"``, ``record: "<line>:<col>"``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from harness.judge.policy import SEVERITIES, Verdict, _changed, _decision, _waive
from harness.judge.reasons import KIND_ORDER, Reason, ReasonKind, Severity
from harness.matrix import WaiverSpec
from harness.scan.model import Finding, ScanReport

__all__ = ["scan_reasons", "with_scan"]

_SHOWN = 5  # locations named in a reason's summary; its records list them all
_KINDS: dict[str, tuple[Severity, ReasonKind]] = {
    "no-go": ("no-go", "scan-broken"),
    "warning": ("warning", "scan-changed"),
    "info": ("fixed", "scan-fixed"),
}


def _summary(report: ScanReport, found: list[Finding], hints: list[str]) -> str:
    """What changed for the symbol, A -> B, where (the first lines), the detail and any suggestion."""
    first = found[0]
    where = ", ".join(f"{f.path}:{f.line}:{f.col}" for f in found[:_SHOWN])
    where += f" (+{len(found) - _SHOWN} more)" if len(found) > _SHOWN else ""
    moved = f"{first.status_a} on {report.baseline} -> {first.status_b} on {report.candidate}"
    suggestion = f"; suggestion: use {', '.join(hints)}" if hints else ""
    return f"{first.symbol}: {first.change} ({moved}) at {where}: {first.detail}{suggestion}"


def scan_reasons(report: ScanReport, reproduce: str) -> list[Reason]:
    """One reason per (symbol, change, detail), covering each line as ``scan:<path>::<line>:<col>``."""
    groups: dict[tuple[str, str, str, str], list[Finding]] = {}
    for finding in report.findings:
        groups.setdefault((finding.severity, finding.symbol, finding.change, finding.detail), []).append(finding)
    reasons = []
    for (severity, _, _, _), found in sorted(groups.items()):
        level, kind = _KINDS[severity]
        hints = sorted({s for f in found for s in f.suggestions})
        reasons.append(
            Reason(
                severity=level,
                kind=kind,
                scenarios=sorted({f"scan:{f.path}" for f in found}),
                records=[f"scan:{f.path}::{f.line}:{f.col}" for f in found],
                count=len(found),
                summary=_summary(report, found, hints)[:900],
                numbers={"lines": len(found), "suggestions": hints},
                reproduce=reproduce,
            )
        )
    return reasons


def with_scan(
    verdict: Verdict,
    report: ScanReport,
    waivers: Sequence[WaiverSpec],
    today: datetime.date | None,
    reproduce: str,
) -> Verdict:
    """``verdict`` with the scan's reasons added (waivers applied), decided again by the same policy."""
    day = today or datetime.date.today()
    added = [_waive(r, list(waivers), verdict.candidate, day) for r in scan_reasons(report, reproduce)]
    reasons = [*verdict.reasons, *added]
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    reasons.sort(key=lambda r: (order[r.severity], KIND_ORDER[r.kind], r.scenarios, r.records))
    return verdict.model_copy(
        update={
            "reasons": reasons,
            "verdict": _decision(reasons, verdict.missing),
            "counts": {severity: sum(1 for r in reasons if r.severity == severity) for severity in SEVERITIES},
            "changed": _changed(reasons),
        }
    )
