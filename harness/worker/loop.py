"""The in-environment worker: imports the frameworks once, then runs scenarios one after another.

Started by the orchestrator with the environment's own Python (``python -m harness.worker``). It may use only the
standard library, numpy and the frameworks the environment pins. It reads a plan (JSON) and reports events as JSON
lines on a file descriptor it is handed, separate from stdout/stderr (which scenarios and frameworks are free to
spam): ``hello`` once the frameworks are imported, ``start`` before each scenario, ``done`` with its result after.
If the process dies or hangs, the parent knows from the last ``start`` which scenario did it.

Each scenario's stdout/stderr (file descriptors 1 and 2, so absl log lines and C++ messages too) goes to its own
log file, whose tail is kept in the result; Python warnings are captured separately.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import io
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from harness.worker import determinism
from harness.worker.atomic import write_atomic
from harness.worker.records import summarize
from harness.worker.scenario import Context, Failed, Scenario, Skipped, discover, jsonable, split_id

__all__ = ["main", "run_scenario"]

OUTPUT_TAIL_CHARS = 4000
TRACEBACK_LINES = 25
MAX_WARNINGS = 50


@contextmanager
def redirect_output(path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``path`` for the duration (C-level and absl output included)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def read_tail(path: Path, limit: int = OUTPUT_TAIL_CHARS) -> str:
    """The last ``limit`` characters of a log file, or '' when there is none."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace")


def _excerpt(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = "".join(lines).rstrip().splitlines()
    return "\n".join(text[-TRACEBACK_LINES:])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _call(entry: Scenario, ctx: Context) -> tuple[str, str, str]:
    """Run the scenario function; map its outcome to (status, message, traceback)."""
    try:
        entry.func(ctx)
    except Skipped as exc:
        return "skip", str(exc), ""
    except Failed as exc:
        return "fail", str(exc), _excerpt(exc)
    except SystemExit as exc:
        return "error", f"scenario called sys.exit({exc.code!r})", _excerpt(exc)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return "error", _first_line(exc), _excerpt(exc)
    return "pass", "", ""


def _apply_checks(status: str, message: str, ctx: Context) -> tuple[str, str]:
    """A failed check makes the cell ``fail`` whatever the function did after it (a skip or error included)."""
    failed = ctx.failed_checks
    if not failed:
        return status, message
    names = "; ".join(f"{c.name}: {c.message}" if c.message else c.name for c in failed)
    after = f" (then {status}: {message})" if status not in ("pass", "fail") and message else ""
    return "fail", f"failed checks: {names}{after}"


def _collect_records(ctx: Context, npz_path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Summaries for the JSON, arrays saved atomically to ``npz_path``; an unstorable record is an error."""
    summaries: list[dict[str, Any]] = []
    arrays: dict[str, Any] = {}
    try:
        for name, (kind, value) in ctx.records.items():
            summary, array = summarize(name, kind, value)
            summaries.append(summary)
            if array is not None:
                arrays[name] = array
    except (TypeError, ValueError) as exc:
        return summaries, f"unstorable record: {exc}"
    if arrays:
        import numpy as np

        def dump(handle: Any) -> None:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            handle.write(buffer.getvalue())

        write_atomic(npz_path, dump)
    return summaries, None


def run_scenario(
    entry: Scenario, scratch: Path, seed: int, cell_id: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """Run one scenario from a clean seeded state and return its result as a plain dict."""
    cell_id = cell_id or entry.id
    ctx = Context(cell_id, param)
    log_path = scratch / f"{cell_id}.log"
    started = time.perf_counter()
    with redirect_output(log_path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ctx.seeding = determinism.reset(seed)
            status, message, excerpt = _call(entry, ctx)
        except Exception as exc:  # the determinism helper itself failed
            status, message, excerpt = "error", f"determinism reset failed: {_first_line(exc)}", _excerpt(exc)
    duration = time.perf_counter() - started
    status, message = _apply_checks(status, message, ctx)
    records, record_error = _collect_records(ctx, scratch / f"{cell_id}.npz")
    if record_error and status == "pass":
        status, message = "error", record_error
    seen: list[str] = []
    for item in caught:
        text = f"{item.category.__name__}: {item.message}"
        if text not in seen and len(seen) < MAX_WARNINGS:
            seen.append(text)
    return {
        "id": cell_id,
        "area": entry.area,
        "status": status,
        "message": message,
        "traceback": excerpt,
        "duration_s": round(duration, 6),
        "checks": [c.to_dict() for c in ctx.checks],
        "records": records,
        "notes": list(ctx.notes),
        "warnings": seen,
        "seeding": ctx.seeding,
        "output_tail": read_tail(log_path),
    }


def _preload(modules: list[str]) -> dict[str, str]:
    """Import the frameworks once, in the given order (torch before TensorFlow avoids a known segfault)."""
    outcome: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
            outcome[name] = "ok"
        except Exception as exc:
            outcome[name] = _first_line(exc)
    return outcome


def _emit(stream: TextIO, event: dict[str, Any]) -> None:
    stream.write(json.dumps(jsonable(event), allow_nan=False) + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.worker")
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--events-fd", required=True, type=int)
    args = parser.parse_args(argv)
    faulthandler.enable()
    plan = json.loads(args.plan.read_text())
    events = os.fdopen(args.events_fd, "w", buffering=1)
    scratch = Path(plan["scratch_dir"])
    scratch.mkdir(parents=True, exist_ok=True)
    registry = discover(plan["scenario_packages"])
    started = time.perf_counter()
    preload = _preload(plan.get("preload", []))
    try:  # warm up: the first determinism calls are slow (torch's takes seconds); count them as import cost
        determinism.reset(int(plan.get("seed", determinism.DEFAULT_SEED)))
    except Exception as exc:
        preload["determinism"] = _first_line(exc)
    _emit(
        events,
        {
            "event": "hello",
            "pid": os.getpid(),
            "import_s": round(time.perf_counter() - started, 6),
            "preload": preload,
            "python_version": platform.python_version(),
            "executable": sys.executable,
        },
    )
    for scenario_id in plan["scenario_ids"]:
        _emit(events, {"event": "start", "id": scenario_id})
        base, param = split_id(scenario_id)
        entry = registry.get(base)
        if entry is None:
            result = {"id": scenario_id, "status": "error", "message": "scenario not found in the worker"}
        else:
            seed = int(plan.get("seed", determinism.DEFAULT_SEED))
            result = run_scenario(entry, scratch, seed, cell_id=scenario_id, param=param)
        _emit(events, {"event": "done", "id": scenario_id, "result": result})
    _emit(events, {"event": "bye"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
