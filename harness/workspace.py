"""Where compat-matrix keeps what it builds: venvs, the cell cache, the scan cache, bisection venvs.

In the project's own checkout that is ``.nox/`` beside ``noxfile.py`` (git-ignored, where nox puts its sessions).
Installed as a tool (``uv pip install .``), the harness lives in site-packages, which is no place for venvs: there
it is ``.compat-matrix/`` in the directory the command runs in, beside the user's ``matrix.yaml`` and ``results/``.
``COMPAT_STATE_DIR`` overrides both (CI caches, tests).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["LIB_ROOT", "is_checkout", "state_dir"]

#: The folder holding the ``harness`` and ``scenarios`` packages: the checkout itself, or the installed tool's
#: ``compat_matrix/_lib``. Workers get it (and nothing else of the orchestrator's) on their ``PYTHONPATH``.
LIB_ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def is_checkout(root: Path = LIB_ROOT) -> bool:
    """True in the project's own source tree (its noxfile beside the packages), False in an installed tool.

    Asked once per folder and process: a verdict's every reproduce line asks it (two ``stat`` calls each, 0.15 s of
    a 10k-cell report), and where the harness lives does not change while it runs.
    """
    return (root / "noxfile.py").is_file() and (root / "pyproject.toml").is_file()


def state_dir(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The folder for venvs and caches: ``COMPAT_STATE_DIR``, the checkout's ``.nox``, else ``./.compat-matrix``."""
    environ = os.environ if environ is None else environ
    if environ.get("COMPAT_STATE_DIR"):
        return Path(environ["COMPAT_STATE_DIR"])
    if is_checkout():
        return LIB_ROOT / ".nox"
    return (cwd or Path.cwd()) / ".compat-matrix"
