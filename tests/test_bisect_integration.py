"""``bisect`` for real: releases from PyPI in real venvs, on behaviours the scenarios catch between the default
matrix's torch2.5 and torch2.13 (``torch.load``'s ``weights_only`` default, the Dropout mask) and between Keras
releases with TensorFlow pinned (MultiHeadAttention's kernel initialization).

Each bisection runs over a few releases only (its good and bad ends chosen so that the behaviour differs between
them), as the command line a user types. Its answer is then checked against the behaviour itself, not against a
version written here: the scenario is run again at the last good and the first bad release, in environments the
test declares with explicit pins, and

* ``gonogo`` from last good to first bad is NO-GO on that scenario (the boundary is a real change),
* the last good release behaves like the good end, the first bad one does not (the verdict's own measure and
  judge on the documents),
* the scenario's own evidence moves across the boundary (the check or the record that the behaviour is about).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from packaging.utils import canonicalize_name

from harness import matrix as matrix_mod
from harness.bisect.report import BisectReport, read_report, report_file
from harness.drift import load_arrays
from harness.judge import judge
from harness.ledger import measure_path
from harness.results import EnvironmentResult, ScenarioResult, read_result
from harness.worker import scenario as scenario_mod

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "matrix.yaml"
TIMEOUT_S = 1800


def _harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harness", *args]
    return subprocess.run(
        command, cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True, timeout=TIMEOUT_S
    )


class Bisected:
    """One real bisection and the independent runs of its two sides."""

    def __init__(self, tmp: Path, venvs: Path, scenario: str, *args: str, keep: bool = True) -> None:
        self.tmp, self.scenario, self.venvs = tmp, scenario, venvs
        env = {**os.environ, "COMPAT_BISECT_VENVS": str(self.venvs)}
        flags = ["--keep"] if keep else []
        common = ["--matrix", str(MATRIX), "--results-dir", str(tmp / "results"), "--run-id", "b"]
        self.proc = _harness("bisect", *common, "-k", scenario, *args, *flags, env=env)
        assert self.proc.returncode == 0, self.proc.stdout[-4000:] + self.proc.stderr[-4000:]
        self.run_dir = tmp / "results" / "bisect" / "b"
        self.report: BisectReport = read_report(report_file(self.run_dir))

    def step_doc(self, release: str) -> EnvironmentResult:
        name = next(s.environment for s in self.report.steps if s.release == release)
        return read_result(self.run_dir / f"{name}.json")

    def check_search(self) -> None:
        """The log is a bisection: the gate, then at most log2 probes, good below the boundary and bad from it."""
        report = self.report
        assert report.outcome == "boundary" and report.undecided == [] and report.skipped == {}
        gate = [(s.role, s.verdict) for s in report.steps[:4]]
        assert gate == [("good", "good"), ("good-again", "good"), ("bad", "bad"), ("bad-again", "bad")]
        order = [report.good, *report.candidates, report.bad]
        assert order.index(report.first_bad) == order.index(report.last_good) + 1
        probes = [s for s in report.steps if s.role == "candidate"]
        assert len(probes) <= math.ceil(math.log2(len(report.candidates) + 1))
        for step in probes:
            expected = "bad" if order.index(step.release) >= order.index(report.first_bad) else "good"
            assert step.verdict == expected, step
        assert report.changes and any(d.scenario == self.scenario for d in report.differences)

    def run_sides(self) -> dict[str, EnvironmentResult]:
        """The scenario at the last good and the first bad release, declared with explicit pins, via ``run``."""
        registry = scenario_mod.discover()
        template = matrix_mod.load(MATRIX, registry).environments[self.report.template]
        sides = {"last-good": self.report.last_good, "first-bad": self.report.first_bad}
        environments = []
        for name, version in sides.items():
            packages = {k: v for k, v in template.packages.items() if canonicalize_name(k) != self.report.package}
            packages[self.report.package] = str(version)
            environments.append({"name": name, "packages": packages, "env": dict(template.env)})
        spec = {"scenarios": {"ids": [self.scenario]}, "environments": environments}
        self.check_matrix = self.tmp / "check.yaml"
        self.check_matrix.write_text(yaml.safe_dump(spec, sort_keys=False))
        docs = {}
        for name, version in sides.items():
            proc = _harness("run", *self._check_args(), "--env", name, "--run-id", "c", *self._venv(version))
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            docs[name] = read_result(self.tmp / "check" / "c" / f"{name}.json")
            resolved = docs[name].environment.resolved
            assert resolved is not None and resolved.packages[self.report.package].split("+")[0] == version
        return docs

    def _check_args(self) -> list[str]:
        return ["--matrix", str(self.check_matrix), "--results-dir", str(self.tmp / "check")]

    def _venv(self, version: str | None) -> list[str]:
        """The kept step venv of that release, re-synced to the declared pins if it did not hold them."""
        step = next(s.environment for s in self.report.steps if s.release == version)
        kept = self.venvs / matrix_mod.venv_slug(step)
        return ["--venv-dir", str(kept if kept.is_dir() else self.tmp / "check-venvs" / step)]

    def check_sides(self, docs: dict[str, EnvironmentResult]) -> None:
        """First bad differs from last good (NO-GO on the scenario); last good is the good end, first bad is not."""
        pair = ["--run", "c", "--baseline", "last-good", "--candidate", "first-bad"]
        gonogo = _harness("gonogo", *self._check_args(), *pair)
        assert gonogo.returncode == 1, gonogo.stdout[-3000:] + gonogo.stderr[-3000:]
        assert "NO-GO" in gonogo.stdout and self.scenario in gonogo.stdout
        good = self.step_doc(self.report.good)
        assert _changes(good, self.run_dir, docs["last-good"], self.tmp / "check" / "c", self.scenario) == []
        assert _changes(good, self.run_dir, docs["first-bad"], self.tmp / "check" / "c", self.scenario) != []

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp / "check-venvs", ignore_errors=True)


def _changes(base: EnvironmentResult, base_dir: Path, cand: EnvironmentResult, cand_dir: Path, sid: str) -> list[str]:
    """The verdict's blocking and fixed reasons on ``sid`` for ``base`` -> ``cand``, by its own measure and judge."""
    ledger = measure_path(base, cand, (load_arrays(base_dir, base), load_arrays(cand_dir, cand)), expected=[sid])
    verdict = judge(ledger)
    return [r.summary for r in verdict.reasons if r.severity in ("no-go", "fixed") and sid in r.scenarios]


def _cell(doc: EnvironmentResult, sid: str) -> ScenarioResult:
    found = doc.cell(sid)
    assert found is not None, (doc.environment.name, sid)
    return found


def _check(cell: ScenarioResult, name: str) -> bool:
    return next(c.ok for c in cell.checks if c.name == name)


@pytest.fixture(scope="module")
def venvs(tmp_path_factory):
    """The step venvs, shared by this module's bisections (the torch ones try the same releases in the same
    template, so the second finds them made), removed at its end: each torch venv is gigabytes of files."""
    root = tmp_path_factory.mktemp("bisect-venvs")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bisected(tmp_path, venvs):
    made: list[Bisected] = []

    def bisect(scenario: str, *args: str, keep: bool = True) -> Bisected:
        made.append(Bisected(tmp_path, venvs if keep else tmp_path / "venvs", scenario, *args, keep=keep))
        return made[-1]

    yield bisect
    for one in made:
        one.cleanup()


def test_torch_load_weights_only_default(bisected):
    """torch.load(path) of a full pickle: loads before the default became weights_only=True, refused from then."""
    sid = "save_load.torch_pickle_default_load"
    result = bisected(sid, "--package", "torch", "--good", "2.5.1", "--bad", "2.9.0")
    result.check_search()
    docs = result.run_sides()
    result.check_sides(docs)
    assert _check(_cell(docs["last-good"], sid), "loads_plain") is True
    assert _check(_cell(docs["first-bad"], sid), "loads_plain") is False


def test_torch_dropout_mask(bisected):
    """nn.functional.dropout under the same seed: the last good release draws the good end's mask bit for bit."""
    sid = "layer_init.torch_dropout"
    result = bisected(sid, "--package", "torch", "--good", "2.5.1", "--bad", "2.9.0")
    result.check_search()
    docs = result.run_sides()
    result.check_sides(docs)
    masks = {}
    for name, (doc, folder) in {
        "good": (result.step_doc(result.report.good), result.run_dir),
        "last-good": (docs["last-good"], result.tmp / "check" / "c"),
        "first-bad": (docs["first-bad"], result.tmp / "check" / "c"),
    }.items():
        masks[name] = np.asarray(load_arrays(folder, doc)[f"{sid}::mask"])
        assert _check(_cell(doc, sid), "keep_rate") is True  # still dropout at p=0.5: another mask, not a bug
    assert np.array_equal(masks["good"], masks["last-good"])
    assert not np.array_equal(masks["last-good"], masks["first-bad"])


def test_keras_multi_head_attention_init_with_tensorflow_pinned(bisected):
    """Keras releases on TensorFlow 2.16: MultiHeadAttention's kernels drawn under one seed move at one release.

    Without --keep: the step venvs are gone afterwards and the sides are provisioned again from uv's cache.
    """
    sid = "layer_init.keras_multi_head_attention"
    args = ("--package", "keras", "--good", "3.13.2", "--bad", "3.15.1", "--env", "tf2.16-keras3")
    result = bisected(sid, *args, keep=False)
    result.check_search()
    assert result.report.removed_venvs and not any(Path(p).exists() for p in result.report.removed_venvs)
    assert not result.venvs.exists() or not any(result.venvs.iterdir())
    docs = result.run_sides()
    result.check_sides(docs)
    arrays = {n: load_arrays(result.tmp / "check" / "c", d) for n, d in docs.items()}
    kernel = f"{sid}::query_kernel"
    assert not np.allclose(arrays["last-good"][kernel], arrays["first-bad"][kernel], rtol=1.3e-6, atol=1e-5)
