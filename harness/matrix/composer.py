"""YAML events composed into one document's nodes, iteratively and within bounds.

PyYAML's own composer recurses once per nesting level (a file of 100,000 ``[`` ends in a RecursionError, or in a
crash inside libyaml's bindings) and shares an anchored node at every alias, so converting an alias bomb walks
billions of nodes. Here the event stream (libyaml's parser, which keeps its own stack) is composed with an explicit
stack, and every node knows its size and height with aliases expanded where they are used: too deep, too many
nodes or a bomb is refused at the event that crosses the bound, before anything is converted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from harness.errors import MatrixError
from harness.matrix.limits import MAX_DEPTH, MAX_NODES, about

__all__ = ["compose_document"]

_PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER: Any = yaml.resolver.Resolver
#: Plain scalars' implicit types (int, float, bool, null, timestamp...) by first character, as SafeLoader has them.
_IMPLICIT: dict[str, list[tuple[str, Any]]] = _RESOLVER.yaml_implicit_resolvers
_STR: str = _RESOLVER.DEFAULT_SCALAR_TAG
_SEQ: str = _RESOLVER.DEFAULT_SEQUENCE_TAG
_MAP: str = _RESOLVER.DEFAULT_MAPPING_TAG


def _scalar_tag(event: Any) -> str:
    """The tag SafeLoader would give a scalar (what ``Resolver.resolve`` does, without its per-call overhead)."""
    if event.tag not in (None, "!"):
        return str(event.tag)
    if event.implicit[0]:
        for tag, pattern in _IMPLICIT.get(event.value[:1], []):
            if pattern.match(event.value):
                return tag
    return _STR


class _Composer:
    """Nodes from events; an open collection is ``[node, anchor, children, expanded size, height]``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stack: list[list[Any]] = []
        self.anchors: dict[str, tuple[yaml.Node, int, int]] = {}
        self.root: yaml.Node | None = None
        self.documents = 0
        self.events = 0

    def fail(self, event: Any, what: str) -> MatrixError:
        return MatrixError([f"{self.path}:{event.start_mark.line + 1}: (yaml): {what}"])

    def feed(self, event: Any) -> None:
        self.events += 1
        if self.events > 2 * MAX_NODES + 8:  # two events per collection; this bound is never below the node one
            raise self.fail(event, f"more than {MAX_NODES} YAML nodes; the limit is {MAX_NODES}")
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            raise self.fail(event, "a second YAML document ('---'); a matrix file holds one")

    def scalar(self, event: Any) -> None:
        node = yaml.ScalarNode(_scalar_tag(event), event.value, event.start_mark, event.end_mark, style=event.style)
        self.add(event, node, event.anchor, 1, 0)

    def alias(self, event: Any) -> None:
        known = self.anchors.get(event.anchor)
        if known is None:
            raise self.fail(event, f"alias *{event.anchor} names no complete anchor (unknown, or inside itself)")
        node, size, height = known
        self.add(event, node, None, size, height)

    def start(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(event, f"nesting deeper than {MAX_DEPTH} levels; the limit is {MAX_DEPTH}")
        mapping = type(event) is yaml.MappingStartEvent
        tag = event.tag if event.tag not in (None, "!") else _MAP if mapping else _SEQ
        kind = yaml.MappingNode if mapping else yaml.SequenceNode
        self.stack.append([kind(tag, [], event.start_mark, None, flow_style=event.flow_style), event.anchor, [], 1, 0])

    def end(self, event: Any) -> None:
        node, anchor, children, size, height = self.stack.pop()
        if isinstance(node, yaml.MappingNode):
            node.value = list(zip(children[::2], children[1::2], strict=True))
        else:
            node.value = children
        node.end_mark = event.end_mark
        self.add(event, node, anchor, size, height + 1)

    def add(self, event: Any, node: yaml.Node, anchor: str | None, size: int, height: int) -> None:
        """Attach a finished node to its parent, counting what it expands to there."""
        if anchor is not None:
            self.anchors[anchor] = (node, size, height)
        if not self.stack:
            self.root = node
            return
        parent = self.stack[-1]
        if height and len(self.stack) + height > MAX_DEPTH:
            raise self.fail(event, f"nesting deeper than {MAX_DEPTH} levels through an alias; the limit is {MAX_DEPTH}")
        parent[2].append(node)
        parent[3] += size
        if height > parent[4]:
            parent[4] = height
        if parent[3] > MAX_NODES:
            counted = f"{about(parent[3])} by this line, aliases expanded where used"
            what = f"the document has more than {MAX_NODES} nodes ({counted}); the limit is {MAX_NODES}"
            raise self.fail(event, what)


#: What each event does (a class-level table: bound methods kept on the instance would make a reference cycle,
#: and the cyclic collector would then have to find 100,000 dead nodes instead of reference counting freeing them).
_HANDLERS: dict[type, Callable[[_Composer, Any], None]] = {
    yaml.ScalarEvent: _Composer.scalar,
    yaml.AliasEvent: _Composer.alias,
    yaml.SequenceStartEvent: _Composer.start,
    yaml.MappingStartEvent: _Composer.start,
    yaml.SequenceEndEvent: _Composer.end,
    yaml.MappingEndEvent: _Composer.end,
    yaml.DocumentStartEvent: _Composer.document,
}


def compose_document(path: Path, text: str) -> yaml.Node | None:
    """The one document of ``text`` as nodes (None when empty); a syntax error or a bound crossed is raised."""
    composer = _Composer(path)
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            composer.feed(event)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise MatrixError([f"{path}:{line}: (yaml): syntax error: {_one_line(problem)}"]) from None
    return composer.root


def _one_line(text: str) -> str:
    """A parser's message as one line: it may quote the offending characters, line breaks included."""
    return " ".join(repr(text)[1:-1].split())[:200]
