"""A scan report as text (a terminal), JSON (machines) or Markdown (a PR comment), grouped by file. Formats only.

Each finding is one line ``path:line:col  symbol  status-in-A -> status-in-B  detail``; suggestions follow it and are
never applied. Text from files and from the frameworks is cleaned of control characters before it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import groupby

from harness.report import mdsafe
from harness.scan.model import Finding, ScanReport
from harness.worker.protocol import clean_text

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "md")


def _line(finding: Finding) -> str:
    where = f"{finding.path}:{finding.line}:{finding.col}"
    return clean_text(
        f"{where}  {finding.symbol}  {finding.status_a} -> {finding.status_b}  [{finding.severity}] {finding.detail}"
    )


def _by_file(findings: Iterable[Finding]) -> list[tuple[str, list[Finding]]]:
    return [(path, list(group)) for path, group in groupby(findings, key=lambda f: f.path)]


def _counts_line(report: ScanReport) -> str:
    c = report.counts
    timing = ", ".join(
        f"{env} {report.seconds.get(env, 0):.1f} s{' (cached)' if report.reused.get(env) else ''}"
        for env in (report.baseline, report.candidate)
    )
    return (
        f"{c.get('files', 0)} files, {c.get('uses', 0)} uses of {c.get('symbols', 0)} symbols: "
        f"in {report.candidate} {c.get('resolved_in_candidate', 0)} resolved (of them {c.get('moved', 0)} moved, "
        f"{c.get('deprecated', 0)} deprecated), {c.get('missing_in_candidate', 0)} missing; "
        f"{c.get('absent_in_both', 0)} in neither environment; {c.get('not_checked', 0)} uses not checked; "
        f"{c.get('not_scanned', 0)} files not scanned. Probes: {timing}"
    )


def render_text(report: ScanReport) -> str:
    lines = [f"scan {report.baseline} -> {report.candidate}"]
    if not report.findings:
        lines += ["", "no findings: nothing this code uses changed between them"]
    for path, findings in _by_file(report.findings):
        lines.append("")
        lines.append(clean_text(path))
        for finding in findings:
            lines.append("  " + _line(finding))
            lines += [f"      suggestion: use {clean_text(s)}" for s in finding.suggestions]
    if report.unchecked:
        lines += ["", "not checked (dynamic uses):"]
        lines += [clean_text(f"  {u.path}:{u.line}:{u.col}  {u.code}  ({u.why})") for u in report.unchecked]
    if report.not_scanned:
        lines += ["", "not scanned:"] + [clean_text(f"  {n.error}") for n in report.not_scanned]
    lines += ["", _counts_line(report)]
    return "\n".join(lines) + "\n"


def render_markdown(report: ScanReport) -> str:
    lines = [f"## Scan: {mdsafe.text(report.baseline)} → {mdsafe.text(report.candidate)}", ""]
    for path, findings in _by_file(report.findings):
        lines += [
            f"### {mdsafe.code(path)}",
            "",
            "| line | symbol | A → B | severity | detail |",
            "|---|---|---|---|---|",
        ]
        for f in findings:
            detail = mdsafe.text(f.detail) + "".join(f"<br>suggestion: use {mdsafe.code(s)}" for s in f.suggestions)
            lines.append(
                f"| {f.line}:{f.col} | {mdsafe.code(f.symbol)} | {mdsafe.text(f.status_a)} → "
                f"{mdsafe.text(f.status_b)} | {f.severity} | {detail} |"
            )
        lines.append("")
    if report.unchecked:
        lines += ["**Not checked** (dynamic uses):", ""]
        lines += [f"- {mdsafe.code(f'{u.path}:{u.line}:{u.col}')} {mdsafe.code(u.code)}: {mdsafe.text(u.why)}"
                  for u in report.unchecked]  # fmt: skip
        lines.append("")
    if report.not_scanned:
        lines += ["**Not scanned:**", ""] + [f"- {mdsafe.text(n.error)}" for n in report.not_scanned] + [""]
    lines.append(mdsafe.text(_counts_line(report)))
    return "\n".join(lines) + "\n"


def render(report: ScanReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.model_dump(mode="json"), indent=2) + "\n"
    if fmt == "md":
        return render_markdown(report)
    return render_text(report)
