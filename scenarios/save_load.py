"""save_load: within one environment, every format the version offers, saved and loaded back.

The models and formats live in ``scenarios._keras_io`` / ``scenarios._torch_io``, shared with the cross-version
relay. Invariants checked: whatever loads predicts exactly what the saved model predicted, and it loads by the
plain call a user writes (``scenarios._loads``): a model that loads only with ``compile=False``, ``custom_objects``
or ``weights_only=False`` fails the cell, naming the workaround and the plain call's error. Everything else is
recorded, not assumed: which formats save, which load, whether the optimizer state survives (the classic pitfall),
what warnings are emitted, what ``torch.load`` does by default (``plain_load``).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from harness.worker.checks import allclose
from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios import _keras_io, _torch_io
from scenarios._frameworks import keras, keras_identity
from scenarios._loads import PLAIN, capture_warnings, finding


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


def keras_round_trip(ctx: Context, format_name: str) -> None:
    """Save each model after one training step in ``format_name``, load it back as a user would, compare.

    A model that loads only with a workaround (``compile=False``, ``custom_objects``) fails the cell: the user's
    plain ``load_model(path)`` broke. Its outcome record names the workaround, as before.
    """
    k = keras()
    fmt = _keras_io.FORMATS[format_name]
    reason = fmt.unavailable(k)
    if reason:
        ctx.skip(reason)
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    outcomes: dict[str, str] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for model_name in _keras_io.MODELS:
            model = _keras_io.build_trained(model_name)
            expected = _keras_io.predict(model, x)
            saved_state = _keras_io.optimizer_state(model)
            path = Path(folder) / f"{model_name}{fmt.suffix}"
            try:
                _, save_warnings = capture_warnings(functools.partial(fmt.save, model, path))
            except Exception as exc:
                outcomes[model_name], errors[model_name] = f"save-error: {type(exc).__name__}", error_text(exc)
                continue
            try:
                attempt = _keras_io.load(fmt, path, model_name)
            except Exception as exc:
                outcomes[model_name], errors[model_name] = f"load-error: {type(exc).__name__}", error_text(exc)
                continue
            loaded = attempt.value
            got = loaded.predict(x)
            outcomes[model_name] = attempt.how
            ctx.record(f"{model_name}.predictions", got)
            ctx.record(f"{model_name}.warnings", {"save": save_warnings, "load": attempt.warnings}, kind="info")
            state = optimizer_outcome(saved_state, loaded.optimizer if fmt.keeps_optimizer else None)
            ctx.record(f"{model_name}.optimizer_state", state)
            allclose(ctx, f"{model_name}_predictions_survive", got, expected, rtol=0, atol=1e-6)
            ctx.check(f"{model_name}_loads_plain", attempt.how == PLAIN, finding(attempt))
    ctx.record("outcomes", outcomes, kind="outcomes")
    if errors:  # the wording of an error changes between releases: shown, never judged (its class is, above)
        ctx.record("errors", errors, kind="info")
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


def _record_plain_load(ctx: Context, fmt: _torch_io.TorchFormat, error: BaseException | None) -> None:
    """What the plain call did, where a user might reach for a fallback: "loaded" or the error's class."""
    if fmt.fallback is not None:
        ctx.record("plain_load", PLAIN if error is None else type(error).__name__, kind="text")


def torch_round_trip(ctx: Context, format_name: str) -> None:
    """Save after one training step, load back as a user would, compare; a load only a fallback makes is a fail.

    A format's own call that refuses (``weights_only=True`` on custom classes) is recorded, not failed.
    """
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
            _, save_warnings = capture_warnings(lambda: fmt.save(model, optimizer, Path(folder)))
        except Exception as exc:
            ctx.record("outcome", f"save-error: {type(exc).__name__}")
            ctx.fail(f"saving failed: {error_text(exc)}")
        try:
            attempt = _torch_io.load(fmt, Path(folder))
        except Exception as exc:
            _record_plain_load(ctx, fmt, exc)
            ctx.record("outcome", f"load-error: {type(exc).__name__}")
            ctx.record("error", error_text(exc), kind="info")  # the wording is shown, never judged
            ctx.note("a load error is recorded, not failed: formats may legitimately refuse (weights_only)")
            return
    _record_plain_load(ctx, fmt, attempt.plain_error)
    loaded = attempt.value
    got = loaded.predict(x)
    ctx.record("outcome", attempt.how)
    ctx.record("warnings", {"save": save_warnings, "load": attempt.warnings}, kind="info")
    ctx.record("predictions", got)
    allclose(ctx, "predictions_survive", got, expected, rtol=0, atol=1e-6)
    ctx.check("loads_plain", attempt.how == PLAIN, finding(attempt))
    if fmt.keeps_optimizer:
        state = optimizer_outcome(saved_state, _torch_io.optimizer_state(loaded.optimizer))
        ctx.record("optimizer_state", state)
        ctx.check("optimizer_state_survives", state == "kept", state=state)


for _name, _doc in (
    ("state_dict", "``state_dict`` saved, loaded by plain ``torch.load`` into a fresh module."),
    ("checkpoint", "a training checkpoint (model and Adam state dicts), loaded by plain ``torch.load``."),
    ("safetensors", "``safetensors.torch.save_file`` / ``load_file`` (the tensor format that cannot hold code)."),
    ("training_checkpoint", "a checkpoint with model, optimizer, LR scheduler and epoch, plain ``torch.load``."),
    ("pickle_default_load", "a full-model pickle loaded by plain ``torch.load``: what the default does (2.6 flipped "
     "``weights_only`` to True), recorded as ``plain_load``; loading only with ``weights_only=False`` fails the "
     "cell. Labelled unsafe: it may unpickle code."),
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
        fresh.load_state_dict(_torch_io.plain_load(path))
    loaded = _torch_io.optimizer_state(fresh)
    outcome = optimizer_outcome(saved, loaded)
    ctx.record("outcome", outcome)
    ctx.record("param_group", {k: v for k, v in fresh.state_dict()["param_groups"][0].items() if k != "params"})
    ctx.check("state_survives", outcome == "kept", outcome=outcome, tensors=len(saved))
