"""The scenario API: registration, context, records and check helpers (no framework needed)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from harness.worker import checks, records, scenario
from harness.worker.scenario import Context


def test_decorator_registers_metadata_only():
    calls = []

    @scenario.scenario(area="probe", requires=["torch>=2.1"], timeout=5)
    def my_probe(ctx):
        """Would catch a change."""
        calls.append(ctx)

    entry = scenario.get()["probe.my_probe"]
    assert entry.area == "probe" and entry.requires == ("torch>=2.1",) and entry.timeout == 5
    assert entry.doc == "Would catch a change." and calls == []


def test_same_id_from_two_modules_is_refused():
    def one(ctx):
        pass

    scenario.scenario(area="probe", name="dup")(one)
    two = lambda ctx: None  # noqa: E731
    two.__module__ = "elsewhere"
    two.__name__ = "dup"
    with pytest.raises(ValueError, match="registered twice"):
        scenario.scenario(area="probe")(two)


@pytest.mark.parametrize("area", ["Bad", "with space", "1x"])
def test_bad_area_is_refused(area):
    with pytest.raises(ValueError, match="lowercase identifier"):
        scenario.scenario(area=area)


def test_skip_and_fail_escape_except_exception():
    for raiser, kind in ((scenario.skip, scenario.Skipped), (scenario.fail, scenario.Failed)):
        with pytest.raises(kind):
            try:  # noqa: SIM105 - what a scenario might write
                raiser("why")
            except Exception:
                pass


def test_check_records_and_returns_outcome():
    ctx = Context("a.b")
    assert ctx.check("good", True, x=1) is True
    assert ctx.check("bad", 0, "zero", y=np.float32(2.5)) is False
    assert [c.name for c in ctx.failed_checks] == ["bad"]
    assert ctx.checks[1].to_dict() == {"name": "bad", "ok": False, "message": "zero", "values": {"y": 2.5}}


def test_record_twice_and_bad_kind_are_errors():
    ctx = Context("a.b")
    ctx.record("x", 1)
    with pytest.raises(ValueError, match="made twice"):
        ctx.record("x", 2)
    with pytest.raises(ValueError, match="record kind"):
        ctx.record("y", 1, kind="blob")
    with pytest.raises(ValueError, match="record precision"):
        ctx.record("z", np.zeros(2), precision="int8")


def test_a_records_precision_reaches_its_summary(tmp_path):
    from harness.worker.loop import _collect_records

    ctx = Context("a.b")
    ctx.record("loss", np.array([1.5, 0.5]), precision="bfloat16")
    ctx.record("plain", np.array([1.5]))
    summaries, problem = _collect_records(ctx, tmp_path / "a.npz")
    assert problem is None
    assert [(s["name"], s.get("precision")) for s in summaries] == [("loss", "bfloat16"), ("plain", None)]


def test_array_summary_hash_and_stats():
    summary, array = records.summarize("w", None, np.array([[1.0, -2.0], [np.nan, 4.0]], dtype=np.float32))
    assert summary["kind"] == "array" and summary["dtype"] == "float32" and summary["shape"] == [2, 2]
    assert (summary["min"], summary["max"], summary["mean"], summary["nonfinite"]) == (-2.0, 4.0, 1.0, 1)
    assert summary["value"] == [[1.0, -2.0], ["nan", 4.0]]
    assert array.dtype == np.float32
    other, _ = records.summarize("w", None, np.array([[1.0, -2.0], [np.nan, 4.5]], dtype=np.float32))
    assert other["sha256"] != summary["sha256"]
    same, _ = records.summarize("w", None, [[1.0, -2.0], [float("nan"), 4.0]])
    assert same["sha256"] != summary["sha256"]  # float64 list vs float32 array: dtype is part of the hash


def test_large_arrays_are_not_inlined():
    summary, _ = records.summarize("big", None, np.zeros(records.INLINE_LIMIT + 1))
    assert summary["value"] is None and summary["in_npz"] is True


def test_non_array_records():
    config, arr = records.summarize("cfg", None, {"b": (1, 2), "a": np.int64(3)})
    assert config["kind"] == "config" and config["value"] == {"b": [1, 2], "a": 3} and arr is None
    text, _ = records.summarize("t", None, "GlorotUniform")
    assert text["kind"] == "text"
    with pytest.raises(TypeError, match="must be numeric"):
        records.summarize("s", "array", np.array(["a", "b"]))


def test_uniform_bound_accepts_uniform_and_rejects_others():
    rng = np.random.default_rng(0)
    ctx = Context("t")
    assert checks.uniform_bound(ctx, "ok", rng.uniform(-0.3, 0.3, 2048), 0.3)
    assert not checks.uniform_bound(ctx, "too_wide", rng.uniform(-0.4, 0.4, 2048), 0.3)
    assert not checks.uniform_bound(ctx, "too_narrow", rng.uniform(-0.2, 0.2, 2048), 0.3)
    assert not checks.uniform_bound(ctx, "normal", np.clip(rng.normal(0, 0.05, 2048), -0.3, 0.3), 0.3)
    assert [c.name for c in ctx.failed_checks] == ["too_wide", "too_narrow", "normal"]
    assert "exceeds the bound" in ctx.failed_checks[0].message


def test_constant_and_allclose():
    ctx = Context("t")
    assert checks.constant(ctx, "zeros", np.zeros(5), 0.0)
    assert not checks.constant(ctx, "not_zeros", np.array([0.0, 1e-9]), 0.0)
    assert checks.allclose(ctx, "close", [1.0, 2.0], [1.0, 2.0 + 1e-9], rtol=1e-6)
    assert not checks.allclose(ctx, "far", [1.0, 2.1], [1.0, 2.0], rtol=1e-3)
    assert not checks.allclose(ctx, "shape", [1.0], [1.0, 2.0])
    assert not checks.allclose(ctx, "nan", [math.nan], [math.nan])
    assert ctx.failed_checks[1].values["max_abs_error"] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        checks.allclose(ctx, "neg", [1.0], [1.0], rtol=-1)


def test_duplicate_check_name_warns():
    ctx = Context("t")
    ctx.check("x", True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx.check("x", True)
    assert "made twice" in str(caught[0].message)


def test_normal_moments_detects_wrong_mean_or_std():
    rng = np.random.default_rng(1)
    ctx = Context("t")
    assert checks.normal_moments(ctx, "ok", rng.normal(0, 1, 4000), 0.0, 1.0)
    assert not checks.normal_moments(ctx, "shifted", rng.normal(0.2, 1, 4000), 0.0, 1.0)
    assert not checks.normal_moments(ctx, "wide", rng.normal(0, 1.3, 4000), 0.0, 1.0)
    assert not checks.normal_moments(ctx, "one", [1.0], 0.0, 1.0)
    assert [c.name for c in ctx.failed_checks] == ["shifted", "wide", "one"]


def test_orthogonal_accepts_q_and_rejects_random():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(64, 16)))
    ctx = Context("t")
    assert checks.orthogonal(ctx, "rows", q.T)
    assert checks.orthogonal(ctx, "cols", q)
    assert not checks.orthogonal(ctx, "random", rng.uniform(-0.3, 0.3, (16, 64)))
    assert not checks.orthogonal(ctx, "vector", np.ones(3))


def test_permutation_reports_lost_and_duplicated():
    ctx = Context("t")
    assert checks.permutation(ctx, "ok", [3, 1, 2, 0], range(4))
    assert not checks.permutation(ctx, "dup", [3, 1, 1, 0], range(4))
    assert not checks.permutation(ctx, "short", [3, 1, 0], range(4))
    assert "missing [2]" in ctx.failed_checks[0].message and "1 duplicated" in ctx.failed_checks[0].message


def test_batch_sizes():
    ctx = Context("t")
    assert checks.batch_sizes(ctx, "ok", [4, 4, 2], 10, 4)
    assert checks.batch_sizes(ctx, "drop", [4, 4], 10, 4, drop_last=True)
    assert not checks.batch_sizes(ctx, "kept_last", [4, 4, 2], 10, 4, drop_last=True)
    assert not checks.batch_sizes(ctx, "lost", [4, 2], 10, 4)


def test_statuses_are_the_protocols():
    from harness.worker import protocol

    assert scenario.STATUSES is protocol.STATUSES


def test_check_dict_is_exactly_what_the_results_document_stores():
    from harness.results import CheckResult as StoredCheck

    ctx = Context("t")
    ctx.check("c", False, "why", n=np.int64(3), x=float("nan"))
    as_dict = ctx.checks[0].to_dict()
    assert set(as_dict) == set(scenario.CheckRecord.__annotations__) == set(StoredCheck.model_fields)
    assert StoredCheck.model_validate(as_dict).model_dump() == {
        "name": "c",
        "ok": False,
        "message": "why",
        "values": {"n": 3, "x": "nan"},
    }


def test_context_reads_the_plans_context_and_refuses_unknown_keys(tmp_path):
    ctx = Context("relay.produce", None, {"environment": "tf2.21-keras3", "artifacts_dir": str(tmp_path)})
    assert (ctx.environment, ctx.artifacts_dir, ctx.relay_source) == ("tf2.21-keras3", tmp_path, None)
    bare = Context("a.b")
    assert (bare.environment, bare.artifacts_dir, bare.relay_source) == ("", None, None)
    with pytest.raises(ValueError, match="unknown context keys"):
        Context("a.b", None, {"artifact_dir": "typo"})


def test_to_numpy_is_one_conversion_for_records_and_checks():
    from harness.worker.arrays import to_numpy

    class FakeTorchTensor:  # .detach().cpu().numpy(), as torch spells it
        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return np.array([1.0, 2.0], dtype=np.float32)

    class FakeTfTensor:
        def numpy(self):
            return np.array([3.0], dtype=np.float32)

    assert to_numpy(FakeTorchTensor()).tolist() == [1.0, 2.0]
    assert to_numpy(FakeTfTensor(), np.float64).dtype == np.float64
    summary, _ = records.summarize("t", None, FakeTorchTensor())
    assert (summary["dtype"], summary["value"]) == ("float32", [1.0, 2.0])
    ctx = Context("t")
    assert checks.constant(ctx, "c", FakeTfTensor(), 3.0)
