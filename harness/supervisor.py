"""Parent side of the worker: start it, follow its events, contain crashes and hangs.

One worker process per environment runs the scenarios back to back, so the framework import is paid once. When the
worker dies inside a scenario (segfault, abort, ``os._exit``, OOM kill) or a scenario outruns its timeout, that
scenario is recorded as ``crash`` / ``timeout`` and a fresh worker resumes with the next one. The worker runs in its
own process group, so a hung DataLoader child dies with it. Every result handed to the sink, the worker's and the
ones written here for a crash or timeout, is a full ``protocol.CellResult``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.sandbox import Sandbox
from harness.worker.atomic import write_json_atomic
from harness.worker.loop import read_tail
from harness.worker.protocol import CONTEXT_KEYS, STACK_DUMP_SIGNAL, Status, blank_cell, clean_text

__all__ = ["ResultSink", "Supervisor", "SupervisorStats", "WorkerSpec"]

ResultSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class WorkerSpec:
    """How to start a worker: which Python, with which environment, where to put its files.

    ``context`` tells the scenarios where they run (keys in ``protocol.CONTEXT_KEYS``: ``environment``,
    ``artifacts_dir``, ``relay_source``); it travels in the plan, so a cell's inputs are all in one file rather
    than spread over environment variables.
    """

    python: str
    env: dict[str, str]
    scratch: Path
    log_path: Path
    scenario_packages: tuple[str, ...] = ("scenarios",)
    scenario_paths: tuple[str, ...] = ()  # the user's scenario files and folders (matrix ``scenarios.paths``)
    models: tuple[dict[str, Any], ...] = ()  # the user's saved models (matrix ``models:``), one cell each
    preload: tuple[str, ...] = ()
    seed: int = 1337
    startup_timeout: float = 600.0
    context: dict[str, str] = field(default_factory=dict)
    sandbox: Sandbox | None = None

    def command(self, plan_path: Path, events_fd: int) -> list[str]:
        """The worker's command line, inside the sandbox when there is one (writable: the scratch folder only)."""
        argv = [self.python, "-m", "harness.worker", "--plan", str(plan_path), "--events-fd", str(events_fd)]
        return argv if self.sandbox is None else self.sandbox.wrap(argv, [self.scratch])

    def process_env(self) -> dict[str, str]:
        """The worker's variables; in a sandbox its temporary files go to the one writable folder."""
        if self.sandbox is None:
            return self.env
        return {**self.env, "TMPDIR": str((self.scratch / "tmp").resolve())}

    def __post_init__(self) -> None:
        unknown = sorted(set(self.context) - set(CONTEXT_KEYS))
        if unknown:
            raise ValueError(f"unknown worker context keys {unknown}; known: {list(CONTEXT_KEYS)}")


@dataclass
class SupervisorStats:
    """What the supervision cost: how many workers started and how long each took to import the frameworks."""

    worker_starts: int = 0
    import_s: list[float] = field(default_factory=list)
    preload: dict[str, str] = field(default_factory=dict)
    python_version: str = ""


def _describe_exit(returncode: int | None, sandboxed: bool = False) -> str:
    if returncode is None:
        return "worker still running"
    if sandboxed and returncode > 128:  # bwrap reports a child killed by signal N as exit code 128 + N
        returncode = 128 - returncode
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"worker killed by {name}"
    return f"worker exited with code {returncode}"


#: Seconds to let a worker write its stacks (faulthandler writes at once; this covers a busy machine's scheduling).
STACK_DUMP_WAIT_S = 0.5
_DUMP_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)', re.MULTILINE)
_DUMP_THREAD = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):$", re.MULTILINE)


def stuck_at(log_text: str) -> str | None:
    """Where the worker's main thread was when the stack dump was taken: its innermost frame, ``func (file:line)``.

    faulthandler writes one block per thread, innermost frame first; the main thread is the one running the
    worker's loop. None when the log holds no dump (a sandboxed worker, or one that could not answer)."""
    blocks = _DUMP_THREAD.split(log_text)[1:]
    frames = [list(_DUMP_FRAME.finditer(block)) for block in blocks]
    frames = [found for found in frames if found]
    if not frames:
        return None
    main = next((found for found in frames if any(f["file"].endswith("harness/worker/loop.py") for f in found)), None)
    top = (main or frames[0])[0]
    return f"{top['func']} ({top['file']}:{top['line']})"


class _Attempt:
    """One worker process and the state of its event stream."""

    def __init__(self, spec: WorkerSpec, ids: list[str], number: int) -> None:
        plan = {
            "scenario_packages": list(spec.scenario_packages),
            "scenario_paths": list(spec.scenario_paths),
            "models": list(spec.models),
            "scenario_ids": ids,
            "preload": list(spec.preload),
            "seed": spec.seed,
            "scratch_dir": str(spec.scratch),
            "context": dict(spec.context),
        }
        spec.scratch.mkdir(parents=True, exist_ok=True)
        plan_path = spec.scratch / f"plan-{number}.json"
        write_json_atomic(plan_path, plan)
        read_fd, write_fd = os.pipe()
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            (spec.scratch / "tmp").mkdir(exist_ok=True)
            self.proc = subprocess.Popen(
                spec.command(plan_path, write_fd),
                env=spec.process_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
                preexec_fn=None if spec.sandbox is None else spec.sandbox.limit_resources,
            )
        os.close(write_fd)
        self.read_fd = read_fd
        self.buffer = b""
        self.current: str | None = None
        self.current_started = 0.0
        self.hello: dict[str, Any] | None = None
        self.sandboxed = spec.sandbox is not None

    def read_events(self, wait: float) -> tuple[list[dict[str, Any]], bool]:
        """Events that arrived within ``wait`` seconds, and whether the stream has ended."""
        ready, _, _ = select.select([self.read_fd], [], [], max(wait, 0.0))
        if not ready:
            return [], False
        chunk = os.read(self.read_fd, 1 << 16)
        if not chunk:
            return [], True
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()], False

    def dump_stacks(self) -> None:
        """Ask the worker for every thread's stack before it is killed (it writes them into the cell's log).

        Only a direct worker is asked: bubblewrap does not pass the signal on, and the dump is a diagnosis, never
        needed for the result."""
        if self.sandboxed:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, STACK_DUMP_SIGNAL)
        time.sleep(STACK_DUMP_WAIT_S)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def finish(self) -> int:
        os.close(self.read_fd)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()


class Supervisor:
    """Runs scenario ids through workers, restarting after a crash or timeout; reports each result to ``sink``."""

    def __init__(self, spec: WorkerSpec, timeouts: dict[str, float], areas: dict[str, str], sink: ResultSink):
        self.spec = spec
        self.timeouts = timeouts
        self.areas = areas
        self.sink = sink
        self.stats = SupervisorStats()

    def run(self, ids: list[str]) -> SupervisorStats:
        pending = list(ids)
        while pending:
            self.stats.worker_starts += 1
            attempt = _Attempt(self.spec, pending, self.stats.worker_starts)
            try:
                outcome = self._follow(attempt, pending)
            except BaseException:  # Ctrl-C, SIGTERM, a bug: the worker and its children never outlive us
                attempt.kill()
                attempt.finish()
                raise
            returncode = attempt.finish()
            self._settle(attempt, outcome, returncode, pending)
        return self.stats

    def _follow(self, attempt: _Attempt, pending: list[str]) -> str:
        """Read events until the worker ends ('eof') or a deadline passes ('timeout'/'startup-timeout')."""
        deadline = time.monotonic() + self.spec.startup_timeout
        while True:
            events, ended = attempt.read_events(min(deadline - time.monotonic(), 1.0))
            for event in events:
                deadline = self._handle(attempt, event, pending, deadline)
            if ended:
                return "eof"
            if time.monotonic() > deadline:
                if attempt.current:
                    attempt.dump_stacks()
                attempt.kill()
                return "timeout" if attempt.current else "startup-timeout"

    def _handle(self, attempt: _Attempt, event: dict[str, Any], pending: list[str], deadline: float) -> float:
        kind = event.get("event")
        if kind == "hello":
            attempt.hello = event
            self.stats.import_s.append(float(event.get("import_s", 0.0)))
            self.stats.preload = event.get("preload", {})
            self.stats.python_version = event.get("python_version", "")
            return float("inf")
        if kind == "start":
            attempt.current = event["id"]
            attempt.current_started = time.monotonic()
            return time.monotonic() + self.timeouts.get(event["id"], 300.0)
        if kind == "done":
            self.sink(event["result"])
            if event["id"] in pending:
                pending.remove(event["id"])
            attempt.current = None
            return float("inf")
        return deadline

    def _settle(self, attempt: _Attempt, outcome: str, returncode: int, pending: list[str]) -> None:
        """Turn an abnormal end of the worker into results, so the next attempt starts after the culprit."""
        if not pending:
            return
        if attempt.current is not None:
            culprit = attempt.current
            elapsed = time.monotonic() - attempt.current_started
            if outcome == "timeout":
                limit = self.timeouts.get(culprit, 300.0)
                where = stuck_at(read_tail(self.spec.scratch / f"{culprit}.log"))
                stuck = f"; stuck in {where}" if where else ""
                self._emit(
                    culprit, "timeout", f"exceeded its timeout of {limit:g} s; worker killed{stuck}", elapsed=elapsed
                )
            else:
                self._emit(
                    culprit,
                    "crash",
                    f"{_describe_exit(returncode, self.spec.sandbox is not None)} while running this scenario",
                    elapsed=elapsed,
                )
            pending.remove(culprit)
            return
        if attempt.hello is None:
            why = (
                f"worker did not start within {self.spec.startup_timeout:g} s"
                if outcome == "startup-timeout"
                else f"{_describe_exit(returncode, self.spec.sandbox is not None)} before running any scenario"
            )
            tail = read_tail(self.spec.log_path, 2000)
            for scenario_id in list(pending):
                self._emit(scenario_id, "crash", why, tail)
            pending.clear()
            return
        # The worker ended between scenarios without finishing the plan: blame the next one, then move on.
        culprit = pending.pop(0)
        self._emit(
            culprit,
            "crash",
            f"{_describe_exit(returncode, self.spec.sandbox is not None)} before this scenario started",
        )

    def _emit(
        self,
        scenario_id: str,
        status: Status,
        message: str,
        tail: str | None = None,
        elapsed: float | None = None,
    ) -> None:
        """A result for a cell the worker could not report itself: nothing measured, the output's tail kept."""
        output = tail if tail is not None else read_tail(self.spec.scratch / f"{scenario_id}.log")
        area = self.areas.get(scenario_id, scenario_id.split(".", 1)[0])
        duration = None if elapsed is None else round(elapsed, 6)
        cell = blank_cell(scenario_id, area, status, message, duration_s=duration, output_tail=clean_text(output))
        self.sink(dict(cell))
