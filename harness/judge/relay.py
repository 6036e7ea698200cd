"""Relay loads in a ledger grouped into reasons: B loading what A saved, judged against A loading it itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.ledger import RelayDelta
from harness.results import RELAY_BADNESS

if TYPE_CHECKING:
    from harness.judge.reasons import Builder, ReasonKind, Severity

__all__ = ["add_relay_reasons"]


def _relay_class(delta: RelayDelta) -> tuple[Severity, ReasonKind] | None:
    after = RELAY_BADNESS.get(delta.candidate.outcome)
    before = RELAY_BADNESS.get(delta.baseline_outcome, 0)
    if after is None:  # the candidate skipped it: nothing was tried
        return None
    if after > before:
        if delta.candidate.outcome == "optimizer-state-lost":
            return "warning", "optimizer-state-lost"
        own = RELAY_BADNESS.get(delta.candidate_own_outcome, 0)
        # B fails its own files of this format as badly: one cause, carried by B's save_load cell, not the relay
        return ("info", "own-failure") if own >= after else ("no-go", "relay")
    if after < before:
        return "fixed", "fixed"
    return ("info", "shared-failure") if after >= RELAY_BADNESS["loaded-drifted"] else None


def add_relay_reasons(builder: Builder, deltas: list[RelayDelta]) -> None:
    groups: dict[tuple[Any, ...], list[RelayDelta]] = {}
    for delta in deltas:
        cls, row = _relay_class(delta), delta.candidate
        if cls:
            groups.setdefault((*cls, row.family, row.format, row.outcome, row.error_class), []).append(delta)
    for (severity, kind, family, fmt, outcome, _), group in groups.items():
        models = sorted(d.candidate.model for d in group)
        how = f" ({group[0].candidate.how})" if outcome == "fallback-only" and group[0].candidate.how else ""
        summary = (
            f"{family} models saved as {fmt} on {builder.base}: {len(models)} ({', '.join(models)}) "
            f"{outcome}{how} on {builder.cand}, {group[0].baseline_outcome} on {builder.base} itself"
        )
        if kind == "own-failure":
            summary += f"; {builder.cand} fails its own {fmt} files the same way (see its save_load cell)"
        errors = [d.candidate.max_abs_error for d in group if d.candidate.max_abs_error is not None]
        scenario = f"relay:{family}:{fmt}"
        builder.add(
            severity,
            kind,
            [scenario],
            summary,
            records=[f"{scenario}::{m}" for m in models],
            error=group[0].error,
            numbers={"max_abs_error": max(errors)} if errors else {},
            reproduce=builder.relay_rerun(),
        )
