"""Upgrade paths: the (what a user runs now -> the candidate) pairs that verdicts judge.

A matrix may declare its paths under ``upgrades:``. Without that, they are derived: environments are grouped into
framework lines (a torch-only environment and a TensorFlow one answer different upgrade questions) and every older
environment of a line is paired with every newer one, so no question the matrix can answer is left out.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from packaging.version import Version

from harness.matrix.located import Loc, Located
from harness.matrix.model import Environment, Matrix, UpgradeChainSpec, UpgradePairSpec, tensorflow_package
from harness.worker.protocol import legacy_keras

__all__ = ["UpgradePath", "comparable", "declared_paths", "framework_line", "upgrade_paths"]

Pair = tuple[str, str]
_BACKEND_VAR = "KERAS_BACKEND"


@dataclass(frozen=True)
class UpgradePath:
    """One move to judge: ``baseline`` (run now) -> ``candidate``, within ``line`` (or ``"declared"``)."""

    baseline: str
    candidate: str
    line: str
    declared: bool


def framework_line(env: Environment) -> str | None:
    """The framework line an environment belongs to, or None when it fits none (nothing to upgrade along).

    ``tf-keras`` (legacy Keras selected), ``keras-<backend>`` (Keras without TensorFlow on another backend),
    ``tensorflow`` (any TensorFlow, Keras 2 or 3: the move from 2 to 3 is exactly what users ask about), ``torch``.
    """
    packages = env.packages
    has_tensorflow = tensorflow_package(packages) is not None
    backend = env.env.get(_BACKEND_VAR, "").strip().lower()
    if legacy_keras(env.env):
        return "tf-keras"
    if "keras" in packages and not has_tensorflow and backend not in ("", "tensorflow"):
        return f"keras-{backend}"
    if has_tensorflow:
        return "tensorflow"
    if "torch" in packages and "keras" not in packages:
        return "torch"
    return None


def _primary_package(env: Environment, line: str) -> str | None:
    """The package whose version orders a line: the framework the line is named after."""
    if line == "tensorflow":
        return tensorflow_package(env.packages)
    if line.startswith("keras-"):
        return "keras"
    return line  # "tf-keras", "torch"


def _age(env: Environment, line: str) -> tuple[int, Version, Version]:
    """Sort key, older first: pinned versions in version order, then ``latest`` (newer than any pin).

    On the same framework version the older Python comes first: moving only the interpreter is an upgrade too.
    """
    pin = env.packages.get(_primary_package(env, line) or "", "latest")
    python = Version(env.python)
    if pin == "latest":
        return (1, Version("0"), python)
    return (0, Version(pin), python)


def _lines(matrix: Matrix) -> dict[str, list[Environment]]:
    """Environments by framework line; lines in order of first appearance, environments in declaration order."""
    lines: dict[str, list[Environment]] = {}
    for env in matrix.environments.values():
        line = framework_line(env)
        if line is not None:
            lines.setdefault(line, []).append(env)
    return lines


def _derived(matrix: Matrix) -> list[UpgradePath]:
    paths: list[UpgradePath] = []
    for line, envs in _lines(matrix).items():
        ordered = sorted(envs, key=lambda env: _age(env, line))  # stable: ties keep declaration order
        paths.extend(UpgradePath(old.name, new.name, line, False) for old, new in itertools.combinations(ordered, 2))
    return paths


def upgrade_paths(matrix: Matrix) -> list[UpgradePath]:
    """The paths to judge: the declared ones if the matrix has any, else every older -> newer pair per line."""
    if matrix.upgrades:
        return [UpgradePath(old, new, "declared", True) for old, new in matrix.upgrades]
    return _derived(matrix)


def comparable(a: Environment, b: Environment, declared: Collection[Pair] = ()) -> bool:
    """Whether judging a move between ``a`` and ``b`` makes sense: one framework line, or a pair the user declared.

    Pass ``matrix.upgrades`` as ``declared``; a declaration counts in either direction (the question is whether
    the two can be compared at all, not which way is the upgrade).
    """
    if (a.name, b.name) in declared or (b.name, a.name) in declared:
        return True
    line = framework_line(a)
    return line is not None and line == framework_line(b)


# ------------------------------------------------------------------------------------------ declared in the file


def _steps(index: int, item: UpgradePairSpec | UpgradeChainSpec) -> Iterator[tuple[Pair, Loc, Loc]]:
    """Each (from, to) an item declares, with the locations of both names."""
    loc = ("upgrades", index)
    if isinstance(item, UpgradePairSpec):
        yield (item.from_, item.to), (*loc, "from"), (*loc, "to")
        return
    for j, (old, new) in enumerate(itertools.pairwise(item.chain)):
        yield (old, new), (*loc, "chain", j), (*loc, "chain", j + 1)


def _check_known(names: Mapping[Loc, str], known: Collection[str], located: Located) -> None:
    shown = list(itertools.islice(known, 10))
    listed = ", ".join(shown) + (f", ... ({len(known)} in all)" if len(known) > 10 else "") if shown else "none"
    for loc, name in names.items():
        if name not in known:
            located.problem(loc, f"unknown environment {name!r} (known: {listed})")


def declared_paths(
    items: list[UpgradePairSpec | UpgradeChainSpec], known: Collection[str], located: Located
) -> tuple[Pair, ...]:
    """The (from, to) pairs of ``upgrades:``, chains expanded; unknown names, self-moves and repeats are problems."""
    first: dict[Pair, Loc] = {}
    for i, item in enumerate(items):
        names: dict[Loc, str] = {}
        for (old, new), old_loc, new_loc in _steps(i, item):
            names.update({old_loc: old, new_loc: new})
            if old == new:
                located.problem(new_loc, f"moves {old!r} to itself; an upgrade path joins two environments")
            elif (old, new) in first:
                where = located.line(first[(old, new)])
                located.problem(old_loc, f"duplicate upgrade path {old} -> {new} (first at line {where})")
            else:
                first[(old, new)] = old_loc
        _check_known(names, known, located)
    return tuple(first)
