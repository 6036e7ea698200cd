"""The scenario catalogue as Markdown (``docs/SCENARIOS.md``): one table per area, from ``harness.catalogue``.

Names, reasons and record names come from results, so every printed value passes ``mdsafe`` (one line, no markup).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from harness.catalogue import CatalogueEntry
from harness.report import mdsafe

__all__ = ["render"]

#: Records listed per scenario before the rest are counted: a cell writing one record per layer stays one line.
RECORDS_SHOWN = 12


def _prose(value: str) -> str:
    """A docstring's sentence in Markdown: its reST ````literals```` become code spans, the rest stays plain text."""
    parts = value.split("``")
    if len(parts) % 2 == 0:  # an unpaired marker: no literal can be trusted, all of it is text
        return mdsafe.text(value)
    pieces = (mdsafe.code(part) if index % 2 else mdsafe.text(part, whole=False) for index, part in enumerate(parts))
    return "".join(pieces)  # in a table cell: no piece starts a line, and the blanks around the code spans stay


def _records(records: dict[str, str]) -> str:
    if not records:
        return ""
    names = [f"{mdsafe.code(name)} ({mdsafe.text(kind)})" for name, kind in sorted(records.items())]
    extra = len(names) - RECORDS_SHOWN
    return ", ".join(names[:RECORDS_SHOWN]) + (f" and {extra} more" if extra > 0 else "")


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=False,  # Markdown: every value is made safe by mdsafe's filters instead
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    env.filters.update(code=mdsafe.code, text=mdsafe.text, prose=_prose, records=_records)
    return env


def render(entries: list[CatalogueEntry], source: str, target: str) -> str:
    """The page: ``source`` says which run the observations come from, ``target`` where the page is written."""
    areas: dict[str, list[CatalogueEntry]] = {}
    for entry in entries:
        areas.setdefault(entry.area, []).append(entry)
    text: str = (
        _environment()
        .get_template("catalogue.md.j2")
        .render(entries=entries, areas=areas, source=source, target=target)
    )
    return text
