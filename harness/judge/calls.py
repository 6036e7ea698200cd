"""Call and warnings records in a ledger, judged by what a user's line of code does, not by the words it prints.

A ``call`` record is one API call with the keyword under test (``SGD(lr=)``) and its outcome. What matters to a
team is whether that line still works on the candidate:
- it worked on A (accepted, warned, deprecated, renamed) and is rejected or silently ignored on B: blocking, with
  B's error, because the user's code breaks or stops doing what it says;
- it works on both but differently (accepted -> deprecated, or a new keyword name): a warning, with the new name;
- it was broken on A (rejected, ignored) and works on B: fixed, never blocking;
- broken on both, or the same outcome with other wording: nothing to act on, no line. The same outcome with a config
  that no longer round-trips is a warning (a saved config would come back different).

An ``outcomes`` record maps labels (one call each: a ModelCheckpoint path, a load of one model) to free-form outcome
texts. A text naming a failure (``rejected: ValueError``, ``load-error: …``, ``unavailable: …``, ``absent``, a bare
exception class) is broken, anything else works. Working on A and broken on B, or working on both with another
outcome (``loaded`` -> ``loaded-without-compile``, ``reloaded-same`` -> ``reloaded-different``), blocks; broken on
A and working on B is fixed; broken on both with another error is no line; a label new on B is no line.

A ``warnings`` record lists the warnings some calls raise. A warning new on B is a warning (the deprecation a team
wants to hear of before the removal); the same call's warning reworded, or a warning gone, is only noted.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from harness.drift import DriftEntry

if TYPE_CHECKING:
    from harness.judge.reasons import Builder, ReasonKind, Severity

__all__ = [
    "WORKING_OUTCOMES",
    "add_call_reasons",
    "add_outcome_reasons",
    "add_warning_reasons",
    "call_class",
    "outcome_works",
]

#: Outcomes of a call that leave the user's line doing what it says (perhaps with a warning).
WORKING_OUTCOMES = frozenset({"accepted", "warned", "deprecated", "renamed"})
#: Outcome texts that say the labelled call failed: a failure word first, or an exception class's name.
_FAILED_TEXT = re.compile(
    r"^(rejected|error|load-error|save-error|unavailable|absent|missing|crash|timeout|refused)\b"
    r"|^[A-Za-z_][\w.]*(Error|Exception|Exit)\b"
)
#: How many calls one reason lists by name before it says "…".
_LISTED = 8


def _outcomes(entry: DriftEntry) -> tuple[str, str] | None:
    pair = entry.metrics.get("outcome")
    if isinstance(pair, list) and len(pair) == 2:
        return str(pair[0]), str(pair[1])
    return None


def call_class(entry: DriftEntry) -> str | None:
    """``broken``, ``changed``, ``fixed``, ``round-trip`` or None (nothing a user could act on)."""
    pair = _outcomes(entry)
    if pair is None:
        return None
    before, after = (outcome in WORKING_OUTCOMES for outcome in pair)
    if before and not after:
        return "broken"
    if after and not before:
        return "fixed"
    if pair[0] != pair[1]:
        return "changed" if before else None
    m = entry.metrics
    keys = [*m.get("changed", {}), *m.get("added", []), *m.get("removed", [])]
    return "round-trip" if any(key.startswith("round_trip") for key in keys) else None


def _said(entry: DriftEntry) -> str:
    """What the candidate said about the call: its error, the keyword's new name, or its warning."""
    m = entry.metrics
    if m.get("error"):
        return f" ({str(m['error'])[:200]})"
    if m.get("renamed_to"):
        return f" (use {m['renamed_to']}=)"
    if m.get("warning"):
        return f" ({str(m['warning'])[:200]})"
    return ""


def _line(entry: DriftEntry) -> str:
    pair = _outcomes(entry) or ("?", "?")
    return f"{entry.record}: {pair[0]} -> {pair[1]}{_said(entry)}"


def _listing(group: list[DriftEntry]) -> str:
    return "; ".join(_line(e) for e in group[:_LISTED]) + (" …" if len(group) > _LISTED else "")


def _transitions(group: list[DriftEntry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in group:
        pair = _outcomes(entry) or ("?", "?")
        counts[f"{pair[0]} -> {pair[1]}"] = counts.get(f"{pair[0]} -> {pair[1]}", 0) + 1
    return counts


def add_call_reasons(builder: Builder, entries: list[DriftEntry]) -> None:
    """One reason per scenario and class of change: a scenario probes one API family, its calls move together."""
    classes: dict[str, dict[str, list[DriftEntry]]] = {}
    for entry in entries:
        kind = call_class(entry)
        if kind:
            classes.setdefault(kind, {}).setdefault(entry.scenario, []).append(entry)
    wording: dict[str, tuple[Severity, ReasonKind, str]] = {
        "broken": ("no-go", "call-broken", "call(s) that work on {base} are rejected or ignored on {cand}"),
        "changed": ("warning", "call-changed", "call(s) still work on {cand} but differently"),
        "round-trip": ("warning", "call-changed", "call(s) whose config no longer round-trips the same on {cand}"),
        "fixed": ("fixed", "call-fixed", "call(s) broken on {base} work on {cand}"),
    }
    for kind, (severity, reason_kind, text) in wording.items():
        for scenario, group in sorted(classes.get(kind, {}).items()):
            said = text.format(base=builder.base, cand=builder.cand)
            builder.add(
                severity,
                reason_kind,
                [scenario],
                f"{len(group)} {said}: {_listing(group)}",
                records=[f"{e.scenario}::{e.record}" for e in group],
                numbers={"calls": len(group), "transitions": _transitions(group)},
            )


def _texts(entries: list[DriftEntry], side: str) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for entry in entries:
        for label, items in entry.metrics.get(side, {}).items():
            texts.setdefault(f"{entry.record}[{label}]" if label else entry.record, []).extend(items)
    return texts


def _quote(texts: dict[str, list[str]]) -> str:
    shown = [
        f"{label}: {items[0][:200]}" + (f" (+{len(items) - 1})" if len(items) > 1 else "")
        for label, items in texts.items()
    ]
    return "; ".join(shown[:_LISTED]) + (" …" if len(shown) > _LISTED else "")


def add_warning_reasons(builder: Builder, entries: list[DriftEntry]) -> None:
    """Per scenario: calls that warn on B and said nothing on A (a warning); rewordings and silences (noted)."""
    for scenario, group in sorted(_by_scenario(entries).items()):
        new = _texts(group, "new")
        gone = _texts(group, "gone")
        first_time = {label: items for label, items in new.items() if label not in gone}
        reworded_or_silent = {label: new.get(label, items) for label, items in gone.items()}
        records = [f"{e.scenario}::{e.record}" for e in group]
        if first_time:
            builder.add(
                "warning",
                "new-warning",
                [scenario],
                f"{len(first_time)} call(s) raise warnings on {builder.cand} that {builder.base} did not: "
                + _quote(first_time),
                records=records,
                numbers={"calls": len(first_time)},
            )
        if reworded_or_silent:
            builder.add(
                "info",
                "warning-reworded",
                [scenario],
                f"{len(reworded_or_silent)} call(s) warn differently or no longer warn on {builder.cand}: "
                + _quote(reworded_or_silent),
                records=records,
            )


def _by_scenario(entries: list[DriftEntry]) -> dict[str, list[DriftEntry]]:
    groups: dict[str, list[DriftEntry]] = {}
    for entry in entries:
        if entry.verdict == "changed":
            groups.setdefault(entry.scenario, []).append(entry)
    return groups


def outcome_works(text: object) -> bool:
    """Whether one label's outcome text says the call did what it says (see the module's rules)."""
    return not _FAILED_TEXT.match(str(text))


def _outcome_changes(entry: DriftEntry) -> dict[str, list[tuple[str, str, str]]]:
    """The record's changed labels by class (``broken``, ``fixed``), each as (label, before, after)."""
    changes: dict[str, list[tuple[str, str, str]]] = {}
    for label, (before, after) in entry.metrics.get("changed", {}).items():
        was, now = outcome_works(before), outcome_works(after)
        kind = "broken" if was else "fixed" if now else None
        if kind:
            changes.setdefault(kind, []).append((label, str(before), str(after)))
    for label in entry.metrics.get("removed", []):
        changes.setdefault("broken", []).append((label, "reported", "no longer reported"))
    return changes


def add_outcome_reasons(builder: Builder, entries: list[DriftEntry]) -> None:
    """One reason per scenario and class: its labels are one API's calls (one callback's paths, one loader)."""
    by_class: dict[str, dict[str, list[tuple[DriftEntry, tuple[str, str, str]]]]] = {}
    for entry in entries:
        for kind, changes in _outcome_changes(entry).items():
            by_class.setdefault(kind, {}).setdefault(entry.scenario, []).extend((entry, c) for c in changes)
    wording: dict[str, tuple[Severity, ReasonKind, str]] = {
        "broken": ("no-go", "call-broken", "outcome(s) that work on {base} fail or change on {cand}"),
        "fixed": ("fixed", "call-fixed", "outcome(s) failing on {base} work on {cand}"),
    }
    for kind, (severity, reason_kind, text) in wording.items():
        for scenario, found in sorted(by_class.get(kind, {}).items()):
            listed = "; ".join(f"{e.record}[{label}]: {before} -> {after}"[:300] for e, (label, before, after) in found)
            builder.add(
                severity,
                reason_kind,
                [scenario],
                f"{len(found)} {text.format(base=builder.base, cand=builder.cand)}: {listed[:1500]}",
                records=sorted({f"{e.scenario}::{e.record}" for e, _ in found}),
                numbers={"outcomes": len(found)},
            )
