"""The report package's shared parts: run folder, column order, the path that marks a column, relay cells."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from harness import report
from harness.errors import ResultsError
from harness.report.common import changed_cells, compared_with
from harness.report.relay import relay_cell
from tests.factories import cell, env_doc, relay_row
from tests.report_factories import A1, A2, ORDER, B, small_docs, small_verdicts
from tests.report_factories import verdict as make_verdict


def test_latest_run_is_the_most_recently_written_folder(tmp_path):
    for name, mtime in (("b-old", 100), ("a-new", 200)):
        env_doc(tmp_path / name, "x", [cell("a.one")], run_id=name)
        os.utime(tmp_path / name / "x.json", (mtime, mtime))
    (tmp_path / "empty").mkdir()
    assert report.latest_run(tmp_path).name == "a-new"
    with pytest.raises(ResultsError, match="no run folder"):
        report.latest_run(tmp_path / "empty")


def test_ordered_follows_the_matrix_then_the_rest(tmp_path):
    docs = {name: env_doc(tmp_path, name, [cell("a.one")]) for name in ("z", "y", "x")}
    assert report.ordered(docs, ["x", "gone", "z"]) == ["x", "z", "y"]
    assert report.ordered(docs, None) == ["z", "y", "x"]


def test_a_column_is_marked_by_the_path_whose_baseline_comes_latest():
    paths = [make_verdict(A2, B, "GO", [], changed=["b"]), make_verdict(A1, B, "GO", [], changed=["a"])]
    assert compared_with(paths, ORDER)[B].baseline == A2
    assert changed_cells(paths, [A2, A1, B]) == {B: {"a"}}
    assert changed_cells(paths, ["unknown", B]) == {B: {"b"}}  # neither baseline ranked: the first one stays


def test_relay_cells_show_the_worst_outcome_first():
    rows = [
        relay_row("a", "b", "loaded", max_abs_error=1e-7),
        relay_row("a", "b", "fallback-only", how="compile=False"),
        relay_row("a", "b", "load-error", error_class="TypeError"),
    ]
    assert relay_cell(rows) == ("ERR TypeError 1 · NEEDS fallback 1 · ok 1 · max 1e-07", "s-fail")
    assert relay_cell(rows[:2]) == ("NEEDS fallback 1 · ok 1 · max 1e-07", "s-warn")
    assert relay_cell([relay_row("a", "b", "optimizer-state-lost")]) == ("opt-lost", "s-timeout")


def test_new_release_lines_name_the_paths_that_move_to_it():
    releases = [{"environment": B, "package": "keras", "version": "3.16.0", "previous": "3.15.1", "previous_run": "r1"}]
    lines = report.release_lines(releases, [make_verdict(A1, B, "NO-GO", []), make_verdict(A2, "other", "GO", [])])
    assert lines == [
        f"new release 3.16.0 of keras since the previous run (was 3.15.1 in run r1), in {B}; NO-GO from {A1}"
    ]


def test_every_renderer_as_the_cli_calls_it(tmp_path):
    run_dir = tmp_path / "run"
    docs, verdicts = small_docs(run_dir), small_verdicts()
    markdown = report.render_markdown(run_dir, docs, ORDER, verdicts, [], [])
    html = report.render_html(run_dir, docs, ORDER, verdicts, [], {"runs": [], "entries": []}, [])
    junit = report.render_junit(docs, ORDER, verdicts)
    single = report.render_verdict_markdown(verdicts[0], limit=2)
    written = report.write_text(run_dir / "report.md", markdown)
    assert written.read_text() == markdown and markdown.startswith("# compat-matrix run run\n")
    assert html.startswith("<!doctype html>") and ET.fromstring(junit.encode()).tag == "testsuites"
    assert "**2. drift**" in single and "**3. relay**" not in single
