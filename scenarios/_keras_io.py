"""Keras models and save/load formats, shared by the save_load scenarios and the cross-version relay.

One home for how a model is built, trained one step, saved in a format and loaded back, so that a within-version
round trip and a saved-in-A-loaded-in-B relay exercise exactly the same code. Every builder produces the same
architecture and the same initial weights (from a NumPy RNG, not the framework's) in any Keras version, so
predictions are comparable across versions even before anything is saved.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenarios._frameworks import is_keras3, keras, keras_backend, to_numpy
from scenarios._loads import Fallback, LoadAttempt, load_as_user

__all__ = [
    "FORMATS",
    "MODELS",
    "KerasFormat",
    "build_trained",
    "fallbacks",
    "fixed_inputs",
    "load",
    "optimizer_state",
    "predict",
]

FEATURES, HIDDEN, OUTPUTS = 4, 8, 3


def fixed_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets every environment uses: from NumPy's own generator, independent of the framework."""
    rng = np.random.default_rng(20261121)
    x = rng.normal(size=(8, FEATURES)).astype(np.float32)
    y = rng.normal(size=(8, OUTPUTS)).astype(np.float32)
    return x, y


@functools.cache
def custom_classes(k: Any) -> tuple[type, type]:
    """A registered custom layer (weights via ``add_weight``) and a subclassed model using it."""
    register = getattr(getattr(k, "saving", None), "register_keras_serializable", None)
    register = register or k.utils.register_keras_serializable

    @register(package="compat_matrix")
    class ScaleShift(k.layers.Layer):  # type: ignore[misc]  # the frameworks are untyped: their classes are Any
        def __init__(self, units: int = OUTPUTS, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape: Any) -> None:
            self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), self.units))
            self.scale = self.add_weight(name="scale", shape=(self.units,), initializer="ones")
            super().build(input_shape)

        def call(self, inputs: Any) -> Any:
            ops = k.ops if is_keras3(k) else __import__("tensorflow")
            return ops.matmul(inputs, self.kernel) * self.scale

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "units": self.units}

    @register(package="compat_matrix")
    class Subclassed(k.Model):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hidden = k.layers.Dense(HIDDEN, activation="relu")
            self.head = ScaleShift(OUTPUTS)

        def call(self, inputs: Any) -> Any:
            return self.head(self.hidden(inputs))

        def get_config(self) -> dict[str, Any]:
            return {"name": self.name}

    return ScaleShift, Subclassed


def _sequential(k: Any) -> Any:
    return k.Sequential([k.Input((FEATURES,)), k.layers.Dense(HIDDEN, activation="relu"), k.layers.Dense(OUTPUTS)])


def _functional(k: Any) -> Any:
    inputs = k.Input((FEATURES,))
    hidden = k.layers.Dense(HIDDEN, activation="tanh")(inputs)
    merged = k.layers.Add()([k.layers.Dense(OUTPUTS)(hidden), k.layers.Dense(OUTPUTS)(inputs)])
    return k.Model(inputs, merged)


def _subclassed(k: Any) -> Any:
    _, subclassed = custom_classes(k)
    model = subclassed()
    model(np.zeros((1, FEATURES), dtype=np.float32))
    return model


MODELS: dict[str, Callable[[Any], Any]] = {
    "sequential": _sequential,
    "functional": _functional,
    "subclassed": _subclassed,
}


def _set_fixed_weights(model: Any) -> None:
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(-0.5, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])


def build(name: str) -> Any:
    """An untrained model with fixed weights (what a weights-only format loads into)."""
    k = keras()
    model = MODELS[name](k)
    _set_fixed_weights(model)
    model.compile(optimizer=k.optimizers.Adam(learning_rate=0.01), loss="mse")
    return model


def build_trained(name: str) -> Any:
    """The model after one training step, so its optimizer has state (moments, iteration count)."""
    model = build(name)
    x, y = fixed_inputs()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return model


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(to_numpy(model(x, training=False)), dtype=np.float32)


def optimizer_state(model: Any) -> list[np.ndarray]:
    """The optimizer's variables (iteration count and moments) as arrays; empty when there is no state."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    variables = optimizer.variables
    variables = variables() if callable(variables) else variables
    return [np.array(to_numpy(v)) for v in variables]


def state_digest(arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Loaded:
    """What came back from an artifact: a predict function and, for full-model formats, the optimizer state."""

    predict: Callable[[np.ndarray], np.ndarray]
    optimizer: list[np.ndarray] | None
    model: Any = None


@dataclass(frozen=True)
class KerasFormat:
    """A way of saving a Keras model: when it exists, how to save, how to load."""

    name: str
    suffix: str
    keeps_optimizer: bool
    unavailable: Callable[[Any], str | None]
    save: Callable[[Any, Path], None]
    load: Callable[[Path, str], Loaded]
    unsafe: str = ""  # why loading it can run code from the file; the relay loads such a format only in the sandbox


def _load_model(path: Path, model_name: str, **options: Any) -> Loaded:
    """``load_model(path)`` with exactly the ``options`` given: none is the plain call (``safe_mode`` left on)."""
    k = keras()
    model = k.models.load_model(str(path), **options)
    return Loaded(predict=lambda x: predict(model, x), optimizer=optimizer_state(model), model=model)


def _load_weights(path: Path, model_name: str) -> Loaded:
    model = build(model_name)
    model.load_weights(str(path))
    return Loaded(predict=lambda x: predict(model, x), optimizer=None, model=model)


def signature_views(signatures: Any) -> dict[str, Any]:
    """A SavedModel's serving signatures as TF Serving reads them: per name, the input names with shape and dtype,
    and the output keys (a serving client is built against exactly these)."""
    views: dict[str, Any] = {}
    for name, signature in sorted(signatures.items()):
        _, inputs = signature.structured_input_signature
        views[str(name)] = {
            "inputs": {key: [list(spec.shape.as_list()), spec.dtype.name] for key, spec in sorted(inputs.items())},
            "outputs": sorted(signature.structured_outputs),
        }
    return views


def signatures_text(model: Any) -> str:
    """One line naming the signatures a loaded SavedModel offers (``n/a`` for a Keras model, which has none):
    the relay compares B's reading of A's files with A's own."""
    signatures = getattr(model, "signatures", None)
    if signatures is None or not hasattr(signatures, "items"):
        return "n/a"
    try:
        views = signature_views(signatures)
    except Exception as exc:  # a signature this TensorFlow cannot describe is itself the finding
        return f"unreadable: {type(exc).__name__}"
    return "; ".join(_signature_line(name, view) for name, view in views.items()) or "none"


def _signature_line(name: str, view: dict[str, Any]) -> str:
    inputs = ", ".join(f"{key} {shape} {dtype}" for key, (shape, dtype) in view["inputs"].items())
    return f"{name}({inputs}) -> {', '.join(view['outputs'])}"


def _load_tf_saved_model(path: Path, model_name: str) -> Loaded:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def run(x: np.ndarray) -> np.ndarray:
        if hasattr(loaded, "serve"):
            out = loaded.serve(tf.constant(x))
        else:
            signature = loaded.signatures["serving_default"]
            out = signature(tf.constant(x))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return np.asarray(out.numpy(), dtype=np.float32)

    return Loaded(predict=run, optimizer=None, model=loaded)


def _needs_tf_backend(k: Any) -> str | None:
    if keras_backend(k) != "tensorflow":
        return f"needs the TensorFlow backend (this is Keras {k.__version__} on {keras_backend(k)})"
    return None


def _keras3_only_not(k: Any, what: str) -> str | None:
    return f"{what} is gone in Keras 3 ({k.__name__} {k.__version__})" if is_keras3(k) else None


def _save_dir(model: Any, path: Path) -> None:
    model.save(str(path), save_format="tf")


def _save_tf(model: Any, path: Path) -> None:
    import tensorflow as tf

    tf.saved_model.save(model, str(path))


def _unavailable_export(k: Any) -> str | None:
    if not hasattr(k.Model, "export"):
        return f"Model.export does not exist in {k.__name__} {k.__version__}"
    return _needs_tf_backend(k)


def _unavailable_keras_format(k: Any) -> str | None:
    major, minor = (int(p) for p in k.__version__.split(".")[:2])
    return None if (major, minor) >= (2, 13) else f"the .keras format needs Keras >= 2.13 ({k.__version__})"


#: Full-model formats name classes and functions in their config, which loading imports and calls; ``safe_mode``
#: is meant to stop that and has been bypassed release after release (CVE-2025-1550, -8747, -9905, -9906), and
#: Keras 2's legacy loaders do not have it. A SavedModel carries a TensorFlow graph that loading runs.
_CONFIG = "a full model: loading imports and calls what its config names (safe_mode has been bypassed)"
_GRAPH = "a SavedModel: loading and calling it runs the TensorFlow graph stored in the file"

FORMATS: dict[str, KerasFormat] = {
    f.name: f
    for f in (
        KerasFormat(
            "keras", ".keras", True, _unavailable_keras_format, lambda m, p: m.save(str(p)), _load_model, _CONFIG
        ),
        KerasFormat("h5", ".h5", True, lambda k: None, lambda m, p: m.save(str(p)), _load_model, _CONFIG),
        KerasFormat(
            "savedmodel_dir", "", True, lambda k: _keras3_only_not(k, "model.save(<dir>) (SavedModel)"), _save_dir,
            _load_model, _GRAPH,
        ),
        KerasFormat("tf_saved_model", "", False, _needs_tf_backend, _save_tf, _load_tf_saved_model, _GRAPH),
        KerasFormat(
            "export", "", False, _unavailable_export, lambda m, p: m.export(str(p)), _load_tf_saved_model, _GRAPH
        ),
        KerasFormat(
            "weights_h5", ".weights.h5", False, lambda k: None, lambda m, p: m.save_weights(str(p)), _load_weights
        ),
        KerasFormat(
            "tf_checkpoint", "", False,
            lambda k: _keras3_only_not(k, "save_weights in the TensorFlow checkpoint format"),
            lambda m, p: m.save_weights(str(p / "ckpt"), save_format="tf"),
            lambda p, name: _load_weights(p / "ckpt", name),
        ),
    )
}  # fmt: skip


def accepts_safe_mode() -> bool:
    """Whether this Keras' ``load_model`` has a ``safe_mode`` switch (Keras >= 2.13)."""
    try:
        return "safe_mode" in inspect.signature(keras().models.load_model).parameters
    except (TypeError, ValueError):
        return False


def fallbacks(
    fmt: KerasFormat,
    path: Path,
    model_name: str,
    *,
    objects: dict[str, Any] | None = None,
    load_full: Callable[..., Loaded] = _load_model,
) -> list[Fallback]:
    """The usual workarounds for a full model that does not load: pass the custom objects, skip compiling, and
    (where ``load_model`` has it) ``safe_mode=False``, which a Keras 3 user needs for a ``Lambda`` layer's code.

    ``objects`` adds custom objects to the core ones; ``load_full`` is how a full model is loaded (the relay zoo
    wraps the model in its own predict function).
    """
    if fmt.load is not _load_model:
        return []
    scale_shift, subclassed = custom_classes(keras())
    objects = {"ScaleShift": scale_shift, "Subclassed": subclassed, **(objects or {})}

    def attempt(**options: Any) -> Callable[[], Loaded]:
        return lambda: load_full(path, model_name, **options)

    found = [
        Fallback("loaded-with-custom-objects", "custom_objects", attempt(custom_objects=objects)),
        Fallback("loaded-without-compile", "compile=False", attempt(compile=False)),
        Fallback(
            "loaded-with-custom-objects-without-compile",
            "custom_objects and compile=False",
            attempt(custom_objects=objects, compile=False),
        ),
    ]
    if accepts_safe_mode():
        found += [
            Fallback("loaded-without-safe-mode", "safe_mode=False", attempt(safe_mode=False)),
            Fallback(
                "loaded-without-safe-mode-without-compile",
                "safe_mode=False and compile=False",
                attempt(safe_mode=False, compile=False),
            ),
        ]
    return found


def load(fmt: KerasFormat, path: Path, model_name: str) -> LoadAttempt:
    """Load as a user would: the format's plain call, then the workarounds (a working one is a finding)."""
    return load_as_user(lambda: fmt.load(path, model_name), fallbacks(fmt, path, model_name))
