"""The rules about one environment that no schema can say: exact pins, safe names, sane variables.

Each check appends problems to the ``Located`` document instead of raising, so one run of ``check`` reports every
mistake in the file at once.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.matrix.limits import MAX_NAME_CHARS, MAX_PACKAGES, MAX_VERSION_CHARS
from harness.matrix.located import Loc, Located
from harness.matrix.variables import check_variables
from harness.paths import is_safe_name
from harness.results import InstallOptions
from harness.worker.protocol import LEGACY_KERAS_VAR, legacy_keras

__all__ = [
    "RESERVED_NAMES",
    "check_env_block",
    "check_install",
    "check_name",
    "check_python",
    "check_tags",
    "normalize_env",
    "pins",
    "short",
]

RESERVED_NAMES = frozenset({"tests", "lint", "report", "gonogo", "merge", "schema", "relay"})
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")
_VERSION_CHARS = re.compile(r"[A-Za-z0-9.+!_=-]+")
_PYTHON = re.compile(r"3\.\d{1,3}(\.\d{1,3})?")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_EXACT_PIN = "give an exact version such as 2.16.2, or 'latest'"
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = 4
_SHORT.maxlevel = 2


def short(value: Any) -> str:
    """A value quoted in a message, cut so one problem stays one readable line (and cheap for a huge value)."""
    text = _SHORT.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_problem(located: Located, loc: Loc, rules: list[tuple[bool, str]]) -> bool:
    """Report the first rule that is broken (the later ones would only repeat it); True when one was."""
    message = next((text for broken, text in rules if broken), None)
    if message is not None:
        located.problem(loc, message)
    return message is not None


def _check_package(located: Located, loc: Loc, name: str, version: str) -> None:
    option = name.startswith("-") or " " in name or "://" in name or name.startswith("git+")
    rules = [
        (
            option,
            f"{short(name)} is an installer option, not a package; use 'install:' "
            "(index_url, extra_index_urls, find_links)",
        ),
        (len(name) > MAX_NAME_CHARS, f"package name of {len(name)} characters; the limit is {MAX_NAME_CHARS}"),
        (not _PACKAGE_NAME.fullmatch(name), f"{short(name)} is not a valid package name"),
    ]
    if not _first_problem(located, loc, rules):
        _check_version(located, loc, str(version))


def _check_version(located: Located, loc: Loc, text: str) -> None:
    """An exact pin or ``latest``, nothing else: the installer receives it as ``name==version``."""
    rules = [
        (
            text.startswith("-") or " " in text.strip(),
            f"version {short(text)} looks like an installer option; use 'install:'",
        ),
        (len(text) > MAX_VERSION_CHARS, f"version of {len(text)} characters; the limit is {MAX_VERSION_CHARS}"),
        (
            not _VERSION_CHARS.fullmatch(text),
            f"bad version {short(text)}: no spaces, line breaks or control characters; {_EXACT_PIN}",
        ),
    ]
    if _first_problem(located, loc, rules):
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
    """An environment name becomes a folder, a file stem (``<A>__<B>.json``) and a nox session: safe as all."""
    if len(name) > MAX_NAME_CHARS:
        located.problem(loc, f"environment name of {len(name)} characters; the limit is {MAX_NAME_CHARS}")
    elif name[:1] in (".", "-"):
        located.problem(loc, f"environment name {short(name)} must start with a letter or a digit")
    elif not is_safe_name(name):
        located.problem(
            loc,
            f"environment name {short(name)} is not safe as a file name "
            "(letters, digits, '.', '_', '+', '-'; no '/', no '..', no '__', no line break)",
        )
    elif name in RESERVED_NAMES or name.startswith("relay-"):
        located.problem(loc, f"environment name {name!r} is reserved for a nox session")


def check_python(located: Located, loc: Loc, python: str | None) -> None:
    if python is not None and not _PYTHON.fullmatch(python):
        located.problem(loc, f"python {short(python)} must look like 3.11")


def check_tags(located: Located, loc: Loc, tags: list[str]) -> None:
    """Tags select nox sessions (``-t``): plain words, like names."""
    for i, tag in enumerate(tags):
        if len(tag) > MAX_NAME_CHARS or not _TAG.fullmatch(tag):
            located.problem((*loc, i), f"tag {short(tag)} must be letters, digits, '.', '_', '+', '-' (100 at most)")


def check_install(located: Located, loc: Loc, install: InstallOptions) -> None:
    """Index URLs and wheel folders reach the installer as arguments: one plain word each, never an option."""
    given: list[tuple[Loc, str]] = [(("index_url",), install.index_url)] if install.index_url is not None else []
    given += [(("extra_index_urls", i), url) for i, url in enumerate(install.extra_index_urls)]
    given += [(("find_links", i), link) for i, link in enumerate(install.find_links)]
    for key, value in given:
        where = (*loc, *key)
        if not value or value.startswith("-") or not value.isprintable() or any(ch.isspace() for ch in value):
            located.problem(where, f"{short(value)} must be a URL or a folder: no spaces, no leading '-'")


def check_env_block(
    located: Located, loc: Loc, packages: Mapping[str, str], env: Mapping[str, Any], no_deps: list[str]
) -> None:
    """Packages, variables and ``no_deps`` of one environment (explicit, or one generated combination)."""
    seen: dict[str, str] = {}
    if len(packages) > MAX_PACKAGES:
        located.problem((*loc, "packages"), f"{len(packages)} packages; the limit is {MAX_PACKAGES}")
        return
    for name, version in packages.items():
        _check_package(located, (*loc, "packages", name), name, version)
        canonical = canonicalize_name(name)
        if canonical in seen:
            located.problem((*loc, "packages", name), f"same package as {seen[canonical]!r}")
        seen[canonical] = name
    check_variables(located, loc, env)
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
