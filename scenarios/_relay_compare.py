"""How a relay consumer judges what it loaded against what the producer recorded: one home for both frameworks.

A loaded artifact is ``loaded`` only when everything the producer measured comes back: the predictions in inference
mode, in training mode where the model's training mode is deterministic (batch statistics, no dropout), and the
weights' layout (shapes and dtypes in order). Renamed weights (Keras 3 names its variables differently from
Keras 2) are recorded but not a drift: loading by position still works; a changed shape or dtype is a drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from scenarios._loads import LoadAttempt

__all__ = [
    "ATOL",
    "RTOL",
    "compare_weights",
    "compared",
    "errors",
    "fallback_only",
    "flat_outputs",
    "weights_layout",
]

RTOL, ATOL = 1e-5, 1e-6


def errors(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """Largest absolute and relative difference (the relative one floored at 1e-12 of the wanted value)."""
    if got.shape != want.shape:
        return float("inf"), float("inf")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if diff.size == 0:
        return 0.0, 0.0
    rel = diff / np.maximum(np.abs(want.astype(np.float64)), 1e-12)
    return float(diff.max()), float(rel.max())


def within(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=RTOL, atol=ATOL))


def flat_outputs(outputs: Any) -> np.ndarray:
    """One float32 array of shape (batch, n) from a model's output: an array, a list/tuple or a dict of arrays.

    Dict outputs are taken in key order and list outputs in order, so a multi-output model compares as one array.
    """
    if isinstance(outputs, dict):
        outputs = [outputs[key] for key in sorted(outputs)]
    if isinstance(outputs, list | tuple):
        parts = [np.asarray(part, dtype=np.float32) for part in outputs]
        return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1) if parts else np.zeros((0, 0))
    array = np.asarray(outputs, dtype=np.float32)
    return array.reshape(array.shape[0], -1) if array.ndim > 1 else array


def weights_layout(named: Sequence[tuple[str, Any]]) -> list[list[Any]]:
    """``[name, shape, dtype]`` of each weight in order: what the manifest records and a consumer compares."""
    layout = []
    for name, value in named:
        array = np.asarray(value)
        layout.append([str(name), [int(d) for d in array.shape], str(array.dtype)])
    return layout


def compare_weights(got: list[list[Any]] | None, want: list[list[Any]] | None) -> str:
    """``same``; ``renamed (k of n)`` (names differ, shapes and dtypes agree); ``layout-changed: ...``; ``n/a``."""
    if got is None or not want:
        return "n/a"
    if len(got) != len(want):
        return f"layout-changed: {len(got)} weights, the producer had {len(want)}"
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        if list(g[1]) != list(w[1]) or g[2] != w[2]:
            return f"layout-changed: weight {index} ({w[0]}) is {g[1]} {g[2]}, the producer had {w[1]} {w[2]}"
    renamed = sum(1 for g, w in zip(got, want, strict=True) if g[0] != w[0])
    return f"renamed ({renamed} of {len(want)})" if renamed else "same"


def compared(
    attempt: LoadAttempt,
    got: np.ndarray,
    entry: dict[str, Any],
    *,
    training: np.ndarray | None = None,
    layout: list[list[Any]] | None = None,
) -> dict[str, Any]:
    """How a loaded artifact predicts against its producer, how it was loaded, and whether its weights agree."""
    want = np.array(entry["predictions"], dtype=np.float32)
    max_abs, max_rel = errors(got, want)
    drifted = not within(got, want)
    result: dict[str, Any] = {"how": attempt.how, "max_abs_error": max_abs, "max_rel_error": max_rel}
    if training is not None and entry.get("training_predictions") is not None:
        want_training = np.array(entry["training_predictions"], dtype=np.float32)
        result["training_max_abs_error"] = errors(training, want_training)[0]
        drifted = drifted or not within(training, want_training)
    weights = compare_weights(layout, entry.get("weights"))
    result["weights"] = weights
    drifted = drifted or weights.startswith("layout-changed")
    result["outcome"] = "loaded-drifted" if drifted else "loaded"
    result["warnings"] = attempt.warnings
    return result


def fallback_only(result: dict[str, Any], attempt: LoadAttempt) -> dict[str, Any]:
    """A load that only a fallback made: the outcome is the plain call's failure, its error kept beside ``how``."""
    if attempt.plain_error is not None:
        error = attempt.plain_error
        result.update(outcome="fallback-only", error_class=type(error).__name__, message=error_text(error))
    return result
