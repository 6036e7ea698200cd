"""Crafted results documents for the drift, go/no-go and report tests (no environment involved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness import results, sidecar
from harness.results import (
    DeclaredEnvironment,
    EnvironmentInfo,
    EnvironmentResult,
    RecordSummary,
    RelayResult,
    ResolvedEnvironment,
    ScenarioResult,
)
from harness.worker import records


def cell(scenario: str, status: str = "pass", message: str = "", **values: Any) -> tuple[ScenarioResult, dict]:
    """A cell whose records are ``values`` (arrays go to the npz), summarized exactly as the worker does."""
    summaries, arrays = [], {}
    for name, value in values.items():
        kind = None
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            kind, value = value
        summary, array = records.summarize(name, kind, value)
        summaries.append(RecordSummary.model_validate(summary))
        if array is not None:
            arrays[sidecar.npz_key(scenario, name)] = array
    area = scenario.split(".")[0]
    return ScenarioResult(id=scenario, area=area, status=status, message=message, records=summaries), arrays


def env_doc(
    run_dir: Path,
    name: str,
    cells: list[tuple[ScenarioResult, dict]],
    *,
    relay: list[RelayResult] | None = None,
    state: str = "complete",
    flaky: list[str] | None = None,
    run_id: str = "run",
    started_at: str = "2026-11-21T00:00:00+00:00",
    matrix_sha256: str = "m",
) -> EnvironmentResult:
    """Write ``<run_dir>/<name>.json`` (and its npz) and return the document."""
    arrays = {k: v for _, a in cells for k, v in a.items()}
    doc = EnvironmentResult(
        run_id=run_id,
        harness_version="test",
        matrix_file="matrix.yaml",
        started_at=started_at,
        state=state,
        environment=EnvironmentInfo(
            name=name,
            declared=DeclaredEnvironment(python="3.11", packages={"keras": "3.0.0"}),
            resolved=ResolvedEnvironment(
                python_version="3.11.7",
                platform="linux",
                machine="x86_64",
                packages={"keras": "3.0.0"},
                lock_sha256="0" * 64,
            ),
        ),
        scenarios=[c for c, _ in cells],
        relay=relay or [],
        flaky=flaky or [],
        matrix_sha256=matrix_sha256,
    )
    if state == "env-error":
        doc.environment.resolved = None
        doc.env_error = results.EnvError(message="Because there is no version of keras==9.9 ...")
    run_dir.mkdir(parents=True, exist_ok=True)
    if arrays:
        np.savez(run_dir / f"{name}.npz", **arrays)
        doc.records_file = f"{name}.npz"
    results.write_result(run_dir / f"{name}.json", doc)
    return doc


def relay_row(producer: str, consumer: str, outcome: str, *, model: str = "sequential", **kwargs: Any) -> RelayResult:
    return RelayResult(
        producer=producer,
        consumer=consumer,
        family="keras",
        model=model,
        format=kwargs.pop("format", "keras"),
        outcome=outcome,
        **kwargs,
    )
