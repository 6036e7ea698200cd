"""One upgrade path's verdict in Markdown: the blocking reasons in full, everything else folded.

A reviewer deciding on an upgrade needs, per blocking reason, what it is, what it covers, the exact error, the key
numbers and the one command that re-runs it, without opening another file; the rest (warnings, what B fixes, the
cells a side lacks) is one click away. The same body serves ``report.md`` and ``gonogo/<A>__<B>.md``; it comes in
shorter forms (``path_forms``) so the whole report can shrink to GitHub's size limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from harness.judge import Reason, Verdict
from harness.report import mdsafe
from harness.report.common import by_severity, counts_text, path_label, titles
from harness.report.mdsafe import POINTER, LazyForms, Section

__all__ = ["PATH_FORMS", "path_forms", "render_verdict_markdown", "verdict_heading"]

#: Per form: longest error shown (None: no error, one line per reason), blocking reasons shown in full, blocking
#: reasons listed at all, and items listed per folded group (None: all; 0: only counted).
_FORMS: tuple[tuple[int | None, int, int, int | None], ...] = (
    (3000, 99, 999, None),
    (3000, 99, 999, 10),
    (800, 99, 999, 0),
    (200, 3, 10, 0),
    (None, 0, 10, 0),
    (None, 0, 3, 0),
)
PATH_FORMS = len(_FORMS)


def verdict_heading(verdict: Verdict, level: str = "##") -> str:
    return f"{level} {verdict.verdict}: {mdsafe.text(path_label(verdict))}"


def counts_line(verdict: Verdict) -> str:
    ledger = f"; ledger {mdsafe.code(verdict.ledger)}" if verdict.ledger else ""
    return f"{mdsafe.text(counts_text(verdict))} (run {mdsafe.code(verdict.run_id)}{ledger})."


def _scenarios(reason: Reason, shown: int = 8) -> str:
    names = [mdsafe.code(s) for s in reason.scenarios[:shown]]
    more = f" and {len(reason.scenarios) - shown} more" if len(reason.scenarios) > shown else ""
    return ", ".join(names) + more


def _covers(reason: Reason) -> str:
    count = reason.count or len(reason.records)
    if not count:
        return ""
    unit = "artifact" if reason.kind == "relay" else "record"
    return f" · covers {count} {unit}{'s' if count != 1 else ''}"


#: Made once (``json.dumps`` with an option builds an encoder per call); the same text as ``json.dumps(default=str)``.
_SHOWN = json.JSONEncoder(default=str).encode


def _numbers(numbers: dict[str, Any]) -> str:
    shown = [
        f"{mdsafe.text(key)} {mdsafe.code(_SHOWN(value)[:200])}"
        for key, value in numbers.items()
        if value not in (None, "", [], {})
    ]
    return "key numbers: " + " · ".join(shown) if shown else ""


def reason_block(reason: Reason, number: int, error_limit: int) -> list[str]:
    """A blocking reason in full: kind, scenarios, coverage, summary, exact error, numbers, the re-run command."""
    return _assemble(reason, number, error_limit, _block_parts(reason))


#: A reason's block apart from its number and error: the heading's rest, the summary, and what follows the error.
_Parts = tuple[str, str, list[str]]


def _block_parts(reason: Reason) -> _Parts:
    """What a reason's block shows whatever its number and its error's limit (built once per reason)."""
    head = f"{mdsafe.text(reason.kind)}** in {_scenarios(reason)}{_covers(reason)}  "
    numbers = _numbers(reason.numbers)
    tail = [numbers, ""] if numbers else []
    return head, mdsafe.text(reason.summary), [*tail, "re-run:", "", *mdsafe.fence(reason.reproduce, "sh"), ""]


def _assemble(reason: Reason, number: int, error_limit: int, parts: _Parts) -> list[str]:
    head, summary, tail = parts
    error = [*mdsafe.fence(reason.error, "text", error_limit), ""] if reason.error.strip() else []
    return [f"**{number}. {head}", "", summary, "", *error, *tail]


def reason_line(reason: Reason) -> str:
    """A reason on one list line: what is folded, and blocking reasons beyond the limit."""
    error = mdsafe.line(reason.error, 0)  # an error text leads with its class and message
    said = f" ({mdsafe.text(error)})" if error and error not in reason.summary else ""
    what = f"**{mdsafe.text(reason.kind)}** {_scenarios(reason, 4)}{_covers(reason)}"
    return f"- {what}: {mdsafe.text(reason.summary)}{said}"


class _Rendered:
    """One path's reasons as Markdown, each piece built once however many forms of the path show it (the forms
    differ in how much they show, not in how a reason reads)."""

    def __init__(self) -> None:
        self.lines: dict[int, str] = {}
        self.parts: dict[int, _Parts] = {}
        self.blocks: dict[tuple[int, int, int], list[str]] = {}

    def line(self, reason: Reason) -> str:
        if id(reason) not in self.lines:
            self.lines[id(reason)] = reason_line(reason)
        return self.lines[id(reason)]

    def block(self, reason: Reason, number: int, error_limit: int) -> list[str]:
        key = (id(reason), number, error_limit)
        if key not in self.blocks:
            if id(reason) not in self.parts:
                self.parts[id(reason)] = _block_parts(reason)
            self.blocks[key] = _assemble(reason, number, error_limit, self.parts[id(reason)])
        return self.blocks[key]


def _folded(summary: str, items: list[str], cap: int | None) -> list[str]:
    if not items:
        return []
    shown = items if cap is None else items[:cap]
    more = [f"- … {len(items) - len(shown)} more: {POINTER}"] if len(shown) < len(items) else []
    return [f"<details><summary>{mdsafe.html(summary)}</summary>", "", *shown, *more, "", "</details>", ""]


def _missing_items(verdict: Verdict, cap: int | None) -> list[str]:
    items = []
    for env, cells in verdict.missing.items():
        names = ", ".join(mdsafe.code(c) for c in (cells if cap is None else cells[:cap]))
        more = f" and {len(cells) - cap} more" if cap is not None and len(cells) > cap else ""
        items.append(f"- {mdsafe.text(env)} lacks {len(cells)} selected cells: {names}{more}")
    return items


def _folded_parts(verdict: Verdict, groups: dict[str, list[Reason]], cap: int | None, rendered: _Rendered) -> list[str]:
    named = {**titles(verdict), "missing": "Missing cells (INCOMPLETE)"}
    if cap == 0:  # only counted: no reason is rendered
        counts = [f"{named[key].lower()}: {len(groups[key])}" for key in ("warning", "fixed", "waived") if groups[key]]
        missing = len(verdict.missing)
        counts += [f"{named['missing'].lower()}: {missing}"] if missing else []
        counts += [f"{named['info'].lower()}: {len(groups['info'])}"] if groups["info"] else []
        return [f"Not shown here: {mdsafe.text(', '.join(counts))}; {POINTER}.", ""] if counts else []
    items = {severity: [rendered.line(r) for r in groups[severity]] for severity in ("warning", "fixed", "waived")}
    items["missing"] = _missing_items(verdict, cap)
    items["info"] = [rendered.line(r) for r in groups["info"]]
    return [line for key, lines in items.items() for line in _folded(f"{named[key]} ({len(lines)})", lines, cap)]


def _blocking(
    reasons: list[Reason], in_full: int, listed: int, error_limit: int | None, rendered: _Rendered
) -> list[str]:
    if not reasons:
        return []
    full = reasons[:in_full] if error_limit is not None else []
    lines = [f"**Blocking ({len(reasons)})**", ""]
    for number, reason in enumerate(full, start=1):
        lines += rendered.block(reason, number, error_limit or 0)
    rest = [rendered.line(r) for r in reasons[len(full) : max(listed, len(full))]]
    unlisted = len(reasons) - len(full) - len(rest)
    rest += [f"- … {unlisted} more: {POINTER}"] if unlisted else []
    if rest and full:
        return lines + _folded(f"Blocking: {len(reasons) - len(full)} more", rest, None)
    return lines + rest + ([""] if rest else [])


def _incomplete(verdict: Verdict) -> list[str]:
    if verdict.verdict != "INCOMPLETE":
        return []
    why = [mdsafe.text(r.summary) for r in verdict.reasons if r.kind == "incomplete"]
    why += [f"{mdsafe.text(env)} lacks {len(cells)} selected cells" for env, cells in verdict.missing.items()]
    unique = list(dict.fromkeys(why))
    return [f"INCOMPLETE (never GO until these cells run): {'; '.join(unique) or 'cells missing'}.", ""]


def path_forms(verdict: Verdict, limit: int = 10, heading: str = "") -> Sequence[str]:
    """The body of one path after ``heading``, from fullest to a few summary lines, each form built when first
    read (``mdsafe.fit`` reads only the forms it tries)."""
    groups = by_severity(verdict.reasons)
    rendered = _Rendered()

    def form(index: int) -> str:
        error_limit, in_full, listed, cap = _FORMS[index]
        body = [counts_line(verdict), "", *_incomplete(verdict)]
        body += _blocking(groups["no-go"], min(limit, in_full), listed, error_limit, rendered)
        return heading + "\n".join(body + _folded_parts(verdict, groups, cap, rendered)) + "\n"

    return LazyForms(len(_FORMS), form)


def render_verdict_markdown(verdict: Verdict, limit: int = 10) -> str:
    """The verdict for a CI step summary or PR comment: decision, counts, blocking reasons, everything else folded."""
    sections = [Section([verdict_heading(verdict) + "\n\n"]), Section(path_forms(verdict, limit))]
    return mdsafe.fit(sections, [1] * PATH_FORMS)
