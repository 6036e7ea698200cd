"""Loading as a user loads: the plain call first; a fallback that works is a finding, not a rescue.

A user upgrading writes ``keras.models.load_model(path)`` or ``torch.load(path)``. When that call breaks in a new
release and ``compile=False`` or ``weights_only=False`` would make it work, the upgrade still broke their code, so
the outcome is the plain call's, and the fallback is recorded beside it as what would work instead. One home for
the save_load scenarios and the relay consumer, so both judge a load the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.worker import capture
from harness.worker.errors import error_text

__all__ = ["PLAIN", "Fallback", "LoadAttempt", "capture_warnings", "finding", "load_as_user"]

#: ``how`` of a load whose plain call worked.
PLAIN = "loaded"


@dataclass(frozen=True)
class Fallback:
    """What a user tries when the plain call fails: ``how`` names the outcome, ``option`` what was changed."""

    how: str
    option: str
    call: Callable[[], Any]


@dataclass(frozen=True)
class LoadAttempt:
    """What loaded, how (``PLAIN`` or a fallback's ``how``), the plain call's error, the warnings emitted."""

    value: Any
    how: str = PLAIN
    option: str = ""
    plain_error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)


def capture_warnings(action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``action``; return its value and the warnings and log records it emitted, as sorted text.

    The cell's own warnings still receive them (captures nest): this is the per-call view a record keeps.
    """
    with capture.capture() as collector:
        value = action()
    lines = {f"{w['category']}: {(w['message'].splitlines() or [''])[0][:200]}" for w in collector.items}
    return value, sorted(lines)


def load_as_user(plain: Callable[[], Any], fallbacks: Sequence[Fallback] = ()) -> LoadAttempt:
    """The plain call's result; else the first fallback that works, with the plain call's error.

    Raises the plain call's error when nothing works: that, not a fallback's error, is what the user sees.
    """
    try:
        value, warned = capture_warnings(plain)
        return LoadAttempt(value, warnings=warned)
    except Exception as exc:
        plain_error = exc
    for fallback in fallbacks:
        try:
            value, warned = capture_warnings(fallback.call)
        except Exception:
            continue
        return LoadAttempt(value, fallback.how, fallback.option, plain_error, warned)
    raise plain_error


def finding(attempt: LoadAttempt) -> str:
    """'' for a plain load; else "loads only with <option>: <the plain call's full error>"."""
    if attempt.plain_error is None:
        return ""
    return f"loads only with {attempt.option}: {error_text(attempt.plain_error)}"
