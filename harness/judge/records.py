"""Record drift in a ledger grouped into reasons (see ``harness.judge.reasons`` for the grouping rules)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.drift import DriftEntry
from harness.judge.calls import add_call_reasons, add_outcome_reasons, add_warning_reasons

if TYPE_CHECKING:
    from harness.judge.reasons import Builder

__all__ = ["add_record_reasons", "describe", "grouped"]

_CLASS_KEYS = ("class_name", "registered_name", "module", "class", "__class__")


def _is_rename(entry: DriftEntry, scenario_entries: list[DriftEntry]) -> bool:
    """Only class-naming keys changed and every other record of the scenario is bitwise identical."""
    changed = entry.metrics.get("changed", {})
    if not changed or entry.metrics.get("added") or entry.metrics.get("removed"):
        return False
    if not all(key.rsplit(".", 1)[-1] in _CLASS_KEYS for key in changed):
        return False
    others = [e for e in scenario_entries if e is not entry and e.kind in ("array", "ordering", "scalar")]
    return bool(others) and all(e.verdict == "identical" for e in others)


def _record_class(entry: DriftEntry, scenario_entries: list[DriftEntry]) -> str | None:
    """Which group a record's change falls in, or None when it is no change at all."""
    if entry.verdict in ("identical", "info", "added"):
        return None
    if entry.verdict == "flaky":
        return "flaky"
    if entry.kind == "api_map":
        return "api"
    if entry.kind in ("call", "warnings", "outcomes") and entry.verdict == "changed":
        return entry.kind
    if entry.verdict == "within":
        return "within"
    if entry.kind == "config" and entry.verdict == "changed" and "changed" in entry.metrics:
        if not entry.metrics["changed"]:
            return "config-keys"
        return "renamed" if _is_rename(entry, scenario_entries) else "blocking"
    return "blocking"


def _signature(entry: DriftEntry) -> str:
    m = entry.metrics
    changes = [f"{k.split('.')[-1]}: {old!r} -> {new!r}" for k, (old, new) in sorted(m.get("changed", {}).items())]
    changes += [f"+{k.split('.')[-1]}" for k in m.get("added", [])] + [
        f"-{k.split('.')[-1]}" for k in m.get("removed", [])
    ]
    return ", ".join(changes)


def grouped(entries: list[DriftEntry], key: Callable[[DriftEntry], str]) -> dict[str, list[DriftEntry]]:
    groups: dict[str, list[DriftEntry]] = {}
    for entry in entries:
        groups.setdefault(key(entry), []).append(entry)
    return groups


def _keys(entries: list[DriftEntry]) -> list[str]:
    return [f"{e.scenario}::{e.record}" for e in entries]


def _scenarios(entries: list[DriftEntry]) -> list[str]:
    return sorted({e.scenario for e in entries})


def add_record_reasons(builder: Builder, entries: list[DriftEntry]) -> None:
    by_scenario = grouped(entries, lambda e: e.scenario)
    classes: dict[str, list[DriftEntry]] = {}
    for scenario_entries in by_scenario.values():
        for entry in scenario_entries:
            kind = _record_class(entry, scenario_entries)
            if kind:
                classes.setdefault(kind, []).append(entry)
    for sid, group in grouped(classes.get("blocking", []), lambda e: e.scenario).items():
        parts = "; ".join(f"{e.record}: {describe(e)}" for e in group[:6]) + (" …" if len(group) > 6 else "")
        builder.add(
            "no-go",
            "drift",
            [sid],
            f"{len(group)} record(s) changed beyond tolerance: {parts}",
            records=_keys(group),
            numbers=_worst(group),
        )
    for sig, group in grouped(classes.get("config-keys", []), _signature).items():
        builder.add(
            "warning",
            "config-keys",
            _scenarios(group),
            f"config keys added or removed, no value changed: {sig}",
            records=_keys(group),
        )
    for sig, group in grouped(classes.get("renamed", []), _signature).items():
        builder.add(
            "warning", "renamed", _scenarios(group), f"class renamed, values bitwise equal: {sig}", records=_keys(group)
        )
    for name, group in grouped(classes.get("within", []), lambda e: e.record).items():
        builder.add(
            "warning",
            "drift-within",
            _scenarios(group),
            f"{name}: {describe(max(group, key=_abs))}",
            records=_keys(group),
            numbers=_worst(group),
        )
    for sid, group in grouped(classes.get("flaky", []), lambda e: e.scenario).items():
        builder.add(
            "info",
            "flaky",
            [sid],
            "differs between repeats of one environment: never judged as drift",
            records=_keys(group),
        )
    _api(builder, classes.get("api", []))
    add_call_reasons(builder, classes.get("call", []))
    add_warning_reasons(builder, classes.get("warnings", []))
    add_outcome_reasons(builder, classes.get("outcomes", []))


_NAMESPACE = re.compile(r"^(tf\.)?(keras|tf_keras)\.")


def _gone(entry: DriftEntry) -> list[str]:
    m = entry.metrics
    return list(m.get("removed", [])) + [f"{old} (now {new})" for old, new in m.get("moved", {}).items()]


def _removal_signature(entry: DriftEntry) -> str:
    return "|".join(sorted(_NAMESPACE.sub("", g) for g in _gone(entry)))


def _api(builder: Builder, entries: list[DriftEntry]) -> None:
    """Removed APIs, one reason per set of removals: ``keras.X`` and ``tf.keras.X`` gone together are one cause."""
    removals = [e for e in entries if _gone(e)]
    for group in grouped(removals, _removal_signature).values():
        gone = [g for e in group for g in _gone(e)]
        listing = ", ".join(gone[:12]) + (" …" if len(gone) > 12 else "")
        builder.add(
            "no-go",
            "api-removed",
            _scenarios(group),
            f"{len(gone)} API(s) present on {builder.base} are gone on {builder.cand}: {listing}",
            records=_keys(group),
            numbers={
                "apis_gone": len(gone),
                "status": {k: v for e in group for k, v in e.metrics.get("removed_status", {}).items()},
            },
        )
    for entry in (e for e in entries if e.metrics.get("newly_deprecated")):
        deprecated = entry.metrics["newly_deprecated"]
        builder.add(
            "warning",
            "deprecation",
            [entry.scenario],
            f"newly deprecated on {builder.cand}: {', '.join(deprecated[:12])}",
            records=[f"{entry.scenario}::{entry.record}"],
            numbers={"apis_deprecated": len(deprecated)},
        )


def _abs(entry: DriftEntry) -> float:
    value = entry.metrics.get("max_abs_error", 0.0)
    return float(value) if isinstance(value, int | float | str) else 0.0


def _worst(group: list[DriftEntry]) -> dict[str, Any]:
    worst = max(group, key=_abs)
    numbers = {
        k: v
        for k, v in worst.metrics.items()
        if k in ("max_abs_error", "max_rel_error", "max_ulp", "share_beyond", "positions_differ", "kendall_tau", "size")
    }
    if worst.tolerance is not None:
        numbers["tolerance"] = worst.tolerance.model_dump()
    return {"record": worst.record, **numbers} if numbers else {}


def describe(entry: DriftEntry) -> str:
    """One record's change in words, with its numbers."""
    m = entry.metrics
    if entry.verdict == "missing":
        return "recorded on the baseline, absent on the candidate"
    if entry.kind == "ordering":
        tau = f", Kendall tau {m['kendall_tau']:.3f}" if "kendall_tau" in m else ""
        return f"{m.get('positions_differ', '?')} of {m.get('size', '?')} positions moved{tau}"
    if "max_abs_error" in m:
        nums = {
            k: float(v) if isinstance(v, str) else v
            for k, v in m.items()
            if k in ("max_abs_error", "max_rel_error", "share_beyond")
        }
        tol = f" (rtol {entry.tolerance.rtol:g}, atol {entry.tolerance.atol:g})" if entry.tolerance else ""
        return (
            f"max abs {nums['max_abs_error']:.3g}, max rel {nums['max_rel_error']:.3g}, "
            f"max ULP {m.get('max_ulp', '?')}, {nums['share_beyond']:.1%} beyond{tol}"
        )
    if "detail" in m:
        return str(m["detail"])
    if "changed" in m:
        return "config " + _signature(entry)
    if "old" in m:
        return f"{m['old']!r} -> {m['new']!r}"[:400]
    return entry.verdict
