"""The bisection's decisions: whether one measurement differs from the good side, the flaky gate, and the search.

"Differs" is the verdict's own rule, never a second one: the two documents are measured into a ledger
(``harness.ledger.measure_path``, which uses ``harness.drift`` and the matrix's tolerances) and judged
(``harness.judge``). A release is **bad** when

* a selected cell's status differs from the good release's (a crash or a timeout is such a status: a bad signal,
  never a skip), or
* the verdict has a reason that blocks (a record beyond tolerance, a call that stopped working, an API gone, a relay
  load that broke) or that is fixed (the behaviour changed the other way: bisecting a fix is bisecting a change), or
* with ``--record``, a named record changed in any way the verdict reports other than drift within tolerance (a
  new warning, a config key added): naming a record says that record's change is the question.

Waivers are not applied: a waiver accepts a difference for a go/no-go answer, it does not move where the difference
appeared. A release is **skip** when it says nothing about the behaviour, like ``git bisect skip``: it cannot be
installed (``env-error``), its worker or its frameworks cannot start, or every selected cell that ran on the good
side is skipped there (a ``requires`` it does not meet). Everything else (identical, within tolerance, a new warning
of a record not named) is **good**.

The search itself is a pure function of the candidates and a probe, so it is tested without any environment.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from harness.drift import DriftEntry
from harness.judge import Reason, judge
from harness.judge.records import describe
from harness.ledger import Ledger, measure_path
from harness.results import EnvironmentResult
from harness.verdicts import Policy

__all__ = ["GateAnswer", "Judgement", "Measured", "Search", "compare", "gate", "search", "unusable"]

StepVerdict = Literal["good", "bad", "skip"]
#: Reason severities that are a change of behaviour whatever record they are about.
CHANGE_SEVERITIES = ("no-go", "fixed")
#: Reasons about cell statuses: the status rule below already says these, in its own words.
_STATUS_KINDS = ("regression", "fixed", "new-failure", "new-skip", "shared-failure", "not-run", "incomplete")
_NOT_STARTED = ("before running any scenario", "did not start within")


@dataclass
class Measured:
    """One environment measured once: its document, its record values, how long it took, and whether its
    frameworks could be imported at all (``cannot_start``: why not, found by the step's own import probe)."""

    doc: EnvironmentResult
    arrays: Mapping[str, np.ndarray]
    seconds: float = 0.0
    cannot_start: str = ""


@dataclass
class Judgement:
    """One measurement against the good side: the step's verdict, why, and the records that differ (with numbers)."""

    verdict: StepVerdict
    why: str
    reasons: list[Reason] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


def _first_line(text: str, limit: int = 300) -> str:
    lines = text.strip().splitlines()
    return (lines[-1] if lines else "")[:limit]


def unusable(measured: Measured) -> str:
    """Why this release says nothing about the behaviour (not installable, cannot start), or ''."""
    doc = measured.doc
    if doc.env_error is not None:
        return f"cannot be installed: {_first_line(doc.env_error.message)}"
    if measured.cannot_start:
        return f"cannot start: {measured.cannot_start}"
    cells = doc.scenarios
    if cells and all(c.status == "crash" and any(m in c.message for m in _NOT_STARTED) for c in cells):
        return f"cannot start: {cells[0].message}"
    return ""


def _statuses(doc: EnvironmentResult) -> dict[str, tuple[str, str]]:
    """Each cell's status and message by id (the first cell of an id wins, as in the ledger)."""
    found: dict[str, tuple[str, str]] = {}
    for cell in doc.scenarios:
        found.setdefault(cell.id, (cell.status, cell.message))
    return found


def _silent(good: EnvironmentResult, other: EnvironmentResult) -> str:
    """Why ``other``'s cells say nothing (every cell that ran on the good side is skipped there), or ''."""
    before, after = _statuses(good), _statuses(other)
    ran = [sid for sid, (status, _) in before.items() if status != "skip" and sid in after]
    if ran and all(after[sid][0] == "skip" for sid in ran):
        return f"the selected scenarios are skipped there ({_first_line(after[ran[0]][1], 200)})"
    return ""


def _nothing_runs(doc: EnvironmentResult) -> str:
    """Why no selected cell says anything at the good release (all skipped: a ``requires`` it lacks), or ''."""
    if doc.scenarios and all(c.status == "skip" for c in doc.scenarios) and not doc.relay:
        return f"skips every selected scenario ({_first_line(doc.scenarios[0].message, 200)})"
    return ""


def _status_changes(good: EnvironmentResult, other: EnvironmentResult) -> list[str]:
    """``<id>: <good status> -> <other status>`` for each cell whose status moved.

    A cell skipped on ``other`` or absent there (the relay's producer runs at the good release only) says nothing.
    """
    before, after = _statuses(good), _statuses(other)
    changes = []
    for sid, (status, _) in before.items():
        now, message = after.get(sid, ("skip", ""))
        if now not in (status, "skip"):
            said = f" ({_first_line(message, 200)})" if message else ""
            changes.append(f"{sid}: {status} -> {now}{said}")
    return changes


def _matches(entry: DriftEntry, patterns: Sequence[str]) -> bool:
    names = (entry.record, f"{entry.scenario}::{entry.record}")
    return any(fnmatch.fnmatchcase(name, p) for p in patterns for name in names)


def _only(ledger: Ledger, records: Sequence[str]) -> Ledger:
    """The ledger with only the records ``--record`` names (globs over the name or ``scenario::name``)."""
    if not records:
        return ledger
    return ledger.model_copy(update={"records": [e for e in ledger.records if _matches(e, records)]})


def _difference(entry: DriftEntry) -> dict[str, Any]:
    numbers = {k: v for k, v in entry.metrics.items() if isinstance(v, int | float | str) and k != "detail"}
    return {
        "scenario": entry.scenario,
        "record": entry.record,
        "kind": entry.kind,
        "verdict": entry.verdict,
        "detail": describe(entry),
        "numbers": numbers,
    }


def _is_change(reason: Reason, named: bool) -> bool:
    """A reason that is a change of behaviour (see the module's docstring); ``named``: ``--record`` was given."""
    if reason.severity in CHANGE_SEVERITIES:
        return True
    return named and reason.severity == "warning" and reason.kind != "drift-within" and bool(reason.records)


def compare(good: Measured, other: Measured, policy: Policy, records: Sequence[str] = ()) -> Judgement:
    """``other`` against the good side's measurement, by the verdict's rules (see the module's docstring)."""
    why = unusable(other) or _silent(good.doc, other.doc)
    if why:
        return Judgement("skip", why)
    ledger = _only(
        measure_path(
            good.doc, other.doc, (good.arrays, other.arrays), expected=policy.expected, tolerances=policy.tolerances
        ),
        records,
    )
    verdict = judge(ledger, waivers=[], today=policy.today)
    changes = [r for r in verdict.reasons if _is_change(r, bool(records))]
    statuses = _status_changes(good.doc, other.doc)
    if not changes and not statuses:
        return Judgement("good", "no change beyond tolerance")
    covered = {key for r in changes for key in r.records}
    differences = [_difference(e) for e in ledger.records if f"{e.scenario}::{e.record}" in covered]
    said = [*statuses, *(f"{r.kind}: {r.summary}" for r in changes if r.kind not in _STATUS_KINDS)]
    return Judgement("bad", "; ".join(said)[:600], changes, differences, said)


@dataclass
class Search:
    """Where the search ended: indices into the candidates (-1: the good release, len: the bad one)."""

    last_good: int
    first_bad: int
    skipped: dict[int, str] = field(default_factory=dict)

    def undecided(self) -> list[int]:
        """Skipped candidates between the two ends: the first bad release could be any of them, too."""
        return [i for i in range(self.last_good + 1, self.first_bad) if i in self.skipped]


def _next(low: int, high: int, skipped: Mapping[int, str]) -> int | None:
    """The untried index between ``low`` and ``high`` nearest their middle (the lower of two), or None."""
    middle = (low + high) / 2
    open_ = [i for i in range(low + 1, high) if i not in skipped]
    return min(open_, key=lambda i: (abs(i - middle), i)) if open_ else None


def search(count: int, probe: Callable[[int], Judgement]) -> Search:
    """Bisect ``count`` candidates between a good end (index -1) and a bad one (index ``count``).

    Each probe halves the open interval; a skipped candidate leaves it as it was and the next probe is the untried
    one nearest the middle, so skips cost one probe each and never end the search early.
    """
    state = Search(-1, count)
    while (index := _next(state.last_good, state.first_bad, state.skipped)) is not None:
        judgement = probe(index)
        if judgement.verdict == "skip":
            state.skipped[index] = judgement.why
        elif judgement.verdict == "bad":
            state.first_bad = index
        else:
            state.last_good = index
    return state


@dataclass
class GateAnswer:
    """The gate's answer: go on (``stop`` empty) or why there is nothing to bisect; each measurement's judgement."""

    stop: str
    measured: dict[str, Measured] = field(default_factory=dict)
    judged: dict[str, Judgement] = field(default_factory=dict)


def gate(measure: Callable[[str], Measured], policy: Policy, records: Sequence[str] = ()) -> GateAnswer:
    """X twice, then Y twice (``measure(role)``), stopping at the first answer that leaves nothing to bisect.

    X must be usable, run some selected cell (not skip them all) and be stable (its two runs judged the same); Y
    must differ from X in both of its runs and be stable itself; otherwise the bisection would find a boundary that
    is noise, or compare nothing.
    """
    answer = GateAnswer("")
    good = answer.measured["good"] = measure("good")
    answer.judged["good"] = Judgement("good", "the reference every step is compared with")
    if why := unusable(good) or _nothing_runs(good.doc):
        answer.judged["good"] = Judgement("skip", why)
        answer.stop = f"the good release {why}"
        return answer
    again = answer.measured["good-again"] = measure("good-again")
    answer.judged["good-again"] = compare(good, again, policy, records)
    if answer.judged["good-again"].verdict != "good":
        answer.stop = f"the good release is not stable: its two runs differ ({answer.judged['good-again'].why})"
        return answer
    for role in ("bad", "bad-again"):
        answer.measured[role] = measure(role)
        answer.judged[role] = compare(good, answer.measured[role], policy, records)
        if answer.judged[role].verdict == "skip":
            answer.stop = f"the bad release {answer.judged[role].why}"
            return answer
    answer.stop = _bad_side(answer, policy, records)
    return answer


def _bad_side(answer: GateAnswer, policy: Policy, records: Sequence[str]) -> str:
    """Why Y leaves nothing to bisect (the same as X, or flaky), or '' when it differs from X reliably."""
    verdicts = [answer.judged[role].verdict for role in ("bad", "bad-again")]
    if verdicts.count("bad") == 0:
        return "the bad release does not differ from the good one: nothing to bisect"
    if verdicts.count("bad") == 1:
        return "the bad release differs from the good one in only one of its two runs (flaky)"
    itself = compare(answer.measured["bad"], answer.measured["bad-again"], policy, records)
    if itself.verdict != "good":
        return f"the bad release is not stable: its two runs differ ({itself.why})"
    return ""
