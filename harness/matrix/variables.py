"""Which ``env:`` variables a matrix may set for an environment's worker, and what their values may hold.

The variables are applied on top of the worker's environment, after the harness's own. A variable that changes the
dynamic loader (``LD_PRELOAD``), the interpreter (``PYTHONPATH``, ``PYTHONHOME``, ``PYTHONSTARTUP``), which
programs run (``PATH``, ``VIRTUAL_ENV``) or the installer (``UV_*``, ``PIP_*``) would run code the environment does
not pin, or break the isolation its results claim; a matrix file is reviewed as configuration, not as code, so
those are refused. Framework switches (``TF_USE_LEGACY_KERAS``, ``KERAS_BACKEND``, ``TF_*``, ``OMP_NUM_THREADS``,
``CUDA_VISIBLE_DEVICES`` ...) are what ``env:`` is for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.matrix.limits import MAX_SCALAR_CHARS, MAX_VARIABLE_CHARS
from harness.matrix.located import Loc, Located

__all__ = ["check_variables", "refused_variable"]

_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: (names, whether they are prefixes, why a matrix may not set them); names upper-cased.
_REFUSED: tuple[tuple[tuple[str, ...], bool, str], ...] = (
    (("LD_", "DYLD_"), True, "it changes what the dynamic loader loads into the worker"),
    (("PYTHON",), True, "it changes the worker's interpreter (the harness sets its PYTHON* variables itself)"),
    (("PATH", "VIRTUAL_ENV"), False, "it decides which interpreter and programs run (the harness sets it to the venv)"),
    (
        ("UV_", "PIP_"),
        True,
        "it configures the installer, not the worker; use 'install:' (index_url, extra_index_urls, find_links)",
    ),
)


def refused_variable(name: str) -> str | None:
    """Why ``name`` may not be set by a matrix, or None when it may (compared upper-cased, as Windows does)."""
    upper = name.upper()
    for names, prefix, why in _REFUSED:
        if upper.startswith(names) if prefix else upper in names:
            return why
    return None


def _check_value(located: Located, loc: Loc, value: Any) -> None:
    if isinstance(value, bool):
        located.problem(loc, "give a string such as '1' or '0', not a YAML boolean")
    elif isinstance(value, int):
        return
    elif not isinstance(value, str):
        located.problem(loc, f"must be a string, got {type(value).__name__}")
    elif len(value) > MAX_SCALAR_CHARS:
        located.problem(loc, f"value of {len(value)} characters; the limit is {MAX_SCALAR_CHARS}")
    elif "\n" in value or "\r" in value or "\0" in value:
        located.problem(loc, "a value must be one line without NUL")


def check_variables(located: Located, loc: Loc, env: Mapping[str, Any]) -> None:
    """Each variable of one environment: a valid name, not a refused one, a bounded one-line string value."""
    for var, value in env.items():
        where = (*loc, "env", var)
        name = str(var)
        if len(name) > MAX_VARIABLE_CHARS:
            located.problem(where, f"variable name of {len(name)} characters; the limit is {MAX_VARIABLE_CHARS}")
        elif not _ENV_VAR.fullmatch(name):
            located.problem(where, f"{name!r} is not a valid environment variable name")
        elif why := refused_variable(name):
            located.problem(where, f"{name} may not be set by a matrix: {why}")
        _check_value(located, where, value)
