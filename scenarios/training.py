"""training: the code around the model that an upgrade breaks, Keras side: compile, fit, evaluate, predict.

A team's training script calls ``compile`` with string identifiers, ``fit`` on NumPy arrays, ``tf.data`` or a
generator with ``validation_split``, then ``evaluate`` and ``predict``. Each of those has changed meaning between
Keras 2 and 3 without the model changing: which class a string resolves to, the History's keys, the shape of what
``evaluate`` returns, ``metrics_names``. Every model here starts from fixed weights (a NumPy RNG, not the
framework's), trains without shuffling on fixed data, so the numbers are comparable across versions; the values
are recorded for the verdict's drift rules. Callbacks live in ``scenarios.callbacks``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import is_keras3, keras, keras_backend, keras_identity, to_numpy

FEATURES, UNITS, SAMPLES = 4, 3, 16


def fixed_data() -> tuple[np.ndarray, np.ndarray]:
    """Inputs and one-hot targets from NumPy's generator: the same bytes in every environment."""
    rng = np.random.default_rng(20261202)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype(np.float32)
    y = np.eye(UNITS, dtype=np.float32)[rng.integers(0, UNITS, size=SAMPLES)]
    return x, y


def fixed_model(k: Any, activation: str | None = "softmax") -> Any:
    """A small classifier whose weights come from a NumPy RNG, so every Keras starts from the same numbers."""
    model = k.Sequential(
        [k.Input((FEATURES,)), k.layers.Dense(5, activation="tanh"), k.layers.Dense(UNITS, activation)]
    )
    rng = np.random.default_rng(3)
    model.set_weights([rng.uniform(-0.5, 0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _config_of(obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    config = obj.get_config() if hasattr(obj, "get_config") else {}
    return {key: _plain(config.get(key)) for key in keys if key in config}


def _plain(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    try:
        return float(np.asarray(to_numpy(value)))
    except (TypeError, ValueError):
        return repr(value)


def _resolved(k: Any, kind: str, name: str) -> dict[str, Any]:
    """The class and key settings a string identifier resolves to, through the module's public ``get``."""
    keys = {
        "optimizers": ("learning_rate", "beta_1", "beta_2", "epsilon", "momentum", "rho"),
        "losses": ("reduction", "from_logits", "label_smoothing"),
        "metrics": ("name",),
    }[kind]
    try:
        obj = getattr(k, kind).get(name)
    except Exception as exc:
        return {"error": error_text(exc).split(":", 1)[0]}
    label = type(obj).__name__ if not callable(obj) or hasattr(obj, "get_config") else getattr(obj, "__name__", "")
    return {"class": label, **_config_of(obj, keys)}


@scenario(area="training", requires=["keras"])
def keras_compile_strings(ctx: Context) -> None:
    """Catches a string identifier (``"adam"``, ``"mse"``, ``"accuracy"``) resolving to another class or default
    settings (Keras 3 moved ``epsilon`` and the loss reductions), and a change of ``metrics_names``."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    for kind, names in {
        "optimizers": ("adam", "sgd", "rmsprop"),
        "losses": ("mse", "categorical_crossentropy", "sparse_categorical_crossentropy"),
        "metrics": ("accuracy", "mae", "auc"),
    }.items():
        ctx.record(kind, {name: _resolved(k, kind, name) for name in names}, kind="config")
    model = fixed_model(k)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", "mae"])
    x, y = fixed_data()
    model.evaluate(x, y, verbose=0)
    ctx.record("metrics_names", list(model.metrics_names), kind="config")
    ctx.record("optimizer_after_compile", type(model.optimizer).__name__, kind="config")
    ctx.check("metrics_names_has_loss", "loss" in model.metrics_names, names=list(model.metrics_names))


def _generator(x: np.ndarray, y: np.ndarray, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        for start in range(0, len(x), batch):
            yield x[start : start + batch], y[start : start + batch]


def _history(k: Any, fit_input: str) -> dict[str, list[float]]:
    model = fixed_model(k)
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy", metrics=["mae"])
    x, y = fixed_data()
    options: dict[str, Any] = {"epochs": 2, "shuffle": False, "verbose": 0}
    if fit_input == "numpy":
        history = model.fit(x, y, batch_size=8, validation_split=0.25, **options)
    elif fit_input == "tf_data":
        import tensorflow as tf

        history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), **options)
    else:
        history = model.fit(_generator(x, y, 8), steps_per_epoch=2, **options)
    return {key: [float(v) for v in values] for key, values in sorted(history.history.items())}


@scenario(area="training", requires=["keras"])
def keras_fit_history(ctx: Context) -> None:
    """Catches a change of what ``fit`` returns on NumPy input with ``validation_split`` (History keys, the values
    after 2 epochs from fixed weights), and of ``tf.data`` or generator input training to different numbers."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    numpy_history = _history(k, "numpy")
    ctx.record("history_keys", sorted(numpy_history), kind="config")
    for key, values in numpy_history.items():
        ctx.record(f"numpy_{key}", np.array(values, dtype=np.float64))
    inputs = ["generator"] + (["tf_data"] if keras_backend(k) == "tensorflow" else [])
    for fit_input in inputs:
        history = _history(k, fit_input)
        ctx.record(f"{fit_input}_loss", np.array(history["loss"], dtype=np.float64))
    ctx.check("validation_keys", any(key.startswith("val_") for key in numpy_history), keys=sorted(numpy_history))


def _evaluate_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "dict: " + ", ".join(sorted(value))
    if isinstance(value, list | tuple):
        return f"list of {len(value)}"
    return "scalar"


@scenario(area="training", requires=["keras"])
def keras_evaluate_predict(ctx: Context) -> None:
    """Catches a change of ``evaluate``'s return shape (scalar without metrics, a list with them, ``return_dict``)
    and ``predict`` disagreeing with calling the model (batching, dtype, training flag)."""
    k = keras()
    x, y = fixed_data()
    shapes = {}
    for label, metrics in (("no_metrics", []), ("two_metrics", ["mae", "accuracy"])):
        model = fixed_model(k)
        model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=metrics)
        shapes[label] = _evaluate_shape(model.evaluate(x, y, verbose=0))
        shapes[f"{label}_return_dict"] = _evaluate_shape(model.evaluate(x, y, verbose=0, return_dict=True))
    ctx.record("evaluate_returns", shapes, kind="config")
    predicted = np.asarray(model.predict(x, batch_size=5, verbose=0), dtype=np.float32)
    called = np.asarray(to_numpy(model(x, training=False)), dtype=np.float32)
    ctx.record("predict", predicted)
    ctx.record("predict_dtype", str(predicted.dtype), kind="config")
    gap = float(np.max(np.abs(predicted - called)))
    ctx.check("predict_matches_call", gap <= 1e-6, max_abs_error=gap)


def _tape_losses(k: Any, tf: Any, compiled: bool) -> np.ndarray:
    """Three steps of a hand-written loop from fixed weights: the loss before each step."""
    x, y = fixed_data()
    model, optimizer = fixed_model(k), k.optimizers.SGD(learning_rate=0.1)
    loss_fn = k.losses.CategoricalCrossentropy()

    def step() -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    run = tf.function(step) if compiled else step
    return np.array([float(run()) for _ in range(3)], dtype=np.float64)


@scenario(area="training", requires=["keras", "tensorflow"])
def keras_gradient_tape_loop(ctx: Context) -> None:
    """Catches a change of a hand-written ``GradientTape`` + ``apply_gradients`` loop: its loss trajectory on fixed
    data, eager against ``tf.function`` (they must agree), and ``jit_compile``'s default on ``compile``."""
    import tensorflow as tf

    k = keras()
    if keras_backend(k) != "tensorflow":
        ctx.skip(f"GradientTape trains Keras variables only on the TensorFlow backend ({keras_backend(k)} here)")
    trajectories = {}
    for mode in ("eager", "tf_function"):
        trajectories[mode] = _tape_losses(k, tf, compiled=mode == "tf_function")
        ctx.record(f"{mode}_losses", trajectories[mode])
    gap = float(np.max(np.abs(trajectories["eager"] - trajectories["tf_function"])))
    ctx.check("eager_equals_tf_function", gap <= 1e-5, max_abs_error=gap)
    model = fixed_model(k)
    model.compile(optimizer="sgd", loss="mse")
    ctx.record("jit_compile_default", repr(getattr(model, "jit_compile", "absent")), kind="config")
    if not is_keras3(k):
        ctx.note("Keras 2: jit_compile defaults to None (XLA off unless asked)")


def _matmul_layer(k: Any, use_tensorflow: bool) -> Any:
    """A custom layer as users write it: against TensorFlow ops directly, or against the backend-neutral keras.ops."""

    def build(layer: Any, input_shape: Any) -> None:
        layer.kernel = layer.add_weight(name="kernel", shape=(int(input_shape[-1]), UNITS), initializer="ones")

    def call(layer: Any, inputs: Any) -> Any:
        if use_tensorflow:
            import tensorflow as tf

            return tf.matmul(inputs, layer.kernel)
        return k.ops.matmul(inputs, layer.kernel)

    name = "TfMatmul" if use_tensorflow else "OpsMatmul"
    return type(name, (k.layers.Layer,), {"build": build, "call": call})()


@scenario(area="training", requires=["keras>=3"])
def keras_layer_calling_tf_ops(ctx: Context) -> None:
    """Catches what each Keras 3 backend does with a custom layer that calls TensorFlow ops (``tf.matmul``) instead
    of ``keras.ops``: it runs on the TensorFlow backend and fails on JAX or torch (no TensorFlow there, or a tensor
    TensorFlow cannot take); the ``keras.ops`` spelling must give the same numbers on every backend."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = fixed_data()
    outcomes = {}
    for label, use_tensorflow in (("tf_ops", True), ("keras_ops", False)):
        try:
            output = np.asarray(to_numpy(_matmul_layer(k, use_tensorflow)(x)), dtype=np.float32)
            outcomes[label] = "works"
            ctx.record(f"{label}_output", output)
        except Exception as exc:
            outcomes[label] = f"error: {error_text(exc).split(':', 1)[0]}"
    ctx.record("outcomes", outcomes, kind="outcomes")
    expected = np.repeat(x.sum(axis=1, keepdims=True), UNITS, axis=1)  # a kernel of ones sums the features
    ctx.check("keras_ops_layer_works", outcomes["keras_ops"] == "works", backend=keras_backend(k))
    if outcomes["keras_ops"] == "works":
        got = np.asarray(to_numpy(_matmul_layer(k, False)(x)), dtype=np.float32)
        ctx.check("keras_ops_layer_sums", bool(np.allclose(got, expected, atol=1e-5)))
