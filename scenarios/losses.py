"""losses: loss values and a few metrics on fixed inputs, checked against NumPy references.

Catches changes of reduction defaults, of label smoothing, of how probabilities are clipped, of from-logits
handling, and of metric definitions. Values are recorded for drift; the checks hold the documented formulas.
"""

from __future__ import annotations

import numpy as np

from harness.worker.checks import allclose
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity, to_numpy
from scenarios._references import (
    binary_crossentropy_logits,
    categorical_crossentropy,
    huber,
    roc_auc,
    softmax,
)

_KERAS_EPSILON = 1e-7


def fixed_batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    logits = rng.normal(scale=2.0, size=(16, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=16)
    binary_labels = rng.integers(0, 2, size=32).astype(np.float32)
    binary_logits = rng.normal(scale=2.0, size=32).astype(np.float32)
    return {
        "logits": logits,
        "labels": labels,
        "onehot": np.eye(5, dtype=np.float32)[labels],
        "binary_labels": binary_labels,
        "binary_logits": binary_logits,
        "y": rng.normal(size=(16, 3)).astype(np.float32),
        "pred": rng.normal(scale=1.5, size=(16, 3)).astype(np.float32),
    }


def _value(loss: object) -> float:
    return float(np.asarray(to_numpy(loss)))


@scenario(area="losses", requires=["keras"])
def keras_losses(ctx: Context) -> None:
    """Catches changes of Keras losses: cross-entropy from logits vs probabilities, label smoothing, the default
    reduction (mean over the batch), MSE and Huber."""
    k = keras()
    b = fixed_batch()
    probs = softmax(b["logits"].astype(np.float64)).astype(np.float32)
    ctx.record("keras", keras_identity(), kind="info")
    cases = {
        "cce_logits": (k.losses.CategoricalCrossentropy(from_logits=True), b["onehot"], b["logits"],
                       categorical_crossentropy(b["onehot"], softmax(b["logits"].astype(np.float64)))),
        "cce_probs": (k.losses.CategoricalCrossentropy(), b["onehot"], probs,
                      categorical_crossentropy(b["onehot"], probs.astype(np.float64), clip=_KERAS_EPSILON)),
        "cce_logits_smoothing": (
            k.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), b["onehot"], b["logits"],
            categorical_crossentropy(b["onehot"], softmax(b["logits"].astype(np.float64)), smoothing=0.1)),
        "sparse_cce_logits": (k.losses.SparseCategoricalCrossentropy(from_logits=True), b["labels"], b["logits"],
                              categorical_crossentropy(b["onehot"], softmax(b["logits"].astype(np.float64)))),
        "bce_logits": (k.losses.BinaryCrossentropy(from_logits=True), b["binary_labels"][:, None],
                       b["binary_logits"][:, None], binary_crossentropy_logits(b["binary_labels"], b["binary_logits"])),
        "mse": (k.losses.MeanSquaredError(), b["y"], b["pred"], float(np.mean((b["pred"] - b["y"]) ** 2))),
        "huber": (k.losses.Huber(), b["y"], b["pred"], huber(b["y"].astype(np.float64), b["pred"].astype(np.float64))),
    }  # fmt: skip
    for name, (loss, target, output, reference) in cases.items():
        value = _value(loss(target, output))
        ctx.record(name, value)
        allclose(ctx, name, value, reference, rtol=1e-5, atol=1e-6)
    reduction = cases["mse"][0].get_config().get("reduction")
    ctx.record("default_reduction", str(reduction))


@scenario(area="losses", requires=["keras"])
def keras_metrics(ctx: Context) -> None:
    """Catches changes of ``Accuracy``-family metrics and of ``AUC``'s threshold approximation on fixed scores."""
    k = keras()
    b = fixed_batch()
    accuracy = k.metrics.CategoricalAccuracy()
    accuracy.update_state(b["onehot"], b["logits"])
    value = _value(accuracy.result())
    ctx.record("categorical_accuracy", value)
    reference = float(np.mean(b["logits"].argmax(-1) == b["labels"]))
    allclose(ctx, "categorical_accuracy", value, reference, rtol=0, atol=1e-7)
    scores = 1 / (1 + np.exp(-b["binary_logits"].astype(np.float64)))
    auc = k.metrics.AUC(num_thresholds=200)
    auc.update_state(b["binary_labels"], scores.astype(np.float32))
    value = _value(auc.result())
    ctx.record("auc_200_thresholds", value)
    exact = roc_auc(b["binary_labels"], scores)
    ctx.record("auc_exact", exact)
    allclose(ctx, "auc_close_to_exact", value, exact, rtol=0, atol=0.02)


@scenario(area="losses", requires=["torch"])
def torch_losses(ctx: Context) -> None:
    """Catches changes of torch losses: cross-entropy with label smoothing, BCE-with-logits, MSE and Huber, and
    the default reduction (mean)."""
    import torch
    import torch.nn.functional as F

    b = fixed_batch()
    logits, labels = torch.from_numpy(b["logits"]), torch.from_numpy(b["labels"])
    softmaxed = softmax(b["logits"].astype(np.float64))
    cases = {
        "ce": (F.cross_entropy(logits, labels), categorical_crossentropy(b["onehot"], softmaxed)),
        "ce_smoothing": (F.cross_entropy(logits, labels, label_smoothing=0.1),
                         categorical_crossentropy(b["onehot"], softmaxed, smoothing=0.1)),
        "bce_logits": (F.binary_cross_entropy_with_logits(torch.from_numpy(b["binary_logits"]),
                                                         torch.from_numpy(b["binary_labels"])),
                       binary_crossentropy_logits(b["binary_labels"], b["binary_logits"])),
        "mse": (F.mse_loss(torch.from_numpy(b["pred"]), torch.from_numpy(b["y"])),
                float(np.mean((b["pred"] - b["y"]) ** 2))),
        "huber": (F.huber_loss(torch.from_numpy(b["pred"]), torch.from_numpy(b["y"])),
                  huber(b["y"].astype(np.float64), b["pred"].astype(np.float64))),
    }  # fmt: skip
    for name, (value, reference) in cases.items():
        got = float(value.item())
        ctx.record(name, got)
        allclose(ctx, name, got, reference, rtol=1e-5, atol=1e-6)
    ctx.record("default_reduction", torch.nn.MSELoss().reduction)
