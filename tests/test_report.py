"""Reports from crafted results: Markdown, JUnit XML, and the HTML opened in headless Chromium."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from harness import report
from harness.gonogo import decide
from tests.factories import cell, env_doc, relay_row

W = np.linspace(-1, 1, 16, dtype=np.float32)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def run(tmp_path):
    run_dir = tmp_path / "run"
    docs = {
        "base": env_doc(
            run_dir,
            "base",
            [cell("a.one", w=W), cell("a.two"), cell("b.three", "skip", "no torch")],
            relay=[relay_row("base", "base", "loaded", max_abs_error=0.0)],
        ),
        "new": env_doc(
            run_dir,
            "new",
            [
                cell("a.one", w=W + 0.1),
                cell("a.two", "crash", "worker killed by SIGSEGV"),
                cell("b.three", "skip", "no torch"),
            ],
            relay=[relay_row("base", "new", "load-error", error_class="TypeError", message="no")],
        ),
        "broken": env_doc(
            run_dir,
            "broken",
            [cell("a.one", "env-error"), cell("a.two", "env-error"), cell("b.three", "env-error")],
            state="env-error",
        ),
    }
    verdicts = [decide(docs, dict.fromkeys(docs, run_dir), "base", env) for env in ("new", "broken")]
    return run_dir, docs, verdicts


def test_markdown_has_matrix_verdicts_relay_and_folded_problems(run):
    run_dir, docs, verdicts = run
    text = report.render_markdown(run_dir, docs, ["base", "new", "broken"], verdicts, ["run has fewer cells"])
    assert "> **⚠ run has fewer cells**" in text
    assert "| new | **NO-GO** |" in text
    assert "| `a.two` | pass | **CRASH** | **ENV-ERROR** |" in text
    assert "### keras · keras" in text and "| base | ok · max 0 | ERR TypeError |" in text
    assert "<details><summary>Problems</summary>" in text


def test_verdict_markdown_lists_blocking_reasons_with_commands(run):
    _, _, verdicts = run
    text = report.render_verdict_markdown(verdicts[0])
    assert text.startswith("## NO-GO: new against base")
    assert "**regression** `a.two`" in text and "re-run: `COMPAT_RUN_ID=run ./cm -s base new -- -k 'a.two'`" in text


def test_junit_has_one_case_per_cell(run):
    _, docs, _ = run
    root = ET.fromstring(report.render_junit(docs, ["base", "new", "broken"]).split("\n", 1)[1])
    suites = {s.get("name"): s for s in root}
    assert list(suites) == ["base", "new", "broken"]
    assert all(len(list(s)) == 3 for s in suites.values())
    assert suites["new"].get("errors") == "1" and suites["broken"].get("errors") == "3"
    crash = next(c for c in suites["new"] if c.get("name") == "a.two")
    assert crash.find("error").get("message") == "worker killed by SIGSEGV"
    assert suites["base"].find("testcase[@name='b.three']/skipped") is not None


def test_html_is_self_contained(run):
    run_dir, docs, verdicts = run
    html = report.render_html(run_dir, docs, ["base", "new", "broken"], "base", verdicts)
    assert "http://" not in html and "https://" not in html.replace("https://json-schema", "")
    assert 'id="status-heatmap"' in html and 'id="drift-heatmap"' in html and "relay-grid" in html


def test_html_renders_in_headless_chromium(run, tmp_path):
    from playwright.sync_api import sync_playwright

    run_dir, docs, verdicts = run
    page_path = tmp_path / "report.html"
    page_path.write_text(report.render_html(run_dir, docs, ["base", "new", "broken"], "base", verdicts))
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(Path(page_path).as_uri())
        status_cells = page.locator("#status-heatmap td.cell").count()
        drift_cells = page.locator("#drift-heatmap td.cell").count()
        header = page.locator("#cell-count").inner_text()
        crash_cells = page.locator('#status-heatmap td[data-status="crash"]').count()
        browser.close()
    assert problems == []
    assert status_cells == 3 * 3 and drift_cells == 3 * 3
    assert header == "9 cells." and crash_cells == 1
