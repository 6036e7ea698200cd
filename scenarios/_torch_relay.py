"""The torch half of the relay: what a producer saves and records, and how a consumer loads and compares it.

The producer saves the relay module in every format its torch offers (``_torch_io.FORMATS``) and records what a
consumer must reproduce; the consumer loads by the plain call first (``_torch_io.load``) and compares through
``_relay_compare``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from scenarios import _keras_io, _torch_io
from scenarios._relay_compare import compared, errors, fallback_only

__all__ = ["consume", "produce"]


def _hashes(folder: Path) -> dict[str, str]:
    from scenarios.relay import file_hashes  # one definition of a manifest's file hashes

    return file_hashes(folder)


def produce(root: Path) -> list[dict[str, Any]]:
    """The relay module in every format this torch can save, with what a consumer must reproduce."""
    x, _ = _torch_io.fixed_inputs()
    entries = []
    for fmt in _torch_io.FORMATS.values():
        if fmt.unavailable():
            continue
        model, optimizer = _torch_io.build_trained()
        predictions = _torch_io.predict(model, x)
        state = _torch_io.optimizer_state(optimizer)
        folder = root / "torch" / "tinynet" / fmt.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        entry: dict[str, Any] = {"family": "torch", "model": "tinynet", "format": fmt.name, "unsafe": bool(fmt.unsafe)}
        try:
            fmt.save(model, optimizer, folder)
        except Exception as exc:
            entry["save_error"] = error_text(exc)
        _torch_io.train_step(model, optimizer)
        entry.update(
            path=folder.relative_to(root).as_posix(),
            files=_hashes(folder),
            predictions=predictions.tolist(),
            optimizer={"count": len(state), "sha256": _keras_io.state_digest(state)},
            continued_predictions=_torch_io.predict(model, x).tolist(),
        )
        entries.append(entry)
    return entries


def consume(entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Load one torch artifact as a user would and compare it with what its producer recorded."""
    fmt = _torch_io.FORMATS.get(entry["format"])
    if fmt is None:
        return {"outcome": "skip", "message": f"format {entry['format']} is unknown to this compat-matrix"}
    if fmt.unavailable():
        return {"outcome": "skip", "message": fmt.unavailable()}
    x, _ = _torch_io.fixed_inputs()
    attempt = _torch_io.load(fmt, folder)
    loaded = attempt.value
    result = {**compared(attempt, loaded.predict(x), entry), "optimizer": "n/a"}
    if fmt.keeps_optimizer and loaded.optimizer is not None:
        state = _torch_io.optimizer_state(loaded.optimizer)
        result["optimizer"] = "kept" if _keras_io.state_digest(state) == entry["optimizer"]["sha256"] else "changed"
        _torch_io.train_step(loaded.model, loaded.optimizer)
        after = _torch_io.predict(loaded.model, x)
        result["continuation_max_abs_error"] = errors(after, np.array(entry["continued_predictions"]))[0]
    return fallback_only(result, attempt)
