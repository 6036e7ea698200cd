"""preprocessing: Keras preprocessing layers on their stable paths, adapted on fixed data, saved and reloaded.

A model that carries its own preprocessing (``Normalization`` statistics, ``StringLookup`` vocabularies, a
``TextVectorization`` vocabulary) breaks quietly when a release computes the adapted state differently, orders a
vocabulary differently, changes an output encoding, or no longer restores that state from the saved file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity, to_numpy

WORDS = ["the cat sat", "the dog sat down", "a cat ran", "the cat and the dog", "dog"]
TOKENS = ["b", "a", "c", "a", "b", "a", "d"]


def _numbers() -> np.ndarray:
    return np.random.default_rng(12).normal(loc=3.0, scale=2.0, size=(32, 3)).astype(np.float32)


def _layers(k: Any) -> dict[str, tuple[Callable[[], Any], Any, Any]]:
    """name -> (layer factory, adapt data, input to transform); the layers a production input pipeline uses.

    Factories, so a layer a backend cannot build (Keras 3's string layers need TensorFlow) fails alone.
    """
    numbers = _numbers()
    layers = k.layers
    return {
        "normalization": (lambda: layers.Normalization(axis=-1), numbers, numbers[:4]),
        "discretization": (lambda: layers.Discretization(num_bins=4), numbers[:, 0], numbers[:6, 0]),
        "string_lookup": (lambda: layers.StringLookup(), np.array(TOKENS), np.array(["a", "d", "z"])),
        "integer_lookup": (lambda: layers.IntegerLookup(), np.array([5, 3, 5, 9, 3, 5]), np.array([3, 5, 7])),
        "text_vectorization": (
            lambda: layers.TextVectorization(max_tokens=10, output_sequence_length=4),
            np.array(WORDS),
            np.array(WORDS[:2]),
        ),
    }


def _state(name: str, layer: Any) -> Any:
    if name == "normalization":
        return {"mean": to_numpy(layer.mean).ravel().tolist(), "variance": to_numpy(layer.variance).ravel().tolist()}
    if name == "discretization":
        return [float(b) for b in layer.bin_boundaries]
    return [str(token) for token in layer.get_vocabulary()]


def _reloaded_output(k: Any, layer: Any, data: Any) -> np.ndarray:
    """The layer inside a model saved as ``.keras`` and loaded back: adapted state must come back with it."""
    dtype = "string" if data.dtype.kind in "US" else ("int64" if data.dtype.kind == "i" else "float32")
    inputs = k.Input(shape=data.shape[1:], dtype=dtype)
    model = k.Model(inputs, layer(inputs))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pre.keras"
        model.save(str(path))
        loaded = k.models.load_model(str(path))
    return np.asarray(to_numpy(loaded(data)))


@scenario(area="preprocessing", requires=["keras"])
def keras_adapt_state_and_reload(ctx: Context) -> None:
    """Catches a change of a preprocessing layer's adapted state on fixed data (statistics, bin boundaries,
    vocabulary order), of its outputs, and of a ``.keras`` round trip not restoring that state."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    outcomes = {}
    for name, (make, adapt_data, sample) in _layers(k).items():
        try:
            layer = make()
            layer.adapt(adapt_data)
            ctx.record(f"{name}_state", _state(name, layer), kind="config")
            output = np.asarray(to_numpy(layer(sample)))
            ctx.record(f"{name}_output", output.astype(np.float64))
            reloaded = _reloaded_output(k, layer, sample)
            same = reloaded.shape == output.shape and bool(np.allclose(reloaded, output))
            outcomes[name] = "reloaded-same" if same else "reloaded-different"
        except ImportError as exc:  # a layer this backend does not offer (Keras 3 on torch: TensorFlow-only ones)
            outcomes[name] = f"unavailable: {error_text(exc)[:120]}"
        except Exception as exc:
            outcomes[name] = f"error: {error_text(exc).split(':', 1)[0]}"
    ctx.record("outcomes", outcomes, kind="outcomes")
    for name, outcome in outcomes.items():
        if not outcome.startswith("unavailable"):
            ctx.check(f"{name}_round_trip", outcome == "reloaded-same", outcome=outcome)


@scenario(area="preprocessing", requires=["keras"])
def keras_category_encoding(ctx: Context) -> None:
    """Catches a change of ``CategoryEncoding``'s output modes (one_hot, multi_hot, count) on fixed integer ids."""
    k = keras()
    ids = np.array([[0, 1, 1], [3, 3, 2]], dtype=np.int64)
    for mode in ("multi_hot", "count"):
        layer = k.layers.CategoryEncoding(num_tokens=4, output_mode=mode)
        ctx.record(mode, np.asarray(to_numpy(layer(ids)), dtype=np.float64))
    one_hot = k.layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")
    ctx.record("one_hot", np.asarray(to_numpy(one_hot(np.array([0, 3, 1]))), dtype=np.float64))
