"""The content-addressed cell cache: a cell whose inputs did not change is taken, not measured again.

A cell's key is the sha256 of everything that can change its outcome: the environment's resolved lock and
installed packages, the Python version, machine and CPU features, the declared environment variables, the seed,
the harness's worker code and version, the scenario's own module with every helper module it imports (within its
package), its timeout, and for a relay consumer cell the producer's manifest entries (file hashes included) and
whether unsafe formats may load. Change any of them and the key changes; nothing is reused across a changed key.

Entries live in ``<root>/<key[:2]>/<key>/``: ``cell.json`` (the cell and where it was measured), ``values.npz``
(its record values, when it has any) and ``artifacts/`` (what ``relay.produce`` saved). An entry is written into a
temporary folder and renamed into place, so a reader sees a whole entry or none. Entries are read as untrusted
input: a malformed one, an id that does not match, or a symlink inside is a miss, never an error or a follow.
Entries nobody takes any more are removed by ``compat-matrix cache prune`` (``harness.cache_prune``).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness import __version__, workspace
from harness.results import ScenarioResult

__all__ = [
    "CACHE_FORMAT",
    "CachedCell",
    "CellCache",
    "CellKey",
    "EnvironmentKey",
    "default_cache_dir",
    "mark_used",
    "source_digest",
]

CACHE_FORMAT = 1  # bump when the meaning of an entry changes: every older entry becomes a miss
_KEY_LENGTH = 64
#: Outcomes measured again rather than reused: a timeout may be the machine's moment (a busy machine), an env-error
#: its network's, not the release's.
_NOT_CACHED = ("timeout", "env-error")
#: A crash is stored pending when first seen and reused only once a second measuring under the same key crashed
#: alike (the same message: the same signal in the same scenario): one crash may be the machine's moment (an OOM
#: kill), two alike with nothing changed are the release's (TF 2.16's TFLite converter aborts every time, and each
#: unchanged nightly re-run paid a TensorFlow import to see it again).
_CRASH, _CRASHES_TO_REUSE = "crash", 2
#: How the supervisor ends the message of a crash inside the cell's own scenario; the others (a worker that never
#: started, one that died between scenarios) say nothing of the cell, and depend on what ran before it.
_CRASHED_IN_ITS_SCENARIO = "while running this scenario"
_WORKER_PACKAGE = Path(__file__).resolve().parent / "worker"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``COMPAT_CACHE_DIR`` when set, else ``_cache/cells`` in the state folder, beside the environments."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("COMPAT_CACHE_DIR") or workspace.state_dir(environ) / "_cache" / "cells")


def _sha256_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def worker_digest() -> str:
    """The code that runs in every environment (``harness/worker``) and the harness version."""
    return f"{__version__}:{_sha256_files(_WORKER_PACKAGE.glob('*.py'))}"


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") else None


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module name ``path`` (the module ``module``) imports, relative imports resolved, and
    ``package.name`` for each ``from package import name``; a file that does not parse imports nothing."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):  # a broken user scenario file: its own bytes are still in the digest
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node.module, node.level)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def _absolute(module: str, path: Path, target: str | None, level: int) -> str:
    """``from ..x import y`` in ``module`` -> the absolute name of ``..x`` (``level`` 0: ``target`` itself)."""
    if level == 0:
        return target or ""
    parts = module.split(".")
    package = parts if path.name == "__init__.py" else parts[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([target] if target else [])])


@cache
def source_digest(module: str) -> str:
    """sha256 of a scenario module and every module of its own top-level package it imports, transitively.

    Frameworks and the standard library are covered by the lock and the Python version; only the scenario
    package's files are read here, found by their import statements (nothing is imported to find them).
    """
    package = module.split(".", 1)[0]
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not (name == package or name.startswith(f"{package}.")):
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo += sorted(_imported_names(path, name))
    return _sha256_files(seen.values())


@dataclass(frozen=True)
class EnvironmentKey:
    """What one environment contributes to each of its cells' keys, fixed once it is provisioned."""

    environment: str
    lock_sha256: str
    packages: tuple[tuple[str, str], ...]
    python_version: str
    machine: str
    cpu_flags: tuple[str, ...]
    env_vars: tuple[tuple[str, str], ...]
    seed: int
    harness: str = field(default_factory=worker_digest)


@dataclass(frozen=True)
class CellKey:
    """One cell's key: its environment's, its scenario's code and its own inputs."""

    environment: EnvironmentKey
    cell_id: str
    source: str
    timeout: float
    extra: str = ""  # a relay consumer cell: its manifest entries and whether unsafe formats may load

    @property
    def sha256(self) -> str:
        text = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CachedCell:
    """An entry found in the cache: the cell, where it was measured, and its files."""

    cell: ScenarioResult
    origin: str
    values: Path | None
    artifacts: Path | None


def mark_used(marker: Path) -> None:
    """An entry was taken: its marker's mtime is when it was last used, which ``harness.cache_prune`` keeps by
    (a read-only cache simply keeps its stored times)."""
    with contextlib.suppress(OSError):
        os.utime(marker)


def _holds_symlink(folder: Path) -> bool:
    return any(p.is_symlink() for p in folder.rglob("*"))


def _pending_crash(cell: ScenarioResult, data: Mapping[str, Any]) -> bool:
    """A crash entry not yet seen ``_CRASHES_TO_REUSE`` times alike: a miss (it is measured again)."""
    if cell.status != _CRASH:
        return False
    crashes = data.get("crashes")
    return not isinstance(crashes, int) or crashes < _CRASHES_TO_REUSE


def _stored_crash(entry: Path) -> tuple[str, int] | None:
    """The message of the crash the entry holds and how often it was seen alike; None for any other entry (one
    that cannot be read is left as it is, as before: ``get`` misses it)."""
    try:
        data = json.loads((entry / "cell.json").read_text(encoding="utf-8"))
        cell, crashes = data["cell"], data.get("crashes", 1)
        if cell.get("status") != _CRASH or not isinstance(crashes, int):
            return None
        return str(cell.get("message", "")), crashes
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _into_place(staging: Path, entry: Path) -> None:
    """``staging`` renamed to ``entry``; an entry there already is renamed aside first and deleted after (a reader
    sees the old entry, a miss, or the new one; the aside folder is named as staging is, so a prune finds it when
    a writer dies between the renames)."""
    if not entry.exists():
        os.rename(staging, entry)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}-", dir=entry.parent))
    os.rename(entry, aside / "replaced")
    os.rename(staging, entry)
    shutil.rmtree(aside, ignore_errors=True)


class CellCache:
    """Entries by key under ``root``; ``enabled=False`` (``--no-cache``) finds nothing but still stores."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root, self.enabled = Path(root), enabled

    def _entry(self, key: str) -> Path:
        if len(key) != _KEY_LENGTH or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / key[:2] / key

    def get(self, key: str, cell_id: str) -> CachedCell | None:
        """The entry for ``key`` if it is whole and names ``cell_id``; anything else is a miss."""
        if not self.enabled:
            return None
        entry = self._entry(key)
        if not entry.is_dir() or entry.is_symlink() or _holds_symlink(entry):
            return None
        try:
            data = json.loads((entry / "cell.json").read_text(encoding="utf-8"))
            cell = ScenarioResult.model_validate(data["cell"])
            origin = str(data["origin"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError, RecursionError):
            return None
        if cell.id != cell_id or cell.cache_key != key or _pending_crash(cell, data):
            return None
        mark_used(entry / "cell.json")
        if cell.status == _CRASH:  # never with files: only a crash entry is ever replaced, so nothing to mis-pair
            return CachedCell(cell, origin, None, None)
        values, artifacts = entry / "values.npz", entry / "artifacts"
        return CachedCell(cell, origin, values if values.is_file() else None, artifacts if artifacts.is_dir() else None)

    def put(
        self, key: str, cell: dict[str, Any], origin: str, values: Path | None = None, artifacts: Path | None = None
    ) -> bool:
        """Store one measured cell (not a timeout or env-error; a crash in its own scenario pending until it
        recurs, ``_CRASH``; no other crash); False when it was not stored.

        An entry already there is kept (same key, same inputs: it is as good), unless it holds a crash: then what
        was measured now replaces it, a crash alike counted as seen once more. A crash is stored without files, so
        a reader that read a crash's ``cell.json`` just before its replacement landed takes no files of the new
        entry (the only entries replaced hold none)."""
        status, message = cell.get("status"), str(cell.get("message", ""))
        if status in _NOT_CACHED or (status == _CRASH and not message.endswith(_CRASHED_IN_ITS_SCENARIO)):
            return False
        entry = self._entry(key)
        stored = _stored_crash(entry) if entry.exists() else None
        if entry.exists() and (stored is None or stored == (message, _CRASHES_TO_REUSE)):
            return False
        data: dict[str, Any] = {"cell": {**cell, "cache_key": key}, "origin": origin}
        if status == _CRASH:
            again = stored is not None and stored[0] == message
            data["crashes"] = min(stored[1] + 1, _CRASHES_TO_REUSE) if stored is not None and again else 1
            if data["crashes"] < _CRASHES_TO_REUSE:
                del data["origin"]  # pending: a reader without the rule for crashes (an older harness) misses it
            values = artifacts = None  # what a dead worker left says nothing, and ``get`` pairs no files with a crash
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=entry.parent))
        try:
            (staging / "cell.json").write_text(json.dumps(data))
            if values is not None and values.is_file():
                shutil.copyfile(values, staging / "values.npz")
            if artifacts is not None and artifacts.is_dir() and not _holds_symlink(artifacts):
                shutil.copytree(artifacts, staging / "artifacts")
            _into_place(staging, entry)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return False  # a full disk or a race with a parallel writer: the cell is kept in the run anyway
        return True

    @staticmethod
    def restore_artifacts(cached: CachedCell, target: Path) -> None:
        """Put a reused producer's artifacts where this run's consumers look for them."""
        if cached.artifacts is None:
            return
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)
        shutil.copytree(cached.artifacts, target)
