"""The protocol between the worker and the orchestrator: the one definition of a cell's statuses and of the messages.

The worker writes one JSON object per line on its events descriptor (``hello``, ``start``, ``done``, ``bye``); a
``done`` carries a ``CellResult``. The orchestrator validates each one into its typed results model, and nothing
reshapes a record in between: the shapes below are exactly what the results document stores per cell. Standard
library only, importable by Python 3.9 (the orchestrator imports this module, and only this, from the worker side).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from typing import Any, Literal, TypedDict, get_args

__all__ = [
    "BROKEN",
    "CONTEXT_KEYS",
    "LEGACY_KERAS_VAR",
    "PROTOCOL_VERSION",
    "STATUSES",
    "UNSAFE_ALLOWED",
    "CellResult",
    "Status",
    "WarningRecord",
    "blank_cell",
    "clean_text",
    "legacy_keras",
]

#: Bumped when a message or the cell shape changes; the worker says it in ``hello``.
PROTOCOL_VERSION = 2

Status = Literal["pass", "fail", "error", "skip", "timeout", "crash", "env-error"]
#: The closed set of cell statuses. ``timeout``, ``crash`` and ``env-error`` are assigned by the orchestrator.
STATUSES: tuple[str, ...] = get_args(Status)
#: Statuses that mean "this cell is broken here" (a pass elsewhere turning into one of these is a regression).
BROKEN: tuple[str, ...] = ("fail", "error", "crash", "timeout", "env-error")

WarningSource = Literal["warnings", "logging", "stderr"]

#: The keys of a plan's ``context``, what the orchestrator tells a scenario about where it runs (each optional):
#: the environment's name, the folder the relay producer saves into, the folder the relay consumer reads from, and
#: ``unsafe_formats``: ``"load"`` when this worker runs in the sandbox and may load formats that can run code from
#: the file, otherwise why it may not (absent: it may not; the orchestrator alone decides, never an artifact).
CONTEXT_KEYS: tuple[str, ...] = ("environment", "artifacts_dir", "relay_source", "unsafe_formats")
UNSAFE_ALLOWED = "load"
#: The signal the orchestrator sends a worker whose scenario outran its timeout, just before killing it: the worker
#: answers with every thread's stack (faulthandler, written even when Python is stuck in C code).
STACK_DUMP_SIGNAL = signal.SIGUSR1


class WarningRecord(TypedDict):
    """One warning a scenario caused, with where it came from.

    ``module`` is the module that raised it (a ``warnings`` filename mapped to its module, a logger's name);
    ``framework`` is true only when that module belongs to a framework (tensorflow, keras, tf_keras, torch, and
    absl lines those emit), so a deprecation raised by the standard library is never labelled the framework's.
    """

    source: WarningSource
    category: str
    message: str
    module: str
    framework: bool


class CellResult(TypedDict):
    """One cell's outcome as the worker reports it (and as the results document stores it)."""

    id: str
    area: str
    status: Status
    message: str
    traceback: str
    duration_s: float | None
    checks: list[dict[str, Any]]
    records: list[dict[str, Any]]
    notes: list[str]
    warnings: list[WarningRecord]
    seeding: list[str]
    output_tail: str


def blank_cell(cell_id: str, area: str, status: Status, message: str, **extra: Any) -> CellResult:
    """A cell with nothing measured: what the orchestrator writes for a crash, timeout, skip or env-error."""
    cell: CellResult = {
        "id": cell_id,
        "area": area,
        "status": status,
        "message": message,
        "traceback": "",
        "duration_s": None,
        "checks": [],
        "records": [],
        "notes": [],
        "warnings": [],
        "seeding": [],
        "output_tail": "",
    }
    cell.update(extra)  # type: ignore[typeddict-item]
    return cell


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """``text`` without ANSI escapes and control characters (newlines and tabs kept): safe for people and XML."""
    return _CONTROL.sub("", _ANSI.sub("", text))


#: The variable that makes ``tf.keras`` (and the Keras a user gets) the legacy tf-keras package.
LEGACY_KERAS_VAR = "TF_USE_LEGACY_KERAS"


def legacy_keras(environ: Mapping[str, str]) -> bool:
    """Whether an environment's variables select tf-keras: one reading of the switch for both sides."""
    return str(environ.get(LEGACY_KERAS_VAR, "")).strip().lower() in ("1", "true", "yes")
