"""The cell cache: every key component invalidates, unchanged cells are reused without a worker, and a bad entry
is a miss. Offline: the tool's own interpreter plays the environment (tests.test_pipeline._fake_provision)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness import matrix
from harness.cache import CellCache, CellKey, EnvironmentKey, source_digest
from harness.pipeline import EnvironmentPipeline
from harness.worker import scenario
from tests.test_pipeline import RESOURCES, _fake_provision

PASSING = ["fault.a_first_passes", "fault.z_last_passes"]


def _env_key(**changes: object) -> EnvironmentKey:
    base = EnvironmentKey(
        environment="e", lock_sha256="0" * 64, packages=(("numpy", "2.1.0"),), python_version="3.11.7",
        machine="x86_64", cpu_flags=("avx2",), env_vars=(("KERAS_BACKEND", "torch"),), seed=1337, harness="h1",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


#: A different value for every field of the keys: a new field without an entry here fails the test below.
OTHER_VALUES = {
    "environment": "f", "lock_sha256": "1" * 64, "packages": (("numpy", "2.1.1"),), "python_version": "3.11.8",
    "machine": "aarch64", "cpu_flags": ("avx2", "avx512f"), "env_vars": (("KERAS_BACKEND", "jax"),), "seed": 7,
    "harness": "h2", "cell_id": "a.y", "source": "s2", "timeout": 301.0, "extra": '{"entries": []}',
}  # fmt: skip


def test_every_component_of_the_key_changes_it():
    key = CellKey(_env_key(), "a.x", "s1", 300.0)
    fields = [f.name for f in dataclasses.fields(EnvironmentKey)] + [
        f.name for f in dataclasses.fields(CellKey) if f.name != "environment"
    ]
    assert sorted(fields) == sorted(OTHER_VALUES)
    for name in dataclasses.fields(EnvironmentKey):
        changed = dataclasses.replace(key, environment=_env_key(**{name.name: OTHER_VALUES[name.name]}))
        assert changed.sha256 != key.sha256, name.name
    for name in ("cell_id", "source", "timeout", "extra"):
        assert dataclasses.replace(key, **{name: OTHER_VALUES[name]}).sha256 != key.sha256, name
    assert CellKey(_env_key(), "a.x", "s1", 300.0).sha256 == key.sha256  # and nothing else does


def test_the_source_digest_follows_the_helpers_a_scenario_imports(tmp_path, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_helper.py").write_text("SCALE = 1\n")
    (package / "_unrelated.py").write_text("X = 1\n")
    (package / "area.py").write_text("import numpy\nfrom mypkg import _helper\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    def digest() -> str:
        source_digest.cache_clear()
        return source_digest("mypkg.area")

    first = digest()
    (package / "_unrelated.py").write_text("X = 2\n")
    assert digest() == first  # a module the scenario does not import is not part of its key
    (package / "_helper.py").write_text("SCALE = 2\n")
    assert digest() != first
    for name in [m for m in sys.modules if m.startswith("mypkg")]:
        monkeypatch.delitem(sys.modules, name)


def _pipeline(tmp_path: Path, run_id: str, cache: CellCache | None, seed: int = 1337, ids=PASSING):
    if str(RESOURCES) not in sys.path:
        sys.path.insert(0, str(RESOURCES))
    registry = scenario.discover(["fake_scenarios"])
    path = tmp_path / "matrix.yaml"
    path.write_text(
        textwrap.dedent(f"""
        defaults: {{seed: {seed}}}
        scenarios: {{ids: {list(ids)}}}
        environments:
          - {{name: plain, packages: {{six: "1.16.0"}}}}
    """)
    )
    return EnvironmentPipeline(
        matrix.load(path, registry), "plain", tmp_path / "results" / run_id, tmp_path / "venv", registry,
        run_id=run_id, scenario_packages=("fake_scenarios",), extra_pythonpath=(RESOURCES,),
        environ={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}, cache=cache,
    )  # fmt: skip


@pytest.fixture
def fake_env(monkeypatch):
    monkeypatch.setattr("harness.pipeline.provision", _fake_provision)


def test_an_unchanged_rerun_reuses_every_cell_without_starting_a_worker(tmp_path, fake_env):
    cache = CellCache(tmp_path / "cache")
    first = _pipeline(tmp_path, "run1", cache).run()
    assert first.timings.worker_starts == 1 and first.timings.cells_reused == 0
    second = _pipeline(tmp_path, "run2", cache).run()
    assert second.timings.worker_starts == 0 and second.timings.cells_reused == 2
    assert [(c.id, c.status, c.reused_from) for c in second.scenarios] == [
        (sid, "pass", "run1/plain") for sid in PASSING
    ]
    assert all(len(c.cache_key) == 64 for c in second.scenarios)
    with np.load(tmp_path / "results" / "run2" / "plain.npz") as data:  # the values came along
        assert data["fault.a_first_passes::order"].tolist() == [2, 0, 1]


def test_an_entry_whose_files_go_after_it_was_read_is_measured_again(tmp_path, fake_env, monkeypatch):
    """``cache prune`` in another shell can remove an entry between ``get`` and the copy of its values."""
    cache = CellCache(tmp_path / "cache")
    _pipeline(tmp_path, "run1", cache).run()
    real_get = cache.get

    def get_then_pruned(key, sid):
        cached = real_get(key, sid)
        if cached is not None and cached.values is not None:
            cached.values.unlink()  # what a prune running meanwhile does
        return cached

    monkeypatch.setattr(cache, "get", get_then_pruned)
    again = _pipeline(tmp_path, "run2", cache).run()
    pruned = [c for c in again.scenarios if not c.reused_from]
    assert pruned and again.timings.worker_starts == 1
    assert all(c.status == "pass" for c in again.scenarios)
    with np.load(tmp_path / "results" / "run2" / "plain.npz") as data:  # measured again: the values are there
        assert data["fault.a_first_passes::order"].tolist() == [2, 0, 1]


def test_no_cache_and_a_changed_seed_measure_again(tmp_path, fake_env):
    cache = CellCache(tmp_path / "cache")
    _pipeline(tmp_path, "run1", cache).run()
    forced = _pipeline(tmp_path, "run2", CellCache(tmp_path / "cache", enabled=False)).run()
    assert forced.timings.worker_starts == 1 and not any(c.reused_from for c in forced.scenarios)
    reseeded = _pipeline(tmp_path, "run3", cache, seed=42).run()
    assert reseeded.timings.worker_starts == 1 and reseeded.timings.cells_reused == 0


def test_a_moved_lock_is_a_new_key(tmp_path, monkeypatch):
    cache = CellCache(tmp_path / "cache")
    monkeypatch.setattr("harness.pipeline.provision", _fake_provision)
    _pipeline(tmp_path, "run1", cache).run()
    monkeypatch.setattr("harness.pipeline.provision", functools.partial(_fake_provision, lock="1" * 64))
    assert _pipeline(tmp_path, "run2", cache).run().timings.cells_reused == 0


def test_a_crash_is_measured_again_once_then_reused_when_it_recurred_alike(tmp_path, fake_env):
    cache = CellCache(tmp_path / "cache")
    ids = ["fault.a_first_passes", "fault.b_segfault"]
    _pipeline(tmp_path, "run1", cache, ids=ids).run()
    again = _pipeline(tmp_path, "run2", cache, ids=ids).run()
    status = {c.id: (c.status, c.reused_from) for c in again.scenarios}
    assert status == {"fault.a_first_passes": ("pass", "run1/plain"), "fault.b_segfault": ("crash", "")}
    assert again.timings.worker_starts == 1
    third = _pipeline(tmp_path, "run3", cache, ids=ids).run()  # crashed alike twice: the release's, not a moment's
    status = {c.id: (c.status, c.reused_from) for c in third.scenarios}
    assert status == {"fault.a_first_passes": ("pass", "run1/plain"), "fault.b_segfault": ("crash", "run2/plain")}
    assert third.timings.worker_starts == 0
    crash = next(c for c in third.scenarios if c.id == "fault.b_segfault")
    assert "SIGSEGV" in crash.message


def _cell(status: str, message: str = "") -> dict[str, object]:
    from harness.results import ScenarioResult

    return ScenarioResult(id="a.cell", area="a", status=status, message=message).model_dump(mode="json")


KEY = "ab" * 32


def test_a_crash_is_reused_only_after_the_same_crash_twice_and_a_timeout_never(tmp_path):
    cache = CellCache(tmp_path / "cache")
    abort, segv = (f"worker killed by {signal} while running this scenario" for signal in ("SIGABRT", "SIGSEGV"))
    assert not cache.put(KEY, _cell("timeout", "timed out after 300 s"), "r1/e") and cache.get(KEY, "a.cell") is None
    assert cache.put(KEY, _cell("crash", abort), "r1/e") and cache.get(KEY, "a.cell") is None  # once: pending
    assert cache.put(KEY, _cell("crash", segv), "r2/e") and cache.get(KEY, "a.cell") is None  # another crash
    assert cache.put(KEY, _cell("crash", segv), "r3/e")
    taken = cache.get(KEY, "a.cell")
    assert taken is not None and (taken.cell.status, taken.cell.message, taken.origin) == ("crash", segv, "r3/e")
    assert not cache.put(KEY, _cell("crash", segv), "r4/e")  # the same again: the entry stands
    assert cache.put(KEY, _cell("pass"), "r5/e")  # measured again (--no-cache) and passing: the crash is replaced
    taken = cache.get(KEY, "a.cell")
    assert taken is not None and (taken.cell.status, taken.origin) == ("pass", "r5/e")
    assert not cache.put(KEY, _cell("crash", segv), "r6/e")  # a measured entry is kept, as any is
    assert [p.name for p in (tmp_path / "cache" / "ab").iterdir()] == [KEY]  # nothing left aside


@pytest.mark.parametrize(
    "message",
    [
        "worker did not start within 600 s",
        "worker killed by SIGKILL before running any scenario",
        "worker exited with status 1 before this scenario started",
    ],
)
def test_a_crash_outside_the_cells_own_scenario_is_never_stored(tmp_path, message):
    """A worker that never started, or died between scenarios, says nothing of the cell: measured again each time."""
    cache = CellCache(tmp_path / "cache")
    assert not cache.put(KEY, _cell("crash", message), "r1/e") and not cache.put(KEY, _cell("crash", message), "r2/e")
    assert cache.get(KEY, "a.cell") is None and not (tmp_path / "cache" / "ab").exists()


def test_a_pending_crash_is_missed_by_a_reader_that_does_not_know_the_rule(tmp_path):
    """An older harness sharing the cache reads ``origin`` and no crash count: a pending crash has no ``origin``."""
    cache = CellCache(tmp_path / "cache")
    assert cache.put(KEY, _cell("crash", "worker killed by SIGABRT while running this scenario"), "r1/e")
    stored = json.loads((tmp_path / "cache" / "ab" / KEY / "cell.json").read_text())
    assert stored["crashes"] == 1 and "origin" not in stored


def test_a_crash_entry_holds_no_files_so_a_reader_racing_its_replacement_takes_none(tmp_path):
    """Only a crash entry is ever replaced. A reader that read its ``cell.json`` and then looked for files while a
    passing entry took its place would pair the crash with the new entry's values: a crash carries none."""
    cache, values, artifacts = CellCache(tmp_path / "cache"), tmp_path / "v.npz", tmp_path / "artifacts"
    values.write_bytes(b"partial values a dying worker left")
    artifacts.mkdir()
    (artifacts / "model.keras").write_bytes(b"half a model")
    crash = _cell("crash", "worker killed by SIGSEGV while running this scenario")
    for run in ("r1/e", "r2/e"):
        assert cache.put(KEY, crash, run, values, artifacts)
    entry = tmp_path / "cache" / "ab" / KEY
    assert sorted(p.name for p in entry.iterdir()) == ["cell.json"]
    (entry / "values.npz").write_bytes(b"a replacement's values, landed between the two reads")
    taken = cache.get(KEY, "a.cell")
    assert taken is not None and taken.cell.status == "crash" and (taken.values, taken.artifacts) == (None, None)


def test_a_pending_crash_is_replaced_by_what_is_measured_next(tmp_path):
    cache = CellCache(tmp_path / "cache")
    assert cache.put(KEY, _cell("crash", "worker killed by SIGKILL while running this scenario"), "r1/e")
    assert cache.put(KEY, _cell("fail", "assert 1 == 2"), "r2/e")  # the crash went: what was measured is stored
    taken = cache.get(KEY, "a.cell")
    assert taken is not None and taken.cell.status == "fail"


def test_an_interrupted_run_resumes_from_the_cache_in_a_new_run(tmp_path, fake_env):
    """The cells an interrupted run finished were stored as they finished; the next run takes them."""
    cache = CellCache(tmp_path / "cache")
    _pipeline(tmp_path, "run1", cache).run(selection=["fault.a_*"])  # as far as the interrupted run got
    doc = _pipeline(tmp_path, "run2", cache).run()
    assert {c.id: bool(c.reused_from) for c in doc.scenarios} == {PASSING[0]: True, PASSING[1]: False}


@pytest.mark.parametrize("damage", ["garbage", "other-id", "symlink"])
def test_a_damaged_entry_is_a_miss_not_an_error(tmp_path, fake_env, damage):
    cache = CellCache(tmp_path / "cache")
    first = _pipeline(tmp_path, "run1", cache).run()
    key = first.scenarios[0].cache_key
    entry = tmp_path / "cache" / key[:2] / key
    if damage == "garbage":
        (entry / "cell.json").write_bytes(b"\xff{not json")
    elif damage == "other-id":
        other = first.scenarios[1].model_copy(update={"cache_key": key}).model_dump(mode="json")
        (entry / "cell.json").write_text(json.dumps({"cell": other, "origin": "x/y"}))
    else:
        (tmp_path / "secret").write_text("outside")
        (entry / "link").symlink_to(tmp_path / "secret")
    assert cache.get(key, first.scenarios[0].id) is None
    second = _pipeline(tmp_path, "run2", cache).run()
    assert [bool(c.reused_from) for c in second.scenarios] == [False, True]


def test_keys_that_are_not_hex_digests_never_become_paths(tmp_path):
    with pytest.raises(ValueError, match="not a cache key"):
        CellCache(tmp_path).get("../" * 21 + "x", "a.x")


def test_a_selected_rerun_measures_its_cells_again(tmp_path, fake_env):
    """A verdict's reproduce command (-k ...) must reproduce, not hand back the stored cell."""
    cache = CellCache(tmp_path / "cache")
    _pipeline(tmp_path, "run1", cache).run()
    again = _pipeline(tmp_path, "run2", cache).run(selection=["fault.a_*"])
    assert again.timings.worker_starts == 1 and again.timings.cells_reused == 0
    assert [(c.id, c.reused_from) for c in again.scenarios] == [("fault.a_first_passes", "")]
