"""Concrete environments from the specs: explicit entries as they are, ``generate:`` blocks expanded.

A generator works like a CI matrix: its axes are multiplied, ``exclude`` rules removed, ``include`` entries added,
and each combination named by rendering the block's template, so the same file always yields the same names.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.utils import canonicalize_name

from harness.matrix.checks import (
    check_env_block,
    check_install,
    check_name,
    check_python,
    check_tags,
    normalize_env,
    pins,
)
from harness.matrix.limits import MAX_ENVIRONMENTS, about
from harness.matrix.located import Located
from harness.matrix.model import Defaults, Environment, EnvironmentSpec, GeneratorSpec

__all__ = ["explicit_environment", "generated_count", "generated_environments", "within_environment_cap"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def explicit_environment(spec: EnvironmentSpec, index: int, defaults: Defaults, located: Located) -> Environment:
    loc = ("environments", index)
    check_name(located, (*loc, "name"), spec.name)
    check_env_block(located, loc, spec.packages, spec.env, spec.no_deps)
    check_python(located, (*loc, "python"), spec.python)
    check_tags(located, (*loc, "tags"), spec.tags)
    check_install(located, (*loc, "install"), spec.install)
    return Environment(
        name=spec.name,
        python=spec.python or defaults.python,
        packages=pins(spec.packages),
        env=normalize_env(spec.env),
        install=spec.install,
        no_deps=tuple(canonicalize_name(n) for n in spec.no_deps),
        tags=tuple(spec.tags),
        line=located.line(loc),
    )


def generated_count(gen: GeneratorSpec) -> int:
    """How many environments a block yields before ``exclude``: the product of its axes plus its includes,
    computed without making a single combination (7 axes of 7 values are 823,543 of them)."""
    sizes = [len(values) for values in (*gen.axes.packages.values(), *gen.axes.env.values())]
    return math.prod(sizes) + len(gen.include)


def _axes_text(gen: GeneratorSpec) -> str:
    sizes = [str(len(v)) for v in (*gen.axes.packages.values(), *gen.axes.env.values())]
    shown = " x ".join(sizes[:10]) + (" x ..." if len(sizes) > 10 else "")
    return f"{len(sizes)} axes: {shown or 'none'}" + (f", plus {len(gen.include)} include" if gen.include else "")


def within_environment_cap(explicit: int, generators: Sequence[GeneratorSpec], located: Located) -> bool:
    """Whether the matrix stays within ``MAX_ENVIRONMENTS``; when it does not, each block too big (or the whole)
    is a problem naming its count, and nothing is expanded."""
    counts = [generated_count(gen) for gen in generators]
    limit = f"the limit is {MAX_ENVIRONMENTS} environments per matrix"
    for i, (gen, count) in enumerate(zip(generators, counts, strict=True)):
        if count > MAX_ENVIRONMENTS:
            made = f"this block makes {about(count)} environments ({_axes_text(gen)})"
            located.problem(("generate", i), f"{made}; {limit}")
    total = explicit + sum(counts)
    if total > MAX_ENVIRONMENTS and all(count <= MAX_ENVIRONMENTS for count in counts):
        located.problem((), f"the matrix makes {about(total)} environments ({explicit} explicit); {limit}")
    return total <= MAX_ENVIRONMENTS


def _default_template(gen: GeneratorSpec) -> str:
    keys = [*gen.axes.packages, *gen.axes.env]
    return "_".join(f"{key}-{{{key}}}" for key in keys)


def _render(template: str, combo: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(combo.get(m.group(1), m.group(0))), template)


def _combinations(gen: GeneratorSpec) -> list[dict[str, Any]]:
    keys = [*gen.axes.packages, *gen.axes.env]
    values = [*gen.axes.packages.values(), *gen.axes.env.values()]
    combos = [dict(zip(keys, chosen, strict=True)) for chosen in itertools.product(*values)]
    rules = [frozenset((k, str(v)) for k, v in rule.items()) for rule in gen.exclude]

    def excluded(combo: dict[str, Any]) -> bool:
        items = {(k, str(v)) for k, v in combo.items()}
        return any(rule <= items for rule in rules)

    kept = [c for c in combos if not excluded(c)]
    kept.extend(dict(extra) for extra in gen.include)
    return kept


def _check_generator(gen: GeneratorSpec, loc: tuple[Any, ...], template: str, located: Located) -> None:
    """Rules and placeholders may only name this block's axes: anything else is a typo that would match nothing."""
    axis_keys = set(gen.axes.packages) | set(gen.axes.env)
    for key in set(gen.axes.packages) & set(gen.axes.env):
        located.problem((*loc, "axes"), f"{key!r} is both a package axis and an env axis")
    for kind in ("exclude", "include"):
        for i, rule in enumerate(getattr(gen, kind)):
            for key in rule:
                if key not in axis_keys:
                    located.problem((*loc, kind, i, key), f"{key!r} is not an axis of this block")
    for placeholder in _PLACEHOLDER.findall(template):
        if placeholder not in axis_keys:
            located.problem((*loc, "name"), f"placeholder {{{placeholder}}} is not an axis of this block")


def _merge(gen: GeneratorSpec, combo: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The block's shared packages and variables with one combination's axis values on top."""
    packages = dict(gen.packages)
    env = dict(gen.env)
    for key, value in combo.items():
        if key in gen.axes.packages:
            packages[key] = str(value)
        else:
            env[key] = value
    return packages, env


def generated_environments(gen: GeneratorSpec, index: int, defaults: Defaults, located: Located) -> list[Environment]:
    loc = ("generate", index)
    template = gen.name or _default_template(gen)
    _check_generator(gen, loc, template, located)
    check_python(located, (*loc, "python"), gen.python)
    check_tags(located, (*loc, "tags"), gen.tags)
    check_install(located, (*loc, "install"), gen.install)
    envs = []
    for combo in _combinations(gen):
        packages, env = _merge(gen, combo)
        name = _render(template, combo)
        check_name(located, (*loc, "name"), name)
        check_env_block(located, loc, packages, env, gen.no_deps)
        envs.append(
            Environment(
                name=name,
                python=gen.python or defaults.python,
                packages=pins(packages),
                env=normalize_env(env),
                install=gen.install,
                no_deps=tuple(canonicalize_name(n) for n in gen.no_deps),
                tags=tuple(gen.tags),
                line=located.line(loc),
            )
        )
    return envs
