"""Results documents: round trip, schema check on write, pydantic alone on read, schema versions, the sidecar npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import results, sidecar
from harness.errors import ResultsError
from harness.results import (
    DeclaredEnvironment,
    EnvironmentInfo,
    EnvironmentResult,
    RecordSummary,
    ScenarioResult,
)


def make_doc() -> EnvironmentResult:
    return EnvironmentResult(
        run_id="r1",
        harness_version="0.1.0",
        matrix_file="matrix.yaml",
        started_at="2026-11-21T00:00:00+00:00",
        environment=EnvironmentInfo(
            name="tf", declared=DeclaredEnvironment(python="3.11", packages={"tensorflow-cpu": "2.16.2"})
        ),
        scenarios=[
            ScenarioResult(
                id="layer_init.keras_dense",
                area="layer_init",
                status="pass",
                records=[RecordSummary(name="k", kind="array", sha256="ab", dtype="float32", shape=[2], in_npz=True)],
            ),
            ScenarioResult(id="layer_init.torch_linear", area="layer_init", status="skip", message="no torch"),
        ],
    )


def test_round_trip(tmp_path):
    doc = make_doc()
    path = tmp_path / "tf.json"
    results.write_result(path, doc)
    again = results.read_result(path)
    assert again == doc
    assert again.cell("layer_init.torch_linear").message == "no torch"
    assert json.loads(path.read_text())["schema_version"] == results.SCHEMA_VERSION


def test_invalid_document_is_refused_on_write(tmp_path):
    doc = make_doc()
    doc.scenarios[0].status = "exploded"  # pydantic does not re-validate assignments; the schema check must
    with pytest.raises(ResultsError, match=r"scenarios\.0\.status"):
        results.write_result(tmp_path / "tf.json", doc)
    assert not (tmp_path / "tf.json").exists()


def test_invalid_document_is_refused_on_read(tmp_path):
    data = make_doc().model_dump(mode="json")
    del data["environment"]["declared"]["packages"]
    path = tmp_path / "tf.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"environment\.declared"):
        results.read_result(path)


def test_unknown_schema_version_says_what_to_do(tmp_path):
    data = make_doc().model_dump(mode="json")
    data["schema_version"] = 99
    path = tmp_path / "tf.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"schema_version 99 is not one this compat-matrix reads .* re-run"):
        results.read_result(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(ResultsError, match="no such results file"):
        results.read_result(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ResultsError, match="not valid JSON"):
        results.read_result(tmp_path / "bad.json")
    with pytest.raises(ResultsError, match="no such results folder"):
        results.load_run(tmp_path / "nope")


def test_load_run_reads_every_environment(tmp_path):
    doc = make_doc()
    results.write_result(tmp_path / "tf.json", doc)
    other = doc.model_copy(deep=True)
    other.environment.name = "torch"
    results.write_result(tmp_path / "torch.json", other)
    assert sorted(results.load_run(tmp_path)) == ["tf", "torch"]


def test_merge_npz_accumulates_scenarios(tmp_path):
    target = tmp_path / "env.npz"
    for scenario_id, value in (("a.one", 1.0), ("a.two", 2.0)):
        source = tmp_path / f"{scenario_id}.npz"
        np.savez(source, w=np.full(3, value))
        sidecar.merge_npz(target, scenario_id, source)
    with np.load(target) as data:
        assert sorted(data.files) == ["a.one::w", "a.two::w"]
        assert data["a.two::w"].tolist() == [2.0, 2.0, 2.0]


def test_published_results_schema_is_current():
    published = json.loads(results.SCHEMA_PATH.read_text())
    assert published == json.loads(json.dumps(results.results_schema()))


def test_run_ids_sort_by_time():
    run_id = results.new_run_id()
    assert len(run_id) == 16 and run_id.endswith("Z") and Path(run_id).name == run_id


def test_version_1_documents_are_migrated_on_read(tmp_path):
    data = make_doc().model_dump(mode="json")
    data["schema_version"] = 1
    for key in ("relay", "relay_problems"):
        del data[key]
    del data["timings"]["relay_s"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    doc = results.read_result(path)
    assert doc.schema_version == results.SCHEMA_VERSION and doc.relay == []


def test_merge_refuses_a_symlink_in_a_shard(tmp_path):
    from harness.errors import ResultsError
    from harness.merge import merge_runs

    shard = tmp_path / "shard"
    (shard / "artifacts" / "env").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (shard / "artifacts" / "env" / "model.keras").symlink_to(secret)
    with pytest.raises(ResultsError, match="a symlink in a shard"):
        merge_runs(tmp_path / "into", [shard])
    assert not (tmp_path / "into" / "artifacts" / "env" / "model.keras").exists()


class _NoSchemaCheck:
    """Stands in for jsonschema's validator: any use of it is the test's failure."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("jsonschema was used")


def test_reading_uses_pydantic_alone_and_writing_still_checks_the_schema(tmp_path, monkeypatch):
    results.write_result(tmp_path / "tf.json", make_doc())
    import jsonschema

    monkeypatch.setattr(jsonschema, "Draft202012Validator", _NoSchemaCheck)
    assert results.read_result(tmp_path / "tf.json") == make_doc()
    assert sorted(results.load_run(tmp_path)) == ["tf"]
    with pytest.raises(AssertionError, match="jsonschema was used"):
        results.write_result(tmp_path / "again.json", make_doc())


def _corrupt(data: dict) -> bytes:
    data["scenarios"][0]["records"][0]["shape"] = ["two"]
    return json.dumps(data).encode()


CORRUPT = {
    "not-utf8": (b'{"schema_version": 3, "run_id": "\xff\xfe"}', "not UTF-8 (byte 33: invalid start byte)"),
    "bad-json": (b'{"schema_version": 3,\n "run_id": }', "not valid JSON (Expecting value at line 2)"),
    "too-deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to be a results document"),
    "not-an-object": (b"[1, 2]", "schema_version None is not one this compat-matrix reads (3)"),
    "future": (b'{"schema_version": 4}', "schema_version 4 is not one this compat-matrix reads (3)"),
    "wrong-type": (None, "scenarios.0.records.0.shape.0: Input should be a valid integer"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_corrupt_file_is_one_line_naming_the_file_and_the_problem(tmp_path, name):
    raw, said = CORRUPT[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(raw if raw is not None else _corrupt(make_doc().model_dump(mode="json")))
    with pytest.raises(ResultsError) as caught:
        results.read_result(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {said}") and "\n" not in message and "\x1b" not in message


def test_an_unknown_key_is_named_on_one_line(tmp_path):
    data = make_doc().model_dump(mode="json")
    data["scenarios"][1]["evil\nkey\x1b[31m"] = 1
    (tmp_path / "tf.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError) as caught:
        results.read_result(tmp_path / "tf.json")
    assert str(caught.value) == f"{tmp_path / 'tf.json'}: scenarios.1.evil key: Extra inputs are not permitted"


def test_load_run_names_each_bad_file_and_reads_every_other(tmp_path):
    results.write_result(tmp_path / "tf.json", make_doc())
    for name, (raw, _) in CORRUPT.items():
        if raw is not None:
            (tmp_path / f"{name}.json").write_bytes(raw)
    problems: dict[str, str] = {}
    assert sorted(results.load_run(tmp_path, problems)) == ["tf"]
    assert sorted(problems) == sorted(name for name, (raw, _) in CORRUPT.items() if raw is not None)
    assert all(line.startswith(str(tmp_path / f"{name}.json")) for name, line in problems.items())


def test_load_run_pauses_the_garbage_collector_and_always_restores_it(tmp_path, monkeypatch):
    import gc

    results.write_result(tmp_path / "tf.json", make_doc())
    (tmp_path / "z-bad.json").write_text("{")
    seen = []
    real = results.read_result
    monkeypatch.setattr(results, "read_result", lambda path: seen.append(gc.isenabled()) or real(path))
    assert gc.isenabled()
    with pytest.raises(ResultsError, match="not valid JSON"):
        results.load_run(tmp_path)  # without problems the bad file raises: the collector is on again all the same
    assert seen == [False, False] and gc.isenabled()
    gc.disable()
    try:
        results.load_run(tmp_path, {})
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_a_read_document_shares_one_fields_set_per_class_and_keeps_what_the_file_held(tmp_path):
    """Read cells share one ``model_fields_set`` per set of keys (memory), yet each still says exactly which fields
    the file gave it, and an assignment of a field it lacked changes only that cell's."""
    results.write_result(tmp_path / "tf.json", make_doc())
    data = make_doc().model_dump(mode="json")
    for cell in data["scenarios"]:
        del cell["traceback"]  # cells written without one of their fields (an older writer's, say)
    (tmp_path / "short.json").write_text(json.dumps(data))
    full, short = results.read_result(tmp_path / "tf.json"), results.read_result(tmp_path / "short.json")
    every = set(ScenarioResult.model_fields)
    shared = full.scenarios[0].model_fields_set
    assert shared is full.scenarios[1].model_fields_set and shared == every
    lacking = short.scenarios[0].model_fields_set
    assert lacking is short.scenarios[1].model_fields_set and lacking == every - {"traceback"}
    assert "traceback" not in short.scenarios[1].model_dump(exclude_unset=True)
    short.scenarios[0].traceback = "Traceback ..."  # copy on write: the other cell was still not given one
    assert short.scenarios[0].model_fields_set == every and short.scenarios[1].model_fields_set == every - {"traceback"}
    assert "traceback" in short.scenarios[0].model_dump(exclude_unset=True)
    assert "traceback" not in short.scenarios[1].model_dump(exclude_unset=True)
    full.scenarios[0].message = "changed"  # a field the shared set holds: no copy needed, nothing else changes
    assert full.scenarios[0].message == "changed" and full.scenarios[1].model_fields_set == every
    assert full.scenarios[1] == make_doc().scenarios[1]


def _twin(name: str, value: object, check_value: object) -> EnvironmentResult:
    doc = make_doc()
    doc.environment.name = name
    cell = doc.scenarios[0]
    cell.records.append(RecordSummary(name="cfg", kind="config", sha256="same-digest", value={"use_bias": value}))
    cell.checks = [results.CheckResult(name="n", ok=True, values={"n": check_value})]
    return doc


def test_load_run_holds_each_distinct_record_and_check_once_and_never_merges_what_differs(tmp_path):
    """Records and checks alike in every byte are one object across the run's documents (memory); ones equal only
    to Python (``True == 1``, ``0.0 == -0.0``), even under the same digest, stay apart, each as its file has it."""
    for name, value, check in (("a", True, 1), ("b", True, 1), ("c", 1, True), ("d", -0.0, 0.0), ("e", 0.0, -0.0)):
        results.write_result(tmp_path / f"{name}.json", _twin(name, value, check))
    docs = results.load_run(tmp_path)
    record = {name: doc.scenarios[0].records[1] for name, doc in docs.items()}
    check = {name: doc.scenarios[0].checks[0] for name, doc in docs.items()}
    assert record["a"] is record["b"] and check["a"] is check["b"]
    assert docs["a"].scenarios[0].records[0] is docs["e"].scenarios[0].records[0]  # the "k" array record: alike
    for other in "cde":
        assert record[other] is not record["a"] and check[other] is not check["a"]
    assert record["d"] is not record["e"] and check["d"] is not check["e"]
    assert type(record["c"].value["use_bias"]) is int and type(check["c"].values["n"]) is bool
    assert str(record["d"].value["use_bias"]) == "-0.0" and str(check["e"].values["n"]) == "-0.0"
    for name, doc in docs.items():
        assert doc == results.read_result(tmp_path / f"{name}.json")


def test_a_record_given_a_fields_set_of_its_own_is_never_shared(tmp_path):
    """A record assigned a field its shared set lacked has a set of its own (copy on write): left as it is."""
    results.write_result(tmp_path / "a.json", _twin("a", True, 1))
    data = _twin("b", True, 1).model_dump(mode="json")
    del data["scenarios"][0]["records"][1]["dtype"]
    (tmp_path / "b.json").write_text(json.dumps(data))
    first, second = results.read_result(tmp_path / "a.json"), results.read_result(tmp_path / "b.json")
    assert "dtype" not in second.scenarios[0].records[1].model_fields_set
    second.scenarios[0].records[1].dtype = None  # the same content and fields as a's now, in a set of its own
    assert second.scenarios[0].records[1].model_fields_set == first.scenarios[0].records[1].model_fields_set
    distinct = results._Distinct()
    distinct.document(first)
    distinct.document(second)
    assert second.scenarios[0].records[1] is not first.scenarios[0].records[1]
    assert second.scenarios[0].checks[0] is first.scenarios[0].checks[0]
