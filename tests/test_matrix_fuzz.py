"""Property: ``python -m harness check`` answers every matrix file with exit 0, or exit 2 and well-formed lines.

Thousands of inputs grown from the real files (tests/test_matrix_fuzz_inputs.py) go through the entry point users
call, ``harness.cli.main(["check", "--matrix", path])``, for one input in five, and for the others through
``harness.matrix.load`` with the registry discovered once (``check`` re-discovers the scenarios on every call, which
costs four times the parse). Nothing may escape as an exception, every rejection line must read
``<file>:<line>: <key>: <what>`` (or ``<file>: cannot read matrix file (...)``), and no input may take 2 s.
bench/fuzz_matrix.py runs the same inputs as a larger campaign and prints the numbers.
"""

from __future__ import annotations

import contextlib
import io
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from harness import cli, matrix
from harness.errors import MatrixError
from harness.worker import scenario as scenario_mod
from harness.worker.scenario import Scenario
from tests.test_matrix_fuzz_inputs import matrix_input, seeds

#: The bound for one input; an input still running after ``INTERRUPT_SECONDS`` is stopped and counted as a hang.
SLOW_SECONDS = 2.0
INTERRUPT_SECONDS = 10.0
EXAMPLES = 2000
CLI_SHARE = 5  # every 5th input goes through cli.main (a call costs ~20 ms, 14 of them re-discovering scenarios)


class _Interrupted(BaseException):
    """Raised by the timer: a BaseException, so the harness's own ``except Exception`` cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    kind: str  # accepted, rejected, malformed, traceback, hang
    seconds: float
    detail: str = ""


@dataclass
class Tally:
    kinds: Counter[str] = field(default_factory=Counter)
    via_cli: int = 0
    slowest: tuple[float, str] = (0.0, "")
    slowest_input: bytes = b""
    failures: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome, description: str, blob: bytes) -> None:
        self.kinds[outcome.kind] += 1
        if outcome.seconds > self.slowest[0]:
            self.slowest = (outcome.seconds, description)
            self.slowest_input = blob
        if outcome.kind not in ("accepted", "rejected") and len(self.failures) < 20:
            self.failures.append(f"{outcome.kind}: {description}: {outcome.detail}")


class Checker:
    """Writes each input to one file and checks it, the way a user's ``check`` would."""

    def __init__(self, folder: Path, registry: Mapping[str, Scenario]) -> None:
        self.path = folder / "matrix.yaml"
        self.registry = registry
        self.count = 0
        where = re.escape(str(folder))
        self.line = re.compile(rf"{where}/[^\n:]+(:\d+: [^\n]+?: [^\n]+|: cannot read matrix file \([^\n]*\))")

    def lines_ok(self, lines: list[str]) -> str:
        """The first line not of the documented forms, or ''."""
        if not lines:
            return "no line at all"
        bad = [line for line in lines if not self.line.fullmatch(line)]
        return repr(bad[0])[:300] if bad else ""

    def run(self, blob: bytes) -> Outcome:
        self.path.write_bytes(blob)
        self.count += 1
        via_cli = self.count % CLI_SHARE == 0
        start = time.perf_counter()
        try:
            with _time_limit(INTERRUPT_SECONDS):
                kind, detail = self._cli() if via_cli else self._load()
        except _Interrupted:
            kind, detail = "hang", f"stopped after {INTERRUPT_SECONDS} s"
        seconds = time.perf_counter() - start
        if kind in ("accepted", "rejected") and seconds > SLOW_SECONDS:
            kind, detail = "hang", f"{seconds:.2f} s"
        return Outcome(kind, seconds, detail)

    def _load(self) -> tuple[str, str]:
        try:
            matrix.load(self.path, self.registry)
        except MatrixError as exc:
            bad = self.lines_ok(exc.problems)
            return ("malformed", bad) if bad else ("rejected", "")
        except Exception as exc:  # the property under test: nothing else escapes
            return "traceback", f"{type(exc).__name__}: {exc}"[:300]
        return "accepted", ""

    def _cli(self) -> tuple[str, str]:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(["check", "--matrix", str(self.path)])
        except Exception as exc:
            return "traceback", f"{type(exc).__name__}: {exc}"[:300]
        lines = err.getvalue().splitlines()
        if code == 0:
            return "accepted", ""
        if code != 2:
            return "traceback", f"exit {code}: {err.getvalue()[:300]}"
        bad = self.lines_ok(lines)
        return ("malformed", bad) if bad else ("rejected", "")


def campaign(folder: Path, examples: int, strict: bool = False, random_seed: int | None = None) -> Tally:
    """Check ``examples`` inputs and count their outcomes. ``strict`` fails at the first traceback or malformed
    line, so hypothesis shrinks the input that caused it; without ``random_seed`` the inputs are derandomized."""
    checker = Checker(folder, scenario_mod.discover())
    corpus = seeds()
    tally = Tally()

    @settings(
        max_examples=examples,
        deadline=None,  # each input is bounded by Checker itself, SLOW_SECONDS and INTERRUPT_SECONDS
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=random_seed is None,
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        blob, description = matrix_input(data.draw, corpus)
        outcome = checker.run(blob)
        tally.add(outcome, description, blob)
        tally.via_cli = checker.count // CLI_SHARE
        if strict:
            assert outcome.kind in ("accepted", "rejected", "hang"), f"{outcome.kind}: {outcome.detail} {blob[:300]!r}"

    (one if random_seed is None else seed(random_seed)(one))()
    return tally


def test_every_fuzzed_matrix_is_accepted_or_refused_in_lines_quickly(tmp_path: Path) -> None:
    start = time.perf_counter()
    tally = campaign(tmp_path, EXAMPLES, strict=True)
    wall = time.perf_counter() - start
    inputs = sum(tally.kinds.values())
    assert tally.failures == [], tally.failures
    assert inputs >= EXAMPLES and tally.via_cli >= EXAMPLES // CLI_SHARE
    assert tally.kinds["rejected"] > inputs // 2 and tally.kinds["accepted"] > 20, tally.kinds  # both paths ran
    assert tally.slowest[0] < SLOW_SECONDS, tally.slowest
    print(f"{inputs} inputs in {wall:.1f} s: {dict(tally.kinds)}; slowest {tally.slowest[0]:.3f} s {tally.slowest[1]}")
