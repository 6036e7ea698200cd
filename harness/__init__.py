"""compat-matrix: run compatibility probes in real, pinned framework environments.

This package is imported in two places: by the orchestrator (the tool's own environment) and by the worker inside
each provisioned environment. Keep this file free of imports beyond the standard library, so the worker can load
``harness.worker`` with nothing but the standard library, numpy and the pinned frameworks.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
