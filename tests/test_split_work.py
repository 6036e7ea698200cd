"""Work split between this process and a forked copy (``harness.split_work``), and judging done that way.

The split only pays on a machine with two cores; these tests need one where forking is allowed (Linux, two usable
cores: the CI machine is one). Each checks which process did what by the process id an answer carries.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from harness import split_work
from harness.errors import ResultsError
from harness.split_work import can_fork, in_two_processes, side_by_side
from tests.factories import cell, env_doc

needs_fork = pytest.mark.skipif(
    sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2, reason="forking needs Linux and two usable cores"
)


@pytest.fixture(autouse=True)
def _no_other_thread() -> None:
    """A thread an earlier test left running keeps every later split in one process: named here, not hidden."""
    if sys.platform == "linux":
        assert threading.active_count() == 1, f"threads still running from an earlier test: {threading.enumerate()}"


def _tagged(items: Sequence[int]) -> list[tuple[int, int]]:
    return [(item * item, os.getpid()) for item in items]


@needs_fork
def test_the_second_half_is_done_by_another_process_and_the_answers_keep_their_order():
    answers = in_two_processes(_tagged, list(range(20)), minimum=4)
    assert [value for value, _ in answers] == [i * i for i in range(20)]
    here = os.getpid()
    assert {pid for _, pid in answers[:10]} == {here}
    (other,) = {pid for _, pid in answers[10:]}
    assert other != here


def test_too_few_items_are_one_call_here():
    calls: list[list[int]] = []

    def work(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        return [os.getpid() for _ in items]

    assert in_two_processes(work, [1, 2, 3], minimum=4) == [os.getpid()] * 3
    assert calls == [[1, 2, 3]]  # whole: what ``work`` keeps between its items (a cache) serves all of them


@pytest.mark.parametrize("why", ["variable", "thread"])
def test_one_process_when_asked_or_when_another_thread_runs(monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    release = threading.Event()
    waiting = threading.Thread(target=release.wait, daemon=True)  # a fork would copy only the calling thread
    if why == "variable":
        monkeypatch.setenv(split_work.PROCESSES_VARIABLE, "1")
    else:
        waiting.start()
    try:
        assert not can_fork()
        answers = in_two_processes(_tagged, list(range(20)), minimum=4)
    finally:
        release.set()
        if waiting.is_alive():
            waiting.join()
    assert {pid for _, pid in answers} == {os.getpid()}


@needs_fork
def test_an_error_in_the_copy_is_raised_here_after_this_half_finished(tmp_path):
    def here() -> None:
        (tmp_path / "here").write_text("done")

    def there() -> None:
        raise ResultsError(f"{tmp_path / 'env.npz'}: not a readable record archive")

    with pytest.raises(ResultsError, match="not a readable record archive"):
        side_by_side(here, there)
    assert (tmp_path / "here").read_text() == "done"


@needs_fork
def test_an_exception_that_cannot_travel_arrives_as_its_text():
    class Unbuildable(Exception):
        def __init__(self, code: int, detail: str) -> None:  # pickle rebuilds it with one argument: fails
            super().__init__(f"{code}: {detail}")

    def there() -> None:
        raise Unbuildable(7, "the disk is full")

    with pytest.raises(RuntimeError, match=r"Unbuildable: 7: the disk is full"):
        side_by_side(lambda: None, there)


@needs_fork
def test_a_copy_that_dies_without_an_answer_has_its_part_done_here(capsys):
    parent = os.getpid()

    def there() -> int:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    assert side_by_side(lambda: "mine", there) == ("mine", parent)
    assert f"signal {int(signal.SIGKILL)}" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- judging in two processes


def _chain(run_dir: Path, count: int) -> list[str]:
    """``count`` environments in one chain, a drifting kernel every third step and a failing cell every fifth."""
    names = [f"env{i:02d}" for i in range(count)]
    for i, name in enumerate(names):
        kernel = np.linspace(-1, 1, 16, dtype=np.float32) + np.float32(0.01 * (i // 3))
        status = "fail" if i % 5 == 4 else "pass"
        cells = [cell("layer_init.dense", kernel=kernel), cell("losses.mse", status, loss=0.5)]
        env_doc(run_dir, name, cells, run_id=run_dir.name)
    return names


def _files(folder: Path, stamp: str) -> dict[str, dict[str, object]]:
    """Each JSON file of ``folder`` without the time it was written (``stamp``)."""
    return {p.name: {k: v for k, v in json.loads(p.read_text()).items() if k != stamp} for p in folder.glob("*")}


@needs_fork
def test_paths_judged_in_two_processes_give_the_verdicts_and_files_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.results import load_run
    from harness.verdicts import Policy, judge_paths

    written = {}
    for mode in ("one", "two"):
        run_dir = tmp_path / mode / "r1"
        names = _chain(run_dir, 20)
        pairs = list(itertools.pairwise(names))  # 19 paths: above the split's minimum
        if mode == "one":
            monkeypatch.setenv(split_work.PROCESSES_VARIABLE, "1")
        else:
            monkeypatch.delenv(split_work.PROCESSES_VARIABLE, raising=False)
        verdicts = judge_paths(run_dir, load_run(run_dir), pairs, Policy())
        assert [(v.baseline, v.candidate) for v in verdicts] == pairs
        written[mode] = (
            [v.model_dump(exclude={"decided_at"}) for v in verdicts],
            _files(run_dir / "ledger", "measured_at"),
            _files(run_dir / "gonogo", "decided_at"),
        )
    assert written["one"] == written["two"]
    one = written["one"][0]
    assert {v["verdict"] for v in one} >= {"GO", "NO-GO"}  # a drifting kernel and a failing cell were judged
    assert len(written["two"][1]) == 19 and len(written["two"][2]) == 19
