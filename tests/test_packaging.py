"""compat-matrix as an installed tool: one import name in site-packages, every package and data file shipped, and
``init`` -> ``run`` -> ``report`` -> ``gonogo`` working in an empty directory outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.starter import SCENARIO_FOLDER
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _packages_on_disk(folder: str) -> set[str]:
    return {
        ".".join(("compat_matrix._lib", *init.parent.relative_to(ROOT).parts))
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_every_package_of_the_checkout_is_shipped_under_the_one_name():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert _packages_on_disk("harness") | _packages_on_disk("scenarios") | {"compat_matrix"} == listed
    assert all(name.split(".")[0] == "compat_matrix" for name in listed)  # no generic top-level name


def test_the_data_files_the_code_opens_are_shipped():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["compat_matrix._lib.harness"]
    data = [p for p in (ROOT / "harness").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    unshipped = [p for p in data if not any(p.relative_to(ROOT / "harness").match(pat) for pat in patterns)]
    assert data and unshipped == []


def test_init_writes_a_starter_whose_pins_are_the_default_matrixs(tmp_path, capsys):  # offline: --no-model
    assert main(["init", "--no-model", "--dir", str(tmp_path)]) == 0
    assert "models" not in yaml.safe_load((tmp_path / "matrix.yaml").read_text())
    written = yaml.safe_load((tmp_path / "matrix.yaml").read_text())
    assert written["scenarios"]["paths"] == [SCENARIO_FOLDER] and (tmp_path / SCENARIO_FOLDER / "example.py").is_file()
    default = {e["name"]: e["packages"] for e in yaml.safe_load((ROOT / "matrix.yaml").read_text())["environments"]}
    # the same pins as environments the default run provisions: the starter's first run takes them from uv's cache
    assert all(default[e["name"]] == e["packages"] for e in written["environments"])
    capsys.readouterr()
    assert main(["list", "--json", "--matrix", str(tmp_path / "matrix.yaml")]) == 0
    assert "user.example_seeded_dense" in [s["id"] for s in json.loads(capsys.readouterr().out)["scenarios"]]


def test_init_keeps_what_exists_and_says_so(tmp_path, capsys):
    (tmp_path / "matrix.yaml").write_text("mine\n")
    assert main(["init", "--dir", str(tmp_path)]) == 2
    assert "already exists; nothing written" in capsys.readouterr().err
    assert (tmp_path / "matrix.yaml").read_text() == "mine\n" and not (tmp_path / SCENARIO_FOLDER).exists()


def _copy_of_the_checkout(target: Path) -> Path:
    """The sources a fresh clone has (no venvs, results or build output), so the build cannot touch the checkout."""
    ignore = shutil.ignore_patterns(".nox", ".git", "results", "build", "*.egg-info", "__pycache__", ".*cache*")
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200, check=False)


@pytest.mark.integration  # builds the wheel and provisions two real TensorFlow environments with uv
def test_the_installed_command_works_in_an_empty_directory(tmp_path):
    from harness.provision import uv_binary

    source = _copy_of_the_checkout(tmp_path / "source")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "COMPAT_STATE_DIR")}
    uv = uv_binary()
    assert _run([uv, "venv", "-q", "-p", "3.11", str(tmp_path / "tool")], tmp_path, env).returncode == 0
    installed = _run([uv, "pip", "install", "-q", "--python", str(tmp_path / "tool/bin/python"), str(source)],
                     tmp_path, env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    python, command = str(tmp_path / "tool/bin/python"), str(tmp_path / "tool/bin/compat-matrix")
    project = tmp_path / "project"
    project.mkdir()

    generic = _run([python, "-c", "import harness"], project, env)
    assert generic.returncode == 1 and "No module named 'harness'" in generic.stderr

    for step in (["init"], ["run"]):
        done = _run([command, *step], project, env)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    assert (project / ".compat-matrix" / "tf2-16-keras3" / "bin" / "python").exists()  # the user's folder
    (run_dir,) = (project / "results").iterdir()
    for name in ("tf2.16-keras3", "tf2.21-keras3"):
        doc = json.loads((run_dir / f"{name}.json").read_text())
        cells = {c["id"]: c["status"] for c in doc["scenarios"]}
        assert cells["user.example_seeded_dense"] == cells["user.model_example"] == "pass", name

    report = _run([command, "report"], project, env)
    assert report.returncode in (0, 1), report.stderr  # 1: a NO-GO path, which the report gates on
    assert "user.example_seeded_dense" in (run_dir / "report.md").read_text()
    gonogo = _run([command, "gonogo"], project, env)
    assert gonogo.returncode in (0, 1) and "tf2.16-keras3 → tf2.21-keras3" in gonogo.stdout, gonogo.stderr
    ledger = json.loads((run_dir / "ledger" / "tf2.16-keras3__tf2.21-keras3.json").read_text())
    compared = {(r["scenario"], r["record"]) for r in ledger["records"] if r["scenario"].startswith("user.")}
    # the example scenario's and the example model's records were compared across the path
    assert {("user.example_seeded_dense", "output"), ("user.model_example", "predictions")} <= compared
    assert ("user.model_example", "load") in compared and ("user.model_example", "compiled") in compared
