"""Run by ``compat-matrix init`` in the first environment of the starter matrix: saves the example model.

A tiny compiled Keras model (Adam, mean squared error), trained one epoch on fixed data so its optimizer has state,
saved as ``.keras`` at the path given. Its sample inputs are drawn by the harness from the matrix's
``inputs: {shape, seed}``; nothing here is compared, it only makes the file a user would have.
"""

from __future__ import annotations

import sys

import keras
import numpy as np


def main(path: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8)).astype("float32")
    y = x @ rng.standard_normal((8, 2)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(path)


if __name__ == "__main__":
    main(sys.argv[1])
