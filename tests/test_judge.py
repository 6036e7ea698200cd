"""The go/no-go policy on crafted results: every verdict path, and a regression test per finding of the verdict issue.

Each test builds two environments' documents (``A`` the baseline, ``B`` the candidate), measures the path into a
ledger and judges it, exactly as ``gonogo`` does, so grouping, direction and waivers are tested end to end.
"""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from harness.drift import load_arrays
from harness.judge import judge
from harness.ledger import measure_path
from harness.matrix import WaiverSpec
from harness.results import WarningEntry
from tests.factories import cell, env_doc, relay_row

W = np.linspace(-1, 1, 32, dtype=np.float32)
API = {"keras.optimizers.Adam": "ok", "keras.optimizers.experimental.AdamW": "ok", "keras.optimizers.SGD": "ok"}
TODAY = datetime.date(2026, 11, 21)


def verdict_of(
    tmp_path,
    base_cells,
    cand_cells,
    *,
    base_relay=None,
    cand_relay=None,
    waivers=None,
    state="complete",
    flaky=None,
    expected=(),
):
    base = env_doc(tmp_path, "A", base_cells, relay=base_relay)
    cand = env_doc(tmp_path, "B", cand_cells, relay=cand_relay, state=state, flaky=flaky)
    arrays = (load_arrays(tmp_path, base), load_arrays(tmp_path, cand))
    ledger = measure_path(base, cand, arrays, expected=expected)
    return judge(ledger, waivers=waivers, today=TODAY)


def of(verdict, severity):
    return [r.kind for r in verdict.reasons if r.severity == severity]


def test_go_when_nothing_differs(tmp_path):
    cells = [cell("layer_init.x", w=W), cell("optimizer_api.map", api=("api_map", API))]
    verdict = verdict_of(tmp_path, cells, cells)
    assert verdict.verdict == "GO" and verdict.exit_code == 0 and verdict.reasons == [] and verdict.changed == []


@pytest.mark.parametrize("status", ["fail", "error", "crash", "timeout"])
def test_regression_is_no_go_with_the_full_error(tmp_path, status):
    message = "TypeError: bad keyword\n  second line of the message"
    verdict = verdict_of(tmp_path, [cell("a.x"), cell("a.y")], [cell("a.x", status, message), cell("a.y")])
    assert verdict.verdict == "NO-GO" and verdict.exit_code == 1
    (reason,) = verdict.reasons
    assert reason.kind == "regression" and reason.scenarios == ["a.x"] and status in reason.summary
    assert reason.error == message  # whole message, both lines
    assert reason.reproduce == "COMPAT_RUN_ID=run ./cm -s A B -- -k a.x"


def test_a_regressed_cell_is_one_reason_with_its_records_folded_in(tmp_path):
    base = [cell("a.x", w=W, v=W, cfg={"k": 1})]
    verdict = verdict_of(tmp_path, base, [cell("a.x", "crash", "worker killed by SIGSEGV")])
    assert [r.kind for r in verdict.reasons] == ["regression"]
    assert verdict.reasons[0].count == 3  # the three records it lost, not three more reasons


def test_env_error_is_no_go_with_the_resolver_message(tmp_path):
    verdict = verdict_of(tmp_path, [cell("a.x")], [cell("a.x", "env-error")], state="env-error")
    assert verdict.verdict == "NO-GO" and of(verdict, "no-go") == ["env-error"]
    assert "no version of keras==9.9" in verdict.reasons[0].error and verdict.reasons[0].reproduce == "./cm -s B"


def test_failing_on_both_is_not_a_regression(tmp_path):
    assert verdict_of(tmp_path, [cell("a.x", "fail")], [cell("a.x", "fail")]).verdict == "GO"


def test_fixed_in_b_never_blocks(tmp_path):
    verdict = verdict_of(tmp_path, [cell("a.x", "error", "boom")], [cell("a.x")])
    assert verdict.verdict == "GO" and of(verdict, "fixed") == ["fixed"]


def test_relay_load_error_blocks_when_a_loads_its_own_and_names_the_reproduce(tmp_path):
    verdict = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", max_abs_error=0.0)],
        cand_relay=[relay_row("A", "B", "load-error", error_class="TypeError", message="no\nmore")],
    )
    assert verdict.verdict == "NO-GO" and of(verdict, "no-go") == ["relay"]
    reason = verdict.reasons[0]
    assert reason.error == "TypeError: no\nmore" and "relay-B --no-dependencies" in reason.reproduce


def test_relay_models_failing_alike_are_one_reason(tmp_path):
    models = ("sequential", "functional", "subclassed")
    rows = [relay_row("A", "B", "load-error", error_class="ValueError", message="x", model=m) for m in models]
    verdict = verdict_of(tmp_path, [cell("a.x")], [cell("a.x")], cand_relay=rows)
    (reason,) = verdict.reasons
    assert reason.count == 3 and reason.records == [f"relay:keras:keras::{m}" for m in sorted(models)]


def test_relay_fallback_only_blocks_and_names_the_fallback(tmp_path):
    verdict = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded")],
        cand_relay=[relay_row("A", "B", "fallback-only", how="compile=False", error_class="TypeError", message="m")],
    )
    assert verdict.verdict == "NO-GO" and "fallback-only (compile=False)" in verdict.reasons[0].summary


def test_a_relay_drift_says_what_drifted_with_its_numbers(tmp_path):
    layout = "layout-changed: weight 0 (kernel) is [8, 4] float32, the producer had [4, 8] float32"
    rows = [
        relay_row("A", "B", "loaded-drifted", model="recurrent", max_abs_error=0.0, weights=layout),
        relay_row("A", "B", "loaded-drifted", model="convolutional", max_abs_error=0.25,
                  training_max_abs_error=0.5, continuation_max_abs_error=0.0),
    ]  # fmt: skip
    base = [relay_row("A", "A", "loaded", model=m) for m in ("recurrent", "convolutional")]
    verdict = verdict_of(tmp_path, [cell("a.x")], [cell("a.x")], base_relay=base, cand_relay=rows)
    (reason,) = verdict.reasons
    assert reason.severity == "no-go" and reason.count == 2
    assert reason.summary.endswith(f"; weights {layout}")  # the layout is the cause to look at first
    assert reason.numbers == {"max_abs_error": 0.25, "training_max_abs_error": 0.5}  # a zero continuation is no news
    only_training = [relay_row("A", "B", "loaded-drifted", model="convolutional", max_abs_error=0.0,
                               training_max_abs_error=0.5)]  # fmt: skip
    verdict = verdict_of(tmp_path, [cell("a.x")], [cell("a.x")], base_relay=base[1:], cand_relay=only_training)
    assert verdict.reasons[0].summary.endswith("; predictions in training mode differ too")


def test_a_waiver_names_relay_artifacts_like_records(tmp_path):
    waiver = WaiverSpec(
        scenario="relay:keras:*", record="seq*", reason="r", owner="o", expires=datetime.date(2030, 1, 1)
    )
    rows = [relay_row("A", "B", "load-error", error_class="ValueError", message="x")]
    verdict = verdict_of(tmp_path, [cell("a.x")], [cell("a.x")], cand_relay=rows, waivers=[waiver])
    assert verdict.verdict == "GO" and of(verdict, "waived") == ["relay"]


def test_relay_drift_blocks_and_a_shared_failure_is_only_noted(tmp_path):
    drifted = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded")],
        cand_relay=[relay_row("A", "B", "loaded-drifted", max_abs_error=0.5)],
    )
    assert drifted.verdict == "NO-GO" and drifted.reasons[0].numbers["max_abs_error"] == 0.5
    shared = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "load-error")],
        cand_relay=[relay_row("A", "B", "load-error")],
    )
    assert shared.verdict == "GO" and of(shared, "info") == ["shared-failure"]


def test_optimizer_state_lost_on_b_warns_and_lost_on_a_kept_on_b_is_fixed(tmp_path):
    worse = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", optimizer="kept")],
        cand_relay=[relay_row("A", "B", "optimizer-state-lost", optimizer="lost")],
    )
    assert worse.verdict == "GO-WITH-WARNINGS" and of(worse, "warning") == ["optimizer-state-lost"]
    better = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "optimizer-state-lost", optimizer="lost")],
        cand_relay=[relay_row("A", "B", "loaded", optimizer="kept")],
    )
    assert better.verdict == "GO" and of(better, "fixed") == ["fixed"]


def test_api_removed_and_moved_blocks_and_deprecation_warns(tmp_path):
    after = {
        "keras.optimizers.Adam": "deprecated: use X",
        "keras.optimizers.AdamW": "ok",
        "keras.optimizers.experimental.AdamW": "missing",
        "keras.optimizers.SGD": "error: TypeError: nope",
    }
    verdict = verdict_of(tmp_path, [cell("o.map", api=("api_map", API))], [cell("o.map", api=("api_map", after))])
    assert verdict.verdict == "NO-GO"
    removed = next(r for r in verdict.reasons if r.kind == "api-removed")
    assert "keras.optimizers.SGD" in removed.summary and "experimental.AdamW (now keras.optimizers.AdamW)" in (
        removed.summary
    )
    assert removed.numbers["apis_gone"] == 2 and removed.count == 1 and of(verdict, "warning") == ["deprecation"]


def test_record_beyond_tolerance_blocks_within_warns(tmp_path):
    beyond = verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)])
    assert beyond.verdict == "NO-GO" and of(beyond, "no-go") == ["drift"]
    assert "max abs 0.01" in beyond.reasons[0].summary and beyond.reasons[0].records == ["l.x::w"]
    assert beyond.changed == ["l.x"]
    within = verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 1e-7)])
    assert within.verdict == "GO-WITH-WARNINGS" and of(within, "warning") == ["drift-within"]


def test_one_scenarios_blocking_records_are_one_reason(tmp_path):
    """Keras 3's MHA: four kernels and the fan rules change together; that is one cause, not five lines."""
    base = cell("l.mha", q=W, k=W, v=W, o=W, fans={"query": "nd", "key": "nd"})
    cand = cell("l.mha", q=W + 1, k=W + 1, v=W + 1, o=W + 1, fans={"query": "2d", "key": "2d"})
    verdict = verdict_of(tmp_path, [base], [cand])
    (reason,) = verdict.reasons
    assert reason.kind == "drift" and reason.count == 5 and "'nd' -> '2d'" in reason.summary


def test_changed_value_of_a_shared_config_key_blocks(tmp_path):
    base, cand = {"class_name": "Glorot", "config": {"seed": 1}}, {"class_name": "Glorot", "config": {"seed": 2}}
    verdict = verdict_of(tmp_path, [cell("l.x", init=base)], [cell("l.x", init=cand)])
    assert verdict.verdict == "NO-GO" and "seed: 1 -> 2" in verdict.reasons[0].summary


def test_config_keys_only_added_warn_once_across_scenarios(tmp_path):
    """Keras adding input_axes/output_axes to every initializer config is one warning, not five blocking lines."""
    before = {"class_name": "GlorotUniform", "config": {"seed": None}}
    after = {"class_name": "GlorotUniform", "config": {"seed": None, "input_axes": None, "output_axes": None}}
    names = ["l.dense", "l.conv", "l.gru", "l.lstm", "l.mha"]
    verdict = verdict_of(
        tmp_path, [cell(n, init=before, w=W) for n in names], [cell(n, init=after, w=W) for n in names]
    )
    assert verdict.verdict == "GO-WITH-WARNINGS"
    (reason,) = verdict.reasons
    assert reason.kind == "config-keys" and reason.count == 5 and sorted(reason.scenarios) == sorted(names)
    assert "+input_axes" in reason.summary and reason.reproduce.count("-k ") == 5


def test_class_renamed_with_bitwise_equal_values_warns(tmp_path):
    before = [cell("l.gru", init={"class_name": "OrthogonalInitializer"}, w=W)]
    after = [cell("l.gru", init={"class_name": "Orthogonal"}, w=W)]
    verdict = verdict_of(tmp_path, before, after)
    assert verdict.verdict == "GO-WITH-WARNINGS" and of(verdict, "warning") == ["renamed"]
    renamed_and_drifted = verdict_of(tmp_path, before, [cell("l.gru", init={"class_name": "Orthogonal"}, w=W + 1)])
    assert renamed_and_drifted.verdict == "NO-GO"


def test_new_skip_is_a_warning(tmp_path):
    verdict = verdict_of(tmp_path, [cell("a.x"), cell("a.y")], [cell("a.x", "skip", "requires torch"), cell("a.y")])
    assert verdict.verdict == "GO-WITH-WARNINGS" and of(verdict, "warning") == ["new-skip"]


def test_missing_cells_are_incomplete_never_go(tmp_path):
    verdict = verdict_of(tmp_path, [cell("a.x"), cell("a.y")], [cell("a.x")], expected=("a.x", "a.y"))
    assert verdict.verdict == "INCOMPLETE" and verdict.exit_code == 1 and verdict.missing == {"B": ["a.y"]}


def test_only_framework_warnings_count_as_deprecations(tmp_path):
    base, cand = cell("a.x"), cell("a.x")
    cand[0].warnings = [
        WarningEntry(source="warnings", category="DeprecationWarning", message="stdlib thing", module="random"),
        WarningEntry(
            source="logging", category="WARNING", message="legacy h5", module="keras.src.saving", framework=True
        ),
    ]
    verdict = verdict_of(tmp_path, [base], [cand])
    (reason,) = verdict.reasons
    assert reason.kind == "deprecation" and "legacy h5" in reason.summary and "stdlib" not in reason.summary


def test_live_waiver_turns_no_go_into_waived(tmp_path):
    waiver = WaiverSpec(
        scenario="l.*", record="w", reason="new RNG", owner="ml-platform", expires=datetime.date(2027, 1, 31)
    )
    verdict = verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[waiver])
    assert verdict.verdict == "GO" and of(verdict, "waived") == ["drift"]
    assert verdict.reasons[0].waiver["owner"] == "ml-platform"
    assert "waived by ml-platform until 2027-01-31" in verdict.reasons[0].summary


def test_expired_waiver_counts_as_absent_and_says_so(tmp_path):
    waiver = WaiverSpec(scenario="l.x", reason="old", owner="bob", expires=datetime.date(2026, 1, 1))
    verdict = verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[waiver])
    assert verdict.verdict == "NO-GO"
    assert verdict.reasons[0].waiver["expired"] is True and "expired 2026-01-01" in verdict.reasons[0].summary


def test_waiver_for_another_candidate_or_another_record_does_not_apply(tmp_path):
    other_env = WaiverSpec(scenario="*", candidate="C", reason="r", owner="o", expires=datetime.date(2030, 1, 1))
    other_record = WaiverSpec(scenario="l.x", record="v", reason="r", owner="o", expires=datetime.date(2030, 1, 1))
    for waiver in (other_env, other_record):
        assert verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[waiver]).verdict == "NO-GO"


def test_flaky_record_is_never_drift(tmp_path):
    verdict = verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], flaky=["l.x::w"])
    assert verdict.verdict == "GO" and of(verdict, "info") == ["flaky"]


def test_judging_is_pure(tmp_path):
    base = env_doc(tmp_path, "A", [cell("l.x", w=W)])
    cand = env_doc(tmp_path, "B", [cell("l.x", w=W + 0.01)])
    ledger = measure_path(base, cand, (load_arrays(tmp_path, base), load_arrays(tmp_path, cand)))
    first, second = judge(ledger, today=TODAY), judge(ledger, today=TODAY)
    assert first.model_dump(exclude={"decided_at"}) == second.model_dump(exclude={"decided_at"})


def test_a_relay_error_names_its_class_once(tmp_path):
    row = relay_row("A", "B", "load-error", error_class="ValueError", message="ValueError: File format not supported")
    verdict = verdict_of(tmp_path, [cell("a.x")], [cell("a.x")], cand_relay=[row])
    assert verdict.reasons[0].error == "ValueError: File format not supported"


def test_the_same_removals_under_keras_and_tf_keras_are_one_reason(tmp_path):
    before_k = {"keras.optimizers.experimental.SGD": "ok", "keras.optimizers.SGD": "ok"}
    before_tf = {"tf.keras.optimizers.experimental.SGD": "ok", "tf.keras.optimizers.SGD": "ok"}
    after_k = {**before_k, "keras.optimizers.experimental.SGD": "missing"}
    after_tf = {**before_tf, "tf.keras.optimizers.experimental.SGD": "missing"}
    base = [cell("o.keras_map", api=("api_map", before_k)), cell("o.tf_map", api=("api_map", before_tf))]
    cand = [cell("o.keras_map", api=("api_map", after_k)), cell("o.tf_map", api=("api_map", after_tf))]
    (reason,) = verdict_of(tmp_path, base, cand).reasons
    assert reason.kind == "api-removed" and reason.scenarios == ["o.keras_map", "o.tf_map"] and reason.count == 2


def test_only_new_deprecations_warn_not_notes_nor_a_category_change(tmp_path):
    def warned(*entries):
        c = cell("a.x")
        c[0].warnings = [WarningEntry(source="warnings", category=k, message=m, framework=True) for k, m in entries]
        return c

    retrace = "5 of the last 8 calls to <function f at 0x7f839ec0c040> triggered tf.function retracing"
    base = warned(("DeprecationWarning", "`torch.jit.script` is deprecated"))
    cand = warned(
        ("FutureWarning", "`torch.jit.script` is deprecated"),  # same warning, louder category: not new
        ("WARNING", retrace),  # new, but not a deprecation
        ("UserWarning", "Skipping variable loading for optimizer 'adam_1'"),  # new, not a deprecation
    )
    assert verdict_of(tmp_path, [base], [cand]).verdict == "GO"
    again = warned(
        ("WARNING", retrace.replace("0x7f839ec0c040", "0x7f839eb1ed40")), ("FutureWarning", "X is deprecated")
    )
    (reason,) = verdict_of(tmp_path, [warned(("WARNING", retrace))], [again]).reasons
    assert reason.kind == "deprecation" and "X is deprecated" in reason.summary


def test_a_live_waiver_wins_over_an_expired_one_listed_first(tmp_path):
    old = WaiverSpec(scenario="l.x", reason="old", owner="bob", expires=datetime.date(2026, 1, 1))
    renewed = WaiverSpec(scenario="l.x", reason="renewed", owner="bob", expires=datetime.date(2027, 6, 1))
    verdict = verdict_of(tmp_path, [cell("l.x", w=W)], [cell("l.x", w=W + 0.01)], waivers=[old, renewed])
    assert verdict.verdict == "GO" and verdict.reasons[0].waiver["reason"] == "renewed"


@pytest.mark.parametrize(
    ("before", "after", "severity", "kind"),
    [
        ("skip", "fail", "warning", "new-failure"),  # nothing on A used it: breaks no existing code
        ("fail", "crash", "info", "shared-failure"),  # broken on both: not the upgrade's doing
        ("error", "error", "info", "shared-failure"),
    ],
)
def test_cells_broken_on_b_that_did_not_pass_on_a(tmp_path, before, after, severity, kind):
    verdict = verdict_of(tmp_path, [cell("a.x", before, "m")], [cell("a.x", after, "boom")])
    assert [(r.severity, r.kind) for r in verdict.reasons] == [(severity, kind)]
    assert verdict.verdict != "NO-GO" and verdict.reasons[0].error == "boom"


def test_a_fixed_cell_is_one_reason_its_changed_values_never_block(tmp_path):
    verdict = verdict_of(tmp_path, [cell("a.x", "fail", "old bug", w=W)], [cell("a.x", w=W + 1)])
    assert verdict.verdict == "GO" and [r.kind for r in verdict.reasons] == ["fixed"]
    assert verdict.reasons[0].records == ["a.x::w"]


def test_reproduce_commands_quote_what_came_from_files(tmp_path):
    base = env_doc(tmp_path, "A", [cell("a.x")])
    cand = env_doc(tmp_path, "B", [cell("a.x", "fail", "m")], run_id="r; rm -rf ~")
    reason = judge(measure_path(base, cand, ({}, {})), today=TODAY).reasons[0]
    assert reason.reproduce.startswith("COMPAT_RUN_ID='r; rm -rf ~' ./cm -s A B --")


def test_a_relay_break_that_b_has_with_its_own_files_is_not_a_second_cause(tmp_path):
    """Keras 3's .h5 'mse' bug: B fails A's .h5 and its own alike; the save_load regression carries it, once."""
    fallback = {"error_class": "ValueError", "message": "mse", "how": "compile=False"}
    verdict = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded")],
        cand_relay=[relay_row("A", "B", "fallback-only", **fallback), relay_row("B", "B", "fallback-only", **fallback)],
    )
    assert [(r.severity, r.kind) for r in verdict.reasons] == [("info", "own-failure")]


def test_deprecations_of_one_api_family_are_one_reason(tmp_path):
    def warned(*messages):
        c = cell("a.x")
        c[0].warnings = [
            WarningEntry(source="warnings", category="DeprecationWarning", message=m, framework=True) for m in messages
        ]
        return c

    jit = [f"`torch.jit.{api}` is deprecated. Please switch to `torch.export`." for api in ("script", "save", "load")]
    (reason,) = verdict_of(tmp_path, [cell("a.x")], [warned(*jit)]).reasons
    assert reason.kind == "deprecation" and all(f"torch.jit.{api}" in reason.summary for api in ("script", "save"))


def _call(outcome, **extra):
    """A call record as ``scenarios._api_probe.call_outcome`` writes it."""
    return ("call", {"keyword": "k", "outcome": outcome, **extra})


@pytest.mark.parametrize(
    ("before", "after", "severity", "kind"),
    [
        ("accepted", "rejected", "no-go", "call-broken"),  # the user's line raises on B
        ("warned", "ignored", "no-go", "call-broken"),  # the line runs on B but its value is dropped
        ("rejected", "accepted", "fixed", "call-fixed"),  # B accepts what A refused: never blocks
        ("accepted", "deprecated", "warning", "call-changed"),
    ],
)
def test_a_call_is_judged_by_how_its_outcome_moved(tmp_path, before, after, severity, kind):
    error = {"error": "TypeError: unexpected keyword 'k'"} if after == "rejected" else {}
    verdict = verdict_of(
        tmp_path, [cell("a.calls", **{"f(k=)": _call(before)})], [cell("a.calls", **{"f(k=)": _call(after, **error)})]
    )
    (reason,) = verdict.reasons
    assert (reason.severity, reason.kind) == (severity, kind)
    assert f"f(k=): {before} -> {after}" in reason.summary and reason.records == ["a.calls::f(k=)"]
    if error:
        assert "unexpected keyword 'k'" in reason.summary


def test_a_call_rejected_on_both_with_other_words_is_no_line(tmp_path):
    """Keras 3 rejecting ``lr=`` with a reworded message is nothing a team can act on."""
    before = cell("a.calls", **{"SGD(lr=)": _call("rejected", error="ValueError: lr is gone")})
    after = cell("a.calls", **{"SGD(lr=)": _call("rejected", error="ValueError: Argument lr is not supported")})
    verdict = verdict_of(tmp_path, [before], [after])
    assert verdict.verdict == "GO" and verdict.reasons == []


def test_calls_of_one_scenario_breaking_together_are_one_reason(tmp_path):
    names = ["SGD(lr=)", "SGD(decay=)", "Embedding(input_length=)"]
    verdict = verdict_of(
        tmp_path,
        [cell("a.calls", **{n: _call("accepted") for n in names})],
        [cell("a.calls", **{n: _call("rejected", error="ValueError: no") for n in names})],
    )
    (reason,) = verdict.reasons
    assert (
        reason.kind == "call-broken"
        and reason.count == 3
        and reason.numbers["transitions"] == {"accepted -> rejected": 3}
    )


def test_a_new_warning_warns_and_a_reworded_one_is_only_noted(tmp_path):
    amp = "FutureWarning: torch.cuda.amp.autocast(args...) is deprecated"
    base = {"autocast": [], "scaler": ["UserWarning: CUDA is not available"]}
    cand = {"autocast": [amp], "scaler": ["UserWarning: CUDA not available, disabling"]}
    verdict = verdict_of(
        tmp_path, [cell("m.amp", warnings=("warnings", base))], [cell("m.amp", warnings=("warnings", cand))]
    )
    assert verdict.verdict == "GO-WITH-WARNINGS"
    assert [(r.severity, r.kind) for r in verdict.reasons] == [("warning", "new-warning"), ("info", "warning-reworded")]
    assert amp in verdict.reasons[0].summary and "warnings[autocast]" in verdict.reasons[0].summary
    assert "disabling" in verdict.reasons[1].summary and "autocast" not in verdict.reasons[1].summary
    same = verdict_of(
        tmp_path, [cell("m.amp", warnings=("warnings", base))], [cell("m.amp", warnings=("warnings", base))]
    )
    assert same.verdict == "GO" and same.reasons == []


def test_outcomes_block_when_a_working_label_fails_and_are_fixed_the_other_way(tmp_path):
    """Keras 3.3 refused ModelCheckpoint('.h5') and 3.15 saves it again: fixed, never NO-GO; the reverse blocks."""
    old = {"keras": "saved", "h5": "rejected: ValueError", "ckpt": "rejected: ValueError"}
    new = {"keras": "saved", "h5": "saved", "ckpt": "rejected: TypeError"}
    fixed = verdict_of(
        tmp_path, [cell("c.ckpt", outcomes=("outcomes", old))], [cell("c.ckpt", outcomes=("outcomes", new))]
    )
    assert fixed.verdict == "GO" and [(r.severity, r.kind) for r in fixed.reasons] == [("fixed", "call-fixed")]
    assert "outcomes[h5]: rejected: ValueError -> saved" in fixed.reasons[0].summary
    assert "ckpt" not in fixed.reasons[0].summary  # broken on both sides, with another error: no line
    broken = verdict_of(
        tmp_path, [cell("c.ckpt", outcomes=("outcomes", new))], [cell("c.ckpt", outcomes=("outcomes", old))]
    )
    assert broken.verdict == "NO-GO" and [r.kind for r in broken.reasons] == ["call-broken"]
    assert "outcomes[h5]: saved -> rejected: ValueError" in broken.reasons[0].summary


def test_an_outcome_that_works_on_both_but_differently_blocks(tmp_path):
    """Plain call first: ``loaded`` -> ``loaded-without-compile`` is a fallback, a finding, not a rescue."""
    verdict = verdict_of(
        tmp_path,
        [cell("s.h5", outcomes=("outcomes", {"sequential": "loaded", "functional": "loaded"}))],
        [cell("s.h5", outcomes=("outcomes", {"sequential": "loaded-without-compile", "functional": "loaded"}))],
    )
    assert verdict.verdict == "NO-GO" and "sequential]: loaded -> loaded-without-compile" in verdict.reasons[0].summary


def test_a_record_computed_in_half_precision_is_compared_at_that_precision(tmp_path):
    """A mixed_float16 loss kept as float64 differs by 4e-5 between Keras 2 and 3: float16 noise, not a change."""
    from harness.worker.records import summarize

    losses = np.array([1.1, 0.9], dtype=np.float64)
    shifted = losses * (1 + 4.3e-5)
    as_stored = verdict_of(tmp_path, [cell("m.p", loss=losses)], [cell("m.p", loss=shifted)])
    assert as_stored.verdict == "NO-GO"  # float64's tolerance (1e-7) is far tighter than what float16 computes
    base, cand = cell("m.p", loss=losses), cell("m.p", loss=shifted)
    for scenario_cell in (base, cand):
        scenario_cell[0].records[0].precision = "float16"
    at_precision = verdict_of(tmp_path, [base], [cand])
    assert at_precision.verdict == "GO-WITH-WARNINGS" and of(at_precision, "warning") == ["drift-within"]
    assert "rtol 0.001" in at_precision.reasons[0].summary
    assert summarize("loss", None, losses)[0]["dtype"] == "float64"


def test_serving_signatures_read_differently_from_a_savedmodel_block(tmp_path):
    """A serving client built against what A's SavedModel offers sends ``inputs`` to a signature B reads as
    ``keras_tensor``: the load and predictions agree, the client still breaks."""
    ours = "serving_default(inputs [None, 4] float32) -> output_0"
    theirs = "serving_default(keras_tensor [None, 4] float32) -> output_0"
    rows = {m: dict(model=m, format="export", max_abs_error=0.0) for m in ("functional", "sequential")}
    verdict = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", signatures=ours, **r) for r in rows.values()],
        cand_relay=[relay_row("A", "B", "loaded", signatures=theirs, **r) for r in rows.values()],
    )
    assert verdict.verdict == "NO-GO"
    (reason,) = verdict.reasons
    assert reason.kind == "relay" and reason.records == [
        "relay:keras:export::functional",
        "relay:keras:export::sequential",
    ]
    assert f"A reads {ours}; B reads {theirs}" in reason.summary
    unchanged = verdict_of(
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", signatures=ours, **rows["functional"])],
        cand_relay=[relay_row("A", "B", "loaded", signatures=ours, **rows["functional"])],
    )
    assert unchanged.verdict == "GO"
    keras_models = verdict_of(  # a Keras model read back has no signatures: never compared
        tmp_path,
        [cell("a.x")],
        [cell("a.x")],
        base_relay=[relay_row("A", "A", "loaded", signatures=ours, **rows["functional"])],
        cand_relay=[relay_row("A", "B", "loaded", **rows["functional"])],
    )
    assert keras_models.verdict == "GO"


def test_an_outcome_record_not_named_load_keeps_its_scenarios_other_drift_apart(tmp_path):
    """A checkpoint path refused and a kernel drawn differently in one scenario are two things to fix."""
    base = cell("c.ckpt", outcomes=("outcomes", {"h5": "saved"}), w=W)
    cand = cell("c.ckpt", outcomes=("outcomes", {"h5": "rejected: ValueError"}), w=W + 1)
    verdict = verdict_of(tmp_path, [base], [cand])
    assert sorted(r.kind for r in verdict.reasons if r.severity == "no-go") == ["call-broken", "drift"]
