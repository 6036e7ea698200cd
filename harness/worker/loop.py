"""The in-environment worker: imports the frameworks once, then runs scenarios one after another.

Started by the orchestrator with the environment's own Python (``python -m harness.worker``). It may use only the
standard library, numpy and the frameworks the environment pins. It reads a plan (JSON) and reports events as JSON
lines on a file descriptor it is handed, separate from stdout/stderr (which scenarios and frameworks are free to
spam): ``hello`` once the frameworks are imported, ``start`` before each scenario, ``done`` with its result after.
If the process dies or hangs, the parent knows from the last ``start`` which scenario did it.

Each scenario's stdout/stderr (file descriptors 1 and 2, so absl log lines and C++ messages too) goes to its own
log file, whose tail is kept in the result. Its warnings are collected from Python's ``warnings``, from ``logging``
(absl included) and from warning lines of that output, each with its origin (``harness.worker.capture``). Every
result is a full ``protocol.CellResult``, the shape the orchestrator validates.
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from harness.worker import capture, determinism
from harness.worker.atomic import write_atomic
from harness.worker.errors import error_text
from harness.worker.models import register_models
from harness.worker.protocol import STACK_DUMP_SIGNAL, CellResult, Status, WarningRecord, blank_cell, clean_text
from harness.worker.records import summarize
from harness.worker.scenario import (
    Context,
    Failed,
    Scenario,
    Skipped,
    discover,
    discover_paths,
    jsonable,
    split_id,
)

__all__ = ["main", "run_scenario"]

OUTPUT_TAIL_CHARS = 4000
#: How much of a scenario's log is searched for warning lines (its end: a chatty import can fill megabytes).
OUTPUT_SCAN_CHARS = 1 << 20
TRACEBACK_LINES = 25


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
    """The last ``limit`` bytes of a log file as text, or '' when there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(os.fstat(handle.fileno()).st_size - limit, 0))
            data = handle.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def _excerpt(exc: BaseException) -> str:
    """The traceback's last lines, cleaned like the message (torch's errors carry ANSI escapes)."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = clean_text("".join(lines)).rstrip().splitlines()
    return "\n".join(text[-TRACEBACK_LINES:])


def _call(entry: Scenario, ctx: Context) -> tuple[Status, str, str]:
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
        return "error", error_text(exc), _excerpt(exc)
    return "pass", "", ""


def _apply_checks(status: Status, message: str, ctx: Context) -> tuple[Status, str]:
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
            if name in ctx.precisions:
                summary["precision"] = ctx.precisions[name]
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

        write_atomic(npz_path, dump, durable=False)  # scratch: the orchestrator merges it into the run durably
    return summaries, None


def _warnings(collected: list[WarningRecord], log_path: Path) -> list[WarningRecord]:
    """The collected warnings and log records, then the output's own warning lines; distinct, at most the cap."""
    output = read_tail(log_path, OUTPUT_SCAN_CHARS)
    return capture.deduplicated(collected + capture.stderr_warnings(output, collected))


def run_scenario(
    entry: Scenario,
    scratch: Path,
    seed: int,
    cell_id: str | None = None,
    param: str | None = None,
    context: Mapping[str, str] | None = None,
) -> CellResult:
    """Run one scenario from a clean seeded state and return its result, a full ``CellResult``."""
    cell_id = cell_id or entry.id
    ctx = Context(cell_id, param, context)
    log_path = scratch / f"{cell_id}.log"
    started = time.perf_counter()
    with redirect_output(log_path), capture.capture() as collector:
        try:
            ctx.seeding = determinism.reset(seed)
            status, message, excerpt = _call(entry, ctx)
        except Exception as exc:  # the determinism helper itself failed
            status, message, excerpt = "error", f"determinism reset failed: {error_text(exc)}", _excerpt(exc)
    duration = time.perf_counter() - started
    status, message = _apply_checks(status, message, ctx)
    records, record_error = _collect_records(ctx, scratch / f"{cell_id}.npz")
    if record_error and status == "pass":
        status, message = "error", record_error
    return {
        "id": cell_id,
        "area": entry.area,
        "status": status,
        "message": message,
        "traceback": excerpt,
        "duration_s": round(duration, 6),
        "checks": [dict(c.to_dict()) for c in ctx.checks],
        "records": records,
        "notes": list(ctx.notes),
        "warnings": _warnings(collector.items, log_path),
        "seeding": ctx.seeding,
        "output_tail": clean_text(read_tail(log_path)),
    }


def _preload(modules: list[str]) -> dict[str, str]:
    """Import the frameworks once, in the given order (torch before TensorFlow avoids a known segfault)."""
    outcome: dict[str, str] = {}
    for name in modules:
        try:
            importlib.import_module(name)
            outcome[name] = "ok"
        except Exception as exc:
            outcome[name] = error_text(exc)
    return outcome


def _emit(stream: TextIO, event: dict[str, Any]) -> None:
    stream.write(json.dumps(jsonable(event), allow_nan=False) + "\n")
    stream.flush()


def plan_context(plan: Mapping[str, Any]) -> dict[str, str]:
    """The plan's ``context``: where the cell runs, as the orchestrator says it (never environment variables)."""
    return {str(k): str(v) for k, v in (plan.get("context") or {}).items()}


def _run_cell(scenario_id: str, registry: Mapping[str, Scenario], plan: Mapping[str, Any]) -> CellResult:
    """One planned cell; an id this worker does not know is an error cell, shaped like every other."""
    base, param = split_id(scenario_id)
    entry = registry.get(base)
    if entry is None:
        area = base.split(".", 1)[0]
        return blank_cell(scenario_id, area, "error", f"scenario {base!r} not found in the worker")
    seed = int(plan.get("seed", determinism.DEFAULT_SEED))
    context = plan_context(plan)
    return run_scenario(entry, Path(plan["scratch_dir"]), seed, cell_id=scenario_id, param=param, context=context)


def main(argv: list[str] | None = None) -> int:
    """Read the plan, import the frameworks once, say hello, then run and report every planned cell."""
    parser = argparse.ArgumentParser(prog="python -m harness.worker")
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--events-fd", required=True, type=int)
    args = parser.parse_args(argv)
    faulthandler.enable()
    # The supervisor sends this before it kills a scenario that outran its timeout: every thread's stack goes to
    # fd 2, which is the cell's log then, so the timeout cell says where it was stuck.
    faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)
    plan = json.loads(args.plan.read_text())
    events = os.fdopen(args.events_fd, "w", buffering=1)
    Path(plan["scratch_dir"]).mkdir(parents=True, exist_ok=True)
    sys.modules.setdefault("compat_matrix", importlib.import_module("harness.worker.public"))  # user scenarios' API
    discover(plan["scenario_packages"])
    register_models(plan.get("models", []))
    registry = discover_paths(plan.get("scenario_paths", []))
    started = time.perf_counter()
    preload = _preload(plan.get("preload", []))
    try:  # warm up: the first determinism calls are slow (torch's takes seconds); count them as import cost
        determinism.reset(int(plan.get("seed", determinism.DEFAULT_SEED)))
    except Exception as exc:
        preload["determinism"] = error_text(exc)
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
        result = _run_cell(scenario_id, registry, plan)
        _emit(events, {"event": "done", "id": scenario_id, "result": result})
    _emit(events, {"event": "bye"})
    return 0


def exit_now(code: int) -> None:
    """End the worker without the frameworks' destructors: every result is written and flushed by then, and
    destructors at interpreter exit cost seconds (TensorFlow) or can deadlock (torch's gloo process groups)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
