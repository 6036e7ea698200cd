"""Scenarios that misbehave on purpose: crash, abort, hang, raise, exit, or try to swallow their outcome."""

from __future__ import annotations

import os
import sys
import time

from harness.worker.scenario import Context, scenario, skip


@scenario(area="fault")
def a_first_passes(ctx: Context) -> None:
    import numpy as np

    ctx.record("values", np.arange(6, dtype=np.float32).reshape(2, 3))
    ctx.record("order", [2, 0, 1], kind="ordering")
    ctx.record("config", {"momentum": 0.99, "epsilon": 1e-3})
    ctx.record("rate", 0.5)
    ctx.check("arange_sum", float(np.arange(6).sum()) == 15.0, total=15.0)
    print("hello from stdout")
    print("hello from stderr", file=sys.stderr)


@scenario(area="fault")
def b_segfault(ctx: Context) -> None:
    import ctypes

    ctypes.string_at(0)


@scenario(area="fault")
def c_abort(ctx: Context) -> None:
    os.abort()


@scenario(area="fault", timeout=2)
def d_hang(ctx: Context) -> None:
    time.sleep(120)


@scenario(area="fault")
def e_raises(ctx: Context) -> None:
    raise ValueError("this scenario is broken")


@scenario(area="fault")
def f_sys_exit(ctx: Context) -> None:
    sys.exit(3)


@scenario(area="fault")
def g_os_exit(ctx: Context) -> None:
    os._exit(7)


@scenario(area="fault")
def h_swallowed_skip(ctx: Context) -> None:
    try:  # noqa: SIM105 - deliberately what a careless scenario writes
        skip("needs something this environment lacks")
    except Exception:
        pass
    raise AssertionError("unreachable: the skip must not be swallowed")


@scenario(area="fault")
def i_swallowed_check(ctx: Context) -> None:
    try:
        ctx.check("must_hold", 1 + 1 == 3, "arithmetic changed", left=2, right=3)
        raise RuntimeError("later trouble")
    except Exception:
        pass


@scenario(area="fault")
def j_warns(ctx: Context) -> None:
    import warnings

    warnings.warn("this API is deprecated", DeprecationWarning, stacklevel=1)
    ctx.check("fine", True)


@scenario(area="fault")
def z_last_passes(ctx: Context) -> None:
    ctx.check("still_running", True)


@scenario(area="fault", requires=["torch>=2.0"])
def k_needs_torch(ctx: Context) -> None:
    import torch  # noqa: F401  (never reached where torch is absent: the orchestrator skips it)


@scenario(area="fault")
def l_flaky(ctx: Context) -> None:
    ctx.record("stable", [1.0, 2.0, 3.0])
    ctx.record("noisy", float(int.from_bytes(os.urandom(4), "little")))  # unseeded: differs on every run
