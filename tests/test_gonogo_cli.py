"""``gonogo`` and ``report`` on crafted runs: upgrade paths, exit codes, not comparable, unknown runs, file names."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from harness.cli import main
from tests.factories import cell, env_doc

W = np.linspace(-1, 1, 16, dtype=np.float32)
MATRIX = """
scenarios:
  ids: [layer_init.keras_dense, layer_init.torch_linear]
environments:
  - name: tf2.15-keras2
    packages: {tensorflow-cpu: "2.15.1", keras: "2.15.0"}
  - name: tf2.16-keras3
    packages: {tensorflow-cpu: "2.16.2", keras: "3.3.3"}
  - name: tf2.21-keras3
    packages: {tensorflow-cpu: "2.21.0", keras: "3.15.1"}
  - name: torch2.13
    packages: {torch: "2.13.0"}
"""


@pytest.fixture
def run(tmp_path):
    """A run where tf2.16 drifts from tf2.15 and tf2.21 matches it; torch runs its own scenario."""
    (tmp_path / "matrix.yaml").write_text(textwrap.dedent(MATRIX))
    run_dir = tmp_path / "results" / "r1"
    skip_torch = cell("layer_init.torch_linear", "skip", "requires torch")
    env_doc(run_dir, "tf2.15-keras2", [cell("layer_init.keras_dense", w=W), skip_torch], run_id="r1")
    env_doc(run_dir, "tf2.16-keras3", [cell("layer_init.keras_dense", w=W + 1), skip_torch], run_id="r1")
    env_doc(run_dir, "tf2.21-keras3", [cell("layer_init.keras_dense", w=W), skip_torch], run_id="r1")
    keras_skip = cell("layer_init.keras_dense", "skip", "requires keras")
    env_doc(run_dir, "torch2.13", [keras_skip, cell("layer_init.torch_linear", w=W)], run_id="r1")
    return tmp_path


def gonogo(root, *args):
    common = ["--matrix", str(root / "matrix.yaml"), "--results-dir", str(root / "results")]
    return main(["gonogo", *common, *args])


def test_a_pair_exits_1_on_no_go_and_0_on_go(run):
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "tf2.16-keras3") == 1
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "tf2.21-keras3") == 0


def test_every_upgrade_path_gets_its_own_files_named_in_full(run):
    assert gonogo(run, "--run", "r1") == 1  # tf2.15 -> tf2.16 and tf2.16 -> tf2.21 drift
    gonogo_dir = run / "results" / "r1" / "gonogo"
    names = sorted(p.name for p in gonogo_dir.glob("*.json"))
    assert names == [
        "tf2.15-keras2__tf2.16-keras3.json",
        "tf2.15-keras2__tf2.21-keras3.json",
        "tf2.16-keras3__tf2.21-keras3.json",
    ]
    verdict = json.loads((gonogo_dir / "tf2.15-keras2__tf2.21-keras3.json").read_text())
    assert (verdict["baseline"], verdict["candidate"], verdict["verdict"]) == ("tf2.15-keras2", "tf2.21-keras3", "GO")
    ledger = json.loads((run / "results" / "r1" / verdict["ledger"]).read_text())
    assert ledger["baseline"]["name"] == "tf2.15-keras2" and ledger["candidate"]["name"] == "tf2.21-keras3"


def test_a_ledger_file_reads_back_as_what_was_measured(run):
    from harness.drift import load_arrays
    from harness.ledger import measure_path, read_ledger
    from harness.results import read_result

    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "tf2.21-keras3") == 0
    run_dir = run / "results" / "r1"
    path = run_dir / "ledger" / "tf2.15-keras2__tf2.21-keras3.json"
    written = json.loads(path.read_text())
    (entry,) = written["records"]
    assert entry["verdict"] == "identical" and entry["detail"] == "" and written["schema_version"] == 1
    docs = [read_result(run_dir / f"{name}.json") for name in ("tf2.15-keras2", "tf2.21-keras3")]
    measured = measure_path(*docs, (load_arrays(run_dir, docs[0]), load_arrays(run_dir, docs[1])))
    again = read_ledger(path)
    assert again.model_dump(exclude={"measured_at"}) == measured.model_dump(exclude={"measured_at"})


def test_a_torch_environment_against_a_tensorflow_one_is_not_comparable(run, capsys):
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.21-keras3", "--candidate", "torch2.13") == 2
    assert "not comparable" in capsys.readouterr().err


def test_an_unknown_run_is_refused_with_the_runs_there_are(run, capsys):
    assert gonogo(run, "--run", "nope", "--baseline", "tf2.15-keras2", "--candidate", "tf2.21-keras3") == 2
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "r1" in err


def test_missing_cells_make_the_verdict_incomplete(run):
    run_dir = run / "results" / "r1"
    env_doc(run_dir, "tf2.21-keras3", [cell("layer_init.keras_dense", w=W)], run_id="r1")  # torch cell gone
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "tf2.21-keras3") == 1
    verdict = json.loads((run_dir / "gonogo" / "tf2.15-keras2__tf2.21-keras3.json").read_text())
    assert verdict["verdict"] == "INCOMPLETE" and verdict["missing"] == {"tf2.21-keras3": ["layer_init.torch_linear"]}


def test_a_results_document_with_an_unsafe_name_never_becomes_a_path(run, capsys):
    """Names in results documents are untrusted: '../x' must not place a verdict outside the run folder."""
    run_dir = run / "results" / "r1"
    env_doc(run_dir, "tf2.21-keras3", [cell("layer_init.keras_dense", w=W)], run_id="r1")
    doc = json.loads((run_dir / "tf2.21-keras3.json").read_text())
    doc["environment"]["name"] = "../../escaped"
    (run_dir / "evil.json").write_text(json.dumps(doc))
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "../../escaped") == 2
    assert "not safe as a file name" in capsys.readouterr().err
    assert not list(run.rglob("*escaped*"))


def test_a_name_ending_in_a_newline_is_not_safe():
    from harness.paths import is_safe_name

    assert is_safe_name("tf2.21-keras3") and not is_safe_name("tf2.21-keras3\n") and not is_safe_name("a/../b")
    assert not is_safe_name("a__b")  # '__' joins the two names of a path's files: 'a__b'+'c' vs 'a'+'b__c'


def test_a_path_whose_side_never_arrived_is_incomplete_not_skipped(run):
    """A CI shard that did not upload: the paths through it must not quietly disappear from the verdicts."""
    (run / "results" / "r1" / "tf2.16-keras3.json").unlink()
    assert gonogo(run, "--run", "r1") == 1
    gonogo_dir = run / "results" / "r1" / "gonogo"
    verdict = json.loads((gonogo_dir / "tf2.15-keras2__tf2.16-keras3.json").read_text())
    assert verdict["verdict"] == "INCOMPLETE" and verdict["missing"] == {"tf2.16-keras3": ["(every cell)"]}
    assert json.loads((gonogo_dir / "tf2.15-keras2__tf2.21-keras3.json").read_text())["verdict"] == "GO"


def test_report_without_a_readable_matrix_writes_reports_but_exits_2(run, capsys):
    (run / "matrix.yaml").write_text("environments: [")
    common = ["--matrix", str(run / "matrix.yaml"), "--results-dir", str(run / "results"), "--run", "r1"]
    assert main(["report", *common]) == 2
    assert (run / "results" / "r1" / "report.md").exists() and "no verdicts" in capsys.readouterr().err


def test_a_corrupt_record_archive_is_a_one_line_error(run, capsys):
    (run / "results" / "r1" / "tf2.16-keras3.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "tf2.16-keras3") == 2
    err = capsys.readouterr().err
    assert "tf2.16-keras3.npz: not a readable record archive" in err and "Traceback" not in err


def test_report_renders_a_path_whose_side_never_arrived(run):
    (run / "results" / "r1" / "tf2.16-keras3.json").unlink()
    common = ["--matrix", str(run / "matrix.yaml"), "--results-dir", str(run / "results"), "--run", "r1"]
    assert main(["report", *common]) == 1
    markdown = (run / "results" / "r1" / "report.md").read_text()
    assert "| tf2.15-keras2 | tf2.16-keras3 | **INCOMPLETE** |" in markdown


def test_a_corrupt_results_file_is_named_and_every_other_environment_still_reported(run, capsys):
    run_dir = run / "results" / "r1"
    (run_dir / "tf2.16-keras3.json").write_bytes(b'{"schema_version": 3, "run_id": "\xff\xfe"}')
    common = ["--matrix", str(run / "matrix.yaml"), "--results-dir", str(run / "results"), "--run", "r1"]
    assert main(["report", *common]) == 1
    markdown = (run_dir / "report.md").read_text()
    assert "tf2.16-keras3.json: not UTF-8 (byte" in markdown  # said first, in the report's flags
    assert "| tf2.15-keras2 | tf2.21-keras3 | **GO** |" in markdown  # the others are still judged
    assert gonogo(run, "--run", "r1", "--baseline", "tf2.15-keras2", "--candidate", "tf2.16-keras3") == 1
    verdict = json.loads((run_dir / "gonogo" / "tf2.15-keras2__tf2.16-keras3.json").read_text())
    assert verdict["verdict"] == "INCOMPLETE" and "not UTF-8" in verdict["reasons"][0]["error"]
    assert "Traceback" not in capsys.readouterr().err


def test_files_are_written_with_the_users_umask(tmp_path):
    import os
    import stat

    from harness.worker.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o644  # readable by a CI uploader, not 0600


@pytest.fixture
def reads(monkeypatch):
    """Every read of a results document (a run folder's top-level ``*.json``), whoever reads it, by path."""
    from collections import Counter
    from pathlib import Path

    seen: Counter[str] = Counter()
    real = Path.read_bytes

    def counting(self):
        if self.suffix == ".json" and self.parent.parent.name == "results":
            seen[str(self)] += 1
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    return seen


def test_report_reads_each_document_once_also_with_an_earlier_run_beside_it(run, reads):
    earlier = run / "results" / "r0"
    env_doc(
        earlier,
        "tf2.15-keras2",
        [cell("layer_init.keras_dense", w=W)],
        run_id="r0",
        started_at="2026-11-20T00:00:00+00:00",
    )
    common = ["--matrix", str(run / "matrix.yaml"), "--results-dir", str(run / "results"), "--run", "r1"]
    assert main(["report", *common]) == 1
    documents = sorted(str(p) for p in (run / "results").glob("*/*.json"))
    assert len(documents) == 5 and sorted(reads) == documents and set(reads.values()) == {1}


def test_gonogo_reads_each_document_once(run, reads):
    assert gonogo(run, "--run", "r1") == 1
    assert sorted(reads) == sorted(str(p) for p in (run / "results" / "r1").glob("*.json"))
    assert set(reads.values()) == {1}


def test_each_record_archive_is_read_once_however_many_paths_use_it(run, monkeypatch):
    from collections import Counter

    from harness import verdicts

    loaded: Counter[str] = Counter()
    real = verdicts.load_arrays

    def counting(run_dir, doc):
        loaded[doc.environment.name] += 1
        return real(run_dir, doc)

    monkeypatch.setattr(verdicts, "load_arrays", counting)
    assert gonogo(run, "--run", "r1") == 1  # three paths over the three tf environments, each in two of them
    assert loaded == {"tf2.15-keras2": 1, "tf2.16-keras3": 1, "tf2.21-keras3": 1}


def test_a_verdict_that_cannot_be_written_is_one_line_and_exit_2(run, monkeypatch, capsys):
    from harness import verdicts

    def full_disk(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(verdicts, "write_text_atomic", full_disk)
    assert gonogo(run, "--run", "r1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "tf2.15-keras2__tf2.16-keras3.json" in err[0]


def test_the_documents_are_out_of_the_collectors_sight_only_while_the_command_runs(run, monkeypatch):
    import gc

    from harness import verdicts

    frozen = []
    real = verdicts.measure_path

    def measuring(*args, **kwargs):
        frozen.append((gc.get_freeze_count(), gc.isenabled()))  # the documents frozen, or the collector off
        return real(*args, **kwargs)

    monkeypatch.setattr(verdicts, "measure_path", measuring)
    common = ["--matrix", str(run / "matrix.yaml"), "--results-dir", str(run / "results"), "--run", "r1"]
    assert main(["report", *common]) == 1 and gc.get_freeze_count() == 0
    not_comparable = ["--baseline", "tf2.21-keras3", "--candidate", "torch2.13"]
    assert gonogo(run, "--run", "r1", *not_comparable) == 2 and gc.get_freeze_count() == 0  # raised while kept
    assert gonogo(run, "--run", "r1") == 1 and gc.get_freeze_count() == 0
    assert len(frozen) >= 3 and all(count > 0 or not enabled for count, enabled in frozen)


def test_the_documents_leave_the_collectors_sight_as_soon_as_the_run_is_read(run, monkeypatch):
    import gc

    from harness import cli

    seen = []
    real = cli._past

    def past(args, run_dir, docs, unreadable):  # called once every document is read, before the report renders
        tracked = {id(o) for o in gc.get_objects()}
        seen.append([id(doc) in tracked or id(doc.scenarios[0]) in tracked for doc in docs.values()])
        return real(args, run_dir, docs, unreadable)

    monkeypatch.setattr(cli, "_past", past)
    common = ["--matrix", str(run / "matrix.yaml"), "--results-dir", str(run / "results"), "--run", "r1"]
    assert main(["report", *common]) == 1 and gc.get_freeze_count() == 0
    assert len(seen) == 1 and len(seen[0]) >= 3 and not any(seen[0])  # no collection rescans them from then on
