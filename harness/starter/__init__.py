"""``compat-matrix init``: the files of a working starting point, copied into the user's directory.

The starter is plain files shipped with the tool (``matrix.yaml`` and ``example.py`` beside this module), copied
byte for byte: what ``init`` writes is exactly what the tests run, and a user reading the tool's source sees it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["EXAMPLE_MODEL", "SCENARIO_FOLDER", "save_example_model", "write_starter"]

_HERE = Path(__file__).resolve().parent
#: The folder of user scenarios the starter matrix names in ``scenarios.paths``, and its model's file.
SCENARIO_FOLDER = "compat_scenarios"
EXAMPLE_MODEL = "models/example.keras"


def _targets(directory: Path) -> dict[Path, Path]:
    return {
        _HERE / "matrix.yaml": directory / "matrix.yaml",
        _HERE / "example.py": directory / SCENARIO_FOLDER / "example.py",
    }


#: Where the starter matrix's ``models:`` block begins (``init --no-model`` writes the matrix without it).
_MODELS_BLOCK = "\n# Your saved models:"


def write_starter(directory: Path, force: bool = False, model: bool = True) -> list[Path]:
    """Write the starter into ``directory``; an existing file is kept (a usage error) unless ``force``."""
    targets = _targets(directory)
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise HarnessError(f"init: {', '.join(existing)} already exists; nothing written (--force overwrites)")
    for source, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        target.write_text(text if model or source.suffix != ".yaml" else text.split(_MODELS_BLOCK)[0])
    return list(targets.values())


def save_example_model(directory: Path, venv_root: Path) -> Path:
    """Save the starter's example model in the matrix's first environment (provisioned as a run would)."""
    from harness import matrix as matrix_mod
    from harness.provision import provision

    matrix = matrix_mod.load(directory / "matrix.yaml")
    env = next(iter(matrix.environments.values()))
    target = directory / EXAMPLE_MODEL
    target.parent.mkdir(parents=True, exist_ok=True)
    prov = provision(env, (venv_root / env.venv_slug).resolve())
    done = subprocess.run(
        [str(prov.python), str(_HERE / "save_example_model.py"), str(target)],
        env=prov.worker_environ(env, []),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not target.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise HarnessError(f"init: saving {target} in {env.name} failed: {tail[0]}")
    return target
