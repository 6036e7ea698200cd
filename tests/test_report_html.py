"""report.html: self-contained, verdicts on the first screen, escaped, and readable (WCAG AA) in a real Chromium."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import pytest

from harness import report
from harness.report import html as html_report
from tests.report_factories import A1, A2, ORDER, B, reason, small_docs, small_verdicts, wide_run
from tests.report_factories import verdict as make_verdict

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page_html(tmp_path):
    run_dir = tmp_path / "run"
    return report.render_html(run_dir, small_docs(run_dir), ORDER, small_verdicts(), ["run has fewer cells"])


# ------------------------------------------------------------------------------------- WCAG 2.x contrast


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour with channels 0-255."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[float, float, float], bg: tuple[float, float, float]) -> float:
    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula_matches_known_ratios():
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((255, 255, 255), (255, 255, 255)) == pytest.approx(1.0)
    assert contrast((0x77, 0x77, 0x77), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)  # the classic near-miss


def hex_colour(value: str) -> tuple[float, float, float]:
    digits = value.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    assert len(digits) == 6, f"not a #rgb / #rrggbb colour: {value}"
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def stylesheet_rules(html: str) -> dict[str, dict[str, str]]:
    css = re.sub(r"/\*.*?\*/", "", html.split("<style>", 1)[1].split("</style>", 1)[0], flags=re.S)
    rules = {}
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        declarations = (d.split(":", 1) for d in body.split(";") if ":" in d)
        rules[selector.strip()] = {k.strip(): v.strip() for k, v in declarations}
    return rules


def colour_of(declarations: dict[str, str], *properties: str) -> str | None:
    for prop in properties:
        if prop in declarations:
            found = re.search(r"#[0-9a-fA-F]{3,6}\b", declarations[prop])
            assert found, f"{prop}: {declarations[prop]} is not a hex colour the test can check"
            return found.group(0)
    return None


def test_every_colour_pair_of_the_stylesheet_meets_wcag_aa(page_html):
    rules = stylesheet_rules(page_html)
    body_fg, body_bg = colour_of(rules["body"], "color"), colour_of(rules["body"], "background", "background-color")
    assert body_fg and body_bg
    pairs = {}
    for selector, declarations in rules.items():
        fg = colour_of(declarations, "color")
        bg = colour_of(declarations, "background", "background-color")
        if fg or bg:
            pairs[selector] = (fg or body_fg, bg or body_bg)
    assert len(pairs) >= 15  # the heatmap, relay, badge and banner colours are all there to check
    low = {s: round(contrast(hex_colour(f), hex_colour(b)), 2) for s, (f, b) in pairs.items()}
    assert {s: r for s, r in low.items() if r < 4.5} == {}


def test_the_stylesheet_has_no_sticky_or_fixed_header(page_html):
    css = page_html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert not re.search(r"position\s*:\s*(sticky|fixed)", css)


# ------------------------------------------------------------------------------------------------ content


def test_html_is_self_contained_and_verdicts_come_first(page_html):
    assert "http://" not in page_html and "https://" not in page_html
    assert "<link" not in page_html and "src=" not in page_html
    positions = [page_html.index(f'id="{name}"') for name in ("verdicts", "status", "relay", "details", "environments")]
    assert positions == sorted(positions)
    verdicts = page_html[page_html.index('id="verdicts"') : page_html.index('id="status"')]
    assert "worker killed by SIGSEGV" in verdicts and "TypeError: bad config" in verdicts
    assert "COMPAT_RUN_ID=run ./cm -s x -- -k &#39;a.two&#39;" in verdicts
    assert "Fixed in tf2.21-keras3 (1)" in verdicts and "Missing cells (INCOMPLETE)" in verdicts


def test_changed_cells_and_fallback_loads_are_marked(page_html):
    changed = re.findall(r'<td class="cell s-changed" data-status="(\w+)" data-changed="1"', page_html)
    assert changed == ["pass"]  # b.four on B, from the nearest path A2 -> B
    assert 'title="(behaves differently from tf2.16-keras3)">pass Δ</td>' in page_html
    assert '<td class="cell s-warn"' in page_html and "NEEDS fallback 1 · ok 1" in page_html


def test_untrusted_text_is_escaped_and_cleaned(tmp_path):
    hostile = "<img src=x onerror=alert(1)> \x1b[31mred\x00\x0b </pre><script>alert(2)</script>"
    docs = small_docs(tmp_path / "run")
    docs[B].scenarios[1].message = hostile
    evil = reason("no-go", "regression", ["a.two"], hostile, error=hostile, reproduce=hostile)
    html = report.render_html(tmp_path / "run", docs, ORDER, [make_verdict(A1, B, "NO-GO", [evil])])
    assert "<img" not in html and "<script>alert" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\x1b" not in html and "\x00" not in html and "\x0b" not in html


def test_a_single_path_page_for_gonogo(tmp_path):
    docs = small_docs(tmp_path / "run")
    pair = {k: docs[k] for k in (A2, B)}
    html = report.render_html(tmp_path / "run", pair, ORDER, [small_verdicts()[1]])
    heatmap = html[html.index('id="status-heatmap"') : html.index("</table>", html.index('id="status-heatmap"'))]
    assert heatmap.split("</tr>")[0].count("<th>") == 3 and "GO-WITH-WARNINGS" in html  # scenario + the two sides


# ----------------------------------------------------------------------------------------- in Chromium

OPEN_ALL = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
ALL_BUILT = "() => [...document.querySelectorAll('details.cell-detail')].every(d => d.dataset.built)"
PAGE_FACTS = """() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const alpha = c => { const p = c.match(/[\\d.]+/g).map(Number); return p.length === 4 ? p[3] : 1; };
  const texts = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getBoundingClientRect().width) continue;
    let holder = el, bg = "rgb(255, 255, 255)";
    while (holder) {
      const c = getComputedStyle(holder).backgroundColor;
      if (alpha(c) > 0) { bg = c; break; }
      holder = holder.parentElement;
    }
    texts.push([el.tagName + "." + el.className, getComputedStyle(el).color, bg]);
  }
  const pinned = [...document.querySelectorAll("*")].filter(
    el => ["fixed", "sticky"].includes(getComputedStyle(el).position)).length;
  return {texts, pinned};
}"""


def rgb(css: str) -> tuple[float, float, float]:
    r, g, b = (float(x) for x in re.findall(r"[\d.]+", css)[:3])
    return (r, g, b)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_html_in_headless_chromium_shows_the_verdicts_on_the_first_screen(page_html, tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = tmp_path / "report.html"
    page_path.write_text(page_html)
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(page_path.as_uri())
        page.screenshot(path=str(shot))
        page.evaluate(OPEN_ALL)
        page.wait_for_function(ALL_BUILT)  # the details are built from the JSON block when opened
        table = page.locator("#verdict-table").bounding_box()
        first_reason = page.locator("#verdicts .reason").first.bounding_box()
        status = page.locator("#status").bounding_box()
        badge = page.locator("#verdict-table .v-NO-GO").first.bounding_box()
        cells = page.locator("#status-heatmap td.cell").count()
        header = page.locator("#cell-count").inner_text()
        facts = page.evaluate(PAGE_FACTS)
        browser.close()
    assert problems == []
    assert png_size(shot) == (1280, 800)
    assert table["y"] + table["height"] <= VIEWPORT["height"]  # the whole verdict table is on the first screen
    assert first_reason["y"] < VIEWPORT["height"] and status["y"] > table["y"]
    assert 0 <= badge["x"] < VIEWPORT["width"] and 0 <= badge["y"] < VIEWPORT["height"]
    assert cells == 8 * 6 and header == "48 cells."
    assert facts["pinned"] == 0
    low = {(tag, fg, bg) for tag, fg, bg in facts["texts"] if contrast(rgb(fg), rgb(bg)) < 4.5}
    assert len(facts["texts"]) > 100 and low == set()


# ------------------------------------------------------------------------------------ bounded, large runs


def cell_data(html: str) -> dict:
    """The JSON block the details are built from (it must parse as the page ships it)."""
    start = html.index('<script type="application/json" id="cell-data">') + len(
        '<script type="application/json" id="cell-data">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_a_large_run_stays_small_and_still_has_every_environment_and_verdict(tmp_path):
    names, docs, verdicts = wide_run(envs=30, scenarios=90)
    cells = sum(len(d.scenarios) for d in docs.values())
    html = report.render_html(tmp_path / "run", docs, names, verdicts)
    # the bound is 5 MB at 10,000 cells: 500 bytes a cell, plus the fixed parts (stylesheet, script)
    assert len(html.encode()) <= 500 * cells + 100_000
    table = html[html.index('id="verdict-table"') : html.index("</table>", html.index('id="verdict-table"'))]
    for v in verdicts:
        assert f"<tr><td>{v.baseline}</td><td>{v.candidate}</td>" in table
    assert table.count(">NO-GO</") == sum(v.verdict == "NO-GO" for v in verdicts) == 29
    heatmap = html[html.index('id="status-heatmap"') : html.index("</table>", html.index('id="status-heatmap"'))]
    assert all(f"<th>{name}</th>" in heatmap for name in names) and heatmap.count("<td class=") == cells
    data = cell_data(html)
    assert data["envs"] == names and len(data["rows"]) == 90
    statuses = [data["statuses"][code] for row in data["rows"] for code in row]
    assert statuses.count("fail") == sum(c.status == "fail" for d in docs.values() for c in d.scenarios)
    assert 'id="details-left-out"' not in html  # 2,700 cells fit the page whole


def test_details_past_the_page_budget_are_left_out_broken_cells_kept_first(tmp_path, monkeypatch):
    names, docs, verdicts = wide_run(envs=10, scenarios=40)
    monkeypatch.setattr(html_report, "PAGE_BUDGET", 0)
    page = report.render_html(tmp_path / "run", docs, names, verdicts)
    base = len(page.encode())
    monkeypatch.setattr(html_report, "PAGE_BUDGET", base + 4_000)
    page = report.render_html(tmp_path / "run", docs, names, verdicts)
    assert 'id="details-left-out"' in page
    data = cell_data(page)
    kept = [(r, int(c)) for r, row in enumerate(data["details"]) for c in row]
    assert kept and len(kept) < sum(len(d.scenarios) for d in docs.values())
    kept_statuses = {data["statuses"][data["rows"][r][c]] for r, c in kept}
    failing = sum(c.status == "fail" for d in docs.values() for c in d.scenarios)
    assert "fail" in kept_statuses and sum(data["statuses"][data["rows"][r][c]] == "fail" for r, c in kept) == min(
        failing, len(kept)
    )


def test_beyond_the_heatmap_budget_each_scenario_is_one_summary_row(tmp_path, monkeypatch):
    monkeypatch.setattr(html_report, "HEATMAP_CELLS", 10)
    docs = small_docs(tmp_path / "run")
    html = report.render_html(tmp_path / "run", docs, ORDER, small_verdicts())
    assert 'id="status-heatmap"' not in html and 'id="status-summary"' in html
    row = re.search(r"<tr><th><a href=\"#detail-a.two\">a.two</a></th>(.*?)</tr>", html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    # pass, pass Δ, fail, error, skip, timeout, crash, env-error, not run; then where it is broken
    assert cells == ["2", "0", "0", "0", "0", "0", "1", "1", "2", f"{B} (crash), broken (env-error)"]


def test_a_relay_grid_too_large_to_read_lists_its_problem_pairs(tmp_path, monkeypatch):
    monkeypatch.setattr(html_report, "RELAY_GRID_CELLS", 0)
    html = report.render_html(tmp_path / "run", small_docs(tmp_path / "run"), ORDER, small_verdicts())
    relay = html[html.index('id="relay"') : html.index('id="details"')]
    assert "relay-grid" not in relay and relay.count('<table class="relay-pairs">') == 2
    assert f'<tr><td>{A1}</td><td>{B}</td><td class="cell s-fail">ERR TypeError 2</td>' in relay
    assert '<td class="cell s-warn">NEEDS fallback 1 · ok 1 · max 0</td>' in relay
    assert f"<tr><td>{A2}</td>" not in relay  # A2's artifact loaded cleanly on B


def test_path_articles_past_their_budget_shrink_then_are_only_named(tmp_path, monkeypatch):
    docs, verdicts = small_docs(tmp_path / "run"), small_verdicts()
    full = report.render_html(tmp_path / "run", docs, ORDER, verdicts)
    first = full[full.index('<article class="path" id="path-1">') : full.index("</article>") + len("</article>")]
    monkeypatch.setattr(html_report, "ARTICLE_BUDGET", len(first) + 10)
    html = report.render_html(tmp_path / "run", docs, ORDER, verdicts)
    assert html.count("<article") == 1 and "worker killed by SIGSEGV" in html  # the first path whole
    assert "The reasons of 3 more paths that are not GO are left out" in html
    assert f"{A2} → {B} (GO-WITH-WARNINGS)" in html and "gonogo/&lt;from&gt;__&lt;to&gt;.json" in html
    monkeypatch.setattr(html_report, "ARTICLE_BUDGET", len(first) - 10)
    shrunk = report.render_html(tmp_path / "run", docs, ORDER, verdicts)
    article = shrunk[shrunk.index('<article class="path" id="path-1">') :]
    assert "Error texts and numbers of this path are left out" in article
    assert "Fatal Python error" not in article[: article.index("</article>")]


def test_the_json_block_cannot_be_closed_by_what_a_cell_says(tmp_path):
    hostile = "</script><script>alert(1)</script><!-- ' & \x1b[31m \u2028"
    docs = small_docs(tmp_path / "run")
    docs[B].scenarios[1].message = hostile
    html = report.render_html(tmp_path / "run", docs, ORDER, small_verdicts())
    assert html.count("</script>") == 2 and "<script>alert" not in html and "\x1b" not in html
    two = report.scenario_ids(docs).index("a.two")
    assert (
        cell_data(html)["details"][two][str(ORDER.index(B))][1] == "</script><script>alert(1)</script><!-- ' &  \u2028"
    )


def test_cell_details_are_built_on_demand_as_text_never_as_markup(tmp_path):
    from playwright.sync_api import sync_playwright

    hostile = "<img src=x onerror=alert(1)></pre><b>bold</b>"
    docs = small_docs(tmp_path / "run")
    docs[B].scenarios[1].message = hostile
    page_path = tmp_path / "report.html"
    page_path.write_text(report.render_html(tmp_path / "run", docs, ORDER, small_verdicts()))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(page_path.as_uri())
        before = page.locator("#detail-a\\.two .cells > *").count()  # nothing is built until it is opened
        page.goto(page_path.as_uri() + "#detail-a.two")  # a heatmap row's link opens that scenario
        page.wait_for_function("() => document.getElementById('detail-a.two').dataset.built")
        shown = page.locator("#detail-a\\.two .cells").inner_text()
        markup = page.evaluate("() => document.querySelectorAll('#details img, #details b').length")
        browser.close()
    assert problems == [] and before == 0
    assert f"{B}: crash" in shown and hostile in shown and markup == 0
    assert f"{A1}: pass" in shown and "broken: env-error" in shown


# ------------------------------------------------------------------------------- the fast paths' exactness

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: Text that mixes what reports show with everything clean_text removes (escapes, controls, newlines, tabs).
_untrusted = st.lists(
    st.one_of(
        st.text(max_size=6),
        st.sampled_from(["\x1b[31m", "\x1b]0;t\x07", "\x1b(B", "\x00", "\x7f", "\n", "\t", "\r", "\x0b", "é"]),
    ),
    max_size=8,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_untrusted)
def test_reports_clean_text_exactly_as_clean_text_does(text):
    from harness.report.cleaning import clean
    from harness.worker.protocol import clean_text

    assert clean(text) == clean_text(text)


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _untrusted),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_untrusted, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_encoders_made_once_write_what_json_dumps_writes(value):
    assert html_report._COMPACT(value) == json.dumps(value, separators=(",", ":"))
    assert html_report._SHOWN([value, object]) == json.dumps([value, object], separators=(",", ":"), default=str)
    assert html_report._template_dumps(value, sort_keys=True) == json.dumps(value, sort_keys=True)


def test_templates_compiled_once_are_reused_and_a_bad_cache_is_no_error(tmp_path, monkeypatch):
    """The compiled templates kept in the state folder give the same page; a corrupt entry or an unwritable folder
    only means compiling again."""
    run_dir = tmp_path / "run"
    docs, verdicts = small_docs(run_dir), small_verdicts()

    def page(state: Path) -> str:
        monkeypatch.setenv("COMPAT_STATE_DIR", str(state))
        html_report._environment.cache_clear()
        text = report.render_html(run_dir, docs, ORDER, verdicts, [])
        return re.sub(r"Generated [^.]*\.", "", text)

    fresh = page(tmp_path / "state")
    entries = sorted((tmp_path / "state" / "_cache" / "templates").iterdir())
    assert entries  # compiled templates were kept
    assert page(tmp_path / "state") == fresh  # read back from the cache
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:40] + b"\x00garbage")
    assert page(tmp_path / "state") == fresh  # a corrupt entry is compiled again
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state folder would be")
    assert page(blocked) == fresh
    html_report._environment.cache_clear()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.integers(0, 99).map(str), _json_values, max_size=3), max_size=4), _json_values)
def test_details_written_from_their_encoded_entries_are_the_json_of_the_whole(details, other):
    """Cell entries are encoded once (to be sized) and written as that text: the block is still exactly the JSON
    ``json.dumps`` writes for the same data."""
    encoded = [
        {column: html_report._Json(html_report._COMPACT(entry)) for column, entry in row.items()} for row in details
    ]
    data = {"envs": ["a<b"], "rows": [[1, -1]], "details": encoded, "checks": other, "records": [[]]}
    expected = {**data, "details": details}
    assert html_report._payload(data) == json.dumps(expected, separators=(",", ":"))
