"""The progress line: silent but for one closing line off a terminal, phases and counts and an ETA on one."""

from __future__ import annotations

import io
import json

from harness.progress import Progress, expected_seconds


def _drive(progress: Progress) -> None:
    progress.phase("provision")
    progress.phase("scenarios", 3)
    for _ in range(3):
        progress.cell_done()
    progress.phase("relay", 2)
    progress.cell_done()
    progress.finish("env-a: complete; 3 pass")


def test_off_a_terminal_there_is_one_line_per_environment_and_nothing_per_cell():
    stream = io.StringIO()
    _drive(Progress("env-a", expected_s=12.0, stream=stream))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("env-a: complete; 3 pass (") and lines[0].endswith(" s)")
    assert "ETA" not in stream.getvalue() and "scenarios" not in stream.getvalue()


def test_on_a_terminal_the_line_shows_phase_count_and_eta_then_gives_way_to_the_closing_line():
    stream = io.StringIO()
    progress = Progress("env-a", expected_s=120.0, stream=stream, live=True)
    progress.phase("scenarios", 3)
    progress.cell_done()
    progress.cell_done()
    shown = progress._line().plain
    assert shown.startswith("env-a: scenarios 2/3, ") and ", ETA 1" in shown  # about 120 s still to go
    progress._live.refresh()
    progress.finish("env-a: complete; 3 pass")
    assert "env-a: scenarios 2/3" in stream.getvalue()  # it was drawn
    last = stream.getvalue().rstrip().splitlines()[-1]
    erased, _, closing = last.rpartition("\x1b[2K")  # the live line is erased, the closing line takes its place
    assert erased and closing.startswith("env-a: complete; 3 pass (")


def test_the_eta_comes_from_the_latest_earlier_run_of_that_environment(tmp_path):
    for run, seconds in (("20261101T000000Z", 50.0), ("20261102T000000Z", 40.0), ("20261103T000000Z", 99.0)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "env-a.json").write_text(json.dumps({"timings": {"total_s": seconds}}))
    (tmp_path / "20261102T120000Z").mkdir()
    (tmp_path / "20261102T120000Z" / "env-a.json").write_bytes(b"\xff not json")  # unreadable: skipped
    assert expected_seconds(tmp_path, "20261103T000000Z", "env-a") == 40.0  # not this run's own, not later ones
    assert expected_seconds(tmp_path, "20261103T000000Z", "env-b") is None
    assert expected_seconds(tmp_path / "missing", "x", "env-a") is None
    assert expected_seconds(tmp_path, "20261103T000000Z", "../env-a") is None  # never a path outside
