"""An example scenario, written by ``compat-matrix init``: copy it to test what your own code relies on.

A scenario is a function of a ``Context``; it runs once in every environment of the matrix, in that environment's
own interpreter, and records values that compat-matrix compares across each upgrade path: a record that changes
beyond its tolerance is a reason in the verdict. Import the framework inside the function (the orchestrator lists
scenarios without TensorFlow), and name in ``requires`` what the scenario needs (an environment without it skips).
"""

from __future__ import annotations

from compat_matrix import Context, scenario


@scenario(area="example", requires=["keras>=3"])
def seeded_dense(ctx: Context) -> None:
    """Catches a change in what a seeded ``Dense`` layer computes: its initializer, its default dtype, its maths.

    compat-matrix seeds every framework before each scenario, so the weights are the same draw in every release
    that keeps the initializer's stream.
    """
    import keras
    import numpy as np

    layer = keras.layers.Dense(4, activation="relu")
    x = np.linspace(-1.0, 1.0, 24, dtype="float32").reshape(6, 4)
    y = np.asarray(layer(x))
    ctx.record("kernel", np.asarray(layer.kernel))
    ctx.record("output", y)
    ctx.check("output_shape", y.shape == (6, 4), shape=list(y.shape))
