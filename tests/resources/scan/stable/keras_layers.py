"""Keras layers whose API did not change between Keras 2.15 and Keras 3.3."""

from tensorflow import keras


def head(units: int):
    return [keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(0.5)]
