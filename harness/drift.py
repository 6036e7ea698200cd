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
import struct
import zipfile
import zlib
from collections.abc import Container, Iterator, Mapping, Set
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from harness import paths
from harness.errors import ResultsError
from harness.results import EnvironmentResult, RecordSummary, ScenarioResult
from harness.sidecar import npz_key

__all__ = [
    "DEFAULT_TOLERANCES",
    "Comparisons",
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
#: The candidate's and the baseline's record values (``load_arrays``).
_ArchivePair = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


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
    return _default_tolerance(dtype)


@cache
def _default_tolerance(dtype: str) -> Tolerance:
    """One default per dtype, shared by every entry judged by it (as an override is): building a model per record
    was a tenth of measuring a run's records. Entries are read, never assigned to."""
    rtol, atol = DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0))
    return Tolerance(rtol=rtol, atol=atol, source=f"default for {dtype}")


#: The tolerance every ordering is measured with.
_ORDERING_TOLERANCE = Tolerance(rtol=0, atol=0, source="orderings match exactly")


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
    """A nested config as ``a.b.c`` -> value (a leaf is set in place: no dict is built per key)."""
    if not isinstance(value, dict):
        return {prefix.rstrip("."): value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update(_flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}.".rstrip(".")] = item
    return flat


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
    ``ResultsError``. Members are named as ``np.load`` names them (``<key>.npy`` is ``<key>``) and decoded by
    ``_NpyReader``: as ``np.load`` decodes them, pickles refused, without parsing the same header again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._decoded: dict[str, np.ndarray] = {}
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise self._error(exc) from None
        names = self._zip.namelist()
        keys = [name.removesuffix(".npy") for name in names]
        self._keys = self.names = frozenset(keys)
        self._members = dict(zip(keys, names, strict=True))
        self._members.update(zip(names, names, strict=True))  # np.load's lookup: a member's full name wins

    def _error(self, exc: BaseException) -> ResultsError:
        return ResultsError(f"{self.path}: not a readable record archive ({type(exc).__name__}: {exc})")

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        if key in self._decoded:  # an environment between two paths is compared twice: decode once
            return self._decoded[key]
        try:
            array = _NPY.decode(self._zip.read(self._members[key]))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
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


class _NpyReader:
    """``.npy`` bytes to an array, as ``np.lib.format.read_array`` (pickles refused) reads them.

    numpy parses each member's header (a Python literal) with ``ast.literal_eval``: most of decoding a small
    array. A run's records have few distinct headers (one per dtype and shape), so a header is parsed by numpy's
    own reader the first time, which also decodes that member and says what is wrong with a bad one; a member
    whose header bytes are exactly one already read is then a view of its bytes in that dtype and shape. At most
    ``limit`` headers are kept, whatever an archive holds.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.known: dict[bytes, tuple[np.dtype[Any], tuple[int, ...], bool]] = {}

    def decode(self, raw: bytes) -> np.ndarray:
        size = _header_size(raw)
        header = raw[:size] if size else b""
        known = self.known.get(header) if header else None
        if known is None:
            array: np.ndarray = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            if header and len(self.known) < self.limit:
                self.known[header] = (array.dtype, array.shape, not array.flags.c_contiguous)
            return array
        dtype, shape, fortran = known
        values = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=size)
        return values.reshape(shape[::-1]).transpose() if fortran else values.reshape(shape)


def _header_size(raw: bytes) -> int:
    """Where an ``.npy``'s data starts (magic, version, header length, header), or 0 for what is no ``.npy``."""
    if not raw.startswith(np.lib.format.MAGIC_PREFIX) or len(raw) < 12:
        return 0
    version = raw[6:8]
    if version == b"\x01\x00":
        return 10 + int.from_bytes(raw[8:10], "little")
    if version in (b"\x02\x00", b"\x03\x00"):
        return 12 + int.from_bytes(raw[8:12], "little")
    return 0


_NPY = _NpyReader()


def load_arrays(run_dir: Path, doc: EnvironmentResult) -> Mapping[str, np.ndarray]:
    """The environment's record values from its ``.npz`` (empty when it has none), decoded on demand.

    The file is the one the run folder's layout names, never a path the (untrusted) document gives; pickled
    objects are refused, and a file that is not a readable archive is a ``ResultsError`` naming it.
    """
    path = paths.records_file(run_dir, doc.environment.name)
    if not doc.records_file or not path.is_file():
        return {}
    return RecordArchive(path)


def _value(record: RecordSummary, key: str, arrays: Mapping[str, np.ndarray]) -> Any:
    """The record's values from the archive (``key`` is its ``npz_key``), else what the document holds inline."""
    if key in arrays:
        return arrays[key]
    return record.value


def _same_stored(mine: RecordSummary, theirs: RecordSummary, kind: str) -> bool:
    """Two records of ``kind``, both stored in their archives, with equal digests (over dtype, shape and bytes)."""
    return (
        mine.kind == theirs.kind == kind
        and mine.in_npz
        and theirs.in_npz
        and mine.sha256 == theirs.sha256
        and mine.dtype == theirs.dtype
        and mine.shape == theirs.shape
    )


def _same_array(mine: RecordSummary, theirs: RecordSummary) -> bool:
    """Two stored arrays whose digests match: identical without reading either."""
    return _same_stored(mine, theirs, "array")


#: Storage dtypes whose equal bytes always compare equal element by element (no NaN): an ordering of these with
#: equal digests is identical without reading it.
_EXACT_DTYPES = frozenset(["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"])


def _same_ordering(mine: RecordSummary, theirs: RecordSummary, key: str, arrays: _ArchivePair) -> bool:
    """Two stored orderings of integers whose digests match, both values in their archives (where comparing would
    read them): ``compare_orderings`` would find them equal, so they are identical without decoding either."""
    return (
        _same_stored(mine, theirs, "ordering") and mine.dtype in _EXACT_DTYPES and key in arrays[0] and key in arrays[1]
    )


def _elements(shape: list[int] | None) -> int:
    """The element count of ``shape`` as int64 arithmetic gives it (``np.prod`` wraps; a digest's shape is data)."""
    count = math.prod(shape or [])
    return (count + _INT64) % (2 * _INT64) - _INT64


_INT64 = 1 << 63


def _bits_equal(a: Any, b: Any) -> bool:
    """Two scalars that ``compare_arrays`` finds bitwise identical (same numpy dtype and bytes), found without numpy:
    floats by their bits (``0.0`` and ``-0.0`` differ, a NaN equals its own bits), ints within int64, bools."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return _FLOAT.pack(a) == _FLOAT.pack(b)
    if type(a) is int:
        return a == b and -_INT64 <= a < _INT64
    return type(a) is bool and a == b


_FLOAT = struct.Struct("<d")


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


def _identical_ordering(size: int) -> dict[str, Any]:
    """What ``compare_orderings`` says of two equal orders of ``size`` elements."""
    return {"positions_differ": 0, "kendall_tau": 1.0, "size": size}


def _array_tolerance(record: RecordSummary, scenario: str, overrides: Mapping[str, Tolerance]) -> Tolerance:
    """The dtype the scenario says the values were computed in, else their storage dtype (``Context.record``)."""
    return tolerance_for(record.precision or record.dtype or "float64", f"{scenario}::{record.name}", overrides)


def _info_verdict(mine: RecordSummary, theirs: RecordSummary) -> Verdict:
    """A record of kind ``info`` (versions, identities) is shown, never judged: identical or merely different."""
    return "identical" if mine.sha256 == theirs.sha256 else "info"


def _compare(
    mine: RecordSummary,
    theirs: RecordSummary,
    scenario: str,
    arrays: _ArchivePair,
    overrides: Mapping[str, Tolerance],
) -> tuple[Verdict, dict[str, Any], Tolerance | None]:
    if mine.kind == "info" or theirs.kind == "info":
        return _info_verdict(mine, theirs), {"old": theirs.value, "new": mine.value}, None
    if _same_array(mine, theirs):
        return "identical", _identical_metrics(_elements(mine.shape)), _array_tolerance(mine, scenario, overrides)
    key = npz_key(scenario, mine.name)
    if _same_ordering(mine, theirs, key, arrays):
        return "identical", _identical_ordering(_elements(mine.shape)), _ORDERING_TOLERANCE
    a, b = _value(mine, key, arrays[0]), _value(theirs, key, arrays[1])
    if mine.kind == "ordering" and a is not None and b is not None:
        verdict, metrics = compare_orderings(a, b)
        return verdict, metrics, _ORDERING_TOLERANCE
    if mine.kind in ("array", "scalar") and a is not None and b is not None and mine.kind == theirs.kind:
        if mine.kind == "scalar" and not all(isinstance(v, int | float) for v in (a, b)):
            return ("identical" if a == b else "changed"), {"old": b, "new": a}, None
        tolerance = _array_tolerance(mine, scenario, overrides)
        if mine.kind == "scalar" and _bits_equal(a, b):
            return "identical", _identical_metrics(1), tolerance
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
    *,
    known: Comparisons | None = None,
) -> list[DriftEntry]:
    """Every record of every scenario that has records in both environments, compared.

    ``known`` (made for these ``overrides``) remembers what a record compared with itself gave, across the calls of
    one run: a record held by many environments is compared once, not once per upgrade path.
    """
    if known is not None and not known.serves(overrides):
        known = None
    pair = _Pair(candidate, baseline, (candidate_arrays, baseline_arrays), overrides or {}, known)
    base_cells = {c.id: c for c in baseline.scenarios}
    for cell in candidate.scenarios:
        base_cell = base_cells.get(cell.id)
        if base_cell is not None and (cell.records or base_cell.records):
            pair.cell(cell, base_cell)
    return pair.entries


#: A comparison's verdict, JSON-safe metrics and tolerance.
_Result = tuple[Verdict, dict[str, Any], Tolerance | None]


def _measured(
    mine: RecordSummary,
    theirs: RecordSummary,
    scenario: str,
    arrays: _ArchivePair,
    overrides: Mapping[str, Tolerance],
) -> _Result:
    verdict, metrics, tolerance = _compare(mine, theirs, scenario, arrays, overrides)
    return verdict, _clean_metrics(metrics), tolerance


class Comparisons:
    """What comparing a record with itself gave, remembered over the upgrade paths of one run.

    ``load_run`` holds a record read alike in many environments as one object, so the same object meets itself on
    every path through those environments (a nightly matrix mostly agrees): it is compared on the first and looked
    up after. Only comparisons that read no value from an archive are remembered (those depend on the record alone;
    the key says whether each side's archive has the record, as that decides where its value comes from), so what
    is kept is small beside the documents it points into.
    """

    def __init__(self, overrides: Mapping[str, Tolerance] | None = None) -> None:
        self.overrides = overrides
        self._known: dict[tuple[int, str, bool, bool], tuple[RecordSummary, _Result]] = {}
        self._shown: dict[int, tuple[RecordSummary, Any]] = {}

    def serves(self, overrides: Mapping[str, Tolerance] | None) -> bool:
        """Whether these are the tolerances its results were measured with."""
        return overrides is self.overrides or not (overrides or self.overrides)

    def itself(self, record: RecordSummary, scenario: str, arrays: _ArchivePair) -> _Result:
        """``record`` (of ``scenario``) compared with itself between the archives ``arrays``."""
        key = f"{scenario}::{record.name}"  # npz_key, written out: this runs for most records of a run
        stored = key in _names(arrays[0]), key in _names(arrays[1])
        lookup = (id(record), scenario, *stored)
        known = self._known.get(lookup)
        if known is not None:
            return known[1]
        result = _measured(record, record, scenario, arrays, self.overrides or {})
        if record.kind == "info" or not any(stored) or _same_array(record, record):
            self._known[lookup] = (record, result)  # the record is kept too: its id stays its own
        elif _same_ordering(record, record, key, arrays):
            self._known[lookup] = (record, result)
        return result

    def info(self, mine: RecordSummary, theirs: RecordSummary) -> _Result:
        """Two records of which one is an ``info``, as ``_measured`` gives them: each side's value made JSON-safe
        once per record (an environment's versions differ from its neighbours', so these pairs are rarely alike)."""
        return _info_verdict(mine, theirs), {"old": self._value(theirs), "new": self._value(mine)}, None

    def _value(self, record: RecordSummary) -> Any:
        if id(record) not in self._shown:
            self._shown[id(record)] = (record, _clean(record.value))
        return self._shown[id(record)][1]


def _names(arrays: Mapping[str, np.ndarray]) -> Container[str]:
    """What ``key in arrays`` asks, as the archive's set of names (a lookup, not a method call per record)."""
    return arrays.names if isinstance(arrays, RecordArchive) else arrays


_FLAKY_DETAIL = "differs between repeats of the same environment"


def _entry(fields: dict[str, Any], given: set[str]) -> DriftEntry:
    """A ``DriftEntry`` of ``fields`` (every field, in order), ``given`` naming those a caller would have passed,
    made without validating: measuring builds every field itself from validated documents (names, kinds), its own
    verdicts and JSON-safe metrics, which validation would only have copied, at twice the cost, for each of a run's
    records. A test holds it equal to the validated entry."""
    return unvalidated(DriftEntry, fields, given)


def unvalidated(cls: type[_M], fields: dict[str, Any], given: Set[str]) -> _M:
    """A model of ``cls`` holding ``fields`` (every field, in declaration order), ``given`` those a caller would have
    passed, made as pydantic's ``model_construct`` makes one: for values a caller built from validated ones, where
    validating again would only copy them (each caller's test holds the result equal to the validated model)."""
    model = cls.__new__(cls)
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(given))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


_set = object.__setattr__
_M = TypeVar("_M", bound=BaseModel)
#: The fields a comparison's entry is given, and those of an entry without values (flaky, missing, added).
_COMPARED = {"environment", "baseline", "scenario", "record", "kind", "verdict", "metrics", "tolerance"}
_NOTED = {"environment", "baseline", "scenario", "record", "kind", "verdict"}


class _Pair:
    """The entries of one candidate against one baseline, built cell by cell (``measure``)."""

    def __init__(
        self,
        candidate: EnvironmentResult,
        baseline: EnvironmentResult,
        arrays: _ArchivePair,
        overrides: Mapping[str, Tolerance],
        known: Comparisons | None,
    ) -> None:
        self.names = {"environment": candidate.environment.name, "baseline": baseline.environment.name}
        self.flaky = set(candidate.flaky) | set(baseline.flaky)
        self.arrays, self.overrides, self.known = arrays, overrides, known
        self.entries: list[DriftEntry] = []

    def cell(self, cell: ScenarioResult, base_cell: ScenarioResult) -> None:
        """The entries of one scenario, its records in name order (a name held twice: the last one counts)."""
        mine = {r.name: r for r in cell.records}
        theirs = {r.name: r for r in base_cell.records}
        for name in sorted(mine.keys() | theirs.keys()) if mine.keys() != theirs.keys() else sorted(mine):
            ours, base = mine.get(name), theirs.get(name)
            if self.flaky and f"{cell.id}::{name}" in self.flaky:
                self._noted(cell.id, ours or base, "flaky", _FLAKY_DETAIL)  # type: ignore[arg-type]
            elif ours is None:
                if cell.status == base_cell.status:  # a record that vanished without the cell changing status
                    self._noted(cell.id, base, "missing")  # type: ignore[arg-type]
            elif base is None:
                self._noted(cell.id, ours, "added")
            else:
                self._compared(cell.id, ours, base)

    def _fields(self, scenario: str, record: RecordSummary) -> dict[str, Any]:
        return {**self.names, "scenario": scenario, "record": record.name, "kind": record.kind}

    def _noted(self, scenario: str, record: RecordSummary, verdict: Verdict, detail: str = "") -> None:
        """An entry without numbers: the record is flaky, missing on the candidate or new there."""
        fields = self._fields(scenario, record)
        fields.update(verdict=verdict, metrics={}, tolerance=None, detail=detail)
        self.entries.append(_entry(fields, _NOTED | {"detail"} if detail else _NOTED))

    def _compared(self, scenario: str, ours: RecordSummary, base: RecordSummary) -> None:
        if self.known is None:
            verdict, metrics, tolerance = _measured(ours, base, scenario, self.arrays, self.overrides)
        elif ours is base:
            verdict, metrics, tolerance = self.known.itself(ours, scenario, self.arrays)
        elif ours.kind == "info" or base.kind == "info":
            verdict, metrics, tolerance = self.known.info(ours, base)
        else:
            verdict, metrics, tolerance = _measured(ours, base, scenario, self.arrays, self.overrides)
        names = self.names
        fields = {
            "environment": names["environment"],
            "baseline": names["baseline"],
            "scenario": scenario,
            "record": ours.name,
            "kind": ours.kind,
            "verdict": verdict,
            "metrics": dict(metrics),
            "tolerance": tolerance,
            "detail": "",
        }
        self.entries.append(_entry(fields, _COMPARED))


def _clean_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``_clean(metrics)``, but metrics that are already JSON-safe (str keys, plain finite numbers and text: every
    identical record's) are returned as they are instead of rebuilt."""
    for key, value in metrics.items():
        if type(key) is not str or not (type(value) in _PLAIN or (type(value) is float and math.isfinite(value))):
            cleaned: dict[str, Any] = _clean(metrics)
            return cleaned
    return metrics


_PLAIN = frozenset([int, str, bool, type(None)])


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
