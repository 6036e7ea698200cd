"""Pruning the cell cache: what goes (unused for days, then least recently used), what stays, what is never touched."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from harness.cache import CellCache
from harness.cache_prune import STAGING_GRACE_S, entries, parse_size, prune
from harness.cli import main

DAY = 86400.0
NOW = 2_000_000_000.0


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stored(cache: CellCache, name: str, used: float, payload: int = 0, tmp: Path | None = None) -> Path:
    """A real entry written by the cache (with ``payload`` bytes of values), last used at ``used``."""
    values = None
    if payload and tmp is not None:
        values = tmp / f"{name}.npz"
        values.write_bytes(b"\0" * payload)
    cell = {"id": f"area.{name}", "area": "area", "status": "pass"}
    assert cache.put(key(name), cell, origin="run-1", values=values)
    entry = cache.root / key(name)[:2] / key(name)
    os.utime(entry / "cell.json", (used, used))
    return entry


def scan_answer(root: Path, name: str, used: float) -> Path:
    path = root / "scan" / key(name)[:2] / f"{key(name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.utime(path, (used, used))
    return path


def test_entries_unused_for_longer_than_the_age_go_and_the_others_stay(tmp_path):
    cache = CellCache(tmp_path / "cells")
    old = stored(cache, "old", NOW - 40 * DAY)
    recent = stored(cache, "recent", NOW - 2 * DAY)
    old_scan, new_scan = scan_answer(cache.root, "s-old", NOW - 31 * DAY), scan_answer(cache.root, "s-new", NOW)
    result = prune(cache.root, older_than_s=30 * DAY, now=NOW)
    assert sorted(e.path for e in result.removed) == sorted([old, old_scan])
    assert not old.exists() and not old_scan.exists() and recent.is_dir() and new_scan.is_file()
    assert "removed 2 entries" in result.line() and "kept 2" in result.line()


def test_a_size_bound_removes_the_least_recently_used_first(tmp_path):
    cache = CellCache(tmp_path / "cells")
    first = stored(cache, "a", NOW - 3 * DAY, payload=4000, tmp=tmp_path)
    second = stored(cache, "b", NOW - 2 * DAY, payload=4000, tmp=tmp_path)
    third = stored(cache, "c", NOW - 1 * DAY, payload=4000, tmp=tmp_path)
    sizes = {e.path: e.size for e in entries(cache.root)}
    assert all(size > 4000 for size in sizes.values())  # the values file and cell.json, counted
    prune(cache.root, max_bytes=sizes[second] + sizes[third], now=NOW)
    assert not first.exists() and second.is_dir() and third.is_dir()


def test_a_hit_marks_the_entry_used_so_pruning_keeps_it(tmp_path):
    cache = CellCache(tmp_path / "cells")
    taken = stored(cache, "taken", time.time() - 40 * DAY)
    untouched = stored(cache, "untouched", time.time() - 40 * DAY)
    assert cache.get(key("taken"), "area.taken") is not None
    prune(cache.root, older_than_s=30 * DAY)
    assert taken.is_dir() and not untouched.exists()


def test_a_dry_run_and_info_remove_nothing(tmp_path, capsys):
    cache = CellCache(tmp_path / "cells")
    old = stored(cache, "old", time.time() - 40 * DAY)
    assert prune(cache.root, older_than_s=DAY, dry_run=True).removed and old.is_dir()
    args = ["cache", "--cache-dir", str(cache.root)]
    assert main([*args[:1], "info", *args[1:]]) == 0
    assert "would remove 0 entries" in capsys.readouterr().out and old.is_dir()
    assert main([args[0], "prune", "--older-than", "1", "--dry-run", *args[1:]]) == 0
    assert "would remove 1 entries" in capsys.readouterr().out and old.is_dir()
    assert main([args[0], "prune", "--older-than", "1", *args[1:]]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and not old.exists()


def test_what_the_cache_did_not_write_is_never_touched(tmp_path):
    """A stray file, a folder not named by a key, a key in the wrong shard, a symlink's target: all stay."""
    root = tmp_path / "cells"
    shard = root / key("x")[:2]
    shard.mkdir(parents=True)
    (root / "README").write_text("mine")
    (shard / "notes").mkdir()
    wrong = root / "zz" / key("x")
    wrong.mkdir(parents=True)
    target = tmp_path / "precious"
    target.mkdir()
    (target / "data").write_text("keep")
    link = shard / key("x")
    link.symlink_to(target)
    old = NOW - 400 * DAY
    for path in (root / "README", shard / "notes", wrong, target):
        os.utime(path, (old, old))
    result = prune(root, older_than_s=DAY, max_bytes=0, now=NOW)
    assert [e.path for e in result.removed] == [link]  # the link itself is an entry's name: it goes, as a link
    assert (root / "README").is_file() and (shard / "notes").is_dir() and wrong.is_dir()
    assert (target / "data").read_text() == "keep"


def test_a_writers_staging_folder_goes_only_once_it_is_a_day_old(tmp_path):
    shard = tmp_path / "cells" / "ab"
    fresh, stale = shard / ".ab0123456789-fresh", shard / ".ab0123456789-stale"
    for folder, age in ((fresh, 60.0), (stale, STAGING_GRACE_S + 60)):
        folder.mkdir(parents=True)
        os.utime(folder, (NOW - age, NOW - age))
    prune(tmp_path / "cells", now=NOW)
    assert fresh.is_dir() and not stale.exists()


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("500M", 500 << 20), ("2g", 2 << 30), ("1.5K", 1536)])
def test_sizes_read_with_their_unit(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["cache", "prune"], "say what to remove"),
        (["cache", "prune", "--max-size", "3Q"], "--max-size: not a size: '3Q'"),
        (["cache", "prune", "--older-than", "-1"], "--older-than: -1.0 is negative"),
        (["cache", "prune", "--older-than", "nan"], "--older-than: nan is not a number of days"),
        (["cache", "prune", "--max-size", "2ib"], "--max-size: not a size: '2ib'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, said):
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1


def test_a_symlinked_cache_root_is_refused_and_a_missing_one_said(tmp_path, capsys):
    real = tmp_path / "real" / "cells" / "ab" / ("ab" + "0" * 62)
    real.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real" / "cells")
    assert main(["cache", "prune", "--max-size", "0", "--cache-dir", str(link)]) == 2
    assert "a symbolic link" in capsys.readouterr().err and real.is_dir()  # nothing removed through it
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "nowhere")]) == 0
    assert "no cell cache here yet" in capsys.readouterr().out
