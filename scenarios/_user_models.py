"""Loading the user's saved models (matrix ``models:``): the cell behind every ``user.model_<name>``.

Plain call first: the model is judged by the call its user writes (``keras.models.load_model(path)``,
``torch.load(path)``, ``torch.export.load(path)``); when that fails, the usual workarounds are tried and recorded as
findings (``compile=False``, ``safe_mode=False``, ``TFSMLayer`` for a SavedModel under Keras 3, ``weights_only=False``),
so a model that loads only with a workaround still blocks the upgrade, with the error of the plain call. Records:

- ``load`` (outcomes): each call tried -> ``loaded`` or the error (its class and message, so a verdict names it);
- ``predictions`` on the sample inputs, from the first call that worked; ``expected`` as a check when given;
- ``compiled`` (config, Keras): the optimizer's class and learning rate, the loss and the metrics it was saved with,
  when a call that compiles loaded the model. What ``compile=False`` or ``TFSMLayer`` gives is no measure of the
  saved compile state (compiling was skipped): the record is then an ``info`` saying so, which is shown and never
  judged, as comparing it (or its absence) would give a second reason for the one broken plain call.

The cell runs in the sandbox (harness.pipeline): loading a model can run code from the file.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, fail
from scenarios._frameworks import is_keras3, keras, to_numpy

Attempt = tuple[str, Callable[[], Any]]


def sample_inputs(spec: str | dict[str, Any]) -> np.ndarray:
    """The first array of an ``.npz``, or a seeded standard normal of ``{shape, seed, dtype}``."""
    if isinstance(spec, str):
        with np.load(spec, allow_pickle=False) as data:
            return np.asarray(data[data.files[0]])
    draw = np.random.default_rng(int(spec["seed"])).standard_normal(tuple(spec["shape"]))
    return draw.astype(spec["dtype"])


def _first_that_loads(attempts: list[Attempt]) -> tuple[dict[str, str], Any]:
    """Try the calls in order until one works; each tried call's outcome, and what the working one returned (the
    last label in the outcomes is then the call that worked)."""
    outcomes: dict[str, str] = {}
    for label, call in attempts:
        try:
            loaded = call()
        except Exception as exc:
            outcomes[label] = error_text(exc, 300)
            continue
        outcomes[label] = "loaded"
        return outcomes, loaded
    return outcomes, None


#: The Keras calls that load a model compiled as it was saved (the others skip compiling or give a layer).
_COMPILING_CALLS = frozenset({"load_model(path)", "load_model(path, safe_mode=False)"})


def _keras_attempts(path: str) -> list[Attempt]:
    k = keras()
    attempts: list[Attempt] = [
        ("load_model(path)", lambda: k.models.load_model(path)),
        ("load_model(path, compile=False)", lambda: k.models.load_model(path, compile=False)),
    ]
    if is_keras3(k):
        attempts.append(("load_model(path, safe_mode=False)", lambda: k.models.load_model(path, safe_mode=False)))
        if Path(path).is_dir():
            attempts.append(("keras.layers.TFSMLayer(path)", lambda: k.layers.TFSMLayer(path)))
    return attempts


def _compiled_state(model: Any) -> dict[str, Any]:
    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    rate = getattr(optimizer, "learning_rate", None)
    getter = getattr(model, "get_compile_config", None)  # Keras >= 2.13: what compile() was given
    config = (getter() if callable(getter) else None) or {}
    return {
        "optimizer": type(optimizer).__name__ if optimizer is not None else "none",
        "learning_rate": float(to_numpy(rate)) if rate is not None and not callable(rate) else None,
        "loss": loss if isinstance(loss, str) else type(loss).__name__ if loss is not None else "none",
        "metrics": json.loads(json.dumps(config.get("metrics"), default=str)),
    }


def _keras_model(ctx: Context, entry: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    outcomes, model = _first_that_loads(_keras_attempts(entry["path"]))
    ctx.record("load", outcomes, kind="outcomes")
    if model is None:
        return None
    loaded_by = list(outcomes)[-1]
    if loaded_by in _COMPILING_CALLS:
        ctx.record("compiled", _compiled_state(model), kind="config")  # "none": saved without compiling
    else:
        ctx.record("compiled", {"not measured": f"loaded by {loaded_by}, which does not compile"}, kind="info")
    out = model.predict(x, verbose=0) if hasattr(model, "predict") else model(x)
    if isinstance(out, dict):  # a SavedModel signature through TFSMLayer: its one (or first) output
        out = out[sorted(out)[0]]
    return np.asarray(to_numpy(out))


def _torch_module(entry: dict[str, Any], loaded: Any) -> Any:
    """A module to call: the loaded one, the exported program's, or the user's module with a state_dict loaded."""
    if hasattr(loaded, "module") and type(loaded).__name__ == "ExportedProgram":
        return loaded.module()
    if isinstance(loaded, dict):
        if not entry.get("module"):
            raise TypeError("the file holds a state_dict: name the callable that builds its module (module:)")
        module_name, _, attribute = str(entry["module"]).partition(":")
        model = getattr(importlib.import_module(module_name), attribute)()
        model.load_state_dict(loaded)
        return model
    return loaded


def _torch_model(ctx: Context, entry: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    import torch

    path = entry["path"]
    attempts: list[Attempt] = (
        [("torch.export.load(path)", lambda: torch.export.load(path))]
        if path.endswith(".pt2")
        else [
            ("torch.load(path)", lambda: torch.load(path)),
            ("torch.load(path, weights_only=False)", lambda: torch.load(path, weights_only=False)),
        ]
    )
    outcomes, loaded = _first_that_loads(attempts)
    try:
        model = _torch_module(entry, loaded) if loaded is not None else None
    except Exception as exc:  # loaded, but not into something that predicts
        outcomes["module"], model = error_text(exc, 300), None
    ctx.record("load", outcomes, kind="outcomes")
    if model is None:
        return None
    if hasattr(model, "eval"):
        model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    return np.asarray(out.detach().numpy())


def run_model(ctx: Context, entry: dict[str, Any]) -> None:
    """Load the model the plain way first, predict on its sample inputs, compare with its expected outputs."""
    for module in entry.get("imports") or []:  # the user's code that registers the model's custom objects
        importlib.import_module(module)
    x = sample_inputs(entry["inputs"])
    predict = _keras_model if entry["framework"] == "keras" else _torch_model
    predictions = predict(ctx, entry, x)
    if predictions is None:
        fail(f"{entry['display_path']} does not load: {ctx.records['load'][1]}")
    ctx.record("predictions", predictions)
    if entry.get("expected"):
        _check_expected(ctx, predictions, sample_inputs(str(entry["expected"])))


def _check_expected(ctx: Context, predictions: np.ndarray, expected: np.ndarray) -> None:
    """Within float32's usual tolerance of the outputs the user saved (rtol 1e-5, atol 1e-6)."""
    if expected.shape != predictions.shape:
        ctx.check("matches_expected", False, f"shape {list(predictions.shape)}, expected {list(expected.shape)}")
        return
    error = np.abs(predictions.astype(np.float64) - expected.astype(np.float64))
    ok = bool(np.all(error <= 1e-6 + 1e-5 * np.abs(expected)))
    ctx.check("matches_expected", ok, max_abs_error=float(error.max(initial=0.0)))
