"""Crafted verdicts and runs for the report tests: pydantic models built directly, no judging logic involved.

``small_run`` is one run of six environments and four upgrade paths whose reasons are written out by hand, so each
test can state what the reports must show from these lines alone. ``big_run`` is a synthetic run far beyond
GitHub's comment limit (40 environments x 300 scenarios, long errors), built in memory.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.judge import Reason, Verdict
from harness.results import (
    DeclaredEnvironment,
    EnvironmentInfo,
    EnvironmentResult,
    RelayResult,
    ScenarioResult,
)
from tests.factories import cell, env_doc, relay_row

A1, A2, B, BROKEN_ENV, T1, T2 = "tf2.15-keras2", "tf2.16-keras3", "tf2.21-keras3", "broken", "torch2.5", "torch2.13"
ORDER = [A1, A2, B, BROKEN_ENV, T1, T2]
W = np.linspace(-1, 1, 16, dtype=np.float32)
SEGV = "worker killed by SIGSEGV\nFatal Python error: Segmentation fault\n  File 'keras/layers.py', line 12"


def reason(severity: str, kind: str, scenarios: list[str], summary: str = "", **extra: Any) -> Reason:
    return Reason(
        severity=severity,
        kind=kind,
        scenarios=scenarios,
        summary=summary or f"{kind} in {', '.join(scenarios)}",
        reproduce=extra.pop("reproduce", f"COMPAT_RUN_ID=run ./cm -s x -- -k '{scenarios[0]}'"),
        **extra,
    )


def verdict(baseline: str, candidate: str, name: str, reasons: list[Reason], **extra: Any) -> Verdict:
    """A verdict with ``name`` as given (never derived here) and counts that simply count the reasons."""
    counts = Counter(r.severity for r in reasons)
    return Verdict(
        baseline=baseline,
        candidate=candidate,
        run_id="run",
        decided_at="2026-11-21T00:00:00+00:00",
        verdict=name,
        counts={s: counts.get(s, 0) for s in ("no-go", "warning", "waived", "fixed", "info")},
        reasons=reasons,
        ledger=f"ledger/{baseline}__{candidate}.json",
        **extra,
    )


def _tf_cells(candidate: bool) -> list[tuple[ScenarioResult, dict[str, Any]]]:
    return [
        cell("a.one", w=W + (0.1 if candidate else 0.0)),
        cell("a.two", "crash", SEGV) if candidate else cell("a.two"),
        cell("a.three", "fail", "assert 1 == 2 on both"),
        cell("b.four"),
        cell("c.five") if candidate else cell("c.five", "fail", "old bug"),
        cell("a.six", "skip", "needs keras>=3"),
    ]


def _keras_relay(producer: str, model: str, outcome: str, fmt: str, **kwargs: Any) -> RelayResult:
    row = relay_row(producer, B, outcome, **kwargs)
    return row.model_copy(update={"model": model, "format": fmt})


def small_docs(run_dir: Path) -> dict[str, EnvironmentResult]:
    relay = [
        _keras_relay(A1, "sequential", "load-error", "h5", error_class="TypeError", message="bad config"),
        _keras_relay(A1, "functional", "load-error", "h5", error_class="TypeError", message="bad config"),
        _keras_relay(A1, "sequential", "loaded", "keras", max_abs_error=0.0),
        _keras_relay(A1, "functional", "fallback-only", "keras", how="compile=False"),
        _keras_relay(A2, "sequential", "loaded", "keras", max_abs_error=0.0),
    ]
    return {
        A1: env_doc(run_dir, A1, _tf_cells(False)),
        A2: env_doc(run_dir, A2, _tf_cells(False)),
        B: env_doc(run_dir, B, _tf_cells(True), relay=relay),
        BROKEN_ENV: env_doc(
            run_dir, BROKEN_ENV, [cell("a.one", "env-error"), cell("a.two", "env-error")], state="env-error"
        ),
        T1: env_doc(run_dir, T1, [cell("t.one"), cell("t.two")]),
        T2: env_doc(run_dir, T2, [cell("t.one")]),
    }


def small_verdicts() -> list[Verdict]:
    v1 = [
        reason("no-go", "regression", ["a.two"], f"passes on {A1}, crash on {B}", error=SEGV),
        reason(
            "no-go",
            "drift",
            ["a.one"],
            "1 record(s) changed beyond tolerance",
            records=["a.one::w"],
            numbers={"max_abs_error": 0.1},
        ),
        reason(
            "no-go",
            "relay",
            ["relay:keras:h5"],
            "keras h5: 2 model(s) load-error",
            error="TypeError: bad config",
            records=["relay:keras:h5::functional", "relay:keras:h5::sequential"],
            count=2,
        ),
        reason(
            "no-go",
            "relay",
            ["relay:keras:keras"],
            "keras keras: 1 model(s) fallback-only (compile=False)",
            records=["relay:keras:keras::functional"],
            count=1,
        ),
        reason("warning", "drift-within", ["b.four"], "y: max abs 1e-07", records=["b.four::y"]),
        reason("waived", "drift", ["b.four"], "z changed (waived by ml-platform)", records=["b.four::z"]),
        reason("fixed", "fixed", ["c.five"], f"fail on {A1}, passes on {B}"),
    ]
    v2 = [reason("warning", "drift-within", ["b.four"], "y: max abs 2e-07", records=["b.four::y"])]
    v3 = [
        reason(
            "no-go",
            "env-error",
            ["(environment)"],
            f"{BROKEN_ENV} could not be provisioned",
            error="Because there is no version of keras==9.9 ...",
        )
    ]
    v4 = [reason("info", "incomplete", ["t.two"], f"{T2} lacks 1 selected cells", count=1)]
    return [
        verdict(A1, B, "NO-GO", v1, changed=["a.one", "a.two", "b.four"]),
        verdict(A2, B, "GO-WITH-WARNINGS", v2, changed=["b.four"]),
        verdict(B, BROKEN_ENV, "NO-GO", v3),
        verdict(T1, T2, "INCOMPLETE", v4, missing={T2: ["t.two"]}),
    ]


# ------------------------------------------------------------------------------------------- the big run


def _memory_doc(name: str, cells: list[ScenarioResult], relay: list[RelayResult]) -> EnvironmentResult:
    info = EnvironmentInfo(name=name, declared=DeclaredEnvironment(python="3.11", packages={"keras": "3.0.0"}))
    return EnvironmentResult(
        run_id="big",
        harness_version="test",
        matrix_file="matrix.yaml",
        started_at="2026-11-21T00:00:00+00:00",
        state="complete",
        environment=info,
        scenarios=cells,
        relay=relay,
    )


def _long_error(i: int) -> str:
    frames = "".join(f'  File "site-packages/keras/src/layer_{k}.py", line {k}, in call\n' for k in range(40))
    return f"Traceback (most recent call last):\n{frames}ValueError: cell {i} broke | `tick` <b>x</b>"


def big_run(envs: int = 40, scenarios: int = 300) -> tuple[list[str], dict[str, EnvironmentResult], list[Verdict]]:
    """Every 10th scenario fails everywhere with a long traceback; every path is NO-GO with 30 long blocking reasons."""
    names = [f"env{i:02d}" for i in range(envs)]
    ids = [f"area{s % 7}.scenario_{s:03d}" for s in range(scenarios)]
    docs = {}
    for e, name in enumerate(names):
        cells = [
            ScenarioResult(
                id=sid,
                area=sid.split(".")[0],
                status="fail" if s % 10 == 0 else "pass",
                message=_long_error(s) if s % 10 == 0 else "",
            )
            for s, sid in enumerate(ids)
        ]
        relay = [
            relay_row(p, name, "loaded" if (e + k) % 5 else "load-error", error_class="E")
            for k, p in enumerate(names[:10])
        ]
        docs[name] = _memory_doc(name, cells, relay)
    verdicts = []
    for e in range(1, envs):
        blocking = [
            reason("no-go", "regression", [ids[k]], f"path {e} reason {k}", error=_long_error(k)) for k in range(30)
        ]
        warnings = [
            reason("warning", "drift-within", [ids[k]], f"within {k}", records=[f"{ids[k]}::r"]) for k in range(50)
        ]
        verdicts.append(verdict(names[e - 1], names[e], "NO-GO", blocking + warnings, changed=ids[:20]))
    return names, docs, verdicts


# ------------------------------------------------------------------------------------------ a wide run


def _wide_cell(e: int, s: int, sid: str) -> ScenarioResult:
    """Mostly passes with the same records everywhere; every 13th cell fails (on some environments) with a traceback,
    every 5th scenario skips."""
    if s % 5 == 4:
        return ScenarioResult(id=sid, area=sid.split(".")[0], status="skip", message=f"requires torch>=2.{s % 9}")
    if (e + s) % 13 == 0:
        return ScenarioResult(id=sid, area=sid.split(".")[0], status="fail", message=_long_error(s), duration_s=0.2)
    found, _ = cell(sid, w=W * (s + 1), order=("ordering", np.arange(8)), config=("config", {"units": s, "bias": True}))
    return found.model_copy(update={"duration_s": 0.05 + s / 1000})


def wide_run(envs: int = 30, scenarios: int = 90) -> tuple[list[str], dict[str, EnvironmentResult], list[Verdict]]:
    """``envs`` x ``scenarios`` cells shaped like a real run, and a verdict per consecutive pair (NO-GO with two
    blocking reasons where the candidate fails cells, else GO)."""
    names = [f"wide{i:03d}" for i in range(envs)]
    ids = [f"area{s % 7}.scenario_{s:03d}" for s in range(scenarios)]
    docs = {}
    for e, name in enumerate(names):
        relay = [
            relay_row(p, name, "loaded" if (e + k) % 4 else "load-error", error_class="E")
            for k, p in enumerate(names[max(0, e - 2) : e + 1])
        ]
        docs[name] = _memory_doc(name, [_wide_cell(e, s, sid) for s, sid in enumerate(ids)], relay)
    verdicts = []
    for base, cand in itertools.pairwise(names):
        failing = [c.id for c in docs[cand].scenarios if c.status == "fail"][:2]
        blocking = [
            reason("no-go", "regression", [sid], f"passes on {base}, fails on {cand}", error=_long_error(k))
            for k, sid in enumerate(failing)
        ]
        verdicts.append(verdict(base, cand, "NO-GO" if blocking else "GO", blocking))
    return names, docs, verdicts
