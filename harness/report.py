"""Reports built from results files only (never the environments): Markdown, HTML, JUnit XML, verdict JSON.

Formatting only: the numbers come from ``harness.drift`` (measured) and ``harness.gonogo`` (judged). The Markdown
fits a CI step summary or a PR comment (the long parts folded in <details>); the HTML is one self-contained file
(no CDN, no network) with a status heatmap, a drift heatmap against the baseline, the relay grids, per-scenario
details and the resolved versions; the JUnit XML has one test case per cell, so CI dashboards show the matrix.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.drift import DriftEntry
from harness.errors import ResultsError
from harness.gonogo import Verdict
from harness.results import EnvironmentResult, RelayResult, now_iso
from harness.worker.atomic import write_text_atomic

__all__ = [
    "latest_run",
    "relay_grids",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_verdict_markdown",
]

KEY_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "tf-keras", "torch", "numpy")
_SHOWN = {
    "pass": "pass",
    "fail": "**FAIL**",
    "error": "**ERROR**",
    "skip": "skip",
    "timeout": "**TIMEOUT**",
    "crash": "**CRASH**",
    "env-error": "**ENV-ERROR**",
}
_SHORT = {"loaded": "ok", "loaded-drifted": "DRIFT", "optimizer-state-lost": "opt-lost", "skip": "skip"}
_DRIFT_RANK = {"identical": 0, "info": 0, "added": 0, "within": 1, "flaky": 2, "missing": 3, "changed": 3, "beyond": 3}


def latest_run(results_dir: Path) -> Path:
    """The most recently written run folder under ``results_dir``."""
    folder = Path(results_dir)
    runs = [p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.json"))] if folder.is_dir() else []
    if not runs:
        raise ResultsError(f"{results_dir}: no run folder with results yet; run the matrix first (./cm)")
    return max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.json")))


def ordered(docs: dict[str, EnvironmentResult], order: list[str] | None) -> list[str]:
    known = [name for name in order or [] if name in docs]
    return known + [name for name in docs if name not in known]


def scenario_ids(docs: dict[str, EnvironmentResult]) -> list[str]:
    ids: list[str] = []
    for doc in docs.values():
        ids += [cell.id for cell in doc.scenarios if cell.id not in ids]
    return ids


def _versions(doc: EnvironmentResult) -> str:
    resolved = doc.environment.resolved
    packages = resolved.packages if resolved else doc.environment.declared.packages
    shown = [f"{name} {packages[name]}" for name in KEY_PACKAGES if name in packages]
    return ", ".join(shown + [f"{k}={v}" for k, v in doc.environment.declared.env.items()])


# ----------------------------------------------------------------------------------------------------- relay


@dataclass
class Grid:
    """One relay grid (a family and format): rows producers, columns consumers."""

    title: str
    producers: list[str]
    consumers: list[str]
    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    classes: dict[tuple[str, str], str] = field(default_factory=dict)
    titles: dict[tuple[str, str], str] = field(default_factory=dict)


def _relay_cell(rows: list[RelayResult]) -> tuple[str, str]:
    """Outcome counts (worst first) with the largest prediction error, and a CSS class for the worst outcome."""
    counts: dict[str, int] = {}
    for row in rows:
        label = f"ERR {row.error_class}" if row.outcome == "load-error" else _SHORT[row.outcome]
        counts[label] = counts.get(label, 0) + 1
    labels = sorted(counts, key=lambda label: (not label.startswith(("ERR", "DRIFT", "opt")), label))
    text = " · ".join(f"{label} {counts[label]}" if len(rows) > 1 else label for label in labels)
    errors = [r.max_abs_error for r in rows if r.max_abs_error is not None]
    if errors:
        text += f" · max {max(errors):.2g}"
    worst = labels[0] if labels else "skip"
    css = (
        "s-fail"
        if worst.startswith(("ERR", "DRIFT"))
        else "s-timeout"
        if worst == "opt-lost"
        else ("s-skip" if worst == "skip" else "s-pass")
    )
    return text, css


def relay_grids(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[Grid]:
    rows = [row for doc in docs.values() for row in doc.relay]
    grids = []
    for family, format_name in sorted({(r.family, r.format) for r in rows}):
        subset = [r for r in rows if r.family == family and r.format == format_name]
        producers = [e for e in envs if any(r.producer == e for r in subset)]
        producers += sorted({r.producer for r in subset} - set(producers))
        consumers = [e for e in envs if any(r.consumer == e for r in subset)]
        unsafe = " (unsafe load: may execute pickled code)" if any(r.unsafe for r in subset) else ""
        grid = Grid(f"{family} · {format_name}{unsafe}", producers, consumers)
        for producer in producers:
            for consumer in consumers:
                picked = [r for r in subset if r.producer == producer and r.consumer == consumer]
                text, css = _relay_cell(picked) if picked else ("—", "s-none")
                grid.cells[(producer, consumer)] = text
                grid.classes[(producer, consumer)] = f"cell {css}"
                grid.titles[(producer, consumer)] = "; ".join(
                    f"{r.model}: {r.outcome} {r.how} {r.error_class} {r.message[:120]}".strip() for r in picked
                )
        grids.append(grid)
    return grids


# -------------------------------------------------------------------------------------------------- Markdown


def release_lines(releases: list[dict[str, str]], verdicts: list[Verdict] | None) -> list[str]:
    """ "new release X of P since the previous run", with the candidate's verdict against the baseline."""
    by_candidate = {v.candidate: v for v in verdicts or []}
    lines = []
    for item in releases:
        verdict = by_candidate.get(item["environment"])
        judged = f": **{verdict.verdict}** against {verdict.baseline}" if verdict else ""
        lines.append(
            f"new release {item['version']} of {item['package']} since the previous run (was {item['previous']} "
            f"in run {item['previous_run']}), in {item['environment']}{judged}"
        )
    return lines


def render_markdown(
    run_dir: Path,
    docs: dict[str, EnvironmentResult],
    order: list[str] | None = None,
    verdicts: list[Verdict] | None = None,
    flags: list[str] | None = None,
    releases: list[dict[str, str]] | None = None,
) -> str:
    """The matrix (scenario rows, environment columns), the verdicts, the relay grids, problems folded."""
    envs = ordered(docs, order)
    lines = [f"# compat-matrix run {run_dir.name}", ""]
    lines += [f"> **⚠ {flag}**" for flag in flags or []] + ([""] if flags else [])
    news = release_lines(releases or [], verdicts)
    lines += [f"- 🆕 {line}" for line in news] + ([""] if news else [])
    if verdicts:
        lines += [
            "## Go / no-go against the baseline",
            "",
            "| candidate | verdict | no-go | warnings | waived |",
            "|---|---|---|---|---|",
        ]
        for v in verdicts:
            c = v.counts
            lines.append(f"| {v.candidate} | **{v.verdict}** | {c['no-go']} | {c['warning']} | {c['waived']} |")
        lines.append("")
    lines.append("| scenario | " + " | ".join(envs) + " |")
    lines.append("|---|" + "---|" * len(envs))
    for sid in scenario_ids(docs):
        cells = [_SHOWN[c.status] if (c := docs[env].cell(sid)) else "—" for env in envs]
        lines.append(f"| `{sid}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Environments",
        "",
        "| environment | state | versions | provision s | import s |",
        "|---|---|---|---|---|",
    ]
    for env in envs:
        doc, t = docs[env], docs[env].timings
        provision = t.provision_s if t.provision_s is not None else "—"
        imported = t.import_s if t.import_s is not None else "—"
        lines.append(f"| {env} | {doc.state} | {_versions(doc)} | {provision} | {imported} |")
    problems = [(env, c) for env in envs for c in docs[env].scenarios if c.status not in ("pass", "skip")]
    if problems:
        lines += ["", "<details><summary>Problems</summary>", ""]
        for env, cell in problems:
            first = cell.message.splitlines()[0] if cell.message else ""
            lines.append(f"- `{cell.id}` on **{env}**: {cell.status}: {first}")
        lines += ["", "</details>"]
    grids = relay_grids(docs, envs)
    if grids:
        lines += [
            "",
            "## Cross-version relay (saved by the row, loaded by the column)",
            "",
            "Per model: ok, DRIFT (beyond tolerance), opt-lost (optimizer state lost), ERR <exception>, skip; "
            "then the largest absolute prediction error.",
        ]
        for grid in grids:
            lines += [
                "",
                f"### {grid.title}",
                "",
                "| producer \\ consumer | " + " | ".join(grid.consumers) + " |",
                "|---|" + "---|" * len(grid.consumers),
            ]
            for producer in grid.producers:
                row = " | ".join(grid.cells[(producer, c)] for c in grid.consumers)
                lines.append(f"| {producer} | {row} |")
    errors = [(env, docs[env].env_error) for env in envs if docs[env].env_error]
    for env, error in errors:
        lines += [
            "",
            f"<details><summary>{env}: environment error</summary>",
            "",
            "```",
            error.message[-2000:],
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def render_verdict_markdown(verdict: Verdict, limit: int = 10) -> str:
    """The verdict for a CI step summary or PR comment: decision, counts, top reasons, everything else folded."""
    c = verdict.counts
    lines = [
        f"## {verdict.verdict}: {verdict.candidate} against {verdict.baseline}",
        "",
        f"{c['no-go']} blocking, {c['warning']} warnings, {c['waived']} waived, {c['info']} notes "
        f"(run `{verdict.run_id}`).",
        "",
    ]
    by_severity: dict[str, list] = {}
    for reason in verdict.reasons:
        by_severity.setdefault(reason.severity, []).append(reason)
    titles = {"no-go": "Blocking", "warning": "Warnings", "waived": "Waived", "info": "Notes"}
    for severity, title in titles.items():
        reasons = by_severity.get(severity, [])
        if not reasons:
            continue
        shown = reasons[:limit] if severity == "no-go" else []
        for r in shown:
            record = f" / `{r.record}`" if r.record else ""
            lines.append(f"- **{r.kind}** `{r.scenario}`{record}: {r.summary}  \n  re-run: `{r.reproduce}`")
        rest = reasons[len(shown) :]
        if rest:
            lines += ["", f"<details><summary>{title}: {len(rest)}{' more' if shown else ''}</summary>", ""]
            for r in rest:
                record = f" / `{r.record}`" if r.record else ""
                lines.append(f"- **{r.kind}** `{r.scenario}`{record}: {r.summary}")
            lines += ["", "</details>"]
        lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- JUnit


def render_junit(docs: dict[str, EnvironmentResult], order: list[str] | None = None) -> str:
    """One test suite per environment, one test case per cell; failures and errors carry the message."""
    root = ET.Element("testsuites", name="compat-matrix")
    for env in ordered(docs, order):
        doc = docs[env]
        cells = doc.scenarios
        suite = ET.SubElement(
            root,
            "testsuite",
            name=env,
            tests=str(len(cells)),
            failures=str(sum(c.status == "fail" for c in cells)),
            errors=str(sum(c.status in ("error", "crash", "timeout", "env-error") for c in cells)),
            skipped=str(sum(c.status == "skip" for c in cells)),
        )
        for cell in cells:
            case = ET.SubElement(
                suite, "testcase", classname=f"compat-matrix.{env}", name=cell.id, time=f"{cell.duration_s or 0:.3f}"
            )
            first = (cell.message.splitlines() or [""])[0][:500]
            if cell.status == "fail":
                ET.SubElement(case, "failure", message=first, type="fail").text = cell.message
            elif cell.status in ("error", "crash", "timeout", "env-error"):
                ET.SubElement(case, "error", message=first, type=cell.status).text = cell.traceback or cell.message
            elif cell.status == "skip":
                ET.SubElement(case, "skipped", message=first)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ----------------------------------------------------------------------------------------------------- HTML


def _drift_grid(verdicts: list[Verdict], baseline: str | None, docs: dict) -> dict[tuple[str, str], dict[str, str]]:
    grid: dict[tuple[str, str], dict[str, str]] = {}
    entries: list[DriftEntry] = [e for v in verdicts for e in v.drift]
    for entry in entries:
        key = (entry.environment, entry.scenario)
        current = grid.get(key)
        if current is None or _DRIFT_RANK[entry.verdict] > _DRIFT_RANK[current["verdict"]]:
            grid[key] = {"verdict": entry.verdict}
    for (env, sid), cell in grid.items():
        records = [e for e in entries if e.environment == env and e.scenario == sid]
        worst = [e for e in records if e.verdict == cell["verdict"]]
        cell["label"] = f"{cell['verdict']} {len(worst)}/{len(records)}"
        cell["title"] = ", ".join(e.record for e in worst[:10])
    if baseline and baseline in docs:
        for cell in docs[baseline].scenarios:
            if cell.records:
                grid[(baseline, cell.id)] = {"verdict": "baseline", "label": "baseline", "title": ""}
    return grid


def render_html(
    run_dir: Path,
    docs: dict[str, EnvironmentResult],
    order: list[str] | None = None,
    baseline: str | None = None,
    verdicts: list[Verdict] | None = None,
    flags: list[str] | None = None,
    trend: dict[str, Any] | None = None,
    releases: list[dict[str, str]] | None = None,
) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    envs = ordered(docs, order)
    return environment.get_template("report.html.j2").render(
        run_id=run_dir.name,
        generated=now_iso(),
        baseline=baseline,
        flags=flags or [],
        news=release_lines(releases or [], verdicts),
        envs=envs,
        docs=docs,
        key_packages=KEY_PACKAGES,
        scenario_ids=scenario_ids(docs),
        drift_grid=_drift_grid(verdicts or [], baseline, docs) if verdicts else {},
        verdicts=verdicts or [],
        relay_grids=relay_grids(docs, envs),
        trend=trend,
    )


def write_text(path: Path, text: str) -> Path:
    write_text_atomic(path, text)
    return path


def verdict_json(verdict: Verdict) -> str:
    """The verdict as JSON, validated against the published schema first."""
    import jsonschema

    from harness.gonogo import VERDICT_SCHEMA_PATH

    data = verdict.model_dump(mode="json")
    jsonschema.validate(data, json.loads(VERDICT_SCHEMA_PATH.read_text()))
    return json.dumps(data, indent=2) + "\n"
