"""``scan`` against the real environments of the default matrix (their venvs under ``.nox/``, provisioned by the
same code path as a run, reused when they exist): the fixture tree's findings land on the lines its ``# expect:``
comments mark, with the change they name, and code using only stable APIs has none.

What each marked line should meet was established independently of the scanner: Keras 3's release notes (the
``experimental`` and ``legacy`` optimizer namespaces are gone; ``tf.keras.optimizers.legacy.*`` is kept as a class
that raises ImportError when constructed), and probing each environment by hand (``inspect.signature`` of StepLR /
ReduceLROnPlateau: ``verbose`` is a parameter in torch 2.5.1 and absent in 2.13.0; ``torch.onnx.dynamo_export`` is
absent in 2.13.0; ``torch.export.export(strict=)`` defaults to True in 2.5.1 and False in 2.13.0;
``torch.onnx.export(dynamo=)`` False then True; ``torch.ao.quantization`` states its deprecation in 2.13.0 only;
Keras 3.3.3's Embedding pops ``input_length`` from ``**kwargs`` with "Argument `input_length` is deprecated";
GlobalAveragePooling1D's ``data_format`` default is 'channels_last' in Keras 2.15 and None in 3.3.3;
``metrics.get("accuracy")`` gives a function in Keras 2.15 and the Accuracy class in 3.3.3). One prober process per
environment, one environment at a time; 40-55 s for the whole file on warm venvs (the machine is shared).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import matrix as matrix_mod
from harness.cli import main
from harness.scan import ScanReport, run_scan
from harness.scan.probe import probe_environment
from harness.worker import scenario as scenario_mod
from tests.conftest import ROOT
from tests.test_scan import DYNAMIC_FILE, FIXTURES, KERAS_FILE, TORCH_FILE, expected_lines

pytestmark = pytest.mark.integration

CHANGES = ("missing", "moved", "deprecated", "keyword-deprecated", "keyword-rejected", "default-changed")
STABLE = FIXTURES / "stable"


@pytest.fixture(scope="module")
def matrix() -> matrix_mod.Matrix:
    return matrix_mod.load(ROOT / "matrix.yaml", scenario_mod.discover(("scenarios",)))


# The scan cache lives in the test session's own cache folder (tests/conftest.py empties it per session), so the
# first scan of each pair measures and the command below reuses its answers.


@pytest.fixture(scope="module")
def keras_scan(matrix) -> ScanReport:
    return run_scan(matrix, [str(FIXTURES)], "tf2.15-keras2", "tf2.16-keras3")


@pytest.fixture(scope="module")
def torch_scan(matrix) -> ScanReport:
    return run_scan(matrix, [str(FIXTURES)], "torch2.5", "torch2.13")


def marked(path: Path) -> set[tuple[int, str]]:
    return {(line, change) for change in CHANGES for line in expected_lines(path, change)}


def found(report: ScanReport, path: Path) -> set[tuple[int, str]]:
    return {(f.line, f.change) for f in report.findings if f.path == str(path)}


def test_keras2_to_keras3_findings_are_exactly_the_marked_lines(keras_scan):
    assert found(keras_scan, KERAS_FILE) == marked(KERAS_FILE)
    assert keras_scan.blocking
    assert keras_scan.versions["tf2.16-keras3"]["keras"] == "3.3.3"


def test_the_experimental_optimizer_is_missing_and_a_sibling_is_suggested(keras_scan):
    (sgd,) = [f for f in keras_scan.findings if f.symbol == "tensorflow.keras.optimizers.experimental.SGD"]
    assert (sgd.severity, sgd.status_a, sgd.status_b) == ("no-go", "ok", "missing")
    assert "keras.optimizers.SGD" in sgd.suggestions


def test_legacy_optimizers_resolve_to_placeholders_that_only_raise(keras_scan):
    legacy = [f for f in keras_scan.findings if ".optimizers.legacy." in f.symbol]
    assert {f.line for f in legacy} == set(expected_lines(KERAS_FILE, "missing")) - {25}
    assert all(f.status_b == "placeholder" and "ImportError" in f.detail for f in legacy)
    assert "keras.optimizers.RMSprop" in next(f for f in legacy if f.symbol.endswith("RMSprop")).suggestions


def test_embedding_input_length_is_only_swallowed_with_a_deprecation(keras_scan):
    (line,) = expected_lines(KERAS_FILE, "keyword-deprecated")
    (embed,) = [f for f in keras_scan.findings if f.line == line and f.path == str(KERAS_FILE)]
    assert embed.severity == "warning" and "`input_length`" in embed.detail and "deprecated" in embed.detail


def test_torch_2_5_to_2_13_findings_are_exactly_the_marked_lines(torch_scan):
    assert found(torch_scan, TORCH_FILE) == marked(TORCH_FILE)
    details = {f.line: f.detail for f in torch_scan.findings if f.path == str(TORCH_FILE)}
    assert details[expected_lines(TORCH_FILE, "keyword-rejected")[0]].startswith("keyword `verbose` no longer accepted")
    onnx_line, export_line = expected_lines(TORCH_FILE, "default-changed")
    assert details[onnx_line] == "default of `dynamo` changed from False to True"
    assert details[export_line] == "default of `strict` changed from True to False"


def test_stable_code_and_the_other_framework_line_have_no_findings(keras_scan, torch_scan):
    for report in (keras_scan, torch_scan):
        assert not [f for f in report.findings if f.path.startswith(str(STABLE))]
        assert not found(report, DYNAMIC_FILE)  # its one resolvable use (layers.Dense) did not change
        assert report.counts["not_checked"] == 2
    assert not found(keras_scan, TORCH_FILE) and not found(torch_scan, KERAS_FILE)
    assert torch_scan.counts["absent_in_both"] > 0  # TensorFlow names in torch environments: counted, not findings


def test_an_unchanged_scan_is_taken_from_the_cache(matrix, torch_scan):
    assert torch_scan.reused == {"torch2.5": False, "torch2.13": False}
    again = run_scan(matrix, [str(FIXTURES)], "torch2.5", "torch2.13")
    assert again.reused == {"torch2.5": True, "torch2.13": True}
    assert again.findings == torch_scan.findings


def test_a_scan_provisions_an_absent_environment_through_the_runs_code_path(matrix, tmp_path):
    request = {"symbols": ["torch.nn.Linear", "torch.onnx.dynamo_export"], "calls": [], "lookups": []}
    answer = probe_environment(matrix, "torch2.13", request, venv_root=tmp_path, cache_root=tmp_path / "cache")
    assert (tmp_path / "torch2-13" / "bin" / "python").exists()  # created here, by harness.provision
    assert answer.versions["torch"].startswith("2.13.0") and not answer.reused
    assert answer.symbols["torch.nn.Linear"].works and not answer.symbols["torch.onnx.dynamo_export"].resolved


def test_the_command_exits_1_on_breaking_code_and_0_on_stable_code(capsys, torch_scan):
    pair = ["--baseline", "torch2.5", "--candidate", "torch2.13"]
    assert main(["scan", str(FIXTURES), *pair, "--format", "md"]) == 1  # the fixture's answers, from the cache
    assert "torch.onnx.dynamo_export" in capsys.readouterr().out
    assert main(["scan", str(STABLE / "torch_module.py"), *pair]) == 0
