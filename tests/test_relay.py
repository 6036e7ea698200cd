"""The relay's plumbing with fake artifacts: manifests, who consumes what, and how outcomes are classified."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.relay import Manifest, Planned, load_manifests, plan_cells, relay_results
from harness.results import RecordSummary, ScenarioResult
from scenarios import _relay_compare, _torch_relay
from scenarios import relay as relay_scenarios
from scenarios._loads import LoadAttempt


def write_manifest(root: Path, producer: str, artifacts: list[dict]) -> None:
    folder = root / producer
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"manifest_version": 1, "producer": producer, "versions": {"keras": "3.15.1"}, "artifacts": artifacts}
    (folder / "manifest.json").write_text(json.dumps(manifest))


KERAS = [
    {"family": "keras", "model": m, "format": f} for m in ("sequential", "functional") for f in ("keras", "export")
]
TORCH = [{"family": "torch", "model": "tinynet", "format": f} for f in ("state_dict", "pickle_unsafe_load")]


def test_manifests_are_read_and_bad_ones_reported(tmp_path):
    write_manifest(tmp_path, "tf", KERAS)
    write_manifest(tmp_path, "torch", TORCH)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    write_manifest(tmp_path, "liar", TORCH)
    data = json.loads((tmp_path / "liar" / "manifest.json").read_text())
    (tmp_path / "liar" / "manifest.json").write_text(json.dumps({**data, "producer": "someone-else"}))
    manifests, problems = load_manifests(tmp_path)
    assert sorted(manifests) == ["tf", "torch"]
    assert any("broken/manifest.json: unreadable manifest" in p for p in problems)
    assert any("names producer 'someone-else'" in p for p in problems)


def test_pairing_keras_consumer_without_tensorflow():
    manifests = {"tf": Manifest.model_validate({"manifest_version": 1, "producer": "tf", "artifacts": KERAS + TORCH})}
    cells = plan_cells({"keras": "3.15.1", "torch": "2.13.0"}, manifests)
    by_format = {(c.family, c.format): c for c in cells}
    assert by_format[("keras", "keras")].skip_reason is None  # .keras crosses backends
    assert "needs TensorFlow" in by_format[("keras", "export")].skip_reason
    assert by_format[("torch", "state_dict")].skip_reason is None
    assert by_format[("keras", "keras")].cell_id == "relay.consume[tf:keras:keras]"


def test_pairing_families_need_their_framework():
    manifests = {"p": Manifest.model_validate({"manifest_version": 1, "producer": "p", "artifacts": KERAS + TORCH})}
    assert {c.family for c in plan_cells({"torch": "2.5.1"}, manifests)} == {"torch"}
    assert {c.family for c in plan_cells({"keras": "2.15.0", "tensorflow": "2.15.1"}, manifests)} == {"keras"}
    assert plan_cells({"numpy": "2.0"}, manifests) == []


def _manifest() -> Manifest:
    return Manifest.model_validate({"manifest_version": 1, "producer": "tf", "artifacts": KERAS})


def test_results_from_records_and_from_a_crash():
    cell = Planned("tf", "keras", "keras")
    records = [
        RecordSummary(name="sequential", kind="config", sha256="x", value={
            "outcome": "loaded-drifted", "how": "loaded", "max_abs_error": 0.5, "max_rel_error": 0.1,
            "optimizer": "kept", "warnings": ["UserWarning: x"]}),
        RecordSummary(name="functional", kind="config", sha256="y", value={
            "outcome": "load-error", "error_class": "TypeError", "message": "TypeError: nope", "max_abs_error": "inf"}),
    ]  # fmt: skip
    ok = ScenarioResult(id=cell.cell_id, area="relay", status="pass", records=records)
    rows = {r.model: r for r in relay_results("c", cell, _manifest(), ok)}
    assert rows["sequential"].outcome == "loaded-drifted" and rows["sequential"].max_abs_error == 0.5
    assert rows["functional"].error_class == "TypeError" and rows["functional"].max_abs_error is None
    crashed = ScenarioResult(id=cell.cell_id, area="relay", status="crash", message="worker killed by SIGSEGV")
    rows = relay_results("c", cell, _manifest(), crashed)
    assert {r.outcome for r in rows} == {"load-error"} and rows[0].error_class == "WorkerCrash"
    assert "SIGSEGV" in rows[0].message
    skipped = relay_results("c", Planned("tf", "keras", "export", "needs TensorFlow"), _manifest(), None)
    assert [r.outcome for r in skipped] == ["skip", "skip"] and skipped[0].message == "needs TensorFlow"


def _artifact(root: Path, payload: bytes) -> dict:
    folder = root / "torch" / "tinynet" / "state_dict"
    folder.mkdir(parents=True)
    (folder / "model.npz").write_bytes(payload)
    return {
        "family": "torch", "model": "tinynet", "format": "state_dict", "path": "torch/tinynet/state_dict",
        "files": relay_scenarios.file_hashes(folder), "predictions": [[0.0]],
    }  # fmt: skip


def _npz_bytes(tmp_path: Path) -> bytes:
    np.savez(tmp_path / "w.npz", w=np.ones(64))
    return (tmp_path / "w.npz").read_bytes()


def test_hash_mismatch_is_refused_before_loading(tmp_path, monkeypatch):
    entry = _artifact(tmp_path / "a", _npz_bytes(tmp_path))
    (tmp_path / "a" / entry["path"] / "model.npz").write_bytes(b"tampered")
    monkeypatch.setattr(_torch_relay, "consume", lambda e, f: pytest.fail("must not load"))
    result = relay_scenarios.consume_entry(entry, tmp_path / "a")
    assert result["outcome"] == "load-error" and result["error_class"] == "IntegrityError"
    assert "sha256 mismatch ['model.npz']" in result["message"]


def test_missing_file_is_refused(tmp_path):
    entry = _artifact(tmp_path / "a", _npz_bytes(tmp_path))
    (tmp_path / "a" / entry["path"] / "model.npz").unlink()
    result = relay_scenarios.consume_entry(entry, tmp_path / "a")
    assert result["error_class"] == "IntegrityError" and "missing ['model.npz']" in result["message"]


def test_truncated_artifact_is_a_load_error_not_a_crash(tmp_path, monkeypatch):
    # The producer itself wrote a truncated file (so the hash matches): the loader's exception is the outcome.
    entry = _artifact(tmp_path / "a", _npz_bytes(tmp_path)[:100])

    def load_npz(entry: dict, folder: Path) -> dict:
        with np.load(folder / "model.npz") as data:
            return {"outcome": "loaded", "max_abs_error": float(data["w"].sum())}

    monkeypatch.setattr(_torch_relay, "consume", load_npz)
    result = relay_scenarios.consume_entry(entry, tmp_path / "a")
    assert result["outcome"] == "load-error" and result["error_class"] in ("BadZipFile", "EOFError", "ValueError")


def test_unsaved_artifact_is_a_skip(tmp_path):
    result = relay_scenarios.consume_entry({"save_error": "NotImplementedError: no h5 for subclassed"}, tmp_path)
    assert result == {
        "outcome": "skip",
        "message": "the producer could not save it: NotImplementedError: no h5 for subclassed",
    }


def _judged(got, entry, **extra):
    return _relay_compare.compared(LoadAttempt(None), np.asarray(got, dtype=np.float32), entry, **extra)


def test_predictions_within_and_beyond_tolerance():
    want = [[1.0, 2.0]]
    assert _judged(want, {"predictions": want})["outcome"] == "loaded"
    drifted = _judged([[1.01, 2.0]], {"predictions": want})
    assert drifted["outcome"] == "loaded-drifted"
    assert drifted["max_abs_error"] == pytest.approx(0.01, rel=1e-3)
    assert drifted["max_rel_error"] == pytest.approx(0.01, rel=1e-2)
    reshaped = _judged(np.ones((2, 2)), {"predictions": want})
    assert reshaped["outcome"] == "loaded-drifted" and reshaped["max_abs_error"] == float("inf")


def test_training_mode_predictions_drift_on_their_own():
    entry = {"predictions": [[1.0]], "training_predictions": [[0.5]]}
    same = _judged([[1.0]], entry, training=np.array([[0.5]], dtype=np.float32))
    assert same["outcome"] == "loaded" and same["training_max_abs_error"] == 0.0
    moved = _judged([[1.0]], entry, training=np.array([[0.75]], dtype=np.float32))
    assert moved["outcome"] == "loaded-drifted" and moved["training_max_abs_error"] == pytest.approx(0.25)


def test_weight_layout_renamed_is_recorded_but_a_changed_shape_drifts():
    want = [["dense/kernel:0", [4, 8], "float32"], ["dense/bias:0", [8], "float32"]]
    entry = {"predictions": [[1.0]], "weights": want}
    renamed = [["kernel", [4, 8], "float32"], ["dense/bias:0", [8], "float32"]]
    assert _judged([[1.0]], entry, layout=want)["weights"] == "same"
    result = _judged([[1.0]], entry, layout=renamed)
    assert (result["outcome"], result["weights"]) == ("loaded", "renamed (1 of 2)")
    transposed = [["kernel", [8, 4], "float32"], ["bias", [8], "float32"]]
    result = _judged([[1.0]], entry, layout=transposed)
    assert result["outcome"] == "loaded-drifted" and result["weights"].startswith("layout-changed: weight 0")
    assert _judged([[1.0]], entry, layout=want[:1])["weights"] == "layout-changed: 1 weights, the producer had 2"


def test_multi_output_predictions_compare_as_one_array():
    outputs = {"b": np.ones((2, 3)), "a": np.zeros((2, 2, 2))}
    flat = _relay_compare.flat_outputs(outputs)
    assert flat.shape == (2, 7) and flat[:, :4].sum() == 0 and flat[:, 4:].sum() == 6  # "a" first, flattened


@pytest.mark.parametrize("path", ["../../outside", "/etc", ""])
def test_an_artifact_path_leaving_the_producers_folder_is_refused(tmp_path, monkeypatch, path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.npz").write_bytes(_npz_bytes(tmp_path))
    entry = {"family": "torch", "model": "m", "format": "f", "path": path, "files": {}}
    monkeypatch.setattr(_torch_relay, "consume", lambda e, f: pytest.fail("must not load"))
    result = relay_scenarios.consume_entry(entry, tmp_path / "a" / "producer")
    assert result["error_class"] == "IntegrityError" and "leaves the producer's folder" in result["message"]


def test_a_symlinked_artifact_is_never_followed(tmp_path, monkeypatch):
    entry = _artifact(tmp_path / "a", _npz_bytes(tmp_path))
    planted = tmp_path / "planted.pkl"
    planted.write_bytes(b"payload")
    (tmp_path / "a" / entry["path"] / "extra.pkl").symlink_to(planted)
    monkeypatch.setattr(_torch_relay, "consume", lambda e, f: pytest.fail("must not load"))
    result = relay_scenarios.consume_entry(entry, tmp_path / "a")
    assert result["error_class"] == "IntegrityError" and "symlinks" in result["message"]
    folder_link = tmp_path / "a" / "linked"
    folder_link.symlink_to(tmp_path / "a" / entry["path"])
    result = relay_scenarios.consume_entry({**entry, "path": "linked"}, tmp_path / "a")
    assert result["error_class"] == "IntegrityError" and "leaves the producer's folder" in result["message"]


def test_a_symlinked_or_oddly_named_manifest_is_refused_not_read(tmp_path):
    good = tmp_path / "src" / "producer"
    good.mkdir(parents=True)
    (good / "manifest.json").write_text(json.dumps({"manifest_version": 1, "producer": "producer"}))
    (tmp_path / "src" / "alias").symlink_to(good)
    manifests, problems = load_manifests(tmp_path / "src")
    assert list(manifests) == ["producer"] and len(problems) == 1 and "alias" in problems[0]
