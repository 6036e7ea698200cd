"""``report.html``: one self-contained file (no CDN, no network), verdicts and their reasons on the first screen.

Then the status heatmap with the same "changed" marking as the Markdown, the relay grids, the history, the
per-scenario details and the resolved versions. Every printed value passes ``clean_text`` (jinja2 ``finalize``)
and is escaped by jinja2's autoescape, because error messages and names come from results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.judge import Reason, Verdict
from harness.report.common import (
    BROKEN,
    KEY_PACKAGES,
    by_severity,
    changed_cells,
    compared_with,
    counts_text,
    ordered,
    release_lines,
    scenario_ids,
    titles,
)
from harness.report.relay import LEGEND, relay_grids
from harness.results import EnvironmentResult, now_iso
from harness.worker.protocol import clean_text

__all__ = ["render_html"]


@dataclass
class PathView:
    """One verdict as the template shows it: its reasons by severity, its anchor and badge."""

    verdict: Verdict
    anchor: str
    css: str
    counts: str
    groups: dict[str, list[Reason]]
    folded: list[tuple[str, str]]


def _path_view(index: int, verdict: Verdict) -> PathView:
    named = titles(verdict)
    folded = [(severity, named[severity]) for severity in ("warning", "fixed", "waived", "info")]
    groups = by_severity(verdict.reasons)
    return PathView(verdict, f"path-{index}", f"v-{verdict.verdict}", counts_text(verdict) + ".", groups, folded)


def _finalize(value: Any) -> Any:
    """Control characters out of every printed string (escaping stays jinja2's, markup stays markup)."""
    import markupsafe

    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(clean_text(str(value)))
    return clean_text(value) if isinstance(value, str) else value


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
    )


def render_html(
    run_dir: Path,
    docs: dict[str, EnvironmentResult],
    order: list[str] | None = None,
    verdicts: list[Verdict] | None = None,
    flags: list[str] | None = None,
    trend: dict[str, Any] | None = None,
    releases: list[dict[str, str]] | None = None,
) -> str:
    """The run (or, from ``gonogo``, one path's two environments) as one HTML page."""
    envs, judged = ordered(docs, order), list(verdicts or [])
    compared = {env: v.baseline for env, v in compared_with(judged, envs).items()}
    text: str = (
        _environment()
        .get_template("report.html.j2")
        .render(
            run_id=run_dir.name,
            generated=now_iso(),
            flags=flags or [],
            news=release_lines(releases or [], judged),
            envs=envs,
            docs=docs,
            key_packages=KEY_PACKAGES,
            scenario_ids=scenario_ids(docs),
            paths=[_path_view(i, v) for i, v in enumerate(judged, start=1)],
            verdicts=judged,
            changed=changed_cells(judged, envs),
            compared=compared,
            broken=BROKEN,
            relay_grids=relay_grids(docs, envs),
            relay_legend=LEGEND,
            trend=trend,
        )
    )
    return text
