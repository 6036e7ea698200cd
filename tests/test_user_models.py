"""The user's saved models (``models:`` in matrix.yaml): resolved beside the matrix file, always selected, their bytes
in the cell's cache key; and, in real environments, a model saved by Keras 2 that Keras 3 cannot load is a NO-GO
naming the model and the error."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness import matrix
from harness.cli import main
from harness.errors import MatrixError
from harness.starter import EXAMPLE_MODEL, save_example_model
from harness.worker import scenario as scenario_mod
from harness.workspace import state_dir
from scenarios._user_models import sample_inputs

ENVIRONMENTS = """
environments:
  - name: tf2.15-keras2
    packages: {tensorflow-cpu: "2.15.1", keras: "2.15.0"}
  - name: tf2.16-keras3
    packages: {tensorflow-cpu: "2.16.2", keras: "3.3.3"}
"""
MODELS = """
models:
  - name: legacy
    path: models/example.keras
    inputs: {shape: [4, 8], seed: 0}
"""


def _write(folder: Path, text: str) -> Path:
    path = folder / "matrix.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _load(path: Path) -> matrix.Matrix:
    return matrix.load(path, scenario_mod.discover(("scenarios",)))


def test_a_model_runs_even_where_the_selection_names_other_scenarios(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "example.keras").write_bytes(b"zip")
    m = _load(_write(tmp_path, 'scenarios: {ids: ["layer_init.keras_dense"]}' + ENVIRONMENTS + MODELS))
    assert m.scenario_ids == ("layer_init.keras_dense", "user.model_legacy")
    (entry,) = m.models
    assert entry["framework"] == "keras" and entry["path"] == str((tmp_path / "models" / "example.keras").resolve())


def test_a_missing_model_file_is_an_error_naming_the_line_and_key(tmp_path):
    with pytest.raises(MatrixError) as caught:
        _load(_write(tmp_path, ENVIRONMENTS + MODELS))
    assert "matrix.yaml:10: models[0].path" in str(caught.value) and "does not exist" in str(caught.value)


def test_a_resaved_model_changes_its_cells_fingerprint(tmp_path):
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "example.keras"
    model.write_bytes(b"first")
    before = _load(_write(tmp_path, ENVIRONMENTS + MODELS)).models[0]["digest"]
    model.write_bytes(b"second")
    assert _load(tmp_path / "matrix.yaml").models[0]["digest"] != before


def test_sample_inputs_are_a_seeded_draw_of_the_declared_shape(tmp_path):
    spec = {"shape": [4, 8], "seed": 3, "dtype": "float32"}
    first, again = sample_inputs(spec), sample_inputs(spec)
    assert first.shape == (4, 8) and first.dtype == np.float32 and np.array_equal(first, again)
    assert not np.array_equal(first, sample_inputs({**spec, "seed": 4}))
    np.savez(tmp_path / "x.npz", first=np.arange(3.0), second=np.zeros(2))
    assert sample_inputs(str(tmp_path / "x.npz")).tolist() == [0.0, 1.0, 2.0]  # the first array


@pytest.mark.integration  # provisions real TensorFlow 2.15 / Keras 2 and TensorFlow 2.16 / Keras 3 environments
def test_a_keras2_model_keras3_cannot_load_is_a_no_go_naming_it_and_the_error(tmp_path, capsys):
    text = 'scenarios: {ids: ["user.*"]}' + ENVIRONMENTS
    _write(tmp_path, text)
    save_example_model(tmp_path, state_dir())  # saved by Keras 2.15, the first environment
    assert (tmp_path / EXAMPLE_MODEL).is_file()
    path = _write(tmp_path, text + MODELS)
    results = str(tmp_path / "results")
    assert main(["run", "--matrix", str(path), "--results-dir", results]) == 0
    assert main(["gonogo", "--matrix", str(path), "--results-dir", results]) == 1
    (verdict_file,) = (tmp_path / "results").glob("*/gonogo/tf2.15-keras2__tf2.16-keras3.json")
    verdict = json.loads(verdict_file.read_text())
    assert verdict["verdict"] == "NO-GO"
    (reason,) = [r for r in verdict["reasons"] if r["kind"] == "call-broken"]
    assert reason["severity"] == "no-go" and reason["scenarios"] == ["user.model_legacy"]
    # Keras 3.3 cannot rebuild the Keras 2.15 optimizer's config (seen by hand: "Argument(s) not recognized:
    # {'jit_compile': False, 'is_legacy_optimizer': False}"); the plain call's error is what the verdict names
    assert "load_model(path)" in reason["summary"] and "ValueError" in reason["summary"]
    cells = {
        env: {
            c["id"]: c for c in json.loads(next((tmp_path / "results").glob(f"*/{env}.json")).read_text())["scenarios"]
        }
        for env in ("tf2.15-keras2", "tf2.16-keras3")
    }
    loads = {
        env: next(r["value"] for r in cell["user.model_legacy"]["records"] if r["name"] == "load")
        for env, cell in cells.items()
    }
    assert loads["tf2.15-keras2"] == {"load_model(path)": "loaded"}
    # the workaround that worked is a finding beside the plain call's error, never a rescue
    assert loads["tf2.16-keras3"]["load_model(path)"].startswith("ValueError: Argument(s) not recognized")
    assert loads["tf2.16-keras3"]["load_model(path, compile=False)"] == "loaded"
    # one root cause, one reason: what compile=False loaded has no compile state to compare (it was skipped), so
    # no second "compiled: optimizer 'Adam' -> 'none'" reason that fixing the load would make vanish
    compiled = {
        env: next(r for r in cell["user.model_legacy"]["records"] if r["name"] == "compiled")
        for env, cell in cells.items()
    }
    assert compiled["tf2.15-keras2"]["kind"] == "config" and compiled["tf2.15-keras2"]["value"]["optimizer"] == "Adam"
    assert compiled["tf2.16-keras3"]["kind"] == "info"
    assert "compile=False" in compiled["tf2.16-keras3"]["value"]["not measured"]
    blocking = [r for r in verdict["reasons"] if r["severity"] == "no-go" and "user.model_legacy" in r["scenarios"]]
    assert [r["kind"] for r in blocking] == ["call-broken"]
    capsys.readouterr()


TORCH = """
scenarios: {ids: ["user.*"]}
environments:
  - name: torch2.5
    packages: {torch: "2.5.1", safetensors: "0.4.5"}
  - name: torch2.13
    packages: {torch: "2.13.0", safetensors: "0.8.0"}
"""
SAVE_WHOLE_MODULE = (
    "import sys, torch; torch.manual_seed(0); "
    "torch.save(torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)), sys.argv[1])"
)


@pytest.mark.integration  # provisions real torch 2.5.1 and 2.13.0 environments (the default matrix's pins)
def test_a_whole_module_torch_refuses_by_default_is_a_no_go_and_the_workaround_a_finding(tmp_path):
    from harness.provision import provision

    path = _write(tmp_path, TORCH)
    env = matrix.load(path).environment("torch2.5")
    prov = provision(env, (state_dir() / env.venv_slug).resolve())
    (tmp_path / "models").mkdir()
    saved = subprocess.run(
        [str(prov.python), "-c", SAVE_WHOLE_MODULE, str(tmp_path / "models" / "whole.pt")],
        env=prov.worker_environ(env, []), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    path.write_text(TORCH + "models:\n  - {name: whole, path: models/whole.pt, inputs: {shape: [3, 8], seed: 1}}\n")
    results = str(tmp_path / "results")
    assert main(["run", "--matrix", str(path), "--results-dir", results]) == 0
    assert main(["gonogo", "--matrix", str(path), "--results-dir", results]) == 1
    run_dir = next((tmp_path / "results").iterdir())
    cells = {
        env: next(
            c for c in json.loads((run_dir / f"{env}.json").read_text())["scenarios"] if c["id"] == "user.model_whole"
        )
        for env in ("torch2.5", "torch2.13")
    }
    loads = {env: next(r["value"] for r in cell["records"] if r["name"] == "load") for env, cell in cells.items()}
    # torch 2.6 made weights_only=True the default of torch.load: a pickled nn.Module is refused (release notes)
    assert loads["torch2.5"] == {"torch.load(path)": "loaded"}
    assert "weights_only" in loads["torch2.13"]["torch.load(path)"]
    assert loads["torch2.13"]["torch.load(path, weights_only=False)"] == "loaded"
    predictions = {
        env: next(r["value"] for r in c["records"] if r["name"] == "predictions") for env, c in cells.items()
    }
    assert np.allclose(predictions["torch2.5"], predictions["torch2.13"], rtol=1e-5, atol=1e-6)  # same weights
    verdict = json.loads((run_dir / "gonogo" / "torch2.5__torch2.13.json").read_text())
    assert any(r["kind"] == "call-broken" and r["scenarios"] == ["user.model_whole"] for r in verdict["reasons"])
