"""The one place where scenarios get a clean, seeded state.

Orders, initial values and RNG streams are comparable across environments only when every seed is set the same
way in the same order, so ``reset`` always makes the same calls in the same order and returns them as text, stored
with each result. It seeds only frameworks the worker has already imported (it never imports one itself), so an
environment without torch pays nothing for torch. Runs inside the worker: standard library at import time.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

from harness.worker.protocol import legacy_keras

__all__ = ["DEFAULT_SEED", "active_keras", "reset"]

DEFAULT_SEED = 1337


def active_keras() -> Any | None:
    """The Keras a user of this environment gets: ``tf_keras`` under ``TF_USE_LEGACY_KERAS=1``, else ``keras``."""
    return sys.modules.get("tf_keras" if legacy_keras(os.environ) else "keras")


def _seed_keras(seed: int, calls: list[str]) -> None:
    keras = active_keras()
    if keras is None:
        return
    keras.backend.clear_session()
    calls.append(f"{keras.__name__}.backend.clear_session()")
    keras.utils.set_random_seed(seed)
    calls.append(f"{keras.__name__}.utils.set_random_seed({seed})")


def _seed_numpy(seed: int, calls: list[str]) -> None:
    try:  # numpy is the worker's one guaranteed requirement: always seeded, so every env makes the same calls
        import numpy
    except ImportError:  # a bare interpreter (the boundary test): nothing to seed
        return
    numpy.random.seed(seed)
    calls.append(f"numpy.random.seed({seed})")


def _seed_tensorflow(seed: int, calls: list[str]) -> None:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    tf.random.set_seed(seed)
    calls.append(f"tensorflow.random.set_seed({seed})")
    enable = getattr(tf.config.experimental, "enable_op_determinism", None)
    if enable is not None:  # TensorFlow >= 2.9
        enable()
        calls.append("tensorflow.config.experimental.enable_op_determinism()")
    tf.config.experimental.enable_tensor_float_32_execution(False)
    calls.append("tensorflow.config.experimental.enable_tensor_float_32_execution(False)")


def _seed_torch(seed: int, calls: list[str]) -> None:
    torch = sys.modules.get("torch")
    if torch is None:
        return
    torch.manual_seed(seed)
    calls.append(f"torch.manual_seed({seed})")
    torch.use_deterministic_algorithms(True, warn_only=True)
    calls.append("torch.use_deterministic_algorithms(True, warn_only=True)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    calls.append("torch.backends.{cuda.matmul,cudnn}.allow_tf32 = False")


def reset(seed: int = DEFAULT_SEED) -> list[str]:
    """Clear framework sessions and seed every loaded RNG; return the calls made, in order.

    Order: Keras session cleared and seeded first (it seeds Python, NumPy and its backend itself), then the
    explicit Python, NumPy, TensorFlow and torch seeds, so the final state does not depend on what Keras seeds.
    """
    calls: list[str] = []
    _seed_keras(seed, calls)
    random.seed(seed)
    calls.append(f"random.seed({seed})")
    _seed_numpy(seed, calls)
    _seed_tensorflow(seed, calls)
    _seed_torch(seed, calls)
    return calls
