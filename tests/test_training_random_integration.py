"""Integration: the randomness and api_calls scenarios for real, in a Keras 2 and a Keras 3 TensorFlow and in torch
2.5 and 2.13 (tests/resources/random-api-matrix.yaml, the default matrix's names and pins), through nox.

Asserts real cross-version differences (keywords accepted in one release and rejected, ignored or renamed in the
other; RNG streams that moved) and negative controls that must stay identical, comparing the recorded values
of the two environments' results documents and record archives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.nox_runs import Run, arrays, run_sessions, value

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "resources" / "random-api-matrix.yaml"
ENVIRONMENTS = ("tf2.15-keras2", "tf2.21-keras3", "torch2.5", "torch2.13")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_sessions(tmp_path_factory.mktemp("random-api"), MATRIX, "ra", ENVIRONMENTS)


def same_array(run: Run, a: str, b: str, scenario_id: str, name: str) -> bool:
    run_dir, docs = run
    (first,) = arrays(run_dir, docs[a], scenario_id, name)
    (second,) = arrays(run_dir, docs[b], scenario_id, name)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def call(docs: dict[str, Any], env: str, scenario_id: str, label: str) -> dict[str, Any]:
    found: dict[str, Any] = value(docs, env, scenario_id, label)
    return found


def test_every_cell_passes_or_skips_with_its_reason(run):
    _, docs = run
    assert sorted(docs) == sorted(ENVIRONMENTS)
    for name, doc in docs.items():
        assert doc.state == "complete", name
        for cell in doc.scenarios:
            assert cell.status in ("pass", "skip"), (name, cell.id, cell.message)
            if cell.status == "skip":
                assert cell.message.startswith("requires "), (name, cell.id)
    skipped = docs["tf2.15-keras2"].cell("randomness.keras_random_ops")
    assert skipped.status == "skip" and "keras>=3" in skipped.message and "2.15.0" in skipped.message


def test_cells_record_the_seeding_they_did(run):
    _, docs = run
    workers = docs["torch2.13"].cell("randomness.torch_dataloader_workers")
    assert workers.seeding[:2] == ["random.seed(1337)", "numpy.random.seed(1337)"]  # the harness's reset first
    assert "torch.manual_seed(1337)" in workers.seeding
    assert workers.seeding[-1] == "torch.Generator().manual_seed(19)"  # then the scenario's own, noted
    augmentation = docs["tf2.21-keras3"].cell("randomness.keras_augmentation")
    assert "keras.layers.RandomFlip(..., seed=11)" in augmentation.seeding


def test_keras2_and_keras3_augmentation_layers_draw_other_streams(run):
    # Same seeds, same images: Keras 3 reimplemented the augmentation layers on its own SeedGenerator.
    for name in ("random_rotation", "random_crop", "random_contrast"):
        assert not same_array(run, "tf2.15-keras2", "tf2.21-keras3", "randomness.keras_augmentation", name), name


def test_tf_random_ops_with_the_same_seeds_give_the_same_numbers_on_tf_2_15_and_2_21(run):
    # The negative control: stateless ops are pure functions of (shape, seed); Generator and op-seeded stateful ops
    # were measured identical too.
    for scenario_id, names in {
        "randomness.tf_random_stateless": (
            "stateless_normal", "stateless_uniform", "stateless_uniform_int", "stateless_truncated_normal",
            "stateless_categorical",
        ),
        "randomness.tf_random_generator": ("normal", "uniform", "split_normal"),
        "randomness.tf_random_stateful": ("normal", "truncated_normal", "shuffle"),
    }.items():  # fmt: skip
        for name in names:
            assert same_array(run, "tf2.15-keras2", "tf2.21-keras3", scenario_id, name), (scenario_id, name)


def test_torch_randperm_and_dataloader_order_stay_and_other_streams_moved(run):
    for name in ("randperm_10", "randperm_1000", "normal", "multinomial_replacement"):
        assert same_array(run, "torch2.5", "torch2.13", "randomness.torch_sampling_ops", name), name
    for name in ("epoch0", "epoch1", "epoch2"):
        assert same_array(run, "torch2.5", "torch2.13", "randomness.torch_dataloader_generator", name), name
    assert same_array(run, "torch2.5", "torch2.13", "randomness.torch_dataloader_workers", "order")
    # measured: bernoulli_ and multinomial without replacement from a seeded generator, and trunc_normal_ after
    # manual_seed, draw other values in torch 2.13 than in 2.5.1
    assert not same_array(run, "torch2.5", "torch2.13", "randomness.torch_sampling_ops", "bernoulli")
    assert not same_array(run, "torch2.5", "torch2.13", "randomness.torch_nn_init", "trunc_normal")
    assert same_array(run, "torch2.5", "torch2.13", "randomness.torch_nn_init", "kaiming_uniform")


def test_keras_optimizer_keywords_changed_between_keras_2_and_3(run):
    _, docs = run
    sid = "api_calls.keras_optimizers"
    lr2, lr3 = call(docs, "tf2.15-keras2", sid, "SGD(lr=)"), call(docs, "tf2.21-keras3", sid, "SGD(lr=)")
    # Keras 2.15 logs "use `learning_rate`" and trains with the default rate; Keras 3 refuses the keyword
    assert lr2["outcome"] == "ignored" and lr2["renamed_to"] == "learning_rate" and lr2["observed"] == 0.01
    assert lr3["outcome"] == "rejected" and lr3["error_class"] == "ValueError" and "lr" in lr3["error"]
    decay2, decay3 = call(docs, "tf2.15-keras2", sid, "SGD(decay=)"), call(docs, "tf2.21-keras3", sid, "SGD(decay=)")
    assert decay2["outcome"] == "rejected" and decay3["outcome"] == "ignored"  # the reverse: raises, then dropped
    for env in ("tf2.15-keras2", "tf2.21-keras3"):
        assert call(docs, env, sid, "SGD(learning_rate=)")["observed"] == 0.123


def test_keras_layer_loss_and_callback_keywords_changed_between_keras_2_and_3(run):
    _, docs = run
    k2, k3 = "tf2.15-keras2", "tf2.21-keras3"
    for label in ("BatchNormalization(fused=)", "LSTM(time_major=)"):
        assert call(docs, k2, "api_calls.keras_layers", label)["outcome"] == "accepted", label
        assert call(docs, k3, "api_calls.keras_layers", label)["outcome"] == "rejected", label
    embedding = call(docs, k3, "api_calls.keras_layers", "Embedding(input_length=)")
    assert embedding["outcome"] == "ignored" and "input_length" in embedding["warning"]
    auto = "MeanSquaredError(reduction='auto')"
    auto2 = call(docs, k2, "api_calls.keras_losses", auto)
    assert auto2["outcome"] == "accepted" and auto2["observed"] == 7.5  # (2.5 + 12.5) / 2
    assert call(docs, k3, "api_calls.keras_losses", auto)["outcome"] == "rejected"
    plateau2 = call(docs, k2, "api_calls.keras_schedules_callbacks", "ReduceLROnPlateau(epsilon=)")
    plateau3 = call(docs, k3, "api_calls.keras_schedules_callbacks", "ReduceLROnPlateau(epsilon=)")
    assert plateau2["outcome"] == "renamed" and plateau2["renamed_to"] == "min_delta"
    assert plateau3["outcome"] == "ignored" and "warning" not in plateau3  # silently: min_delta stays 1e-4


def test_torch_keywords_changed_between_torch_2_5_and_2_13(run):
    _, docs = run
    sid = "api_calls.torch_schedulers"
    verbose5, verbose13 = (
        call(docs, "torch2.5", sid, "StepLR(verbose=)"),
        call(docs, "torch2.13", sid, "StepLR(verbose=)"),
    )
    assert verbose5["outcome"] == "deprecated" and "get_last_lr" in verbose5["warning"]
    assert verbose13["outcome"] == "rejected" and verbose13["error_class"] == "TypeError"
    decoupled = "Adam(decoupled_weight_decay=)"
    assert call(docs, "torch2.5", "api_calls.torch_optimizers", decoupled)["outcome"] == "rejected"
    assert call(docs, "torch2.13", "api_calls.torch_optimizers", decoupled)["outcome"] == "accepted"
    for env in ("torch2.5", "torch2.13"):  # unchanged: the legacy loss keyword names its replacement in both
        legacy = call(docs, env, "api_calls.torch_losses", "MSELoss(size_average=)")
        assert legacy["outcome"] == "renamed" and legacy["renamed_to"] == "reduction" and legacy["observed"] == 30.0
        assert call(docs, env, "api_calls.torch_optimizers", "Adam(lr=)")["round_trip"] == "equal"
