"""converters: the serving toolchain around a TensorFlow model, TFLite first.

A team that ships to mobile converts with ``tf.lite.TFLiteConverter`` and runs the result in an interpreter. The
converter's entry points (from a Keras model, from a SavedModel export), the interpreter API (``tf.lite.Interpreter``
is deprecated for ``ai_edge_litert`` from TensorFlow 2.18) and the converted model's numbers all move between
releases while the Keras model itself does not. The model and data are ``scenarios.training``'s (fixed weights).
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import is_keras3, keras, keras_backend, keras_identity, to_numpy
from scenarios._keras_io import signature_views
from scenarios.training import fixed_data, fixed_model


def _interpreter_api(tf: Any) -> dict[str, Any]:
    """Which interpreter a user can reach, and what constructing ``tf.lite.Interpreter`` warns (and from where)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tiny_interpreter(tf)
    return {
        "tf.lite.Interpreter": hasattr(tf.lite, "Interpreter"),
        "ai_edge_litert": importlib.util.find_spec("ai_edge_litert") is not None,
        "warnings_on_construction": sorted({f"{w.category.__name__}: {_squeezed(w.message)}" for w in caught}),
    }


def _squeezed(message: object) -> str:
    return " ".join(str(message).split())[:120]


def _tiny_interpreter(tf: Any) -> Any:
    """An interpreter over the smallest convertible function (an identity), to see what constructing one says."""
    function = tf.function(lambda t: t + 0.0, input_signature=[tf.TensorSpec([1], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
    return tf.lite.Interpreter(model_content=converter.convert())


def _run_tflite(tf: Any, flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation is recorded once, by _interpreter_api
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    (entry,), (exit_,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for row in x:  # the converted model keeps the batch size it was traced with (1)
        interpreter.set_tensor(entry["index"], row[None, :])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(exit_["index"])[0])
    return np.asarray(outputs, dtype=np.float32)


def _convert(tf: Any, k: Any, model: Any, source: str, folder: Path) -> bytes:
    if source == "keras_model":
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    export = folder / "export"
    if is_keras3(k):
        model.export(str(export))
    else:
        tf.saved_model.save(model, str(export))
    return bytes(tf.lite.TFLiteConverter.from_saved_model(str(export)).convert())


@scenario(area="converters", requires=["keras", "tensorflow"], timeout=300)
def tflite(ctx: Context) -> None:
    """Catches ``TFLiteConverter`` failing on a plain Keras model or its SavedModel export, the interpreter API moving
    (``tf.lite.Interpreter`` deprecated for LiteRT), and the converted model predicting other numbers than Keras."""
    import tensorflow as tf

    k = keras()
    if keras_backend(k) != "tensorflow":
        ctx.skip(f"TFLite converts TensorFlow graphs: this Keras runs on {keras_backend(k)}")
    ctx.record("keras", keras_identity(), kind="info")
    ctx.record("interpreter_api", _interpreter_api(tf), kind="config")
    x, _ = fixed_data()
    model = fixed_model(k)
    expected = np.asarray(to_numpy(model(x, training=False)), dtype=np.float32)
    outcomes = {}
    with tempfile.TemporaryDirectory() as folder:
        for source in ("keras_model", "saved_model"):
            try:
                flatbuffer = _convert(tf, k, model, source, Path(folder))
                got = _run_tflite(tf, flatbuffer, x)
            except Exception as exc:
                outcomes[source] = f"error: {error_text(exc).split(':', 1)[0]}"
                continue
            gap = float(np.max(np.abs(got - expected)))
            outcomes[source] = "converted"
            ctx.record(f"{source}_predictions", got)
            ctx.check(f"{source}_matches_keras", gap <= 1e-5, max_abs_error=gap)
    ctx.record("outcomes", outcomes, kind="outcomes")
    ctx.check("something_converts", "converted" in outcomes.values(), **outcomes)


@scenario(area="converters", requires=["keras", "tensorflow"], timeout=300)
def saved_model_signatures(ctx: Context) -> None:
    """Catches a change of the serving signatures of an exported model as TF Serving reads them (signature names,
    input names, specs and output keys): a serving client built against one release sends the wrong names to the
    next. Keras 3 exports with ``model.export``; Keras 2 with ``tf.saved_model.save``."""
    import tensorflow as tf

    k = keras()
    if keras_backend(k) != "tensorflow":
        ctx.skip(f"a SavedModel holds a TensorFlow graph: this Keras runs on {keras_backend(k)}")
    x, _ = fixed_data()
    model = fixed_model(k)
    expected = np.asarray(to_numpy(model(x, training=False)), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "export"
        if is_keras3(k):
            model.export(str(export))
        else:
            tf.saved_model.save(model, str(export))
        loaded = tf.saved_model.load(str(export))
        signatures = signature_views(loaded.signatures)
        ctx.record("signatures", signatures, kind="config")
        serving = loaded.signatures["serving_default"]
        (input_name,) = signatures["serving_default"]["inputs"]
        outputs = serving(**{input_name: tf.constant(x)})
        got = np.asarray(next(iter(outputs.values())).numpy(), dtype=np.float32)
    ctx.record("serving_default_predictions", got)
    gap = float(np.max(np.abs(got - expected)))
    ctx.check("serving_default_predicts_like_keras", gap <= 1e-5, max_abs_error=gap)
