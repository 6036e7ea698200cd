"""Probing one API symbol as a user would: resolve it, then really use it (construct, call), noting deprecations.

Shared by the API-map scenarios. A name that resolves is not an API that works: compatibility namespaces can hand
out placeholders that raise only when constructed or called, so every probe ends in a use.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

from harness.worker.errors import error_text

__all__ = ["attr_path", "construct_and_call", "imported", "probe", "use_schedule"]

#: An API map holds one text per symbol: its errors are cut shorter than a cell's message.
_MAP_ERROR_CHARS = 500


def probe(resolve: Callable[[], Any], use: Callable[[Any], Any]) -> str:
    """'ok', 'deprecated: ...', 'missing' or 'error: ...' for one symbol: resolved, then really used."""
    try:
        symbol = resolve()
    except (AttributeError, ImportError, ModuleNotFoundError):
        return "missing"
    except Exception as exc:
        return f"error on import: {error_text(exc, _MAP_ERROR_CHARS)}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            use(symbol)
        except Exception as exc:
            return f"error: {error_text(exc, _MAP_ERROR_CHARS)}"
    deprecations = [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    return f"deprecated: {str(deprecations[0].message).splitlines()[0][:160]}" if deprecations else "ok"


def use_schedule(args: tuple[Any, ...]) -> Callable[[Any], float]:
    """Use a learning-rate schedule: construct it with ``args``, read its rate at step 1 as a number."""
    return lambda cls: float(cls(*args)(1))


def construct_and_call(args: tuple[Any, ...], argument: Any) -> Callable[[Any], Any]:
    """Use a class by constructing it with ``args`` and calling the instance on ``argument``."""
    return lambda cls: cls(*args)(argument)


def attr_path(root: Any, path: str) -> Any:
    value = root
    for part in path.split("."):
        value = getattr(value, part)
    return value


def imported(module: str, name: str) -> Any:
    """``module.name``, the module imported on the probe's first step (so a broken import counts against it)."""
    return getattr(importlib.import_module(module), name)
