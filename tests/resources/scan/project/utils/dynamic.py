"""Helpers that pick framework objects by name at run time: a static scan cannot resolve them."""

import importlib

from tensorflow.keras import layers


def layer(name: str, **options):
    return getattr(layers, name)(**options)  # expect: not-checked


def backend_module(name: str):
    return importlib.import_module(name)  # expect: not-checked


def dense(units: int):
    return getattr(layers, "Dense")(units)  # noqa: B009 (a constant name resolves statically)
