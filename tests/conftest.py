"""Shared fixtures. Integration tests (real environments, real releases) are marked and sorted last."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = Path(__file__).resolve().parent / "resources"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.worker import scenario as scenario_mod  # noqa: E402

# One cell cache for the whole test session, empty at its start: a test measures what it asks for, never a cell
# an earlier `./cm` or test session left in .nox/_cache (every process the tests start inherits this).
os.environ["COMPAT_CACHE_DIR"] = tempfile.mkdtemp(prefix="compat-matrix-cache-")
os.environ.pop("COMPAT_NO_CACHE", None)


@pytest.fixture(autouse=True)
def _clean_registry():
    """Each test starts and ends with the registry it found (tests may register fakes)."""
    saved = scenario_mod.get()
    yield
    scenario_mod.clear()
    scenario_mod._REGISTRY.update(saved)


@pytest.fixture(autouse=True)
def _no_framework_switches(monkeypatch):
    for var in ("TF_USE_LEGACY_KERAS", "KERAS_BACKEND", "COMPAT_RUN_ID", "COMPAT_MATRIX"):
        monkeypatch.delenv(var, raising=False)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("integration") is not None)
