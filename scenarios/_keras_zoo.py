"""The Keras relay zoo: a few small models that together use the layer families an upgrade breaks most often.

The three core models (``_keras_io.MODELS``) are Dense-only, so a relay of them says nothing about what changed
between Keras 2 and Keras 3 in recurrent layers (masking, cell weights), convolutions (depthwise/separable kernels),
normalization (BatchNormalization's moving statistics), attention, ``Lambda`` (``safe_mode``), custom losses and
metrics in a compiled model, or multi-input/multi-output and nested models. Each zoo model is built with weights from
a NumPy RNG (not the framework's initializers) set layer by layer, so every Keras version starts from the same numbers
whatever order its ``model.weights`` lists them in; each has its own fixed inputs and targets and is trained a few
steps so its optimizer has state. The relay saves and loads them; the save_load scenarios keep the core models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scenarios import _keras_io
from scenarios._frameworks import is_keras3, keras, keras_backend, to_numpy
from scenarios._loads import LoadAttempt, load_as_user
from scenarios._relay_compare import flat_outputs, weights_layout

__all__ = [
    "BATCH",
    "COVERAGE",
    "FAMILIES",
    "FORMATS",
    "MODELS",
    "VOCAB",
    "ZooModel",
    "build",
    "build_trained",
    "custom_objects",
    "layout",
    "load",
    "predict",
    "training_predict",
    "trains_here",
]

BATCH, STEPS, VOCAB = 8, 6, 12
TRAIN_STEPS = 3  # full-batch steps before saving: the optimizer has moments and an iteration count

#: Backends that load the zoo but do not train it: JAX compiles each zoo model's training step anew with XLA (7 s
#: for the recurrent model on these machines, 30 s to produce the whole zoo against 2 s for the core models), so a
#: JAX environment produces no zoo and loads the others' without the continued step. Its role in the matrix is the
#: consumer of the files the TensorFlow and torch backends save.
UNTRAINED_ON = ("jax",)

#: The formats the zoo is saved in: the Keras formats whose loading rebuilds the layers from their configs and
#: weights. The SavedModel formats (savedmodel_dir, tf_saved_model, export) are TensorFlow graphs that the core
#: models already relay; tracing the zoo into them costs about 50 s per Keras 2 producer (16 s and 27 s for the
#: recurrent model alone), more than the whole relay's budget. ``tf_checkpoint`` (Keras 2 only, which Keras 3 cannot
#: read at all) carries the same weights as ``weights_h5``.
FORMATS = ("keras", "h5", "weights_h5")

#: Every layer family the zoo must exercise (the coverage table below names the model that carries each).
FAMILIES = (
    "LSTM",
    "GRU",
    "SimpleRNN",
    "Bidirectional",
    "stacked return_sequences",
    "Conv1D",
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "pooling",
    "BatchNormalization moving statistics",
    "LayerNormalization",
    "Embedding mask_zero",
    "MultiHeadAttention",
    "Dropout",
    "Lambda",
    "registered custom layer",
    "registered custom loss",
    "registered custom metric",
    "multi-input multi-output",
    "nested model",
    "optimizer state",
)


# ------------------------------------------------------------------------------------------------ inputs


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def recurrent_data() -> tuple[np.ndarray, np.ndarray]:
    """Token ids in ``[1, VOCAB)`` followed by padding zeros (rows of different lengths, one full row)."""
    rng = _rng(20261202)
    lengths = rng.integers(2, STEPS + 1, size=BATCH)
    lengths[0] = STEPS
    tokens = rng.integers(1, VOCAB, size=(BATCH, STEPS)).astype(np.int32)
    tokens[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0
    return tokens, rng.normal(size=(BATCH, 2)).astype(np.float32)


def convolutional_data() -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(20261203)
    return rng.normal(size=(BATCH, 8, 8, 2)).astype(np.float32), rng.normal(size=(BATCH, 2)).astype(np.float32)


def attention_data() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two inputs (a sequence and the context it attends to); a regression score and a one-hot label."""
    rng = _rng(20261204)
    tokens = rng.normal(size=(BATCH, 5, 4)).astype(np.float32)
    context = rng.normal(size=(BATCH, 3, 4)).astype(np.float32)
    score = rng.normal(size=(BATCH, 2)).astype(np.float32)
    label = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=BATCH)]
    return [tokens, context], [score, label]


def lambda_data() -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(20261205)
    return rng.normal(size=(BATCH, 4)).astype(np.float32), rng.normal(size=(BATCH, 2)).astype(np.float32)


# ------------------------------------------------------------------------------------------------ custom objects


def _ops(k: Any) -> Any:
    """Elementwise ops with the same names in both lines: ``keras.ops`` (Keras 3) and ``keras.backend`` (Keras 2)."""
    return k.ops if is_keras3(k) else k.backend


@functools.cache
def custom_objects(k: Any) -> dict[str, Any]:
    """The zoo's registered loss and metric (and the core custom layer it reuses), by the names a config uses."""
    register = getattr(getattr(k, "saving", None), "register_keras_serializable", None)
    register = register or k.utils.register_keras_serializable
    ops = _ops(k)

    def zoo_loss(y_true: Any, y_pred: Any) -> Any:
        """Squared error plus a tenth of the absolute error: a loss no Keras ships, so loading must find ours."""
        diff = y_true - y_pred
        return ops.mean(ops.square(diff), axis=-1) + 0.1 * ops.mean(ops.abs(diff), axis=-1)

    def zoo_max_error(y_true: Any, y_pred: Any) -> Any:
        return ops.max(ops.abs(y_true - y_pred), axis=-1)

    scale_shift, _ = _keras_io.custom_classes(k)
    functions = {f.__name__: register(package="compat_matrix")(f) for f in (zoo_loss, zoo_max_error)}
    return {"ScaleShift": scale_shift, **functions}


# ------------------------------------------------------------------------------------------------ architectures


def _recurrent(k: Any) -> Any:
    """Built so Keras 2 does not register a cuDNN and a standard variant of each LSTM/GRU at every construction
    (about 0.5 s per layer, each time the model is built or loaded; most of the zoo's cost in a Keras 2 consumer):
    the GRU and SimpleRNN unrolled over the six steps, the LSTM without a bias (cuDNN needs one). Same math. Not an
    unrolled LSTM: Keras 3.15 on torch cannot run an unrolled RNN with ``go_backwards`` (Bidirectional's backward
    half) over a mask ("'tuple' object has no attribute 'shape'")."""
    layers = k.layers
    tokens = k.Input((STEPS,), dtype="int32", name="tokens")
    h = layers.Embedding(VOCAB, 4, mask_zero=True)(tokens)
    h = layers.Bidirectional(layers.LSTM(4, return_sequences=True, use_bias=False))(h)
    h = layers.GRU(4, return_sequences=True, unroll=True)(h)
    h = layers.SimpleRNN(4, unroll=True)(h)
    return k.Model(tokens, layers.Dense(2)(h), name="recurrent")


def _convolutional(k: Any) -> Any:
    layers = k.layers
    image = k.Input((8, 8, 2), name="image")
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    h = layers.BatchNormalization()(h)
    h = layers.DepthwiseConv2D(3, padding="same")(h)
    h = layers.SeparableConv2D(4, 3, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Reshape((16, 4))(h)
    h = layers.Conv1D(4, 3, activation="relu")(h)
    h = layers.GlobalAveragePooling1D()(h)
    return k.Model(image, layers.Dense(2)(h), name="convolutional")


def _attention(k: Any) -> Any:
    layers = k.layers
    tokens, context = k.Input((5, 4), name="tokens"), k.Input((3, 4), name="context")
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=2)(tokens, context)
    h = layers.LayerNormalization()(layers.Add()([tokens, attended]))
    h = layers.Dropout(0.25)(h)
    feed_forward = k.Sequential(
        [k.Input((5, 4)), layers.Dense(8, activation="relu"), layers.Dense(4)], name="feed_forward"
    )
    pooled = layers.GlobalAveragePooling1D()(feed_forward(h))
    score = custom_objects(k)["ScaleShift"](2, name="score")(pooled)
    label = layers.Dense(3, activation="softmax", name="label")(pooled)
    return k.Model([tokens, context], [score, label], name="attention")


def _lambda(k: Any) -> Any:
    layers = k.layers
    inputs = k.Input((4,), name="features")
    h = layers.Dense(8, activation="tanh")(inputs)
    h = layers.Lambda(lambda t: t * 0.5 + 0.25, name="affine")(h)
    return k.Model(inputs, layers.Dense(2)(h), name="lambda")


def _mse(k: Any) -> dict[str, Any]:
    return {"loss": "mse"}


def _custom_compiled(k: Any) -> dict[str, Any]:
    objects = custom_objects(k)
    return {
        "loss": {"score": objects["zoo_loss"], "label": "categorical_crossentropy"},
        "metrics": {"score": [objects["zoo_max_error"]]},
    }


@dataclass(frozen=True)
class ZooModel:
    """One zoo model: its architecture, its own data, how it is compiled, the families it carries.

    ``deterministic`` is whether training mode repeats exactly (no Dropout): only then are training-mode predictions
    and the continued training step comparable between a producer and a consumer.
    """

    name: str
    families: tuple[str, ...]
    architecture: Callable[[Any], Any]
    data: Callable[[], tuple[Any, Any]]
    compile_args: Callable[[Any], dict[str, Any]] = _mse
    deterministic: bool = True
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()


_RECURRENT = ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "stacked return_sequences", "Embedding mask_zero")
_CONVOLUTIONAL = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "pooling")
_ATTENTION = ("MultiHeadAttention", "LayerNormalization", "Dropout", "multi-input multi-output", "nested model")
_CUSTOM = ("registered custom layer", "registered custom loss", "registered custom metric")

MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("recurrent", (*_RECURRENT, "optimizer state"), _recurrent, recurrent_data, input_names=("tokens",)),
        ZooModel(
            "convolutional", (*_CONVOLUTIONAL, "BatchNormalization moving statistics", "optimizer state"),
            _convolutional, convolutional_data, input_names=("image",),
        ),
        ZooModel(
            "attention", (*_ATTENTION, *_CUSTOM, "optimizer state"), _attention, attention_data, _custom_compiled,
            deterministic=False, input_names=("tokens", "context"), output_names=("score", "label"),
        ),
        ZooModel("lambda", ("Lambda", "optimizer state"), _lambda, lambda_data, input_names=("features",)),
    )
}  # fmt: skip

#: family -> the zoo models that carry it.
COVERAGE: dict[str, tuple[str, ...]] = {
    family: tuple(name for name, model in MODELS.items() if family in model.families) for family in FAMILIES
}


# ------------------------------------------------------------------------------------------------ building


def _weight_layers(model: Any) -> Iterator[Any]:
    """The layers that own weights, in architecture order; a nested model's layers in its own order."""
    for layer in model.layers:
        if hasattr(layer, "layers") and not hasattr(layer, "forward_layer"):  # a nested model, not Bidirectional
            yield from _weight_layers(layer)
        else:
            yield layer


def _initial(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A fixed value; variances and scales positive (a negative moving variance would make NaN)."""
    low, high = (0.5, 1.5) if ("moving_variance" in name or "gamma" in name) else (-0.5, 0.5)
    return rng.uniform(low, high, size=shape).astype(np.float32)


def set_fixed_weights(model: Any) -> None:
    """Layer by layer, each layer's weights in its own order: the same numbers in Keras 2 and 3.

    Not one flat ``model.set_weights`` list: the values then depend only on each layer's own weights, not on how a
    version orders a whole model's weights (nested models, wrappers, non-trainable statistics).
    """
    rng = _rng(7)
    for layer in _weight_layers(model):
        if layer.weights:
            layer.set_weights([_initial(rng, w.name, tuple(w.shape)) for w in layer.weights])


def build(name: str) -> Any:
    """An untrained zoo model with fixed weights, compiled (what a weights-only format loads into)."""
    k = keras()
    spec = MODELS[name]
    model = spec.architecture(k)
    set_fixed_weights(model)
    model.compile(optimizer=k.optimizers.Adam(learning_rate=0.01), run_eagerly=True, **spec.compile_args(k))
    return model


def fit_step(model: Any, name: str, steps: int = 1) -> None:
    """Full-batch steps, eagerly: tracing a training graph (and Keras 3's XLA) for a few steps of a tiny model
    costs seconds per model (the recurrent loops most), eager runs the same layers' math in a fraction of that.
    A loaded model gets the same mode, so a producer's and a consumer's continued step are computed alike."""
    model.run_eagerly = True
    x, y = MODELS[name].data()
    model.fit(x, y, batch_size=BATCH, epochs=steps, shuffle=False, verbose=0)


def trains_here() -> bool:
    """Whether this environment's Keras trains the zoo (see ``UNTRAINED_ON``)."""
    return keras_backend(keras()) not in UNTRAINED_ON


def build_trained(name: str) -> Any:
    model = build(name)
    fit_step(model, name, TRAIN_STEPS)
    return model


def _as_numpy(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return {key: to_numpy(value) for key, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [to_numpy(value) for value in outputs]
    return to_numpy(outputs)


def predict(model: Any, x: Any) -> np.ndarray:
    """Inference-mode outputs as one (batch, n) array (several outputs side by side, in the model's order)."""
    return flat_outputs(_as_numpy(model(x, training=False)))


def training_predict(model: Any, x: Any) -> np.ndarray:
    """Training-mode outputs (BatchNormalization on batch statistics; it also moves the moving statistics)."""
    return flat_outputs(_as_numpy(model(x, training=True)))


def layout(model: Any) -> list[list[Any]]:
    """Name, shape and dtype of each weight in ``model.weights`` order (the order ``get_weights`` returns)."""
    return weights_layout([(getattr(w, "path", None) or w.name, to_numpy(w)) for w in model.weights])


# ------------------------------------------------------------------------------------------------ loading


def _loaded(model: Any) -> _keras_io.Loaded:
    return _keras_io.Loaded(
        predict=lambda x: predict(model, x), optimizer=_keras_io.optimizer_state(model), model=model
    )


def _load_full(path: Path, name: str, **options: Any) -> _keras_io.Loaded:
    return _loaded(keras().models.load_model(str(path), **options))


def _load_weights(path: Path, name: str) -> _keras_io.Loaded:
    model = build(name)
    model.load_weights(str(path))
    return _keras_io.Loaded(predict=lambda x: predict(model, x), optimizer=None, model=model)


def _loader(fmt: _keras_io.KerasFormat) -> Callable[[Path, str], _keras_io.Loaded]:
    """The zoo's way of loading what ``fmt`` saved: the same calls as the core models, with the zoo's builders."""
    if fmt.load is _keras_io.FORMATS["keras"].load:
        return _load_full
    if fmt.name == "tf_checkpoint":
        return lambda path, name: _load_weights(path / "ckpt", name)
    return _load_weights


def load(fmt: _keras_io.KerasFormat, path: Path, name: str) -> LoadAttempt:
    """The plain call first, then the usual workarounds (custom objects, compile=False, safe_mode=False)."""
    loader = _loader(fmt)
    fallbacks = _keras_io.fallbacks(fmt, path, name, objects=custom_objects(keras()), load_full=_load_full)
    return load_as_user(lambda: loader(path, name), fallbacks)
