"""``bisect`` offline: the search, the flaky gate, the judgement of one step, the release listing, the step
environments, usage errors and the command's whole flow with a fake ``measure`` (no environment provisioned).

Expected answers come from the test's own set-up (a boundary planted at a known index, documents written to differ
in a known way), never from the code's output. The real bisections are in ``test_bisect_integration.py``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from packaging.version import Version

from harness.bisect.decide import Judgement, Measured, compare, gate, search
from harness.bisect.releases import between, index_sources, list_releases
from harness.bisect.report import read_report, report_file
from harness.bisect.steps import Steps, step_name, with_release
from harness.cli import main
from harness.drift import load_arrays
from harness.errors import HarnessError
from harness.matrix import Environment
from harness.provision import Provisioned
from harness.results import InstallOptions, load_run
from harness.verdicts import Policy
from harness.worker import scenario as scenario_mod
from tests.conftest import RESOURCES
from tests.factories import cell, env_doc

SID = "fault.a_first_passes"
POLICY = Policy(expected=(SID,))
BASE = np.arange(6, dtype=np.float32)
INDEX_VARS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
              "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS")  # fmt: skip


@pytest.fixture(autouse=True)
def _no_machine_indexes(monkeypatch):
    """The listing reads only what a test gives it, never this machine's pip or uv variables."""
    for var in INDEX_VARS:
        monkeypatch.delenv(var, raising=False)


def measured(run_dir: Path, name: str, *cells, **kwargs) -> Measured:
    doc = env_doc(run_dir, name, list(cells), **kwargs)
    return Measured(doc, load_arrays(run_dir, doc))


# ------------------------------------------------------------------------------------------------ the search


def planted(boundary: int, calls: list[int]):
    """A probe whose first bad candidate is ``boundary`` (everything from there on differs)."""

    def probe(index: int) -> Judgement:
        calls.append(index)
        return Judgement("bad" if index >= boundary else "good", "planted")

    return probe


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 10, 25])
def test_the_search_finds_every_planted_boundary_in_log2_probes(count):
    for boundary in range(count + 1):  # count: no candidate is bad, the bad release itself is the first bad one
        calls: list[int] = []
        found = search(count, planted(boundary, calls))
        assert (found.last_good, found.first_bad) == (boundary - 1, boundary)
        assert len(calls) == len(set(calls)) <= math.ceil(math.log2(count + 1))
        assert found.skipped == {} and found.undecided() == []


def test_skipped_candidates_are_probed_around_and_reported_as_undecided():
    calls: list[int] = []

    def probe(index: int) -> Judgement:
        calls.append(index)
        if index in (3, 4):
            return Judgement("skip", f"cannot be installed: {index}")
        return Judgement("bad" if index >= 4 else "good", "")

    found = search(8, probe)
    assert (found.last_good, found.first_bad) == (2, 5)  # the change is in 3, 4 or 5: 3 and 4 said nothing
    assert found.undecided() == [3, 4] and found.skipped == {3: "cannot be installed: 3", 4: "cannot be installed: 4"}
    assert len(calls) == len(set(calls))


def test_when_every_candidate_is_skipped_the_ends_stay_and_all_are_undecided():
    found = search(3, lambda index: Judgement("skip", "no wheel"))
    assert (found.last_good, found.first_bad) == (-1, 3) and found.undecided() == [0, 1, 2]


# ------------------------------------------------------------------------------------------- one judgement


@pytest.fixture
def good(tmp_path) -> Measured:
    return measured(tmp_path, "good", cell(SID, values=BASE, rate=0.5, config={"a": 1}))


def test_identical_and_within_tolerance_are_good(tmp_path, good):
    same = measured(tmp_path, "same", cell(SID, values=BASE.copy(), rate=0.5, config={"a": 1}))
    assert compare(good, same, POLICY).verdict == "good"
    nudged = measured(tmp_path, "nudged", cell(SID, values=BASE + np.float32(1e-6), rate=0.5, config={"a": 1}))
    assert compare(good, nudged, POLICY).verdict == "good"  # float32's atol is 1e-5: within tolerance is good


def test_a_record_beyond_tolerance_is_bad_with_its_numbers(tmp_path, good):
    moved = measured(tmp_path, "moved", cell(SID, values=BASE + np.float32(0.25), rate=0.5, config={"a": 1}))
    judged = compare(good, moved, POLICY)
    assert judged.verdict == "bad" and judged.changes and "values" in judged.why
    (diff,) = judged.differences
    assert diff["record"] == "values" and diff["numbers"]["max_abs_error"] == pytest.approx(0.25)


@pytest.mark.parametrize("status", ["fail", "error", "crash", "timeout"])
def test_a_status_other_than_the_good_one_is_bad(tmp_path, good, status):
    broken = measured(tmp_path, "broken", cell(SID, status, "worker killed by SIGSEGV while running this scenario"))
    judged = compare(good, broken, POLICY)
    assert judged.verdict == "bad" and f"{SID}: pass -> {status}" in judged.why


def test_a_fix_is_a_change_too(tmp_path):
    failing = measured(tmp_path, "failing", cell(SID, "fail", "check failed"))
    passing = measured(tmp_path, "passing", cell(SID, values=BASE))
    assert compare(failing, passing, POLICY).verdict == "bad"


def test_releases_that_say_nothing_are_skipped(tmp_path, good):
    not_installed = measured(tmp_path, "nope", state="env-error")
    assert compare(good, not_installed, POLICY).why.startswith("cannot be installed: Because there is no version")
    never_started = measured(
        tmp_path, "dead", cell(SID, "crash", "worker exited with code 1 before running any scenario")
    )
    assert compare(good, never_started, POLICY).verdict == "skip"
    import_fails = Measured(good.doc, good.arrays, cannot_start="`import torch` fails: ImportError: libc10.so")
    assert compare(good, import_fails, POLICY).why == "cannot start: `import torch` fails: ImportError: libc10.so"
    skipped = measured(tmp_path, "skipped", cell(SID, "skip", "requires torch>=9; the environment has torch 2.5.1"))
    judged = compare(good, skipped, POLICY)
    assert judged.verdict == "skip" and "requires torch>=9" in judged.why


def test_record_names_limit_what_is_judged_and_make_any_change_of_them_count(tmp_path, good):
    other = measured(tmp_path, "other", cell(SID, values=BASE, rate=0.75, config={"a": 1, "b": 2}))
    assert compare(good, other, POLICY).verdict == "bad"  # rate moved
    assert compare(good, other, POLICY, ("values",)).verdict == "good"  # ... but only values is the question
    assert compare(good, other, POLICY, ("config",)).verdict == "bad"  # a key added: a warning, named: counts
    assert compare(good, other, POLICY, (f"{SID}::rat*",)).verdict == "bad"
    keys_only = measured(tmp_path, "keys", cell(SID, values=BASE, rate=0.5, config={"a": 1, "b": 2}))
    assert compare(good, keys_only, POLICY).verdict == "good"  # a key added is a warning, not a change


# ------------------------------------------------------------------------------------------------- the gate


def gate_with(tmp_path, docs: dict[str, Measured]):
    calls: list[str] = []

    def measure(role: str) -> Measured:
        calls.append(role)
        return docs[role]

    return gate(measure, POLICY), calls


def test_the_gate_goes_on_when_x_is_stable_and_y_differs_reliably(tmp_path, good):
    y = measured(tmp_path, "y", cell(SID, values=BASE + 1, rate=0.5, config={"a": 1}))
    answer, calls = gate_with(tmp_path, {"good": good, "good-again": good, "bad": y, "bad-again": y})
    assert answer.stop == "" and calls == ["good", "good-again", "bad", "bad-again"]
    assert [answer.judged[r].verdict for r in calls] == ["good", "good", "bad", "bad"]


def test_an_unstable_good_release_stops_before_y_is_measured(tmp_path, good):
    noisy = measured(tmp_path, "noisy", cell(SID, values=BASE + 3, rate=0.5, config={"a": 1}))
    answer, calls = gate_with(tmp_path, {"good": good, "good-again": noisy})
    assert answer.stop.startswith("the good release is not stable") and calls == ["good", "good-again"]


def test_a_good_release_that_cannot_be_installed_stops_at_once(tmp_path):
    broken = measured(tmp_path, "broken", state="env-error")
    answer, calls = gate_with(tmp_path, {"good": broken})
    assert answer.stop.startswith("the good release cannot be installed") and calls == ["good"]


def test_a_selection_the_good_release_skips_stops_at_once(tmp_path):
    skipped = measured(tmp_path, "skipped", cell(SID, "skip", "requires keras; the environment has no keras"))
    answer, calls = gate_with(tmp_path, {"good": skipped})
    assert calls == ["good"]
    assert (
        answer.stop == "the good release skips every selected scenario (requires keras; the environment has no keras)"
    )


@pytest.mark.parametrize(
    ("first", "second", "stop"),
    [
        (0.0, 0.0, "the bad release does not differ from the good one: nothing to bisect"),
        (1.0, 0.0, "the bad release differs from the good one in only one of its two runs (flaky)"),
        (1.0, 2.0, "the bad release is not stable: its two runs differ"),
    ],
)
def test_a_bad_release_like_x_or_flaky_stops_the_gate(tmp_path, good, first, second, stop):
    runs = {
        name: measured(tmp_path, name, cell(SID, values=BASE + np.float32(shift), rate=0.5, config={"a": 1}))
        for name, shift in (("y1", first), ("y2", second))
    }
    answer, _ = gate_with(tmp_path, {"good": good, "good-again": good, "bad": runs["y1"], "bad-again": runs["y2"]})
    assert answer.stop.startswith(stop)


def test_a_bad_release_that_cannot_be_installed_stops_the_gate(tmp_path, good):
    broken = measured(tmp_path, "broken", state="env-error")
    answer, calls = gate_with(tmp_path, {"good": good, "good-again": good, "bad": broken})
    assert answer.stop.startswith("the bad release cannot be installed") and calls == ["good", "good-again", "bad"]


def test_a_crash_at_both_runs_of_y_is_a_stable_difference(tmp_path, good):
    crash = measured(tmp_path, "crash", cell(SID, "crash", "worker killed by SIGSEGV while running this scenario"))
    answer, _ = gate_with(tmp_path, {"good": good, "good-again": good, "bad": crash, "bad-again": crash})
    assert answer.stop == ""  # a crash is the behaviour being bisected, not noise


# --------------------------------------------------------------------------------------------- the releases


def torch_env(**install) -> Environment:
    return Environment(name="t", python="3.11", packages={"torch": "2.5.1"}, install=InstallOptions(**install))


def page(*names: str, yanked: tuple[str, ...] = ()) -> str:
    files = [{"filename": n, "yanked": n in yanked} for n in names]
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "torch", "files": files})


TORCH_PAGE = page(
    "torch-2.5.1-cp311-cp311-manylinux1_x86_64.whl",
    "torch-2.5.1-cp312-cp312-manylinux1_x86_64.whl",
    "torch-2.6.0-cp311-cp311-manylinux1_x86_64.whl",
    "torch-2.7.0+cpu-cp311-cp311-linux_x86_64.whl",
    "torch-2.8.0rc1-cp311-cp311-manylinux_2_28_x86_64.whl",
    "torch-2.9.0.tar.gz",
    "torchvision-0.20.0-cp311-cp311-manylinux1_x86_64.whl",
    "notes.txt",
    "../torch-9.9.9-py3-none-any.whl",
    yanked=("torch-2.6.0-cp311-cp311-manylinux1_x86_64.whl",),
)


def test_releases_are_read_from_the_index_yanked_and_foreign_files_left_out():
    asked: list[tuple[str, str]] = []

    def fetch(url: str, accept: str) -> str:
        asked.append((url, accept))
        return TORCH_PAGE

    releases = list_releases("Torch", torch_env(), {}, fetch)
    assert releases == [Version(v) for v in ("2.5.1", "2.7.0", "2.8.0rc1", "2.9.0")]
    assert asked == [("https://pypi.org/simple/torch/", "application/vnd.pypi.simple.v1+json")]
    assert between(releases, Version("2.5.1"), Version("2.9.0"), pre=False) == [Version("2.7.0")]
    assert between(releases, Version("2.5.1"), Version("2.9.0"), pre=True) == [Version("2.7.0"), Version("2.8.0rc1")]


def test_find_links_folders_count_and_the_index_options_are_the_provisionings(tmp_path):
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    pages: list[str] = []
    env = torch_env(index_url="https://mirror.example/simple", find_links=[str(tmp_path)])
    environ = {"PIP_INDEX_URL": "https://ignored.example/simple", "UV_INDEX": "pytorch=https://extra.example/simple"}
    assert index_sources(env, environ) == (
        ["https://extra.example/simple", "https://mirror.example/simple"],
        [str(tmp_path)],
    )
    releases = list_releases("torch", env, environ, lambda url, _: pages.append(url) or TORCH_PAGE)
    assert Version("2.13.0") in releases and pages[-1] == "https://mirror.example/simple/torch/"
    assert index_sources(torch_env(), {"PIP_FIND_LINKS": "/a /b"}) == (["https://pypi.org/simple"], ["/a", "/b"])


def test_an_index_page_that_is_not_pep_691_is_refused_naming_the_page():
    with pytest.raises(
        HarnessError, match=re.escape("cannot list its releases on https://pypi.org/simple/torch/: not a PEP")
    ):
        list_releases("torch", torch_env(), {}, lambda url, _: json.dumps(["torch-2.5.1.tar.gz"]))
    with pytest.raises(HarnessError, match=re.escape("cannot list its releases on https://pypi.org/simple/torch/")):
        list_releases("torch", torch_env(), {}, lambda url, _: "<html>")


def test_one_index_failing_leaves_the_others():
    def fetch(url: str, accept: str) -> str:
        if "down.example" in url:
            raise OSError("connection refused")
        return TORCH_PAGE

    env = torch_env(extra_index_urls=["https://down.example/simple"])
    assert Version("2.5.1") in list_releases("torch", env, {}, fetch)


# ---------------------------------------------------------------------------------------- step environments


def test_a_step_pins_the_package_under_the_templates_own_spelling():
    template = Environment(
        name="tf2.15-tfkeras",
        python="3.11",
        packages={"tensorflow-cpu": "2.15.1", "tf_keras": "2.15.0"},
        no_deps=("tf_keras",),
    )
    step = with_release(template, "tf-keras", Version("2.16.0"), "s")
    assert step.packages == {"tensorflow-cpu": "2.15.1", "tf_keras": "2.16.0"} and step.no_deps == ("tf_keras",)
    added = with_release(template, "NumPy", Version("1.26.4"), "s2")
    assert added.packages["numpy"] == "1.26.4" and template.packages == {
        "tensorflow-cpu": "2.15.1",
        "tf_keras": "2.15.0",
    }
    assert step_name("torch2.5", "torch", Version("2.6.0")) == "bisect-torch2.5-torch-2.6.0"
    with pytest.raises(HarnessError, match="not safe as a file name"):
        step_name("t" * 95, "torch", Version("2.6.0"))


def steps_for(tmp_path, keep: bool = False) -> Steps:
    from harness.matrix import Matrix
    from harness.matrix.model import Defaults, ScenarioSelection

    template = Environment(name="t", python="3.11", packages={"torch": "2.5.1"})
    matrix = Matrix(tmp_path / "m.yaml", {"t": template}, None, Defaults(startup_timeout=60), ScenarioSelection())
    registry = scenario_mod.discover(["fake_scenarios"])
    return Steps(matrix, template, "torch", Version("2.5.1"), registry, tmp_path / "run", tmp_path / "venvs",
                 None, "r", keep=keep)  # fmt: skip


def test_the_step_venvs_are_removed_afterwards_unless_kept(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(RESOURCES))
    for keep in (False, True):
        steps = steps_for(tmp_path, keep)
        steps.made = [tmp_path / "venvs" / "a", tmp_path / "venvs" / "b"]
        for venv in steps.made:
            (venv / "bin").mkdir(parents=True, exist_ok=True)
        assert steps.clean() == ([] if keep else steps.made)
        assert all(v.is_dir() == keep for v in steps.made)


def test_a_release_whose_frameworks_do_not_import_is_found_by_importing_them(tmp_path, monkeypatch):
    """The tool's own Python has no torch: the probe really runs ``import torch`` there and reports the error."""
    monkeypatch.syspath_prepend(str(RESOURCES))
    steps = steps_for(tmp_path)
    prov = Provisioned(python=Path(sys.executable), packages={"torch": "2.5.1"}, lock_text="", lock_sha256="0")

    class Pipeline:
        env = steps.template

        def provision(self) -> Provisioned:
            return prov

    problem = steps._import_problem(Pipeline(), ("fault.k_needs_torch",))  # type: ignore[arg-type]
    assert problem.startswith("`import torch` fails: ModuleNotFoundError: No module named 'torch'")
    assert steps._import_problem(Pipeline(), ("fault.a_first_passes",)) == ""  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ the command

MATRIX = """
scenarios:
  ids: [fault.a_first_passes, fault.z_last_passes]
environments:
  - name: lib1
    packages: {fakepkg: "1.0.0"}
  - name: lib1-again
    packages: {fakepkg: "1.0.0", other: "2.0.0"}
  - name: lib3
    packages: {fakepkg: "3.0.0"}
"""
RELEASES = ("0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.3.0rc1", "1.3.0", "1.4.0", "2.0.0", "3.0.0")


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``main`` on a matrix of its own, the fake scenarios and a fake index listing RELEASES of fakepkg."""
    monkeypatch.syspath_prepend(str(RESOURCES))
    (tmp_path / "matrix.yaml").write_text(MATRIX)
    listing = page(*(f"fakepkg-{v}-py3-none-any.whl" for v in RELEASES))
    monkeypatch.setattr("harness.bisect.releases._fetch", lambda url, accept: listing)
    monkeypatch.setenv("COMPAT_BISECT_VENVS", str(tmp_path / "venvs"))
    common = ["--matrix", str(tmp_path / "matrix.yaml"), "--scenario-packages", "fake_scenarios"]
    common += ["--results-dir", str(tmp_path / "results")]
    return lambda *args: main(["bisect", *common, *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--package", "fakepkg", "--good", "one", "--bad", "3.0.0", "-k", SID], "--good 'one': not a version"),
        (["--package", "fakepkg", "--good", "3.0.0", "--bad", "1.0.0", "-k", SID, "--env", "lib3"],
         "--good 3.0.0 is not older than --bad 1.0.0"),
        (["--package", "fakepkg", "--good", "1.0.0", "--bad", "2.5.0", "-k", SID, "--env", "lib1"],
         "--bad 2.5.0: no such release of fakepkg on the index (around it: 1.4.0, 2.0.0, 3.0.0)"),
        (["--package", "fakepkg", "--good", "1.1.0", "--bad", "3.0.0", "-k", SID],
         "pins fakepkg at 1.1.0 (it pins fakepkg in lib1 (1.0.0), lib1-again (1.0.0), lib3 (3.0.0)); give --env"),
        (["--package", "fakepkg", "--good", "1.0.0", "--bad", "3.0.0", "-k", SID],
         "lib1, lib1-again all pin fakepkg at 1.0.0"),
        (["--package", "fakepkg", "--good", "1.0.0", "--bad", "3.0.0", "--env", "lib1"], "give -k SCENARIO"),
        (["--package", "fakepkg", "--good", "1.0.0", "--bad", "3.0.0", "--env", "lib1", "-k", "nope.*"],
         "no selected scenario matches nope.*"),
        (["--package", "fakepkg", "--good", "1.0.0", "--bad", "3.0.0", "--env", "lib9", "-k", SID],
         "unknown environment 'lib9'"),
        (["--package", "fake;pkg", "--good", "1.0.0", "--bad", "3.0.0", "-k", SID], "not a distribution name"),
        (["--package", "fakepkg", "--good", "1.0.0", "--bad", "3.0.0", "--env", "lib1", "-k", SID,
          "--run-id", "../up"], "--run-id '../up': not safe as a folder name"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2_before_anything_runs(cli, capsys, monkeypatch, args, message):
    monkeypatch.setattr("harness.bisect.steps.Steps.measure", lambda *a, **k: pytest.fail("measured"))
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


ARGS = ("--package", "fakepkg", "--good", "1.0.0", "--bad", "3.0.0", "--env", "lib1", "-k", SID)


def fake_measure(first_bad: str, unusable: tuple[str, ...] = (), calls: list | None = None):
    """A ``Steps.measure`` writing a document per release: ``values`` move from ``first_bad`` on."""

    def measure(self: Steps, version: Version, fresh: bool = False) -> Measured:
        (calls if calls is not None else []).append((str(version), fresh))
        run_dir = self.run_dir / "repeat" if fresh else self.run_dir
        name = self.environment(version).name
        if str(version) in unusable:
            doc = env_doc(run_dir, name, [], state="env-error", run_id=self.run_id)
        else:
            shift = np.float32(1.0 if version >= Version(first_bad) else 0.0)
            doc = env_doc(
                run_dir, name, [cell(SID, values=BASE + shift), cell("fault.z_last_passes")], run_id=self.run_id
            )
        return Measured(doc, load_arrays(run_dir, doc), seconds=0.5)

    return measure


def test_a_bisection_finds_the_planted_boundary_and_writes_its_answer(cli, capsys, monkeypatch, tmp_path):
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr("harness.bisect.steps.Steps.measure", fake_measure("1.4.0", ("1.3.0",), calls))
    code = cli(*ARGS, "--run-id", "b1")
    out = capsys.readouterr().out
    assert code == 0, out
    report = read_report(report_file(tmp_path / "results" / "bisect" / "b1"))
    assert report.candidates == ["1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0"]  # no pre-release, only between
    assert (report.last_good, report.first_bad, report.outcome) == ("1.2.0", "1.4.0", "boundary")
    assert report.undecided == ["1.3.0"] and report.skipped["1.3.0"].startswith("cannot be installed")
    assert calls[:4] == [("1.0.0", False), ("1.0.0", True), ("3.0.0", False), ("3.0.0", True)]
    assert [s.role for s in report.steps][:4] == ["good", "good-again", "bad", "bad-again"]
    assert {s.release for s in report.steps if s.role == "candidate"} >= {"1.2.0", "1.3.0", "1.4.0"}
    assert [d.record for d in report.differences] == ["values"] and report.scenarios == [SID]
    assert "last good: 1.2.0    first bad: 1.4.0" in out and "1.3.0" in out
    assert set(load_run(tmp_path / "results" / "bisect" / "b1")) >= {"bisect-lib1-fakepkg-1.4.0"}  # no stray json


def test_a_gate_stop_is_exit_1_with_the_reason(cli, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("harness.bisect.steps.Steps.measure", fake_measure("9.0.0"))
    code = cli(*ARGS, "--run-id", "g")
    assert code == 1
    report = read_report(report_file(tmp_path / "results" / "bisect" / "g"))
    assert report.outcome == "gate-stopped" and report.first_bad is None
    assert report.gate == "the bad release does not differ from the good one: nothing to bisect"
    assert "stopped by the gate: the bad release does not differ" in capsys.readouterr().out
