"""The ledger stage for a whole run: measure every upgrade path, persist its ledger, judge it, persist the verdict.

Used by ``report`` (every path) and ``gonogo`` (every path, or the one pair given). The run's documents are read
once by the caller and each environment's ``.npz`` at most once here, however many paths it is part of, and kept
only until the last path through it is measured.
"""

from __future__ import annotations

import contextlib
import datetime
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from harness import commands, paths
from harness.drift import Comparisons, Tolerance, load_arrays
from harness.errors import HarnessError
from harness.judge import Reason, Verdict, judge
from harness.ledger import ledger_json, measure_path
from harness.matrix import Matrix, WaiverSpec, comparable
from harness.results import EnvironmentResult, collector_paused, now_iso, read_run
from harness.split_work import Copy, in_two_processes
from harness.worker.atomic import write_text_atomic

__all__ = ["NotComparable", "Policy", "judge_paths", "load_and_judge", "policy_of"]


class NotComparable(HarnessError):
    """Two environments that no upgrade path joins: a usage error (exit 2), never a NO-GO."""


@dataclass(frozen=True)
class Policy:
    """What a verdict is judged by besides the ledger: tolerances (measuring), waivers and the date (judging)."""

    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    waivers: tuple[WaiverSpec, ...] = ()
    today: datetime.date | None = None
    expected: tuple[str, ...] = ()


def policy_of(matrix: Matrix | None) -> Policy:
    """The matrix's tolerances, waivers and selected cells (none of them without a matrix)."""
    if matrix is None:
        return Policy()
    tolerances = {
        pattern: Tolerance(rtol=spec.rtol, atol=spec.atol, source=f"matrix.yaml drift.tolerances[{pattern!r}]")
        for pattern, spec in matrix.drift.tolerances.items()
    }
    return Policy(tolerances=tolerances, waivers=tuple(matrix.drift.waivers), expected=matrix.scenario_ids)


def check_comparable(
    docs: Mapping[str, EnvironmentResult], matrix: Matrix | None, baseline: str, candidate: str
) -> None:
    """Refuse a pair that shares no framework line (unless declared) or no scenario that ran on both sides."""
    for role, name in (("baseline", baseline), ("candidate", candidate)):
        if name not in docs:
            known = ", ".join(sorted(docs)) or "none"
            raise HarnessError(f"no results for {role} environment {name!r} (this run has: {known})")
    if baseline == candidate:
        raise NotComparable(f"{baseline} -> {candidate}: not comparable: an environment against itself")
    if matrix is not None and baseline in matrix.environments and candidate in matrix.environments:
        envs = matrix.environments
        if not comparable(envs[baseline], envs[candidate], matrix.upgrades):
            raise NotComparable(
                f"{baseline} -> {candidate}: not comparable: they are in different framework lines and no "
                "'upgrades:' entry of the matrix declares the move"
            )
    failed = {docs[baseline].state, docs[candidate].state} & {"env-error"}
    if not failed and not docs[baseline].ran & docs[candidate].ran:
        raise NotComparable(f"{baseline} -> {candidate}: not comparable: no scenario ran in both environments")


class _Arrays:
    """Each environment's record values, loaded on first use and kept only while a path still to judge needs them."""

    def __init__(self, run_dir: Path, docs: Mapping[str, EnvironmentResult], pairs: list[tuple[str, str]]) -> None:
        self.run_dir, self.docs = run_dir, docs
        self.cache: dict[str, Mapping[str, np.ndarray]] = {}
        self.uses = Counter(name for pair in pairs if all(n in docs for n in pair) for name in pair)

    def __getitem__(self, env: str) -> Mapping[str, np.ndarray]:
        if env not in self.cache:
            self.cache[env] = load_arrays(self.run_dir, self.docs[env])
        return self.cache[env]

    def done(self, *envs: str) -> None:
        """A path through ``envs`` is measured: forget the values no later path needs (a run of a thousand
        environments never holds them all)."""
        for env in envs:
            self.uses[env] -= 1
            if self.uses[env] <= 0:
                self.cache.pop(env, None)


class _Writer:
    """Ledgers and verdicts written by a few threads while the next path is measured.

    Each file is still written atomically (``write_text_atomic``: temporary file, fsync, rename); the threads only
    keep the fsync of one file from waiting for the next path's measuring. At most ``pending`` texts wait in
    memory; the first write that fails is raised (by ``wait`` at the latest) and nothing more is queued after it.
    """

    def __init__(self, threads: int = 4, pending: int = 8) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verdict-writer")
        self.pending: deque[Future[None]] = deque()
        self.limit = pending

    def write(self, path: Path, text: str) -> None:
        while len(self.pending) >= self.limit:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(write_text_atomic, path, text))

    def close(self) -> None:
        """Let every queued write finish (what was written is kept), raising nothing."""
        self.pool.shutdown(wait=True)

    def wait(self) -> None:
        """Every queued write finished; the first one that failed is raised."""
        self.close()
        failed = [error for error in (f.exception() for f in self.pending) if error is not None]
        self.pending.clear()
        if failed:
            raise failed[0]


@dataclass(frozen=True)
class _Judging:
    """What the paths of one ``judge_paths`` share: the archives, the writer, the comparisons already made."""

    arrays: _Arrays
    writer: _Writer
    known: Comparisons


def verdict_json(verdict: Verdict) -> str:
    """A verdict file's text (every writer of gonogo/<A>__<B>.json uses this one)."""
    return verdict.model_dump_json(indent=2) + "\n"  # pydantic's encoder: a tenth of json.dumps's time


def absent_verdict(
    baseline: str, candidate: str, run_id: str, absent: list[str], unreadable: Mapping[str, str]
) -> Verdict:
    """INCOMPLETE for a path a side of which has no results in the run (a shard that never arrived, a bad file)."""
    reason = Reason(
        severity="info",
        kind="incomplete",
        scenarios=["(run)"],
        summary=f"no results for {', '.join(absent)} in run {run_id}: nothing could be measured",
        error="\n".join(unreadable[name] for name in absent if name in unreadable),
        reproduce=" && ".join(commands.run_environment(run_id, name) for name in absent),
    )
    return Verdict(
        baseline=baseline,
        candidate=candidate,
        run_id=run_id,
        decided_at=now_iso(),
        verdict="INCOMPLETE",
        counts={"no-go": 0, "warning": 0, "waived": 0, "fixed": 0, "info": 1},
        reasons=[reason],
        missing={name: ["(every cell)"] for name in absent},
    )


def judge_paths(
    run_dir: Path,
    docs: Mapping[str, EnvironmentResult],
    pairs: list[tuple[str, str]],
    policy: Policy,
    unreadable: Mapping[str, str] | None = None,
) -> list[Verdict]:
    """Measure, persist and judge each (baseline, candidate) pair; ledgers and verdicts land in the run folder.

    ``unreadable`` names the results files that could not be read (by environment): a path through one of them is
    INCOMPLETE and says why. Each ledger is written and then let go (the verdict points at its file), so a run of
    many paths never holds them all. Many paths are judged in two processes (``split_work``): the second half of
    them by a forked copy that shares the documents already read.
    """

    def judge_some(some: Sequence[tuple[str, str]]) -> list[Verdict]:
        return _judge_in_order(run_dir, docs, list(some), policy, unreadable or {})

    return in_two_processes(judge_some, pairs)


#: The share of a run's paths a copy forked while the run is read judges (``load_and_judge``): it starts once the
#: documents of that many paths are read, and this process reads the others and judges the rest meanwhile. Reading
#: is about half as long as judging every path, and the copy judges a path a third slower (each page of the
#: documents it touches is copied first), and this process then reads the earlier runs: 0.62 lets both end
#: together (a synthetic 10k-cell chain, 10 interleaved runs each: median 1.37 s against 1.53 s at 0.55).
_COPY_SHARE = 0.62
#: Fewer paths than this are judged in this process alone: forking would cost more than it saves.
_SPLIT_MINIMUM = 16


def load_and_judge(
    run_dir: Path,
    pairs: list[tuple[str, str]],
    policy: Policy,
    meanwhile: Callable[[dict[str, EnvironmentResult], dict[str, str]], _Aside],
    read: Callable[[], object] = lambda: None,
) -> tuple[dict[str, EnvironmentResult], dict[str, str], list[Verdict], _Aside | None]:
    """``load_run`` then ``judge_paths``, overlapped: the run's documents, its unreadable files (name -> line), the
    verdicts of ``pairs`` in their order, and what ``meanwhile(docs, unreadable)`` gave (called once every document
    is read; not at all, and no path judged, when none could be: there is nothing to judge).

    Where forking is safe, a copy of this process is forked as soon as the documents of ``_COPY_SHARE`` of the
    paths are read; it judges those paths while this process reads the other documents, judges the others and
    calls ``meanwhile`` (the report reads the earlier runs then).

    ``read()`` is called once the reading ends, before any judging here: the report freezes what was read out of
    the cyclic collector's passes then (``gc.freeze``, unfrozen when its command ends: cli's ``_documents_kept``).
    Left in, the first collections after the read rescanned all of it: 0.1 s of a 10k-cell report.
    """
    early = _EarlyCopy(run_dir, pairs, policy) if len(pairs) >= _SPLIT_MINIMUM else None
    mine: list[int] = []
    judged: list[Verdict] = []
    try:
        docs, unreadable = _read_run(run_dir, early)
        read()
        if not docs:
            return docs, unreadable, [], None
        if early is None or early.copy is None:
            verdicts = judge_paths(run_dir, docs, pairs, policy, unreadable)
            return docs, unreadable, verdicts, _quietly(meanwhile, docs, unreadable)
        theirs = set(early.theirs)
        mine = [index for index in range(len(pairs)) if index not in theirs]
        judged = _judge_in_order(run_dir, docs, [pairs[index] for index in mine], policy, unreadable)
        aside = _quietly(meanwhile, docs, unreadable)
    except BaseException:
        if early is not None:
            early.wait()  # the copy finishes what it started (its files are kept); this failure is the one raised
        raise
    by_index = dict(zip(mine, judged, strict=True)) | early.answers()
    return docs, unreadable, [by_index[index] for index in range(len(pairs))], aside


_Aside = TypeVar("_Aside")


def _quietly(
    meanwhile: Callable[[dict[str, EnvironmentResult], dict[str, str]], _Aside],
    docs: dict[str, EnvironmentResult],
    unreadable: dict[str, str],
) -> _Aside:
    """``meanwhile`` with the collector paused: it reads, and the run's documents are not to be rescanned."""
    with collector_paused():
        return meanwhile(docs, unreadable)


def _read_run(run_dir: Path, early: _EarlyCopy | None) -> tuple[dict[str, EnvironmentResult], dict[str, str]]:
    """The run's documents and unreadable files, ``early`` told of each document as it is read."""
    unreadable: dict[str, str] = {}
    docs: dict[str, EnvironmentResult] = {}
    with collector_paused():
        for doc in read_run(run_dir, unreadable):
            docs[doc.environment.name] = doc
            if early is not None:
                early.read(doc.environment.name, docs)
    return docs, unreadable


class _EarlyCopy:
    """Counts the paths whose two documents are read; forks the copy that judges them once there are enough."""

    def __init__(self, run_dir: Path, pairs: list[tuple[str, str]], policy: Policy) -> None:
        self.run_dir, self.pairs, self.policy = run_dir, pairs, policy
        self.by_name: dict[str, list[int]] = {}
        for index, pair in enumerate(pairs):
            for name in dict.fromkeys(pair):
                self.by_name.setdefault(name, []).append(index)
        self.unread = {index: len(set(pair)) for index, pair in enumerate(pairs)}
        self.ready: list[int] = []
        self.waiting = True
        self.theirs: list[int] = []
        self.copy: Copy[list[Verdict]] | None = None

    def read(self, name: str, docs: Mapping[str, EnvironmentResult]) -> None:
        """``name``'s document is in ``docs``: the copy starts once enough paths have both of theirs."""
        if not self.waiting:
            return
        for index in self.by_name.pop(name, []):
            self.unread[index] -= 1
            if self.unread[index] == 0:
                self.ready.append(index)
        if len(self.ready) < _COPY_SHARE * len(self.pairs):
            return
        self.waiting = False
        ready = sorted(self.ready)
        snapshot, pairs = dict(docs), [self.pairs[index] for index in ready]
        self.copy = Copy.start(lambda: _judge_in_order(self.run_dir, snapshot, pairs, self.policy, {}))
        self.theirs = ready if self.copy is not None else []

    def wait(self) -> None:
        """The copy (if one runs) has ended; what it gave or raised is dropped."""
        if self.copy is not None:
            with contextlib.suppress(BaseException):
                self.copy.answer()

    def answers(self) -> dict[int, Verdict]:
        """The copy's verdicts by the index of their path (none when no copy ran); waits for it to end."""
        if self.copy is None:
            return {}
        return dict(zip(self.theirs, self.copy.answer(), strict=True))


def _judge_in_order(
    run_dir: Path,
    docs: Mapping[str, EnvironmentResult],
    pairs: list[tuple[str, str]],
    policy: Policy,
    unreadable: Mapping[str, str],
) -> list[Verdict]:
    """``judge_paths`` in this process, path after path, sharing archives and comparisons between them."""
    arrays = _Arrays(run_dir, docs, pairs)
    writer = _Writer()
    judging = _Judging(arrays, writer, Comparisons(policy.tolerances))  # a record alike on many paths: compared once
    verdicts: list[Verdict] = []
    try:
        with collector_paused():  # a ledger is thousands of new objects and no cycle: nothing for it to find
            for base, cand in pairs:
                verdicts.append(_judge_one(run_dir, docs, (base, cand), policy, unreadable, judging))
    except BaseException:
        writer.close()  # the files queued so far are still written; the problem raised is the first one
        raise
    writer.wait()
    return verdicts


def _judge_one(
    run_dir: Path,
    docs: Mapping[str, EnvironmentResult],
    pair: tuple[str, str],
    policy: Policy,
    unreadable: Mapping[str, str],
    judging: _Judging,
) -> Verdict:
    base, cand = pair
    arrays, writer = judging.arrays, judging.writer
    absent = [name for name in pair if name not in docs]
    if absent:
        verdict = absent_verdict(base, cand, run_dir.name, absent, unreadable)
        writer.write(paths.verdict_file(run_dir, base, cand), verdict_json(verdict))
        return verdict
    ledger = measure_path(
        docs[base],
        docs[cand],
        (arrays[base], arrays[cand]),
        expected=policy.expected,
        tolerances=policy.tolerances,
        known=judging.known,
    )
    arrays.done(base, cand)
    ledger_path = paths.ledger_file(run_dir, base, cand)
    writer.write(ledger_path, ledger_json(ledger))
    relative = ledger_path.relative_to(run_dir).as_posix()
    verdict = judge(ledger, waivers=list(policy.waivers), today=policy.today, ledger_path=relative)
    writer.write(paths.verdict_file(run_dir, base, cand), verdict_json(verdict))
    return verdict
