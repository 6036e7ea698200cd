"""Probing one API symbol as a user would: resolve it, then really use it (construct, call), noting deprecations.

Shared by the API-map scenarios. A name that resolves is not an API that works: compatibility namespaces can hand
out placeholders that raise only when constructed or called, so every probe ends in a use.

Keyword probes (``KeywordCall``, ``call_outcome``) go one step further: a call with a keyword that binds is not a
keyword that works. Frameworks accept an old keyword into ``**kwargs`` and drop it, with a log line or silently, so
each call says whether the value took effect, and the outcome is one of ``OUTCOMES``.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.worker import capture
from harness.worker.errors import error_text
from harness.worker.protocol import WarningRecord
from harness.worker.scenario import jsonable

__all__ = [
    "OUTCOMES",
    "KeywordCall",
    "attr_path",
    "call_outcome",
    "classify_outcome",
    "config_difference",
    "construct_and_call",
    "imported",
    "new_keyword",
    "probe",
    "relevant_warnings",
    "rounded",
    "same_value",
    "use_schedule",
]

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


# ------------------------------------------------------------------------------------------- keyword probes

#: What became of a keyword: ``accepted`` (took effect, nothing said), ``warned`` (took effect, a warning about it),
#: ``deprecated`` (took effect, called deprecated), ``renamed`` (took effect, the warning names the new keyword),
#: ``ignored`` (bound, but the value had no effect), ``rejected`` (the call raised).
OUTCOMES = ("accepted", "warned", "deprecated", "renamed", "ignored", "rejected")

#: Words after "use" in a warning that are not the name of a keyword ("use the legacy optimizer").
_NOT_KEYWORDS = frozenset({"a", "an", "the", "this", "that", "it", "its", "of", "instead", "in", "with", "and"})
_USE_NAME = re.compile(r"\buse\s+[`'\"]?([A-Za-z_][A-Za-z0-9_]*)(?![A-Za-z0-9_(])")
_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")
_TEXT_CHARS = 300
_DEPRECATIONS = frozenset({"DeprecationWarning", "FutureWarning", "PendingDeprecationWarning"})


def short_text(text: str, limit: int = _TEXT_CHARS) -> str:
    """One line, memory addresses removed (they differ from run to run), at most ``limit`` characters."""
    line = " ".join(_ADDRESS.sub("0x…", text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def new_keyword(keyword: str, message: str) -> str | None:
    """The keyword a deprecation message tells to use instead of ``keyword`` ("use `min_delta` instead"), or None.

    A name followed by ``(`` is a function to call ("use get_last_lr()"), not a keyword.
    """
    for match in _USE_NAME.finditer(message):
        name = match.group(1)
        if name != keyword and name.lower() not in _NOT_KEYWORDS:
            return name
    return None


def relevant_warnings(keyword: str, items: Iterable[WarningRecord], *, deprecations: bool = True) -> list[str]:
    """The warnings a call raised about ``keyword``: those naming it, and the framework's deprecations of any wording.

    A deprecation the standard library raises during the call (``random.randrange`` with a float, inside Keras 2)
    is not about the keyword unless it names it; with ``deprecations=False`` only the warnings naming it count.
    """
    named = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(keyword)}(?![A-Za-z0-9_])") if keyword else None
    found: list[str] = []
    for item in items:
        message = item["message"]
        deprecation = deprecations and item["framework"] and item["category"] in _DEPRECATIONS
        if deprecation or (named is not None and named.search(message)):
            found.append(short_text(message))
    return found


def classify_outcome(
    keyword: str, error: str | None, took_effect: bool | None, warned: list[str]
) -> tuple[str, str | None]:
    """``(outcome, new keyword)`` of one call; ``took_effect`` None means the call has no effect to check.

    An error wins; then a value that did not take effect is ``ignored`` whatever was said; then what the warnings
    say about the keyword (a new name, "deprecated", anything).
    """
    if error is not None:
        return "rejected", None
    renamed = next((name for name in (new_keyword(keyword, text) for text in warned) if name), None)
    if took_effect is False:
        return "ignored", renamed
    if renamed:
        return "renamed", renamed
    if any("deprecat" in text.lower() for text in warned):
        return "deprecated", None
    return ("warned" if warned else "accepted"), None


def same_value(observed: Any, expected: Any, *, rel: float = 1e-5) -> bool:
    """Equality of plain values, floats within ``rel`` (float32 storage), lists and tuples alike."""
    if isinstance(expected, bool) or isinstance(observed, bool) or expected is None or observed is None:
        return observed is expected  # True is not 1, None is not 0.0
    if isinstance(expected, (int, float)) and isinstance(observed, (int, float)):
        return math.isclose(float(observed), float(expected), rel_tol=rel, abs_tol=rel * 1e-3)
    if isinstance(expected, (list, tuple)) and isinstance(observed, (list, tuple)):
        return len(observed) == len(expected) and all(
            same_value(o, e, rel=rel) for o, e in zip(observed, expected, strict=True)
        )
    if isinstance(expected, Mapping) and isinstance(observed, Mapping):
        return set(observed) == set(expected) and all(same_value(observed[k], expected[k], rel=rel) for k in expected)
    return bool(observed == expected)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def config_difference(before: Any, after: Any) -> dict[str, Any]:
    """What a config round trip changed: ``{}`` when equal, else changed ``key: [before, after]``, added, removed."""
    a, b = _flat(jsonable(before)), _flat(jsonable(after))
    changed = {k: [a[k], b[k]] for k in sorted(set(a) & set(b)) if not same_value(b[k], a[k])}
    added, removed = sorted(set(b) - set(a)), sorted(set(a) - set(b))
    difference: dict[str, Any] = {}
    if changed:
        difference["changed"] = changed
    if added:
        difference["added"] = added
    if removed:
        difference["removed"] = removed
    return difference


@dataclass(frozen=True)
class KeywordCall:
    """One call as users write it, with the keyword under test and how to see that its value took effect.

    ``call`` makes the call; ``effect`` reads the value back from what it returned (an attribute, a computed
    loss, a learning rate after some steps) and must equal ``expected``; ``round_trip`` returns the config before
    and after a serialisation round trip (``get_config``/``from_config``, ``state_dict``/``load_state_dict``).
    A ``canonical`` call uses the documented spelling of the release it targets: it must be accepted and work.
    """

    label: str
    keyword: str
    call: Callable[[], Any]
    effect: Callable[[Any], Any] | None = None
    expected: Any = None
    round_trip: Callable[[Any], tuple[Any, Any]] | None = None
    canonical: bool = False


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` with every float cut to ``digits`` significant digits (float32 noise out of the record)."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value


def _observed(call: KeywordCall, made: Any) -> tuple[bool | None, Any]:
    if call.effect is None:
        return None, None
    try:
        observed = rounded(jsonable(call.effect(made)))
    except Exception as exc:
        return False, f"error: {short_text(error_text(exc))}"
    return same_value(observed, jsonable(call.expected)), observed


def _round_trip(call: KeywordCall, made: Any) -> Any:
    if call.round_trip is None:
        return "n/a"
    try:
        before, after = call.round_trip(made)
    except Exception as exc:
        return f"error: {short_text(error_text(exc))}"
    difference = config_difference(before, after)
    return difference if difference else "equal"


def call_outcome(call: KeywordCall) -> dict[str, Any]:
    """Make ``call``, then read its effect and round trip; the record of what happened.

    Warnings are captured apart: during the call, those naming the keyword and the framework's deprecations count;
    while the effect is read (a forward pass, a value converted to numpy), only those naming the keyword (torch
    warns about ``reduction='elementwise_mean'`` only when the loss is computed; Keras on torch warns about
    numpy's ``__array__`` protocol when a variable is read, which is about no keyword).
    """
    error: str | None = None
    took_effect: bool | None = None
    observed: Any = None
    round_trip: Any = "n/a"
    with capture.capture() as during_call:
        try:
            made = call.call()
        except Exception as exc:
            error = short_text(error_text(exc))
    with capture.capture() as during_use:
        if error is None:
            took_effect, observed = _observed(call, made)
            round_trip = _round_trip(call, made)
    warned = relevant_warnings(call.keyword, during_call.items)
    warned += [
        text for text in relevant_warnings(call.keyword, during_use.items, deprecations=False) if text not in warned
    ]
    outcome, renamed = classify_outcome(call.keyword, error, took_effect, warned)
    record: dict[str, Any] = {"keyword": call.keyword, "outcome": outcome}
    if error is not None:
        record["error_class"] = error.split(":", 1)[0]
        record["error"] = error
    if call.effect is not None and error is None:
        record["observed"] = observed
        record["expected"] = jsonable(call.expected)
    if warned:
        record["warning"] = warned[0]
    if renamed:
        record["renamed_to"] = renamed
    if error is None:
        record["round_trip"] = round_trip
    return record
