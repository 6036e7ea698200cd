"""``compat-matrix init``: the files of a working starting point, copied into the user's directory.

The starter is plain files shipped with the tool (``matrix.yaml`` and ``example.py`` beside this module), copied
byte for byte: what ``init`` writes is exactly what the tests run, and a user reading the tool's source sees it.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError

__all__ = ["SCENARIO_FOLDER", "write_starter"]

_HERE = Path(__file__).resolve().parent
#: The folder of user scenarios the starter matrix names in ``scenarios.paths``.
SCENARIO_FOLDER = "compat_scenarios"


def _targets(directory: Path) -> dict[Path, Path]:
    return {
        _HERE / "matrix.yaml": directory / "matrix.yaml",
        _HERE / "example.py": directory / SCENARIO_FOLDER / "example.py",
    }


def write_starter(directory: Path, force: bool = False) -> list[Path]:
    """Write the starter into ``directory``; an existing file is kept (a usage error) unless ``force``."""
    targets = _targets(directory)
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise HarnessError(f"init: {', '.join(existing)} already exists; nothing written (--force overwrites)")
    for source, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    return list(targets.values())
