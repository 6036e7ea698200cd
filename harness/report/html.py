"""``report.html``: one self-contained file (no CDN, no network), verdicts and their reasons on the first screen.

Then the status heatmap with the same "changed" marking as the Markdown, the relay grids, the history, the
per-scenario details and the resolved versions. Every printed value passes ``clean_text`` (jinja2 ``finalize``)
and is escaped by jinja2's autoescape, because error messages and names come from results.

The page stays bounded however large the run (about ``PAGE_BUDGET`` bytes): the heatmap has one small cell per
environment x scenario up to ``HEATMAP_CELLS`` and a per-scenario summary beyond; a relay grid too large to read
lists its problem pairs; the paths' articles shrink (full, then without error texts, then only named) past
``ARTICLE_BUDGET``. A cell's details are not markup at all: they travel as compact JSON in a
``<script type="application/json">`` block (escaped by jinja2's ``htmlsafe_json_dumps``, so no text in it can close
the block) and are built on demand, with ``textContent`` only, when a scenario's details are opened. They fill what
the rest of the page leaves of the budget, the broken and changed cells first; the page says how many were left out
(every cell is in full in its environment's results file).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from harness.judge import Reason, Verdict
from harness.report.cleaning import clean
from harness.report.common import (
    BROKEN,
    KEY_PACKAGES,
    by_severity,
    cells_by_id,
    changed_cells,
    compared_with,
    counts_text,
    ordered,
    release_lines,
    scenario_ids,
    titles,
)
from harness.report.relay import LEGEND, Grid, relay_grids
from harness.results import CheckResult, EnvironmentResult, RecordSummary, ScenarioResult, now_iso
from harness.worker.protocol import STATUSES

__all__ = ["ARTICLE_BUDGET", "HEATMAP_CELLS", "PAGE_BUDGET", "render_html"]

#: The page's size in bytes that the cell details may fill up to (the rest of the page is bounded on its own).
PAGE_BUDGET = 4_800_000
#: Environment x scenario cells up to which the heatmap has a cell each; beyond, a summary row per scenario.
HEATMAP_CELLS = 25_000
#: Bytes of path articles (the reasons of paths that are not GO) before the later ones shrink.
ARTICLE_BUDGET = 1_200_000
#: A relay grid larger than this (producers x consumers) lists its problem pairs instead, at most ``RELAY_PAIRS``.
RELAY_GRID_CELLS = 2_500
RELAY_PAIRS = 300
#: History rows shown (the full trend is in history/trend.json).
TREND_ROWS = 300
#: Longest message, check numbers and record value a cell's details carry.
_MESSAGE_CHARS, _NUMBERS_CHARS, _VALUE_CHARS = 2_000, 200, 80
_DETAIL_MARK = "<!-- cell details -->"
#: How a scenario's cells are counted, in this order ("changed": passes but behaves differently; "none": not run).
_COUNTED = ("pass", "changed", *(s for s in STATUSES if s != "pass"), "none")


@dataclass
class PathView:
    """One verdict as the template shows it: its reasons by severity, its anchor and badge."""

    verdict: Verdict
    anchor: str
    css: str
    counts: str
    groups: dict[str, list[Reason]]
    folded: list[tuple[str, str]]


def _path_view(index: int, verdict: Verdict) -> PathView:
    named = titles(verdict)
    folded = [(severity, named[severity]) for severity in ("warning", "fixed", "waived", "info")]
    groups = by_severity(verdict.reasons)
    return PathView(verdict, f"path-{index}", f"v-{verdict.verdict}", counts_text(verdict) + ".", groups, folded)


@dataclass(slots=True)  # one per cell of the run
class HeatCell:
    """One heatmap cell: its colour, the status it shows (``Δ`` when a passing cell behaves differently), its tip."""

    css: str
    status: str
    label: str
    changed: bool
    tip: str


@dataclass
class ScenarioRow:
    """One scenario across the environments: the heatmap row (or its summary) and the index of its details."""

    index: int
    sid: str
    cells: list[ScenarioResult | None]
    heat: list[HeatCell]
    counts: dict[str, int]
    broken_in: list[str]

    def heat_html(self) -> Any:
        """The row's heatmap cells as markup, what the template would write for each (every value cleaned, then
        escaped, as ``_finalize`` and autoescaping do): a run of 10,000 cells was 80,000 template outputs, most of
        the page's time and, as chunks joined at the end, of its memory."""
        import markupsafe

        return markupsafe.Markup("".join(map(_heat_td, self.heat)))


def _shown(value: str) -> str:
    """A value as the template prints it: cleaned (``_finalize``), then escaped (autoescaping)."""
    import markupsafe

    return str(markupsafe.escape(clean(value)))


def _heat_td(c: HeatCell) -> str:
    changed = f' data-status="{_shown(c.status)}" data-changed="1"' if c.changed else ""
    tip = f' title="{_shown(c.tip)}"' if c.tip else ""
    return f'<td class="cell {_shown(c.css)}"{changed}{tip}>{_shown(c.label)}</td>'


def _heat_cell(cell: ScenarioResult | None, delta: bool, baseline: str | None) -> HeatCell:
    if cell is None:
        return HeatCell("s-none", "none", "—", False, "not run")
    tip = cell.message[:300]
    if delta:
        tip = f"{tip}{' ' if tip else ''}(behaves differently from {baseline})"
        return HeatCell("s-changed", cell.status, f"{cell.status} Δ", True, tip)
    return HeatCell(f"s-{cell.status}", cell.status, cell.status, False, tip)


def _scenario_rows(
    docs: dict[str, EnvironmentResult], envs: list[str], changed: dict[str, set[str]], compared: dict[str, str]
) -> list[ScenarioRow]:
    by_id = cells_by_id(docs)
    rows = []
    for index, sid in enumerate(scenario_ids(docs)):
        cells = [by_id[env].get(sid) for env in envs]
        heat = [
            _heat_cell(
                cell, bool(cell and cell.status not in BROKEN and sid in changed.get(env, ())), compared.get(env)
            )
            for env, cell in zip(envs, cells, strict=True)
        ]
        broken = [f"{env} ({h.status})" for env, h in zip(envs, heat, strict=True) if h.status in BROKEN]
        rows.append(ScenarioRow(index, sid, cells, heat, _counts(heat), broken))
    return rows


def _counts(heat: list[HeatCell]) -> dict[str, int]:
    """How many of a scenario's cells ended how, in ``_COUNTED`` order, the statuses none ended in left out."""
    counts = dict.fromkeys(_COUNTED, 0)
    for cell in heat:
        key = "changed" if cell.changed else cell.status
        counts[key] = counts.get(key, 0) + 1
    return {key: n for key, n in counts.items() if n}


# ------------------------------------------------------------------------------------------- cell details


def _encoder(
    default: Callable[[Any], Any] | None = None, separators: tuple[str, str] = (",", ":"), sort_keys: bool = False
) -> Callable[[Any], str]:
    """``json.dumps(value, separators=..., default=..., sort_keys=...)`` as one function made once.

    ``json.dumps`` with any option, and ``JSONEncoder.encode`` too, builds the C encoder again for every call: most
    of the cost of the thousands of small values a run's details are sized and shown by. This builds it once with
    the options ``JSONEncoder`` gives it (no circular check: these values are trees read from JSON); where the C
    encoder is missing, it is ``JSONEncoder.encode``, the same text."""
    from json import encoder

    options = json.JSONEncoder(default=default, separators=separators, sort_keys=sort_keys)
    make = getattr(encoder, "c_make_encoder", None)  # typeshed does not list it
    if make is None:  # pragma: no cover - CPython always has it
        return options.encode
    item, key = separators
    made = make(None, options.default, encoder.encode_basestring_ascii, None, key, item, sort_keys, False, True)
    return lambda value: "".join(made(value, 0))


_SHOWN = _encoder(default=str)
_COMPACT = _encoder()
#: What the templates' ``tojson`` calls: ``json.dumps`` with jinja2's default ``sort_keys=True``.
_SORTED = _encoder(separators=(", ", ": "), sort_keys=True)


def _template_dumps(value: Any, **options: Any) -> str:
    """The ``json.dumps`` jinja2's ``tojson`` filter calls (its policy ``json.dumps_function``), the encoder made once
    for the options it always passes."""
    return _SORTED(value) if options == {"sort_keys": True} else json.dumps(value, **options)


def _numbers(values: dict[str, Any]) -> str:
    return _SHOWN(values)[:_NUMBERS_CHARS]


def _record_row(record: RecordSummary) -> list[str]:
    shape = f"{record.dtype or ''} {record.shape if record.shape is not None else ''}".strip()
    stats = ""
    if record.min is not None and record.max is not None and record.mean is not None:
        stats = f"{record.min:.4g} / {record.max:.4g} / {record.mean:.4g}"
    value = record.value
    shown = _SHOWN(value)[:_VALUE_CHARS] if value is not None else ""
    return [clean(record.name), record.kind, shape, stats, clean(shown) or record.sha256[:16]]


def _check_row(check: CheckResult) -> list[Any]:
    return [clean(check.name), check.ok, clean(f"{_numbers(check.values)} {check.message}".strip())]


def _priority(cell: ScenarioResult, changed: bool) -> int:
    """Which details the budget keeps first: broken cells, then changed ones, then passes, then skips."""
    if cell.status in BROKEN:
        return 0
    if changed:
        return 1
    return 3 if cell.status == "skip" else 2


def _compact(value: Any) -> str:
    return _COMPACT(value)


@dataclass(frozen=True)
class _Row:
    """A check's or record's row in the details: what names it within a scenario, its cells and its JSON size."""

    key: Hashable
    cells: list[Any]
    size: int


class _Rows:
    """Each check's and record's row, built once per object: ``load_run`` holds a check or record read alike in
    many cells as one object, so most cells' rows are looked up, not built and sized again. The objects are kept
    with their rows, so an id stays theirs while this lives (one page)."""

    def __init__(self) -> None:
        self.made: dict[int, tuple[object, _Row]] = {}

    def check(self, check: CheckResult) -> _Row:
        if id(check) not in self.made:
            cells = _check_row(check)
            self.made[id(check)] = (check, _Row(tuple(cells), cells, len(_compact(cells)) + 1))
        return self.made[id(check)][1]

    def record(self, record: RecordSummary) -> _Row:
        if id(record) not in self.made:
            cells = _record_row(record)
            self.made[id(record)] = (record, _Row(_record_key(record), cells, len(_compact(cells)) + 1))
        return self.made[id(record)][1]


class _Shared:
    """The check or record rows of one scenario, each distinct row once: across environments most cells hold the
    same records (a compatibility matrix mostly agrees), so a cell's details name its rows by index."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.index: dict[Hashable, int] = {}

    def refer(self, row: _Row) -> tuple[int, int]:
        """The index of the row (added the first time), and the bytes it adds to the JSON (none when an earlier
        cell has it)."""
        if row.key in self.index:
            return self.index[row.key], 0
        self.index[row.key] = len(self.rows)
        self.rows.append(list(row.cells))
        return self.index[row.key], row.size


def _record_key(record: RecordSummary) -> Hashable:
    """What a record's row shows, its value named by its sha256 (as drift and history name it): the same record in
    another environment is not serialized again."""
    shape = tuple(record.shape) if record.shape is not None else None
    return (record.name, record.kind, record.sha256, record.dtype, shape, record.min, record.max, record.mean)


class _Json(str):
    """Text that is already compact JSON: a cell's details, encoded once to be sized and kept as text to be written
    (``_payload``), instead of kept as lists and encoded again."""


def _detail(cell: ScenarioResult, checks: _Shared, records: _Shared, made: _Rows) -> tuple[_Json, int]:
    """A cell's details as compact JSON (seconds, message, its check and record rows) and their cost in bytes."""
    check_refs = [checks.refer(made.check(check)) for check in cell.checks]
    record_refs = [records.refer(made.record(record)) for record in cell.records]
    seconds = round(cell.duration_s, 3) if cell.duration_s is not None else None
    message = clean(cell.message[:_MESSAGE_CHARS])
    entry = _Json(_compact([seconds, message, [i for i, _ in check_refs], [i for i, _ in record_refs]]))
    return entry, len(entry) + sum(cost for _, cost in check_refs) + sum(cost for _, cost in record_refs)


def _payload(data: dict[str, Any]) -> str:
    """``json.dumps(data, separators=(",", ":"))`` for the details data, whose cell entries are ``_Json`` text: the
    same JSON, each entry written as it was encoded."""
    parts = []
    for key, value in data.items():
        if key == "details":
            rows = (
                "{" + ",".join(f"{_compact(column)}:{entry}" for column, entry in row.items()) + "}" for row in value
            )
            parts.append(f"{_compact(key)}:[{','.join(rows)}]")
        else:
            parts.append(f"{_compact(key)}:{_compact(value)}")
    return "{" + ",".join(parts) + "}"


def _cell_data(rows: list[ScenarioRow], envs: list[str], budget: int) -> tuple[dict[str, Any], int]:
    """Every cell's status and, in priority order, the details of as many cells as fit ``budget`` bytes of JSON;
    and how many cells' details were left out (none is built past the budget)."""
    codes = {status: i for i, status in enumerate(STATUSES)}
    shared = [(_Shared(), _Shared()) for _ in rows]
    data: dict[str, Any] = {
        "envs": [clean(name) for name in envs],
        "statuses": list(STATUSES),
        "rows": [[codes.get(c.status, -1) if c else -1 for c in row.cells] for row in rows],
        "details": [{} for _ in rows],
        "checks": [checks.rows for checks, _ in shared],
        "records": [records.rows for _, records in shared],
    }
    wanted = sorted(
        (_priority(cell, heat.changed), row.index, column, cell)
        for row in rows
        for column, (cell, heat) in enumerate(zip(row.cells, row.heat, strict=True))
        if cell is not None
    )
    used, made = len(_compact(data)), _Rows()
    for kept, (_, index, column, cell) in enumerate(wanted):
        entry, cost = _detail(cell, *shared[index], made)
        used += cost + len(str(column)) + 4  # "column":entry,
        if used > budget:
            return data, len(wanted) - kept  # the rows this last cell added stay: a few bytes no cell names
        data["details"][index][str(column)] = entry
    return data, 0


# ------------------------------------------------------------------------------------------------- rendering


def _finalize(value: Any) -> Any:
    """Control characters out of every printed string (escaping stays jinja2's, markup stays markup)."""
    import markupsafe

    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(clean(str(value)))
    return clean(value) if isinstance(value, str) else value


@cache
def _environment() -> Any:
    """One jinja2 environment per process, so its templates are compiled once (``gonogo`` renders a page per path)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        bytecode_cache=_template_cache(),
    )
    environment.policies["json.dumps_function"] = _template_dumps
    return environment


def _template_cache() -> Any:
    """The templates compiled by an earlier command, as ``.pyc`` files keep imports (``_cache/templates`` in the
    state folder, beside the cell cache): compiling them took 0.15 s of every ``report`` and ``gonogo``.

    jinja2 keys each entry by the template's name and a checksum of its source and refuses one written by another
    jinja2 or Python, so an edited template is compiled again. The entries are code, trusted as the state folder's
    venvs and ``.pyc`` files are (whoever can write there runs code as this user anyway). A cache that cannot be
    made, read or written is no cache, never an error: the templates are then compiled as before."""
    import jinja2

    from harness import workspace

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # unreadable or corrupt (pickle and marshal say so many ways): compiled afresh
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    folder = workspace.state_dir() / "_cache" / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return QuietCache(str(folder))


def _articles(env: Any, paths: list[PathView]) -> tuple[list[str], list[PathView]]:
    """Each path that is not GO in full while ``ARTICLE_BUDGET`` lasts, then without its error texts; the paths
    past even that are only named (their reasons are in gonogo/<A>__<B>.json)."""
    import markupsafe

    template = env.get_template("path.html.j2")
    articles: list[str] = []
    unshown: list[PathView] = []
    used = 0
    for view in (p for p in paths if p.verdict.verdict != "GO"):
        for full in (True, False):
            text = markupsafe.Markup(template.render(p=view, full=full))
            if used + len(text) <= ARTICLE_BUDGET:
                articles.append(text)
                used += len(text)
                break
        else:
            unshown.append(view)
    return articles, unshown


def _relay_view(grid: Grid) -> dict[str, Any]:
    """A grid small enough to read as a grid, or its problem pairs (at most ``RELAY_PAIRS``) with counts."""
    if grid.size <= RELAY_GRID_CELLS:
        return {"grid": grid, "pairs": None}
    problems = grid.problems()
    return {"grid": grid, "pairs": problems[:RELAY_PAIRS], "problems": len(problems), "tried": len(grid.classes)}


def render_html(
    run_dir: Path,
    docs: dict[str, EnvironmentResult],
    order: list[str] | None = None,
    verdicts: list[Verdict] | None = None,
    flags: list[str] | None = None,
    trend: dict[str, Any] | None = None,
    releases: list[dict[str, str]] | None = None,
) -> str:
    """The run (or, from ``gonogo``, one path's two environments) as one HTML page."""
    envs, judged = ordered(docs, order), list(verdicts or [])
    compared = {env: v.baseline for env, v in compared_with(judged, envs).items()}
    rows = _scenario_rows(docs, envs, changed_cells(judged, envs), compared)
    env = _environment()
    paths = [_path_view(i, v) for i, v in enumerate(judged, start=1)]
    articles, unshown = _articles(env, paths)
    changed_trend = [e for e in (trend or {}).get("entries", []) if e["changed"]]
    page: str = env.get_template("report.html.j2").render(
        run_id=run_dir.name,
        generated=now_iso(),
        flags=flags or [],
        news=release_lines(releases or [], judged),
        envs=envs,
        docs=docs,
        key_packages=KEY_PACKAGES,
        rows=rows,
        heatmap=len(rows) * len(envs) <= HEATMAP_CELLS,
        cell_count=len(rows) * len(envs),
        statuses=_COUNTED[2:],
        paths=paths,
        articles=articles,
        unshown=unshown,
        verdicts=judged,
        compared=compared,
        relay_views=[_relay_view(g) for g in relay_grids(docs, envs)],
        relay_legend=LEGEND,
        trend=trend,
        trend_rows=changed_trend[:TREND_ROWS],
        trend_more=max(0, len(changed_trend) - TREND_ROWS),
    )
    data, left_out = _cell_data(rows, envs, PAGE_BUDGET - len(page.encode()))
    return page.replace(_DETAIL_MARK, _detail_block(data, left_out), 1)


def _detail_block(data: dict[str, Any], left_out: int) -> str:
    """The details as JSON in a script block that no text inside can close (``htmlsafe_json_dumps`` escapes
    ``<``, ``>``, ``&`` and ``'``), after the note saying how many were left out."""
    import jinja2.utils

    note = ""
    if left_out:
        note = (
            f'<p class="muted" id="details-left-out">The details of {left_out} cells are left out of this page to '
            "keep it small (passing and skipped cells first); every cell is in full in its environment's results "
            "file.</p>\n"
        )
    payload = jinja2.utils.htmlsafe_json_dumps(data, dumps=lambda value, **_: _payload(value))
    return f'{note}<script type="application/json" id="cell-data">{payload}</script>'
