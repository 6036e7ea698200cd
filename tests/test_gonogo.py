"""Every verdict path of the go/no-go policy, on crafted results."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from harness.gonogo import decide
from harness.matrix import WaiverSpec
from tests.factories import cell, env_doc, relay_row

W = np.linspace(-1, 1, 32, dtype=np.float32)
API = {"keras.optimizers.Adam": "ok", "keras.optimizers.experimental.AdamW": "ok", "keras.optimizers.SGD": "ok"}


def judge(
    tmp_path, base_cells, cand_cells, *, base_relay=None, cand_relay=None, waivers=None, state="complete", flaky=None
):
    docs = {
        "A": env_doc(tmp_path, "A", base_cells, relay=base_relay),
        "B": env_doc(tmp_path, "B", cand_cells, relay=cand_relay, state=state, flaky=flaky),
    }
    return decide(docs, dict.fromkeys(docs, tmp_path), "A", "B", waivers=waivers, today=datetime.date(2026, 11, 21))


def kinds(verdict, severity):
    return [r.kind for r in verdict.reasons if r.severity == severity]


def test_go_when_nothing_differs(tmp_path):
    cells = [cell("layer_init.x", w=W), cell("optimizer_api.map", api=("api_map", API))]
    verdict = judge(tmp_path, cells, cells)
    assert verdict.verdict == "GO" and verdict.exit_code == 0 and verdict.reasons == []


@pytest.mark.parametrize("status", ["fail", "error", "crash", "timeout"])
def test_regression_is_no_go(tmp_path, status):
    verdict = judge(tmp_path, [cell("a.x"), cell("a.y")], [cell("a.x", status, "boom"), cell("a.y")])
    assert verdict.verdict == "NO-GO" and verdict.exit_code == 1
    reason = verdict.reasons[0]
    assert reason.kind == "regression" and reason.scenario == "a.x" and status in reason.summary
    assert reason.reproduce == "COMPAT_RUN_ID=run ./cm -s A B -- -k 'a.x'"


def test_env_error_is_no_go(tmp_path):
    verdict = judge(tmp_path, [cell("a.x")], [cell("a.x", "env-error")], state="env-error")
    assert verdict.verdict == "NO-GO" and kinds(verdict, "no-go")[0] == "env-error"
    assert "could not be provisioned" in verdict.reasons[0].summary


def test_failing_on_both_is_not_a_regression(tmp_path):
    assert judge(tmp_path, [cell("a.x", "fail")], [cell("a.x", "fail")]).verdict == "GO"


def test_relay_load_error_is_no_go_when_the_baseline_loads_its_own(tmp_path):
    verdict = judge(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", max_abs_error=0.0)],
        cand_relay=[relay_row("A", "B", "load-error", error_class="TypeError", message="TypeError: no")],
    )
    assert verdict.verdict == "NO-GO" and kinds(verdict, "no-go") == ["relay"]
    assert "load-error" in verdict.reasons[0].summary and "relay-B --no-dependencies" in verdict.reasons[0].reproduce


def test_relay_drift_is_no_go_and_a_shared_failure_is_only_noted(tmp_path):
    drifted = judge(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded")],
        cand_relay=[relay_row("A", "B", "loaded-drifted", max_abs_error=0.5)],
    )
    assert drifted.verdict == "NO-GO" and drifted.reasons[0].numbers["max_abs_error"] == 0.5
    shared = judge(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "load-error")],
        cand_relay=[relay_row("A", "B", "load-error")],
    )
    assert shared.verdict == "GO" and kinds(shared, "info") == ["relay"]


def test_optimizer_state_lost_is_a_warning(tmp_path):
    verdict = judge(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", optimizer="kept")],
        cand_relay=[relay_row("A", "B", "optimizer-state-lost", optimizer="lost")],
    )
    assert verdict.verdict == "GO-WITH-WARNINGS" and verdict.exit_code == 0
    assert kinds(verdict, "warning") == ["optimizer-state-lost"]


def test_api_removed_and_moved_is_no_go_and_deprecation_warns(tmp_path):
    after = {
        "keras.optimizers.Adam": "deprecated: use X",
        "keras.optimizers.AdamW": "ok",
        "keras.optimizers.experimental.AdamW": "missing",
        "keras.optimizers.SGD": "error: TypeError: nope",
    }
    verdict = judge(tmp_path, [cell("o.map", api=("api_map", API))], [cell("o.map", api=("api_map", after))])
    assert verdict.verdict == "NO-GO"
    removed = next(r for r in verdict.reasons if r.kind == "api-removed")
    assert (
        "keras.optimizers.SGD" in removed.summary
        and "experimental.AdamW (now keras.optimizers.AdamW)" in removed.summary
    )
    assert kinds(verdict, "warning") == ["deprecation"]


def test_record_beyond_tolerance_is_no_go_within_is_a_warning(tmp_path):
    beyond = judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)])
    assert beyond.verdict == "NO-GO" and kinds(beyond, "no-go") == ["drift"]
    assert "max abs 0.01" in beyond.reasons[0].summary and beyond.reasons[0].record == "w"
    within = judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 1e-7)])
    assert within.verdict == "GO-WITH-WARNINGS" and kinds(within, "warning") == ["drift-within"]


def test_config_change_is_no_go(tmp_path):
    verdict = judge(
        tmp_path, [cell("l.x", init={"class_name": "GlorotUniform"})], [cell("l.x", init={"class_name": "HeNormal"})]
    )
    assert verdict.verdict == "NO-GO" and "'GlorotUniform' -> 'HeNormal'" in verdict.reasons[0].summary


def test_new_skip_is_a_warning(tmp_path):
    verdict = judge(tmp_path, [cell("a.x"), cell("a.y")], [cell("a.x", "skip", "requires torch"), cell("a.y")])
    assert verdict.verdict == "GO-WITH-WARNINGS" and kinds(verdict, "warning") == ["new-skip"]


def test_live_waiver_turns_no_go_into_waived(tmp_path):
    waiver = WaiverSpec(
        scenario="l.*", record="w", reason="new RNG in Keras 3", owner="ml-platform", expires=datetime.date(2027, 1, 31)
    )
    verdict = judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[waiver])
    assert verdict.verdict == "GO" and kinds(verdict, "waived") == ["drift"]
    assert verdict.reasons[0].waiver["owner"] == "ml-platform" and "waived by ml-platform until 2027-01-31" in (
        verdict.reasons[0].summary
    )


def test_expired_waiver_counts_as_absent_and_says_so(tmp_path):
    waiver = WaiverSpec(scenario="l.x", reason="old", owner="bob", expires=datetime.date(2026, 1, 1))
    verdict = judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[waiver])
    assert verdict.verdict == "NO-GO"
    assert verdict.reasons[0].waiver["expired"] is True and "expired 2026-01-01" in verdict.reasons[0].summary


def test_waiver_for_another_candidate_does_not_apply(tmp_path):
    waiver = WaiverSpec(scenario="*", candidate="C", reason="r", owner="o", expires=datetime.date(2030, 1, 1))
    assert judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[waiver]).verdict == "NO-GO"


def test_flaky_record_is_never_drift(tmp_path):
    verdict = judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], flaky=["l.x::w"])
    assert verdict.verdict == "GO" and kinds(verdict, "info") == ["flaky"]


def test_candidate_that_ran_nothing_is_no_go(tmp_path):
    verdict = judge(tmp_path, [cell("a.x")], [cell("a.x", "skip", "requires keras")])
    assert verdict.verdict == "NO-GO" and "incomplete" in kinds(verdict, "no-go")


def test_verdict_json_is_schema_valid(tmp_path):
    from harness.report import verdict_json

    verdict = judge(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)])
    assert '"verdict": "NO-GO"' in verdict_json(verdict)
