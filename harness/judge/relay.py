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


def _numbers(group: list[RelayDelta]) -> dict[str, float]:
    """The largest error of each kind the group's loads measured (inference, training mode, continued training)."""
    numbers: dict[str, float] = {}
    for field in ("max_abs_error", "training_max_abs_error", "continuation_max_abs_error"):
        values = [getattr(d.candidate, field) for d in group if getattr(d.candidate, field) is not None]
        if values and (field == "max_abs_error" or max(values) > 0):
            numbers[field] = max(values)
    return numbers


def _drift_detail(group: list[RelayDelta]) -> str:
    """What drifted, so the reason says where to look: the weights' layout, or predictions in which mode."""
    layouts = sorted({d.candidate.weights for d in group if d.candidate.weights.startswith("layout-changed")})
    if layouts:
        return f"; weights {layouts[0]}"
    if any((d.candidate.training_max_abs_error or 0) > 0 for d in group):
        return "; predictions in training mode differ too"
    return ""


def signatures_changed(delta: RelayDelta) -> bool:
    """B reads other serving signatures from A's SavedModel than A does: a serving client built on A breaks."""
    before, after = delta.baseline_signatures, delta.candidate.signatures
    return "n/a" not in (before, after) and before != after


def _signature_reasons(builder: Builder, deltas: list[RelayDelta]) -> None:
    """One reason per format and change: every model's signatures read differently for the same cause."""
    groups: dict[tuple[str, str, str, str], list[RelayDelta]] = {}
    for delta in (d for d in deltas if signatures_changed(d)):
        row = delta.candidate
        groups.setdefault((row.family, row.format, delta.baseline_signatures, row.signatures), []).append(delta)
    for (family, fmt, before, after), group in groups.items():
        models = sorted(d.candidate.model for d in group)
        scenario = f"relay:{family}:{fmt}"
        builder.add(
            "no-go",
            "relay",
            [scenario],
            f"serving signatures of {family} models saved as {fmt} on {builder.base} ({', '.join(models)}) read "
            f"differently on {builder.cand}: {builder.base} reads {before[:300]}; {builder.cand} reads {after[:300]}",
            records=[f"{scenario}::{m}" for m in models],
            reproduce=builder.relay_rerun(),
        )


def add_relay_reasons(builder: Builder, deltas: list[RelayDelta]) -> None:
    _signature_reasons(builder, deltas)
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
        if outcome == "loaded-drifted":
            summary += _drift_detail(group)
        scenario = f"relay:{family}:{fmt}"
        builder.add(
            severity,
            kind,
            [scenario],
            summary,
            records=[f"{scenario}::{m}" for m in models],
            error=group[0].error,
            numbers=_numbers(group),
            reproduce=builder.relay_rerun(),
        )
