"""From uses and two probe answers (baseline A, candidate B) to findings: what each line of the user's code meets.

Pure: no environment is touched here. Direction matters as in the verdict: something that works in A and not in B
blocks (a missing name, a placeholder, a keyword the signature no longer takes, a string the getter no longer
knows); a deprecation new in B, a keyword only ``**kwargs`` still swallows, a changed default of a parameter the
call leaves out, or a name that now lives elsewhere (still reachable) warn; something broken in A that works in B is
"fixed". A name neither environment has (a TensorFlow import scanned against two torch environments) is no finding;
it is counted as absent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from harness.scan.model import (
    CallProbe,
    Extraction,
    Finding,
    LookupProbe,
    ProbeAnswer,
    SymbolProbe,
    Use,
)

__all__ = ["compare", "counts", "request_of", "symbol_status"]

_DEPRECATED = re.compile(r"deprecat|no longer (be )?supported|will be removed", re.IGNORECASE)
_DEPRECATION_CATEGORIES = {"DeprecationWarning", "PendingDeprecationWarning", "FutureWarning"}


#: Distributions that re-package the same code under another top-level name: tf-keras is Keras 2 as ``tf_keras``.
_REPACKAGED = (("tf_keras.", "keras."),)


def _place(qualified: str) -> str:
    """Where an object lives, a re-packaging undone: ``tf_keras.src.x.Dense`` is Keras 2's ``keras.src.x.Dense``."""
    for new, old in _REPACKAGED:
        if qualified.startswith(new):
            return old + qualified[len(new) :]
    return qualified


def request_of(extraction: Extraction) -> dict[str, object]:
    """What the prober is asked: the distinct symbols, calls (symbol, positional count, keywords) and lookups."""
    symbols = sorted({u.symbol for u in extraction.uses if u.kind != "string"})
    calls = sorted(
        {(u.symbol, u.positional, u.keywords) for u in extraction.uses if u.kind in ("call", "decorator")},
    )
    lookups = sorted({(u.lookup.getter, u.lookup.value) for u in extraction.uses if u.lookup is not None})
    return {
        "symbols": symbols,
        "calls": [{"symbol": s, "positional": n, "keywords": list(k)} for s, n, k in calls],
        "lookups": [{"getter": g, "value": v} for g, v in lookups],
    }


def _deprecation(info: SymbolProbe) -> str:
    for warning in info.warnings:
        if warning.category in _DEPRECATION_CATEGORIES or _DEPRECATED.search(warning.message):
            return f"{warning.category} from {warning.origin}: {warning.message}"
    return f"documented: {info.doc_deprecated}" if info.doc_deprecated else ""


def symbol_status(info: SymbolProbe | None) -> str:
    """A short status for the text line: ok, missing, placeholder, deprecated."""
    if info is None or not info.resolved:
        return "missing"
    if info.placeholder:
        return "placeholder"
    return "deprecated" if _deprecation(info) else "ok"


class _Side:
    """One environment's answer, indexed for the questions the comparison asks."""

    def __init__(self, answer: ProbeAnswer) -> None:
        self.answer = answer
        self.calls = {(c.symbol, c.positional, tuple(c.keywords)): c for c in answer.calls}
        self.lookups = {(x.getter, x.value): x for x in answer.lookups}

    def symbol(self, name: str) -> SymbolProbe | None:
        return self.answer.symbols.get(name)

    def call(self, use: Use) -> CallProbe | None:
        return self.calls.get((use.symbol, use.positional, use.keywords))

    def lookup(self, use: Use) -> LookupProbe | None:
        return self.lookups.get((use.lookup.getter, use.lookup.value)) if use.lookup else None


def _finding(use: Use, change: str, severity: str, a: str, b: str, detail: str, hints: tuple[str, ...] = ()) -> Finding:
    return Finding.model_validate(
        {"path": use.path, "line": use.line, "col": use.col, "symbol": use.symbol, "change": change,
         "severity": severity, "status_a": a, "status_b": b, "detail": detail, "suggestions": hints}
    )  # fmt: skip


def _presence(use: Use, a: SymbolProbe | None, b: SymbolProbe | None) -> Iterator[Finding]:
    works_a, works_b = bool(a and a.works), bool(b and b.works)
    sa, sb = symbol_status(a), symbol_status(b)
    if works_a and not works_b:
        detail = (
            f"placeholder: constructing it raises {b.placeholder}" if b and b.placeholder else (b.error if b else "")
        )
        hints = tuple(b.suggestions) if b else ()
        yield _finding(use, "missing", "no-go", sa, sb, detail or "not found", hints)
    elif works_b and not works_a:
        yield _finding(use, "fixed", "info", sa, sb, a.error if a and a.error else "works in the candidate only")


def _changes(use: Use, a: SymbolProbe, b: SymbolProbe) -> Iterator[Finding]:
    sa, sb = symbol_status(a), symbol_status(b)
    deprecation = _deprecation(b)
    if deprecation and not _deprecation(a):
        yield _finding(use, "deprecated", "warning", sa, sb, deprecation)
    if a.qualified and b.qualified and _place(a.qualified) != _place(b.qualified) and a.kind != "module":
        yield _finding(
            use, "moved", "warning", sa, sb, f"moved to {b.qualified} (was {a.qualified}); the name still works"
        )


def _keywords(use: Use, side_a: _Side, side_b: _Side, a: SymbolProbe, b: SymbolProbe) -> Iterator[Finding]:
    if use.starred:
        return
    call_a, call_b = side_a.call(use), side_b.call(use)
    if call_a is None or call_b is None:
        return
    if not call_a.binding.startswith("rejected") and call_b.binding.startswith("rejected"):
        names_b = {p.name for p in b.params or []}
        lost = [k for k in use.keywords if k not in names_b]
        what = ", ".join(f"keyword `{k}` no longer accepted" for k in lost) or call_b.binding
        yield _finding(use, "keyword-rejected", "no-go", call_a.binding, "rejected", f"{what} ({call_b.binding})")
        return
    named_a = {p.name for p in a.params or []}
    for keyword, note in sorted(b.keyword_notes.items()):
        before = a.keyword_notes.get(keyword, "named in the signature" if keyword in named_a else "")
        if note == before or keyword not in use.keywords:
            continue
        if note.startswith("deprecated"):
            yield _finding(use, "keyword-deprecated", "warning", call_a.binding, "deprecated", f"`{keyword}`: {note}")
        elif note.startswith("unnamed") and keyword in named_a:
            yield _finding(use, "keyword-unverified", "warning", call_a.binding, call_b.binding, f"`{keyword}`: {note}")


def _defaults(use: Use, a: SymbolProbe, b: SymbolProbe) -> Iterator[Finding]:
    """A parameter both versions have, the call leaves out, whose default differs: the call's behaviour moves."""
    if use.starred or a.params is None or b.params is None:
        return
    before = {p.name: p for p in a.params}
    positional = [p.name for p in b.params if p.kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    given = set(use.keywords) | set(positional[: use.positional])
    for param in b.params:
        old = before.get(param.name)
        if old is None or param.name in given or param.kind.startswith("VAR_") or old.default == param.default:
            continue
        sa, sb = symbol_status(a), symbol_status(b)
        detail = f"default of `{param.name}` changed from {old.default} to {param.default}"
        if param.default == "None":  # the signature hides the effective value (see NOTES: torch.load's weights_only)
            detail += " (None: the value is decided inside; the behaviour may or may not differ)"
        yield _finding(use, "default-changed", "warning", sa, sb, detail)


def _lookup(use: Use, side_a: _Side, side_b: _Side) -> Iterator[Finding]:
    a, b = side_a.lookup(use), side_b.lookup(use)
    if a is None or b is None or use.lookup is None:
        return
    text = f"{use.lookup.via} {use.lookup.value!r}"
    if a.resolved and not b.resolved:
        yield _finding(use, "lookup-failed", "no-go", "ok", "missing", f"{text}: {b.error}")
    elif b.resolved and not a.resolved:
        yield _finding(use, "fixed", "info", "missing", "ok", f"{text}: {a.error}")
    elif a.resolved.rpartition(".")[2] != b.resolved.rpartition(".")[2]:
        yield _finding(use, "moved", "warning", "ok", "ok", f"{text} now gives {b.resolved} (was {a.resolved})")


def compare(extraction: Extraction, baseline: ProbeAnswer, candidate: ProbeAnswer) -> list[Finding]:
    """Every finding, in file and line order."""
    side_a, side_b = _Side(baseline), _Side(candidate)
    findings: list[Finding] = []
    for use in extraction.uses:
        if use.kind == "string":
            findings += _lookup(use, side_a, side_b)
            continue
        a, b = side_a.symbol(use.symbol), side_b.symbol(use.symbol)
        presence = list(_presence(use, a, b))
        findings += presence
        if presence or a is None or b is None or not (a.works and b.works):
            continue
        findings += _changes(use, a, b)
        if use.kind in ("call", "decorator"):
            bound = list(_keywords(use, side_a, side_b, a, b))
            findings += bound
            if not any(f.change == "keyword-rejected" for f in bound):  # a call B refuses has no defaults to move
                findings += _defaults(use, a, b)
    return sorted(findings, key=lambda f: (f.path, f.line, f.col, f.symbol, f.change))


def counts(
    extraction: Extraction, baseline: ProbeAnswer, candidate: ProbeAnswer, findings: list[Finding]
) -> dict[str, int]:
    """The closing note's numbers: symbols resolved / missing / moved / deprecated in B, and what was not checked."""
    names = {u.symbol for u in extraction.uses if u.kind != "string"}
    known = {n for n in names if _works(baseline, n) or _works(candidate, n)}
    status = Counter(symbol_status(candidate.symbols.get(n)) for n in known)
    changes = Counter(f.change for f in findings)
    return {
        "files": len(extraction.files),
        "uses": len(extraction.uses),
        "symbols": len(names),
        "resolved_in_candidate": status["ok"] + status["deprecated"],
        "missing_in_candidate": status["missing"] + status["placeholder"],
        "absent_in_both": len(names - known),
        "moved": len({f.symbol for f in findings if f.change == "moved" and f.symbol in names}),
        "deprecated": len({f.symbol for f in findings if f.change == "deprecated" and f.symbol in names}),
        "lookups": len({(u.lookup.getter, u.lookup.value) for u in extraction.uses if u.lookup}),
        "not_checked": len(extraction.unchecked),
        "not_scanned": len(extraction.not_scanned),
        **{f"findings_{k}": v for k, v in sorted(changes.items())},
    }


def _works(answer: ProbeAnswer, name: str) -> bool:
    info = answer.symbols.get(name)
    return bool(info and info.works)
