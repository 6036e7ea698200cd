"""What every report format shares: the run folder, the column order, the scenario rows and the verdict lookups.

Formatting only: the numbers come from ``harness.drift`` / ``harness.ledger`` (measured) and ``harness.judge``
(judged). Each helper here exists because Markdown, HTML and JUnit must agree on it (which cells are "changed",
which reasons cover a test case), so it is defined once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.errors import ResultsError
from harness.judge import Reason, Verdict
from harness.results import EnvironmentResult, ScenarioResult
from harness.worker.atomic import write_text_atomic
from harness.worker.protocol import BROKEN

__all__ = [
    "BROKEN",
    "KEY_PACKAGES",
    "TITLES",
    "by_severity",
    "cells_by_id",
    "changed_cells",
    "compared_with",
    "counts_text",
    "latest_run",
    "ordered",
    "path_label",
    "release_lines",
    "scenario_ids",
    "titles",
    "versions_text",
    "write_text",
]

KEY_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "tf-keras", "torch", "numpy")
#: How each severity is titled wherever reasons are listed.
TITLES = {"no-go": "Blocking", "warning": "Warnings", "fixed": "Fixed", "waived": "Waived", "info": "Notes"}


def latest_run(results_dir: Path) -> Path:
    """The most recently written run folder under ``results_dir``."""
    folder = Path(results_dir)
    runs = [p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.json"))] if folder.is_dir() else []
    if not runs:
        raise ResultsError(f"{results_dir}: no run folder with results yet; run the matrix first (./cm)")
    return max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.json")))


def ordered(docs: dict[str, EnvironmentResult], order: list[str] | None) -> list[str]:
    """The matrix's order first (columns read as declared), then environments the matrix does not know."""
    known = [name for name in order or [] if name in docs]
    return known + [name for name in docs if name not in known]


def write_text(path: Path, text: str) -> Path:
    write_text_atomic(path, text)
    return path


def scenario_ids(docs: dict[str, EnvironmentResult]) -> list[str]:
    """Every scenario of any environment, in first-seen order (the rows of every matrix view)."""
    ids: dict[str, None] = {}
    for doc in docs.values():
        ids.update((cell.id, None) for cell in doc.scenarios)
    return list(ids)


def cells_by_id(docs: dict[str, EnvironmentResult]) -> dict[str, dict[str, ScenarioResult]]:
    """Each environment's cells by scenario id (the first of an id, as ``EnvironmentResult.cell`` finds it), so a
    matrix view looks a cell up instead of scanning the environment's cells for each of its scenarios."""
    index: dict[str, dict[str, ScenarioResult]] = {}
    for env, doc in docs.items():
        cells: dict[str, ScenarioResult] = {}
        for cell in doc.scenarios:
            cells.setdefault(cell.id, cell)
        index[env] = cells
    return index


def versions_text(doc: EnvironmentResult) -> str:
    """The key package versions and the declared variables, on one line."""
    resolved = doc.environment.resolved
    packages = resolved.packages if resolved else doc.environment.declared.packages
    shown = [f"{name} {packages[name]}" for name in KEY_PACKAGES if name in packages]
    return ", ".join(shown + [f"{k}={v}" for k, v in doc.environment.declared.env.items()])


def path_label(verdict: Verdict) -> str:
    return f"{verdict.baseline} → {verdict.candidate}"


def titles(verdict: Verdict) -> dict[str, str]:
    """The severity titles for one path: what B fixes reads "Fixed in B"."""
    return {**TITLES, "fixed": f"Fixed in {verdict.candidate}"}


def counts_text(verdict: Verdict) -> str:
    c = verdict.counts
    return (
        f"{c.get('no-go', 0)} blocking, {c.get('warning', 0)} warnings, {c.get('fixed', 0)} fixed in "
        f"{verdict.candidate}, {c.get('waived', 0)} waived, {c.get('info', 0)} notes"
    )


def by_severity(reasons: Iterable[Reason]) -> dict[str, list[Reason]]:
    grouped: dict[str, list[Reason]] = {severity: [] for severity in TITLES}
    for reason in reasons:
        grouped.setdefault(reason.severity, []).append(reason)
    return grouped


def compared_with(verdicts: Iterable[Verdict], envs: list[str]) -> dict[str, Verdict]:
    """The verdict each environment's column is marked by: of the paths it is the candidate of, the one whose
    baseline comes latest in ``envs`` (the nearest upgrade, e.g. tf2.16 -> tf2.21 over tf2.15 -> tf2.21)."""
    rank = {env: i for i, env in enumerate(envs)}
    chosen: dict[str, Verdict] = {}
    for verdict in verdicts:
        current = chosen.get(verdict.candidate)
        if current is None or rank.get(verdict.baseline, -1) > rank.get(current.baseline, -1):
            chosen[verdict.candidate] = verdict
    return chosen


def changed_cells(verdicts: Iterable[Verdict], envs: list[str]) -> dict[str, set[str]]:
    """Per environment, the scenarios its chosen path lists as behaving differently from that path's baseline."""
    return {env: set(v.changed) for env, v in compared_with(verdicts, envs).items()}


def release_lines(releases: list[dict[str, str]], verdicts: list[Verdict] | None) -> list[str]:
    """ "new release X of P since the previous run", with the verdicts of the paths that move to it."""
    lines = []
    for item in releases:
        judged = [v for v in verdicts or [] if v.candidate == item["environment"]]
        verdict_text = "".join(f"; {v.verdict} from {v.baseline}" for v in judged)
        lines.append(
            f"new release {item['version']} of {item['package']} since the previous run (was {item['previous']} "
            f"in run {item['previous_run']}), in {item['environment']}{verdict_text}"
        )
    return lines
