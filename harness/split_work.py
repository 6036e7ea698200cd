"""Pure-Python work over many items, split between this process and one forked copy of it.

Judging the upgrade paths of a large run is pure Python over documents already in memory, so threads cannot
share it (the GIL) and a fresh process would have to read every document again. A fork shares them
copy-on-write: the copy does the second half of the items while this process does the first, and only the
answers travel back (pickled, through a pipe only the two of them hold). On the reference machine that takes a
10k-cell run's judging from about 1.1 s to 0.6 s, for some 15 MB more memory while both run.

A fork is taken only where it is safe and pays: on Linux (macOS's system libraries are not fork-safe), with no
other thread running (a fork copies only the calling thread, so a lock another thread held would stay held in
the copy), with two usable cores, with at least ``minimum`` items, and unless ``COMPAT_PROCESSES=1`` asks for one
process. Otherwise, and when the copy ends without an answer (killed, out of memory), the work is done here.
An error the copy raises is raised here, after both halves have finished (what each wrote is kept).
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["Copy", "can_fork", "in_two_processes", "side_by_side"]

_Item = TypeVar("_Item")
_Answer = TypeVar("_Answer")
_Other = TypeVar("_Other")

#: Set to 1 to keep every command in one process (debugging, profiling, a machine where forking misbehaves).
PROCESSES_VARIABLE = "COMPAT_PROCESSES"


def can_fork() -> bool:
    """Whether forking a copy of this process is safe here and has a second core to run on."""
    if sys.platform != "linux" or not hasattr(os, "fork") or os.environ.get(PROCESSES_VARIABLE) == "1":
        return False
    return threading.active_count() == 1 and len(os.sched_getaffinity(0)) >= 2


def in_two_processes(
    work: Callable[[Sequence[_Item]], list[_Answer]], items: Sequence[_Item], *, minimum: int = 16
) -> list[_Answer]:
    """``work(items)``, the second half of ``items`` done by a forked copy of this process where that is safe.

    ``work`` must give one answer per item, in order, and keep its side effects to files it writes itself (the
    copy's changes to this process's memory are lost with it). The answers are in the order of ``items``.
    """
    if len(items) < max(minimum, 2) or not can_fork():
        return work(items)  # one call: the items share what ``work`` keeps between them
    half = len(items) // 2
    first, second = side_by_side(lambda: work(items[:half]), lambda: work(items[half:]))
    return first + second


def side_by_side(
    here: Callable[[], _Answer], there: Callable[[], _Other], *, split: bool = True
) -> tuple[_Answer, _Other]:
    """``here()`` in this process while a forked copy runs ``there()``, where that is safe and ``split`` asks for
    it; else one after the other, here. ``there`` may only change files (its memory is the copy's)."""
    copy = Copy.start(there) if split else None
    if copy is None:
        return here(), there()
    try:
        answer = here()
    finally:
        other = copy.answer()  # the copy finishes its part even when this one failed
    return answer, other


class Copy(Generic[_Answer]):
    """A forked copy of this process running one task; ``answer`` waits for what it gave."""

    def __init__(self, task: Callable[[], _Answer], pid: int, reader: int) -> None:
        self.task, self.pid, self.reader = task, pid, reader

    @classmethod
    def start(cls, task: Callable[[], _Answer]) -> Copy[_Answer] | None:
        """``task`` started in a forked copy, or None where forking is not safe (``can_fork``)."""
        if not can_fork():
            return None
        sys.stdout.flush()
        sys.stderr.flush()  # else what is buffered now would be written twice, once by each process
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the copy: coverage of a forked child is not collected
            os.close(reader)
            _answer_and_exit(task, writer)
        os.close(writer)
        return cls(task, pid, reader)

    def answer(self) -> _Answer:
        """What the task returned, once the copy has exited; its exception raised here; the task run here when
        the copy ended without a word (killed, out of memory)."""
        message = _collect(self.reader, self.pid)
        if message is None:
            return self.task()
        kind, value = message
        if kind == "error":
            raise value
        answer: _Answer = value
        return answer


def _answer_and_exit(task: Callable[[], Any], writer: int) -> None:
    """In the copy: run ``task``, send ("ok", answer) or ("error", exception) and leave without cleanup (the
    parent's exit handlers and buffers are the parent's)."""
    try:
        message: tuple[str, Any] = ("ok", task())
    except BaseException as exc:  # every failure goes back to be raised by the parent
        message = ("error", exc)
    try:
        payload = pickle.dumps(message)
        if message[0] == "error":
            pickle.loads(payload)  # an exception whose class cannot be rebuilt from its pickle is sent as text
    except Exception:
        failure = message[1] if message[0] == "error" else sys.exc_info()[1]
        payload = pickle.dumps(("error", RuntimeError(f"{type(failure).__name__}: {failure}")))
    try:
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(0)


def _collect(reader: int, pid: int) -> tuple[str, Any] | None:
    """The copy's message (None when it ended without one), once it has exited."""
    with os.fdopen(reader, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        print(
            f"the helper process ended without an answer ({_ending(status)}); its part of the work is done here",
            file=sys.stderr,
        )
        return None
    # the pipe is private to this process and the copy it forked: the payload is this program's own objects
    message: tuple[str, Any] = pickle.loads(payload)
    return message


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
