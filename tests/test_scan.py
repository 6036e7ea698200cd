"""``scan`` offline: extraction (aliases, chains, keywords, bases, decorators, string lookups, dynamic uses), the
prober's logic on a made-up module (it is framework-agnostic), findings, formats, verdict reasons and the command.

Line numbers come from the fixture's own text (its ``# expect:`` comments), never from the scanner's output; the
prober's answers in the findings tests are written by hand to the shape the prober writes.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.judge.scan import scan_reasons, with_scan
from harness.scan.extract import extract, extract_source
from harness.scan.findings import compare, counts, request_of
from harness.scan.format import render
from harness.scan.model import Extraction, Finding, ProbeAnswer, ScanReport, Use
from harness.scan.probe import _cached, probe_key
from harness.worker import symbols
from tests.conftest import RESOURCES
from tests.factories import cell, env_doc

FIXTURES = RESOURCES / "scan"
KERAS_FILE = FIXTURES / "project" / "models" / "keras2_classifier.py"
TORCH_FILE = FIXTURES / "project" / "training" / "torch_loop.py"
DYNAMIC_FILE = FIXTURES / "project" / "utils" / "dynamic.py"


def expected_lines(path: Path, change: str) -> list[int]:
    """The lines a fixture marks ``# expect: <change>``: read from the text, independently of the scanner."""
    lines = path.read_text().splitlines()
    return [n for n, line in enumerate(lines, start=1) if f"# expect: {change}" in line]


def uses_at(extraction: Extraction, path: Path, line: int) -> list[Use]:
    return [u for u in extraction.uses if u.path == str(path) and u.line == line]


@pytest.fixture(scope="module")
def tree() -> Extraction:
    return extract([str(FIXTURES)])


# ----------------------------------------------------------------------------------------------- extraction


def test_aliases_and_from_imports_resolve_to_the_full_name(tree):
    (sgd,) = [u for u in uses_at(tree, KERAS_FILE, expected_lines(KERAS_FILE, "missing")[1]) if u.kind == "call"]
    assert sgd.symbol == "tensorflow.keras.optimizers.experimental.SGD"  # `tf.` alias, whole chain kept
    assert sgd.keywords == ("learning_rate", "momentum")
    legacy_import, legacy_call = (expected_lines(KERAS_FILE, "missing")[i] for i in (0, 2))
    assert {u.symbol for u in uses_at(tree, KERAS_FILE, legacy_import)} == {"tensorflow.keras.optimizers.legacy.Adam"}
    (adam,) = uses_at(tree, KERAS_FILE, legacy_call)  # the from-imported name, called bare
    assert (adam.symbol, adam.kind) == ("tensorflow.keras.optimizers.legacy.Adam", "call")


def test_calls_keep_keyword_names_and_positional_count(tree):
    (line,) = expected_lines(KERAS_FILE, "keyword-deprecated")
    (embed,) = uses_at(tree, KERAS_FILE, line)  # `L` is `from tensorflow.keras import layers as L`
    assert embed.symbol == "tensorflow.keras.layers.Embedding"
    assert (embed.positional, embed.keywords, embed.starred) == (2, ("input_length", "mask_zero"), False)
    text = KERAS_FILE.read_text().splitlines()[line - 1]
    assert embed.col == text.index("L.Embedding") + 1


def test_base_classes_and_annotations_are_uses(tree):
    base_line, annotation_line = expected_lines(KERAS_FILE, "moved")[:2]
    assert [(u.symbol, u.kind) for u in uses_at(tree, KERAS_FILE, base_line)] == [("tensorflow.keras.Model", "base")]
    assert {u.symbol for u in uses_at(tree, KERAS_FILE, annotation_line)} == {"tensorflow.keras.Model"}
    torch_bases = [u for u in tree.uses if u.path == str(TORCH_FILE) and u.kind == "base"]
    assert [u.symbol for u in torch_bases] == ["torch.nn.Module"]  # `from torch import nn`


def test_string_identifiers_become_lookups_through_the_keras_getters(tree):
    lookups = {
        (u.lookup.getter, u.lookup.value, u.lookup.via) for u in tree.uses if u.lookup and u.path == str(KERAS_FILE)
    }
    assert lookups == {
        ("tensorflow.keras.activations.get", "softmax", "activation="),
        ("tensorflow.keras.initializers.get", "glorot_uniform", "kernel_initializer="),
        ("tensorflow.keras.optimizers.get", "adam", "tensorflow.keras.optimizers.get()"),
        ("tensorflow.keras.losses.get", "sparse_categorical_crossentropy", "loss="),  # model.compile(...)
        ("tensorflow.keras.metrics.get", "accuracy", "metrics="),
    }
    (metrics_line,) = expected_lines(KERAS_FILE, "moved")[2:]
    assert [u.lookup.value for u in uses_at(tree, KERAS_FILE, metrics_line) if u.lookup] == ["accuracy"]


def test_dynamic_uses_are_listed_as_not_checked_and_a_constant_getattr_resolves(tree):
    assert sorted(u.line for u in tree.unchecked) == expected_lines(DYNAMIC_FILE, "not-checked")
    assert all(u.path == str(DYNAMIC_FILE) for u in tree.unchecked)
    assert {u.code for u in tree.unchecked} == {"getattr(layers, name)", "importlib.import_module(name)"}
    constant = [u for u in tree.uses if u.path == str(DYNAMIC_FILE) and u.kind == "attribute"]
    assert [u.symbol for u in constant] == ["tensorflow.keras.layers.Dense"]


def test_other_alias_forms_decorators_and_star_imports():
    source = textwrap.dedent(
        """
        import numpy as np
        import torch.nn as tnn
        import tensorflow as tf
        from keras import layers as L, ops
        from torch.nn import *

        @tf.function(jit_compile=True)
        def f(x):
            return L.Dense(3, **{"use_bias": False})(x) + np.ones(1) + ops.sum(x)

        @torch_free
        def g():
            mod = __import__("torch")
            return tnn.Linear(*[1, 2]), mod
        """
    )
    uses, unchecked = extract_source(source, "m.py")
    got = {(u.symbol, u.kind, u.line) for u in uses}
    assert ("tensorflow.function", "decorator", 8) in got
    assert ("keras.layers.Dense", "call", 10) in got and ("keras.ops.sum", "call", 10) in got
    assert ("torch.nn.Linear", "call", 15) in got and ("torch", "import", 14) in got
    assert not any(u.symbol.startswith("numpy") for u in uses)  # only the frameworks are followed
    (decorator,) = [u for u in uses if u.kind == "decorator"]
    assert decorator.keywords == ("jit_compile",)
    assert all(u.starred for u in uses if u.symbol in ("keras.layers.Dense", "torch.nn.Linear"))
    assert [(u.line, u.why.split(":")[0]) for u in unchecked] == [(6, "star import from torch.nn")]


def test_a_file_that_does_not_parse_is_listed_with_its_line_and_the_rest_is_scanned(tmp_path):
    (tmp_path / "bad.py").write_text("import torch\n\ndef broken(:\n    pass\n")
    (tmp_path / "good.py").write_text("import torch\ntorch.zeros(2)\n")
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00junk")
    found = extract([str(tmp_path)])
    assert {Path(u.path).name for u in found.uses} == {"good.py"}
    by_name = {Path(n.path).name: n for n in found.not_scanned}
    assert set(by_name) == {"bad.py", "binary.py"}
    assert by_name["bad.py"].line == 3 and by_name["bad.py"].error.startswith(f"{tmp_path / 'bad.py'}:3: SyntaxError")
    assert "\n" not in by_name["binary.py"].error


def test_the_request_holds_each_distinct_symbol_call_and_lookup_once(tree):
    request = request_of(tree)
    assert len(request["symbols"]) == len(set(request["symbols"]))  # type: ignore[arg-type]
    assert {"symbol": "torch.optim.lr_scheduler.StepLR", "positional": 1, "keywords": ["step_size", "verbose"]} in (
        request["calls"]  # type: ignore[operator]
    )
    assert {"getter": "tensorflow.keras.initializers.get", "value": "glorot_uniform"} in request["lookups"]  # type: ignore[operator]


# ------------------------------------------------------------------------------- the prober, on a fake module

FAKE_MODULE = '''
"""A stand-in framework: one of each thing the prober tells apart."""
import warnings


class Layer:
    def __init__(self, units, activation=None, **kwargs):
        old = kwargs.pop("input_length", None)
        if old is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.")
        self.units = units


class Stub:
    def __init__(self, *args, **kwargs):
        raise ImportError("`fakefw.Stub` is not supported in this version")


def schedule(optimizer, step_size, gamma=0.5):
    return optimizer


def old_api():
    """Deprecated: use `schedule`."""


def __getattr__(name):
    if name == "Renamed":
        warnings.warn("fakefw.Renamed is deprecated, use fakefw.Layer", DeprecationWarning, stacklevel=2)
        return Layer
    raise AttributeError(name)
'''


@pytest.fixture
def fakefw(tmp_path, monkeypatch):
    (tmp_path / "fakefw").mkdir()
    (tmp_path / "fakefw" / "__init__.py").write_text(FAKE_MODULE)
    (tmp_path / "fakefw" / "sub.py").write_text("from fakefw import Layer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m == "fakefw" or m.startswith("fakefw.")]:
        del sys.modules[name]


def test_the_prober_resolves_names_reads_signatures_and_never_constructs(fakefw):
    request = {
        "symbols": [
            "fakefw.Layer",
            "fakefw.Stub",
            "fakefw.gone",
            "fakefw.sub.Layer",
            "fakefw.Renamed",
            "fakefw.old_api",
        ],
        "calls": [
            {"symbol": "fakefw.Layer", "positional": 1, "keywords": ["input_length", "typo"]},
            {"symbol": "fakefw.schedule", "positional": 1, "keywords": ["step_size", "verbose"]},
        ],
        "lookups": [],
    }
    request["symbols"].append("fakefw.schedule")  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the prober's own capture would fail here
        answer = ProbeAnswer.model_validate(symbols.probe(request))
    got = answer.symbols
    assert got["fakefw.Layer"].qualified == "fakefw.Layer" and got["fakefw.Layer"].works
    assert got["fakefw.sub.Layer"].qualified == "fakefw.Layer"  # an alias names where the object lives
    assert not got["fakefw.gone"].resolved and "gone" in got["fakefw.gone"].error
    assert got["fakefw.Stub"].resolved and not got["fakefw.Stub"].works
    assert "is not supported in this version" in got["fakefw.Stub"].placeholder
    (warning,) = got["fakefw.Renamed"].warnings
    assert (warning.category, warning.origin) == ("DeprecationWarning", "fakefw")  # raised on access: its owner
    assert got["fakefw.old_api"].doc_deprecated.startswith("Deprecated")
    notes = got["fakefw.Layer"].keyword_notes
    assert notes["input_length"].startswith("deprecated") and notes["typo"].startswith("unnamed")
    bindings = {c.symbol: c.binding for c in answer.calls}
    assert bindings["fakefw.Layer"] == "binds via **kwargs"
    assert bindings["fakefw.schedule"].startswith("rejected") and "verbose" in bindings["fakefw.schedule"]
    assert [(p.name, p.default) for p in got["fakefw.schedule"].params or []] == [
        ("optimizer", None),
        ("step_size", None),
        ("gamma", "0.5"),
    ]


def test_the_prober_suggests_a_same_named_object_in_a_sibling_namespace(fakefw, tmp_path):
    (tmp_path / "fakefw" / "experimental.py").write_text("")
    answer = ProbeAnswer.model_validate(symbols.probe({"symbols": ["fakefw.experimental.Layer", "fakefw.Stub"]}))
    assert answer.symbols["fakefw.experimental.Layer"].suggestions == ["fakefw.Layer"]
    assert answer.symbols["fakefw.Stub"].suggestions == []  # no sibling holds a real Stub


def test_a_lookup_goes_through_the_getter_and_reports_its_error(monkeypatch):
    monkeypatch.setattr(symbols, "_GETTER", re.compile(r"json\.loads"))  # a stand-in getter for Keras's
    lookups = [{"getter": "json.loads", "value": "[]"}, {"getter": "json.loads", "value": "{"}]
    ok, bad = symbols.probe({"lookups": lookups})["lookups"]
    assert ok["resolved"] == "builtins.list" and not ok["error"]
    assert not bad["resolved"] and bad["error"].startswith("JSONDecodeError")


def test_the_prober_calls_nothing_but_a_keras_string_getter(tmp_path):
    planted = tmp_path / "planted"
    answer = symbols.probe({"lookups": [{"getter": "os.mkdir", "value": str(planted)}]})
    assert answer["lookups"][0]["error"] == "not a known string getter: not called" and not planted.exists()


# ------------------------------------------------------------------------------------------------ findings


def sym(**fields) -> dict:
    base = {"resolved": True, "qualified": "fw.X", "kind": "class", "params": [], "var_keyword": False}
    return {**base, **fields}


def param(name: str, default: str | None = None, kind: str = "POSITIONAL_OR_KEYWORD") -> dict:
    return {"name": name, "kind": kind, "default": default}


def answer(symbols_: dict, calls: list | None = None, lookups: list | None = None) -> ProbeAnswer:
    return ProbeAnswer.model_validate(
        {"format": 1, "symbols": symbols_, "calls": calls or [], "lookups": lookups or []}
    )


def use(symbol: str, line: int = 1, kind: str = "call", **extra) -> Use:
    return Use.model_validate({"path": "u.py", "line": line, "col": 1, "symbol": symbol, "kind": kind, **extra})


def findings_of(uses: list[Use], a: ProbeAnswer, b: ProbeAnswer):
    return compare(Extraction(files=("u.py",), uses=tuple(uses)), a, b)


def test_missing_in_b_blocks_with_suggestions_and_a_placeholder_counts_as_missing():
    a = answer({"fw.exp.SGD": sym(), "fw.legacy.Adam": sym()})
    b = answer(
        {
            "fw.exp.SGD": {"resolved": False, "error": "AttributeError: no experimental", "suggestions": ["fw.SGD"]},
            "fw.legacy.Adam": sym(placeholder="ImportError('not in v3')"),
        }
    )
    got = findings_of([use("fw.exp.SGD", 3, "attribute"), use("fw.legacy.Adam", 5, "import")], a, b)
    assert [(f.line, f.change, f.severity, f.status_b) for f in got] == [
        (3, "missing", "no-go", "missing"),
        (5, "missing", "no-go", "placeholder"),
    ]
    assert got[0].suggestions == ("fw.SGD",) and "not in v3" in got[1].detail


def test_keyword_no_longer_bound_blocks_and_an_omitted_parameter_with_a_new_default_warns():
    params_a = [param("optimizer"), param("step_size"), param("gamma", "0.1"), param("verbose", "'deprecated'")]
    params_b = [param("optimizer"), param("step_size"), param("gamma", "0.5")]
    a = answer(
        {"fw.StepLR": sym(params=params_a)},
        calls=[
            {"symbol": "fw.StepLR", "positional": 1, "keywords": ["step_size", "verbose"], "binding": "binds"},
            {"symbol": "fw.StepLR", "positional": 2, "keywords": ["gamma"], "binding": "binds"},
            {"symbol": "fw.StepLR", "positional": 2, "keywords": [], "binding": "binds"},
        ],
    )
    b = answer(
        {"fw.StepLR": sym(params=params_b)},
        calls=[
            {"symbol": "fw.StepLR", "positional": 1, "keywords": ["step_size", "verbose"], "binding": "rejected: x"},
            {"symbol": "fw.StepLR", "positional": 2, "keywords": ["gamma"], "binding": "binds"},
            {"symbol": "fw.StepLR", "positional": 2, "keywords": [], "binding": "binds"},
        ],
    )
    uses = [
        use("fw.StepLR", 1, positional=1, keywords=("step_size", "verbose")),
        use("fw.StepLR", 2, positional=2, keywords=("gamma",)),  # gamma given: its default does not matter
        use("fw.StepLR", 3, positional=2),  # gamma left out: the new default applies
    ]
    got = findings_of(uses, a, b)
    assert [(f.line, f.change, f.severity) for f in got] == [
        (1, "keyword-rejected", "no-go"),
        (3, "default-changed", "warning"),
    ]
    assert "keyword `verbose` no longer accepted" in got[0].detail and (got[0].status_a, got[0].status_b) == (
        "binds",
        "rejected",
    )
    assert got[1].detail == "default of `gamma` changed from 0.1 to 0.5"


def test_deprecation_move_and_kwargs_only_keywords_warn_and_a_starred_call_is_not_bound():
    a = answer(
        {"fw.Embedding": sym(params=[param("input_dim"), param("input_length", "None")], qualified="fw.v2.Embedding")},
        calls=[{"symbol": "fw.Embedding", "positional": 1, "keywords": ["input_length"], "binding": "binds"}],
    )
    deprecation = {"category": "DeprecationWarning", "message": "fw.Embedding is deprecated", "origin": "fw.core"}
    b = answer(
        {
            "fw.Embedding": sym(
                params=[param("input_dim"), param("kwargs", kind="VAR_KEYWORD")],
                qualified="fw.v3.Embedding",
                var_keyword=True,
                warnings=[deprecation],
                keyword_notes={"input_length": "deprecated: fw.v3.Embedding takes it from **kwargs and warns"},
            )
        },
        calls=[
            {"symbol": "fw.Embedding", "positional": 1, "keywords": ["input_length"], "binding": "binds via **kwargs"}
        ],
    )
    got = findings_of([use("fw.Embedding", 7, positional=1, keywords=("input_length",))], a, b)
    assert {f.change for f in got} == {"deprecated", "moved", "keyword-deprecated"}
    assert all(f.severity == "warning" for f in got)
    moved = next(f for f in got if f.change == "moved")
    assert moved.detail.startswith("moved to fw.v3.Embedding (was fw.v2.Embedding)")
    starred = findings_of([use("fw.Embedding", 8, positional=1, keywords=("input_length",), starred=True)], a, b)
    assert {f.change for f in starred} == {"deprecated", "moved"}  # the binding cannot be checked


def test_tf_keras_repackaging_keras_2_is_not_a_move():
    a = answer({"tf.keras.layers.Dense": sym(qualified="keras.src.layers.core.dense.Dense")})
    b = answer({"tf.keras.layers.Dense": sym(qualified="tf_keras.src.layers.core.dense.Dense")})
    assert findings_of([use("tf.keras.layers.Dense", 1, "attribute")], a, b) == []
    c = answer({"tf.keras.layers.Dense": sym(qualified="tf_keras.src.layers.dense.Dense")})
    assert [f.change for f in findings_of([use("tf.keras.layers.Dense", 1, "attribute")], a, c)] == ["moved"]


def test_fixed_in_b_is_info_absent_in_both_is_no_finding_and_stable_is_nothing():
    a = answer({"fw.New": {"resolved": False, "error": "AttributeError"}, "fw.Same": sym(params=[param("x", "1")])})
    b = answer({"fw.New": sym(), "fw.Same": sym(params=[param("x", "1")]), "tf.Thing": {"resolved": False}})
    got = findings_of([use("fw.New", 1), use("fw.Same", 2), use("tf.Thing", 3, "attribute")], a, b)
    assert [(f.line, f.change, f.severity) for f in got] == [(1, "fixed", "info")]
    extraction = Extraction(
        files=("u.py",), uses=(use("fw.New", 1), use("fw.Same", 2), use("tf.Thing", 3, "attribute"))
    )
    numbers = counts(extraction, a, b, got)
    assert (numbers["symbols"], numbers["absent_in_both"], numbers["resolved_in_candidate"]) == (3, 1, 2)


def test_moved_and_deprecated_count_only_the_symbols_the_code_names():
    """A string lookup's finding names its getter (``keras.metrics.get``), which is no symbol of the code: counting it
    as moved made 'of them 2 moved' while only one resolved symbol had moved."""
    from harness.scan.model import Finding as F

    a, b = answer({"fw.Model": sym()}), answer({"fw.Model": sym()})
    extraction = Extraction(files=("u.py",), uses=(use("fw.Model", 1),))
    moved = [F.model_validate({"path": "u.py", "line": n, "col": 1, "symbol": symbol, "change": "moved",
                               "severity": "warning", "status_a": "ok", "status_b": "ok", "detail": "d"})
             for n, symbol in ((1, "fw.Model"), (2, "fw.metrics.get"))]  # fmt: skip
    numbers = counts(extraction, a, b, moved)
    assert (numbers["symbols"], numbers["resolved_in_candidate"], numbers["moved"]) == (1, 1, 1)


def test_a_string_the_getter_no_longer_knows_blocks():
    lookup = {"getter": "k.losses.get", "value": "old_loss", "via": "loss="}
    a = answer({}, lookups=[{"getter": "k.losses.get", "value": "old_loss", "resolved": "k.losses.old_loss"}])
    b = answer({}, lookups=[{"getter": "k.losses.get", "value": "old_loss", "error": "ValueError: unknown loss"}])
    (found,) = findings_of([use("k.losses.get", 4, "string", lookup=lookup)], a, b)
    assert (found.change, found.severity, found.detail) == (
        "lookup-failed",
        "no-go",
        "loss= 'old_loss': ValueError: unknown loss",
    )


# ---------------------------------------------------------------------------------------- formats, verdicts


def report_of(*found) -> ScanReport:
    return ScanReport(
        baseline="tf2.15-keras2",
        candidate="tf2.16-keras3",
        findings=tuple(found),
        unchecked=(),
        not_scanned=(),
        files=("a.py", "b.py"),
        counts={"files": 2},
    )


def finding(path: str, line: int, change: str = "missing", severity: str = "no-go", detail: str = "gone", **extra):
    return Finding.model_validate(
        {"path": path, "line": line, "col": 5, "symbol": "tf.keras.optimizers.experimental.SGD", "change": change,
         "severity": severity, "status_a": "ok", "status_b": "missing", "detail": detail, **extra}
    )  # fmt: skip


def test_text_groups_by_file_one_line_per_finding_with_suggestions():
    text = render(report_of(finding("a.py", 3, suggestions=("keras.optimizers.SGD",)), finding("b.py", 9)), "text")
    lines = text.splitlines()
    assert lines[2] == "a.py" and lines[6] == "b.py"
    assert lines[3] == "  a.py:3:5  tf.keras.optimizers.experimental.SGD  ok -> missing  [no-go] gone"
    assert lines[4].strip() == "suggestion: use keras.optimizers.SGD"


def test_the_counts_line_puts_moved_and_deprecated_among_the_resolved():
    report = report_of().model_copy(update={"counts": {
        "files": 5, "uses": 60, "symbols": 33, "resolved_in_candidate": 9, "missing_in_candidate": 3,
        "absent_in_both": 21, "moved": 2, "deprecated": 1, "not_checked": 2, "not_scanned": 0}})  # fmt: skip
    line = render(report, "text").splitlines()[-1]
    # 9 + 3 + 21 = 33 symbols: the moved and deprecated ones are resolved ones, not more symbols
    assert "33 symbols: in tf2.16-keras3 9 resolved (of them 2 moved, 1 deprecated), 3 missing; 21 in neither" in line


def test_markdown_escapes_text_from_files_and_json_round_trips():
    hostile = finding("x|y.py", 1, detail="<script>|\x1b[31mred")
    markdown = render(report_of(hostile), "md")
    assert "<script>" not in markdown and "\x1b" not in markdown
    data = json.loads(render(report_of(hostile), "json"))
    assert data["blocking"] is True and ScanReport.model_validate(data).findings[0].detail == hostile.detail


OFFLINE_MATRIX = """
scenarios:
  ids: [fault.a_first_passes]
environments:
  - name: tf2.15-keras2
    packages: {tensorflow-cpu: "2.15.1", keras: "2.15.0"}
  - name: tf2.16-keras3
    packages: {tensorflow-cpu: "2.16.2", keras: "3.3.3"}
  - name: torch2.5
    packages: {torch: "2.5.1"}
"""


@pytest.fixture
def matrix_args(tmp_path, monkeypatch) -> list[str]:
    """A matrix of its own and the fake scenario package: these tests never depend on the library's scenarios."""
    monkeypatch.syspath_prepend(str(RESOURCES))
    (tmp_path / "matrix.yaml").write_text(OFFLINE_MATRIX)
    return ["--matrix", str(tmp_path / "matrix.yaml"), "--scenario-packages", "fake_scenarios"]


def test_findings_become_one_reason_per_cause_and_decide_the_verdict(tmp_path, matrix_args, monkeypatch):
    weights = np.linspace(-1, 1, 16, dtype=np.float32)
    run_dir = tmp_path / "results" / "r1"
    for env in ("tf2.15-keras2", "tf2.16-keras3"):
        env_doc(run_dir, env, [cell("fault.a_first_passes", w=weights)], run_id="r1")
    common = [*matrix_args, "--results-dir", str(tmp_path / "results"), "--run", "r1"]
    pair = ["--baseline", "tf2.15-keras2", "--candidate", "tf2.16-keras3"]
    assert main(["gonogo", *common, *pair]) == 0  # the run alone: GO

    broken = report_of(finding("a.py", 3), finding("b.py", 9), finding("a.py", 4, "moved", "warning", "moved to X"))
    reasons = scan_reasons(broken, "python -m harness scan src")
    assert [(r.kind, r.severity, r.count) for r in reasons] == [
        ("scan-broken", "no-go", 2),
        ("scan-changed", "warning", 1),
    ]
    assert reasons[0].records == ["scan:a.py::3:5", "scan:b.py::9:5"] and reasons[0].scenarios == [
        "scan:a.py",
        "scan:b.py",
    ]
    assert "at a.py:3:5, b.py:9:5: gone" in reasons[0].summary  # the lines, in the text a reader sees

    monkeypatch.setattr("harness.scan.run_scan", lambda *a, **k: broken)  # probing: the integration test's business
    assert main(["gonogo", *common, *pair, "--scan", "src"]) == 1
    verdict = json.loads((run_dir / "gonogo" / "tf2.15-keras2__tf2.16-keras3.json").read_text())
    assert verdict["verdict"] == "NO-GO"
    assert [r["kind"] for r in verdict["reasons"]][:2] == ["scan-broken", "scan-changed"]


def test_a_waiver_on_scan_lines_waives_the_finding():
    from datetime import date

    from harness.judge.policy import Verdict
    from harness.matrix import WaiverSpec

    verdict = Verdict(baseline="a", candidate="b", run_id="r", decided_at="now", verdict="GO", counts={}, reasons=[])
    waiver = WaiverSpec.model_validate(
        {"scenario": "scan:a.py", "record": "*", "reason": "migrating", "owner": "me", "expires": "2099-01-01"}
    )
    updated = with_scan(verdict, report_of(finding("a.py", 3)), [waiver], date(2026, 12, 2), "cmd")
    assert updated.verdict == "GO" and updated.reasons[0].severity == "waived"
    assert with_scan(verdict, report_of(finding("a.py", 3)), [], date(2026, 12, 2), "cmd").verdict == "NO-GO"


# ------------------------------------------------------------------------------------------ command, cache


def test_a_bad_path_is_one_line_naming_it_and_exit_2(capsys, matrix_args):
    code = main(["scan", *matrix_args, "no/such/dir", "--baseline", "tf2.15-keras2", "--candidate", "tf2.16-keras3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "scan: no/such/dir: no such file or folder"


def test_an_unknown_environment_is_a_usage_error(capsys, matrix_args):
    code = main(["scan", *matrix_args, str(FIXTURES), "--baseline", "torch2.5", "--candidate", "torch9"])
    assert code == 2 and "unknown environment 'torch9'" in capsys.readouterr().err


def fake_python(tmp_path: Path, body: str):
    """A Provisioned whose interpreter is a shell script: how the prober's process is bounded, without a venv."""
    from harness.provision import Provisioned

    script = tmp_path / "venv" / "bin" / "python"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return Provisioned(python=script, packages={}, lock_text="", lock_sha256="0" * 64)


def test_a_prober_that_hangs_is_killed_at_its_timeout(tmp_path):
    import time

    from harness.errors import HarnessError
    from harness.scan.probe import _run_prober

    prov = fake_python(tmp_path, "sleep 30")
    started = time.perf_counter()
    with pytest.raises(HarnessError, match=r"timed out after 0\.5 s"):
        _run_prober(prov, {"PATH": "/usr/bin:/bin"}, {"symbols": []}, timeout=0.5)
    assert time.perf_counter() - started < 10


def test_a_prober_that_fails_is_one_error_with_its_stderr(tmp_path):
    from harness.errors import HarnessError
    from harness.scan.probe import _run_prober

    prov = fake_python(tmp_path, "echo 'ModuleNotFoundError: No module named harness' >&2; exit 1")
    with pytest.raises(HarnessError, match="exited with code 1: ModuleNotFoundError"):
        _run_prober(prov, {"PATH": "/usr/bin:/bin"}, {"symbols": []}, timeout=10)


def test_the_probe_key_follows_the_lock_the_variables_and_the_request(tmp_path):
    from harness.provision import Provisioned

    prov = Provisioned(python=Path("/x/bin/python"), packages={}, lock_text="a", lock_sha256="1" * 64)
    other = Provisioned(python=Path("/x/bin/python"), packages={}, lock_text="b", lock_sha256="2" * 64)
    request = {"symbols": ["torch.zeros"]}
    key = probe_key(prov, {}, request)
    assert key == probe_key(prov, {}, dict(request))
    assert len({key, probe_key(other, {}, request), probe_key(prov, {"KERAS_BACKEND": "torch"}, request),
                probe_key(prov, {}, {"symbols": ["torch.ones"]})}) == 4  # fmt: skip
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "link.json").symlink_to(tmp_path / "bad.json")
    assert _cached(tmp_path / "bad.json") is None and _cached(tmp_path / "link.json") is None
    assert _cached(tmp_path / "absent.json") is None


def test_an_environment_that_cannot_be_provisioned_is_one_error_naming_it(monkeypatch, matrix_args, capsys):
    from harness.errors import ProvisionError

    def refuse(env, venv_dir, **_):
        raise ProvisionError("resolving torch==2.5.1 failed: No solution found")

    monkeypatch.setattr("harness.scan.probe.provision", refuse)
    code = main(
        ["scan", *matrix_args, str(FIXTURES / "stable"), "--baseline", "torch2.5", "--candidate", "tf2.15-keras2"]
    )
    err = capsys.readouterr().err.strip()
    assert (
        code == 2 and err == "scan: torch2.5 could not be provisioned: resolving torch==2.5.1 failed: No solution found"
    )
