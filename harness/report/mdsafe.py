"""Untrusted text into Markdown, and the Markdown into GitHub's size limit.

Error messages, environment and scenario names come from results, so they are never trusted: control characters
are stripped (``clean_text``), and nothing may leave the table cell, code span or fenced block it is put in, nor
inject HTML into a PR comment. The report must also fit a PR comment (65,536 characters), so it is assembled from
sections that each know shorter forms of themselves (``fit``), and the least important ones shrink first.
"""

from __future__ import annotations

import html as html_module
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import overload

from harness.report.cleaning import clean

__all__ = [
    "LIMIT",
    "POINTER",
    "TOO_LONG",
    "LazyForms",
    "Section",
    "code",
    "fence",
    "fit",
    "html",
    "line",
    "size",
    "text",
    "truncate",
]

#: Bytes of UTF-8, which is never fewer than the UTF-16 units GitHub counts against its 65,536 limit.
LIMIT = 65_000
POINTER = "see report.html"
_NEWLINES = re.compile(r"\r\n|\r|\n")
#: What could format, link or break a table: ``_`` only at a word's edge (``pickle_default_load`` stays readable).
_MARKUP = re.compile(r"([\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_BACKTICKS = re.compile(r"`+")


def size(markdown: str) -> int:
    return len(markdown.encode("utf-8"))


#: Every character ``text`` changes anywhere (line breaks, HTML's and Markdown's); a text holding none of them, and
#: not starting or ending with one of ``_EDGE_CHARACTERS``, is its own result.
_TEXT_CHANGES = re.compile(r"[\r\n&<\\`*\[\]|~_]")
#: What opens a block at the start of a line: an ordered list (``1.``, ``1)``), a heading, a bullet, a thematic break
#: or setext underline (``--``, ``==``: a line of them after a paragraph's line makes it a heading), a quote. A text
#: may be the first thing on its line (a reason's summary is), or follow ``- `` (``- --`` is a thematic break).
_BLOCK_START = re.compile(
    r"^(?:(?P<digits>\d{1,9})(?P<mark>[.)])(?=[ \t]|$)"
    r"|(?P<sign>#{1,6}(?=[ \t]|$)|[-+](?=[ \t]|$)|-(?=-)|[=>]))"
)
#: How a text whose first character is one of these may begin a block, and one starting or ending in a blank be
#: indented code or end in a line break: such a text is looked at closer.
_EDGE_CHARACTERS = frozenset("#>+=-0123456789 \t")


def text(value: object, *, whole: bool = True) -> str:
    """Plain text that stays plain in a paragraph (any of its lines), list item or table cell: no markup, no HTML,
    one line, no blanks at its ends. A ``>`` is escaped only at the start, where it opens a quote (once every ``<``
    is escaped, that is all it can do): ``A -> B`` reads the same in a terminal as on a rendered page.

    ``whole=False``: a piece of a line that other pieces join (``catalogue._prose``, between code spans): its blanks
    are kept and its start is not a line's."""
    cleaned = clean(str(value))
    if _TEXT_CHANGES.search(cleaned) is None and not (whole and _at_edges(cleaned)):  # most names: nothing to do
        return cleaned
    one_line = _NEWLINES.sub(" ", cleaned)
    if whole:
        one_line = one_line.strip()
    escaped = _MARKUP.sub(r"\\\1", one_line.replace("&", "&amp;").replace("<", "&lt;"))
    return _BLOCK_START.sub(_escaped_block_start, escaped, count=1) if whole else escaped


def _at_edges(cleaned: str) -> bool:
    return bool(cleaned) and (cleaned[0] in _EDGE_CHARACTERS or cleaned[-1] in " \t")


def _escaped_block_start(match: re.Match[str]) -> str:
    """``1.`` as ``1\\.``, ``#`` as ``\\#``: the character that would open the block, backslash-escaped."""
    if match["digits"]:
        return f"{match['digits']}\\{match['mark']}"
    return f"\\{match['sign']}"


def line(value: str, which: int = 0, limit: int = 200) -> str:
    """One line of a multi-line text (0 the first, -1 the last: a traceback's cause), cleaned, at most ``limit``."""
    lines = [part for part in _NEWLINES.split(clean(value)) if part.strip()]
    return lines[which][:limit] if lines else ""


def html(value: object) -> str:
    """Text inside raw HTML of the Markdown (``<summary>``), where Markdown escapes would show as backslashes."""
    return html_module.escape(_NEWLINES.sub(" ", clean(str(value))))


def code(value: object) -> str:
    """An inline code span that no backtick, newline or ``|`` in ``value`` can close or break out of a table."""
    one_line = _NEWLINES.sub(" ", clean(str(value))).replace("`", "'").replace("|", "\\|")
    return f"`{one_line}`" if one_line.strip() else "` `"


def truncate(value: str, limit: int) -> str:
    """Head and tail of a long text (a traceback's cause is at its end), cut at line ends where lines are short,
    with how much was cut and where the rest is."""
    if len(value) <= limit:
        return value
    head_end, tail_start = limit // 3, len(value) - (limit - limit // 3)
    newline = value.rfind("\n", 0, head_end)
    head_end = newline if newline > head_end // 2 else head_end
    newline = value.find("\n", tail_start)
    tail_start = newline + 1 if 0 <= newline < tail_start + 200 else tail_start
    cut = tail_start - head_end
    return f"{value[:head_end]}\n[… {cut} characters cut, {POINTER} for the full text …]\n{value[tail_start:]}"


def fence(value: str, info: str = "text", limit: int | None = None) -> list[str]:
    """A fenced block longer than any backtick run inside, so the text can never close it early."""
    body = clean(value)
    body = truncate(body, limit) if limit is not None else body
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    marker = "`" * max(3, longest + 1)
    return [f"{marker}{info}", *_NEWLINES.split(body), marker]


#: A form that is known to exceed any limit without being built (a relay grid of 1,000 x 1,000 environments): it is
#: never chosen, so building it would only cost time and memory.
TOO_LONG = None
#: The size ``fit`` counts for a ``TOO_LONG`` form: more than any report, still an exact integer to add and subtract.
_TOO_LONG_SIZE = 1 << 62


class LazyForms(Sequence[str]):
    """A section's forms, each built the first time ``fit`` asks for it (and kept).

    A report of a hundred upgrade paths has six forms of each; most paths of a small run never shrink, and those of
    a large one stop at the form that fits, so building every form up front was most of the Markdown's time.
    """

    def __init__(self, count: int, build: Callable[[int], str]) -> None:
        self._build = build
        self._built: list[str | None] = [None] * count

    def __len__(self) -> int:
        return len(self._built)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = range(len(self._built))[index]  # IndexError past the end, as a list would raise
        form = self._built[position]
        if form is None:
            form = self._built[position] = self._build(position)
        return form


@dataclass
class Section:
    """One part of a report: its renderings from fullest to shortest; the last one is the floor (never ``TOO_LONG``)."""

    forms: Sequence[str | None]
    level: int = 0

    @property
    def current(self) -> str:
        return self.forms[self.level] or ""

    @property
    def current_size(self) -> int:
        form = self.forms[self.level]
        return _TOO_LONG_SIZE if form is None else size(form)

    def shrink(self) -> bool:
        if self.level + 1 >= len(self.forms):
            return False
        self.level += 1
        return True


def fit(sections: list[Section], shrink_order: list[int], limit: int = LIMIT) -> str:
    """Join ``sections``, shrinking one section by one step per entry of ``shrink_order`` (least important first)
    until the whole fits ``limit``; an index listed twice shrinks twice.

    The sizes are kept per section and summed (the UTF-8 size of a join is the sum of its parts), so a report of
    a thousand sections is not joined again at every step.
    """
    sizes = [section.current_size for section in sections]
    total = sum(sizes)
    for index in shrink_order:
        if total <= limit:
            break
        if sections[index].shrink():
            total -= sizes[index]
            sizes[index] = sections[index].current_size
            total += sizes[index]
    if total <= limit:
        return "".join(section.current for section in sections)
    kept: list[str] = []
    used = 0
    for section, section_size in zip(sections, sizes, strict=True):
        if used + section_size > limit - 200:  # the floor of every section is still too long: keep whole ones
            break
        kept.append(section.current)
        used += section_size
    return "".join(kept) + f"\n**This report was cut to fit {limit:,} characters: {POINTER}.**\n"
