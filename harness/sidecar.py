"""An environment's record values: one ``.npz`` beside its results document, keyed ``<scenario-id>::<record>``.

Arrays are stored apart from the JSON so documents stay small and readable, and written atomically so a reader
never sees half an archive. Standard library and numpy only (numpy imported when values are written).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from harness.worker.atomic import write_atomic

__all__ = ["drop_npz_cells", "merge_npz", "merge_npz_many", "npz_key"]


def npz_key(scenario_id: str, record: str) -> str:
    return f"{scenario_id}::{record}"


def _save_npz(target: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    def dump(handle: Any) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        handle.write(buffer.getvalue())

    write_atomic(target, dump)


def drop_npz_cells(target: Path, scenario_ids: list[str]) -> None:
    """Remove the stored values of ``scenario_ids`` from an environment's ``.npz`` (before those cells run again)."""
    import numpy as np

    if not target.exists():
        return
    prefixes = tuple(npz_key(sid, "") for sid in scenario_ids)
    with np.load(target) as existing:
        kept = {k: existing[k] for k in existing.files if not k.startswith(prefixes)}
        if len(kept) == len(existing.files):
            return
    _save_npz(target, kept)


def merge_npz(target: Path, scenario_id: str, source: Path) -> None:
    """Add the arrays of one scenario (``source``) to the environment's ``.npz``, atomically."""
    merge_npz_many(target, {scenario_id: source})


def merge_npz_many(target: Path, sources: dict[str, Path]) -> None:
    """Add the arrays of several scenarios (id -> their ``.npz``) in one rewrite of the environment's ``.npz``."""
    import numpy as np

    arrays: dict[str, Any] = {}
    if target.exists():
        with np.load(target) as existing:
            arrays.update({k: existing[k] for k in existing.files})
    for scenario_id, source in sources.items():
        with np.load(source) as new:
            arrays.update({npz_key(scenario_id, k): new[k] for k in new.files})
    _save_npz(target, arrays)
