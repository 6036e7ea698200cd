"""The scenario API: a registry of plain functions, plus the context they report through.

A scenario is a function ``f(ctx)`` registered with ``@scenario(area=..., requires=[...])``. Declaring records
metadata only; nothing runs at import, and scenario modules import their framework inside the function, so the
orchestrator can list scenarios without importing TensorFlow or torch.

Inside a scenario, ``ctx.check(name, ok, **numbers)`` records a named assertion and ``ctx.record(name, value)`` a
numeric output compared across environments later. ``skip()`` and ``fail()`` raise exceptions derived from
``BaseException`` (as pytest's outcomes do), so a scenario's own ``except Exception`` cannot swallow them; a failed
check is recorded the moment it is made, so no ``except`` can undo it either.

Standard library only at import time: this module is loaded by the worker inside every provisioned environment.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypedDict

from harness.worker.protocol import CONTEXT_KEYS, STATUSES, UNSAFE_ALLOWED

__all__ = [
    "STATUSES",
    "USER_PACKAGE",
    "CheckRecord",
    "CheckResult",
    "Context",
    "Failed",
    "Scenario",
    "Skipped",
    "clear",
    "discover",
    "discover_paths",
    "fail",
    "get",
    "replace_registered",
    "scenario",
    "skip",
    "split_id",
]

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")

ScenarioFunc = Callable[["Context"], None]


@dataclass(frozen=True)
class Scenario:
    """A registered probe. ``id`` is ``<area>.<name>`` and stable across releases of compat-matrix."""

    id: str
    area: str
    name: str
    func: ScenarioFunc
    requires: tuple[str, ...] = ()
    timeout: float | None = None
    doc: str = ""
    module: str = ""
    parametrized: bool = False


def split_id(cell_id: str) -> tuple[str, str | None]:
    """``"relay.consume[a:b]"`` -> ``("relay.consume", "a:b")``; a plain id has no parameter."""
    if cell_id.endswith("]") and "[" in cell_id:
        base, param = cell_id[:-1].split("[", 1)
        return base, param
    return cell_id, None


_REGISTRY: dict[str, Scenario] = {}

#: The package user scenario files are imported under (``compat_matrix_user.<file stem>``): their ids become
#: ``user.<area>_<name>``, so a user's scenario never takes a built-in id, and their module names never shadow the
#: user's own modules nor the standard library.
USER_PACKAGE = "compat_matrix_user"


def scenario(
    *,
    area: str,
    requires: Iterable[str] = (),
    timeout: float | None = None,
    name: str | None = None,
    parametrized: bool = False,
) -> Callable[[ScenarioFunc], ScenarioFunc]:
    """Register ``func`` as a scenario of ``area``.

    ``requires`` holds requirement strings such as ``"keras"``, ``"keras>=3"`` or ``"torch<2.6"``, evaluated by the
    orchestrator against the environment's resolved versions: an unmet requirement makes the cell ``skip`` with the
    reason, never ``fail``. ``keras`` means the Keras a user of that environment gets (``tf_keras`` where
    ``TF_USE_LEGACY_KERAS=1``); ``tensorflow`` matches ``tensorflow-cpu`` too.

    A ``parametrized`` scenario is not selected by the matrix: the orchestrator plans its cells itself, as
    ``<id>[<param>]`` (the relay's consumer runs one cell per producer and format), and ``ctx.param`` holds the
    parameter.
    """
    if not _IDENT.match(area):
        raise ValueError(f"scenario area {area!r} must be a lowercase identifier")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"scenario timeout must be positive, got {timeout!r}")
    requirements = tuple(requires)

    def register(func: ScenarioFunc) -> ScenarioFunc:
        short = name or func.__name__
        if not _IDENT.match(short):
            raise ValueError(f"scenario name {short!r} must be a lowercase identifier")
        user = func.__module__.startswith(f"{USER_PACKAGE}.")
        entry = Scenario(
            id=f"user.{area}_{short}" if user else f"{area}.{short}",
            area="user" if user else area,
            name=f"{area}_{short}" if user else short,
            func=func,
            requires=requirements,
            timeout=timeout,
            doc=(func.__doc__ or "").strip(),
            module=func.__module__,
            parametrized=parametrized,
        )
        previous = _REGISTRY.get(entry.id)
        if previous is not None and previous.module != entry.module:
            raise ValueError(
                f"scenario id {entry.id!r} is registered twice: in {previous.module} and in {entry.module}"
            )
        _REGISTRY[entry.id] = entry
        return func

    return register


def get() -> dict[str, Scenario]:
    """A copy of the registry, sorted by id."""
    return dict(sorted(_REGISTRY.items()))


def clear() -> None:
    """Empty the registry (tests use it to start from nothing)."""
    _REGISTRY.clear()


def discover(packages: Iterable[str] = ("scenarios",)) -> dict[str, Scenario]:
    """Import every public module of each package (registering its scenarios) and return the registry."""
    for package_name in packages:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if info.name.startswith("_"):
                continue
            module_name = f"{package_name}.{info.name}"
            if module_name in sys.modules:  # re-register after clear(): run its decorators again
                importlib.reload(sys.modules[module_name])
            else:
                importlib.import_module(module_name)
    return get()


class Skipped(BaseException):
    """Raised by ``skip()``: the environment lacks what the scenario probes."""


class Failed(BaseException):
    """Raised by ``fail()``: the scenario cannot go on, and the cell is a ``fail``."""


def replace_registered(prefix: str, entries: Iterable[Scenario]) -> None:
    """Drop every scenario whose id starts with ``prefix``, then register ``entries`` (made, not decorated)."""
    for sid in [sid for sid in _REGISTRY if sid.startswith(prefix)]:
        del _REGISTRY[sid]
    _REGISTRY.update({entry.id: entry for entry in entries})


def discover_paths(paths: Iterable[str | Path]) -> dict[str, Scenario]:
    """Import the user's scenario files (``.py`` files, or every public ``.py`` of a folder) and return the registry.

    Each call starts the user's scenarios afresh (a process may load two matrices). A file that fails to import,
    or a second file with the name of one already imported, is one scenario of its own, ``user.import_<stem>``,
    whose cell is an error with the message: a broken user file costs its own cell, never the run.
    """
    _forget_user_scenarios()
    files = _user_files([Path(p) for p in paths])
    package = types.ModuleType(USER_PACKAGE, "The user's scenario files (see harness.worker.scenario).")
    package.__path__ = list(dict.fromkeys(str(f.parent) for f in files))  # their own imports: ``from . import x``
    sys.modules[USER_PACKAGE] = package
    seen: dict[str, Path] = {}
    for file in files:
        if file.stem in seen:
            _register_broken(file, f"another user scenario file is named {file.name}: {seen[file.stem]}")
            continue
        seen[file.stem] = file
        _import_user_file(file)
    return get()


def _forget_user_scenarios() -> None:
    for sid in [sid for sid, entry in _REGISTRY.items() if entry.module.startswith(USER_PACKAGE)]:
        del _REGISTRY[sid]
    for name in [n for n in sys.modules if n == USER_PACKAGE or n.startswith(f"{USER_PACKAGE}.")]:
        del sys.modules[name]


def _user_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        found = sorted(p for p in path.glob("*.py") if not p.name.startswith("_")) if path.is_dir() else [path]
        files += [f.resolve() for f in found if f.resolve() not in files]
    return files


def _import_user_file(file: Path) -> None:
    """Run the file as ``compat_matrix_user.<stem>`` (its decorators register its scenarios)."""
    name = f"{USER_PACKAGE}.{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        _register_broken(file, "not a Python source file")
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit, Skipped, Failed) as exc:  # only Ctrl-C stops the run
        del sys.modules[name]
        _register_broken(file, f"{type(exc).__name__}: {exc}")


def _register_broken(file: Path, error: str) -> None:
    """A scenario standing for a user file that does not import: its cell is an error naming the file."""
    stem = re.sub(r"[^a-z0-9_]", "_", file.stem.lower()).lstrip("_0123456789") or "file"

    def broken(ctx: Context) -> None:
        raise ImportError(f"user scenario file {file} does not import: {error}")

    sid = f"user.import_{stem}"
    doc = f"The user scenario file {file.name}, which does not import."
    module = f"{USER_PACKAGE}.{file.stem}"  # its cache key covers the file's bytes, so an edit measures again
    _REGISTRY[sid] = Scenario(id=sid, area="user", name=f"import_{stem}", func=broken, doc=doc, module=module)


def skip(reason: str) -> NoReturn:
    """Stop the scenario as skipped; name the version gate in ``reason`` (e.g. ``"torch.export needs torch>=2.1"``)."""
    raise Skipped(reason)


def fail(reason: str) -> NoReturn:
    """Stop the scenario as failed with ``reason``."""
    raise Failed(reason)


class CheckRecord(TypedDict):
    """A check as a cell carries it, and exactly as the results document stores it (``results.CheckResult``)."""

    name: str
    ok: bool
    message: str
    values: dict[str, Any]


@dataclass
class CheckResult:
    """One named assertion with the numbers it was decided on."""

    name: str
    ok: bool
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> CheckRecord:
        """The JSON shape: the numbers made plain (numpy scalars, NaN), every key present."""
        values = {str(k): jsonable(v) for k, v in self.values.items()}
        return {"name": self.name, "ok": self.ok, "message": self.message, "values": values}


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


class Context:
    """What a scenario reports through: checks, records, notes and the seeding calls made for it.

    ``context`` is what the orchestrator tells about where the cell runs (the plan's ``context``, keys in
    ``protocol.CONTEXT_KEYS``): passed explicitly rather than through environment variables, so a scenario's
    inputs are all in its plan. Absent keys read as "unknown": ``environment`` is then "" and the folders None.
    """

    def __init__(self, scenario_id: str, param: str | None = None, context: Mapping[str, str] | None = None) -> None:
        context = dict(context or {})
        unknown = sorted(set(context) - set(CONTEXT_KEYS))
        if unknown:
            raise ValueError(f"unknown context keys {unknown}; known: {list(CONTEXT_KEYS)}")
        self.scenario_id = scenario_id
        self.param = param
        self.environment: str = context.get("environment", "")
        self.artifacts_dir = _optional_path(context.get("artifacts_dir"))
        self.relay_source = _optional_path(context.get("relay_source"))
        unsafe = context.get("unsafe_formats", "")
        #: Empty when this cell may load formats that can run code (it runs in the sandbox); else why it may not.
        self.unsafe_refusal = "" if unsafe == UNSAFE_ALLOWED else (unsafe or "the plan does not allow unsafe formats")
        self.checks: list[CheckResult] = []
        self.records: dict[str, tuple[str | None, Any]] = {}
        self.precisions: dict[str, str] = {}
        self.notes: list[str] = []
        self.seeding: list[str] = []

    skip = staticmethod(skip)
    fail = staticmethod(fail)

    def check(self, name: str, ok: Any, message: str = "", **values: Any) -> bool:
        """Record the named assertion ``ok``; a false one makes the cell ``fail`` whatever happens after it."""
        if any(existing.name == name for existing in self.checks):
            warnings.warn(f"check {name!r} made twice in {self.scenario_id}", stacklevel=2)
        result = CheckResult(name=name, ok=bool(ok), message=message, values=values)
        self.checks.append(result)
        return result.ok

    def record(self, name: str, value: Any, kind: str | None = None, *, precision: str | None = None) -> None:
        """Store a named output for cross-environment comparison.

        ``kind`` is inferred (array, scalar, config, text) unless given. Pass:
        - ``"ordering"`` for an element order; ``"api_map"`` for a mapping of symbol to availability;
        - ``"call"`` for one API call's outcome (a mapping with ``outcome``: accepted / warned / deprecated / renamed /
          ignored / rejected, and its ``error`` or ``warning``), judged by how the outcome moved, not by its words;
        - ``"outcomes"`` for label -> outcome text of several calls (a failure reads ``rejected: …``, ``error: …``,
          ``unavailable: …``, ``absent`` or an exception's name);
        - ``"warnings"`` for the warnings some calls raise (a list, or call label -> list): new ones warn, a
          rewording is only noted;
        - ``"info"`` for what identifies the environment (versions, backends): shown in reports, never judged.

        ``precision`` names the float dtype an array was computed in when it is stored wider (a loss computed from
        float16 activations, kept as float64): drift then allows that dtype's tolerance, not the storage's.
        """
        if name in self.records:
            raise ValueError(f"record {name!r} made twice in {self.scenario_id}")
        if kind is not None and kind not in RECORD_KINDS:
            raise ValueError(f"record kind {kind!r} is not one of {RECORD_KINDS}")
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"record precision {precision!r} is not one of {PRECISIONS}")
        self.records[name] = (kind, value)
        if precision is not None:
            self.precisions[name] = precision

    def note(self, text: str) -> None:
        """Attach a free-text observation to the result (e.g. which load path a framework took)."""
        self.notes.append(text)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]


#: Float dtypes a record may say it was computed in (drift has a default tolerance for each).
PRECISIONS = ("float16", "bfloat16", "float32", "float64")
RECORD_KINDS = ("array", "scalar", "ordering", "config", "api_map", "call", "warnings", "outcomes", "text", "info")


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and unknown objects into plain JSON values (NaN/inf become strings)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return jsonable(tolist())
    return repr(value)
