"""matrix.yaml, parsed strictly into a ``Matrix``: every problem found, each as ``file:line: key: what``.

Parsing is three steps, each pure: YAML is composed into nodes so every key keeps its line; the data is validated
by the pydantic specs (unknown keys, wrong types); then the rules no schema can say are checked. All problems are
raised together as one ``MatrixError`` before anything is provisioned, so a user fixes the file in one pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import MatrixError
from harness.matrix.checks import check_python, short
from harness.matrix.expand import explicit_environment, generated_environments, within_environment_cap
from harness.matrix.located import Loc, Located, compose
from harness.matrix.model import UPGRADE_FORMS, DriftSpec, Environment, Matrix, MatrixSpec, WaiverSpec
from harness.matrix.models import local_code, user_models
from harness.matrix.reader import read_bounded
from harness.matrix.selection import select_scenarios
from harness.matrix.upgrades import declared_paths
from harness.worker.models import MODEL_PREFIX, register_models
from harness.worker.scenario import USER_PACKAGE, Scenario, discover_paths
from harness.worker.scenario import get as get_registry

__all__ = ["load"]

_EXTRA_HINT = {
    "pakages": "packages",
    "package": "packages",
    "environment": "environments",
    "envs": "environments",
}


def _file_loc(loc: Loc) -> Loc:
    """pydantic's location of an error as a path in the file: the form of an ``upgrades`` item is not a key."""
    if len(loc) > 2 and loc[0] == "upgrades" and loc[2] in UPGRADE_FORMS:
        return (*loc[:2], *loc[3:])
    return loc


def _report_validation(error: ValidationError, located: Located) -> None:
    """pydantic's errors in the file's own words: the key path, a hint for likely typos, YAML's number trap."""
    for item in error.errors():
        loc = _file_loc(tuple(item["loc"]))
        if item["type"] == "extra_forbidden":
            hint = _EXTRA_HINT.get(str(loc[-1]))
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            located.problem(loc, f"unknown key{suggestion}")
        elif item["type"] == "missing":
            located.problem(loc[:-1], f"missing required key {loc[-1]!r}")
        elif item["type"] == "string_type" and isinstance(item.get("input"), int | float):
            located.problem(loc, f'quote this value: YAML read {item["input"]!r} as a number (write "{item["input"]}")')
        else:
            located.problem(loc, f"{item['msg']} (got {short(item.get('input'))})")


def _validate(path: Path, data: Any, located: Located) -> MatrixSpec:
    if located.problems:
        located.fail()
    if not isinstance(data, dict):
        raise MatrixError([f"{path}:1: (top level): must be a mapping with 'environments' and/or 'generate'"])
    try:
        return MatrixSpec.model_validate(data)
    except ValidationError as exc:
        _report_validation(exc, located)
        located.fail()


def _environments(spec: MatrixSpec, located: Located) -> list[Environment]:
    """Every environment, unless there would be too many: then none is made, and the count is the problem."""
    check_python(located, ("defaults", "python"), spec.defaults.python)
    if not within_environment_cap(len(spec.environments), spec.generate, located):
        return []
    envs = [explicit_environment(e, i, spec.defaults, located) for i, e in enumerate(spec.environments)]
    for i, gen in enumerate(spec.generate):
        envs.extend(generated_environments(gen, i, spec.defaults, located))
    if not envs and not located.problems:
        located.problem((), "the matrix declares no environment")
    return envs


def _by_name(envs: list[Environment], located: Located) -> dict[str, Environment]:
    """Environments by name; a repeated name, or two names sharing one ``.nox/`` folder, is a problem."""
    path = located.path
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
    return by_name


def _load_waivers_file(path: Path, drift: DriftSpec, located: Located) -> DriftSpec:
    """Merge the waivers of ``drift.waivers_file`` (a YAML list, validated like the inline ones)."""
    if not drift.waivers_file:
        return drift
    waivers_path = (path.parent / drift.waivers_file).resolve()
    try:
        data, where = compose(waivers_path, read_bounded(waivers_path, regular_only=True))
    except OSError as exc:
        located.problem(("drift", "waivers_file"), f"cannot read {waivers_path} ({exc.strerror})")
        return drift
    except MatrixError as exc:
        located.problems.extend(exc.problems)
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
        text = read_bounded(path)
    except OSError as exc:
        raise MatrixError([f"{path}: cannot read matrix file ({exc.strerror})"]) from None
    data, located = compose(path, text)
    spec = _validate(path, data, located)
    by_name = _by_name(_environments(spec, located), located)
    local = local_code(path, spec.local, located)
    if local:
        by_name = {
            name: dataclasses.replace(env, local=local[0], local_digest=local[1]) for name, env in by_name.items()
        }
    if spec.baseline is not None and spec.baseline not in by_name:
        located.problem(("baseline",), f"baseline {spec.baseline!r} is not an environment of this matrix")
    upgrades = declared_paths(spec.upgrades, by_name, located)
    scenario_ids: tuple[str, ...] = ()
    timeouts: dict[str, float] = {}
    scenario_paths = _user_scenario_paths(path, spec.scenarios.paths, located)
    models = user_models(path, spec.models, located)
    if registry is not None:
        registry = {**registry, **_users_scenarios(scenario_paths, models)}
        scenario_ids, timeouts = select_scenarios(spec, registry, located)
    drift = _load_waivers_file(path, spec.drift, located)
    if located.problems:
        located.fail()
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
        upgrades=upgrades,
        unsafe_formats=spec.unsafe_formats,
        scenario_paths=scenario_paths,
        models=models,
    )


def _users_scenarios(paths: tuple[Path, ...], models: tuple[dict[str, Any], ...]) -> dict[str, Scenario]:
    """The user's own scenarios (their files, one per model), registered now; only those, added to the given ones."""
    if paths:
        discover_paths(paths)
    register_models(models)
    return {
        sid: entry
        for sid, entry in get_registry().items()
        if entry.module.startswith(f"{USER_PACKAGE}.") or sid.startswith(MODEL_PREFIX)
    }


def _user_scenario_paths(matrix_file: Path, paths: list[str], located: Located) -> tuple[Path, ...]:
    """``scenarios.paths`` resolved against the matrix file's folder; one that does not exist is a problem."""
    resolved: list[Path] = []
    for i, raw in enumerate(paths):
        target = (matrix_file.parent / raw).resolve()
        if target.is_dir() or (target.is_file() and target.suffix == ".py"):
            resolved.append(target)
        else:
            located.problem(("scenarios", "paths", i), f"{short(raw)} is neither a folder nor a .py file ({target})")
    return tuple(resolved)
