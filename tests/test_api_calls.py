"""The pure logic of keyword probes (scenarios/_api_probe.py) and of scenarios/api_calls.py, offline.

The messages below are the frameworks' own wording, as measured in the pinned environments (Keras 2.15, Keras
3.15, torch 2.5 and 2.13); the calls are plain Python functions, so what is tested is the classification, not a
framework's behaviour (the integration test shows that, for real).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest

from harness.worker.scenario import Context, discover
from scenarios._api_probe import (
    OUTCOMES,
    KeywordCall,
    call_outcome,
    classify_outcome,
    config_difference,
    new_keyword,
    relevant_warnings,
    rounded,
    same_value,
    short_text,
)
from scenarios.api_calls import _expected_losses, run_calls

KERAS2_LR = (
    "`lr` is deprecated in Keras optimizer, please use `learning_rate` or use the legacy optimizer, "
    "e.g.,tf.keras.optimizers.legacy.SGD."
)
TORCH_SIZE_AVERAGE = "size_average and reduce args will be deprecated, please use reduction='sum' instead."
TORCH_VERBOSE = "The verbose parameter is deprecated. Please use get_last_lr() to access the learning rate."
KERAS2_EPSILON = "`epsilon` argument is deprecated and will be removed, use `min_delta` instead."


def _warning(message: str, category: str = "UserWarning", framework: bool = True) -> dict[str, Any]:
    return {"source": "warnings", "category": category, "message": message, "module": "m", "framework": framework}


@pytest.mark.parametrize(
    ("keyword", "message", "expected"),
    [
        ("lr", KERAS2_LR, "learning_rate"),
        ("size_average", TORCH_SIZE_AVERAGE, "reduction"),
        ("epsilon", KERAS2_EPSILON, "min_delta"),
        ("verbose", TORCH_VERBOSE, None),  # get_last_lr() is a method to call, not a keyword
        ("input_length", "Argument `input_length` is deprecated. Just remove it.", None),
        ("decay", "Argument `decay` is no longer supported and will be ignored.", None),
        ("x", "please use the new API instead", None),  # "the" is no keyword
        ("x", "use x instead", None),  # the keyword itself is not its own new name
    ],
)
def test_new_keyword_reads_the_replacement_a_message_names(keyword, message, expected):
    assert new_keyword(keyword, message) == expected


def test_relevant_warnings_are_those_naming_the_keyword_or_a_framework_deprecation():
    items = [
        _warning(KERAS2_LR, "WARNING"),
        _warning("Do not pass an `input_shape`/`input_dim` argument to a layer.", "UserWarning"),
        # the standard library's own deprecation, raised inside a Keras 2 call: not about any keyword
        _warning("non-integer arguments to randrange() have been deprecated", "DeprecationWarning", framework=False),
        _warning("something else is deprecated", "FutureWarning"),
        _warning("the learning rate is lower than usual"),  # "lr" only as part of no word: not named
    ]
    assert relevant_warnings("lr", items) == [KERAS2_LR, "something else is deprecated"]
    assert relevant_warnings("input_dim", items) == [
        "Do not pass an `input_shape`/`input_dim` argument to a layer.",
        "something else is deprecated",
    ]


@pytest.mark.parametrize(
    ("error", "took_effect", "warned", "expected"),
    [
        ("ValueError: Argument(s) not recognized: {'lr': 0.1}", None, [], ("rejected", None)),
        ("TypeError: boom", True, [KERAS2_LR], ("rejected", None)),  # an error wins over anything said
        (None, False, [KERAS2_LR], ("ignored", "learning_rate")),  # Keras 2.15 SGD(lr=): logged, then dropped
        (None, False, [], ("ignored", None)),  # Keras 3 ReduceLROnPlateau(epsilon=): silently dropped
        (None, True, [KERAS2_EPSILON], ("renamed", "min_delta")),
        (None, True, [TORCH_VERBOSE], ("deprecated", None)),
        (None, True, ["Do not pass an `input_dim` argument to a layer."], ("warned", None)),
        (None, True, [], ("accepted", None)),
        (None, None, [], ("accepted", None)),  # nothing to check: bound without a word
    ],
)
def test_classify_outcome(error, took_effect, warned, expected):
    keyword = "lr" if warned == [KERAS2_LR] else ("epsilon" if warned == [KERAS2_EPSILON] else "verbose")
    outcome = classify_outcome(keyword, error, took_effect, warned)
    assert outcome == expected and outcome[0] in OUTCOMES


def test_same_value_is_float32_tolerant_and_strict_on_kinds():
    assert same_value(0.12300000339746475, 0.123)  # float32 storage of 0.123
    assert not same_value(0.01, 0.123)
    assert same_value([0.8, True], (0.8, True))
    assert not same_value(1, True) and not same_value(None, 0.0) and same_value(None, None)
    assert not same_value([1.0], [1.0, 2.0])
    assert same_value({"a": 1.0}, {"a": 1.0000001}) and not same_value({"a": 1.0}, {"b": 1.0})


def test_config_difference_names_changed_added_and_removed_keys():
    before = {"name": "mse", "reduction": "auto", "nested": {"a": 1, "b": 2}}
    after = {"name": "mse", "reduction": "sum_over_batch_size", "nested": {"a": 1}, "fn": "mean_squared_error"}
    assert config_difference(before, after) == {
        "changed": {"reduction": ["auto", "sum_over_batch_size"]},
        "added": ["fn"],
        "removed": ["nested.b"],
    }
    assert config_difference({"lr": 0.1, "betas": (0.9, 0.99)}, {"lr": 0.1000000001, "betas": [0.9, 0.99]}) == {}


def test_rounded_and_short_text_keep_records_stable_between_runs():
    assert rounded(0.12300000339746475) == 0.123 and rounded([1 / 3, {"x": 2.0000001}]) == [0.333333, {"x": 2.0}]
    assert rounded(float("nan")) != rounded(float("nan"))  # non-finite values pass through untouched
    text = short_text("TypeError: <object at 0x7f3a2b1c9d00>\n  got an unexpected keyword")
    assert text == "TypeError: <object 0x…> got an unexpected keyword"
    assert len(short_text("x" * 1000)) == 300


class _Optimizer:
    """A plain class standing in for a call target: the outcome logic is what is tested, not a framework."""

    def __init__(self, learning_rate: float = 0.01, **kwargs: Any) -> None:
        if "lr" in kwargs:
            warnings.warn(KERAS2_LR, UserWarning, stacklevel=2)
        if "bogus" in kwargs:
            raise TypeError(f"__init__() got an unexpected keyword argument 'bogus' ({object()!r})")
        self.learning_rate = learning_rate

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Optimizer:
        return cls(**config)


def _round_trip(obj: Any) -> tuple[Any, Any]:
    return obj.get_config(), {**type(obj).from_config(obj.get_config()).get_config(), "extra": 1}


def test_call_outcome_records_an_ignored_keyword_with_the_value_seen_and_the_warning():
    call = KeywordCall("Opt(lr=)", "lr", lambda: _Optimizer(lr=0.123), lambda o: o.learning_rate, 0.123)
    record = call_outcome(call)
    assert record == {
        "keyword": "lr",
        "outcome": "ignored",
        "observed": 0.01,
        "expected": 0.123,
        "warning": KERAS2_LR,
        "renamed_to": "learning_rate",
        "round_trip": "n/a",
    }


def test_call_outcome_records_a_rejection_and_a_round_trip_difference():
    rejected = call_outcome(KeywordCall("Opt(bogus=)", "bogus", lambda: _Optimizer(bogus=1)))
    assert rejected["outcome"] == "rejected" and rejected["error_class"] == "TypeError"
    assert "0x" not in rejected["error"].replace("0x…", "")  # addresses differ from run to run
    assert "round_trip" not in rejected and "observed" not in rejected
    accepted = call_outcome(
        KeywordCall("Opt(learning_rate=)", "learning_rate", lambda: _Optimizer(0.5), lambda o: o.learning_rate, 0.5,
                    round_trip=_round_trip)
    )  # fmt: skip
    assert accepted["outcome"] == "accepted" and accepted["round_trip"] == {"added": ["extra"]}


def test_an_effect_that_raises_means_the_value_did_not_take_effect():
    record = call_outcome(KeywordCall("Opt(x=)", "x", _Optimizer, lambda o: o.missing, 1))
    assert record["outcome"] == "ignored" and record["observed"].startswith("error: AttributeError")


def test_run_calls_records_each_call_and_checks_only_the_canonical_ones():
    ctx = Context("api_calls.x")
    outcomes = run_calls(
        ctx,
        [
            KeywordCall("Opt(learning_rate=)", "learning_rate", lambda: _Optimizer(0.5), lambda o: o.learning_rate,
                        0.5, canonical=True),
            KeywordCall("Opt(lr=)", "lr", lambda: _Optimizer(lr=0.5), lambda o: o.learning_rate, 0.5),
            KeywordCall("Opt(bogus=)", "bogus", lambda: _Optimizer(bogus=1), canonical=True),
        ],
    )  # fmt: skip
    assert outcomes == {"Opt(learning_rate=)": "accepted", "Opt(lr=)": "ignored", "Opt(bogus=)": "rejected"}
    assert {name: kind for name, (kind, _) in ctx.records.items()} == {
        "Opt(learning_rate=)": "call",  # judged by how the outcome moves (harness.judge.calls)
        "Opt(lr=)": "call",
        "Opt(bogus=)": "call",
        "outcomes": "info",  # a summary: judging it too would say each change twice
    }
    assert [(c.name, c.ok) for c in ctx.checks] == [
        ("canonical Opt(learning_rate=)", True),
        ("canonical Opt(bogus=)", False),
    ]


def test_expected_losses_follow_the_documented_formulas():
    expected = _expected_losses()
    # binary cross-entropy from logits [2, -1] with labels [1, 0]: -log(sigmoid(2)) and -log(1 - sigmoid(-1))
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert expected["bce_logits"] == pytest.approx((-math.log(sigmoid(2)) - math.log(1 - sigmoid(-1))) / 2)
    # label smoothing 0.1 over 3 classes: targets [1/30, 28/30, 1/30]
    cce = -(math.log(0.2) / 30 + 28 * math.log(0.7) / 30 + math.log(0.1) / 30)
    assert expected["cce_smoothed"] == pytest.approx(cce)
    # Huber with delta 0.5 on errors 1..4 (all beyond delta): 0.5 * (|e| - 0.25), averaged
    assert expected["huber_half"] == pytest.approx((0.375 + 0.875 + 1.375 + 1.875) / 4)


def test_every_api_calls_scenario_names_the_change_it_catches():
    found = {s.id: s for s in discover().values() if s.area == "api_calls"}
    assert len(found) == 11
    for entry in found.values():
        assert entry.doc.startswith("Catches"), entry.id
        assert entry.requires in (("keras",), ("torch",)), entry.id


class _Loss:
    """Warns only when used, as torch's losses do for a deprecated ``reduction`` name."""

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def __call__(self) -> float:
        if self.reduction == "elementwise_mean":
            warnings.warn(
                "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.", stacklevel=2
            )
        warnings.warn("__array__ implementation doesn't accept a copy keyword", DeprecationWarning, stacklevel=2)
        return 7.5


def test_warnings_while_the_effect_is_read_count_only_when_they_name_the_keyword():
    plain = call_outcome(KeywordCall("Loss(reduction='mean')", "reduction", lambda: _Loss("mean"), lambda f: f(), 7.5))
    assert plain["outcome"] == "accepted" and "warning" not in plain  # numpy's protocol deprecation is no keyword's
    old = call_outcome(
        KeywordCall(
            "Loss(reduction='elementwise_mean')", "reduction", lambda: _Loss("elementwise_mean"), lambda f: f(), 7.5
        )
    )
    assert old["outcome"] == "deprecated" and "elementwise_mean" in old["warning"]


def test_relevant_warnings_without_deprecations_keeps_only_those_naming_the_keyword():
    items = [_warning("__array__ implementation doesn't accept a copy keyword", "DeprecationWarning")]
    assert relevant_warnings("amsgrad", items) == ["__array__ implementation doesn't accept a copy keyword"]
    assert relevant_warnings("amsgrad", items, deprecations=False) == []
