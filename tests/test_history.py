"""History: trend across runs, and loud flags for runs that executed nothing or lost cells."""

from __future__ import annotations

import numpy as np

from harness import history
from tests.factories import cell, env_doc

W = np.ones(4, dtype=np.float32)


def test_trend_says_since_when_a_state_holds(tmp_path):
    for i, (status, value) in enumerate([("pass", W), ("pass", W), ("fail", W), ("fail", W * 2)]):
        env_doc(
            tmp_path / f"run{i}",
            "e",
            [cell("a.x", status, w=value)],
            run_id=f"run{i}",
            started_at=f"2026-11-2{i}T00:00:00+00:00",
        )
    data = history.trend(tmp_path)
    assert data["runs"] == ["run0", "run1", "run2", "run3"]
    (entry,) = data["entries"]
    assert [p["status"] for p in entry["history"]] == ["pass", "pass", "fail", "fail"]
    assert entry["since"] == "run3" and entry["changed"]  # the record changed in run3, the status in run2


def test_run_that_executed_nothing_is_flagged(tmp_path):
    docs = {"e": env_doc(tmp_path / "r", "e", [cell("a.x", "skip", "nothing here")])}
    flags = history.completeness_flags(tmp_path / "r", docs, tmp_path)
    assert flags and "executed no scenario at all" in flags[0]


def test_fewer_cells_than_the_previous_run_of_the_same_matrix_is_flagged(tmp_path):
    env_doc(tmp_path / "r1", "e", [cell("a.x"), cell("a.y")], started_at="2026-11-20T00:00:00+00:00")
    docs = {"e": env_doc(tmp_path / "r2", "e", [cell("a.x")], started_at="2026-11-21T00:00:00+00:00")}
    flags = history.completeness_flags(tmp_path / "r2", docs, tmp_path)
    assert len(flags) == 1 and "fewer than the 2 of the previous run" in flags[0]
    other = {
        "e": env_doc(
            tmp_path / "r3", "e", [cell("a.x")], started_at="2026-11-22T00:00:00+00:00", matrix_sha256="another matrix"
        )
    }
    assert history.completeness_flags(tmp_path / "r3", other, tmp_path) == []


def test_complete_run_is_not_flagged(tmp_path):
    env_doc(tmp_path / "r1", "e", [cell("a.x")], started_at="2026-11-20T00:00:00+00:00")
    docs = {"e": env_doc(tmp_path / "r2", "e", [cell("a.x")], started_at="2026-11-21T00:00:00+00:00")}
    assert history.completeness_flags(tmp_path / "r2", docs, tmp_path) == []


def test_earlier_runs_are_read_for_what_history_needs_and_unreadable_ones_left_out(tmp_path):
    import json

    for i, name in enumerate(("r1", "r2", "r3", "r4")):
        env_doc(tmp_path / name, "e", [cell("a.x", w=W)], run_id=name, started_at=f"2026-11-2{i}T00:00:00+00:00")
    older = json.loads((tmp_path / "r2" / "e.json").read_text())
    (tmp_path / "r2" / "e.json").write_text(json.dumps({**older, "schema_version": 2}))  # same fields history reads
    (tmp_path / "r3" / "e.json").write_text(json.dumps({**older, "schema_version": 99}))
    (tmp_path / "r4" / "e.json").write_text("{")
    runs = history.list_runs(tmp_path)
    assert [folder.name for folder, _ in runs] == ["r1", "r2"]
    assert all(isinstance(doc, history.PastDocument) for _, docs in runs for doc in docs.values())
    (entry,) = history.trend(tmp_path, runs=runs)["entries"]
    assert [p["status"] for p in entry["history"]] == ["pass", "pass"] and not entry["changed"]
