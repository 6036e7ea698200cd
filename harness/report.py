"""The minimal matrix report: a Markdown table of scenario x environment statuses, built from results files only.

Formatting only: it reads a run folder and never needs the environments again. (The full reporting, with drift,
go/no-go and HTML, builds on this.)
"""

from __future__ import annotations

from pathlib import Path

from harness.atomic import write_text_atomic
from harness.errors import ResultsError
from harness.results import EnvironmentResult, RelayResult, load_run

__all__ = ["latest_run", "render_markdown", "write_report"]

_KEY_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "tf-keras", "torch", "numpy")
_SHOWN = {
    "pass": "pass",
    "fail": "**FAIL**",
    "error": "**ERROR**",
    "skip": "skip",
    "timeout": "**TIMEOUT**",
    "crash": "**CRASH**",
    "env-error": "**ENV-ERROR**",
}


def latest_run(results_dir: Path) -> Path:
    """The most recently written run folder under ``results_dir``."""
    runs = (
        [p for p in Path(results_dir).iterdir() if p.is_dir() and any(p.glob("*.json"))]
        if Path(results_dir).is_dir()
        else []
    )
    if not runs:
        raise ResultsError(f"{results_dir}: no run folder with results yet; run the matrix first (./cm)")
    return max(runs, key=lambda p: max(f.stat().st_mtime for f in p.glob("*.json")))


def _versions(doc: EnvironmentResult) -> str:
    resolved = doc.environment.resolved
    packages = resolved.packages if resolved else doc.environment.declared.packages
    shown = [f"{name} {packages[name]}" for name in _KEY_PACKAGES if name in packages]
    extra = [f"{k}={v}" for k, v in doc.environment.declared.env.items()]
    return ", ".join(shown + extra)


def render_markdown(run_dir: Path, docs: dict[str, EnvironmentResult], order: list[str] | None = None) -> str:
    """Scenario rows, environment columns (in matrix order when given), one status per cell; then versions."""
    known = [name for name in order or [] if name in docs]
    envs = known + [name for name in docs if name not in known]
    docs = {name: docs[name] for name in envs}
    scenario_ids: list[str] = []
    for doc in docs.values():
        for cell in doc.scenarios:
            if cell.id not in scenario_ids:
                scenario_ids.append(cell.id)
    lines = [f"# compat-matrix run {run_dir.name}", ""]
    lines.append("| scenario | " + " | ".join(envs) + " |")
    lines.append("|---|" + "---|" * len(envs))
    for scenario_id in scenario_ids:
        cells = []
        for env in envs:
            cell = docs[env].cell(scenario_id)
            cells.append(_SHOWN[cell.status] if cell else "—")
        lines.append(f"| `{scenario_id}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Environments",
        "",
        "| environment | state | versions | provision s | import s |",
        "|---|---|---|---|---|",
    ]
    for env, doc in docs.items():
        t = doc.timings
        lines.append(
            f"| {env} | {doc.state} | {_versions(doc)} | {t.provision_s if t.provision_s is not None else '—'} "
            f"| {t.import_s if t.import_s is not None else '—'} |"
        )
    problems = [(env, c) for env, doc in docs.items() for c in doc.scenarios if c.status not in ("pass", "skip")]
    if problems:
        lines += ["", "## Problems", ""]
        for env, cell in problems:
            lines.append(
                f"- `{cell.id}` on **{env}**: {cell.status}: {cell.message.splitlines()[0] if cell.message else ''}"
            )
    lines += render_relay(docs, envs)
    errors = [(env, doc.env_error) for env, doc in docs.items() if doc.env_error]
    if errors:
        lines += ["", "## Environment errors", ""]
        for env, error in errors:
            lines += [
                f"<details><summary>{env}</summary>",
                "",
                "```",
                error.message[-2000:],
                "```",
                "</details>",
            ]
    return "\n".join(lines) + "\n"


_SHORT = {"loaded": "ok", "loaded-drifted": "DRIFT", "optimizer-state-lost": "opt-lost", "skip": "skip"}


def _relay_cell(rows: list[RelayResult]) -> str:
    """Outcome counts (worst first) and the largest prediction error of one producer x consumer x format."""
    counts: dict[str, int] = {}
    for row in rows:
        label = f"ERR {row.error_class}" if row.outcome == "load-error" else _SHORT[row.outcome]
        counts[label] = counts.get(label, 0) + 1
    order = sorted(counts, key=lambda label: (not label.startswith(("ERR", "DRIFT", "opt")), label))
    text = " · ".join(f"{label} {counts[label]}" if len(rows) > 1 else label for label in order)
    errors = [r.max_abs_error for r in rows if r.max_abs_error is not None]
    if errors:
        text += f" · max {max(errors):.2g}"
    return text


def render_relay(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[str]:
    """One grid per family and format: rows producers, columns consumers."""
    rows = [row for doc in docs.values() for row in doc.relay]
    if not rows:
        return []
    lines = ["", "## Cross-version relay (saved by the row, loaded by the column)", ""]
    lines.append("Cells: outcome per model (ok, DRIFT, opt-lost = optimizer state lost, ERR <exception>, skip) "
                 "and the largest absolute prediction error.")  # fmt: skip
    for family, format_name in sorted({(r.family, r.format) for r in rows}):
        subset = [r for r in rows if r.family == family and r.format == format_name]
        producers = [e for e in envs if any(r.producer == e for r in subset)]
        producers += sorted({r.producer for r in subset} - set(producers))
        consumers = [e for e in envs if any(r.consumer == e for r in subset)]
        unsafe = " (unsafe load: may execute pickled code)" if any(r.unsafe for r in subset) else ""
        lines += ["", f"### {family} · {format_name}{unsafe}", ""]
        lines.append("| producer \\ consumer | " + " | ".join(consumers) + " |")
        lines.append("|---|" + "---|" * len(consumers))
        for producer in producers:
            cells = []
            for consumer in consumers:
                picked = [r for r in subset if r.producer == producer and r.consumer == consumer]
                cells.append(_relay_cell(picked) if picked else "—")
            lines.append(f"| {producer} | " + " | ".join(cells) + " |")
    return lines


def write_report(run_dir: Path, order: list[str] | None = None) -> tuple[Path, str]:
    """Render the run's Markdown table next to its JSON; return the path and the text."""
    docs = load_run(run_dir)
    if not docs:
        raise ResultsError(f"{run_dir}: the folder holds no results documents")
    text = render_markdown(run_dir, docs, order)
    path = run_dir / "report.md"
    write_text_atomic(path, text)
    return path, text
