"""The user's saved models (matrix ``models:``) as scenarios: one cell ``user.model_<name>`` per model.

The orchestrator registers them when it reads the matrix, and each worker registers the same entries from its plan,
so both sides know the same ids. The loading itself lives in ``scenarios/_user_models.py`` (it imports the
frameworks, inside the cell); this module is standard library only, like the rest of the worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from harness.worker.scenario import Context, Scenario, replace_registered

__all__ = ["LOADER_MODULE", "MODEL_PREFIX", "register_models"]

#: The scenario module that loads a model: its source is in every model cell's cache key.
LOADER_MODULE = "scenarios._user_models"
MODEL_PREFIX = "user.model_"


def _cell(entry: Mapping[str, Any]) -> Any:
    def load_the_model(ctx: Context) -> None:
        importlib.import_module(LOADER_MODULE).run_model(ctx, dict(entry))

    return load_the_model


def register_models(entries: Iterable[Mapping[str, Any]]) -> None:
    """Register one scenario per model entry (replacing the models of an earlier matrix in this process)."""
    replace_registered(MODEL_PREFIX, [_scenario(entry) for entry in entries])


def _scenario(entry: Mapping[str, Any]) -> Scenario:
    return Scenario(
        id=f"{MODEL_PREFIX}{entry['name']}",
        area="user",
        name=f"model_{entry['name']}",
        func=_cell(entry),
        requires=(str(entry["framework"]),),
        doc=f"Catches your model {entry['name']} ({entry['display_path']}) no longer loading with the plain "
        "call, or predicting differently, or losing its compiled state.",
        module=LOADER_MODULE,
    )
