"""matrix.yaml, parsed strictly into concrete environments, a scenario selection and upgrade paths.

The package's modules, in the order a file goes through them:

* ``limits``: the bounds a file must stay within (size, depth, nodes, items, environments, lengths);
* ``reader``: the file's bytes, bounded and decoded (too big, NUL, not UTF-8: one line with the byte offset);
* ``composer``: YAML events composed into nodes iteratively, refusing deep nesting and alias bombs as they come;
* ``located``: those nodes converted so every key keeps its line (and odd values are refused);
* ``model``: the pydantic specs (the file's keys, and the published JSON Schema) and the ``Environment`` and
  ``Matrix`` the rest of the harness receives;
* ``checks``: the rules about one environment no schema can say (exact pins, safe names, tags, install options);
* ``variables``: which ``env:`` variables a matrix may set (never the loader's, the interpreter's or the installer's);
* ``expand``: explicit environments, and ``generate:`` blocks expanded (axes, ``exclude``, ``include``);
* ``selection``: the scenario selection, command-line subsets and CI shards;
* ``upgrades``: framework lines and the upgrade paths verdicts judge (declared, or derived within a line);
* ``parse``: ``load``, which runs the steps above and raises every problem at once.

Callers import from ``harness.matrix`` only; the module split is an internal arrangement.
"""

from __future__ import annotations

from harness.matrix.model import Environment, Matrix, WaiverSpec, matrix_schema, venv_slug
from harness.matrix.parse import load
from harness.matrix.selection import restrict, shard
from harness.matrix.upgrades import UpgradePath, comparable, framework_line, upgrade_paths

__all__ = [
    "Environment",
    "Matrix",
    "UpgradePath",
    "WaiverSpec",
    "comparable",
    "framework_line",
    "load",
    "matrix_schema",
    "restrict",
    "shard",
    "upgrade_paths",
    "venv_slug",
]
