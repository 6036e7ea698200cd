"""The cross-version relay as grids: one per family and format, rows producers, columns consumers.

``fallback-only`` (the plain call a user writes failed; only a fallback such as ``compile=False`` loaded it) reads
"NEEDS fallback" and is coloured as a problem: for a user it is a break with a workaround, not a load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.results import RELAY_BADNESS, EnvironmentResult, RelayResult

__all__ = ["LEGEND", "UNTRIED", "Grid", "relay_grids"]

_LABELS = {
    "loaded": "ok",
    "loaded-drifted": "DRIFT",
    "fallback-only": "NEEDS fallback",
    "optimizer-state-lost": "opt-lost",
    "skip": "skip",
}
_CSS = {
    "load-error": "s-fail",
    "fallback-only": "s-warn",
    "loaded-drifted": "s-fail",
    "optimizer-state-lost": "s-timeout",
    "loaded": "s-pass",
}
LEGEND = (
    "Per model: ok, DRIFT (loaded, predictions beyond tolerance), NEEDS fallback (the plain load failed, only a "
    "fallback loaded it), opt-lost (optimizer state lost), ERR <exception>, skip; then the largest absolute "
    "prediction error."
)


#: What a pair of environments that never tried this family and format shows: nothing to load, nothing wrong.
UNTRIED = ("—", "cell s-none", "")


@dataclass
class Grid:
    """One relay grid (a family and format): rows producers, columns consumers.

    Only the pairs that loaded something are stored (``text``, ``css`` and ``title`` answer for any pair): a run of
    many environments where each loads a few producers' artifacts must not cost producers x consumers.
    """

    title: str
    producers: list[str]
    consumers: list[str]
    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    classes: dict[tuple[str, str], str] = field(default_factory=dict)
    titles: dict[tuple[str, str], str] = field(default_factory=dict)

    def text(self, producer: str, consumer: str) -> str:
        return self.cells.get((producer, consumer), UNTRIED[0])

    def css(self, producer: str, consumer: str) -> str:
        return self.classes.get((producer, consumer), UNTRIED[1])

    def tip(self, producer: str, consumer: str) -> str:
        return self.titles.get((producer, consumer), UNTRIED[2])

    @property
    def size(self) -> int:
        """Cells of the full grid, tried or not."""
        return len(self.producers) * len(self.consumers)

    @property
    def all_ok(self) -> bool:
        """Nothing to look at: every cell loaded cleanly, was skipped, or was not tried."""
        return all(css in ("cell s-pass", "cell s-skip", "cell s-none") for css in self.classes.values())

    def problems(self) -> list[tuple[str, str]]:
        """The tried pairs that did not load cleanly, producers then consumers in the grid's order."""
        rank = {name: i for i, name in enumerate(self.producers)}
        column = {name: i for i, name in enumerate(self.consumers)}
        bad = [pair for pair, css in self.classes.items() if css not in ("cell s-pass", "cell s-skip", "cell s-none")]
        return sorted(bad, key=lambda pair: (rank[pair[0]], column[pair[1]]))


def _label(row: RelayResult) -> str:
    return f"ERR {row.error_class}" if row.outcome == "load-error" else _LABELS[row.outcome]


def relay_cell(rows: list[RelayResult]) -> tuple[str, str]:
    """Outcome counts (worst first) with the largest prediction error, and a CSS class for the worst outcome."""
    counts: dict[str, int] = {}
    badness: dict[str, int] = {}
    for row in rows:
        counts[_label(row)] = counts.get(_label(row), 0) + 1
        badness[_label(row)] = RELAY_BADNESS.get(row.outcome, -1)  # a skip is shown last
    labels = sorted(counts, key=lambda label: (-badness[label], label))  # the worst outcome first
    text = " · ".join(f"{label} {counts[label]}" if len(rows) > 1 else label for label in labels)
    errors = [r.max_abs_error for r in rows if r.max_abs_error is not None]
    if errors:
        text += f" · max {max(errors):.2g}"
    worst = max(rows, key=lambda r: RELAY_BADNESS.get(r.outcome, -1)).outcome if rows else "skip"
    return text, _CSS.get(worst, "s-skip")


def _ordered(names: set[str], envs: list[str]) -> list[str]:
    return [e for e in envs if e in names] + sorted(names - set(envs))


def _unsafe_label(rows: list[RelayResult]) -> str:
    """How a format that can run code from the file was treated: loaded only in the sandbox, or not at all."""
    if not any(r.unsafe for r in rows):
        return ""
    if any(r.sandboxed for r in rows):
        return " (unsafe: can run code from the file; loaded only in the sandbox)"
    return " (unsafe: can run code from the file; not loaded)"


def relay_grids(docs: dict[str, EnvironmentResult], envs: list[str]) -> list[Grid]:
    rows = [row for doc in docs.values() for row in doc.relay]
    grids = []
    for family, format_name in sorted({(r.family, r.format) for r in rows}):
        subset = [r for r in rows if r.family == family and r.format == format_name]
        producers = _ordered({r.producer for r in subset}, envs)
        consumers = _ordered({r.consumer for r in subset}, envs)
        unsafe = _unsafe_label(subset)
        grid = Grid(f"{family} · {format_name}{unsafe}", producers, consumers)
        pairs: dict[tuple[str, str], list[RelayResult]] = {}
        for row in subset:
            pairs.setdefault((row.producer, row.consumer), []).append(row)
        for (producer, consumer), picked in pairs.items():
            grid.cells[(producer, consumer)], css = relay_cell(picked)
            grid.classes[(producer, consumer)] = f"cell {css}"
            grid.titles[(producer, consumer)] = "; ".join(
                f"{r.model}: {r.outcome} {r.how} {r.error[:160]}".strip() for r in picked
            )
        grids.append(grid)
    return grids
