"""Reusable checks for scenarios: each records one named check with the numbers it was decided on.

Runs inside the worker (numpy only). Each helper returns the check's outcome, so a scenario may branch on it, and
never raises on a failed check: the failure is already recorded in the context and decides the cell's status.
"""

from __future__ import annotations

import math
from typing import Any

from harness.worker.arrays import to_numpy
from harness.worker.scenario import Context

__all__ = [
    "allclose",
    "batch_sizes",
    "constant",
    "normal_moments",
    "orthogonal",
    "permutation",
    "uniform_bound",
]


def _array(values: Any) -> Any:
    """The values as float64, the precision every check decides in."""
    import numpy as np

    return to_numpy(values, np.float64)


def uniform_bound(ctx: Context, name: str, values: Any, bound: float, *, var_rtol: float = 0.2) -> bool:
    """Values drawn from U(-bound, bound): none beyond the bound, the range filled, the variance near bound²/3.

    The spread and variance tests are statistical; with the few hundred values scenarios draw, a genuine
    uniform sample passes them with overwhelming probability, while a different distribution or bound does not.
    """
    array = _array(values).ravel()
    if array.size == 0:
        return ctx.check(name, False, "no values to check")
    peak = float(abs(array).max())
    variance = float(array.var())
    expected_var = bound * bound / 3.0
    within = peak <= bound * (1 + 1e-6)
    filled = peak >= bound * (1 - 4.0 / math.sqrt(array.size)) if array.size >= 16 else True
    var_ok = abs(variance - expected_var) <= var_rtol * expected_var
    ok = within and filled and var_ok
    reasons = []
    if not within:
        reasons.append(f"max |value| {peak:.6g} exceeds the bound {bound:.6g}")
    if not filled:
        reasons.append(f"max |value| {peak:.6g} falls short of the bound {bound:.6g}")
    if not var_ok:
        reasons.append(f"variance {variance:.6g} is not within {var_rtol:.0%} of bound²/3 = {expected_var:.6g}")
    return ctx.check(
        name,
        ok,
        "; ".join(reasons),
        bound=bound,
        max_abs=peak,
        variance=variance,
        expected_variance=expected_var,
    )


def constant(ctx: Context, name: str, values: Any, expected: float) -> bool:
    """Every value equals ``expected`` exactly (zeros/ones initializers)."""
    array = _array(values)
    wrong = int((array != expected).sum())
    message = f"{wrong} of {array.size} values differ from {expected}" if wrong else ""
    return ctx.check(name, wrong == 0, message, expected=expected, differing=wrong, size=int(array.size))


def allclose(ctx: Context, name: str, actual: Any, expected: Any, *, rtol: float = 1e-6, atol: float = 0.0) -> bool:
    """``|actual - expected| <= atol + rtol * |expected|`` elementwise, shapes equal; NaNs never match."""
    import numpy as np

    a, b = _array(actual), _array(expected)
    if rtol < 0 or atol < 0 or math.isnan(rtol) or math.isnan(atol):
        raise ValueError(f"tolerances must be non-negative numbers, got rtol={rtol}, atol={atol}")
    if a.shape != b.shape:
        return ctx.check(name, False, f"shape {a.shape} != expected {b.shape}")
    diff = np.abs(a - b)
    limit = atol + rtol * np.abs(b)
    bad = ~(diff <= limit)
    max_abs = float(np.nanmax(diff)) if diff.size and not np.isnan(diff).all() else 0.0
    message = f"{int(bad.sum())} of {a.size} values beyond tolerance" if bad.any() else ""
    return ctx.check(name, not bad.any(), message, max_abs_error=max_abs, rtol=rtol, atol=atol)


def normal_moments(ctx: Context, name: str, values: Any, mean: float, std: float, *, sigmas: float = 5.0) -> bool:
    """Sample mean and standard deviation agree with N(mean, std²) within ``sigmas`` standard errors."""
    array = _array(values).ravel()
    n = array.size
    if n < 2:
        return ctx.check(name, False, "too few values to check")
    got_mean, got_std = float(array.mean()), float(array.std())
    mean_tol = sigmas * std / math.sqrt(n)
    std_tol = sigmas * std / math.sqrt(2 * (n - 1))
    reasons = []
    if abs(got_mean - mean) > mean_tol:
        reasons.append(f"mean {got_mean:.6g} differs from {mean:g} by more than {mean_tol:.3g}")
    if abs(got_std - std) > std_tol:
        reasons.append(f"std {got_std:.6g} differs from {std:g} by more than {std_tol:.3g}")
    return ctx.check(name, not reasons, "; ".join(reasons), mean=got_mean, std=got_std, n=n)


def orthogonal(ctx: Context, name: str, matrix: Any, *, atol: float = 1e-4) -> bool:
    """The rows (if fewer than columns) or the columns are orthonormal, as an orthogonal initializer draws."""
    import numpy as np

    a = _array(matrix)
    if a.ndim != 2:
        return ctx.check(name, False, f"expected a matrix, got shape {a.shape}")
    gram = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    error = float(np.abs(gram - np.eye(gram.shape[0])).max())
    message = f"max |G - I| = {error:.3g} exceeds {atol:g}" if error > atol else ""
    return ctx.check(name, error <= atol, message, max_gram_error=error, shape=list(a.shape))


def permutation(ctx: Context, name: str, order: Any, expected: Any) -> bool:
    """``order`` holds exactly the elements of ``expected``, each once: nothing lost, nothing duplicated."""
    import numpy as np

    got = sorted(np.asarray(_array(order), dtype=np.int64).ravel().tolist())
    want = sorted(np.asarray(_array(list(expected)), dtype=np.int64).ravel().tolist())
    if got == want:
        return ctx.check(name, True, size=len(got))
    missing = sorted(set(want) - set(got))[:10]
    extra = sorted(set(got) - set(want))[:10]
    duplicated = len(got) - len(set(got))
    message = f"not a permutation: missing {missing}, unexpected {extra}, {duplicated} duplicated"
    return ctx.check(name, False, message, size=len(got), expected_size=len(want))


def batch_sizes(ctx: Context, name: str, sizes: list[int], total: int, batch: int, *, drop_last: bool = False) -> bool:
    """Batches are full except possibly the last (absent with ``drop_last``), and add up to what they should."""
    full, rest = divmod(total, batch)
    expected = [batch] * full + ([] if drop_last or rest == 0 else [rest])
    ok = list(sizes) == expected
    message = "" if ok else f"batch sizes {list(sizes)} != expected {expected}"
    return ctx.check(name, ok, message, sizes=list(sizes), expected=expected)
