"""The cross-version relay, orchestrator side: read producers' manifests, plan who loads what, run the consumer.

Every environment's ``relay.produce`` scenario saves artifacts and a manifest under
``results/<run>/artifacts/<env>/``. A consumer environment then loads every artifact it could plausibly read:
Keras artifacts by Keras / tf-keras consumers (``.keras`` across backends too), TensorFlow-only formats only where
TensorFlow is installed (elsewhere a ``skip`` with the reason), torch artifacts by torch consumers. Artifacts are
read only from the run's own folder or a folder the user names. Each producer x format is one worker cell, so a
crash or hang while loading costs that cell only, recorded as ``load-error`` for its artifacts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.paths import is_safe_name
from harness.results import RelayResult, ScenarioResult

__all__ = [
    "ARTIFACTS_DIR",
    "CONSUME_ID",
    "PRODUCE_ID",
    "Manifest",
    "Planned",
    "load_manifests",
    "plan_cells",
    "relay_results",
]

ARTIFACTS_DIR = "artifacts"
CONSUME_ID = "relay.consume"
PRODUCE_ID = "relay.produce"
TF_FORMATS = frozenset({"savedmodel_dir", "tf_saved_model", "export", "tf_checkpoint"})


class Artifact(BaseModel):
    model_config = ConfigDict(extra="allow")

    family: str
    model: str
    format: str
    path: str = ""
    files: dict[str, str] = Field(default_factory=dict)
    unsafe: bool = False
    save_error: str | None = None


class Manifest(BaseModel):
    """What a producer wrote: who it was, which versions, and its artifacts."""

    model_config = ConfigDict(extra="allow")

    manifest_version: int
    producer: str
    versions: dict[str, str] = Field(default_factory=dict)
    artifacts: list[Artifact] = Field(default_factory=list)


@dataclass(frozen=True)
class Planned:
    """One consumer cell: a producer's artifacts of one family and format, or a skip decided without loading."""

    producer: str
    family: str
    format: str
    skip_reason: str | None = None

    @property
    def cell_id(self) -> str:
        return f"{CONSUME_ID}[{self.producer}:{self.family}:{self.format}]"


def load_manifests(source: Path) -> tuple[dict[str, Manifest], list[str]]:
    """Every readable manifest under ``source/<producer>/manifest.json``, and a line per unreadable one."""
    manifests: dict[str, Manifest] = {}
    problems: list[str] = []
    for path in sorted(Path(source).glob("*/manifest.json")):
        if path.is_symlink() or path.parent.is_symlink() or not is_safe_name(path.parent.name):
            problems.append(f"{path}: refused (a symlink, or a producer folder whose name is not a plain name)")
            continue
        try:
            manifest = Manifest.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError, ValidationError) as exc:
            problems.append(f"{path}: unreadable manifest ({type(exc).__name__})")
            continue
        if manifest.producer != path.parent.name:
            problems.append(f"{path}: names producer {manifest.producer!r} but lies in {path.parent.name!r}")
            continue
        manifests[manifest.producer] = manifest
    return manifests, problems


def plan_cells(caps: Mapping[str, str], manifests: Mapping[str, Manifest]) -> list[Planned]:
    """Who loads what: one cell per producer, family and format this consumer could plausibly read."""
    cells = []
    for producer, manifest in sorted(manifests.items()):
        pairs = sorted({(a.family, a.format) for a in manifest.artifacts})
        for family, format_name in pairs:
            if family not in caps:  # keras artifacts need a Keras consumer, torch ones a torch consumer
                continue
            reason = None
            if family == "keras" and format_name in TF_FORMATS and "tensorflow" not in caps:
                reason = f"format {format_name} needs TensorFlow, which this consumer does not have"
            cells.append(Planned(producer, family, format_name, reason))
    return cells


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def relay_results(consumer: str, cell: Planned, manifest: Manifest, result: ScenarioResult | None) -> list[RelayResult]:
    """Turn one consumer cell's outcome into a result per artifact (model)."""
    artifacts = [a for a in manifest.artifacts if a.family == cell.family and a.format == cell.format]
    records = {r.name: r.value for r in result.records} if result else {}
    rows = []
    for artifact in artifacts:
        base = {
            "producer": cell.producer,
            "consumer": consumer,
            "family": cell.family,
            "model": artifact.model,
            "format": cell.format,
            "producer_versions": manifest.versions,
            "duration_s": result.duration_s if result else None,
        }
        value = records.get(artifact.model)
        if cell.skip_reason:
            rows.append(RelayResult(**base, outcome="skip", message=cell.skip_reason, unsafe=artifact.unsafe))
        elif isinstance(value, dict):
            rows.append(
                RelayResult(
                    **base,
                    outcome=value.get("outcome", "load-error"),
                    how=str(value.get("how", "")),
                    max_abs_error=_number(value.get("max_abs_error")),
                    max_rel_error=_number(value.get("max_rel_error")),
                    continuation_max_abs_error=_number(value.get("continuation_max_abs_error")),
                    training_max_abs_error=_number(value.get("training_max_abs_error")),
                    weights=str(value.get("weights", "n/a")),
                    optimizer=str(value.get("optimizer", "n/a")),
                    signatures=str(value.get("signatures", "n/a"))[:2000],
                    error_class=str(value.get("error_class", "")),
                    message=str(value.get("message", "")),
                    warnings=[str(w) for w in value.get("warnings", [])],
                    unsafe=bool(value.get("unsafe", artifact.unsafe)),  # the consumer's own label first
                    sandboxed=value.get("sandboxed") is True,
                )
            )
        elif result is not None and result.status == "skip":
            rows.append(RelayResult(**base, outcome="skip", message=result.message, unsafe=artifact.unsafe))
        else:
            status = result.status if result else "not run"
            message = result.message if result else "the consumer cell did not run"
            rows.append(
                RelayResult(
                    **base,
                    outcome="load-error",
                    error_class=f"Worker{status.title()}",
                    message=message,
                    unsafe=artifact.unsafe,
                )
            )
    return rows
