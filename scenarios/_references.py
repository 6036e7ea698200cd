"""Closed-form NumPy references: optimizer update rules and losses, in float64.

A scenario compares what a framework computed with every documented form of a rule and records which one it
matched, so a difference is attributed: the rule changed (another form matches), only floating-point noise (the
same form matches within tolerance), or neither (the check fails).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["GRADIENTS", "INITIAL", "UPDATE_RULES", "run_rule"]

INITIAL = np.array([0.5, -1.0, 2.0])
GRADIENTS = np.array([[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.2, 0.2]])

#: The references compute in float64.
F64 = NDArray[np.float64]
#: An optimizer's state between steps (moments, buffers, the step count) and its hyperparameters.
State = dict[str, Any]
Hyper = dict[str, float]
Rule = Callable[[F64, F64, State, Hyper], F64]


def _sgd_keras(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    m = hp.get("momentum", 0.0)
    if not m:
        return w - hp["lr"] * g
    v: F64 = m * s.get("v", 0.0) - hp["lr"] * g
    s["v"] = v
    return w + (m * v - hp["lr"] * g if hp.get("nesterov") else v)


def _sgd_torch(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    m = hp.get("momentum", 0.0)
    if not m:
        return w - hp["lr"] * g
    buf: F64 = g.copy() if "buf" not in s else m * s["buf"] + g
    s["buf"] = buf
    step = g + m * buf if hp.get("nesterov") else buf
    return w - hp["lr"] * step


def _moments(g: F64, s: State, hp: Hyper) -> tuple[int, F64, F64]:
    t: int = s.get("t", 0) + 1
    m: F64 = hp["beta1"] * s.get("m", 0.0) + (1 - hp["beta1"]) * g
    v: F64 = hp["beta2"] * s.get("v", 0.0) + (1 - hp["beta2"]) * g * g
    s.update(t=t, m=m, v=v)
    return t, m, v


def _adam_keras(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    """Keras: eps added to sqrt(v) with the bias correction folded into the learning rate."""
    t, m, v = _moments(g, s, hp)
    alpha = hp["lr"] * math.sqrt(1 - hp["beta2"] ** t) / (1 - hp["beta1"] ** t)
    return w - alpha * m / (np.sqrt(v) + hp["eps"])


def _adam_torch(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    """torch: eps added to the bias-corrected sqrt(v̂)."""
    t, m, v = _moments(g, s, hp)
    denominator = np.sqrt(v) / math.sqrt(1 - hp["beta2"] ** t) + hp["eps"]
    return w - hp["lr"] / (1 - hp["beta1"] ** t) * m / denominator


def _decayed(rule: Rule) -> Rule:
    """Decoupled weight decay (AdamW): w ← w − lr·wd·w, then the Adam step."""

    def apply(w: F64, g: F64, s: State, hp: Hyper) -> F64:
        return rule(w - hp["lr"] * hp["weight_decay"] * w, g, s, hp)

    return apply


def _rms(g: F64, s: State, hp: Hyper) -> F64:
    v: F64 = hp["rho"] * s.get("v", 0.0) + (1 - hp["rho"]) * g * g
    s["v"] = v
    return v


def _rms_inside(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    return w - hp["lr"] * g / np.sqrt(_rms(g, s, hp) + hp["eps"])


def _rms_outside(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    return w - hp["lr"] * g / (np.sqrt(_rms(g, s, hp)) + hp["eps"])


def _accumulated(g: F64, s: State, hp: Hyper) -> F64:
    acc: F64 = s.get("acc", hp["initial_accumulator"]) + g * g
    s["acc"] = acc
    return acc


def _adagrad_inside(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    return w - hp["lr"] * g / np.sqrt(_accumulated(g, s, hp) + hp["eps"])


def _adagrad_outside(w: F64, g: F64, s: State, hp: Hyper) -> F64:
    return w - hp["lr"] * g / (np.sqrt(_accumulated(g, s, hp)) + hp["eps"])


#: optimizer -> {form name: rule}. Forms are named after where they differ, so a switch reads as what changed.
UPDATE_RULES: dict[str, dict[str, Rule]] = {
    # Keras's velocity form and torch's buffer form are algebraically the same for a constant learning rate;
    # both are kept so either implementation is recognised, and they agree to rounding.
    "sgd": {"velocity-or-buffer": _sgd_keras, "buffer": _sgd_torch},
    "adam": {"eps-outside-corrected-lr": _adam_keras, "eps-outside-corrected-v": _adam_torch},
    "adamw": {
        "decoupled+eps-outside-corrected-lr": _decayed(_adam_keras),
        "decoupled+eps-outside-corrected-v": _decayed(_adam_torch),
    },
    "rmsprop": {"eps-inside-sqrt": _rms_inside, "eps-outside-sqrt": _rms_outside},
    "adagrad": {"eps-inside-sqrt": _adagrad_inside, "eps-outside-sqrt": _adagrad_outside},
}


def run_rule(rule: Rule, hp: Hyper, initial: np.ndarray = INITIAL, gradients: np.ndarray = GRADIENTS) -> np.ndarray:
    """The weight trajectory (initial, then after each step) under ``rule``."""
    state: State = {}
    w, path = initial.astype(np.float64), [initial.astype(np.float64)]
    for g in gradients:
        w = rule(w, g.astype(np.float64), state, hp)
        path.append(w)
    return np.array(path)


def match_rule(
    optimizer: str, trajectory: np.ndarray, hp: Hyper, rtol: float = 1e-5, atol: float = 1e-6
) -> tuple[str, dict[str, float]]:
    """The name of the first documented form the trajectory matches (or "none"), and every form's max error."""
    errors = {
        name: float(np.abs(run_rule(rule, hp) - trajectory).max()) for name, rule in UPDATE_RULES[optimizer].items()
    }
    for name, rule in UPDATE_RULES[optimizer].items():
        if np.allclose(trajectory, run_rule(rule, hp), rtol=rtol, atol=atol):
            return name, errors
    return "none", errors


# ------------------------------------------------------------------------------------------------------ losses


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    probs: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probs


def categorical_crossentropy(onehot: np.ndarray, probs: np.ndarray, smoothing: float = 0.0, clip: float = 0.0) -> float:
    """Mean cross-entropy; with ``clip``, Keras's way for probabilities: renormalize, then clip to [clip, 1-clip]."""
    classes = onehot.shape[-1]
    target = onehot * (1 - smoothing) + smoothing / classes
    p = probs
    if clip:
        p = np.clip(p / p.sum(axis=-1, keepdims=True), clip, 1 - clip)
    return float(np.mean(-(target * np.log(p)).sum(axis=-1)))


def binary_crossentropy_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    return float(np.mean(np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))))


def huber(y: np.ndarray, pred: np.ndarray, delta: float = 1.0) -> float:
    err = np.abs(pred - y)
    return float(np.mean(np.where(err <= delta, 0.5 * err**2, delta * (err - 0.5 * delta))))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC: the probability a positive outscores a negative (ties count half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))
