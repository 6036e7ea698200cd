"""``compat-matrix bisect``: the command line of a bisection (arguments, the run, the printed table, exit codes).

``bisect --package P --good X --bad Y -k SCENARIO`` finds the first release of P after X whose selected cells
behave differently from X's: the gate measures X and Y twice each (``harness.bisect.decide.gate``), then the
releases strictly between them are bisected (``decide.search``), each one provisioned and run as an environment of
its own (``harness.bisect.steps``). Every problem with the arguments is one line and exit code 2, before anything
is provisioned: an unknown package or release, ``--good`` not older than ``--bad``, no template environment, a
selection that matches no scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from harness import matrix as matrix_mod
from harness import paths
from harness import relay as relay_mod
from harness.bisect.arguments import add_arguments
from harness.bisect.decide import GateAnswer, Judgement, Measured, compare, gate, search
from harness.bisect.releases import between, list_releases, parse_release
from harness.bisect.report import BisectReport, Role, Step, table, write_report
from harness.bisect.steps import Steps, default_venv_root
from harness.cache import CellCache, default_cache_dir
from harness.errors import HarnessError
from harness.matrix import Environment, Matrix
from harness.results import new_run_id, now_iso
from harness.verdicts import Policy, policy_of
from harness.worker import scenario as scenario_mod

__all__ = ["add_arguments", "run"]

_PACKAGE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_GATE_ROLES: dict[str, tuple[str, bool]] = {
    "good": ("good", False),
    "good-again": ("good", True),
    "bad": ("bad", False),
    "bad-again": ("bad", True),
}


def _package(value: str) -> str:
    if not _PACKAGE.fullmatch(value):
        raise HarnessError(f"--package {value!r}: not a distribution name (letters, digits, '.', '_', '-')")
    return canonicalize_name(value)


def _pinned_at(env: Environment, package: str, version: Version) -> bool:
    for name, pin in env.packages.items():
        if canonicalize_name(name) == package and pin != "latest" and Version(pin) == version:
            return True
    return False


def template_of(matrix: Matrix, package: str, good: Version, name: str | None) -> Environment:
    """``--env``, else the one environment of the matrix that pins ``package`` at ``good`` (a usage error if none
    or several do: the answer would depend on which one was picked)."""
    if name is not None:
        return matrix.environment(name)
    found = [e for e in matrix.environments.values() if _pinned_at(e, package, good)]
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(e.name for e in found)
        raise HarnessError(
            f"--good {good}: {names} all pin {package} at {good} in {matrix.path}; choose one with --env"
        )
    pins = [
        f"{e.name} ({v})"
        for e in matrix.environments.values()
        for n, v in e.packages.items()
        if canonicalize_name(n) == package
    ]
    known = f"it pins {package} in {', '.join(pins)}" if pins else f"none of its environments pins {package}"
    raise HarnessError(f"--good {good}: no environment of {matrix.path} pins {package} at {good} ({known}); give --env")


def _selection(matrix: Matrix, args: argparse.Namespace) -> Matrix:
    """The matrix restricted to ``-k`` (required unless ``--relay``: then the relay alone may be the question)."""
    if args.scenarios:
        return matrix_mod.restrict(matrix, list(args.scenarios))
    if not args.relay:
        raise HarnessError("bisect: give -k SCENARIO (the scenarios whose behaviour is bisected), or --relay")
    if relay_mod.PRODUCE_ID not in matrix.timeouts:
        raise HarnessError(f"bisect --relay: {matrix.path} does not select {relay_mod.PRODUCE_ID}")
    return matrix_mod.restrict(matrix, [relay_mod.PRODUCE_ID])


def _releases(args: argparse.Namespace, package: str, template: Environment) -> tuple[Version, Version, list[Version]]:
    """X, Y and the candidates between them, after checking both are releases on the index, X older than Y."""
    good, bad = parse_release("--good", args.good), parse_release("--bad", args.bad)
    if not good < bad:
        raise HarnessError(f"--good {good} is not older than --bad {bad}: --good is the older release, the reference")
    releases = list_releases(package, template, os.environ)
    for option, version in (("--good", good), ("--bad", bad)):
        if version not in releases:
            at = bisect_left(releases, version)
            near = ", ".join(str(v) for v in releases[max(at - 2, 0) : at + 2])
            raise HarnessError(f"{option} {version}: no such release of {package} on the index (around it: {near})")
    return good, bad, between(releases, good, bad, args.pre)


def _run_dir(args: argparse.Namespace, package: str) -> tuple[str, Path]:
    """The bisection's run id and folder, ``<results-dir>/bisect/<run-id>`` (see ``harness.bisect.report``)."""
    root = Path(args.results_dir) / "bisect"
    if args.run_id is not None:
        if not paths.is_safe_name(args.run_id):
            raise HarnessError(f"--run-id {args.run_id!r}: not safe as a folder name (letters, digits, '.', '_', '-')")
        return args.run_id, root / args.run_id
    base = f"{new_run_id()}-{package}"
    run_id, number = base, 1
    while (root / run_id).exists():
        number += 1
        run_id = f"{base}-{number}"
    return run_id, root / run_id


@dataclasses.dataclass
class _Bisection:
    """One bisection's state: the steps, the policy, the log and each release's judgement."""

    steps: Steps
    policy: Policy
    records: tuple[str, ...]
    good: Version
    bad: Version
    candidates: list[Version]
    log: list[Step] = dataclasses.field(default_factory=list)
    judged: dict[str, Judgement] = dataclasses.field(default_factory=dict)

    def _note(self, version: Version, role: Role, measured: Measured, judgement: Judgement) -> None:
        name = self.steps.environment(version).name
        seconds, reused = round(measured.seconds, 3), measured.doc.timings.cells_reused
        self.log.append(Step(release=str(version), role=role, environment=name, verdict=judgement.verdict,
                             why=judgement.why, seconds=seconds, cells_reused=reused))  # fmt: skip
        print(f"bisect: {self.steps.package} {version} ({role}): {judgement.verdict} in {seconds:.1f} s: "
              f"{judgement.why[:200]}", file=sys.stderr)  # fmt: skip

    def _measure(self, version: Version, role: str, fresh: bool = False) -> Measured:
        """One measurement, announced first: a step takes seconds to minutes (a cold torch build is gigabytes)."""
        print(f"bisect: {self.steps.package} {version} ({role}): measuring", file=sys.stderr)
        return self.steps.measure(version, fresh=fresh)

    def measure_role(self, role: str) -> Measured:
        side, fresh = _GATE_ROLES[role]
        return self._measure(self.good if side == "good" else self.bad, role, fresh)

    def run_gate(self) -> GateAnswer:
        answer = gate(self.measure_role, self.policy, self.records)
        for role, measured in answer.measured.items():
            version = self.good if role.startswith("good") else self.bad
            self._note(version, role, measured, answer.judged[role])  # type: ignore[arg-type]
        return answer

    def probe(self, good: Measured) -> Callable[[int], Judgement]:
        def step(index: int) -> Judgement:
            version = self.candidates[index]
            measured = self._measure(version, "candidate")
            judgement = compare(good, measured, self.policy, self.records)
            self.judged[str(version)] = judgement
            self._note(version, "candidate", measured, judgement)
            return judgement

        return step


def _boundary(bisection: _Bisection, answer: GateAnswer) -> dict[str, Any]:
    """Search the candidates; the report's fields for the boundary found."""
    found = search(len(bisection.candidates), bisection.probe(answer.measured["good"]))
    names = [str(v) for v in bisection.candidates]

    def release(index: int) -> str:
        return str(bisection.good) if index < 0 else str(bisection.bad) if index >= len(names) else names[index]

    first_bad = release(found.first_bad)
    judgement = bisection.judged.get(first_bad) or answer.judged["bad"]
    return {
        "last_good": release(found.last_good),
        "first_bad": first_bad,
        "undecided": [names[i] for i in found.undecided()],
        "skipped": {names[i]: why for i, why in found.skipped.items()},
        "changes": judgement.changes,
        "differences": judgement.differences,
    }


def _setup(args: argparse.Namespace) -> tuple[_Bisection, Matrix, str, Path]:
    """Everything checked and prepared before the first environment is provisioned (usage errors: exit 2)."""
    packages = tuple(p for p in (args.scenario_packages or os.environ.get("COMPAT_SCENARIO_PACKAGES", "scenarios"))
                     .split(",") if p)  # fmt: skip
    registry = scenario_mod.discover(packages)
    package = _package(args.package)
    matrix = matrix_mod.load(args.matrix, registry)
    template = template_of(matrix, package, parse_release("--good", args.good), args.env)
    selected = _selection(matrix, args)
    good, bad, candidates = _releases(args, package, template)
    run_id, run_dir = _run_dir(args, package)
    steps = Steps(
        matrix=selected,
        template=template,
        package=package,
        good=good,
        registry=registry,
        run_dir=run_dir,
        venv_root=default_venv_root(),
        cache=CellCache(default_cache_dir(), enabled=not args.no_cache),
        run_id=run_id,
        scenario_packages=packages,
        extra_pythonpath=tuple(Path(p) for p in os.environ.get("COMPAT_EXTRA_PYTHONPATH", "").split(os.pathsep) if p),
        relay=args.relay,
        keep=args.keep,
    )
    expected = tuple(s for s in selected.scenario_ids if s != relay_mod.PRODUCE_ID)
    policy = Policy(tolerances=policy_of(selected).tolerances, expected=expected)
    return _Bisection(steps, policy, tuple(args.record), good, bad, candidates), selected, run_id, run_dir


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a boundary was found, 1 when the gate stopped the bisection, 2 on a usage error."""
    bisection, selected, run_id, run_dir = _setup(args)
    started, started_at = time.perf_counter(), now_iso()
    try:
        answer = bisection.run_gate()
        found = _boundary(bisection, answer) if not answer.stop else {}
    finally:
        removed = bisection.steps.clean()
    report = BisectReport.model_validate(
        {
            "run_id": run_id,
            "package": bisection.steps.package,
            "good": str(bisection.good),
            "bad": str(bisection.bad),
            "template": bisection.steps.template.name,
            "scenarios": list(selected.scenario_ids),
            "records": list(bisection.records),
            "pre": args.pre,
            "relay": args.relay,
            "candidates": [str(v) for v in bisection.candidates],
            "outcome": "gate-stopped" if answer.stop else "boundary",
            "gate": answer.stop,
            "steps": bisection.log,
            "started_at": started_at,
            "finished_at": now_iso(),
            "seconds": round(time.perf_counter() - started, 3),
            "removed_venvs": [str(p) for p in removed],
            **found,
        }
    )
    path = write_report(run_dir, report)
    print(table(report))
    print(f"bisection written to {path}")
    return report.exit_code
