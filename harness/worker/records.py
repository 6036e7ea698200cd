"""Turn a scenario's recorded values into JSON summaries plus arrays for the sidecar ``.npz``.

Runs inside the worker (numpy is the only non-standard import, and only when an array is recorded). The summary
carries enough to spot a change at a glance (dtype, shape, sha256, min/max/mean); the full values go to the
environment's ``.npz`` so drift can be measured element by element later.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from harness.worker.arrays import to_numpy
from harness.worker.scenario import jsonable

__all__ = ["INLINE_LIMIT", "summarize"]

#: Arrays with at most this many elements are also stored inline in the JSON, for readable reports.
INLINE_LIMIT = 32


def _infer_kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "config"
    if isinstance(value, (bool, int, float)):
        return "scalar"
    if getattr(value, "shape", None) == ():
        return "scalar"
    return "array"


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _array_summary(name: str, kind: str, value: Any) -> tuple[dict[str, Any], Any]:
    import numpy as np

    array = np.ascontiguousarray(to_numpy(value))
    if array.dtype.kind in "OUS":
        raise TypeError(f"record {name!r}: an array record must be numeric, got dtype {array.dtype}")
    if array.dtype.name not in np.sctypeDict:  # bfloat16 and friends: npz cannot hold them portably
        try:
            array = array.astype(np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"record {name!r}: cannot store dtype {array.dtype}") from None
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode() + array.tobytes()).hexdigest()
    summary: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "sha256": digest,
        "min": None,
        "max": None,
        "mean": None,
        "nonfinite": 0,
        "in_npz": True,
        "value": None,
    }
    numeric = array.astype(np.float64) if array.dtype.kind in "biuf" else None
    if numeric is not None and numeric.size:
        finite = numeric[np.isfinite(numeric)]
        summary["nonfinite"] = int(numeric.size - finite.size)
        if finite.size:
            summary.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()))
    if array.size <= INLINE_LIMIT:
        summary["value"] = jsonable(array.tolist())
    return summary, array


def summarize(name: str, kind: str | None, value: Any) -> tuple[dict[str, Any], Any]:
    """Return ``(summary, array_or_None)`` for one record; the array, when given, belongs in the ``.npz``."""
    kind = kind or _infer_kind(value)
    if kind in ("array", "ordering"):
        return _array_summary(name, kind, value)
    plain = jsonable(value)
    if kind == "scalar" and not isinstance(plain, (bool, int, float, str)):
        raise TypeError(f"record {name!r}: a scalar record must be a number, got {type(value).__name__}")
    summary = {
        "name": name,
        "kind": kind,
        "dtype": None,
        "shape": None,
        "sha256": _sha256_json(plain),
        "min": None,
        "max": None,
        "mean": None,
        "nonfinite": 0,
        "in_npz": False,
        "value": plain,
    }
    return summary, None
