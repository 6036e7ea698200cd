"""Framework access shared by scenarios: which Keras a user of the environment gets, and how to read its values."""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["is_keras3", "keras", "keras_identity", "to_numpy"]


def keras() -> Any:
    """``tf_keras`` where ``TF_USE_LEGACY_KERAS=1`` (what ``tf.keras`` then is), else ``keras``."""
    legacy = os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")
    return importlib.import_module("tf_keras" if legacy else "keras")


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
    """A numpy copy of a Keras 2/3 tensor or variable, a TF tensor, or a torch tensor."""
    import numpy as np

    if hasattr(value, "detach"):
        return value.detach().cpu().numpy().copy()
    if hasattr(value, "numpy"):
        return np.array(value.numpy())
    k = keras()
    if is_keras3(k):
        return np.array(k.ops.convert_to_numpy(value))
    return np.array(value)
