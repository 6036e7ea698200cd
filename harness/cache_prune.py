"""Keeping the cell cache bounded: entries nobody used for a while, then the least recently used, are removed.

A nightly job adds entries every night a release moves (a new lock is a new key for every cell of that
environment) and never reads the old ones again, so the cache only grows: relay producers' entries hold saved
models. ``prune`` removes what the next runs are least likely to take. "Used" is the time an entry was stored or
last taken (``harness.cache.mark_used`` on every hit), read from its marker file's mtime.

What counts as an entry is exactly what the cache writes: ``<root>/<key[:2]>/<key>/`` (a cell), ``<root>/scan/
<key[:2]>/<key>.json`` (a scan answer), and staging folders (``.<key[:12]>-*``) a writer left behind when it died,
taken once they are a day old. Anything else under the root is left alone, and nothing is followed through a
symlink: an entry is renamed aside first, then deleted, so a concurrent reader sees a whole entry or a miss.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "PruneResult", "entries", "parse_size", "prune"]

_KEY = re.compile(r"[0-9a-f]{64}")
_STAGING = re.compile(r"\.[0-9a-f]{12}-.+")
#: A staging folder younger than this may belong to a writer still at work.
STAGING_GRACE_S = 24 * 3600
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class Entry:
    """One thing ``prune`` may remove: a cell's folder, a scan answer or a dead writer's staging folder, with the
    last time it was stored or taken and its bytes (what the size bound counts)."""

    path: Path
    used: float  # seconds since the epoch
    size: int
    staging: bool = False


@dataclass(frozen=True)
class PruneResult:
    """What one prune removed (or, dry, would remove) and what it kept, for its one-line summary."""

    removed: list[Entry]
    kept: list[Entry]

    @staticmethod
    def _bytes(found: list[Entry]) -> int:
        return sum(e.size for e in found)

    def line(self, dry_run: bool = False) -> str:
        """The summary the command prints: counts and megabytes both ways, in the dry run's words when dry."""
        verb = "would remove" if dry_run else "removed"
        return (
            f"{verb} {len(self.removed)} entries ({_mb(self._bytes(self.removed))}), "
            f"kept {len(self.kept)} ({_mb(self._bytes(self.kept))})"
        )


def _mb(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5g``, ``4096`` (bytes) -> bytes; anything else is a ValueError saying what is wanted."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|b?)\s*", text.lower())  # "2ib": no size
    if match is None:
        raise ValueError(f"not a size: {text!r} (a number of bytes, or with K, M, G or T: 500M, 2G)")
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def _tree_size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):  # os.walk does not follow symlinked folders
        total += sum((Path(folder) / name).lstat().st_size for name in files)
    return total


def _cell_entry(path: Path) -> Entry:
    marker = path / "cell.json"
    used = marker.lstat().st_mtime if marker.is_file() and not marker.is_symlink() else path.lstat().st_mtime
    return Entry(path, used, _tree_size(path))


def _shards(root: Path) -> Iterator[Path]:
    """The two-character folders of ``root`` (the first two characters of the keys inside)."""
    if root.is_symlink() or not root.is_dir():
        return
    for shard in sorted(root.iterdir()):
        if len(shard.name) == 2 and shard.is_dir() and not shard.is_symlink():
            yield shard


def entries(root: Path) -> list[Entry]:
    """Every entry of the cache at ``root`` (cells, scan answers, stale-candidate staging folders)."""
    found: list[Entry] = []
    for shard in _shards(root):
        for path in sorted(shard.iterdir()):
            if _KEY.fullmatch(path.name) and path.name.startswith(shard.name):
                found.append(_cell_entry(path))
            elif _STAGING.fullmatch(path.name) and path.name[1:3] == shard.name:
                found.append(Entry(path, path.lstat().st_mtime, _tree_size(path), staging=True))
    for shard in _shards(root / "scan"):
        for path in sorted(shard.glob("*.json")):
            if _KEY.fullmatch(path.stem) and path.name.startswith(shard.name):
                found.append(Entry(path, path.lstat().st_mtime, path.lstat().st_size))
    return found


def _remove(entry: Entry) -> bool:
    """Rename aside (atomic: a reader sees the entry or a miss), then delete; a symlink goes, not its target."""
    aside = entry.path.with_name(f".{entry.path.name.lstrip('.')[:12]}-pruned-{os.getpid()}")
    try:
        os.rename(entry.path, aside)
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside)
        else:
            aside.unlink()
    except OSError:
        return False  # gone already (another prune), or not ours to remove (permissions): kept, said as kept
    return True


def prune(
    root: Path,
    older_than_s: float | None = None,
    max_bytes: int | None = None,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Remove entries unused for ``older_than_s``, then the least recently used until ``max_bytes`` remain."""
    now = time.time() if now is None else now
    found = entries(Path(root))
    doomed = {e.path for e in found if e.staging and now - e.used > STAGING_GRACE_S}
    if older_than_s is not None:
        doomed |= {e.path for e in found if now - e.used > older_than_s}
    if max_bytes is not None:
        total = sum(e.size for e in found if e.path not in doomed)
        for entry in sorted((e for e in found if e.path not in doomed), key=lambda e: e.used):
            if total <= max_bytes:
                break
            doomed.add(entry.path)
            total -= entry.size
    removed = [e for e in found if e.path in doomed]
    if not dry_run:
        removed = [e for e in removed if _remove(e)]
    gone = {e.path for e in removed}
    return PruneResult(removed, [e for e in found if e.path not in gone])
