"""The torch relay zoo for real: torch 2.5 and 2.13 (each with the safetensors of its era) save every zoo model in
every format and load each other's, through nox. Asserts the grid from the produced JSON, and that a weight changed
in a saved file (with the manifest's hashes made to match) is caught as drift by a real consumer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import results
from scenarios.relay import file_hashes

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "torch-zoo-matrix.yaml"
ENVS = ("torch2.5", "torch2.13")
ZOO = ("recurrent", "convolutional", "attention")
CLASSES = {"recurrent": "RecurrentNet", "convolutional": "ConvNet", "attention": "AttentionNet"}
ZOO_FORMATS = ("state_dict", "safetensors", "training_checkpoint", "pickle_default_load", "torchscript_trace",
               "torch_export")  # fmt: skip
# A bias added to each model's last layer: it moves the first output by exactly this much, whatever the input.
NUDGE = 0.25
OUTPUT_BIAS = {
    "tinynet": "post.shift",
    "recurrent": "head.bias",
    "convolutional": "head.bias",
    "attention": "head.bias",
}
pytestmark = pytest.mark.integration


def _nox(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    env = {**os.environ, "COMPAT_MATRIX": str(MATRIX), "COMPAT_RESULTS_DIR": str(out), "COMPAT_RUN_ID": "z"}
    proc = _nox(env)
    # every session succeeds but the report: torch 2.6 made weights_only=True the default (a NO-GO path)
    failed = re.findall(r"\* (\S+): failed", proc.stderr)
    assert failed == ["report"], proc.stdout[-3000:] + proc.stderr[-3000:]
    run = results.load_run(out / "z")
    rows = {(r.producer, r.consumer, r.model, r.format): r for doc in run.values() for r in doc.relay}
    return out / "z", rows


def test_every_zoo_model_is_in_the_grid_per_format_both_directions(zoo_run):
    _, rows = zoo_run
    for producer in ENVS:
        for consumer in ENVS:
            for model in ZOO:
                missing = [f for f in ZOO_FORMATS if (producer, consumer, model, f) not in rows]
                assert not missing, (producer, consumer, model, missing)
            assert (producer, consumer, "tinynet", "safetensors") in rows
            assert (producer, consumer, "tinynet", "training_checkpoint") in rows


@pytest.mark.parametrize("version", ENVS)
def test_same_version_loads_reproduce_exactly(zoo_run, version):
    _, rows = zoo_run
    for model in ZOO:
        for fmt in ("state_dict", "safetensors", "training_checkpoint", "torchscript_trace", "torch_export"):
            row = rows[(version, version, model, fmt)]
            assert row.outcome == "loaded" and row.weights == "same", (model, fmt, row)
            if (model, fmt) == ("attention", "torch_export"):
                # the exported program's attention rounds differently from the eager module's, in both versions
                assert row.max_abs_error < 1e-6, row
            else:
                assert row.max_abs_error == 0.0, (model, fmt, row)


def test_weights_only_formats_cross_both_ways_with_training_mode_and_layout(zoo_run):
    _, rows = zoo_run
    for producer, consumer in (("torch2.5", "torch2.13"), ("torch2.13", "torch2.5")):
        for model in ZOO:
            for fmt in ("state_dict", "safetensors", "torchscript_trace"):
                row = rows[(producer, consumer, model, fmt)]
                assert row.outcome == "loaded" and row.max_abs_error == 0.0 and row.weights == "same", row
            # training mode (BatchNorm on the batch's statistics) is compared where the module is rebuilt
            assert rows[(producer, consumer, model, "safetensors")].training_max_abs_error == 0.0


def test_training_checkpoint_with_scheduler_resumes_across_versions(zoo_run):
    _, rows = zoo_run
    for producer in ENVS:
        for consumer in ENVS:
            for model in (*ZOO, "tinynet"):
                row = rows[(producer, consumer, model, "training_checkpoint")]
                # the plain torch.load(path) reads model, Adam and StepLR state both ways; one more step agrees
                assert row.outcome == "loaded" and row.how == "loaded", row
                assert row.optimizer == "kept", row
                if producer != consumer and model == "convolutional":
                    # measured: torch 2.5 stepping from torch 2.13's Conv/BatchNorm state lands 4.9e-6 away
                    assert row.continuation_max_abs_error < 1e-4, row
                else:
                    assert row.continuation_max_abs_error == 0.0, row


def test_torch_2_13_plain_load_refuses_a_zoo_pickle_torch_2_5_saved(zoo_run):
    _, rows = zoo_run
    for model in ZOO:
        assert rows[("torch2.5", "torch2.5", model, "pickle_default_load")].outcome == "loaded"
        row = rows[("torch2.5", "torch2.13", model, "pickle_default_load")]
        assert row.outcome == "fallback-only" and row.error_class == "UnpicklingError", row
        assert f"scenarios._torch_zoo.{CLASSES[model]} was not an allowed global" in row.message, row.message
        assert "weights_only" in row.message and row.unsafe and row.sandboxed


def test_an_exported_program_does_not_cross_versions_either_way(zoo_run):
    _, rows = zoo_run
    for model in (*ZOO, "tinynet"):
        forward = rows[("torch2.5", "torch2.13", model, "torch_export")]
        assert forward.outcome == "load-error" and forward.error_class == "RuntimeError", forward
        assert "schema version" in forward.message
        back = rows[("torch2.13", "torch2.5", model, "torch_export")]
        assert back.outcome == "load-error" and back.error_class == "KeyError", back  # no 'version' record
        assert forward.unsafe and forward.sandboxed


# ------------------------------------------------------------------------------------ a changed weight is caught

_NUDGE_SCRIPT = """
import sys, torch
from safetensors.torch import load_file, save_file
path, key, nudge = sys.argv[1], sys.argv[2], float(sys.argv[3])
if path.endswith(".safetensors"):
    tensors = load_file(path)
    tensors[key][0] += nudge
    save_file(tensors, path)
else:
    state = torch.load(path, weights_only=True)
    state[key][0] += nudge
    torch.save(state, path)
"""


@pytest.fixture(scope="module")
def tampered(zoo_run, tmp_path_factory):
    """torch2.5's weights files with one output bias moved, hashes rewritten, consumed again by torch2.13."""
    run_dir, _ = zoo_run
    out = tmp_path_factory.mktemp("tampered")
    shutil.copytree(run_dir, out / "z")
    producer = out / "z" / "artifacts" / "torch2.5"
    python = ROOT / ".nox" / "torch2-5" / "bin" / "python"  # the producer's own torch writes the file again
    for model, key in OUTPUT_BIAS.items():
        for name in ("state_dict/model.pt", "safetensors/model.safetensors"):
            path = producer / "torch" / model / name
            subprocess.run([str(python), "-c", _NUDGE_SCRIPT, str(path), key, str(NUDGE)], check=True)
    manifest_path = producer / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["artifacts"]:  # the integrity check passes: only the comparison can catch it
        entry["files"] = file_hashes(producer / entry["path"])
    manifest_path.write_text(json.dumps(manifest))
    env = {**os.environ, "COMPAT_MATRIX": str(MATRIX), "COMPAT_RESULTS_DIR": str(out), "COMPAT_RUN_ID": "z",
           "COMPAT_NO_CACHE": "1"}  # fmt: skip
    proc = subprocess.run(["./cm", "-s", "relay-torch2.13", "--no-dependencies"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = results.read_result(out / "z" / "torch2.13.json")
    return {(r.producer, r.model, r.format): r for r in doc.relay}


@pytest.mark.parametrize("model", sorted(OUTPUT_BIAS))
def test_a_changed_weight_in_a_saved_file_is_drift(tampered, model):
    for fmt in ("state_dict", "safetensors"):
        row = tampered[("torch2.5", model, fmt)]
        assert row.outcome == "loaded-drifted", row
        assert abs(row.max_abs_error - NUDGE) < 1e-5, row  # the bias moves the first output by exactly the nudge
        assert row.weights == "same"  # the layout did not change: only the numbers
    untouched = tampered[("torch2.5", model, "training_checkpoint")]
    assert untouched.outcome == "loaded" and untouched.max_abs_error == 0.0
