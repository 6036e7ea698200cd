"""Which cells run: the scenario selection of matrix.yaml, a command-line subset of it, and CI shards.

Selection patterns are checked against the registry so a glob that matches nothing is an error, not a silently
empty run.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping

from harness.errors import MatrixError
from harness.matrix.checks import short
from harness.matrix.located import Located
from harness.matrix.model import Matrix, MatrixSpec, ScenarioSelection
from harness.worker.models import MODEL_PREFIX
from harness.worker.scenario import Scenario

__all__ = ["restrict", "select_scenarios", "shard"]


def _check_selection(sel: ScenarioSelection, registry: Mapping[str, Scenario], located: Located) -> None:
    areas = {s.area for s in registry.values()}
    for i, area in enumerate(sel.areas):
        if area not in areas:
            located.problem(
                ("scenarios", "areas", i), f"unknown area {short(area)} (known: {', '.join(sorted(areas))})"
            )
    for kind in ("ids", "exclude"):
        for i, pattern in enumerate(getattr(sel, kind)):
            if not fnmatch.filter(registry, pattern):
                located.problem(("scenarios", kind, i), f"{short(pattern)} matches no scenario")
    for pattern in sel.timeouts:
        if not fnmatch.filter(registry, pattern):
            located.problem(("scenarios", "timeouts", pattern), f"{short(pattern)} matches no scenario")


def _selected(sel: ScenarioSelection, scenario_id: str, entry: Scenario) -> bool:
    if entry.parametrized:  # planned by the orchestrator (the relay), never selected as a plain cell
        return False
    if scenario_id.startswith(MODEL_PREFIX):  # a model listed under models: runs unless excluded by name
        return not any(fnmatch.fnmatchcase(scenario_id, p) for p in sel.exclude)
    if sel.areas and entry.area not in sel.areas:
        return False
    if sel.ids and not any(fnmatch.fnmatchcase(scenario_id, p) for p in sel.ids):
        return False
    return not any(fnmatch.fnmatchcase(scenario_id, p) for p in sel.exclude)


def select_scenarios(
    spec: MatrixSpec, registry: Mapping[str, Scenario], located: Located
) -> tuple[tuple[str, ...], dict[str, float]]:
    """The selected scenario ids, sorted, and each one's timeout (matrix glob, then scenario, then default)."""
    sel = spec.scenarios
    _check_selection(sel, registry, located)
    chosen = [sid for sid, entry in sorted(registry.items()) if _selected(sel, sid, entry)]
    timeouts = {}
    for scenario_id in chosen:
        matched = next((s for p, s in sel.timeouts.items() if fnmatch.fnmatchcase(scenario_id, p)), None)
        timeouts[scenario_id] = matched or registry[scenario_id].timeout or spec.defaults.timeout
    return tuple(chosen), timeouts


def shard(matrix: Matrix, spec: str) -> list[str]:
    """The environments of shard ``K/N``: names sorted, then every N-th from the K-th (stable, balanced)."""
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise MatrixError([f"--shard {spec!r}: expected K/N with whole numbers, e.g. 2/4"]) from None
    if not 1 <= k <= n:
        raise MatrixError([f"--shard {spec!r}: K must be between 1 and N"])
    return [name for i, name in enumerate(sorted(matrix.environments)) if i % n == k - 1]


def restrict(matrix: Matrix, patterns: list[str]) -> Matrix:
    """The same matrix with only the selected scenarios matching one of ``patterns`` (e.g. from the command line)."""
    chosen = tuple(s for s in matrix.scenario_ids if any(fnmatch.fnmatchcase(s, p) for p in patterns))
    if not chosen:
        raise MatrixError([f"{matrix.path}: no selected scenario matches {', '.join(patterns)}"])
    return dataclasses.replace(matrix, scenario_ids=chosen, timeouts={s: matrix.timeouts[s] for s in chosen})
