"""Drift measurement: each record of an environment against the same record in the baseline. Measures, never judges.

Numeric arrays (and scalars): bitwise identical / within tolerance / beyond, with max abs error, max rel error, max
ULP distance, cosine similarity and the share of elements beyond tolerance; NaN and inf are compared by position
and counted, never crashed on. Orderings: positions that differ and Kendall's tau. Configs: changed keys with
old -> new. API maps: symbols added, removed, moved (same name, other namespace) and newly deprecated. Calls (one
API call with the keywords under test): the config difference plus the outcome before and after, and the candidate's
error or warning. Warnings: the texts new on the candidate and those it no longer raises, per call. Records of kind
``info`` (versions, identities) are shown, never judged.

Default tolerances per dtype are those of ``torch.testing.assert_close`` (a documented, widely used choice):
float16 rtol 1e-3 / atol 1e-5, bfloat16 1.6e-2 / 1e-5, float32 1.3e-6 / 1e-5, float64 1e-7 / 1e-7; integers,
booleans and orderings must match exactly. matrix.yaml overrides them per area, scenario or record
(``drift.tolerances``, patterns over ``<scenario-id>::<record>``, first match wins).
"""

from __future__ import annotations

import fnmatch
import io
import math
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from harness import paths
from harness.errors import ResultsError
from harness.results import EnvironmentResult, RecordSummary
from harness.sidecar import npz_key

__all__ = [
    "DEFAULT_TOLERANCES",
    "DriftEntry",
    "Tolerance",
    "compare_api_maps",
    "compare_arrays",
    "compare_calls",
    "compare_configs",
    "compare_orderings",
    "compare_warnings",
    "load_arrays",
    "measure",
]

DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
}

Verdict = Literal["identical", "within", "beyond", "changed", "missing", "added", "flaky", "info"]


class Tolerance(BaseModel):
    rtol: float = Field(ge=0)
    atol: float = Field(ge=0)
    source: str = "default"


class DriftEntry(BaseModel):
    """One record of one environment compared with the baseline."""

    environment: str
    baseline: str
    scenario: str
    record: str
    kind: str
    verdict: Verdict
    metrics: dict[str, Any] = Field(default_factory=dict)
    tolerance: Tolerance | None = None
    detail: str = ""


def tolerance_for(dtype: str, key: str, overrides: Mapping[str, Tolerance]) -> Tolerance:
    """The override whose pattern matches ``<scenario>::<record>`` first, else the dtype's default."""
    for pattern, tolerance in overrides.items():
        if fnmatch.fnmatchcase(key, pattern):
            return tolerance
    rtol, atol = DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0))
    return Tolerance(rtol=rtol, atol=atol, source=f"default for {dtype}")


def _ordered_ints(values: np.ndarray) -> np.ndarray:
    """Floats as integers whose order matches the floats' order, so their difference counts ULPs."""
    widths: dict[int, type[np.signedinteger[Any]]] = {2: np.int16, 4: np.int32, 8: np.int64}
    bits = widths[values.dtype.itemsize]
    as_int = values.view(bits).astype(np.int64)
    return np.where(as_int < 0, int(np.iinfo(bits).min) - as_int, as_int)


def compare_arrays(a: Any, b: Any, rtol: float, atol: float) -> tuple[Verdict, dict[str, Any]]:
    """``a`` (candidate) against ``b`` (baseline): verdict and metrics; NaN/inf are compared by position."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return "beyond", {"shape": [list(a.shape), list(b.shape)], "detail": "shape changed"}
    if a.dtype == b.dtype and a.tobytes() == b.tobytes():
        return "identical", _identical_metrics(int(a.size))
    with np.errstate(all="ignore"):  # inf - inf and friends are expected here and handled by position
        return _compare_unequal(a, b, rtol, atol)


def _compare_unequal(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple[Verdict, dict[str, Any]]:
    common = np.result_type(a.dtype, b.dtype, np.float32) if a.dtype.kind in "biuf" else np.float64
    x, y = a.astype(common), b.astype(common)
    same_nan = np.isnan(x) & np.isnan(y)
    finite = np.isfinite(x) & np.isfinite(y)
    same_special = same_nan | (~finite & (x == y))
    nonfinite_mismatch = int((~finite & ~same_special).sum())
    diff = np.where(finite, np.abs(x.astype(np.float64) - y.astype(np.float64)), 0.0)
    scale = np.abs(y.astype(np.float64))
    beyond = (finite & (diff > atol + rtol * scale)) | (~finite & ~same_special)
    # relative to a zero baseline value, any difference is infinitely large: said as inf, not as 1e308
    rel = np.where(finite & (diff > 0), np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), np.inf), 0.0)
    metrics: dict[str, Any] = {
        "max_abs_error": float(diff.max()) if diff.size else 0.0,
        "max_rel_error": float(rel.max()) if rel.size else 0.0,
        "share_beyond": float(beyond.mean()) if beyond.size else 0.0,
        "nonfinite_mismatch": nonfinite_mismatch,
        "size": int(a.size),
    }
    if np.issubdtype(common, np.floating) and finite.any():
        ulps = np.abs(_ordered_ints(x[finite]) - _ordered_ints(y[finite]))
        metrics["max_ulp"] = int(ulps.max())
    xf, yf = x[finite].astype(np.float64), y[finite].astype(np.float64)
    norms = float(np.linalg.norm(xf) * np.linalg.norm(yf))
    metrics["cosine"] = float(np.dot(xf, yf) / norms) if norms > 0 else (1.0 if not xf.any() and not yf.any() else 0.0)
    return ("beyond" if beyond.any() else "within"), metrics


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau between two orders of the same elements (1: same order, -1: reversed)."""
    position = {value: i for i, value in enumerate(b.tolist())}
    ranks = np.array([position[value] for value in a.tolist()], dtype=np.int64)
    n = len(ranks)
    if n < 2:
        return 1.0
    upper = np.triu_indices(n, 1)
    signs = np.sign(ranks[upper[1]] - ranks[upper[0]])
    return float(signs.sum() / len(signs))


def compare_orderings(a: Any, b: Any) -> tuple[Verdict, dict[str, Any]]:
    """Positions that differ and, when both hold the same elements, Kendall's tau."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape == b.shape and np.array_equal(a, b):
        return "identical", {"positions_differ": 0, "kendall_tau": 1.0, "size": int(a.size)}
    metrics: dict[str, Any] = {"size": int(a.size)}
    if a.shape == b.shape:
        metrics["positions_differ"] = int((a != b).sum())
    if sorted(a.tolist()) == sorted(b.tolist()) and len(set(a.tolist())) == a.size:
        metrics["kendall_tau"] = kendall_tau(a, b)
    else:
        metrics["detail"] = "the two orders do not hold the same elements"
    return "beyond", metrics


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def compare_configs(a: Any, b: Any) -> tuple[Verdict, dict[str, Any]]:
    """Changed keys (baseline -> candidate), added and removed keys of two (nested) configs."""
    fa, fb = _flatten(a), _flatten(b)
    changed = {k: [fb[k], fa[k]] for k in sorted(set(fa) & set(fb)) if fa[k] != fb[k]}
    added = sorted(set(fa) - set(fb))
    removed = sorted(set(fb) - set(fa))
    if not (changed or added or removed):
        return "identical", {}
    return "changed", {"changed": changed, "added": added, "removed": removed}


def compare_calls(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Verdict, dict[str, Any]]:
    """Two outcomes of one call (candidate ``a``): the config difference, ``outcome`` as [before, after], and what
    the candidate said (its error, warning or new keyword name), which the judge quotes."""
    verdict, metrics = compare_configs(a, b)
    if verdict == "identical":
        return verdict, metrics
    metrics["outcome"] = [b.get("outcome"), a.get("outcome")]
    for key in ("error", "warning", "renamed_to"):
        if a.get(key):
            metrics[key] = a[key]
    return verdict, metrics


def _warning_texts(value: Any) -> dict[str, list[str]]:
    """A warnings record as call label -> texts. A bare list is one unnamed call; a warning given as a mapping keeps
    its category, message and origins, so a warning that moved to another module reads as a new one."""
    calls = value if isinstance(value, Mapping) else {"": value}
    texts: dict[str, list[str]] = {}
    for label, items in calls.items():
        listed = items if isinstance(items, list) else [items]
        texts[str(label)] = [
            ", ".join(f"{k}={v}" for k, v in sorted(item.items())) if isinstance(item, Mapping) else str(item)
            for item in listed
        ]
    return texts


def compare_warnings(a: Any, b: Any) -> tuple[Verdict, dict[str, Any]]:
    """Warnings raised on the candidate (``a``) and not on the baseline (``new``), and the reverse (``gone``), per
    call; a reworded warning shows on both sides of one call."""
    now, before = _warning_texts(a), _warning_texts(b)
    new = {k: [t for t in v if t not in before.get(k, [])] for k, v in now.items()}
    gone = {k: [t for t in v if t not in now.get(k, [])] for k, v in before.items()}
    new, gone = {k: v for k, v in new.items() if v}, {k: v for k, v in gone.items() if v}
    if not (new or gone):
        return "identical", {}
    return "changed", {"new": new, "gone": gone}


def _present(status: Any) -> bool:
    return isinstance(status, str) and (status == "ok" or status.startswith("deprecated"))


def compare_api_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Verdict, dict[str, Any]]:
    """Symbols added, removed, moved (same last name, another namespace) and newly deprecated, candidate ``a``."""
    now = {k for k, v in a.items() if _present(v)}
    before = {k for k, v in b.items() if _present(v)}
    removed = sorted(before - now)
    added = sorted(now - before)
    moved = {old: new for old in removed for new in added if old.rsplit(".", 1)[-1] == new.rsplit(".", 1)[-1]}
    deprecated = sorted(k for k in now & before if str(a[k]).startswith("deprecated") and b[k] == "ok")
    metrics = {
        "removed": [k for k in removed if k not in moved],
        "added": [k for k in added if k not in moved.values()],
        "moved": moved,
        "newly_deprecated": deprecated,
        "removed_status": {k: a.get(k, "absent") for k in removed},
    }
    if not (removed or added or deprecated):
        return "identical", {}
    return "changed", metrics


class RecordArchive(Mapping[str, np.ndarray]):
    """An environment's ``.npz`` held as bytes, each array decoded only when a comparison asks for it.

    Most records of two runs are identical by digest and never need their values, so decoding every array up
    front was most of judging's time. A decoded array is kept (read-only) until the archive is dropped, after
    the last upgrade path through its environment. The archive's directory is read at once (a file that is not an
    archive is refused before anything is judged); a member that cannot be decoded is the same one-line
    ``ResultsError``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._decoded: dict[str, np.ndarray] = {}
        try:
            self._npz = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
            self._keys = frozenset(self._npz.files)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise self._error(exc) from None

    def _error(self, exc: BaseException) -> ResultsError:
        return ResultsError(f"{self.path}: not a readable record archive ({type(exc).__name__}: {exc})")

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        if key in self._decoded:  # an environment between two paths is compared twice: decode once
            return self._decoded[key]
        try:
            array: np.ndarray = self._npz[key]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise self._error(exc) from None
        array.flags.writeable = False  # shared by every comparison that asks for it
        self._decoded[key] = array
        return array

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


def load_arrays(run_dir: Path, doc: EnvironmentResult) -> Mapping[str, np.ndarray]:
    """The environment's record values from its ``.npz`` (empty when it has none), decoded on demand.

    The file is the one the run folder's layout names, never a path the (untrusted) document gives; pickled
    objects are refused, and a file that is not a readable archive is a ``ResultsError`` naming it.
    """
    path = paths.records_file(run_dir, doc.environment.name)
    if not doc.records_file or not path.is_file():
        return {}
    return RecordArchive(path)


def _value(record: RecordSummary, scenario: str, arrays: Mapping[str, np.ndarray]) -> Any:
    key = npz_key(scenario, record.name)
    if key in arrays:
        return arrays[key]
    return record.value


def _same_array(mine: RecordSummary, theirs: RecordSummary) -> bool:
    """Two stored arrays whose digests (over dtype, shape and bytes) match: identical without reading either."""
    return (
        mine.kind == theirs.kind == "array"
        and mine.in_npz
        and theirs.in_npz
        and mine.sha256 == theirs.sha256
        and mine.dtype == theirs.dtype
        and mine.shape == theirs.shape
    )


def _identical_metrics(size: int) -> dict[str, Any]:
    """The metrics of two equal arrays of ``size`` elements."""
    return {
        "max_abs_error": 0.0,
        "max_rel_error": 0.0,
        "max_ulp": 0,
        "cosine": 1.0,
        "share_beyond": 0.0,
        "nonfinite_mismatch": 0,
        "size": size,
    }


def _array_tolerance(record: RecordSummary, scenario: str, overrides: Mapping[str, Tolerance]) -> Tolerance:
    """The dtype the scenario says the values were computed in, else their storage dtype (``Context.record``)."""
    return tolerance_for(record.precision or record.dtype or "float64", f"{scenario}::{record.name}", overrides)


def _compare(
    mine: RecordSummary,
    theirs: RecordSummary,
    scenario: str,
    arrays: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
    overrides: Mapping[str, Tolerance],
) -> tuple[Verdict, dict[str, Any], Tolerance | None]:
    if mine.kind == "info" or theirs.kind == "info":
        return ("identical" if mine.sha256 == theirs.sha256 else "info"), {"old": theirs.value, "new": mine.value}, None
    if _same_array(mine, theirs):
        return (
            "identical",
            _identical_metrics(int(np.prod(mine.shape or [], dtype=np.int64))),
            _array_tolerance(mine, scenario, overrides),
        )
    a, b = _value(mine, scenario, arrays[0]), _value(theirs, scenario, arrays[1])
    if mine.kind == "ordering" and a is not None and b is not None:
        verdict, metrics = compare_orderings(a, b)
        return verdict, metrics, Tolerance(rtol=0, atol=0, source="orderings match exactly")
    if mine.kind in ("array", "scalar") and a is not None and b is not None and mine.kind == theirs.kind:
        if mine.kind == "scalar" and not all(isinstance(v, int | float) for v in (a, b)):
            return ("identical" if a == b else "changed"), {"old": b, "new": a}, None
        tolerance = _array_tolerance(mine, scenario, overrides)
        verdict, metrics = compare_arrays(a, b, tolerance.rtol, tolerance.atol)
        return verdict, metrics, tolerance
    if mine.kind == "api_map" and isinstance(a, dict) and isinstance(b, dict):
        verdict, metrics = compare_api_maps(a, b)
        return verdict, metrics, None
    if mine.kind == theirs.kind == "call" and isinstance(a, dict) and isinstance(b, dict):
        verdict, metrics = compare_calls(a, b)
        return verdict, metrics, None
    if mine.kind == theirs.kind == "outcomes" and isinstance(a, dict) and isinstance(b, dict):
        verdict, metrics = compare_configs(
            {str(k): str(v) for k, v in a.items()}, {str(k): str(v) for k, v in b.items()}
        )
        return verdict, metrics, None
    if mine.kind == theirs.kind == "warnings":
        verdict, metrics = compare_warnings(a, b)
        return verdict, metrics, None
    if isinstance(a, dict) and isinstance(b, dict):
        verdict, metrics = compare_configs(a, b)
        return verdict, metrics, None
    if mine.sha256 == theirs.sha256:
        return "identical", {}, None
    return "changed", {"old": b, "new": a}, None


def measure(
    candidate: EnvironmentResult,
    baseline: EnvironmentResult,
    candidate_arrays: Mapping[str, np.ndarray],
    baseline_arrays: Mapping[str, np.ndarray],
    overrides: Mapping[str, Tolerance] | None = None,
) -> list[DriftEntry]:
    """Every record of every scenario that has records in both environments, compared."""
    overrides = overrides or {}
    flaky = set(candidate.flaky) | set(baseline.flaky)
    entries: list[DriftEntry] = []
    base_cells = {c.id: c for c in baseline.scenarios}
    for cell in candidate.scenarios:
        base_cell = base_cells.get(cell.id)
        if base_cell is None or not (cell.records or base_cell.records):
            continue
        theirs = {r.name: r for r in base_cell.records}
        mine = {r.name: r for r in cell.records}
        common: dict[str, Any] = {
            "environment": candidate.environment.name,
            "baseline": baseline.environment.name,
            "scenario": cell.id,
        }
        for name in sorted(set(mine) | set(theirs)):
            kind = (mine.get(name) or theirs[name]).kind
            if f"{cell.id}::{name}" in flaky:
                entries.append(
                    DriftEntry(
                        **common,
                        record=name,
                        kind=kind,
                        verdict="flaky",
                        detail="differs between repeats of the same environment",
                    )
                )
            elif name not in mine:
                if cell.status == base_cell.status:  # a record that vanished without the cell changing status
                    entries.append(DriftEntry(**common, record=name, kind=kind, verdict="missing"))
            elif name not in theirs:
                entries.append(DriftEntry(**common, record=name, kind=kind, verdict="added"))
            else:
                verdict, metrics, tolerance = _compare(
                    mine[name], theirs[name], cell.id, (candidate_arrays, baseline_arrays), overrides
                )
                entries.append(
                    DriftEntry(
                        **common, record=name, kind=kind, verdict=verdict, metrics=_clean(metrics), tolerance=tolerance
                    )
                )
    return entries


def _clean(value: Any) -> Any:
    """JSON-safe metrics: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    return value
