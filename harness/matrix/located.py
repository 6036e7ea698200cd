"""YAML composed into plain data that remembers the line of every key and item.

``yaml.safe_load`` forgets where a value came from; every problem must say ``file:line: key``, so the document is
composed into nodes (``composer``, within the file's bounds) and converted here, recording lines by path tuple
(``("environments", 0, "packages")``). Conversion also refuses what no later check should have to think about:
keys that are lists, values YAML cannot construct, binary data, huge integers, control characters, huge strings
and collections.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml  # type: ignore[import-untyped,unused-ignore]

from harness.errors import MatrixError
from harness.matrix.composer import compose_document
from harness.matrix.limits import MAX_INT_BITS, MAX_ITEMS, MAX_SCALAR_CHARS

__all__ = ["Located", "compose", "format_key"]

Loc = tuple[Any, ...]

#: Control characters a string may not hold (tab and line breaks are text; the rest hide or forge a line).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: The longest key ``format_key`` shows as is; a longer one, or one that is not printable, is quoted and cut.
_PLAIN_KEY_CHARS = 60


class Located:
    """Plain data from YAML plus the line of every key and item, and the problems found so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def line(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest ancestor that has one (a missing key points at its parent)."""
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(f"{self.path}:{self.line(loc)}: {format_key(loc)}: {message}")

    def fail(self) -> NoReturn:
        """Raise every problem found, each once, in the order found, each on one line whatever a value held."""
        raise MatrixError([_one_line(problem) for problem in dict.fromkeys(self.problems)]) from None

    def convert(self, node: yaml.Node, loc: Loc) -> Any:
        """Plain data for ``node``; duplicate keys are problems (YAML would silently keep the last)."""
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and len(node.value) > MAX_ITEMS:
            kind = "mapping has" if isinstance(node, yaml.MappingNode) else "list has"
            self.problem(loc, f"this {kind} {len(node.value)} items; the limit is {MAX_ITEMS}")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, loc)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(f"{self.path}:{key_line}: {format_key(loc)}: a key must be a plain value")
                continue
            key = key_node.value
            if key in out:
                first = self.lines[(*loc, key)]
                self.problems.append(
                    f"{self.path}:{key_line}: {format_key((*loc, key))}: duplicate key (first at line {first})"
                )
                continue
            self.lines[(*loc, key)] = key_line
            if self._bad_string(key, (*loc, key)):
                continue
            out[key] = self.convert(value_node, (*loc, key))
        return out

    def _scalar(self, node: yaml.Node, loc: Loc) -> Any:
        """One scalar with YAML's usual typing (ints, floats, bools, null, dates), within bounds."""
        try:
            value = self._constructor.construct_object(node, deep=True)
        except Exception as exc:  # PyYAML's constructors fail on odd input in many ways (!!timestamp 1: AttributeError)
            reason = " ".join(str(getattr(exc, "problem", None) or exc).split())[:120]
            self.problem(loc, f"cannot read {_short(node.value)} as {node.tag}: {reason}")
            return None
        if isinstance(value, bytes):
            self.problem(loc, "binary data (!!binary) is not allowed here; write text")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            self.problem(loc, f"integer of {value.bit_length()} bits; the limit is {MAX_INT_BITS} bits")
            return None
        if isinstance(value, str) and self._bad_string(value, loc):
            return None
        return value

    def _bad_string(self, text: str, loc: Loc) -> bool:
        """Whether ``text`` is too long or holds a control character (written as an escape such as ``"\\0"``)."""
        if len(text) > MAX_SCALAR_CHARS:
            self.problem(loc, f"string of {len(text)} characters; the limit is {MAX_SCALAR_CHARS}")
            return True
        found = _CONTROL.search(text)
        if found:
            self.problem(loc, f"control character U+{ord(found.group()):04X} in {_short(text)}")
            return True
        return False


def _one_line(problem: str) -> str:
    """``problem`` with any line break a quoted value brought escaped (a message quotes with repr; this is the net)."""
    if len(problem.splitlines()) <= 1:
        return problem
    return "".join(repr(ch)[1:-1] if ch.splitlines() != [ch] else ch for ch in problem)


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


def format_key(loc: Loc) -> str:
    """``("environments", 0, "name")`` as ``environments[0].name``: the key as a user would point at it."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).isprintable() or not 0 < len(str(part)) <= _PLAIN_KEY_CHARS:
            text += f"[{_short(str(part))}]"  # a key cannot break or forge a problem line
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


@contextlib.contextmanager
def _without_gc() -> Iterator[None]:
    """The cyclic collector paused: a large file makes 100,000 acyclic nodes, and collections triggered while
    they accumulate would take more than twice as long as composing them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compose(path: Path, text: str) -> tuple[Any, Located]:
    """Parse ``text`` (read from ``path``); a syntax error or a bound crossed is raised at once, other problems
    are collected."""
    located = Located(path)
    with _without_gc():
        node = compose_document(path, text)
        data = {} if node is None else located.convert(node, ())
    return data, located
