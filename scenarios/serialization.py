"""serialization: the ways of writing a Keras model, layer, optimizer or loss down that save_load does not cover.

``save_load`` round-trips each format the version offers; this module covers the calls around them that upgrades
break: ``to_json``/``model_from_json``, the path and ``save_format=`` forms of ``model.save`` and ``save_model``,
Keras 3's answer to a TensorFlow SavedModel (``TFSMLayer``), loading where the model's class is not defined,
variables a layer holds outside ``add_weight``, a learning-rate schedule inside a saved optimizer, and configs
written by another Keras generation. Outcomes are config records ("loaded", "saved" or the error's class); values
(predictions, rates, iteration counts) are arrays, so the verdict's drift rules compare them across versions.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.checks import allclose
from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios import _keras_io
from scenarios._frameworks import is_keras3, keras, keras_backend, keras_identity, to_numpy

LOADED, SAVED = "loaded", "saved"
#: Seconds the fresh interpreter may take to import the framework and load two artifacts (5-7 s alone, 20 s seen
#: with three imports sharing two cores) before it is killed and the cell errors.
CHILD_TIMEOUT = 120.0


class Outcomes:
    """Per label, ``success`` or the error's class (judged), and the error's text (shown, never judged)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def run(self, label: str, action: Callable[[], Any], success: str = LOADED) -> Any:
        """``action``'s value, or None when it raised (its class is the outcome)."""
        try:
            value = action()
        except Exception as exc:
            self.outcomes[label], self.errors[label] = type(exc).__name__, error_text(exc)[:600]
            return None
        self.outcomes[label] = success
        return value

    def record(self, ctx: Context, name: str) -> None:
        ctx.record(name, dict(self.outcomes), kind="outcomes")
        if self.errors:
            ctx.record(f"{name}_errors", dict(self.errors), kind="info")


def _require_tf_backend(ctx: Context, k: Any) -> None:
    if keras_backend(k) != "tensorflow":
        ctx.skip(f"a TensorFlow SavedModel needs the TensorFlow backend ({keras_backend(k)} here)")


# ------------------------------------------------------------------------------------------------ to_json


def _json_round_trip(k: Any, model: Any, x: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The JSON's top-level keys and what the rebuilt model predicts with the original's weights."""
    text = model.to_json()
    rebuilt = k.models.model_from_json(text)
    if not isinstance(rebuilt, k.Model):  # Keras 2.15 hands back the class name of a subclassed model, no error
        raise TypeError(f"model_from_json returned a {type(rebuilt).__name__}, not a model: {rebuilt!r:.80}")
    rebuilt(x[:1])  # a subclassed model has no weights until called
    rebuilt.set_weights(model.get_weights())
    return sorted(json.loads(text)), _keras_io.predict(rebuilt, x)


@scenario(area="serialization", requires=["keras"])
def keras_json_round_trip(ctx: Context) -> None:
    """Catches ``to_json``/``model_from_json`` breaking for a model kind (sequential, functional, subclassed with a
    registered custom layer: Keras 2 writes its bare class name and ``model_from_json`` returns that string, no
    error), the JSON's envelope changing (Keras 3 adds ``module``/``registered_name``, drops
    ``keras_version``/``backend``), and the rebuilt architecture predicting differently with the same weights."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    found = Outcomes()
    for name in _keras_io.MODELS:
        model = _keras_io.build(name)
        result = found.run(name, functools.partial(_json_round_trip, k, model, x))
        if result is None:
            continue
        keys, predictions = result
        ctx.record(f"{name}.json_keys", keys, kind="config")
        ctx.record(f"{name}.predictions", predictions)
        allclose(ctx, f"{name}_same_predictions", predictions, _keras_io.predict(model, x), rtol=0, atol=1e-6)
    found.record(ctx, "outcomes")
    ctx.check("sequential_round_trips", found.outcomes["sequential"] == LOADED, outcomes=found.outcomes)


# ------------------------------------------------------------------------------------------ model.save forms


def _save_forms(k: Any) -> dict[str, tuple[str, Callable[[Any, str], None]]]:
    """Label -> (file name, how it is saved): the lines a Keras 2 script contains."""
    return {
        "save_no_extension": ("bare", lambda m, p: m.save(p)),
        "save_format_tf": ("format_tf", lambda m, p: m.save(p, save_format="tf")),
        "save_format_h5": ("format_h5", lambda m, p: m.save(p, save_format="h5")),
        "save_format_keras": ("format.keras", lambda m, p: m.save(p, save_format="keras")),
        "save_model_keras": ("function.keras", lambda m, p: k.models.save_model(m, p)),
        "save_model_h5": ("function.h5", lambda m, p: k.models.save_model(m, p)),
        "save_model_no_extension": ("function_bare", lambda m, p: k.models.save_model(m, p)),
    }


@scenario(area="serialization", requires=["keras"])
def keras_save_path_forms(ctx: Context) -> None:
    """Catches ``model.save(path)`` with no extension (a SavedModel in Keras 2, a ``ValueError`` in Keras 3), the
    ``save_format=`` argument being refused (Keras 3), and ``keras.models.save_model`` changing with them; whatever
    saves is loaded back by the plain ``load_model(path)`` and must predict what was saved."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    model = _keras_io.build("sequential")  # a loss object: Keras 3's h5 loader cannot read the "mse" string back
    model.compile(optimizer=k.optimizers.Adam(learning_rate=0.01), loss=k.losses.MeanSquaredError())
    expected = _keras_io.predict(model, x)
    saves, loads = Outcomes(), Outcomes()
    with tempfile.TemporaryDirectory() as folder:
        for label, (file_name, save) in _save_forms(k).items():
            path = str(Path(folder) / file_name)
            saves.run(label, functools.partial(save, model, path), SAVED)
            if saves.outcomes[label] != SAVED:
                continue
            loaded = loads.run(label, functools.partial(k.models.load_model, path))
            if loaded is not None:
                got = _keras_io.predict(loaded, x)
                ctx.record(f"{label}.predictions", got)
                allclose(ctx, f"{label}_predicts_what_was_saved", got, expected, rtol=0, atol=1e-6)
    saves.record(ctx, "saves")
    loads.record(ctx, "loads")
    ctx.check("every_save_loads", all(v == LOADED for v in loads.outcomes.values()), loads=loads.outcomes)
    ctx.check("keras_extension_saves", saves.outcomes["save_model_keras"] == SAVED, saves=saves.outcomes)


# ----------------------------------------------------------------------------- tf.saved_model and TFSMLayer


def _tfsm_predict(k: Any, path: str, x: np.ndarray) -> np.ndarray:
    layer = k.layers.TFSMLayer(path, call_endpoint="serving_default")
    out = layer(x)
    out = next(iter(out.values())) if isinstance(out, dict) else out
    return np.asarray(to_numpy(out), dtype=np.float32)


@scenario(area="serialization", requires=["keras", "tensorflow"])
def keras_tf_saved_model_reload(ctx: Context) -> None:
    """Catches ``keras.models.load_model`` on a ``tf.saved_model.save`` directory (refused by Keras 2 for lack of
    Keras metadata, refused by Keras 3 for the format) and the replacement Keras 3 names, ``keras.layers.TFSMLayer``
    (absent before Keras 3), serving that directory with the saved model's predictions."""
    import tensorflow as tf

    k = keras()
    _require_tf_backend(ctx, k)
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    model = _keras_io.build("functional")
    expected = _keras_io.predict(model, x)
    found = Outcomes()
    found.outcomes["tfsm_layer_api"] = "present" if hasattr(k.layers, "TFSMLayer") else "absent"
    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(model, folder)
        found.run("load_model", functools.partial(k.models.load_model, folder))
        if found.outcomes["tfsm_layer_api"] == "present":
            got = found.run("tfsm_layer", functools.partial(_tfsm_predict, k, folder, x))
            if got is not None:
                ctx.record("tfsm_layer.predictions", got)
                allclose(ctx, "tfsm_layer_predicts_what_was_saved", got, expected, rtol=0, atol=1e-6)
    found.record(ctx, "outcomes")
    if is_keras3(k):
        ctx.check("keras3_offers_tfsm_layer", found.outcomes.get("tfsm_layer") == LOADED, outcomes=found.outcomes)


# --------------------------------------------------------------------- a fresh process without the class

#: Run by the environment's own interpreter: it knows nothing of compat_matrix's classes, as a serving process
#: that only has the file does not. argv: Keras module name, folder (inputs.npy in; result.json and .npy out).
_CHILD = """
import importlib, json, sys
from pathlib import Path
import numpy as np
k = importlib.import_module(sys.argv[1])
folder = Path(sys.argv[2])
x = np.load(folder / "inputs.npy")
result = {}
for artifact in sorted(p.name for p in folder.iterdir() if p.name.startswith("artifact")):
    try:
        model = k.models.load_model(str(folder / artifact))
        out = model(x, training=False)
        np.save(folder / (artifact + ".npy"), np.asarray(out, dtype=np.float32))
        result[artifact] = {"outcome": "loaded", "class": type(model).__name__}
    except Exception as exc:
        result[artifact] = {"outcome": type(exc).__name__, "class": ""}
    if (folder / artifact).is_dir() and hasattr(k.layers, "TFSMLayer"):  # Keras 3's replacement for a SavedModel
        try:
            out = k.layers.TFSMLayer(str(folder / artifact), call_endpoint="serve")(x)
            np.save(folder / (artifact + ".tfsm_layer.npy"), np.asarray(out, dtype=np.float32))
            result[artifact + ".tfsm_layer"] = {"outcome": "loaded", "class": "TFSMLayer"}
        except Exception as exc:
            result[artifact + ".tfsm_layer"] = {"outcome": type(exc).__name__, "class": ""}
(folder / "result.json").write_text(json.dumps(result))
"""


def _save_subclassed(k: Any, model: Any, folder: Path) -> Outcomes:
    """The version's SavedModel (``model.save(dir)`` in Keras 2, ``model.export(dir)`` in Keras 3) and a .keras file."""
    saving = {
        "artifact_savedmodel": lambda p: model.export(p) if is_keras3(k) else model.save(p, save_format="tf"),
        "artifact_file.keras": lambda p: model.save(p),
    }
    saves = Outcomes()
    for name, save in saving.items():
        saves.run(name, functools.partial(save, str(folder / name)), SAVED)
    return saves


def _run_child(k: Any, folder: Path) -> dict[str, dict[str, str]]:
    """Load the artifacts in a fresh interpreter; killed after ``CHILD_TIMEOUT`` s (the cell then errors)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", _CHILD, k.__name__, str(folder)]
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped the child
        raise RuntimeError(f"the fresh interpreter did not finish within {CHILD_TIMEOUT:.0f} s") from exc
    result = folder / "result.json"
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"the fresh interpreter exited {proc.returncode}: {proc.stderr[-2000:]}")
    loaded: dict[str, dict[str, str]] = json.loads(result.read_text())
    return loaded


@scenario(area="serialization", requires=["keras", "tensorflow"], timeout=240)
def keras_subclassed_fresh_process(ctx: Context) -> None:
    """Catches a subclassed model's saved file no longer loading where its class is not defined (a serving process
    with only the file): Keras 2 revives a SavedModel without the class, Keras 3's ``load_model`` refuses an export
    directory (``TFSMLayer`` serves it) and a ``.keras`` file needs the class registered. Run in a fresh
    interpreter of the environment, so nothing this process registered can help."""
    k = keras()
    _require_tf_backend(ctx, k)
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    model = _keras_io.build("subclassed")
    expected = _keras_io.predict(model, x)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "inputs.npy", x)
        saves = _save_subclassed(k, model, folder)
        loads = _run_child(k, folder)
        for artifact, found in loads.items():
            if found["outcome"] == LOADED:
                got = np.load(folder / f"{artifact}.npy")
                ctx.record(f"{artifact}.predictions", got)
                allclose(ctx, f"{artifact}_predicts_what_was_saved", got, expected, rtol=0, atol=1e-6)
    saves.record(ctx, "saves")
    ctx.record("loads", {name: found["outcome"] for name, found in loads.items()}, kind="outcomes")
    ctx.record("loaded_classes", {name: found["class"] for name, found in loads.items()}, kind="config")


# ---------------------------------------------------------------------- variables outside add_weight


@functools.cache
def _holder_layer(k: Any) -> type:
    """A layer with one variable from ``add_weight`` and two assigned as plain attributes."""
    import tensorflow as tf

    register = getattr(getattr(k, "saving", None), "register_keras_serializable", None)
    register = register or k.utils.register_keras_serializable
    variable = k.Variable if is_keras3(k) else tf.Variable

    @register(package="compat_matrix_serialization")
    class VariableHolder(k.layers.Layer):  # type: ignore[misc]  # the frameworks are untyped
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.from_add_weight = self.add_weight(name="from_add_weight", shape=(_keras_io.FEATURES,),
                                                   initializer="zeros")  # fmt: skip
            self.framework_variable = variable(np.zeros(_keras_io.FEATURES, dtype=np.float32))
            self.tf_variable = tf.Variable(np.zeros(_keras_io.FEATURES, dtype=np.float32))

        def call(self, inputs: Any) -> Any:
            return inputs + self.from_add_weight + self.framework_variable + self.tf_variable

    return VariableHolder


_HELD = {"from_add_weight": 1.0, "framework_variable": 10.0, "tf_variable": 100.0}


def _held_state(layer: Any) -> dict[str, str]:
    """Per attribute: whether ``layer.weights`` lists it, and the value it holds (first element)."""
    listed = {id(w) for w in layer.weights}
    return {
        name: f"{'tracked' if id(getattr(layer, name)) in listed else 'untracked'}: "
        f"{float(np.asarray(to_numpy(getattr(layer, name)))[0]):g}"
        for name in _HELD
    }


@scenario(area="serialization", requires=["keras", "tensorflow"])
def keras_raw_variable_attribute(ctx: Context) -> None:
    """Catches a variable a layer assigns as an attribute (not through ``add_weight``) no longer being tracked,
    saved and restored: Keras 2 tracks a ``tf.Variable`` attribute; Keras 3 tracks ``keras.Variable`` but not a
    ``tf.Variable``, which a ``.keras`` file then silently leaves at its initial value."""
    k = keras()
    _require_tf_backend(ctx, k)
    ctx.record("keras", keras_identity(), kind="info")
    x, _ = _keras_io.fixed_inputs()
    layer = _holder_layer(k)()
    model = k.Sequential([k.Input((_keras_io.FEATURES,)), layer])
    for name, value in _HELD.items():
        getattr(layer, name).assign(np.full(_keras_io.FEATURES, value, dtype=np.float32))
    ctx.record("before_save", _held_state(layer), kind="config")
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "holder.keras")
        model.save(path)
        found = Outcomes()
        loaded = found.run("keras_file", functools.partial(k.models.load_model, path))
    found.record(ctx, "outcome")
    if loaded is not None:
        ctx.record("after_load", _held_state(loaded.layers[-1]), kind="config")
        ctx.record("predictions", _keras_io.predict(loaded, x))
        gap = float(np.max(np.abs(_keras_io.predict(loaded, x) - _keras_io.predict(model, x))))
        ctx.check("held_values_survive_keras_file", gap <= 1e-6, max_abs_error=gap)


# ------------------------------------------------------------------ a learning-rate schedule in a saved optimizer

#: ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5), three steps taken: the fourth uses 0.1 * 0.5 ** (3 / 10).
_SCHEDULE, _STEPS = (0.1, 10, 0.5), 3
NEXT_RATE = _SCHEDULE[0] * _SCHEDULE[2] ** (_STEPS / _SCHEDULE[1])


def _scheduled_model(k: Any) -> Any:
    model = _keras_io.build("sequential")
    schedule = k.optimizers.schedules.ExponentialDecay(*_SCHEDULE)
    model.compile(optimizer=k.optimizers.Adam(learning_rate=schedule), loss=k.losses.MeanSquaredError())
    x, y = _keras_io.fixed_inputs()
    model.fit(x[: _STEPS * 2], y[: _STEPS * 2], batch_size=2, epochs=1, shuffle=False, verbose=0)
    return model


def _schedule_state(optimizer: Any) -> dict[str, Any]:
    """The schedule's class and config, the step count, the rate ``optimizer.learning_rate`` reads, the next rate."""
    schedule: Any = getattr(optimizer, "_learning_rate", None)
    iterations = int(np.asarray(to_numpy(optimizer.iterations)))
    has_schedule = callable(schedule) and hasattr(schedule, "get_config")
    return {
        "schedule": type(schedule).__name__,
        "config": {key: value for key, value in schedule.get_config().items() if key != "name"} if has_schedule else {},
        "iterations": iterations,
        "learning_rate_attribute": float(np.asarray(to_numpy(optimizer.learning_rate))),
        "next_rate": float(np.asarray(to_numpy(schedule(iterations)))) if has_schedule else float("nan"),
    }


def _record_schedule(ctx: Context, prefix: str, state: dict[str, Any]) -> None:
    ctx.record(f"{prefix}.schedule", {"class": state["schedule"], **state["config"]}, kind="config")
    for key in ("iterations", "learning_rate_attribute", "next_rate"):
        ctx.record(f"{prefix}.{key}", np.array([state[key]], dtype=np.float64))


@scenario(area="serialization", requires=["keras"])
def keras_lr_schedule_save(ctx: Context) -> None:
    """Catches an optimizer's learning-rate schedule not surviving ``.keras``/``.h5``: the schedule's class and
    config, the iteration count (so the schedule resumes, not restarts), and the next step's rate; also what
    ``optimizer.learning_rate`` reads (Keras 2: the last step's rate, stale after loading; Keras 3: the next one)."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    model = _scheduled_model(k)
    _record_schedule(ctx, "trained", _schedule_state(model.optimizer))
    found = Outcomes()
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".keras", ".h5"):
            path = str(Path(folder) / f"scheduled{suffix}")
            model.save(path)
            loaded = found.run(suffix, functools.partial(k.models.load_model, path))
            if loaded is None:
                continue
            state = _schedule_state(loaded.optimizer)
            _record_schedule(ctx, suffix.lstrip("."), state)
            ctx.check(f"{suffix}_resumes_schedule", state["iterations"] == _STEPS, iterations=state["iterations"])
            ctx.check(f"{suffix}_next_rate", abs(state["next_rate"] - NEXT_RATE) <= 1e-6, rate=state["next_rate"])
    found.record(ctx, "outcomes")


# ------------------------------------------------------------------------ configs of the other generation

#: ``get_config()`` as Keras 2.15 and Keras 3.3 write it (measured on 2026-12-02): a saved file or a config
#: store carries these to the other generation, whose ``from_config`` must read them.
WRITTEN_CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "Adam": {
        "keras2": {
            "name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
            "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "jit_compile": False,
            "is_legacy_optimizer": False, "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
            "amsgrad": False,
        },
        "keras3": {
            "name": "adam", "learning_rate": 0.001, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
            "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
            "loss_scale_factor": None, "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999,
            "epsilon": 1e-07, "amsgrad": False,
        },
    },
    "MeanSquaredError": {
        "keras2": {"reduction": "auto", "name": "mean_squared_error", "fn": "mean_squared_error"},
        "keras3": {"name": "mean_squared_error", "reduction": "sum_over_batch_size"},
    },
    "ScaledSquaredError": {
        "keras2": {"reduction": "auto", "name": "scaled_squared_error", "scale": 2.0},
        "keras3": {"name": "scaled_squared_error", "reduction": "sum_over_batch_size", "scale": 2.0},
    },
}  # fmt: skip


@functools.cache
def _scaled_loss(k: Any) -> type:
    """A user's ``Loss`` subclass with its own constructor argument, passing the rest (``reduction``) to the base."""

    class ScaledSquaredError(k.losses.Loss):  # type: ignore[misc]  # the frameworks are untyped
        def __init__(self, scale: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, y_true: Any, y_pred: Any) -> Any:
            return self.scale * (y_true - y_pred) ** 2

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "scale": self.scale}

    return ScaledSquaredError


def _loss_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(51)
    return rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)


def _configured_value(k: Any, class_name: str, obj: Any) -> np.ndarray:
    """What the rebuilt object means: an optimizer's rate and epsilon, a loss's value on a fixed batch."""
    if class_name == "Adam":
        return np.array([float(np.asarray(to_numpy(obj.learning_rate))), float(obj.epsilon)], dtype=np.float64)
    y_true, y_pred = _loss_batch()
    return np.array([float(np.asarray(to_numpy(obj(y_true, y_pred))))], dtype=np.float64)


def _classes(k: Any) -> dict[str, Any]:
    return {"Adam": k.optimizers.Adam, "MeanSquaredError": k.losses.MeanSquaredError,
            "ScaledSquaredError": _scaled_loss(k)}  # fmt: skip


@scenario(area="serialization", requires=["keras"])
def keras_configs_across_generations(ctx: Context) -> None:
    """Catches ``from_config`` refusing a config the other Keras generation wrote (Keras 3 rejects the loss
    reduction ``"auto"``, a built-in loss's ``fn`` key and optimizer keys such as ``is_legacy_optimizer``; Keras 2
    the ``loss_scale_factor`` key), and a user's ``Loss`` subclass not round-tripping ``from_config(get_config())``
    within the version."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    classes = _classes(k)
    found = Outcomes()
    for class_name, written in WRITTEN_CONFIGS.items():
        origins = {**written, "this_version": classes[class_name](**({"scale": 2.0} if "Scaled" in class_name else {})
                                                                  ).get_config()}  # fmt: skip
        for origin, config in origins.items():
            label = f"{class_name}.from_{origin}"
            obj = found.run(label, functools.partial(classes[class_name].from_config, dict(config)))
            if obj is not None:
                ctx.record(f"{label}.value", _configured_value(k, class_name, obj))
    found.record(ctx, "outcomes")
    y_true, y_pred = _loss_batch()
    expected = float(np.mean(2.0 * (y_true - y_pred) ** 2))  # "auto" and "sum_over_batch_size": the mean
    obj = classes["ScaledSquaredError"].from_config(classes["ScaledSquaredError"](scale=2.0).get_config())
    got = float(_configured_value(k, "ScaledSquaredError", obj)[0])
    ctx.check("loss_subclass_round_trips", abs(got - expected) <= 1e-5 * abs(expected), value=got, expected=expected)
