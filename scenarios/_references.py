"""Closed-form NumPy references: optimizer update rules and losses, in float64.

A scenario compares what a framework computed with every documented form of a rule and records which one it
matched, so a difference is attributed: the rule changed (another form matches), only floating-point noise (the
same form matches within tolerance), or neither (the check fails).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["GRADIENTS", "INITIAL", "UPDATE_RULES", "run_rule"]

INITIAL = np.array([0.5, -1.0, 2.0])
GRADIENTS = np.array([[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.2, 0.2]])

Rule = Callable[[np.ndarray, np.ndarray, dict, dict], np.ndarray]


def _sgd_keras(w, g, s, hp):
    m = hp.get("momentum", 0.0)
    if not m:
        return w - hp["lr"] * g
    s["v"] = m * s.get("v", 0.0) - hp["lr"] * g
    return w + (m * s["v"] - hp["lr"] * g if hp.get("nesterov") else s["v"])


def _sgd_torch(w, g, s, hp):
    m = hp.get("momentum", 0.0)
    if not m:
        return w - hp["lr"] * g
    s["buf"] = g.copy() if "buf" not in s else m * s["buf"] + g
    step = g + m * s["buf"] if hp.get("nesterov") else s["buf"]
    return w - hp["lr"] * step


def _moments(g, s, hp):
    s["t"] = s.get("t", 0) + 1
    s["m"] = hp["beta1"] * s.get("m", 0.0) + (1 - hp["beta1"]) * g
    s["v"] = hp["beta2"] * s.get("v", 0.0) + (1 - hp["beta2"]) * g * g
    return s["t"], s["m"], s["v"]


def _adam_keras(w, g, s, hp):
    """Keras: eps added to sqrt(v) with the bias correction folded into the learning rate."""
    t, m, v = _moments(g, s, hp)
    alpha = hp["lr"] * np.sqrt(1 - hp["beta2"] ** t) / (1 - hp["beta1"] ** t)
    return w - alpha * m / (np.sqrt(v) + hp["eps"])


def _adam_torch(w, g, s, hp):
    """torch: eps added to the bias-corrected sqrt(v̂)."""
    t, m, v = _moments(g, s, hp)
    denominator = np.sqrt(v) / np.sqrt(1 - hp["beta2"] ** t) + hp["eps"]
    return w - hp["lr"] / (1 - hp["beta1"] ** t) * m / denominator


def _decayed(rule: Rule) -> Rule:
    """Decoupled weight decay (AdamW): w ← w − lr·wd·w, then the Adam step."""

    def apply(w, g, s, hp):
        return rule(w - hp["lr"] * hp["weight_decay"] * w, g, s, hp)

    return apply


def _rms_inside(w, g, s, hp):
    s["v"] = hp["rho"] * s.get("v", 0.0) + (1 - hp["rho"]) * g * g
    return w - hp["lr"] * g / np.sqrt(s["v"] + hp["eps"])


def _rms_outside(w, g, s, hp):
    s["v"] = hp["rho"] * s.get("v", 0.0) + (1 - hp["rho"]) * g * g
    return w - hp["lr"] * g / (np.sqrt(s["v"]) + hp["eps"])


def _adagrad_inside(w, g, s, hp):
    s["acc"] = s.get("acc", hp["initial_accumulator"]) + g * g
    return w - hp["lr"] * g / np.sqrt(s["acc"] + hp["eps"])


def _adagrad_outside(w, g, s, hp):
    s["acc"] = s.get("acc", hp["initial_accumulator"]) + g * g
    return w - hp["lr"] * g / (np.sqrt(s["acc"]) + hp["eps"])


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


def run_rule(rule: Rule, hp: dict, initial: np.ndarray = INITIAL, gradients: np.ndarray = GRADIENTS) -> np.ndarray:
    """The weight trajectory (initial, then after each step) under ``rule``."""
    w, state, path = initial.astype(np.float64), {}, [initial.astype(np.float64)]
    for g in gradients:
        w = rule(w, g.astype(np.float64), state, hp)
        path.append(w)
    return np.array(path)


def match_rule(
    optimizer: str, trajectory: np.ndarray, hp: dict, rtol: float = 1e-5, atol: float = 1e-6
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
    return e / e.sum(axis=-1, keepdims=True)


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
