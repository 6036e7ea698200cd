"""Work split between this process and a forked copy (``harness.split_work``), and judging done that way.

The split only pays on a machine with two cores; these tests need one where forking is allowed (Linux, two usable
cores: the CI machine is one). Each checks which process did what by the process id an answer carries.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
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
def _no_other_thread() -> Iterator[None]:
    """A thread an earlier test left running keeps every later split in one process: named here, not hidden. And
    ``load_and_judge`` leaves the collector as it found it (freezing is its caller's, ``read=``)."""
    import gc

    if sys.platform == "linux":
        assert threading.active_count() == 1, f"threads still running from an earlier test: {threading.enumerate()}"
    frozen = gc.get_freeze_count()
    yield
    assert gc.get_freeze_count() == frozen


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


def _judged(run_dir: Path, how: str) -> tuple[list[dict[str, object]], object, object]:
    """The chain's 19 paths judged ``how``: its verdicts, and its ledger and verdict files without their times."""
    from harness.results import load_run
    from harness.verdicts import Policy, judge_paths, load_and_judge

    names = _chain(run_dir, 20)
    pairs = list(itertools.pairwise(names))  # 19 paths: above the split's minimum
    if how == "while read":
        _, _, verdicts, read = load_and_judge(run_dir, pairs, Policy(), lambda docs, _: (os.getpid(), sorted(docs)))
        assert read == (os.getpid(), names)  # ``meanwhile``: here, with every document
    else:
        verdicts = judge_paths(run_dir, load_run(run_dir), pairs, Policy())
    assert [(v.baseline, v.candidate) for v in verdicts] == pairs
    return (
        [v.model_dump(exclude={"decided_at"}) for v in verdicts],
        _files(run_dir / "ledger", "measured_at"),
        _files(run_dir / "gonogo", "decided_at"),
    )


@needs_fork
def test_paths_judged_in_two_processes_give_the_verdicts_and_files_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import verdicts

    log = tmp_path / "judged-by"
    real = verdicts._judge_in_order

    def logged(run_dir: Path, docs: object, pairs: list[tuple[str, str]], *rest: object) -> object:
        with log.open("a") as out:  # each process appends its own line: who judged how many paths
            out.write(f"{os.getpid()} {len(pairs)} {pairs[0][0] if pairs else '-'}\n")
        return real(run_dir, docs, pairs, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(verdicts, "_judge_in_order", logged)
    monkeypatch.setenv(split_work.PROCESSES_VARIABLE, "1")
    one = _judged(tmp_path / "one" / "r1", "after reading")
    monkeypatch.delenv(split_work.PROCESSES_VARIABLE)
    log.unlink()
    halves = _judged(tmp_path / "halves" / "r1", "after reading")
    by_halves = sorted(line.split()[1:] for line in log.read_text().splitlines())
    log.unlink()
    early = _judged(tmp_path / "early" / "r1", "while read")
    by_early = [line.split() for line in log.read_text().splitlines()]

    assert one == halves == early
    assert {v["verdict"] for v in one[0]} >= {"GO", "NO-GO"}  # a drifting kernel and a failing cell were judged
    assert len(one[1]) == 19 and len(one[2]) == 19
    assert by_halves == [["10", "env09"], ["9", "env00"]]  # 19 paths: 9 here, 10 in the copy
    # the copy starts once 62% of the paths (11.78: 12) have both documents read: env00..env12, paths 0-11
    assert verdicts._COPY_SHARE == 0.62
    pids = {pid for pid, _, _ in by_early}
    assert len(pids) == 2 and sorted(count for _, count, _ in by_early) == ["12", "7"]
    copy_line = next(line for line in by_early if line[1] == "12")
    assert copy_line[0] != str(os.getpid()) and copy_line[2] == "env00"


def test_a_second_document_of_one_environment_is_left_out_and_said(tmp_path: Path) -> None:
    from harness.results import load_run

    run_dir = tmp_path / "r1"
    _chain(run_dir, 2)
    (run_dir / "zz-copy.json").write_bytes((run_dir / "env01.json").read_bytes())
    problems: dict[str, str] = {}
    docs = load_run(run_dir, problems)
    assert sorted(docs) == ["env00", "env01"]
    assert list(problems) == ["zz-copy"]
    assert "environment 'env01' is already in env01.json" in problems["zz-copy"]
    with pytest.raises(ResultsError, match=re.escape("zz-copy.json: environment 'env01' is already in env01.json")):
        load_run(run_dir)


@needs_fork
def test_an_error_in_the_early_copy_is_raised_after_this_process_judged_its_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import verdicts
    from harness.verdicts import Policy, load_and_judge

    run_dir = tmp_path / "r1"
    names = _chain(run_dir, 20)
    parent, real = os.getpid(), verdicts._judge_in_order

    def failing_in_the_copy(*args: object) -> object:
        if os.getpid() != parent:
            raise ResultsError("env05.npz: not a readable record archive")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(verdicts, "_judge_in_order", failing_in_the_copy)
    with pytest.raises(ResultsError, match=re.escape("env05.npz: not a readable record archive")):
        load_and_judge(run_dir, list(itertools.pairwise(names)), Policy(), lambda docs, _: None)
    written = sorted(p.name for p in (run_dir / "gonogo").glob("*.json"))
    assert written == [f"env{i:02d}__env{i + 1:02d}.json" for i in range(12, 19)]  # this process's 7 paths
