"""Framework access shared by scenarios: which Keras a user of the environment gets, and how to read its values."""

from __future__ import annotations

import importlib
import os
from typing import Any

from harness.worker import arrays
from harness.worker.protocol import legacy_keras

__all__ = ["is_keras3", "keras", "keras_identity", "to_numpy"]


def keras() -> Any:
    """``tf_keras`` where ``TF_USE_LEGACY_KERAS=1`` (what ``tf.keras`` then is), else ``keras``."""
    return importlib.import_module("tf_keras" if legacy_keras(os.environ) else "keras")


def is_keras3(module: Any | None = None) -> bool:
    module = module or keras()
    return int(module.__version__.split(".")[0]) >= 3


def keras_backend(module: Any | None = None) -> str:
    module = module or keras()
    return str(module.backend.backend()) if is_keras3(module) else "tensorflow"


def keras_identity() -> dict[str, str]:
    """Module, version and backend of the active Keras, for the record."""
    module = keras()
    return {"module": module.__name__, "version": module.__version__, "backend": keras_backend(module)}


def to_numpy(value: Any) -> Any:
    """A numpy copy of a Keras 2/3 tensor or variable, a TF tensor, or a torch tensor.

    The worker's ``arrays.to_numpy`` reads what it knows; a value it does not (a Keras 3 tensor of a backend without
    ``.numpy()``, such as JAX) goes through the active Keras' ``ops.convert_to_numpy`` first.
    """
    import numpy as np

    if not _plain_readable(value):
        k = keras()
        if is_keras3(k):
            value = k.ops.convert_to_numpy(value)
    return np.array(arrays.to_numpy(value))


def _plain_readable(value: Any) -> bool:
    """Whether numpy or the worker's conversion reads ``value`` without asking Keras (so torch-only envs work)."""
    import numpy as np

    known = (np.ndarray, np.generic, list, tuple, int, float, bool)
    return isinstance(value, known) or hasattr(value, "detach") or hasattr(value, "numpy")
