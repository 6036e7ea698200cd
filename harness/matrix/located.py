"""YAML composed into plain data that remembers the line of every key and item.

``yaml.safe_load`` forgets where a value came from; every problem must say ``file:line: key``, so the document is
composed into nodes and converted here, recording lines by path tuple (``("environments", 0, "packages")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from harness.errors import MatrixError

__all__ = ["Located", "compose", "format_key"]

Loc = tuple[Any, ...]


class Located:
    """Plain data from YAML plus the line of every key and item, and the problems found so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []

    def line(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest ancestor that has one (a missing key points at its parent)."""
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(f"{self.path}:{self.line(loc)}: {format_key(loc)}: {message}")

    def convert(self, node: yaml.Node, loc: Loc) -> Any:
        """Plain data for ``node``; duplicate keys are problems (YAML would silently keep the last)."""
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                key_line = key_node.start_mark.line + 1
                if key in out:
                    first = self.lines[(*loc, key)]
                    self.problems.append(
                        f"{self.path}:{key_line}: {format_key((*loc, key))}: duplicate key (first at line {first})"
                    )
                    continue
                self.lines[(*loc, key)] = key_line
                out[key] = self.convert(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*loc, i)) for i, item in enumerate(node.value)]
        return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """Construct one scalar with YAML's usual typing (ints, floats, bools, null)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def format_key(loc: Loc) -> str:
    """``("environments", 0, "name")`` as ``environments[0].name``: the key as a user would point at it."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def compose(path: Path, text: str) -> tuple[Any, Located]:
    """Parse ``text`` (read from ``path``); a syntax error is raised at once, other problems are collected."""
    located = Located(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise MatrixError([f"{path}:{line}: (yaml): syntax error: {problem}"]) from None
    if node is None:
        return {}, located
    return located.convert(node, ()), located
