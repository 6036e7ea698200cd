"""Typed, versioned results: one JSON document per environment per run, plus a sidecar ``.npz`` of record values.

The models below are the single source of truth: the JSON Schema published in ``harness/schemas/`` is generated
from them (``python -m harness schema --write``; a test keeps it current), documents are validated against that
schema when written, read back with pydantic alone (the same models, so as strict, and far cheaper on a run of
thousands of cells), and a document of an unknown ``schema_version`` is refused with what to do about it.
"""

from __future__ import annotations

import gc
import json
import marshal
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ResultsError
from harness.worker.atomic import write_json_atomic
from harness.worker.protocol import Status, clean_text

__all__ = [
    "SCHEMA_VERSION",
    "EnvironmentResult",
    "ScenarioResult",
    "collector_paused",
    "load_run",
    "new_run_id",
    "read_result",
    "read_run",
    "results_schema",
    "write_result",
]

SCHEMA_VERSION: Literal[3] = 3
SCHEMA_PATH = Path(__file__).parent / "schemas" / "results.schema.json"

RecordKind = Literal["array", "scalar", "ordering", "config", "api_map", "call", "warnings", "outcomes", "text", "info"]


class _SharedFields(set[str]):
    """The field names given to every read model of one class that was given exactly these (``_share_fields_sets``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a field that a shared fields set lacks gives this model a set of its own first (copy on write:
        the other models sharing it were not given that field)."""
        fields = self.__pydantic_fields_set__
        if type(fields) is _SharedFields and name not in fields:
            object.__setattr__(self, "__pydantic_fields_set__", set(fields))
        super().__setattr__(name, value)


class CheckResult(_Model):
    """A named assertion and the numbers it was decided on."""

    name: str
    ok: bool
    message: str = ""
    values: dict[str, Any] = Field(default_factory=dict)


class RecordSummary(_Model):
    """A record as it appears in the JSON; arrays keep their full values in the ``.npz`` under ``<id>::<name>``."""

    name: str
    kind: RecordKind
    dtype: str | None = None
    shape: list[int] | None = None
    sha256: str
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    nonfinite: int = 0
    in_npz: bool = False
    value: Any = None
    precision: Literal["float16", "bfloat16", "float32", "float64"] | None = None


class WarningEntry(_Model):
    """A warning a scenario caused (the worker protocol's ``WarningRecord``), tagged with the module that raised it.

    Only ``framework`` warnings count as the framework's deprecations; one raised by the standard library inside a
    framework call is kept, but never blamed on the framework.
    """

    source: Literal["warnings", "logging", "stderr"]
    category: str
    message: str
    module: str = ""
    framework: bool = False


class ScenarioResult(_Model):
    """One cell: an environment x scenario outcome."""

    id: str
    area: str
    status: Status
    message: str = ""
    traceback: str = ""
    duration_s: float | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    records: list[RecordSummary] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    warnings: list[WarningEntry] = Field(default_factory=list)
    seeding: list[str] = Field(default_factory=list)
    output_tail: str = ""
    invocation: str = Field("", description="The invocation (see EnvironmentResult.invocations) that wrote the cell.")
    cache_key: str = Field("", description="sha256 of everything that can change this cell's outcome (harness.cache).")
    reused_from: str = Field(
        "", description="Where a cell taken from the cache was measured ('<run>/<environment>'); empty: measured here."
    )

    @property
    def ran(self) -> bool:
        """Whether the scenario ran here at all (a skip or an environment that failed to install did not)."""
        return self.status not in ("skip", "env-error")


class InstallOptions(_Model):
    """Where the installer looks for packages, beyond its defaults."""

    index_url: str | None = None
    extra_index_urls: list[str] = Field(default_factory=list)
    find_links: list[str] = Field(default_factory=list)


class DeclaredEnvironment(_Model):
    """The environment exactly as matrix.yaml declared it (``latest`` left unresolved)."""

    python: str
    packages: dict[str, str]
    env: dict[str, str] = Field(default_factory=dict)
    install: InstallOptions = Field(default_factory=InstallOptions)
    no_deps: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class ResolvedEnvironment(_Model):
    """What was really installed and where it ran."""

    python_version: str
    platform: str
    machine: str
    cpu_flags: list[str] = Field(default_factory=list)
    packages: dict[str, str]
    lock_sha256: str
    latest: dict[str, str] = Field(default_factory=dict)
    install_steps: list[str] = Field(default_factory=list)
    installer: str = ""
    reused: bool = False


#: ``fallback-only``: the plain call a user writes failed and only a fallback (``compile=False``, ...) loaded it.
RelayOutcome = Literal["loaded", "loaded-drifted", "fallback-only", "load-error", "optimizer-state-lost", "skip"]
#: How bad each outcome is, for judging (worse on B blocks) and for showing a cell's worst outcome first.
RELAY_BADNESS: dict[str, int] = {
    "loaded": 0,
    "optimizer-state-lost": 1,
    "loaded-drifted": 2,
    "fallback-only": 3,
    "load-error": 4,
}


class RelayResult(_Model):
    """One artifact saved by ``producer`` and loaded by ``consumer``: how it went, with the numbers."""

    producer: str
    consumer: str
    family: Literal["keras", "torch"]
    model: str
    format: str
    outcome: RelayOutcome
    how: str = ""
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    continuation_max_abs_error: float | None = None
    training_max_abs_error: float | None = Field(
        default=None, description="Largest difference of the training-mode predictions (where deterministic)."
    )
    weights: str = Field(
        default="n/a", description="The weights' layout against the producer's: same, renamed (k of n), layout-changed."
    )
    optimizer: str = "n/a"
    signatures: str = Field(
        default="n/a",
        description="The serving signatures the consumer reads from a SavedModel (names, inputs, outputs).",
    )
    error_class: str = ""
    message: str = ""
    warnings: list[str] = Field(default_factory=list)
    unsafe: bool = Field(default=False, description="Loading the format can run code from the file.")
    sandboxed: bool = Field(default=False, description="The consumer loaded it inside the sandbox.")
    producer_versions: dict[str, str] = Field(default_factory=dict)
    duration_s: float | None = None

    @property
    def error(self) -> str:
        """The load's error for people: the class once, then the full text (which usually starts with it)."""
        if not self.error_class or self.message.startswith(f"{self.error_class}:"):
            return self.message
        return f"{self.error_class}: {self.message}" if self.message else self.error_class


class EnvironmentInfo(_Model):
    name: str
    declared: DeclaredEnvironment
    resolved: ResolvedEnvironment | None = None


class EnvError(_Model):
    """Why the environment could not be provisioned, in the installer's own words."""

    message: str
    installer_output: str = ""


class Timings(_Model):
    """Seconds spent per phase; ``import_s`` is the first worker's framework import."""

    provision_s: float | None = None
    import_s: float | None = None
    import_s_total: float = 0.0
    worker_starts: int = 0
    scenarios_s: float = 0.0
    total_s: float | None = None
    relay_s: float | None = Field(None, description="Seconds the relay's consumer phase took in this environment.")
    cells_reused: int = Field(0, description="Cells this document took from the cache instead of measuring them.")
    relay_cells_reused: int = Field(0, description="Relay consumer cells taken from the cache.")


class Invocation(_Model):
    """One command that wrote cells into this document: a subset re-run updates its cells and keeps the rest."""

    id: str
    started_at: str
    selection: list[str] = Field(default_factory=list, description="The -k patterns given; empty: every cell.")
    cells: list[str] = Field(default_factory=list, description="The cells this invocation ran.")
    lock_sha256: str = ""


class EnvironmentResult(_Model):
    """The results document of one environment in one run."""

    schema_version: Literal[3] = SCHEMA_VERSION
    run_id: str
    harness_version: str
    matrix_file: str
    started_at: str
    finished_at: str | None = None
    state: Literal["running", "complete", "env-error", "interrupted"] = Field(
        "running", description="'interrupted': stopped by Ctrl-C or SIGTERM; the cells it has were finished."
    )
    environment: EnvironmentInfo
    env_error: EnvError | None = None
    timings: Timings = Field(default_factory=Timings)
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    records_file: str | None = None
    relay: list[RelayResult] = Field(default_factory=list, description="Artifacts of every producer, loaded here.")
    relay_problems: list[str] = Field(default_factory=list, description="Manifests the consumer could not read.")
    repeats: int = Field(1, description="How many times each cell ran (flake detection).")
    flaky: list[str] = Field(default_factory=list, description="'<scenario>::<record>' that differed between repeats.")
    matrix_sha256: str = ""
    invocations: list[Invocation] = Field(default_factory=list)

    def cell(self, scenario_id: str) -> ScenarioResult | None:
        return next((s for s in self.scenarios if s.id == scenario_id), None)

    @property
    def ran(self) -> set[str]:
        """The scenarios that ran in this environment."""
        return {c.id for c in self.scenarios if c.ran}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable, file-name-safe run id such as ``20261121T234753Z``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def results_schema() -> dict[str, Any]:
    """The JSON Schema of a results document, generated from the models."""
    schema = EnvironmentResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "compat-matrix/results.schema.json"
    return schema


@cache
def _published_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def _validate(data: dict[str, Any], where: Path) -> None:
    """The published schema's first complaint about ``data`` (on write; imported here, as reading never needs it)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_published_schema())
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(document)"
        raise ResultsError(f"{where}: {key}: {error.message}")


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added the cross-version relay results; a version-1 document simply has none."""
    return {**data, "schema_version": 2, "relay": []}


def _warning_from_text(text: Any) -> dict[str, Any]:
    category, _, message = str(text).partition(": ")
    return {"source": "warnings", "category": category if message else "Warning", "message": message or category}


def _migrate_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 tags warnings with their origin (unknown for old text warnings: never counted as the framework's)."""
    cells = [
        {**c, "warnings": [_warning_from_text(w) for w in c.get("warnings", [])]} for c in data.get("scenarios", [])
    ]
    return {**data, "schema_version": 3, "scenarios": cells}


#: Explicit migrations of older documents to the current version, applied on read (the file is left as it is).
MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


def write_result(path: Path, result: EnvironmentResult) -> None:
    """Validate ``result`` against the published schema and write it atomically."""
    data = result.model_dump(mode="json")
    _validate(data, path)
    write_json_atomic(path, data)


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None


def _parse(raw: bytes, path: Path) -> Any:
    """The JSON of a file, or a one-line ``ResultsError`` saying why it is none."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ResultsError(f"{path}: nested too deeply to be a results document") from None


def _current(data: Any, path: Path) -> Any:
    """``data`` migrated to the current schema version, or refused with what to do about it."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    while version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema_version {version!r} is not one this compat-matrix reads ({SCHEMA_VERSION}); "
            f"re-run that environment with this version (nox -s <env>), or read it with the compat-matrix "
            f"release that wrote it"
        )
    return data


_KEY_CHARS = 80


def _problem(path: Path, exc: ValidationError) -> str:
    """pydantic's first complaint as ``file: key.path: what``, on one line whatever the (untrusted) keys hold."""
    first = exc.errors(include_url=False, include_input=False)[0]
    parts = [" ".join(clean_text(str(part)).split())[:_KEY_CHARS] for part in first["loc"]]
    return f"{path}: {'.'.join(parts) or '(document)'}: {' '.join(first['msg'].split())}"


def _share(models: list[Any], cls: type[BaseModel]) -> None:
    """``models`` (all of class ``cls``) given one shared set per distinct set of field names they were given."""
    shared = _SHARED.setdefault(cls, {})
    every = frozenset(cls.model_fields)
    full = shared.setdefault(every, _SharedFields(every))
    count, assign = len(every), object.__setattr__
    for model in models:
        fields = model.__pydantic_fields_set__
        if len(fields) == count:  # a subset of the fields as large as all of them: the common case, no lookup
            assign(model, "__pydantic_fields_set__", full)
        else:
            key = frozenset(fields)
            assign(model, "__pydantic_fields_set__", shared.get(key) or shared.setdefault(key, _SharedFields(key)))


#: Per model class, one shared fields set per distinct set of field names read.
_SHARED: dict[type[BaseModel], dict[frozenset[str], _SharedFields]] = {}


def _share_fields_sets(doc: EnvironmentResult) -> None:
    """Give the many small models of a read document one shared ``model_fields_set`` per class and keys read.

    pydantic keeps a set of the field names each instance was given: about 700 bytes per object, the largest part
    of a read document (each cell, record, check, warning and relay row is a model, and the models of one class
    are all given the same fields: every one ``write_result`` writes, or every one the writer's version had).
    Sharing one set per class and keys takes 40% off a run's memory and changes nothing pydantic reads: a model
    assigned a field its shared set lacks gets a set of its own first (``_Model.__setattr__``), so
    ``exclude_unset`` still sees exactly what the file, and later assignments, gave each model. Only the models a
    document has by the thousand are walked (the few others keep their own sets).
    """
    cells = doc.scenarios
    _share(cells, ScenarioResult)
    _share([r for c in cells for r in c.records], RecordSummary)
    _share([k for c in cells for k in c.checks], CheckResult)
    _share([w for c in cells for w in c.warnings], WarningEntry)
    _share(doc.relay, RelayResult)


def read_result(path: Path) -> EnvironmentResult:
    """Read one results document with pydantic alone (it was schema-checked when written); refuse unknown versions.

    A document of the current version is parsed and validated in one step from its bytes. Anything else (an older
    version to migrate, or a file that is not a valid document at all) takes the slow path, which says exactly what
    is wrong in one line naming the file.
    """
    doc = _validated(_read_bytes(path), path)
    _share_fields_sets(doc)
    return doc


def _validated(raw: bytes, path: Path) -> EnvironmentResult:
    try:
        return EnvironmentResult.model_validate_json(raw)
    except ValidationError:
        pass  # not a current document as it stands: find out why below (or migrate it)
    data = _current(_parse(raw, path), path)
    try:
        return EnvironmentResult.model_validate(data)
    except ValidationError as exc:
        raise ResultsError(_problem(path, exc)) from None


def load_run(run_dir: Path, problems: dict[str, str] | None = None) -> dict[str, EnvironmentResult]:
    """All environment documents of one run folder, by environment name.

    With ``problems``, a file that cannot be read is recorded there (its name's stem -> one line naming the file and
    what is wrong) and every other environment still loads; without it, the first bad file raises.
    """
    with collector_paused():
        return {doc.environment.name: doc for doc in read_run(run_dir, problems)}


def read_run(run_dir: Path, problems: dict[str, str] | None = None) -> Iterator[EnvironmentResult]:
    """``load_run``'s documents one at a time, in file-name order, for a caller that starts on the first ones
    while the others are read (``verdicts.load_and_judge``); pause the collector around it (``collector_paused``).

    A document naming an environment an earlier file already gave is a problem of its own (which one is meant
    cannot be told, and what was started on the first one must not change under the caller).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir}: no such results folder")
    distinct = _Distinct()
    first: dict[str, Path] = {}
    for path in sorted(run_dir.glob("*.json")):
        try:
            doc = read_result(path)
            name = doc.environment.name
            if name in first:
                raise ResultsError(f"{path}: environment {name!r} is already in {first[name].name}: file left out")
        except ResultsError as exc:
            if problems is None:
                raise
            problems[path.name.removesuffix(".json")] = str(exc)
            continue
        first[name] = path
        distinct.document(doc)
        yield doc


def _record_look(record: RecordSummary) -> Hashable:
    return record.name, record.sha256


def _check_look(check: CheckResult) -> Hashable:
    return check.name, check.ok, check.message


def _warning_look(warning: WarningEntry) -> Hashable:
    return warning.message, warning.category


class _Distinct:
    """One object per distinct record, check and warning of a run: a later one read with exactly the content of an
    earlier one (and the same fields given) is replaced by it.

    A compatibility matrix mostly agrees: the same record, with the same digest and numbers, in most environments;
    the same checks and warnings in most cells. Held once each, a run's documents take a fraction of the memory
    (a synthetic 10k-cell run: 62 MB -> 12 MB). Content is compared exactly (``marshal`` of the fields, version 2:
    types and bits, so ``True`` and ``1``, ``0.0`` and ``-0.0`` stay apart), so nothing a file holds is ever read
    as what another file holds. The documents of ``load_run`` are for reading (report, gonogo, catalogue): a record
    assigned to in one cell would change in every cell sharing it. Only objects that look alike at first
    (``_record_look``, ...) are compared, so a run whose records all differ pays a lookup each, not a serialization.
    """

    def __init__(self) -> None:
        self.seen: dict[Hashable, list[Any]] = {}

    def document(self, doc: EnvironmentResult) -> None:
        for cell in doc.scenarios:
            if cell.records:
                self.replace(cell.records, _record_look)
            if cell.checks:
                self.replace(cell.checks, _check_look)
            if cell.warnings:
                self.replace(cell.warnings, _warning_look)

    def replace(self, models: list[Any], look: Callable[[Any], Hashable]) -> None:
        """Each of ``models`` (in place) by the first object read with its class, fields given and content."""
        seen, dumps = self.seen, marshal.dumps
        for index, model in enumerate(models):
            fields = model.__pydantic_fields_set__
            if type(fields) is not _SharedFields:
                continue  # given a set of its own (assigned to since): never shared
            key = (type(model), id(fields), look(model))
            entry = seen.get(key)
            if entry is None:
                seen[key] = [model, None]  # the first of its look: nothing serialized unless another comes
                continue
            first, content = entry
            if content is None:
                content = entry[1] = dumps(first.__dict__, 2)
            if dumps(model.__dict__, 2) == content:
                models[index] = first


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a run is read, as it was before afterwards.

    A run of 100,000 cells is millions of new objects, none of them in a reference cycle (refcounting frees them);
    left on, the collector rescans the growing heap again and again: reading took 12 s instead of 4 s.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
