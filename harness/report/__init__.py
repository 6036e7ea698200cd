"""Reports built from results files and verdicts only (never the environments): Markdown, HTML, JUnit XML.

Formatting only: the numbers come from ``harness.drift`` / ``harness.ledger`` (measured) and ``harness.judge``
(judged); the verdicts are shown first everywhere. ``markdown`` fits a CI step summary or a PR comment,
``html`` is one self-contained file, ``junit`` fails a CI dashboard exactly where a verdict blocks, ``verdict_md``
is one path's verdict alone (``gonogo/<A>__<B>.md``); ``common`` and ``relay`` hold what they share, ``mdsafe``
how untrusted text enters Markdown and how the Markdown stays under GitHub's size limit.
"""

from harness.report.common import latest_run, ordered, release_lines, scenario_ids, write_text
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.relay import Grid, relay_grids
from harness.report.verdict_md import render_verdict_markdown

__all__ = [
    "Grid",
    "latest_run",
    "ordered",
    "relay_grids",
    "release_lines",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_verdict_markdown",
    "scenario_ids",
    "write_text",
]
