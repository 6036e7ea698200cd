"""Drift metrics: properties (hypothesis) and the comparisons of every record kind."""

from __future__ import annotations

import contextlib
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.drift import (
    compare_api_maps,
    compare_arrays,
    compare_configs,
    compare_orderings,
    kendall_tau,
    measure,
    tolerance_for,
)
from tests.factories import cell, env_doc

floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
float_arrays = arrays(np.float32, st.integers(1, 40), elements=floats)
finite_arrays = arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e6, 1e6))


@given(float_arrays)
def test_identical_arrays_have_zero_drift(a):
    verdict, metrics = compare_arrays(a, a.copy(), 0.0, 0.0)
    assert verdict == "identical"
    assert metrics["max_abs_error"] == 0.0 and metrics["max_ulp"] == 0 and metrics["share_beyond"] == 0.0


@given(float_arrays, float_arrays)
@settings(max_examples=200)
def test_symmetric_metrics_are_symmetric_and_nonfinite_never_crashes(a, b):
    if a.shape != b.shape:
        b = np.resize(b, a.shape)
    v1, m1 = compare_arrays(a, b, 0.0, 1e-3)
    v2, m2 = compare_arrays(b, a, 0.0, 1e-3)
    assert v1 == v2  # with an absolute tolerance only, the verdict cannot depend on the order
    for key in ("max_abs_error", "nonfinite_mismatch", "share_beyond", "max_ulp"):
        assert m1.get(key) == m2.get(key), key
    assert math.isclose(m1["cosine"], m2["cosine"], rel_tol=1e-9, abs_tol=1e-12) or (
        math.isnan(m1["cosine"]) and math.isnan(m2["cosine"])
    )
    mismatched = int((np.isnan(a) != np.isnan(b)).sum())
    assert m1["nonfinite_mismatch"] >= mismatched
    if mismatched:
        assert v1 == "beyond"


@given(finite_arrays, st.sampled_from([2.0**-k for k in range(3, 12)]))
def test_tolerance_edges(base, atol):
    base = np.round(base)  # integers: adding a power of two is exact, so the edge is exact
    exactly = base + atol
    assert compare_arrays(exactly, base, 0.0, atol)[0] == "within"
    assert compare_arrays(base + 2 * atol, base, 0.0, atol)[0] == "beyond"


def test_nan_in_the_same_place_is_not_drift_and_inf_sign_is():
    a = np.array([np.nan, 1.0, np.inf], dtype=np.float32)
    assert compare_arrays(a, a.copy(), 0, 0)[0] == "identical"
    verdict, metrics = compare_arrays(np.array([np.nan, 1.0, -np.inf]), np.array([np.nan, 1.0, np.inf]), 0, 0)
    assert verdict == "beyond" and metrics["nonfinite_mismatch"] == 1


def test_metrics_values():
    verdict, m = compare_arrays(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.3]), 1e-3, 0)
    assert verdict == "beyond"
    assert m["max_abs_error"] == pytest.approx(0.3) and m["max_rel_error"] == pytest.approx(0.3 / 3.3)
    assert m["share_beyond"] == pytest.approx(1 / 3) and 0.99 < m["cosine"] < 1.0
    one_ulp = np.nextafter(np.float32(1.0), np.float32(2.0))
    assert compare_arrays(np.array([one_ulp]), np.array([np.float32(1.0)]), 0, 0)[1]["max_ulp"] == 1
    assert compare_arrays(np.zeros(3), np.zeros(4), 1, 1) == (
        "beyond",
        {"shape": [[3], [4]], "detail": "shape changed"},
    )


@given(st.permutations(list(range(12))))
def test_kendall_tau_properties(order):
    order = np.array(order)
    assert kendall_tau(order, order) == 1.0
    assert kendall_tau(order, order[::-1]) == -1.0
    other = np.roll(order, 3)
    assert kendall_tau(order, other) == pytest.approx(kendall_tau(other, order))


def test_orderings():
    assert compare_orderings([0, 1, 2, 3], [0, 1, 2, 3])[0] == "identical"
    verdict, m = compare_orderings([1, 0, 2, 3], [0, 1, 2, 3])
    assert verdict == "beyond" and m["positions_differ"] == 2 and m["kendall_tau"] == pytest.approx(4 / 6)
    assert "do not hold the same elements" in compare_orderings([0, 1, 5], [0, 1, 2])[1]["detail"]


def test_configs_and_api_maps():
    verdict, m = compare_configs({"a": 1, "init": {"seed": None, "cls": "Glorot"}}, {"a": 1, "init": {"cls": "He"}})
    assert verdict == "changed" and m["changed"] == {"init.cls": ["He", "Glorot"]} and m["added"] == ["init.seed"]
    before = {"k.opt.experimental.AdamW": "ok", "k.opt.SGD": "ok", "k.opt.Lion": "ok", "k.opt.Adam": "ok"}
    after = {
        "k.opt.experimental.AdamW": "missing",
        "k.opt.AdamW": "ok",
        "k.opt.SGD": "deprecated: soon",
        "k.opt.Lion": "error: TypeError: placeholder",
        "k.opt.Adam": "ok",
    }
    verdict, m = compare_api_maps(after, before)
    assert verdict == "changed"
    assert m["moved"] == {"k.opt.experimental.AdamW": "k.opt.AdamW"}
    assert m["removed"] == ["k.opt.Lion"] and m["newly_deprecated"] == ["k.opt.SGD"]
    assert compare_api_maps(before, dict(before))[0] == "identical"


def test_tolerances_default_by_dtype_and_override_first_match():
    from harness.drift import Tolerance

    assert tolerance_for("float32", "a.b::w", {}).rtol == 1.3e-6
    assert tolerance_for("int64", "a.b::w", {}).atol == 0.0
    overrides = {"a.*::w": Tolerance(rtol=0.1, atol=0.1, source="x"), "*": Tolerance(rtol=1, atol=1, source="y")}
    assert tolerance_for("float32", "a.b::w", overrides).source == "x"
    assert tolerance_for("float32", "c.d::w", overrides).source == "y"


def test_measure_over_documents(tmp_path):
    w = np.linspace(-1, 1, 64, dtype=np.float32)
    base = env_doc(
        tmp_path,
        "base",
        [cell("layer_init.x", w=w, order=("ordering", [0, 1, 2]), cfg={"m": 0.99}, ver=("info", "1.0"))],
    )
    cand = env_doc(
        tmp_path,
        "cand",
        [cell("layer_init.x", w=w + 1e-7, order=("ordering", [1, 0, 2]), cfg={"m": 0.9}, ver=("info", "2.0"))],
    )
    from harness.drift import load_arrays

    entries = {e.record: e for e in measure(cand, base, load_arrays(tmp_path, cand), load_arrays(tmp_path, base))}
    assert entries["w"].verdict == "within" and entries["w"].tolerance.source == "default for float32"
    assert entries["order"].verdict == "beyond" and entries["order"].metrics["positions_differ"] == 2
    assert entries["cfg"].verdict == "changed" and entries["cfg"].metrics["changed"] == {"m": [0.99, 0.9]}
    assert entries["ver"].verdict == "info"


@settings(max_examples=60, deadline=None)
@given(float_arrays, st.booleans())
def test_equal_digests_give_what_comparing_the_arrays_gives(a, same):
    """The shortcut that skips reading arrays whose digests match must say exactly what the comparison says."""
    from harness import drift
    from harness.results import RecordSummary
    from harness.worker.records import summarize

    b = a.copy() if same else (a + np.float32(1.0)).astype(np.float32)
    mine = RecordSummary.model_validate(summarize("w", "array", a)[0])
    theirs = RecordSummary.model_validate(summarize("w", "array", b)[0])
    arrays_ = ({"s.x::w": a}, {"s.x::w": b})
    quick = drift._compare(mine, theirs, "s.x", arrays_, {})
    original, drift._same_array = drift._same_array, lambda *_: False
    try:
        full = drift._compare(mine, theirs, "s.x", arrays_, {})
    finally:
        drift._same_array = original
    assert quick == full
    assert (quick[0] == "identical") == (a.tobytes() == b.tobytes())


def test_a_record_archive_decodes_on_demand_and_a_bad_member_is_a_one_line_error(tmp_path):
    import io

    from harness.drift import RecordArchive
    from harness.errors import ResultsError

    buffer = io.BytesIO()
    np.savez(buffer, good=np.arange(4.0), bad=np.ones(3))
    raw = bytearray(buffer.getvalue())
    second = raw.index(b"\x93NUMPY", raw.index(b"\x93NUMPY") + 1)  # the header of the second member ("bad")
    raw[second : second + 6] = b"garbag"
    path = tmp_path / "e.npz"
    path.write_bytes(bytes(raw))
    archive = RecordArchive(path)  # the directory is fine: nothing decoded yet, nothing refused
    assert set(archive) == {"good", "bad"} and "good" in archive and "missing" not in archive
    assert archive["good"].tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ResultsError, match=r"e\.npz: not a readable record archive"):
        archive["bad"]
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ResultsError, match=r"e\.npz: not a readable record archive"):
        RecordArchive(path)


def _records(kind, a, b):
    from harness.results import RecordSummary
    from harness.worker.records import summarize

    return tuple(RecordSummary.model_validate(summarize("r", kind, value)[0]) for value in (a, b))


def _without(name, *calls):
    """What ``drift._compare`` gives for each of ``calls`` with the shortcut ``name`` turned off."""
    from harness import drift

    original = getattr(drift, name)
    setattr(drift, name, lambda *_: False)
    try:
        return [drift._compare(*call) for call in calls]
    finally:
        setattr(drift, name, original)


orders = st.lists(st.integers(0, 5), min_size=0, max_size=12)


@settings(max_examples=80, deadline=None)
@given(orders, orders, st.sampled_from([np.int64, np.int8, np.uint16, np.bool_, np.float32]))
def test_orderings_with_equal_digests_give_what_comparing_them_gives(a, b, dtype):
    """Orderings are judged by digest without decoding only where the comparison could not disagree (integers,
    both stored): float orders (NaN is never equal to itself) and values missing from an archive are compared."""
    from harness import drift

    b = a if len(b) % 2 else b  # half the cases: the same order
    x, y = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    mine, theirs = _records("ordering", x, y)
    calls = [
        (mine, theirs, "s.x", ({"s.x::r": x}, {"s.x::r": y}), {}),
        (mine, theirs, "s.x", ({"s.x::r": x}, {}), {}),
    ]
    assert repr([drift._compare(*call) for call in calls]) == repr(_without("_same_ordering", *calls))


def test_a_float_ordering_holding_nan_is_still_compared():
    from harness import drift

    x = np.array([0.0, np.nan, 2.0])
    mine, theirs = _records("ordering", x, x.copy())
    verdict, _, _ = drift._compare(mine, theirs, "s.x", ({"s.x::r": x}, {"s.x::r": x.copy()}), {})
    assert verdict == "beyond" == compare_orderings(x, x.copy())[0]


scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.sampled_from([0.0, -0.0, 1, 1.0, True, 2**63, 2**63 - 1, -(2**63)]),
)


@settings(max_examples=300, deadline=None)
@given(scalars, scalars)
def test_scalars_found_bitwise_equal_are_what_numpy_finds(a, b):
    """Equal scalars are told without numpy: exactly where ``compare_arrays`` finds the same dtype and bytes."""
    from harness import drift

    for x, y in ((a, b), (a, a)):
        try:
            expected = compare_arrays(x, y, 0.0, 0.0)[0] == "identical"
        except (OverflowError, TypeError):
            expected = False  # numpy cannot hold it at all: never identical by the shortcut either
        if drift._bits_equal(x, y):
            assert expected, (x, y)
        mine, theirs = _records("scalar", x, y)
        call = (mine, theirs, "s.x", ({}, {}), {})
        # the full comparison cannot hold a number beyond int64 at all: not this test's business
        with contextlib.suppress(OverflowError, TypeError):
            assert repr(drift._compare(*call)) == repr(_without("_bits_equal", call)[0])  # NaN metrics alike too


def _chain(tmp_path, records_by_env):
    """Documents of environments e0, e1, ... each with one cell whose records are given (shared objects where equal,
    as ``load_run`` reads them)."""
    from harness.results import load_run

    for index, values in enumerate(records_by_env):
        env_doc(tmp_path, f"e{index}", [cell("layer_init.x", **values)])
    return load_run(tmp_path)


def _measured_all(docs, tmp_path, known=None, overrides=None):
    from harness.drift import load_arrays

    names = sorted(docs)
    return [
        [
            e.model_dump()
            for e in measure(
                docs[c], docs[b], load_arrays(tmp_path, docs[c]), load_arrays(tmp_path, docs[b]), overrides, known=known
            )
        ]
        for b, c in itertools.pairwise(names)
    ]


def test_comparisons_remembered_across_paths_change_nothing(tmp_path):
    from harness.drift import Comparisons

    w = np.linspace(-1, 1, 8, dtype=np.float32)
    same = {
        "w": w,
        "order": ("ordering", [2, 0, 1]),
        "cfg": {"units": 8, "init": {"seed": float("nan")}},
        "loss": 0.25,
        "ver": ("info", {"keras": "3.0"}),
        "label": ("text", "relu"),
    }
    changed = {**same, "w": w + 1e-3, "loss": -0.0, "cfg": {"units": 9}}
    docs = _chain(tmp_path, [same, same, changed, same, same])
    assert docs["e0"].scenarios[0].records[0] is docs["e1"].scenarios[0].records[0]  # what the memory relies on
    known = Comparisons(None)
    assert _measured_all(docs, tmp_path, known) == _measured_all(docs, tmp_path)
    assert known._known  # it did remember (the NaN config is "changed" against itself both ways)


def test_comparisons_remember_where_each_side_holds_the_value(tmp_path):
    """The same record whose value one archive lacks: where the value comes from is part of what is remembered."""
    from harness.drift import Comparisons

    docs = _chain(tmp_path, [{"order": ("ordering", list(range(40))[::-1])}] * 3)  # too long to be inline too
    (tmp_path / "e2.npz").unlink()  # e2 has no value for it at all then (after a path that had both)
    known = Comparisons(None)
    assert _measured_all(docs, tmp_path, known) == _measured_all(docs, tmp_path)


def test_comparisons_are_used_only_with_the_tolerances_they_were_made_for(tmp_path):
    from harness.drift import Comparisons, Tolerance

    docs = _chain(tmp_path, [{"w": np.ones(3)}] * 3)
    loose = {"*": Tolerance(rtol=1, atol=1, source="loose")}
    known = Comparisons(None)
    _measured_all(docs, tmp_path, known)
    entries = _measured_all(docs, tmp_path, known, loose)
    assert {e["tolerance"]["source"] for path in entries for e in path} == {"loose"}


npy_dtypes = st.sampled_from(["<f4", ">f4", "<f8", "<f2", "|b1", "<i8", ">i2", "|u1", "<c8", "<u4"])
npy_shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


@settings(max_examples=120, deadline=None)
@given(npy_dtypes, npy_shapes, st.booleans(), st.sampled_from([(1, 0), (2, 0), (3, 0)]), st.integers(0, 2**32 - 1))
def test_members_decode_as_numpy_reads_them_the_first_time_and_after(dtype, shape, fortran, version, seed):
    """An archive member is the array ``np.load`` reads from it, whether its header is new or was seen before."""
    import io

    from harness import drift

    values = np.random.default_rng(seed).integers(0, 255, size=shape).astype(dtype)
    values = np.asfortranarray(values) if fortran else values
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, values, version=version)
    raw = buffer.getvalue()
    expected = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    reader = drift._NpyReader()
    for _ in range(2):  # the first read parses the header, the second finds it known
        got = reader.decode(raw)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes(order="A") == expected.tobytes(order="A") and np.array_equal(got, expected, equal_nan=True)
    assert len(reader.known) == 1
    with pytest.raises(ValueError):
        reader.decode(raw[: len(raw) - 1]) if values.nbytes else reader.decode(raw[:8])  # cut short: refused


def test_a_pickled_member_is_refused_even_after_its_header_shape_was_seen(tmp_path):
    import io

    from harness import drift

    reader = drift._NpyReader()
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for _ in range(2):
        with pytest.raises(ValueError, match="allow_pickle"):
            reader.decode(buffer.getvalue())
    assert not reader.known


def test_entries_built_without_validation_are_the_validated_entries(tmp_path):
    """measure builds its entries without pydantic's validation: they must be what validation would have made
    (fields, fields given, the JSON a ledger writes), for compared, flaky, missing and added records."""
    from harness.drift import DriftEntry, load_arrays

    base = env_doc(tmp_path, "base", [cell("a.x", w=np.ones(3), gone=1.0, flaky=2.0), cell("b.y", c={"k": 1})])
    cand = env_doc(tmp_path, "cand", [cell("a.x", w=np.zeros(3), new=1.0, flaky=3.0), cell("b.y", c={"k": 2})])
    cand.flaky = ["a.x::flaky"]
    entries = measure(cand, base, load_arrays(tmp_path, cand), load_arrays(tmp_path, base))
    assert {e.verdict for e in entries} == {"beyond", "flaky", "missing", "added", "changed"}
    for entry in entries:
        given = {name: getattr(entry, name) for name in entry.model_fields_set}
        validated = DriftEntry(**given)
        assert entry == validated and entry.model_fields_set == validated.model_fields_set
        assert entry.model_dump_json() == validated.model_dump_json()


def test_ledger_cells_built_without_validation_are_the_validated_cells(tmp_path):
    from harness.ledger import CellDelta, measure_path
    from harness.results import CheckResult, WarningEntry

    lost, failing = cell("a.x", w=1.0, gone=2.0), cell("b.y", "fail", "ValueError: no")
    failing[0].checks = [CheckResult(name="finite", ok=False), CheckResult(name="shape", ok=True)]
    warned = cell("c.z")
    warned[0].warnings = [WarningEntry(source="warnings", category="DeprecationWarning", message="x", framework=True)]
    base = env_doc(tmp_path, "base", [lost, cell("b.y"), cell("only.base")])
    cand = env_doc(tmp_path, "cand", [cell("a.x", w=1.0), failing, warned])
    deltas = measure_path(base, cand, ({}, {})).cells
    assert {d.scenario for d in deltas} == {"a.x", "b.y", "only.base", "c.z"}
    assert any(d.records_lost for d in deltas) and any(d.checks_failed for d in deltas)
    assert any(d.new_framework_warnings for d in deltas) and any(d.candidate_status == "absent" for d in deltas)
    for delta in deltas:
        validated = CellDelta(**{name: getattr(delta, name) for name in CellDelta.model_fields})
        assert delta == validated and delta.model_fields_set == validated.model_fields_set
        assert delta.model_dump_json() == validated.model_dump_json()
