"""The bisection's answer as a document: ``<run>/bisect/bisect.json``, validated when written, and a short table.

A bisection's run folder is ``<results-dir>/bisect/<run-id>/``: one level below the matrix runs, so ``report``,
``gonogo`` and the history (which read every folder of ``<results-dir>`` holding ``*.json`` documents) never take a
bisection's step environments for a nightly run. Inside it, the steps' documents sit as in any run (one
``<env>.json`` per release, ``repeat/`` for the gate's second measurements) and the answer in the ``bisect/``
sub-folder, so that every ``*.json`` of the run folder itself is a results document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.worker.atomic import write_text_atomic

__all__ = [
    "BISECT_SCHEMA_VERSION",
    "BisectReport",
    "Difference",
    "Step",
    "read_report",
    "report_file",
    "table",
    "write_report",
]

BISECT_SCHEMA_VERSION: Literal[1] = 1
Role = Literal["good", "good-again", "bad", "bad-again", "candidate"]
_SHOWN_DIFFERENCES = 6
_WHY_WIDTH = 100


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_Model):
    """One measurement: which release, in which role, what it was judged, why, and how long it took."""

    release: str
    role: Role
    environment: str
    verdict: Literal["good", "bad", "skip"]
    why: str = ""
    seconds: float = Field(ge=0)
    cells_reused: int = Field(0, ge=0, description="Cells taken from the cell cache instead of measured.")


class Difference(_Model):
    """One record that differs at the first bad release from its value at the good one, with the numbers."""

    scenario: str
    record: str
    kind: str
    verdict: str
    detail: str
    numbers: dict[str, Any] = Field(default_factory=dict)


class BisectReport(_Model):
    """Where a behaviour changed between two releases of a package, and how that was found."""

    schema_version: Literal[1] = BISECT_SCHEMA_VERSION
    run_id: str
    package: str
    good: str
    bad: str
    template: str
    scenarios: list[str]
    records: list[str] = Field(default_factory=list, description="--record globs: only these records judged.")
    pre: bool = False
    relay: bool = False
    candidates: list[str] = Field(description="The releases strictly between good and bad, in version order.")
    outcome: Literal["boundary", "gate-stopped"]
    gate: str = Field("", description="Why the gate stopped the bisection (empty when it went on).")
    last_good: str | None = None
    first_bad: str | None = None
    undecided: list[str] = Field(
        default_factory=list, description="Skipped releases between last good and first bad: the change may be there."
    )
    skipped: dict[str, str] = Field(default_factory=dict, description="Release -> why it was skipped.")
    changes: list[str] = Field(default_factory=list, description="What differs at the first bad release.")
    differences: list[Difference] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    started_at: str
    finished_at: str
    seconds: float = Field(ge=0)
    removed_venvs: list[str] = Field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome == "boundary" else 1


def report_file(run_dir: Path) -> Path:
    return Path(run_dir) / "bisect" / "bisect.json"


def write_report(run_dir: Path, report: BisectReport) -> Path:
    """Write the document atomically, after checking it reads back as the same model (validated when written)."""
    text = report.model_dump_json(indent=2) + "\n"
    if BisectReport.model_validate_json(text) != report:
        raise ValueError("the bisection report does not read back as written")
    path = report_file(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def read_report(path: Path) -> BisectReport:
    return BisectReport.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _answer(report: BisectReport) -> list[str]:
    if report.outcome == "gate-stopped":
        return [f"  stopped by the gate: {report.gate}"]
    lines = [f"  last good: {report.last_good}    first bad: {report.first_bad}"]
    if report.undecided:
        lines.append(f"  skipped between them (the change may be in one of these): {', '.join(report.undecided)}")
    lines += [f"  change: {_cut(change, 300)}" for change in report.changes[:_SHOWN_DIFFERENCES]]
    for diff in report.differences[:_SHOWN_DIFFERENCES]:
        lines.append(f"  differs: {diff.scenario}::{diff.record}: {_cut(diff.detail, 200)}")
    if len(report.differences) > _SHOWN_DIFFERENCES:
        lines.append(f"  … and {len(report.differences) - _SHOWN_DIFFERENCES} more records (see bisect.json)")
    return lines


def table(report: BisectReport) -> str:
    """The short answer and the step log, as plain text (logs and terminals alike)."""
    head = f"bisect {report.package} {report.good} (good) .. {report.bad} (bad) in {report.template}"
    lines = [head, f"  {len(report.candidates)} releases between: {', '.join(report.candidates) or 'none'}"]
    lines += _answer(report)
    width = max([len(s.release) for s in report.steps] + [7])
    lines.append(f"  {'release':<{width}}  {'role':<10}  {'verdict':<7}  {'seconds':>7}  why")
    for step in report.steps:
        lines.append(
            f"  {step.release:<{width}}  {step.role:<10}  {step.verdict:<7}  {step.seconds:>7.1f}  "
            f"{_cut(step.why, _WHY_WIDTH)}"
        )
    lines.append(f"  {len(report.steps)} measurements in {report.seconds:.0f} s")
    return "\n".join(lines)
