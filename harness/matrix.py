"""matrix.yaml, parsed strictly into concrete environments and a scenario selection.

Parsing is three steps, each pure: YAML is composed into nodes so every key keeps its line; the data is validated by
pydantic models (unknown keys, wrong types); then the rules no schema can say are checked (exact versions, safe
names, duplicates, installer options posing as packages, unknown scenarios). Every problem becomes one line
``file:line: key: what`` and all of them are raised together as a ``MatrixError`` before anything is provisioned.
Generated environments (``generate:`` blocks) are expanded here too: axes multiplied, ``exclude`` removed,
``include`` added, each with a stable readable name.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import MatrixError
from harness.results import InstallOptions
from harness.worker.scenario import Scenario

__all__ = ["Environment", "Matrix", "load", "matrix_schema", "restrict", "shard"]

RESERVED_NAMES = frozenset({"tests", "lint", "report", "gonogo", "merge", "schema", "relay"})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_PACKAGE_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PYTHON = re.compile(r"^3\.\d+(\.\d+)?$")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
LEGACY_KERAS_VAR = "TF_USE_LEGACY_KERAS"

EnvValue = Any  # str or int; checked by _check_env_block so a YAML boolean gets a clear message


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Spec):
    python: str = "3.11"
    timeout: float = Field(300.0, gt=0, description="Seconds one scenario may run before it is a timeout.")
    startup_timeout: float = Field(600.0, gt=0, description="Seconds the worker may take to import frameworks.")
    seed: int = 1337


class ScenarioSelection(_Spec):
    areas: list[str] = Field(default_factory=list, description="Areas to run; empty means all.")
    ids: list[str] = Field(default_factory=list, description="Scenario ids or globs to run; empty means all.")
    exclude: list[str] = Field(default_factory=list, description="Scenario ids or globs to leave out.")
    timeouts: dict[str, float] = Field(default_factory=dict, description="Scenario id or glob -> seconds.")

    @field_validator("timeouts")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for key, seconds in value.items():
            if seconds <= 0:
                raise ValueError(f"timeout for {key!r} must be positive, got {seconds}")
        return value


class EnvironmentSpec(_Spec):
    name: str
    python: str | None = None
    packages: dict[str, str] = Field(description="Distribution name -> exact version, or 'latest'.")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    install: InstallOptions = Field(default_factory=InstallOptions)
    no_deps: list[str] = Field(
        default_factory=list, description="Packages installed after the others without their dependencies."
    )
    tags: list[str] = Field(default_factory=list)


class Axes(_Spec):
    packages: dict[str, list[str]] = Field(default_factory=dict)
    env: dict[str, list[EnvValue]] = Field(default_factory=dict)


class GeneratorSpec(_Spec):
    name: str | None = Field(None, description="Name template, e.g. 'tf{tensorflow-cpu}-keras{keras}'.")
    python: str | None = None
    packages: dict[str, str] = Field(default_factory=dict, description="Pins shared by every generated env.")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    install: InstallOptions = Field(default_factory=InstallOptions)
    no_deps: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    axes: Axes
    include: list[dict[str, EnvValue]] = Field(default_factory=list)
    exclude: list[dict[str, EnvValue]] = Field(default_factory=list)


class ToleranceSpec(_Spec):
    rtol: float = Field(ge=0)
    atol: float = Field(ge=0)


class WaiverSpec(_Spec):
    """An accepted difference: which scenario/record (globs), for which candidates, why, whose, until when."""

    scenario: str
    record: str = "*"
    candidate: str = "*"
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: datetime.date


class DriftSpec(_Spec):
    tolerances: dict[str, ToleranceSpec] = Field(
        default_factory=dict, description="'<scenario-id glob>::<record glob>' -> {rtol, atol}; first match wins."
    )
    waivers: list[WaiverSpec] = Field(default_factory=list)
    waivers_file: str | None = Field(None, description="A YAML file (relative to matrix.yaml) with more waivers.")


class MatrixSpec(_Spec):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    baseline: str | None = None
    scenarios: ScenarioSelection = Field(default_factory=ScenarioSelection)
    environments: list[EnvironmentSpec] = Field(default_factory=list)
    generate: list[GeneratorSpec] = Field(default_factory=list)
    drift: DriftSpec = Field(default_factory=DriftSpec)


def matrix_schema() -> dict[str, Any]:
    """The JSON Schema of matrix.yaml, generated from the models (published in ``harness/schemas``)."""
    schema = MatrixSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "compat-matrix/matrix.schema.json"
    return schema


@dataclass(frozen=True)
class Environment:
    """One concrete environment: what to install, with which variables, and where it was declared."""

    name: str
    python: str
    packages: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    install: InstallOptions = field(default_factory=InstallOptions)
    no_deps: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    line: int = 0

    @property
    def venv_slug(self) -> str:
        """The folder name nox gives this environment's venv under ``.nox/`` (its own normalization rule)."""
        return venv_slug(self.name)

    @property
    def frameworks(self) -> tuple[str, ...]:
        """Framework tags derived from the packages (what ``nox -t`` selects on)."""
        names = set(self.packages)
        found = []
        if any(n.startswith("tensorflow") for n in names):
            found.append("tensorflow")
        if "keras" in names or "tf-keras" in names or "tensorflow" in found:
            found.append("keras")
        if "torch" in names:
            found.append("torch")
        return tuple(found)


@dataclass(frozen=True)
class Matrix:
    """The parsed matrix: environments in declaration order, the baseline and the selected scenario ids."""

    path: Path
    environments: dict[str, Environment]
    baseline: str | None
    defaults: Defaults
    selection: ScenarioSelection
    scenario_ids: tuple[str, ...] = ()
    timeouts: dict[str, float] = field(default_factory=dict)
    drift: DriftSpec = field(default_factory=DriftSpec)
    sha256: str = ""

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments) or "none"
            raise MatrixError([f"{self.path}: unknown environment {name!r} (known: {known})"]) from None


def venv_slug(name: str) -> str:
    """Nox's venv folder name for a session: lowercase, runs of anything but word characters become one '-'."""
    slug = re.sub(r"[^\w\s-]", "-", name).strip().lower()
    return re.sub(r"[-\s]+", "-", slug).strip("-")


def shard(matrix: Matrix, spec: str) -> list[str]:
    """The environments of shard ``K/N``: names sorted, then every N-th from the K-th (stable, balanced)."""
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise MatrixError([f"--shard {spec!r}: expected K/N with whole numbers, e.g. 2/4"]) from None
    if not 1 <= k <= n:
        raise MatrixError([f"--shard {spec!r}: K must be between 1 and N"])
    return [name for i, name in enumerate(sorted(matrix.environments)) if i % n == k - 1]


def restrict(matrix: Matrix, patterns: list[str]) -> Matrix:
    """The same matrix with only the selected scenarios matching one of ``patterns`` (e.g. from the command line)."""
    chosen = tuple(s for s in matrix.scenario_ids if any(fnmatch.fnmatchcase(s, p) for p in patterns))
    if not chosen:
        raise MatrixError([f"{matrix.path}: no selected scenario matches {', '.join(patterns)}"])
    return dataclasses.replace(matrix, scenario_ids=chosen, timeouts={s: matrix.timeouts[s] for s in chosen})


# ---------------------------------------------------------------------------------------------- YAML with lines


class _Located:
    """Plain data from YAML plus the line of every key and item, addressed by path tuples."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[tuple[Any, ...], int] = {}
        self.problems: list[str] = []

    def line(self, loc: tuple[Any, ...]) -> int:
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def problem(self, loc: tuple[Any, ...], message: str) -> None:
        self.problems.append(f"{self.path}:{self.line(loc)}: {format_key(loc)}: {message}")

    def convert(self, node: yaml.Node, loc: tuple[Any, ...]) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                key_line = key_node.start_mark.line + 1
                if key in out:
                    first = self.lines[(*loc, key)]
                    self.problems.append(
                        f"{self.path}:{key_line}: {format_key((*loc, key))}: duplicate key (first at line {first})"
                    )
                    continue
                self.lines[(*loc, key)] = key_line
                out[key] = self.convert(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*loc, i)) for i, item in enumerate(node.value)]
        return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Construct one scalar with YAML's usual typing (ints, floats, bools, null)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def format_key(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _compose(path: Path, text: str) -> tuple[Any, _Located]:
    located = _Located(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise MatrixError([f"{path}:{line}: (yaml): syntax error: {problem}"]) from None
    if node is None:
        return {}, located
    return located.convert(node, ()), located


# ------------------------------------------------------------------------------------------------ validation

_EXTRA_HINT = {
    "pakages": "packages",
    "package": "packages",
    "environment": "environments",
    "envs": "environments",
}


def _report_validation(error: ValidationError, located: _Located, data: Any) -> None:
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            hint = _EXTRA_HINT.get(str(loc[-1]))
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            located.problem(loc, f"unknown key{suggestion}")
        elif item["type"] == "missing":
            located.problem(loc[:-1], f"missing required key {loc[-1]!r}")
        elif item["type"] == "string_type" and isinstance(item.get("input"), int | float):
            located.problem(loc, f'quote this value: YAML read {item["input"]!r} as a number (write "{item["input"]}")')
        else:
            located.problem(loc, f"{item['msg']} (got {_short(item.get('input'))})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_package(located: _Located, loc: tuple[Any, ...], name: str, version: str) -> None:
    if name.startswith("-") or " " in name or "://" in name or name.startswith("git+"):
        located.problem(
            loc,
            f"{name!r} is an installer option, not a package; use 'install:' (index_url, extra_index_urls, find_links)",
        )
        return
    if not _PACKAGE_NAME.match(name):
        located.problem(loc, f"{name!r} is not a valid package name")
        return
    text = str(version).strip()
    if text.startswith("-") or " " in text:
        located.problem(loc, f"version {text!r} looks like an installer option; use 'install:'")
        return
    if text == "latest":
        return
    pin = text.removeprefix("==")
    try:
        Version(pin)
    except InvalidVersion:
        located.problem(loc, f"bad version {text!r}: give an exact version such as 2.16.2, or 'latest'")
        return
    if any(ch in pin for ch in "<>=!~*,"):
        located.problem(loc, f"bad version {text!r}: give an exact version such as 2.16.2, or 'latest'")


def _check_name(located: _Located, loc: tuple[Any, ...], name: str) -> None:
    if not _SAFE_NAME.match(name) or ".." in name:
        located.problem(
            loc,
            f"environment name {name!r} is not safe as a file name "
            "(letters, digits, '.', '_', '+', '-'; no '/', no '..')",
        )
    elif name in RESERVED_NAMES or name.startswith("relay-"):
        located.problem(loc, f"environment name {name!r} is reserved for a nox session")


def _normalize_env(values: Mapping[str, EnvValue]) -> dict[str, str]:
    return {key: str(value) for key, value in values.items()}


def _check_env_block(
    located: _Located,
    loc: tuple[Any, ...],
    packages: Mapping[str, str],
    env: Mapping[str, Any],
    no_deps: list[str],
) -> None:
    seen: dict[str, str] = {}
    for name, version in packages.items():
        _check_package(located, (*loc, "packages", name), name, version)
        canonical = canonicalize_name(name)
        if canonical in seen:
            located.problem((*loc, "packages", name), f"same package as {seen[canonical]!r}")
        seen[canonical] = name
    for var, value in env.items():
        if not _ENV_VAR.match(str(var)):
            located.problem((*loc, "env", var), f"{var!r} is not a valid environment variable name")
        if isinstance(value, bool):
            located.problem((*loc, "env", var), "give a string such as '1' or '0', not a YAML boolean")
        elif not isinstance(value, str | int):
            located.problem((*loc, "env", var), f"must be a string, got {_short(value)}")
    legacy = str(env.get(LEGACY_KERAS_VAR, "")).lower() in ("1", "true", "yes")
    if legacy and "tf-keras" not in seen:
        located.problem(
            (*loc, "env", LEGACY_KERAS_VAR),
            "TF_USE_LEGACY_KERAS=1 makes tf.keras unusable without tf-keras; add tf-keras to packages",
        )
    for i, name in enumerate(no_deps):
        if canonicalize_name(name) not in seen:
            located.problem((*loc, "no_deps", i), f"{name!r} is not one of this environment's packages")


def _pins(packages: Mapping[str, str]) -> dict[str, str]:
    return {canonicalize_name(n): str(v).strip().removeprefix("==") for n, v in packages.items()}


def _explicit(spec: EnvironmentSpec, index: int, defaults: Defaults, located: _Located) -> Environment:
    loc = ("environments", index)
    _check_name(located, (*loc, "name"), spec.name)
    _check_env_block(located, loc, spec.packages, spec.env, spec.no_deps)
    if spec.python is not None and not _PYTHON.match(spec.python):
        located.problem((*loc, "python"), f"python {spec.python!r} must look like 3.11")
    return Environment(
        name=spec.name,
        python=spec.python or defaults.python,
        packages=_pins(spec.packages),
        env=_normalize_env(spec.env),
        install=spec.install,
        no_deps=tuple(canonicalize_name(n) for n in spec.no_deps),
        tags=tuple(spec.tags),
        line=located.line(loc),
    )


def _default_template(gen: GeneratorSpec) -> str:
    keys = [*gen.axes.packages, *gen.axes.env]
    return "_".join(f"{key}-{{{key}}}" for key in keys)


def _render(template: str, combo: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(combo.get(m.group(1), m.group(0))), template)


def _combinations(gen: GeneratorSpec) -> list[dict[str, Any]]:
    keys = [*gen.axes.packages, *gen.axes.env]
    values = [*gen.axes.packages.values(), *gen.axes.env.values()]
    combos = [dict(zip(keys, chosen, strict=True)) for chosen in itertools.product(*values)]

    def excluded(combo: dict[str, Any]) -> bool:
        return any(all(str(combo.get(k)) == str(v) for k, v in rule.items()) for rule in gen.exclude)

    kept = [c for c in combos if not excluded(c)]
    kept.extend(dict(extra) for extra in gen.include)
    return kept


def _generated(gen: GeneratorSpec, index: int, defaults: Defaults, located: _Located) -> list[Environment]:
    loc = ("generate", index)
    axis_keys = set(gen.axes.packages) | set(gen.axes.env)
    overlap = set(gen.axes.packages) & set(gen.axes.env)
    for key in overlap:
        located.problem((*loc, "axes"), f"{key!r} is both a package axis and an env axis")
    for kind in ("exclude", "include"):
        for i, rule in enumerate(getattr(gen, kind)):
            for key in rule:
                if key not in axis_keys:
                    located.problem((*loc, kind, i, key), f"{key!r} is not an axis of this block")
    template = gen.name or _default_template(gen)
    for placeholder in _PLACEHOLDER.findall(template):
        if placeholder not in axis_keys:
            located.problem((*loc, "name"), f"placeholder {{{placeholder}}} is not an axis of this block")
    envs = []
    for combo in _combinations(gen):
        packages = dict(gen.packages)
        env = dict(gen.env)
        for key, value in combo.items():
            if key in gen.axes.packages:
                packages[key] = str(value)
            else:
                env[key] = value
        name = _render(template, combo)
        _check_name(located, (*loc, "name"), name)
        _check_env_block(located, loc, packages, env, gen.no_deps)
        envs.append(
            Environment(
                name=name,
                python=gen.python or defaults.python,
                packages=_pins(packages),
                env=_normalize_env(env),
                install=gen.install,
                no_deps=tuple(canonicalize_name(n) for n in gen.no_deps),
                tags=tuple(gen.tags),
                line=located.line(loc),
            )
        )
    return envs


def _select_scenarios(
    spec: MatrixSpec, registry: Mapping[str, Scenario], located: _Located
) -> tuple[tuple[str, ...], dict[str, float]]:
    sel = spec.scenarios
    areas = {s.area for s in registry.values()}
    for i, area in enumerate(sel.areas):
        if area not in areas:
            located.problem(("scenarios", "areas", i), f"unknown area {area!r} (known: {', '.join(sorted(areas))})")
    for kind in ("ids", "exclude"):
        for i, pattern in enumerate(getattr(sel, kind)):
            if not fnmatch.filter(registry, pattern):
                located.problem(("scenarios", kind, i), f"{pattern!r} matches no scenario")
    for pattern in sel.timeouts:
        if not fnmatch.filter(registry, pattern):
            located.problem(("scenarios", "timeouts", pattern), f"{pattern!r} matches no scenario")
    chosen = []
    for scenario_id, entry in sorted(registry.items()):
        if entry.parametrized:  # planned by the orchestrator (the relay), never selected as a plain cell
            continue
        if sel.areas and entry.area not in sel.areas:
            continue
        if sel.ids and not any(fnmatch.fnmatchcase(scenario_id, p) for p in sel.ids):
            continue
        if any(fnmatch.fnmatchcase(scenario_id, p) for p in sel.exclude):
            continue
        chosen.append(scenario_id)
    timeouts = {}
    for scenario_id in chosen:
        matched = next((s for p, s in sel.timeouts.items() if fnmatch.fnmatchcase(scenario_id, p)), None)
        timeouts[scenario_id] = matched or registry[scenario_id].timeout or spec.defaults.timeout
    return tuple(chosen), timeouts


def _load_waivers_file(path: Path, drift: DriftSpec, located: _Located) -> DriftSpec:
    """Merge the waivers of ``drift.waivers_file`` (a YAML list, validated like the inline ones)."""
    if not drift.waivers_file:
        return drift
    waivers_path = (path.parent / drift.waivers_file).resolve()
    try:
        data, where = _compose(waivers_path, waivers_path.read_text())
    except OSError as exc:
        located.problem(("drift", "waivers_file"), f"cannot read {waivers_path} ({exc.strerror})")
        return drift
    if not isinstance(data, list):
        located.problems.append(f"{waivers_path}:1: (top level): must be a list of waivers")
        return drift
    extra = []
    for i, item in enumerate(data):
        try:
            extra.append(WaiverSpec.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors():
                where.problem((i, *error["loc"]), error["msg"])
    located.problems.extend(where.problems)
    return drift.model_copy(update={"waivers": [*drift.waivers, *extra]})


def load(path: Path | str, registry: Mapping[str, Scenario] | None = None) -> Matrix:
    """Parse ``path`` strictly; with ``registry``, also resolve and check the scenario selection."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MatrixError([f"{path}: cannot read matrix file ({exc.strerror})"]) from None
    data, located = _compose(path, text)
    if located.problems:
        raise MatrixError(located.problems)
    if not isinstance(data, dict):
        raise MatrixError([f"{path}:1: (top level): must be a mapping with 'environments' and/or 'generate'"])
    try:
        spec = MatrixSpec.model_validate(data)
    except ValidationError as exc:
        _report_validation(exc, located, data)
        raise MatrixError(located.problems) from None
    envs: list[Environment] = []
    for i, env_spec in enumerate(spec.environments):
        envs.append(_explicit(env_spec, i, spec.defaults, located))
    for i, gen in enumerate(spec.generate):
        envs.extend(_generated(gen, i, spec.defaults, located))
    by_name: dict[str, Environment] = {}
    for env in envs:
        if env.name in by_name:
            located.problems.append(
                f"{path}:{env.line}: name: duplicate environment name {env.name!r} "
                f"(first defined at line {by_name[env.name].line})"
            )
        by_name.setdefault(env.name, env)
    by_slug: dict[str, Environment] = {}
    for env in by_name.values():
        other = by_slug.setdefault(env.venv_slug, env)
        if other is not env:
            located.problems.append(
                f"{path}:{env.line}: name: environment name {env.name!r} shares the venv folder "
                f".nox/{env.venv_slug} with {other.name!r} (line {other.line}); rename one"
            )
    if not envs:
        located.problem((), "the matrix declares no environment")
    if spec.baseline is not None and spec.baseline not in by_name:
        located.problem(("baseline",), f"baseline {spec.baseline!r} is not an environment of this matrix")
    scenario_ids: tuple[str, ...] = ()
    timeouts: dict[str, float] = {}
    if registry is not None:
        scenario_ids, timeouts = _select_scenarios(spec, registry, located)
    drift = _load_waivers_file(path, spec.drift, located)
    if located.problems:
        raise MatrixError(located.problems)
    return Matrix(
        path=path,
        environments=by_name,
        baseline=spec.baseline,
        defaults=spec.defaults,
        selection=spec.scenarios,
        scenario_ids=scenario_ids,
        timeouts=timeouts,
        drift=drift,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )
