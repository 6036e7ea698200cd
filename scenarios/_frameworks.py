"""Framework access shared by scenarios: which Keras a user of the environment gets, and what it runs on."""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["keras", "keras_identity"]


def keras() -> Any:
    """``tf_keras`` where ``TF_USE_LEGACY_KERAS=1`` (what ``tf.keras`` then is), else ``keras``."""
    legacy = os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")
    return importlib.import_module("tf_keras" if legacy else "keras")


def keras_identity() -> dict[str, str]:
    """Module, version and backend of the active Keras, for the record."""
    module = keras()
    backend = module.backend.backend() if hasattr(module.backend, "backend") else "tensorflow"
    return {"module": module.__name__, "version": module.__version__, "backend": str(backend)}
