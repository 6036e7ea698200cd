"""The nightly workflow simulated locally on a small real matrix: list the environments as the first job does,
run each environment and then each relay consumer as a separate process into its own folder (as separate CI jobs
would), merge, report; the merged result must equal a single-process run of the same matrix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import results

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "ci-matrix.yaml"
pytestmark = pytest.mark.integration


def run(*args: str, results_dir: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPAT_MATRIX": str(MATRIX), "COMPAT_RESULTS_DIR": str(results_dir), "COMPAT_RUN_ID": "ci"}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == code, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def nox(*args: str, results_dir: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    return run("-m", "nox", "-f", str(ROOT / "noxfile.py"), *args, results_dir=results_dir, code=code)


def summary(docs: dict[str, results.EnvironmentResult]) -> dict:
    return {
        name: {
            "cells": [(c.id, c.status, sorted((r.name, r.sha256) for r in c.records)) for c in doc.scenarios],
            "relay": sorted((r.producer, r.family, r.format, r.model, r.outcome) for r in doc.relay),
        }
        for name, doc in docs.items()
    }


def test_sharded_run_merges_into_what_a_single_run_gives(tmp_path):
    # job 1: the job matrix from nox -l --json
    listed = json.loads(nox("-l", "--json", results_dir=tmp_path).stdout)
    environments = [s["session"] for s in listed if "env" in s["tags"]]
    assert environments == ["torch2.5", "torch2.13"]
    # one job per environment, each with its own results folder
    for env in environments:
        nox("-s", env, results_dir=tmp_path / f"results-{env}")
    shards = [tmp_path / f"results-{env}" / "ci" for env in environments]
    # relay jobs: each downloads every producer, merges, consumes, uploads its own document
    for env in environments:
        relay_dir = tmp_path / f"relay-job-{env}"
        run("-m", "harness", "merge", "--into", str(relay_dir / "ci"), *map(str, shards), results_dir=relay_dir)
        nox("-s", f"relay-{env}", "--no-dependencies", results_dir=relay_dir)
        upload = tmp_path / f"relay-{env}"
        upload.mkdir()
        shutil.copy(relay_dir / "ci" / f"{env}.json", upload / f"{env}.json")
    # the final job: merge everything, report
    final = tmp_path / "final"
    uploads = [str(tmp_path / f"relay-{env}") for env in environments]
    run("-m", "harness", "merge", "--into", str(final / "ci"), *map(str, shards), *uploads, results_dir=final)
    nox("-s", "report", "--", "--gate", "incomplete", results_dir=final)  # CI gates on gonogo's status instead
    gate = run("-m", "harness", "gonogo", "--matrix", str(MATRIX), "--run", "ci", results_dir=final, code=1)
    assert "NO-GO" in gate.stdout  # torch2.5 -> torch2.13: torch 2.6 changed torch.load's weights_only default
    merged = results.load_run(final / "ci")
    # the same matrix on one machine, one nox invocation: it fails on that NO-GO, like the gate
    single_dir = tmp_path / "single"
    nox(results_dir=single_dir, code=1)
    single = results.load_run(single_dir / "ci")
    assert summary(merged) == summary(single)
    assert sum(len(d.relay) for d in merged.values()) > 10
    assert (final / "ci" / "report.html").exists() and (final / "ci" / "junit.xml").exists()
