"""The Keras half of the relay: what a producer saves and records, and how a consumer loads and compares it.

The producer builds every relay model (``_keras_io.MODELS``), trains it, saves it in every format the version
offers and records what a consumer must reproduce; the consumer loads by the plain call first
(``_keras_io.load``) and compares through ``_relay_compare``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from scenarios import _keras_io
from scenarios._frameworks import keras
from scenarios._relay_compare import compared, errors, fallback_only

__all__ = ["consume", "produce"]


def _hashes(folder: Path) -> dict[str, str]:
    from scenarios.relay import file_hashes  # one definition of a manifest's file hashes

    return file_hashes(folder)


def produce(root: Path) -> list[dict[str, Any]]:
    """Every Keras relay model in every format this version can save, with what a consumer must reproduce."""
    k = keras()
    x, y = _keras_io.fixed_inputs()
    entries = []
    for model_name in _keras_io.MODELS:
        model = _keras_io.build_trained(model_name)
        predictions = _keras_io.predict(model, x)
        state = _keras_io.optimizer_state(model)
        saved = []
        for fmt in _keras_io.FORMATS.values():
            if fmt.unavailable(k):
                continue
            folder = root / "keras" / model_name / fmt.name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            entry: dict[str, Any] = {"family": "keras", "model": model_name, "format": fmt.name}
            entry["unsafe"] = bool(fmt.unsafe)
            try:
                fmt.save(model, folder / f"model{fmt.suffix}")
            except Exception as exc:
                entry["save_error"] = error_text(exc)
            entry["path"] = folder.relative_to(root).as_posix()
            entry["files"] = _hashes(folder)
            saved.append(entry)
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        continued = _keras_io.predict(model, x).tolist()
        for entry in saved:
            entry.update(
                predictions=predictions.tolist(),
                optimizer={"count": len(state), "sha256": _keras_io.state_digest(state)},
                continued_predictions=continued,
            )
        entries += saved
    return entries


def consume(entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Load one Keras artifact as a user would and compare it with what its producer recorded."""
    fmt = _keras_io.FORMATS.get(entry["format"])
    if fmt is None:
        return {"outcome": "skip", "message": f"format {entry['format']} is unknown to this compat-matrix"}
    x, y = _keras_io.fixed_inputs()
    _keras_io.custom_classes(keras())  # a real consumer imports its custom layer code before loading
    attempt = _keras_io.load(fmt, folder / f"model{fmt.suffix}", entry["model"])
    loaded = attempt.value
    result = compared(attempt, loaded.predict(x), entry)
    if not fmt.keeps_optimizer:
        result["optimizer"] = "n/a"
        return fallback_only(result, attempt)
    producer_had = entry["optimizer"]["count"] > 0
    state = loaded.optimizer or []
    result["optimizer"] = (
        "kept"
        if state and _keras_io.state_digest(state) == entry["optimizer"]["sha256"]
        else ("lost" if producer_had and not any(np.any(v) for v in state) else "changed")
    )
    if result["optimizer"] == "lost" and result["outcome"] == "loaded":
        result["outcome"] = "optimizer-state-lost"
    if loaded.model is not None and getattr(loaded.model, "optimizer", None) is not None and state:
        loaded.model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        after = _keras_io.predict(loaded.model, x)
        result["continuation_max_abs_error"] = errors(after, np.array(entry["continued_predictions"]))[0]
    return fallback_only(result, attempt)
