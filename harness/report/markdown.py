"""``report.md``: verdict first, then the evidence, always small enough for a CI step summary or a PR comment.

Order: flags and new releases; every upgrade path's verdict with its counts; for each path that is not GO, its
blocking reasons in full and the rest folded; the status matrix (a passing cell whose behaviour changed against its
path's baseline reads "pass Δ"); the relay grids; the environments; the problems, folded. When the whole exceeds
the limit, the least important parts shrink first (problems, then the matrix, the relay grids, the folded
warnings), each with a pointer to report.html, which always has everything.
"""

from __future__ import annotations

from pathlib import Path

from harness.judge import Verdict
from harness.report import mdsafe
from harness.report.common import (
    BROKEN,
    cells_by_id,
    changed_cells,
    compared_with,
    ordered,
    release_lines,
    scenario_ids,
    versions_text,
)
from harness.report.mdsafe import POINTER, Section
from harness.report.relay import LEGEND, Grid, relay_grids
from harness.report.verdict_md import PATH_FORMS, path_forms, verdict_heading
from harness.results import EnvironmentResult

__all__ = ["CHANGED", "render_markdown", "status_label"]

CHANGED = "Δ"
_PROBLEMS_SHOWN = 30


def status_label(status: str, changed: bool) -> str:
    """Broken statuses in bold; a cell that still passes (or skips) but behaves differently gets the Δ mark."""
    if status in BROKEN:
        return f"**{status.upper()}**"
    return f"{status} {CHANGED}" if changed else status


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _header(run_dir: Path, flags: list[str], news: list[str]) -> str:
    lines = [f"# compat-matrix run {mdsafe.text(run_dir.name)}", ""]
    lines += [f"> **⚠ {mdsafe.text(flag)}**" for flag in flags] + ([""] if flags else [])
    lines += [f"- 🆕 {mdsafe.text(line)}" for line in news] + ([""] if news else [])
    return "\n".join(lines) + "\n"


def _verdict_table(verdicts: list[Verdict]) -> str:
    if not verdicts:
        return "No upgrade path judged in this run (no path of the matrix has results on both sides).\n\n"
    rows = [
        [
            mdsafe.text(v.baseline),
            mdsafe.text(v.candidate),
            f"**{v.verdict}**",
            *(str(v.counts.get(key, 0)) for key in ("no-go", "warning", "fixed", "waived")),
        ]
        for v in verdicts
    ]
    header = ["from", "to", "verdict", "blocking", "warnings", "fixed", "waived"]
    return "\n".join(["## Upgrade paths", "", *_table(header, rows), ""]) + "\n"


def _path_section(verdict: Verdict) -> Section:
    return Section(path_forms(verdict, heading=verdict_heading(verdict, "###") + "\n\n"))


def _status_forms(docs: dict[str, EnvironmentResult], envs: list[str], verdicts: list[Verdict]) -> list[str | None]:
    changed = changed_cells(verdicts, envs)
    by_id = cells_by_id(docs)
    rows, interesting = [], []
    for sid in scenario_ids(docs):
        cells = {env: by_id[env].get(sid) for env in envs}
        labels = [status_label(c.status, sid in changed.get(env, set())) if c else "—" for env, c in cells.items()]
        row = [mdsafe.code(sid), *labels]
        rows.append(row)
        if any(label not in ("pass", "skip") for label in labels):
            interesting.append(row)
    header = ["## Status", "", _legend(verdicts, envs), ""]
    columns = ["scenario", *(mdsafe.text(env) for env in envs)]
    full = _table_form([*header], columns, rows)
    omitted = f"{len(rows) - len(interesting)} rows where every cell passes or skips unchanged are left out: {POINTER}."
    short = _table_form([*header, omitted, ""], columns, interesting)
    return [full, short, f"## Status\n\nThe status matrix ({len(rows)} scenarios) is left out here: {POINTER}.\n\n"]


def _table_form(lines: list[str], columns: list[str], rows: list[list[str]]) -> str | None:
    """``lines`` and the table, or ``TOO_LONG`` when its cells alone exceed the limit (a huge run: never built)."""
    if _too_long(len(rows) * len(columns)):
        return mdsafe.TOO_LONG
    return "\n".join([*lines, *_table(columns, rows), ""]) + "\n"


def _too_long(cells: int) -> bool:
    """Whether a table of ``cells`` cannot fit: each takes at least ``| x `` (4 bytes) of it."""
    return cells * 4 > mdsafe.LIMIT


def _legend(verdicts: list[Verdict], envs: list[str]) -> str:
    paths = [
        f"{mdsafe.text(env)} against {mdsafe.text(v.baseline)}" for env, v in compared_with(verdicts, envs).items()
    ]
    against = f" Δ compares {', '.join(paths)}." if paths else ""
    return (
        f"Rows scenarios, columns environments. **BOLD**: broken; {CHANGED}: passes (or skips) but behaves "
        f"differently from the baseline of the environment's upgrade path (see its reasons above).{against}"
    )


def _grid_lines(grid: Grid) -> list[str]:
    rows = [[mdsafe.text(p), *(mdsafe.text(grid.text(p, c)) for c in grid.consumers)] for p in grid.producers]
    header = ["producer \\ consumer", *(mdsafe.text(c) for c in grid.consumers)]
    return ["", f"### {mdsafe.text(grid.title)}", "", *_table(header, rows)]


def _grids_form(title: list[str], grids: list[Grid], note: list[str]) -> str | None:
    if _too_long(sum(g.size for g in grids)):
        return mdsafe.TOO_LONG  # a grid of hundreds of environments each way: only the floor can fit
    return "\n".join([*title, *note, *(line for g in grids for line in _grid_lines(g)), ""]) + "\n"


def _relay_forms(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[str | None]:
    grids = relay_grids(docs, envs)
    if not grids:
        return [""]
    title = ["## Cross-version relay (saved by the row, loaded by the column)", "", mdsafe.text(LEGEND)]
    broken = [g for g in grids if not g.all_ok]
    note = f"{len(grids) - len(broken)} grids where everything loaded are left out: {POINTER}."
    floor = f"## Cross-version relay\n\n{len(grids)} grids ({len(broken)} with problems) are left out: {POINTER}.\n\n"
    return [_grids_form(title, grids, []), _grids_form(title, broken, ["", note]), floor]


def _environment_forms(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[str]:
    rows = []
    for env in envs:
        doc, t = docs[env], docs[env].timings
        provision = str(t.provision_s) if t.provision_s is not None else "—"
        imported = str(t.import_s) if t.import_s is not None else "—"
        rows.append([mdsafe.text(env), doc.state, mdsafe.text(versions_text(doc)), provision, imported])
    header = ["environment", "state", "versions", "provision s", "import s"]
    full = "\n".join(["## Environments", "", *_table(header, rows), ""]) + "\n"
    return [full, f"## Environments\n\n{len(envs)} environments (their versions: {POINTER}).\n\n"]


def _problem_forms(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[str]:
    problems = [(env, c) for env in envs for c in docs[env].scenarios if c.status not in ("pass", "skip")]
    if not problems:
        return [""]
    items = []
    for env, cell in problems:
        first = mdsafe.line(cell.message)
        said = f": {mdsafe.text(first)}" if first else ""
        items.append(f"- {mdsafe.code(cell.id)} on **{mdsafe.text(env)}**: {cell.status}{said}")

    def folded(shown: list[str]) -> str:
        more = [f"- … {len(items) - len(shown)} more: {POINTER}"] if len(shown) < len(items) else []
        summary = f"<details><summary>Problems ({len(items)} cells)</summary>"
        return "\n".join([summary, "", *shown, *more, "", "</details>", ""]) + "\n"

    return [folded(items), folded(items[:_PROBLEMS_SHOWN]), f"Problems: {len(items)} cells, listed in report.html.\n\n"]


def _env_error_forms(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[str]:
    errors = [(env, doc.env_error) for env in envs if (doc := docs[env]).env_error]
    if not errors:
        return [""]
    forms = []
    for keep in (2000, 300):
        lines = []
        for env, error in errors:
            tail = error.message[-keep:]
            lines += [f"<details><summary>{mdsafe.html(env)}: environment error</summary>", ""]
            lines += [*mdsafe.fence(tail), "", "</details>", ""]
        forms.append("\n".join(lines) + "\n")
    return [*forms, f"{len(errors)} environments could not be provisioned: {POINTER}.\n\n"]


def render_markdown(
    run_dir: Path,
    docs: dict[str, EnvironmentResult],
    order: list[str] | None = None,
    verdicts: list[Verdict] | None = None,
    flags: list[str] | None = None,
    releases: list[dict[str, str]] | None = None,
) -> str:
    """The whole run, verdicts first, shrunk to ``mdsafe.LIMIT`` when it would not fit a PR comment."""
    envs, judged = ordered(docs, order), list(verdicts or [])
    paths = [_path_section(v) for v in judged if v.verdict != "GO"]
    sections = [
        Section([_header(run_dir, flags or [], release_lines(releases or [], judged))]),
        Section([_verdict_table(judged)]),
        *paths,
        Section(_status_forms(docs, envs, judged)),
        Section(_relay_forms(docs, envs)),
        Section(_environment_forms(docs, envs)),
        Section(_problem_forms(docs, envs)),
        Section(_env_error_forms(docs, envs)),
    ]
    first_path, after = 2, 2 + len(paths)
    status, relay, environments, problems, env_errors = range(after, after + 5)
    each_path = list(range(after - 1, first_path - 1, -1))  # the last paths shrink first
    shrink = [problems, problems, status, status, relay, relay, *each_path, *each_path, environments]
    shrink += [env_errors, env_errors, *each_path * PATH_FORMS]  # steps past a section's floor change nothing
    return mdsafe.fit(sections, shrink)
