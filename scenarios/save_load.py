"""save_load: within one environment, every format the version offers, saved and loaded back.

The models and formats live in ``scenarios._keras_io`` / ``scenarios._torch_io``, shared with the cross-version
relay. Invariant checked: whatever loads predicts exactly what the saved model predicted. Everything else is
recorded, not assumed: which formats save, which load, whether the optimizer state survives (the classic pitfall),
whether custom objects must be passed, what warnings are emitted, what ``torch.load`` does by default.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.checks import allclose
from harness.worker.scenario import Context, scenario
from scenarios import _keras_io, _torch_io
from scenarios._frameworks import keras, keras_identity

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def optimizer_outcome(saved: list[np.ndarray], loaded: list[np.ndarray] | None) -> str:
    """kept (every variable equal), lost (none came back), changed (some differ), or n/a."""
    if loaded is None:
        return "n/a"
    if not loaded or not saved:
        return "lost" if saved else "none-saved"
    if len(loaded) == len(saved) and all(np.array_equal(a, b) for a, b in zip(saved, loaded, strict=True)):
        return "kept"
    if all(not np.any(v) for v in loaded):
        return "lost"
    return "changed"


def keras_load(fmt: _keras_io.KerasFormat, path: Path, model_name: str) -> tuple[Any, str, list[str]]:
    """Load as a user would, then with the usual workarounds; return what loaded, how, and the warnings.

    Full-model formats are retried with explicit ``custom_objects`` and then with ``compile=False``: the status
    says which was needed ("loaded", "loaded-with-custom-objects", "loaded-without-compile", ...), so a format
    that only loads with a workaround is visible as such. The first error is raised when nothing works.
    """
    try:
        loaded, warned = _keras_io.capture_warnings(lambda: fmt.load(path, model_name))
        return loaded, "loaded", warned
    except Exception as first:
        if fmt.load is not _keras_io.FORMATS["keras"].load:
            raise
        scale_shift, subclassed = _keras_io.custom_classes(keras())
        objects = {"ScaleShift": scale_shift, "Subclassed": subclassed}
        attempts = (
            ("loaded-with-custom-objects", {"custom_objects": objects}),
            ("loaded-without-compile", {"compile": False}),
            ("loaded-with-custom-objects-without-compile", {"custom_objects": objects, "compile": False}),
        )
        for status, options in attempts:
            try:
                loaded, warned = _keras_io.capture_warnings(
                    lambda o=options: _keras_io._load_model(path, model_name, **o)
                )
            except Exception:
                continue
            return loaded, status, warned
        raise first from None


def keras_round_trip(ctx: Context, format_name: str) -> None:
    """Save each model after one training step in ``format_name``, load it back, compare."""
    k = keras()
    fmt = _keras_io.FORMATS[format_name]
    reason = fmt.unavailable(k)
    if reason:
        ctx.skip(reason)
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    outcomes: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for model_name in _keras_io.MODELS:
            model = _keras_io.build_trained(model_name)
            expected = _keras_io.predict(model, x)
            saved_state = _keras_io.optimizer_state(model)
            path = Path(folder) / f"{model_name}{fmt.suffix}"
            try:
                _, save_warnings = _keras_io.capture_warnings(lambda m=model, p=path: fmt.save(m, p))
            except Exception as exc:
                outcomes[model_name] = f"save-error: {_first_line(exc)}"
                continue
            try:
                loaded, status, load_warnings = keras_load(fmt, path, model_name)
            except Exception as exc:
                outcomes[model_name] = f"load-error: {_first_line(exc)}"
                continue
            got = loaded.predict(x)
            outcomes[model_name] = status
            ctx.record(f"{model_name}.predictions", got)
            ctx.record(f"{model_name}.warnings", {"save": save_warnings, "load": load_warnings}, kind="info")
            state = optimizer_outcome(saved_state, loaded.optimizer if fmt.keeps_optimizer else None)
            ctx.record(f"{model_name}.optimizer_state", state)
            allclose(ctx, f"{model_name}_predictions_survive", got, expected, rtol=0, atol=1e-6)
    ctx.record("outcomes", outcomes, kind="config")
    ctx.check("something_round_trips", any(v.startswith("loaded") for v in outcomes.values()), outcomes=outcomes)


def _register(framework: str, format_name: str, doc: str) -> None:
    """One scenario per framework and format, e.g. ``save_load.keras_h5`` or ``save_load.torch_state_dict``."""
    round_trip = keras_round_trip if framework == "keras" else torch_round_trip

    def run(ctx: Context) -> None:
        round_trip(ctx, format_name)

    run.__doc__ = doc
    run.__name__ = f"{framework}_{format_name}"
    scenario(area="save_load", requires=[framework], timeout=600)(run)


for _name, _doc in (
    ("keras", "The native ``.keras`` zip format (Keras >= 2.13): full model with optimizer state."),
    ("h5", "Legacy HDF5 full-model saving: still loads? optimizer kept? which models can it hold at all?"),
    ("savedmodel_dir", "``model.save(<dir>)`` as a TensorFlow SavedModel (Keras 2 only; Keras 3 refuses it)."),
    ("tf_saved_model", "``tf.saved_model.save`` of a Keras model, served through ``tf.saved_model.load``."),
    ("export", "``model.export(<dir>)``: an inference-only SavedModel (``serve`` endpoint)."),
    ("weights_h5", "Weights only (``.weights.h5``) loaded into a freshly built model."),
    ("tf_checkpoint", "Weights only in TensorFlow's checkpoint format (Keras 2 only)."),
):
    _register("keras", _name, "Catches a change in round-tripping Keras models through: " + _doc)


# --------------------------------------------------------------------------------------------------- torch


def torch_round_trip(ctx: Context, format_name: str) -> None:
    import torch

    fmt = _torch_io.FORMATS[format_name]
    reason = fmt.unavailable()
    if reason:
        ctx.skip(reason)
    ctx.record("torch_version", torch.__version__, kind="info")
    model, optimizer = _torch_io.build_trained()
    x, _ = _torch_io.fixed_inputs()
    expected = _torch_io.predict(model, x)
    saved_state = _torch_io.optimizer_state(optimizer)
    with tempfile.TemporaryDirectory() as folder:
        try:
            _, save_warnings = _keras_io.capture_warnings(lambda: fmt.save(model, optimizer, Path(folder)))
        except Exception as exc:
            ctx.record("outcome", f"save-error: {_first_line(exc)}")
            ctx.fail(f"saving failed: {_first_line(exc)}")
        try:
            loaded, load_warnings = _keras_io.capture_warnings(lambda: fmt.load(Path(folder)))
        except Exception as exc:
            ctx.record("outcome", f"load-error: {_first_line(exc)}")
            ctx.note("a load error is recorded, not failed: formats may legitimately refuse (weights_only)")
            return
    got = loaded.predict(x)
    ctx.record("outcome", "loaded")
    ctx.record("warnings", {"save": save_warnings, "load": load_warnings}, kind="info")
    ctx.record("predictions", got)
    allclose(ctx, "predictions_survive", got, expected, rtol=0, atol=1e-6)
    if fmt.keeps_optimizer:
        state = optimizer_outcome(saved_state, _torch_io.optimizer_state(loaded.optimizer))
        ctx.record("optimizer_state", state)
        ctx.check("optimizer_state_survives", state == "kept", state=state)


for _name, _doc in (
    ("state_dict", "``state_dict`` saved, loaded with ``weights_only=True`` into a fresh module."),
    ("checkpoint", "a training checkpoint (model and Adam state dicts), loaded with ``weights_only=True``."),
    ("pickle_default_load", "a full-model pickle loaded by plain ``torch.load``: what the default does (2.6 flipped "
     "``weights_only`` to True), recorded not assumed. Labelled unsafe: it may unpickle code."),
    ("pickle_weights_only", "a full-model pickle loaded with explicit ``weights_only=True`` (custom classes refused)."),
    ("pickle_unsafe_load", "a full-model pickle loaded with explicit ``weights_only=False`` (the unsafe path)."),
    ("torchscript_script", "``torch.jit.script`` + ``torch.jit.save`` / ``load``."),
    ("torchscript_trace", "``torch.jit.trace`` + ``torch.jit.save`` / ``load``."),
    ("torch_export", "``torch.export.export`` + ``torch.export.save`` / ``load`` (torch >= 2.1)."),
):  # fmt: skip
    _register("torch", _name, "Catches a change in round-tripping a torch module through " + _doc)


@scenario(area="save_load", requires=["torch"])
def torch_optimizer_state(ctx: Context) -> None:
    """Catches a change in saving/loading an optimizer's ``state_dict`` (Adam moments and step survive)."""
    import torch

    _, optimizer = _torch_io.build_trained()
    saved = _torch_io.optimizer_state(optimizer)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "optimizer.pt"
        torch.save(optimizer.state_dict(), path)
        fresh = torch.optim.Adam(_torch_io.build().parameters(), lr=0.01)
        fresh.load_state_dict(torch.load(path, weights_only=True))
    loaded = _torch_io.optimizer_state(fresh)
    outcome = optimizer_outcome(saved, loaded)
    ctx.record("outcome", outcome)
    ctx.record("param_group", {k: v for k, v in fresh.state_dict()["param_groups"][0].items() if k != "params"})
    ctx.check("state_survives", outcome == "kept", outcome=outcome, tensors=len(saved))
