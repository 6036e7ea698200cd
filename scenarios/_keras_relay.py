"""The Keras half of the relay: what a producer saves and records, and how a consumer loads and compares it.

The producer builds every relay model (the core ``_keras_io.MODELS`` and the zoo ``_keras_zoo.MODELS``: recurrent,
convolutional, attention, Lambda), trains it, saves it in every format of its list the version offers (the zoo:
``_keras_zoo.FORMATS``) and records what a consumer must reproduce: inference predictions, training-mode
predictions where training mode is deterministic, the weights' layout, the optimizer state's digest and the
predictions after one more training step. The consumer loads by the plain call first (``_keras_io.load`` /
``_keras_zoo.load``) and compares through ``_relay_compare``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from scenarios import _keras_io, _keras_zoo
from scenarios._frameworks import keras
from scenarios._loads import LoadAttempt
from scenarios._relay_compare import compared, errors, fallback_only

__all__ = ["RELAY_MODELS", "RelayModel", "consume", "produce"]


def _hashes(folder: Path) -> dict[str, str]:
    from scenarios.relay import file_hashes  # one definition of a manifest's file hashes

    return file_hashes(folder)


@dataclass(frozen=True)
class RelayModel:
    """What the relay needs of a model, whether core or zoo: how to build, feed, train, read and load it.

    ``deterministic``: training mode repeats exactly (no Dropout), so training-mode predictions and the continued
    step are recorded and compared; otherwise they are ``None`` and only inference is compared.
    """

    name: str
    build_trained: Callable[[], Any]
    data: Callable[[], tuple[Any, Any]]
    predict: Callable[[Any, Any], np.ndarray]
    training_predict: Callable[[Any, Any], np.ndarray]
    layout: Callable[[Any], list[list[Any]]]
    load: Callable[[_keras_io.KerasFormat, Path], LoadAttempt]
    fit_step: Callable[[Any], None]
    deterministic: bool = True
    formats: tuple[str, ...] = tuple(_keras_io.FORMATS)
    trains_here: Callable[[], bool] = lambda: True  # False: not produced here, loaded without the continued step


def _core_fit_step(model: Any) -> None:
    x, y = _keras_io.fixed_inputs()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)


def _core(name: str) -> RelayModel:
    return RelayModel(
        name,
        build_trained=lambda: _keras_io.build_trained(name),
        data=_keras_io.fixed_inputs,
        predict=_keras_io.predict,
        training_predict=_keras_zoo.training_predict,
        layout=_keras_zoo.layout,
        load=lambda fmt, path: _keras_io.load(fmt, path, name),
        fit_step=_core_fit_step,
    )


def _zoo(name: str) -> RelayModel:
    spec = _keras_zoo.MODELS[name]
    return RelayModel(
        name,
        build_trained=lambda: _keras_zoo.build_trained(name),
        data=spec.data,
        predict=_keras_zoo.predict,
        training_predict=_keras_zoo.training_predict,
        layout=_keras_zoo.layout,
        load=lambda fmt, path: _keras_zoo.load(fmt, path, name),
        fit_step=lambda model: _keras_zoo.fit_step(model, name),
        deterministic=spec.deterministic,
        formats=_keras_zoo.FORMATS,
        trains_here=_keras_zoo.trains_here,
    )


#: Every model the Keras relay saves, by the name its manifest entries carry (the core three, then the zoo).
RELAY_MODELS: dict[str, RelayModel] = {
    **{name: _core(name) for name in _keras_io.MODELS},
    **{name: _zoo(name) for name in _keras_zoo.MODELS},
}


def _save_all(model: Any, relay_model: RelayModel, root: Path, k: Any) -> list[dict[str, Any]]:
    saved = []
    for fmt in (_keras_io.FORMATS[name] for name in relay_model.formats):
        if fmt.unavailable(k):
            continue
        folder = root / "keras" / relay_model.name / fmt.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        entry: dict[str, Any] = {"family": "keras", "model": relay_model.name, "format": fmt.name}
        entry["unsafe"] = bool(fmt.unsafe)
        try:
            fmt.save(model, folder / f"model{fmt.suffix}")
        except Exception as exc:  # e.g. h5 of a subclassed model: recorded, never a crash
            entry["save_error"] = error_text(exc)
        entry["path"] = folder.relative_to(root).as_posix()
        entry["files"] = _hashes(folder)
        saved.append(entry)
    return saved


def _produce_one(relay_model: RelayModel, root: Path, k: Any) -> list[dict[str, Any]]:
    """Train, record, save in every format; then the training-mode call and one more step, in the consumer's order."""
    x, _ = relay_model.data()
    model = relay_model.build_trained()
    recorded: dict[str, Any] = {
        "predictions": relay_model.predict(model, x).tolist(),
        "weights": relay_model.layout(model),
    }
    state = _keras_io.optimizer_state(model)
    recorded["optimizer"] = {"count": len(state), "sha256": _keras_io.state_digest(state)}
    saved = _save_all(model, relay_model, root, k)
    # after saving: a training-mode call moves BatchNormalization's moving statistics, as it will in the consumer
    deterministic = relay_model.deterministic
    recorded["training_predictions"] = relay_model.training_predict(model, x).tolist() if deterministic else None
    relay_model.fit_step(model)
    recorded["continued_predictions"] = relay_model.predict(model, x).tolist() if deterministic else None
    for entry in saved:
        entry.update(recorded)
    return saved


def _unbuilt(relay_model: RelayModel, k: Any, exc: Exception) -> list[dict[str, Any]]:
    """A model this version cannot build, train or save: a save error in each of its formats, not a crash."""
    error = f"{error_text(exc)} (raised while building, training or saving {relay_model.name})"  # class first
    return [
        {"family": "keras", "model": relay_model.name, "format": name, "unsafe": bool(fmt.unsafe), "save_error": error}
        for name, fmt in ((name, _keras_io.FORMATS[name]) for name in relay_model.formats)
        if not fmt.unavailable(k)
    ]


def produce(root: Path) -> list[dict[str, Any]]:
    """Every Keras relay model in every format this version can save, with what a consumer must reproduce."""
    k = keras()
    entries = []
    for relay_model in RELAY_MODELS.values():
        if not relay_model.trains_here():
            continue
        try:
            entries += _produce_one(relay_model, root, k)
        except Exception as exc:  # one model a version cannot build costs that model, not the relay
            entries += _unbuilt(relay_model, k, exc)
    return entries


def _optimizer_outcome(state: list[np.ndarray], entry: dict[str, Any]) -> str:
    if state and _keras_io.state_digest(state) == entry["optimizer"]["sha256"]:
        return "kept"
    producer_had = entry["optimizer"]["count"] > 0
    return "lost" if producer_had and not any(np.any(v) for v in state) else "changed"


def consume(entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Load one Keras artifact as a user would and compare it with what its producer recorded."""
    fmt = _keras_io.FORMATS.get(entry["format"])
    relay_model = RELAY_MODELS.get(entry["model"])
    if fmt is None or relay_model is None:
        return {"outcome": "skip", "message": f"{entry['model']} in {entry['format']} is unknown to this compat-matrix"}
    x, _ = relay_model.data()
    k = keras()
    _keras_io.custom_classes(k)  # a real consumer imports its custom code before loading
    _keras_zoo.custom_objects(k)
    attempt = relay_model.load(fmt, folder / f"model{fmt.suffix}")
    loaded = attempt.value
    got = loaded.predict(x)
    model = loaded.model
    training = layout = None
    if hasattr(model, "get_weights") and hasattr(model, "fit"):  # a Keras model, not a bare SavedModel
        layout = relay_model.layout(model)
        training = relay_model.training_predict(model, x) if entry.get("training_predictions") is not None else None
    result = compared(attempt, got, entry, training=training, layout=layout)
    result["signatures"] = _keras_io.signatures_text(model)
    if not fmt.keeps_optimizer:
        result["optimizer"] = "n/a"
        return fallback_only(result, attempt)
    state = loaded.optimizer or []
    result["optimizer"] = _optimizer_outcome(state, entry)
    if result["optimizer"] == "lost" and result["outcome"] == "loaded":
        result["outcome"] = "optimizer-state-lost"
    continued = entry.get("continued_predictions")
    trained = model is not None and getattr(model, "optimizer", None) is not None and state
    if trained and continued is not None and relay_model.trains_here():
        relay_model.fit_step(model)
        result["continuation_max_abs_error"] = errors(relay_model.predict(model, x), np.array(continued))[0]
    return fallback_only(result, attempt)
