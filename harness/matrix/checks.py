"""The rules about one environment that no schema can say: exact pins, safe names, sane variables.

Each check appends problems to the ``Located`` document instead of raising, so one run of ``check`` reports every
mistake in the file at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.matrix.located import Loc, Located
from harness.paths import is_safe_name
from harness.worker.protocol import LEGACY_KERAS_VAR, legacy_keras

__all__ = ["RESERVED_NAMES", "check_env_block", "check_name", "check_python", "normalize_env", "pins", "short"]

RESERVED_NAMES = frozenset({"tests", "lint", "report", "gonogo", "merge", "schema", "relay"})
_PACKAGE_NAME = re.compile(r"^([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PYTHON = re.compile(r"^3\.\d+(\.\d+)?$")
_EXACT_PIN = "give an exact version such as 2.16.2, or 'latest'"


def short(value: Any) -> str:
    """A value quoted in a message, cut so one problem stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_package(located: Located, loc: Loc, name: str, version: str) -> None:
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
        located.problem(loc, f"bad version {text!r}: {_EXACT_PIN}")
        return
    if any(ch in pin for ch in "<>=!~*,"):
        located.problem(loc, f"bad version {text!r}: {_EXACT_PIN}")


def check_name(located: Located, loc: Loc, name: str) -> None:
    """An environment name becomes a folder and a nox session: it must be safe as both."""
    if not is_safe_name(name):
        located.problem(
            loc,
            f"environment name {name!r} is not safe as a file name "
            "(letters, digits, '.', '_', '+', '-'; no '/', no '..', no '__')",
        )
    elif name in RESERVED_NAMES or name.startswith("relay-"):
        located.problem(loc, f"environment name {name!r} is reserved for a nox session")


def check_python(located: Located, loc: Loc, python: str | None) -> None:
    if python is not None and not _PYTHON.match(python):
        located.problem(loc, f"python {python!r} must look like 3.11")


def _check_variables(located: Located, loc: Loc, env: Mapping[str, Any]) -> None:
    for var, value in env.items():
        if not _ENV_VAR.match(str(var)):
            located.problem((*loc, "env", var), f"{var!r} is not a valid environment variable name")
        if isinstance(value, bool):
            located.problem((*loc, "env", var), "give a string such as '1' or '0', not a YAML boolean")
        elif not isinstance(value, str | int):
            located.problem((*loc, "env", var), f"must be a string, got {short(value)}")


def check_env_block(
    located: Located, loc: Loc, packages: Mapping[str, str], env: Mapping[str, Any], no_deps: list[str]
) -> None:
    """Packages, variables and ``no_deps`` of one environment (explicit, or one generated combination)."""
    seen: dict[str, str] = {}
    for name, version in packages.items():
        _check_package(located, (*loc, "packages", name), name, version)
        canonical = canonicalize_name(name)
        if canonical in seen:
            located.problem((*loc, "packages", name), f"same package as {seen[canonical]!r}")
        seen[canonical] = name
    _check_variables(located, loc, env)
    if legacy_keras({k: str(v) for k, v in env.items()}) and "tf-keras" not in seen:
        located.problem(
            (*loc, "env", LEGACY_KERAS_VAR),
            f"{LEGACY_KERAS_VAR}=1 makes tf.keras unusable without tf-keras; add tf-keras to packages",
        )
    for i, name in enumerate(no_deps):
        if canonicalize_name(name) not in seen:
            located.problem((*loc, "no_deps", i), f"{name!r} is not one of this environment's packages")


def normalize_env(values: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in values.items()}


def pins(packages: Mapping[str, str]) -> dict[str, str]:
    """Canonical package names -> bare versions (``==`` dropped), as the installer and the results record them."""
    return {canonicalize_name(n): str(v).strip().removeprefix("==") for n, v in packages.items()}
