"""The one conversion of a framework value to a numpy array: torch tensors, TF tensors and variables, sequences.

Records, checks and scenarios all read framework values; doing it in one place means a record and the check made
on the same tensor see the same numbers. numpy is imported when a value is converted, never at import time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["to_numpy"]


def to_numpy(value: Any, dtype: Any = None) -> Any:
    """``value`` as a numpy array (``dtype`` if given): ``.detach()`` for torch, ``.numpy()`` for TF and Keras 2.

    Keras 3 tensors of other backends are read by ``scenarios._frameworks.to_numpy``, which knows the active Keras.
    """
    import numpy as np

    if hasattr(value, "detach"):  # torch.Tensor, also under Keras' torch backend
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf.Tensor, tf.Variable, Keras variables
        value = value.numpy()
    return np.asarray(value, dtype=dtype)
