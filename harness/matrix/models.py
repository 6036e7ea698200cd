"""``models:`` of matrix.yaml: the user's saved models, resolved against the matrix file and fingerprinted.

Each entry becomes what a worker receives (plain JSON: absolute paths, the framework, the inputs), plus the sha256
of every byte the cell reads (the model's files, the inputs and expected outputs), which is part of the cell's cache
key: a re-saved model is measured again, an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.matrix.checks import short
from harness.matrix.located import Located
from harness.matrix.model import ModelSpec, SampleInputs

__all__ = ["local_code", "user_models"]

_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
_TORCH_SUFFIXES = (".pt", ".pth", ".pt2", ".bin")


def _framework(target: Path, declared: str | None) -> str | None:
    if declared:
        return declared
    if target.suffix in _KERAS_SUFFIXES or (target / "saved_model.pb").is_file():
        return "keras"
    return "torch" if target.suffix in _TORCH_SUFFIXES else None


def _digest(paths: list[Path], entry: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(entry, sort_keys=True).encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _existing(base: Path, raw: str, loc: tuple[str | int, ...], located: Located) -> Path | None:
    target = (base / raw).resolve()
    if not target.exists():
        located.problem(loc, f"{short(raw)} does not exist ({target})")
        return None
    return target


def _entry(base: Path, i: int, spec: ModelSpec, located: Located) -> dict[str, Any] | None:
    target = _existing(base, spec.path, ("models", i, "path"), located)
    inputs: Path | None = None
    if isinstance(spec.inputs, str):
        inputs = _existing(base, spec.inputs, ("models", i, "inputs"), located)
    expected = _existing(base, spec.expected, ("models", i, "expected"), located) if spec.expected else None
    if target is None or (isinstance(spec.inputs, str) and inputs is None) or (spec.expected and expected is None):
        return None
    framework = _framework(target, spec.framework)
    if framework is None:
        located.problem(("models", i, "path"), f"{short(spec.path)}: cannot tell its framework; set framework:")
        return None
    entry: dict[str, Any] = {
        "name": spec.name,
        "display_path": spec.path,
        "path": str(target),
        "framework": framework,
        "inputs": spec.inputs.model_dump() if isinstance(spec.inputs, SampleInputs) else str(inputs),
        "expected": str(expected) if expected else None,
        "module": spec.module,
        "imports": list(spec.imports),
    }
    entry["digest"] = _digest([p for p in (target, inputs, expected) if p is not None], entry)
    return entry


def user_models(matrix_file: Path, specs: list[ModelSpec], located: Located) -> tuple[dict[str, Any], ...]:
    """The entries the workers get, in declaration order; a missing file or a repeated name is a problem."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            located.problem(("models", i, "name"), f"model name {short(spec.name)} is used twice")
            continue
        seen.add(spec.name)
        entry = _entry(matrix_file.parent, i, spec, located)
        if entry is not None:
            entries.append(entry)
    return tuple(entries)


#: Folders a project's source tree holds that are not its source (build output, caches, venvs).
_NOT_SOURCE = {".git", "__pycache__", "build", "dist", ".nox", ".compat-matrix", ".venv", ".mypy_cache", ".ruff_cache"}


def _source_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part in _NOT_SOURCE or part.endswith(".egg-info") for part in p.relative_to(root).parts)
    )


def local_code(matrix_file: Path, raw: list[str], located: Located) -> tuple[tuple[str, ...], str] | None:
    """``local:`` resolved (a project folder with a pyproject.toml or setup.py, or a .whl) and the digest of its
    source: part of each environment's install inputs and lock, so an edit re-installs it and measures again."""
    paths: list[Path] = []
    for i, item in enumerate(raw):
        target = (matrix_file.parent / item).resolve()
        project = target.is_dir() and any((target / f).is_file() for f in ("pyproject.toml", "setup.py"))
        if not (project or (target.is_file() and target.suffix == ".whl")):
            located.problem(("local", i), f"{short(item)} is neither a project folder nor a .whl file ({target})")
            continue
        paths.append(target)
    if not paths:
        return None
    digest = hashlib.sha256()
    for root in paths:
        for file in _source_files(root):
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode() + b"\0")
            digest.update(file.read_bytes())
    return tuple(str(p) for p in paths), digest.hexdigest()
