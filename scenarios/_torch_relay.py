"""The torch half of the relay: what a producer saves and records, and how a consumer loads and compares it.

The producer trains each model of the zoo (``_torch_zoo.MODELS``: TinyNet, recurrent, convolutional, attention) a
few Adam steps under StepLR and saves it in every format of its table that this torch offers (``_torch_io.FORMATS``);
it records what a consumer must reproduce: inference and training-mode predictions, the weights' layout, a digest of
the optimizer state, the scheduler's epoch and learning rate, and the predictions and learning rate after one more
step. The consumer loads by the plain call first (``_torch_io.load``) and compares through ``_relay_compare``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from scenarios import _keras_io, _torch_io, _torch_zoo
from scenarios._loads import LoadAttempt
from scenarios._relay_compare import compared, errors, fallback_only, weights_layout

__all__ = ["consume", "produce"]


def _hashes(folder: Path) -> dict[str, str]:
    from scenarios.relay import file_hashes  # one definition of a manifest's file hashes

    return file_hashes(folder)


def _formats(kind: _torch_io.TorchModel) -> list[_torch_io.TorchFormat]:
    """The formats this model goes in that this torch offers (an unavailable one is not saved)."""
    names = kind.formats or tuple(_torch_io.FORMATS)
    return [_torch_io.FORMATS[name] for name in names if not _torch_io.FORMATS[name].unavailable()]


def _measured(kind: _torch_io.TorchModel, trained: _torch_zoo.Trained) -> dict[str, Any]:
    """What a consumer of any format of this model must reproduce, measured on the trained module."""
    x, _ = kind.inputs()
    loaded = _torch_io.TorchLoaded(
        lambda inputs: _torch_io.predict(trained.model, inputs), trained.model, switches_modes=True, trains=True
    )
    state = _torch_io.optimizer_state(trained.optimizer)
    return {
        "predictions": _torch_zoo.inference(loaded, x).tolist(),
        "training_predictions": _np_list(_torch_zoo.training_outputs(loaded, x)),
        "weights": weights_layout(_torch_zoo.weights(trained.model)),
        "optimizer": {"count": len(state), "sha256": _keras_io.state_digest(state)},
        "schedule": _torch_zoo.schedule(trained.scheduler, int(trained.scheduler.last_epoch)),
    }


def _np_list(array: np.ndarray | None) -> list[Any] | None:
    return None if array is None else array.tolist()


def _save(
    fmt: _torch_io.TorchFormat, kind: _torch_io.TorchModel, trained: _torch_zoo.Trained, root: Path
) -> dict[str, Any]:
    folder = root / "torch" / kind.name / fmt.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    entry: dict[str, Any] = {"family": "torch", "model": kind.name, "format": fmt.name, "unsafe": bool(fmt.unsafe)}
    try:
        fmt.save(trained.model, trained.optimizer, folder, kind, trained.scheduler)
    except Exception as exc:
        entry["save_error"] = error_text(exc)
    entry.update(path=folder.relative_to(root).as_posix(), files=_hashes(folder))
    return entry


def produce(root: Path) -> list[dict[str, Any]]:
    """Every zoo model in every format this torch can save, with what a consumer must reproduce.

    Each model is trained once and saved in all its formats before the one continuation step, which every format's
    consumer then repeats (a format without the scheduler still continues from the same optimizer state).
    """
    entries = []
    for kind in _torch_zoo.MODELS.values():
        trained = _torch_zoo.train(kind)
        measured = _measured(kind, trained)
        saved = [_save(fmt, kind, trained, root) for fmt in _formats(kind)]
        _torch_zoo.continue_training(kind, trained.model, trained.optimizer, trained.scheduler)
        x, _ = kind.inputs()
        continued = {
            "continued_predictions": _torch_io.predict(trained.model, x).tolist(),
            "continued_schedule": _torch_zoo.schedule(trained.scheduler, int(trained.scheduler.last_epoch)),
        }
        entries += [{**entry, **measured, **continued} for entry in saved]
    return entries


def _load(fmt: _torch_io.TorchFormat, folder: Path, kind: _torch_io.TorchModel) -> LoadAttempt:
    # TinyNet through the two-argument call that save_load and the offline tests stand in for
    return _torch_io.load(fmt, folder) if kind is _torch_io.TINYNET else _torch_io.load(fmt, folder, kind)


def _resumed(kind: _torch_io.TorchModel, loaded: _torch_io.TorchLoaded, entry: dict[str, Any]) -> dict[str, Any]:
    """Optimizer (and scheduler) state kept, then one more step compared with the producer's own continuation."""
    state = _torch_io.optimizer_state(loaded.optimizer)
    kept = _keras_io.state_digest(state) == entry["optimizer"]["sha256"]
    with_schedule = loaded.scheduler is not None
    got = _torch_zoo.schedule(loaded.scheduler, loaded.epoch) if with_schedule else None
    outcome = _torch_zoo.schedule_outcome(kept, got, entry.get("schedule") if with_schedule else None)
    x, _ = kind.inputs()
    _torch_zoo.continue_training(kind, loaded.model, loaded.optimizer, loaded.scheduler)
    if with_schedule:
        after = _torch_zoo.schedule(loaded.scheduler, int(loaded.scheduler.last_epoch))
        outcome = _torch_zoo.continued_outcome(outcome, after, entry.get("continued_schedule"))
    after_predictions = _torch_io.predict(loaded.model, x)
    error = errors(after_predictions, np.array(entry["continued_predictions"], dtype=np.float32))[0]
    return {"optimizer": outcome, "continuation_max_abs_error": error}


def consume(entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Load one torch artifact as a user would and compare it with what its producer recorded."""
    fmt = _torch_io.FORMATS.get(entry["format"])
    kind = _torch_zoo.MODELS.get(entry["model"])
    if fmt is None or kind is None:
        return {"outcome": "skip", "message": f"{entry['model']} in {entry['format']} is unknown to this compat-matrix"}
    if fmt.unavailable():
        return {"outcome": "skip", "message": fmt.unavailable()}
    x, _ = kind.inputs()
    attempt = _load(fmt, folder, kind)
    loaded = attempt.value
    got = _torch_zoo.inference(loaded, x)
    training = _torch_zoo.training_outputs(loaded, x)
    layout = None if loaded.model is None else _torch_zoo.layout_like(_torch_zoo.weights(loaded.model), entry)
    result = {**compared(attempt, got, entry, training=training, layout=layout), "optimizer": "n/a"}
    if fmt.keeps_optimizer and loaded.optimizer is not None:
        result.update(_resumed(kind, loaded, entry))
    return fallback_only(result, attempt)
