"""The one way an exception becomes text for people: type once, the whole message, the root cause, cleaned.

A cell's message, a relay record's message and a recorded load error are read in reports next to the same error
from another release, so they must carry what the framework said, all of it: its first line alone often says only
"Weights only load failed" and leaves out why. Frameworks tend to put the type name into the message themselves
and to re-raise with a generic text and the real reason in ``__cause__``; torch colours its messages with ANSI
escapes. Standard library only (runs inside the worker, Python 3.9 included).
"""

from __future__ import annotations

import re

from harness.worker.protocol import clean_text

__all__ = ["MAX_ERROR_CHARS", "error_text"]

#: An error's text is cut to this many characters (its beginning and its end, where the root cause is, are kept).
MAX_ERROR_CHARS = 4000
_CUT = " [...] "


def _says_its_type(name: str, message: str) -> bool:
    """Whether ``message`` already starts with the type name (``TypeError: ...``, ``pickle.UnpicklingError: ...``)."""
    return re.match(rf"(?:[\w.]+\.)?{re.escape(name)}\b", message) is not None


def _describe(exc: BaseException) -> str:
    """``Type: message`` with the type named once; the bare type name when there is no message."""
    name = type(exc).__name__
    message = clean_text(str(exc)).strip()
    if not message:
        return name
    return message if _says_its_type(name, message) else f"{name}: {message}"


def _root_cause(exc: BaseException) -> BaseException | None:
    """The last exception of the ``__cause__`` / ``__context__`` chain (``raise ... from None`` ends it)."""
    seen = {id(exc)}
    current: BaseException | None = exc
    root: BaseException | None = None
    while current is not None:
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        if following is None or id(following) in seen:
            break
        seen.add(id(following))
        root = current = following
    return root


def _bounded(text: str, limit: int) -> str:
    """``text`` cut in the middle to at most ``limit`` characters, keeping its end (the root cause)."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    head = max(limit - tail - len(_CUT), 0)
    return text[:head] + _CUT + text[len(text) - tail :]


def error_text(exc: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """The full, cleaned text of ``exc`` for people: ``Type: message (caused by Root: message)``, bounded.

    The root cause is left out when the message already quotes it (frameworks often re-raise with it embedded).
    """
    text = _describe(exc)
    root = _root_cause(exc)
    if root is not None:
        cause = _describe(root)
        if cause not in text:
            text = f"{text} (caused by {cause})"
    return _bounded(text, limit)
