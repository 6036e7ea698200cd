"""What an environment is doing while it runs: one live line on a terminal, one line when it ends elsewhere.

On a terminal the line (rich) shows the phase (provision, scenarios k/n, relay k/n), the elapsed time and an ETA
from the last run that measured this environment. Anywhere else (CI logs, nox's parallel runner, a pipe) nothing
is printed until the environment finishes, and then exactly one line, so a log has one line per environment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness import paths

__all__ = ["Progress", "expected_seconds"]


def expected_seconds(results_dir: Path, run_id: str, env: str) -> float | None:
    """How long ``env`` took in the latest earlier run that holds it (its ``timings.total_s``), if any."""
    if not results_dir.is_dir():
        return None
    for run_dir in sorted((p for p in results_dir.iterdir() if p.is_dir() and p.name < run_id), reverse=True):
        path = paths.results_file(run_dir, env) if paths.is_safe_name(env) else None
        if path is None or not path.is_file():
            continue
        try:
            total = json.loads(path.read_text(encoding="utf-8"))["timings"]["total_s"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if isinstance(total, int | float) and total > 0:
            return float(total)
    return None


class Progress:
    """The progress of one environment; ``live`` defaults to whether ``stream`` is a terminal."""

    def __init__(
        self, env: str, expected_s: float | None = None, stream: IO[str] | None = None, live: bool | None = None
    ) -> None:
        self.env, self.expected_s = env, expected_s
        self.console = Console(file=stream or sys.stdout, force_terminal=live, highlight=False)
        self.started = time.monotonic()
        self.phase_name, self.done, self.total = "starting", 0, 0
        self._live: Live | None = None
        if self.console.is_terminal:
            self._live = Live(self._line(), console=self.console, transient=True, auto_refresh=True)
            self._live.start()

    def phase(self, name: str, total: int = 0) -> None:
        """Enter a phase; ``total`` cells to go in it (0: not counted)."""
        self.phase_name, self.done, self.total = name, 0, total
        self._refresh()

    def cell_done(self, _result: Any = None) -> None:
        self.done += 1
        self._refresh()

    def finish(self, line: str) -> None:
        """Replace the live line (if any) by the environment's one closing line, with its elapsed time."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(Text(f"{line} ({time.monotonic() - self.started:.1f} s)"), soft_wrap=True)

    def _line(self) -> Text:
        elapsed = time.monotonic() - self.started
        counted = f" {self.done}/{self.total}" if self.total else ""
        eta = ""
        if self.expected_s is not None:
            eta = f", ETA {max(self.expected_s - elapsed, 0.0):.0f} s"
        return Text(f"{self.env}: {self.phase_name}{counted}, {elapsed:.0f} s{eta}")

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._line())
