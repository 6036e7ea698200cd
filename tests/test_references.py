"""The NumPy references scenarios check against: right on known values, and they attribute a changed rule."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios import _references as ref

ADAM = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}


def test_each_adam_form_is_recognised_and_told_apart():
    keras_like = ref.run_rule(ref.UPDATE_RULES["adam"]["eps-outside-corrected-lr"], ADAM)
    torch_like = ref.run_rule(ref.UPDATE_RULES["adam"]["eps-outside-corrected-v"], ADAM)
    assert ref.match_rule("adam", keras_like, ADAM)[0] == "eps-outside-corrected-lr"
    assert ref.match_rule("adam", torch_like, ADAM)[0] == "eps-outside-corrected-v"
    assert np.abs(keras_like - torch_like).max() > 1e-4  # with eps=1e-3 the forms really differ


def test_a_wrong_update_matches_no_documented_rule():
    wrong = ref.run_rule(ref.UPDATE_RULES["adam"]["eps-outside-corrected-lr"], {**ADAM, "lr": 0.2})
    rule, errors = ref.match_rule("adam", wrong, ADAM)
    assert rule == "none" and min(errors.values()) > 1e-3
    sgd = ref.run_rule(ref.UPDATE_RULES["sgd"]["buffer"], {"lr": 0.1, "momentum": 0.5})
    assert ref.match_rule("sgd", sgd, {"lr": 0.1, "momentum": 0.9})[0] == "none"


def test_sgd_forms_agree_and_rmsprop_forms_differ():
    hp = {"lr": 0.1, "momentum": 0.9, "nesterov": True}
    a = ref.run_rule(ref.UPDATE_RULES["sgd"]["velocity-or-buffer"], hp)
    b = ref.run_rule(ref.UPDATE_RULES["sgd"]["buffer"], hp)
    assert np.allclose(a, b)
    rms = {"lr": 0.1, "rho": 0.9, "eps": 1e-3}
    inside = ref.run_rule(ref.UPDATE_RULES["rmsprop"]["eps-inside-sqrt"], rms)
    assert ref.match_rule("rmsprop", inside, rms)[0] == "eps-inside-sqrt"


def test_first_sgd_step_by_hand():
    path = ref.run_rule(ref.UPDATE_RULES["sgd"]["buffer"], {"lr": 0.1, "momentum": 0.0})
    assert path[1] == pytest.approx(ref.INITIAL - 0.1 * ref.GRADIENTS[0])


def test_losses_on_known_values():
    onehot = np.array([[0.0, 1.0]])
    assert ref.categorical_crossentropy(onehot, np.array([[0.5, 0.5]])) == pytest.approx(np.log(2))
    assert ref.categorical_crossentropy(onehot, np.array([[0.0, 1.0]]), clip=1e-7) == pytest.approx(1e-7, rel=1e-3)
    smoothed = ref.categorical_crossentropy(onehot, np.array([[0.25, 0.75]]), smoothing=0.2)
    assert smoothed == pytest.approx(-(0.1 * np.log(0.25) + 0.9 * np.log(0.75)))
    assert ref.binary_crossentropy_logits(np.array([1.0]), np.array([0.0])) == pytest.approx(np.log(2))
    assert ref.huber(np.array([0.0, 0.0]), np.array([0.5, 3.0])) == pytest.approx((0.125 + 2.5) / 2)
    assert ref.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert ref.roc_auc(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0
