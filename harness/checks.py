"""Reusable checks for scenarios: each records one named check with the numbers it was decided on.

Runs inside the worker (numpy only). Each helper returns the check's outcome, so a scenario may branch on it, and
never raises on a failed check: the failure is already recorded in the context and decides the cell's status.
"""

from __future__ import annotations

import math
from typing import Any

from harness.scenario import Context

__all__ = ["allclose", "constant", "uniform_bound"]


def _array(values: Any) -> Any:
    import numpy as np

    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    elif hasattr(values, "numpy") and not isinstance(values, np.ndarray):
        values = values.numpy()
    return np.asarray(values, dtype=np.float64)


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
