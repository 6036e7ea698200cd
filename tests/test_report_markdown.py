"""report.md and the per-path verdict Markdown: verdicts first, changed cells marked, safe, and under the limit."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from harness import report
from harness.report import mdsafe
from tests.report_factories import A1, A2, BROKEN_ENV, ORDER, T1, T2, B, big_run, reason, small_docs, small_verdicts
from tests.report_factories import verdict as make_verdict


@pytest.fixture
def small(tmp_path):
    run_dir = tmp_path / "run"
    return run_dir, small_docs(run_dir), small_verdicts()


def rendered(markdown: str) -> str:
    """The Markdown as GitHub would turn it into HTML (raw HTML allowed, as in a PR comment before sanitizing)."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def row(text: str, first: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {first} |"))


def test_verdicts_and_blocking_reasons_come_before_the_matrix(small):
    run_dir, docs, verdicts = small
    text = report.render_markdown(run_dir, docs, ORDER, verdicts, ["run has fewer cells"])
    positions = [
        text.index("> **⚠ run has fewer cells**"),
        text.index("## Upgrade paths"),
        text.index(f"### NO-GO: {A1} → {B}"),
        text.index("**1. regression** in `a.two`"),
        text.index("## Status"),
        text.index("## Cross-version relay"),
        text.index("## Environments"),
        text.index("<details><summary>Problems"),
    ]
    assert positions == sorted(positions)
    assert row(text, A1) == f"| {A1} | {B} | **NO-GO** | 4 | 1 | 1 | 1 |"
    assert row(text, T1).startswith(f"| {T1} | {T2} | **INCOMPLETE** | 0 | 0 | 0 | 0 |")


def test_only_paths_that_are_not_go_get_a_section(small):
    run_dir, docs, verdicts = small
    go = make_verdict(A1, A2, "GO", [])
    text = report.render_markdown(run_dir, docs, ORDER, [*verdicts, go])
    assert f"| {A1} | {A2} | **GO** |" in text and f"→ {A2}" not in text
    assert text.count("\n### ") - text.count("\n### keras") == 4  # NO-GO, GO-WITH-WARNINGS, NO-GO, INCOMPLETE


def test_a_blocking_reason_has_kind_coverage_error_numbers_and_one_command(small):
    text = report.render_verdict_markdown(small[2][0])
    assert text.startswith(f"## NO-GO: {A1} → {B}\n")
    relay = text[text.index("**3. relay**") : text.index("**4. relay**")]
    assert "in `relay:keras:h5` · covers 2 artifacts" in relay
    assert "```text\nTypeError: bad config\n```" in relay
    assert "```sh\nCOMPAT_RUN_ID=run ./cm -s x -- -k 'relay:keras:h5'\n```" in relay
    drift = text[text.index("**2. drift**") : text.index("**3. relay**")]
    assert "covers 1 record  " in drift and "key numbers: max_abs_error `0.1`" in drift
    assert "```text\nworker killed by SIGSEGV\nFatal Python error: Segmentation fault\n" in text


def test_warnings_fixed_waived_and_missing_are_folded_after_the_blocking_ones(small):
    text = report.render_verdict_markdown(small[2][0])
    folded = text[text.index("**4. relay**") :]
    for title in ("Warnings (1)", f"Fixed in {B} (1)", "Waived (1)"):
        assert f"<details><summary>{title}</summary>" in folded
    assert "- **fixed** `c.five`: fail on tf2.15-keras2, passes on tf2.21-keras3" in folded
    incomplete = report.render_verdict_markdown(small[2][3])
    assert incomplete.startswith(f"## INCOMPLETE: {T1} → {T2}")
    assert "INCOMPLETE (never GO until these cells run)" in incomplete
    assert "<details><summary>Missing cells (INCOMPLETE) (1)</summary>" in incomplete
    assert f"- {T2} lacks 1 selected cells: `t.two`" in incomplete


def test_blocking_reasons_beyond_the_limit_are_folded_as_lines(small):
    many = [reason("no-go", "regression", [f"s.{i}"], f"broke {i}", error="E") for i in range(12)]
    text = report.render_verdict_markdown(make_verdict(A1, B, "NO-GO", many), limit=10)
    assert "**10. regression** in `s.9`" in text and "**11. regression**" not in text
    assert "<details><summary>Blocking: 2 more</summary>" in text and "- **regression** `s.11`: broke 11" in text


def test_a_long_error_keeps_head_and_tail_and_points_to_the_html():
    error = "first line\n" + "x" * 20_000 + "\nValueError: the cause"
    text = report.render_verdict_markdown(
        make_verdict(A1, B, "NO-GO", [reason("no-go", "regression", ["a"], error=error)])
    )
    block = text[text.index("```text") : text.index("```sh")]
    assert "first line" in block and "ValueError: the cause" in block
    assert "characters cut, see report.html for the full text" in block and len(block) < 3_500


def test_a_passing_cell_that_changed_is_marked_by_the_nearest_path(small):
    run_dir, docs, verdicts = small
    text = report.render_markdown(run_dir, docs, ORDER, verdicts)
    # B is the candidate of A1 -> B (changed a.one, a.two, b.four) and A2 -> B (changed b.four): A2 comes later.
    assert row(text, "`a.one`") == "| `a.one` | pass | pass | pass | **ENV-ERROR** | — | — |"
    assert row(text, "`b.four`") == "| `b.four` | pass | pass | pass Δ | — | — | — |"
    assert row(text, "`a.two`") == "| `a.two` | pass | pass | **CRASH** | **ENV-ERROR** | — | — |"
    assert f"Δ compares {B} against {A2}" in text
    swapped = report.render_markdown(run_dir, docs, [A2, A1, *ORDER[2:]], verdicts)
    assert row(swapped, "`a.one`").startswith("| `a.one` | pass | pass | pass Δ |")  # now A1 is the nearest


def test_relay_grid_shows_fallback_only_as_needing_a_fallback(small):
    run_dir, docs, verdicts = small
    text = report.render_markdown(run_dir, docs, ORDER, verdicts)
    grid = text[text.index("### keras · keras") :]
    assert f"| producer \\ consumer | {B} |" in grid
    assert row(grid, A1) == f"| {A1} | NEEDS fallback 1 · ok 1 · max 0 |"
    assert row(text[text.index("### keras · h5") :], A1) == f"| {A1} | ERR TypeError 2 |"


HOSTILE = "bad | cell `tick` <img src=x onerror=alert(1)> \x1b[31mred\x00\x0b\nsecond line ``` </details> 🚀"


def test_untrusted_text_cannot_break_tables_code_or_inject_html(small):
    run_dir, docs, _ = small
    evil = reason("no-go", "regression", ["a.two"], HOSTILE, error=HOSTILE + "\n```\n# heading", reproduce=HOSTILE)
    verdicts = [make_verdict(A1, B, "NO-GO", [evil]), make_verdict(A2, f"x|y<b>{HOSTILE}", "NO-GO", [evil])]
    docs[B].scenarios[1].message = HOSTILE
    text = report.render_markdown(run_dir, docs, ORDER, verdicts)
    html = rendered(text)
    assert "<img" not in html and "\x1b" not in text and "\x00" not in text and "\x0b" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "🚀" in html
    header_cells = html.split("<tbody>")[0].count("<th>")
    first_table = html[html.index("<table>") : html.index("</table>")]
    assert all(tr.count("<td") == header_cells for tr in first_table.split("<tr>")[2:])
    # every fence opened is closed: the text after the hostile error is still Markdown, not code
    assert "<h2>Status</h2>" in html and "<h1>heading</h1>" not in html
    assert html.count("<pre>") == html.count("</pre>") >= 2


def test_mdsafe_code_span_and_fence_survive_backticks():
    assert mdsafe.code("a`b|c\nd") == "`a'b\\|c d`"
    lines = mdsafe.fence("x\n````\ny")
    assert lines[0] == "`````text" and lines[-1] == "`````"


def test_the_whole_markdown_of_a_huge_run_fits_a_pr_comment(tmp_path):
    names, docs, verdicts = big_run(40, 300)
    text = report.render_markdown(tmp_path / "big", docs, names, verdicts, ["a flag"])
    assert mdsafe.size(text) <= 65_000
    assert all(f"| {v.baseline} | {v.candidate} | **NO-GO** | 30 | 50 | 0 | 0 |" in text for v in verdicts)
    assert "**1. regression** in `area0.scenario_000`" in text  # the first path's first reason is still shown
    assert "report.html" in text
    html = rendered(text)
    assert html.count("<pre>") == html.count("</pre>") and html.count("<details>") == html.count("</details>")


def test_parts_shrink_least_important_first(tmp_path):
    """Just over the limit because of the matrix: the matrix shrinks, the blocking errors stay whole."""
    names, docs, verdicts = big_run(14, 300)
    few = verdicts[:1]
    text = report.render_markdown(tmp_path / "mid", docs, names, few)
    assert mdsafe.size(text) <= 65_000
    assert "rows where every cell passes or skips unchanged are left out" in text
    verdict_part = text.split("## Status")[0]
    assert "characters cut" not in verdict_part and "ValueError: cell 9 broke" in verdict_part  # errors kept whole
    assert "<details><summary>Warnings (50)</summary>" in verdict_part


def test_report_without_verdicts_still_has_the_matrix(small):
    run_dir, docs, _ = small
    text = report.render_markdown(run_dir, docs)
    assert "No upgrade path judged" in text and "| `a.one` |" in text
    assert re.search(rf"\| {BROKEN_ENV} \| env-error \|", text)


def test_one_path_with_hundreds_of_long_reasons_fits_too():
    error = "Traceback\n" + "  frame\n" * 2_000 + "RuntimeError: last"
    many = [reason("no-go", "regression", [f"s.{i}"], f"broke {i}", error=error) for i in range(400)]
    many += [reason("warning", "deprecation", [f"s.{i}"], "x" * 500) for i in range(400)]
    text = report.render_verdict_markdown(make_verdict(A1, B, "NO-GO", many), limit=50)
    assert mdsafe.size(text) <= 65_000 and text.startswith(f"## NO-GO: {A1} → {B}")
    assert "**1. regression** in `s.0`" in text and "RuntimeError: last" in text


def test_a_paths_forms_are_built_only_when_read_and_once(monkeypatch):
    """``fit`` reads the forms it tries: a path that fits is rendered once, not in all its shorter forms too."""
    from harness.report import verdict_md

    built: list[int] = []
    real = verdict_md._blocking
    monkeypatch.setattr(verdict_md, "_blocking", lambda *a: built.append(a[2]) or real(*a))
    path = small_verdicts()[0]
    forms = verdict_md.path_forms(path, heading="# h\n\n")
    assert len(forms) == verdict_md.PATH_FORMS and built == []
    first = forms[0]
    assert forms[0] is first and first.startswith("# h\n\n") and len(built) == 1
    assert forms[-1] == forms[verdict_md.PATH_FORMS - 1] and len(built) == 2
    with pytest.raises(IndexError):
        forms[verdict_md.PATH_FORMS]
    assert list(forms) == forms[:] and len(built) == verdict_md.PATH_FORMS
    assert len(set(forms)) > 1 and all("**1. " in form for form in forms[:3])  # shorter forms, same reasons


def test_the_verdict_markdown_of_a_path_that_fits_builds_one_form(monkeypatch):
    from harness.report import verdict_md

    built: list[int] = []
    real = verdict_md._blocking
    monkeypatch.setattr(verdict_md, "_blocking", lambda *a: built.append(a[2]) or real(*a))
    text = report.render_verdict_markdown(small_verdicts()[0])
    assert "**1. regression**" in text and len(built) == 1


def test_text_renders_as_itself_wherever_it_is_put():
    """Whatever ``mdsafe.text`` is given, a Markdown renderer shows exactly it, on one line without blanks at its
    ends: as a paragraph of its own (where ``#``, ``1.``, ``-`` or ``>`` would open a block), as a paragraph's second
    line (where ``--`` or ``==`` would make the first a heading), in a list item (``- --`` is a rule) and in a table
    cell, with no markup, link, code or HTML of its own. The fast path for text that needs no escaping is
    held to the same."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from harness.report.cleaning import clean

    def shown(value: str) -> str:  # as markdown-it writes text into HTML
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")

    @settings(max_examples=1500, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("ab_12 .)\t\r\n&<>\\`*[]|~#-+=!:\x1b\x00é")), max_size=14))
    def check(value):
        expected = shown(re.sub(r"\r\n|\r|\n", " ", clean(value)).strip())
        safe = mdsafe.text(value)
        assert "\n" not in safe and "\r" not in safe
        assert rendered(safe) == (f"<p>{expected}</p>\n" if expected else "")
        assert rendered(f"- {safe}") == f"<ul>\n<li>{expected}</li>\n</ul>\n"
        assert rendered(f"para\n{safe}") == (f"<p>para\n{expected}</p>\n" if expected else "<p>para</p>\n")
        table = rendered(f"| x | y |\n|---|---|\n| {safe} | z |")
        assert f"<td>{expected}</td>" in table and table.count("<td>") == 2

    check()
