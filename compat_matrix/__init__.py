"""compat-matrix installed as a tool: the one import name it puts in site-packages, and the scenario API.

The harness and the built-in scenarios are the packages ``harness`` and ``scenarios``. In the project's checkout they
sit beside this folder; in an installed tool they are shipped inside it, under ``compat_matrix/_lib``, so that
site-packages holds no generic top-level names (``import harness`` fails in the user's environment). Importing this
package puts the folder holding them on ``sys.path`` of the compat-matrix process only. Workers never import this
package: they get that same folder, and nothing else of the tool's environment, on their ``PYTHONPATH``, and the
worker answers ``import compat_matrix`` itself with the scenario API below (``harness.worker.public``).

User scenarios import what they need from here, the same decorator and Context as the built-in ones::

    from compat_matrix import Context, scenario, skip
"""

from __future__ import annotations

import sys
from pathlib import Path


def _lib_root() -> Path:
    """The folder holding ``harness`` and ``scenarios``: ``_lib`` when installed, else the checkout."""
    here = Path(__file__).resolve().parent
    shipped = here / "_lib"
    return shipped if (shipped / "harness").is_dir() else here.parent


_LIB = str(_lib_root())
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from harness.worker.public import Context, fail, scenario, skip  # noqa: E402

__all__ = ["Context", "fail", "scenario", "skip"]
