"""What a scenario warned about, from all three places warnings come from, each with its origin.

Not every warning is a Python warning: Keras 3 sends some through absl/``logging`` (the HDF5 "legacy format"
one), TensorFlow's C++ side prints them on stderr. And not every warning seen during a framework call is the
framework's: the standard library's own deprecations surface there too (``random.randrange`` with a float, called
by framework code, attributes itself to its caller with ``stacklevel=2``). So each warning is recorded with the
module that raised it (the frame that called ``warnings.warn``, the logger's caller), and ``framework`` is true
only when that module belongs to a framework. Standard library only (Python 3.9 included).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from harness.worker.protocol import WarningRecord, WarningSource, clean_text

__all__ = [
    "FRAMEWORKS",
    "MAX_MESSAGE_CHARS",
    "MAX_WARNINGS",
    "Collector",
    "capture",
    "deduplicated",
    "is_framework",
    "module_of_file",
    "stderr_warnings",
]

#: Top-level packages whose warnings are the framework's (a companion such as torchvision included).
FRAMEWORKS = frozenset({"tensorflow", "keras", "tf_keras", "torch", "jax", "torchvision"})
MAX_WARNINGS = 50
MAX_MESSAGE_CHARS = 1000

_SITE_DIRS = ("site-packages", "dist-packages")
#: Modules of the warnings machinery itself (``_py_warnings`` holds it from Python 3.14), and this one.
_MACHINERY = frozenset({"warnings", "_py_warnings", __name__})
#: Modules that pass a log call on: a record whose path is one of them was logged by the frame calling them.
_LOG_MACHINERY = frozenset({"logging", "absl.logging", __name__})


def is_framework(module: str) -> bool:
    """Whether the dotted ``module`` belongs to a framework (its top-level package is one of ``FRAMEWORKS``)."""
    return module.split(".", 1)[0] in FRAMEWORKS


class _ModuleIndex:
    """Source file -> module name of every imported module, rebuilt when more modules have been imported."""

    def __init__(self) -> None:
        self.size = -1
        self.by_file: dict[str, str] = {}

    def lookup(self, filename: str) -> str | None:
        if len(sys.modules) != self.size:
            self.size = len(sys.modules)
            self.by_file = {}
            for name, module in list(sys.modules.items()):
                path = getattr(module, "__file__", None)
                if isinstance(path, str):
                    self.by_file.setdefault(os.path.normpath(path), name)
        return self.by_file.get(os.path.normpath(filename))


_INDEX = _ModuleIndex()


def _dotted(parts: list[str]) -> str:
    """``["keras", "src", "x.py"]`` -> ``keras.src.x``; a package's ``__init__.py`` names the package."""
    if not parts:
        return ""
    last = parts[-1]
    stem = last.rsplit(".", 1)[0] if last.endswith((".py", ".pyc", ".so")) else last
    names = [*parts[:-1], stem.split(".", 1)[0]]
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def _module_from_path(filename: str) -> str:
    """The module a file path names: after ``site-packages``, under the standard library, or its file stem."""
    path = os.path.normpath(filename)
    parts = path.split(os.sep)
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in _SITE_DIRS:
            return _dotted(parts[index + 1 :])
    stdlib = _stdlib_dir()
    if path.startswith(stdlib + os.sep):
        return _dotted(os.path.relpath(path, stdlib).split(os.sep))
    return _dotted(parts[-1:])


@functools.cache
def _stdlib_dir() -> str:
    return os.path.normpath(sysconfig.get_paths()["stdlib"])


def module_of_file(filename: str) -> str:
    """The dotted module name of a source file: from ``sys.modules`` when imported, else from the path."""
    if not filename:
        return ""
    if filename.startswith("<"):  # "<frozen importlib._bootstrap>", "<string>"
        inner = filename.strip("<>").split()
        return inner[-1] if len(inner) == 2 and inner[0] == "frozen" else ""
    return _INDEX.lookup(filename) or _module_from_path(filename)


def _raiser(frame: FrameType | None, machinery: frozenset[str] = _MACHINERY) -> str:
    """The module of the first frame outside the machinery: the code that called ``warnings.warn`` (or a logger)."""
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name not in machinery:
            return name
        frame = frame.f_back
    return ""


def _log_origin(record: logging.LogRecord) -> str:
    """The module that logged ``record``: from its path, or from the live stack when the path is absl's own.

    absl's ``logging.warning`` records can carry absl's file as their path (Keras 3 logs through it), which
    would hide the framework behind them; the handler runs in the logging call, so the stack still shows it.
    """
    module = module_of_file(record.pathname) if record.pathname else ""
    if module in _LOG_MACHINERY:
        module = _raiser(sys._getframe(2), _LOG_MACHINERY)
    return module or record.module or record.name


def _record(source: WarningSource, category: str, message: str, module: str, framework: bool) -> WarningRecord:
    text = clean_text(message).strip()[:MAX_MESSAGE_CHARS]
    return {"source": source, "category": category, "message": text, "module": module, "framework": framework}


class Collector(logging.Handler):
    """Collects warnings (as ``warnings.showwarning``) and WARNING+ log records (as a handler), in arrival order.

    Captures nest: a scenario capturing the warnings of one call (to record them) does not take them from the
    cell's capture. The inner collector forwards each Python warning to the outer one (log records reach both
    handlers anyway), and only the outermost prints a record that no other handler would have printed.
    """

    def __init__(self, outer: Collector | None = None) -> None:
        super().__init__(level=logging.WARNING)
        self.outer = outer
        self.items: list[WarningRecord] = []
        self.installed_on: list[logging.Logger] = []

    def showwarning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        module = _raiser(sys._getframe(1)) or module_of_file(filename)
        self.items.append(_record("warnings", category.__name__, str(message), module, is_framework(module)))
        if self.outer is not None:
            self.outer.showwarning(message, category, filename, lineno, file, line)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call's arguments: keep the template
            message = str(record.msg)
        module = _log_origin(record)
        framework = is_framework(record.name) or is_framework(module)
        self.items.append(_record("logging", record.levelname, message, module, framework))
        if self.outer is None:
            _last_resort(record)


def _chain_has_other_handler(logger: logging.Logger | None) -> bool:
    while logger is not None:
        if any(not isinstance(h, Collector) for h in logger.handlers):  # counted as logging does: any level
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _last_resort(record: logging.LogRecord) -> None:
    """Print the record as logging would have without the collectors (its last resort), so the log keeps it."""
    resort = logging.lastResort
    if resort is None or record.levelno < resort.level:
        return
    if not _chain_has_other_handler(logging.getLogger(record.name)):
        resort.handle(record)


def _install(collector: Collector) -> None:
    """On the root logger, and on every logger that does not propagate to it (absl's included, if it so chose)."""
    loggers = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and not logger.propagate:
            loggers.append(logger)
    for logger in loggers:
        logger.addHandler(collector)
    collector.installed_on = loggers


def _uninstall(collector: Collector) -> None:
    for logger in collector.installed_on:
        logger.removeHandler(collector)
    collector.installed_on = []


@contextmanager
def capture() -> Iterator[Collector]:
    """Collect every Python warning (filter "always") and WARNING+ log record raised inside the block."""
    outer = next((h for h in logging.getLogger().handlers if isinstance(h, Collector)), None)
    collector = Collector(outer)
    logging.getLogger("absl")  # exists before installing, so a non-propagating absl logger gets the handler too
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = collector.showwarning
        _install(collector)
        try:
            yield collector
        finally:
            _uninstall(collector)


_WARNING_LINE = re.compile(r"\bWARNING\b|\b\w*Warning:|^W\d{4} ")
_PY_WARNING = re.compile(r"^(?P<file>\S+\.py):\d+: (?P<category>\w*Warning): (?P<message>.*)$")
_LOG_LINE = re.compile(r"^(?P<category>WARNING|ERROR|CRITICAL):(?P<logger>[\w.]+):(?P<message>.*)$")
_PY_PATH = re.compile(r"(?P<file>[\w./\\-]+\.py):\d+")


def _from_line(line: str) -> WarningRecord:
    """A warning-looking stderr line, with its category and module where the line's format gives them."""
    match = _PY_WARNING.match(line)
    if match:
        module = module_of_file(match["file"])
        return _record("stderr", match["category"], match["message"], module, is_framework(module))
    match = _LOG_LINE.match(line)
    if match:
        logger = match["logger"]
        return _record("stderr", match["category"], match["message"], logger, is_framework(logger))
    found = _PY_PATH.search(line)
    module = module_of_file(found["file"]) if found else ""
    category = next(iter(re.findall(r"\b\w*Warning\b", line)), "WARNING")
    return _record("stderr", category, line, module, is_framework(module))


def stderr_warnings(output: str, already: list[WarningRecord]) -> list[WarningRecord]:
    """Warning lines of a scenario's output, except those repeating a warning or log record already collected."""
    known = [item["message"].splitlines()[0] for item in already if item["message"]]
    found: list[WarningRecord] = []
    for raw in output.splitlines():
        line = clean_text(raw).strip()
        if not line or not _WARNING_LINE.search(line) or any(text in line for text in known):
            continue
        found.append(_from_line(line))
    return found


def deduplicated(items: list[WarningRecord], limit: int = MAX_WARNINGS) -> list[WarningRecord]:
    """The first ``limit`` distinct records, in order."""
    seen: set[tuple[Any, ...]] = set()
    kept: list[WarningRecord] = []
    for item in items:
        key = (item["source"], item["category"], item["message"], item["module"])
        if key not in seen and len(kept) < limit:
            seen.add(key)
            kept.append(item)
    return kept
