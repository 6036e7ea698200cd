"""api_calls: API calls with the keyword arguments users actually write, not only the names that resolve.

Each call (``KeywordCall``) constructs an optimizer, layer, loss, metric, initializer, schedule or callback with
one keyword under test, reads back whether the value took effect (the learning rate is the ``lr`` given, the loss
is the reduced value the ``reduction`` names) and round-trips the object's config. One ``config`` record per call,
named after it (``SGD(lr=)``), holds the outcome (accepted, warned, deprecated, renamed, ignored, rejected), the
error class and message, the warning and the round trip's difference, so the verdict names each keyword whose
outcome changed between two releases. Canonical calls (the documented spelling) are checked: they must work.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from harness.worker.scenario import Context, scenario
from scenarios._api_probe import KeywordCall, call_outcome, rounded
from scenarios._frameworks import keras, keras_identity, to_numpy

#: Fixed inputs of the loss calls: per-sample squared errors 2.5 and 12.5 (sum 15, mean 7.5).
Y_ZERO = np.zeros((2, 2), dtype=np.float32)
Y_PRED = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)


def run_calls(ctx: Context, calls: Iterable[KeywordCall]) -> dict[str, str]:
    """Record every call's outcome under its label; check that the canonical ones are accepted and take effect."""
    outcomes: dict[str, str] = {}
    for call in calls:
        record = call_outcome(call)
        ctx.record(call.label, record, kind="call")
        outcomes[call.label] = record["outcome"]
        if call.canonical:
            ok = record["outcome"] in ("accepted", "warned")
            ctx.check(f"canonical {call.label}", ok, record.get("error", ""), outcome=record["outcome"])
    ctx.record("outcomes", outcomes, kind="info")  # each call is judged by its own record
    return outcomes


def _number(value: Any) -> float:
    return float(np.asarray(to_numpy(value)).reshape(()))


def _values(value: Any) -> list[float]:
    return [float(v) for v in np.asarray(to_numpy(value), dtype=np.float64).ravel()]


def _attr(name: str) -> Callable[[Any], Any]:
    return lambda obj: getattr(obj, name)


def _type_name(name: str) -> Callable[[Any], Any]:
    return lambda obj: type(getattr(obj, name)).__name__


def _keras_round_trip(obj: Any) -> tuple[Any, Any]:
    config = obj.get_config()
    return config, type(obj).from_config(config).get_config()


def _kcall(label: str, keyword: str, make: Callable[[], Any], effect: Any, expected: Any, **kw: Any) -> KeywordCall:
    """A Keras call whose object round-trips through ``get_config``/``from_config`` (unless told otherwise)."""
    round_trip = kw.pop("round_trip", _keras_round_trip)
    return KeywordCall(label, keyword, make, effect, expected, round_trip=round_trip, **kw)


# --------------------------------------------------------------------------------------------------- Keras


def _keras_optimizer_calls(k: Any) -> list[KeywordCall]:
    opt = k.optimizers

    def lr(o: Any) -> float:
        return _number(o.learning_rate)

    return [
        _kcall("SGD(learning_rate=)", "learning_rate", lambda: opt.SGD(learning_rate=0.123), lr, 0.123, canonical=True),
        _kcall("SGD(lr=)", "lr", lambda: opt.SGD(lr=0.123), lr, 0.123),
        _kcall(
            "SGD(decay=)", "decay", lambda: opt.SGD(learning_rate=0.1, decay=0.01),
            lambda o: o.get_config().get("decay"), 0.01,
        ),
        _kcall(
            "SGD(momentum=, nesterov=)", "nesterov", lambda: opt.SGD(momentum=0.9, nesterov=True),
            lambda o: [_number(o.momentum), bool(o.nesterov)], [0.9, True], canonical=True,
        ),
        _kcall("Adam(epsilon=)", "epsilon", lambda: opt.Adam(epsilon=1e-4), _attr("epsilon"), 1e-4, canonical=True),
        _kcall("Adam(eps=)", "eps", lambda: opt.Adam(eps=1e-4), lambda o: o.get_config()["epsilon"], 1e-4),
        _kcall("Adam(amsgrad=)", "amsgrad", lambda: opt.Adam(amsgrad=True), _attr("amsgrad"), True, canonical=True),
        _kcall("Adam(weight_decay=)", "weight_decay", lambda: opt.Adam(weight_decay=0.01), _attr("weight_decay"), 0.01),
        _kcall("Adam(clipnorm=)", "clipnorm", lambda: opt.Adam(clipnorm=1.0), _attr("clipnorm"), 1.0),
        _kcall("Adam(global_clipnorm=)", "global_clipnorm", lambda: opt.Adam(global_clipnorm=1.0),
               _attr("global_clipnorm"), 1.0),
        _kcall("Adam(use_ema=)", "use_ema", lambda: opt.Adam(use_ema=True), _attr("use_ema"), True),
        _kcall("Adam(jit_compile=)", "jit_compile", lambda: opt.Adam(jit_compile=False),
               lambda o: o.get_config().get("jit_compile"), False),
        _kcall("RMSprop(rho=, centered=)", "centered", lambda: opt.RMSprop(rho=0.8, centered=True),
               lambda o: [o.rho, o.centered], [0.8, True], canonical=True),
        _kcall("AdamW(weight_decay=)", "weight_decay", lambda: opt.AdamW(weight_decay=0.05),
               _attr("weight_decay"), 0.05, canonical=True),
    ]  # fmt: skip


def _sequential_input_shape(k: Any) -> Callable[[Any], Any]:
    def effect(layer: Any) -> Any:
        model = k.Sequential([layer])
        return list(model.input_shape)

    return effect


def _keras_layer_calls(k: Any) -> list[KeywordCall]:
    layers = k.layers
    conv_input = np.ones((1, 5, 5, 1), dtype=np.float32)
    return [
        _kcall("Dense(kernel_initializer='glorot_uniform')", "kernel_initializer",
               lambda: layers.Dense(4, kernel_initializer="glorot_uniform"), _type_name("kernel_initializer"),
               "GlorotUniform", canonical=True),
        _kcall("Dense(kernel_initializer='he_normal')", "kernel_initializer",
               lambda: layers.Dense(4, kernel_initializer="he_normal"), _type_name("kernel_initializer"), "HeNormal"),
        _kcall("Dense(kernel_regularizer='l2')", "kernel_regularizer",
               lambda: layers.Dense(4, kernel_regularizer="l2"), _type_name("kernel_regularizer"), "L2"),
        _kcall("Dense(input_dim=)", "input_dim", lambda: layers.Dense(4, input_dim=3),
               _sequential_input_shape(k), [None, 3]),
        _kcall("Dense(input_shape=)", "input_shape", lambda: layers.Dense(4, input_shape=(3,)),
               _sequential_input_shape(k), [None, 3]),
        _kcall("Dense(dtype=)", "dtype", lambda: layers.Dense(4, dtype="float64"), _attr("dtype"), "float64",
               canonical=True),
        _kcall("Embedding(input_length=)", "input_length", lambda: layers.Embedding(10, 3, input_length=5),
               _attr("input_length"), 5),
        _kcall("BatchNormalization(momentum=)", "momentum", lambda: layers.BatchNormalization(momentum=0.9),
               _attr("momentum"), 0.9, canonical=True),
        _kcall("BatchNormalization(fused=)", "fused", lambda: layers.BatchNormalization(fused=True),
               _attr("fused"), True),
        _kcall("LSTM(time_major=)", "time_major", lambda: layers.LSTM(3, time_major=True), _attr("time_major"), True),
        _kcall("LSTM(implementation=)", "implementation", lambda: layers.LSTM(3, implementation=1),
               lambda layer: layer.get_config()["implementation"], 1),
        _kcall("GRU(reset_after=)", "reset_after", lambda: layers.GRU(3, reset_after=False), _attr("reset_after"),
               False, canonical=True),
        _kcall("Conv2D(padding='same')", "padding", lambda: layers.Conv2D(2, 3, padding="same"),
               lambda layer: list(to_numpy(layer(conv_input)).shape), [1, 5, 5, 2], canonical=True),
        _kcall("Dropout(noise_shape=, seed=)", "seed", lambda: layers.Dropout(0.5, noise_shape=(None, 1), seed=3),
               _attr("seed"), 3),
        _kcall("MultiHeadAttention(dropout=)", "dropout", lambda: layers.MultiHeadAttention(2, 4, dropout=0.1),
               lambda layer: layer.get_config()["dropout"], 0.1, canonical=True),
    ]  # fmt: skip


def _loss_value(y_true: Any, y_pred: Any) -> Callable[[Any], Any]:
    def effect(loss: Any) -> Any:
        values = _values(loss(y_true, y_pred))
        return values[0] if len(values) == 1 else values

    return effect


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def _expected_losses() -> dict[str, Any]:
    """The reduced values, from the losses' documented formulas (independent of any framework)."""
    smoothed = np.array([0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3])
    return {
        "bce_logits": (_softplus(-2.0) + _softplus(-1.0)) / 2,  # labels [1, 0], logits [2, -1]
        "cce_smoothed": float(-(smoothed * np.log([0.2, 0.7, 0.1])).sum()),
        "huber_half": float(np.mean([0.5 * (e - 0.25) for e in (1.0, 2.0, 3.0, 4.0)])),
    }


def _keras_loss_calls(k: Any) -> list[KeywordCall]:
    losses = k.losses
    mse = _loss_value(Y_ZERO, Y_PRED)
    expected = _expected_losses()
    calls = [
        _kcall(f"MeanSquaredError(reduction='{reduction}')", "reduction",
               functools.partial(losses.MeanSquaredError, reduction=reduction), mse, value,
               canonical=reduction == "sum_over_batch_size")
        for reduction, value in (
            ("sum_over_batch_size", 7.5), ("auto", 7.5), ("sum", 15.0), ("none", [2.5, 12.5]), ("mean", 7.5)
        )
    ]  # fmt: skip
    return [
        *calls,
        _kcall("BinaryCrossentropy(from_logits=)", "from_logits", lambda: losses.BinaryCrossentropy(from_logits=True),
               _loss_value(np.array([[1.0, 0.0]]), np.array([[2.0, -1.0]])), expected["bce_logits"], canonical=True),
        _kcall("CategoricalCrossentropy(label_smoothing=)", "label_smoothing",
               lambda: losses.CategoricalCrossentropy(label_smoothing=0.1),
               _loss_value(np.array([[0.0, 1.0, 0.0]]), np.array([[0.2, 0.7, 0.1]])), expected["cce_smoothed"],
               canonical=True),
        _kcall("Huber(delta=)", "delta", lambda: losses.Huber(delta=0.5), mse, expected["huber_half"]),
    ]  # fmt: skip


def _metric_result(y_true: Any, y_pred: Any) -> Callable[[Any], Any]:
    def effect(metric: Any) -> Any:
        metric.update_state(np.asarray(y_true, dtype=np.float32), np.asarray(y_pred, dtype=np.float32))
        return _number(metric.result())

    return effect


def _keras_metric_calls(k: Any) -> list[KeywordCall]:
    metrics = k.metrics
    labels, scores = [1.0, 0.0, 1.0, 1.0], [0.8, 0.6, 0.75, 0.5]
    onehot, probs = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]
    return [
        # threshold 0.7 predicts [1, 0, 1, 0]: precision 2/2, accuracy 3/4 (the default 0.5 would give 2/3, 3/4)
        _kcall("Precision(thresholds=)", "thresholds", lambda: metrics.Precision(thresholds=0.7),
               _metric_result(labels, scores), 1.0, canonical=True),
        _kcall("BinaryAccuracy(threshold=)", "threshold", lambda: metrics.BinaryAccuracy(threshold=0.7),
               _metric_result(labels, [0.8, 0.6, 0.75, 0.9]), 1.0, canonical=True),
        # the true class of the first sample ranks third: a top-2 miss, a top-5 (default) hit
        _kcall("TopKCategoricalAccuracy(k=)", "k", lambda: metrics.TopKCategoricalAccuracy(k=2),
               _metric_result(onehot, probs), 0.5, canonical=True),
        _kcall("AUC(num_thresholds=)", "num_thresholds", lambda: metrics.AUC(num_thresholds=50),
               _attr("num_thresholds"), 50, canonical=True),
        _kcall("MeanIoU(num_classes=)", "num_classes", lambda: metrics.MeanIoU(num_classes=2),
               _attr("num_classes"), 2, canonical=True),
        _kcall("Accuracy(name=)", "name", lambda: metrics.Accuracy(name="acc"), _attr("name"), "acc", canonical=True),
    ]  # fmt: skip


def _drawn(shape: tuple[int, int]) -> Callable[[Any], Any]:
    return lambda initializer: np.asarray(to_numpy(initializer(shape)), dtype=np.float64)


def _keras_initializer_calls(k: Any) -> list[KeywordCall]:
    init = k.initializers
    draw = _drawn((100, 400))

    def std(initializer: Any) -> float:
        return round(float(draw(initializer).std()), 1)

    def peak(initializer: Any) -> float:
        return round(float(np.abs(draw(initializer)).max()), 2)

    def gram(initializer: Any) -> float:
        values = np.asarray(to_numpy(initializer((8, 8))), dtype=np.float64)
        return round(float(np.diag(values @ values.T).mean()), 3)

    def get_class(name: str) -> Callable[[], Any]:
        return lambda: init.get(name)

    fan_out_limit = round(math.sqrt(3 * 2.0 / 400), 2)
    return [
        _kcall("RandomNormal(stddev=, seed=)", "stddev", lambda: init.RandomNormal(stddev=0.5, seed=1), std, 0.5,
               canonical=True),
        _kcall("VarianceScaling(mode='fan_out', distribution='uniform')", "mode",
               lambda: init.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=2), peak,
               fan_out_limit, canonical=True),
        _kcall("VarianceScaling(distribution='normal')", "distribution",
               lambda: init.VarianceScaling(distribution="normal", seed=2), lambda i: i.get_config()["distribution"],
               "truncated_normal"),
        _kcall("TruncatedNormal(stddev=)", "stddev", lambda: init.TruncatedNormal(stddev=0.1, seed=3), peak, 0.2),
        _kcall("Orthogonal(gain=)", "gain", lambda: init.Orthogonal(gain=2.0, seed=4), gram, 4.0, canonical=True),
        _kcall("Constant(value=)", "value", lambda: init.Constant(value=3.0),
               lambda i: sorted(set(draw(i).ravel().tolist())), [3.0], canonical=True),
        _kcall("initializers.get('glorot_uniform')", "identifier", get_class("glorot_uniform"),
               lambda i: type(i).__name__, "GlorotUniform", canonical=True),
        _kcall("initializers.get('normal')", "identifier", get_class("normal"), lambda i: type(i).__name__,
               "RandomNormal"),
        _kcall("initializers.get('uniform')", "identifier", get_class("uniform"), lambda i: type(i).__name__,
               "RandomUniform"),
    ]  # fmt: skip


def _at_step(step: int) -> Callable[[Any], float]:
    return lambda schedule: _number(schedule(step))


def _keras_schedule_calls(k: Any) -> list[KeywordCall]:
    s = k.optimizers.schedules
    cb = k.callbacks
    no_round_trip: dict[str, Any] = {"round_trip": None}
    return [
        _kcall("ExponentialDecay(staircase=)", "staircase", lambda: s.ExponentialDecay(0.1, 10, 0.5, staircase=True),
               _at_step(15), 0.05, canonical=True),
        _kcall("CosineDecay(alpha=)", "alpha", lambda: s.CosineDecay(0.1, 10, alpha=0.5), _at_step(10), 0.05,
               canonical=True),
        _kcall("CosineDecay(warmup_target=, warmup_steps=)", "warmup_target",
               lambda: s.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=5), _at_step(5), 0.1),
        _kcall("PiecewiseConstantDecay(boundaries=, values=)", "boundaries",
               lambda: s.PiecewiseConstantDecay(boundaries=[5], values=[0.1, 0.01]), _at_step(6), 0.01, canonical=True),
        _kcall("PolynomialDecay(end_learning_rate=, power=)", "end_learning_rate",
               lambda: s.PolynomialDecay(0.1, 10, end_learning_rate=0.01, power=1.0), _at_step(5), 0.055,
               canonical=True),
        _kcall("InverseTimeDecay(staircase=)", "staircase", lambda: s.InverseTimeDecay(0.1, 10, 1.0, staircase=False),
               _at_step(10), 0.05, canonical=True),
        _kcall("ReduceLROnPlateau(min_delta=)", "min_delta", lambda: cb.ReduceLROnPlateau(min_delta=0.3),
               _attr("min_delta"), 0.3, canonical=True, **no_round_trip),
        _kcall("ReduceLROnPlateau(epsilon=)", "epsilon", lambda: cb.ReduceLROnPlateau(epsilon=0.3),
               _attr("min_delta"), 0.3, **no_round_trip),
        _kcall("EarlyStopping(start_from_epoch=)", "start_from_epoch",
               lambda: cb.EarlyStopping(patience=3, start_from_epoch=2), _attr("start_from_epoch"), 2,
               **no_round_trip),
        _kcall("ModelCheckpoint(period=)", "period",
               lambda: cb.ModelCheckpoint("ckpt.weights.h5", save_weights_only=True, period=2), _attr("period"), 2,
               **no_round_trip),
    ]  # fmt: skip


def _keras_scenario(ctx: Context, build: Callable[[Any], list[KeywordCall]]) -> None:
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    run_calls(ctx, build(k))


@scenario(area="api_calls", requires=["keras"])
def keras_optimizers(ctx: Context) -> None:
    """Catches an optimizer keyword that a release starts rejecting, ignoring or renaming: ``lr=`` (Keras 2.11+
    logs "use `learning_rate`" and then trains with the default 0.001; Keras 3 raises), ``decay=`` (Keras 2
    raises, Keras 3 warns and drops it), ``epsilon``, ``amsgrad``, ``clipnorm``, EMA, ``jit_compile``."""
    _keras_scenario(ctx, _keras_optimizer_calls)


@scenario(area="api_calls", requires=["keras"])
def keras_layers(ctx: Context) -> None:
    """Catches layer keywords of Keras 2 code that Keras 3 rejects or drops: ``fused=``, ``time_major=``,
    ``input_length=``, ``input_dim=``, initializer and regularizer strings, and config round trips that change."""
    _keras_scenario(ctx, _keras_layer_calls)


@scenario(area="api_calls", requires=["keras"])
def keras_losses(ctx: Context) -> None:
    """Catches a loss ``reduction`` name that a release stops accepting ("auto" in Keras 3, "mean" before it) or
    computes differently, and ``from_logits``/``label_smoothing``/``delta`` giving another value."""
    _keras_scenario(ctx, _keras_loss_calls)


@scenario(area="api_calls", requires=["keras"])
def keras_metrics(ctx: Context) -> None:
    """Catches metric keywords (``thresholds``, ``threshold``, ``k``, ``num_thresholds``) no longer changing the
    result they should, and metric configs that do not survive a round trip."""
    _keras_scenario(ctx, _keras_metric_calls)


@scenario(area="api_calls", requires=["keras"])
def keras_initializers(ctx: Context) -> None:
    """Catches initializer keywords and string identifiers ("normal", "uniform": Keras 2 aliases) that a release
    rejects or maps to another initializer, and drawn values no longer following ``stddev``/``gain``/``mode``."""
    _keras_scenario(ctx, _keras_initializer_calls)


@scenario(area="api_calls", requires=["keras"])
def keras_schedules_callbacks(ctx: Context) -> None:
    """Catches learning-rate schedule keywords computing another rate, and callback keywords renamed or dropped:
    ``ReduceLROnPlateau(epsilon=)`` (renamed ``min_delta`` in Keras 2), ``ModelCheckpoint(period=)``."""
    _keras_scenario(ctx, _keras_schedule_calls)


# --------------------------------------------------------------------------------------------------- torch


def _params() -> list[Any]:
    import torch

    return [torch.nn.Parameter(torch.ones(3))]


def _group(key: str) -> Callable[[Any], Any]:
    return lambda optimizer: optimizer.param_groups[0][key]


def _plain_groups(optimizer: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.state_dict()["param_groups"]]


def _optimizer_round_trip(optimizer: Any) -> tuple[Any, Any]:
    """``state_dict`` into a fresh optimizer of the same class: the param groups (hyperparameters) before, after."""
    fresh = type(optimizer)(_params(), lr=0.5)
    fresh.load_state_dict(optimizer.state_dict())
    return _plain_groups(optimizer), _plain_groups(fresh)


def _tcall(label: str, keyword: str, make: Callable[[], Any], effect: Any, expected: Any, **kw: Any) -> KeywordCall:
    return KeywordCall(label, keyword, make, effect, expected, **kw)


def _torch_optimizer_calls() -> list[KeywordCall]:
    import torch

    optim = torch.optim
    rt = {"round_trip": _optimizer_round_trip}
    return [
        _tcall("Adam(lr=)", "lr", lambda: optim.Adam(_params(), lr=0.123), _group("lr"), 0.123, canonical=True, **rt),
        _tcall("Adam(betas=)", "betas", lambda: optim.Adam(_params(), betas=(0.8, 0.99)), _group("betas"),
               [0.8, 0.99], canonical=True, **rt),
        _tcall("Adam(weight_decay=)", "weight_decay", lambda: optim.Adam(_params(), weight_decay=0.1),
               _group("weight_decay"), 0.1, canonical=True, **rt),
        _tcall("Adam(amsgrad=)", "amsgrad", lambda: optim.Adam(_params(), amsgrad=True), _group("amsgrad"), True,
               canonical=True, **rt),
        _tcall("Adam(eps=)", "eps", lambda: optim.Adam(_params(), eps=1e-3), _group("eps"), 1e-3, canonical=True, **rt),
        _tcall("Adam(epsilon=)", "epsilon", lambda: optim.Adam(_params(), epsilon=1e-3), _group("eps"), 1e-3, **rt),
        _tcall("Adam(decoupled_weight_decay=)", "decoupled_weight_decay",
               lambda: optim.Adam(_params(), weight_decay=0.1, decoupled_weight_decay=True),
               _group("decoupled_weight_decay"), True, **rt),
        _tcall("Adam(foreach=)", "foreach", lambda: optim.Adam(_params(), foreach=False), _group("foreach"), False,
               **rt),
        _tcall("Adam(maximize=)", "maximize", lambda: optim.Adam(_params(), maximize=True), _group("maximize"), True,
               **rt),
        _tcall("Adam(capturable=)", "capturable", lambda: optim.Adam(_params(), capturable=False),
               _group("capturable"), False, **rt),
        _tcall("SGD(lr=, momentum=, nesterov=)", "nesterov",
               lambda: optim.SGD(_params(), lr=0.1, momentum=0.9, nesterov=True),
               lambda o: [o.param_groups[0]["momentum"], o.param_groups[0]["nesterov"]], [0.9, True],
               canonical=True, **rt),
        _tcall("SGD() without lr", "lr", lambda: optim.SGD(_params()), _group("lr"), 0.001, **rt),
        _tcall("AdamW(weight_decay=)", "weight_decay", lambda: optim.AdamW(_params(), weight_decay=0.05),
               _group("weight_decay"), 0.05, canonical=True, **rt),
        _tcall("RMSprop(alpha=, centered=)", "centered", lambda: optim.RMSprop(_params(), alpha=0.9, centered=True),
               lambda o: [o.param_groups[0]["alpha"], o.param_groups[0]["centered"]], [0.9, True], canonical=True,
               **rt),
        _tcall("Adagrad(lr_decay=)", "lr_decay", lambda: optim.Adagrad(_params(), lr_decay=0.01), _group("lr_decay"),
               0.01, canonical=True, **rt),
        _tcall("NAdam(decoupled_weight_decay=)", "decoupled_weight_decay",
               lambda: optim.NAdam(_params(), decoupled_weight_decay=True), _group("decoupled_weight_decay"), True,
               **rt),
    ]  # fmt: skip


def _sgd() -> Any:
    import torch

    return torch.optim.SGD(_params(), lr=0.1)


def _lr_after(steps: int, metric: float | None = None) -> Callable[[Any], float]:
    """The learning rate after ``steps`` optimizer + scheduler steps (ReduceLROnPlateau is given ``metric``)."""

    def effect(scheduler: Any) -> float:
        for _ in range(steps):
            scheduler.optimizer.step()
            scheduler.step() if metric is None else scheduler.step(metric)
        return float(scheduler.optimizer.param_groups[0]["lr"])

    return effect


def _scheduler_round_trip(build: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, Any]]:
    """``state_dict`` into a fresh scheduler built the canonical way: the state before and after."""

    def round_trip(scheduler: Any) -> tuple[Any, Any]:
        fresh = build(_sgd())
        fresh.load_state_dict(scheduler.state_dict())
        return _plain_state(scheduler), _plain_state(fresh)

    return round_trip


def _plain_state(scheduler: Any) -> dict[str, Any]:
    return {k: v for k, v in scheduler.state_dict().items() if not callable(v) and k != "optimizer"}


def _torch_scheduler_calls() -> list[KeywordCall]:
    import torch

    sched = torch.optim.lr_scheduler

    def step_lr(opt: Any) -> Any:
        return sched.StepLR(opt, step_size=2, gamma=0.5)

    def plateau(opt: Any) -> Any:
        return sched.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0, threshold=0.0)

    step_rt = {"round_trip": _scheduler_round_trip(step_lr)}
    plateau_rt = {"round_trip": _scheduler_round_trip(plateau)}
    return [
        _tcall("StepLR(step_size=, gamma=)", "gamma", lambda: step_lr(_sgd()), _lr_after(2), 0.05, canonical=True,
               **step_rt),
        _tcall("StepLR(verbose=)", "verbose", lambda: sched.StepLR(_sgd(), step_size=2, gamma=0.5, verbose=True),
               _attr("verbose"), True, **step_rt),
        _tcall("ReduceLROnPlateau(factor=, patience=)", "factor", lambda: plateau(_sgd()), _lr_after(2, 1.0), 0.05,
               canonical=True, **plateau_rt),
        _tcall("ReduceLROnPlateau(verbose=)", "verbose",
               lambda: sched.ReduceLROnPlateau(_sgd(), factor=0.5, patience=0, threshold=0.0, verbose=True),
               _attr("verbose"), True, **plateau_rt),
        _tcall("CosineAnnealingLR(T_max=, eta_min=)", "eta_min",
               lambda: sched.CosineAnnealingLR(_sgd(), T_max=4, eta_min=0.01), _lr_after(4), 0.01, canonical=True),
        _tcall("ExponentialLR(gamma=)", "gamma", lambda: sched.ExponentialLR(_sgd(), gamma=0.5), _lr_after(2), 0.025,
               canonical=True),
        _tcall("LinearLR(start_factor=, total_iters=)", "start_factor",
               lambda: sched.LinearLR(_sgd(), start_factor=0.5, total_iters=2), _lr_after(0), 0.05, canonical=True),
        _tcall("OneCycleLR(max_lr=, total_steps=, three_phase=)", "three_phase",
               lambda: sched.OneCycleLR(_sgd(), max_lr=0.1, total_steps=10, three_phase=True), _lr_after(0), 0.004,
               canonical=True),
        _tcall("CyclicLR(base_lr=, max_lr=)", "base_lr",
               lambda: sched.CyclicLR(_sgd(), base_lr=0.01, max_lr=0.1, cycle_momentum=False), _lr_after(0), 0.01,
               canonical=True),
        _tcall("LambdaLR(lr_lambda=)", "lr_lambda", lambda: sched.LambdaLR(_sgd(), lr_lambda=lambda e: 0.5**e),
               _lr_after(1), 0.05, canonical=True),
    ]  # fmt: skip


def _torch_module_calls() -> list[KeywordCall]:
    import torch

    nn = torch.nn
    batch = torch.ones(2, 5, 8)

    def attention_shapes(mha: Any) -> list[list[int]]:
        out, weights = mha(batch, batch, batch)
        return [list(out.shape), list(weights.shape)]

    return [
        _tcall("MultiheadAttention(batch_first=)", "batch_first", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
               attention_shapes, [[2, 5, 8], [2, 5, 5]], canonical=True),
        _tcall("MultiheadAttention(bias=)", "bias", lambda: nn.MultiheadAttention(8, 2, bias=False),
               lambda m: m.in_proj_bias is None, True, canonical=True),
        _tcall("MultiheadAttention(kdim=, vdim=)", "kdim",
               lambda: nn.MultiheadAttention(8, 2, kdim=4, vdim=6, batch_first=True),
               lambda m: list(m(batch, torch.ones(2, 3, 4), torch.ones(2, 3, 6))[0].shape), [2, 5, 8], canonical=True),
        _tcall("TransformerEncoderLayer(norm_first=)", "norm_first",
               lambda: nn.TransformerEncoderLayer(8, 2, batch_first=True, norm_first=True), _attr("norm_first"), True,
               canonical=True),
        _tcall("TransformerEncoderLayer(activation='gelu')", "activation",
               lambda: nn.TransformerEncoderLayer(8, 2, activation="gelu"),
               lambda layer: getattr(layer.activation, "__name__", type(layer.activation).__name__), "gelu"),
        _tcall("TransformerEncoderLayer(bias=)", "bias", lambda: nn.TransformerEncoderLayer(8, 2, bias=False),
               lambda layer: layer.linear1.bias is None, True),
        _tcall("LSTM(batch_first=, proj_size=)", "proj_size", lambda: nn.LSTM(8, 6, batch_first=True, proj_size=2),
               lambda m: list(m(batch)[0].shape), [2, 5, 2], canonical=True),
        _tcall("Conv2d(padding='same')", "padding", lambda: nn.Conv2d(2, 2, 3, padding="same"),
               lambda m: list(m(torch.ones(1, 2, 5, 5)).shape), [1, 2, 5, 5], canonical=True),
        _tcall("Conv2d(padding_mode='reflect')", "padding_mode", lambda: nn.Conv2d(2, 2, 3, padding_mode="reflect"),
               _attr("padding_mode"), "reflect", canonical=True),
        _tcall("LayerNorm(bias=)", "bias", lambda: nn.LayerNorm(4, bias=False), lambda m: m.bias is None, True),
        _tcall("BatchNorm1d(momentum=None)", "momentum", lambda: nn.BatchNorm1d(4, momentum=None), _attr("momentum"),
               None, canonical=True),
        _tcall("Embedding(padding_idx=)", "padding_idx", lambda: nn.Embedding(10, 3, padding_idx=0),
               lambda m: m.weight[0].abs().sum().item(), 0.0, canonical=True),
    ]  # fmt: skip


def _torch_loss_calls() -> list[KeywordCall]:
    import torch

    nn = torch.nn
    target, pred = torch.zeros(2, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    expected = _expected_losses()

    def value(loss: Any) -> Any:
        out = loss(pred, target)
        return out.item() if out.dim() == 0 else out.tolist()

    def smoothed_ce(loss: Any) -> float:
        return float(loss(torch.log(torch.tensor([[0.2, 0.7, 0.1]])), torch.tensor([1])).item())

    return [
        _tcall("MSELoss(reduction='sum')", "reduction", lambda: nn.MSELoss(reduction="sum"), value, 30.0,
               canonical=True),
        _tcall("MSELoss(reduction='none')", "reduction", lambda: nn.MSELoss(reduction="none"), value,
               [[1.0, 4.0], [9.0, 16.0]], canonical=True),
        _tcall("MSELoss(reduction='elementwise_mean')", "reduction", lambda: nn.MSELoss(reduction="elementwise_mean"),
               value, 7.5),
        _tcall("MSELoss(size_average=)", "size_average", lambda: nn.MSELoss(size_average=False), value, 30.0),
        _tcall("MSELoss(reduce=)", "reduce", lambda: nn.MSELoss(reduce=False), _attr("reduction"), "none"),
        _tcall("CrossEntropyLoss(label_smoothing=)", "label_smoothing",
               lambda: nn.CrossEntropyLoss(label_smoothing=0.1), smoothed_ce, expected["cce_smoothed"],
               canonical=True),
        _tcall("HuberLoss(delta=)", "delta", lambda: nn.HuberLoss(delta=0.5), value, expected["huber_half"],
               canonical=True),
        _tcall("BCEWithLogitsLoss(pos_weight=)", "pos_weight",
               lambda: nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0])),
               lambda loss: loss(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0])).item(),
               (2 * _softplus(-2.0) + _softplus(-1.0)) / 2, canonical=True),
    ]  # fmt: skip


def _torch_init_calls() -> list[KeywordCall]:
    import torch

    init = torch.nn.init

    def fresh(rows: int = 100, cols: int = 400) -> Any:
        torch.manual_seed(5)
        return torch.empty(rows, cols)

    def peak(t: Any) -> float:
        return round(float(t.abs().max()), 2)

    def gram(t: Any) -> float:
        return round(float((t @ t.T).diagonal().mean()), 3)

    generator = torch.Generator
    return [
        # fan_out = 100 rows: bound sqrt(2) * sqrt(3 / 100)
        _tcall("kaiming_uniform_(mode='fan_out', nonlinearity='relu')", "mode",
               lambda: init.kaiming_uniform_(fresh(), mode="fan_out", nonlinearity="relu"), peak,
               round(math.sqrt(6.0 / 100), 2), canonical=True),
        _tcall("kaiming_normal_(a=, nonlinearity='leaky_relu')", "a",
               lambda: init.kaiming_normal_(fresh(), a=0.1, nonlinearity="leaky_relu"),
               lambda t: rounded(float(t.std()), 2),
               rounded(math.sqrt(2.0 / (1 + 0.01)) / math.sqrt(400), 2), canonical=True),
        _tcall("xavier_uniform_(gain=)", "gain", lambda: init.xavier_uniform_(fresh(), gain=2.0), peak,
               round(2.0 * math.sqrt(6.0 / 500), 2), canonical=True),
        _tcall("orthogonal_(gain=)", "gain", lambda: init.orthogonal_(fresh(8, 8), gain=2.0), gram, 4.0,
               canonical=True),
        _tcall("trunc_normal_(a=, b=)", "b", lambda: init.trunc_normal_(fresh(), std=1.0, a=-1.0, b=1.0),
               lambda t: bool(t.abs().max() <= 1.0), True, canonical=True),
        _tcall("kaiming_uniform_(generator=)", "generator",
               lambda: init.kaiming_uniform_(torch.empty(100, 400), generator=generator().manual_seed(1)),
               lambda t: bool(torch.equal(t, init.kaiming_uniform_(torch.empty(100, 400),
                                                                   generator=generator().manual_seed(1)))), True),
    ]  # fmt: skip


@scenario(area="api_calls", requires=["torch"])
def torch_optimizers(ctx: Context) -> None:
    """Catches torch optimizer keywords appearing or going (``decoupled_weight_decay`` on Adam in newer releases,
    Keras's ``epsilon`` spelling never), ``SGD()`` without ``lr``, or a keyword accepted but not stored in the
    param group; round-trips each optimizer's ``state_dict`` into a fresh one."""
    import torch

    ctx.record("torch_version", torch.__version__, kind="info")
    run_calls(ctx, _torch_optimizer_calls())


@scenario(area="api_calls", requires=["torch"])
def torch_schedulers(ctx: Context) -> None:
    """Catches scheduler keywords deprecated and then removed (``verbose=``: deprecated in torch 2.2, gone later)
    and schedulers computing another rate from the same keywords; round-trips their ``state_dict``."""
    import torch

    ctx.record("torch_version", torch.__version__, kind="info")
    run_calls(ctx, _torch_scheduler_calls())


@scenario(area="api_calls", requires=["torch"])
def torch_modules(ctx: Context) -> None:
    """Catches module keywords changing: ``MultiheadAttention(batch_first=, bias=, kdim=)``, Transformer
    ``norm_first``/``bias``/``activation`` strings, ``LSTM(proj_size=)``, ``padding='same'``, ``LayerNorm(bias=)``."""
    import torch

    ctx.record("torch_version", torch.__version__, kind="info")
    run_calls(ctx, _torch_module_calls())


@scenario(area="api_calls", requires=["torch"])
def torch_losses(ctx: Context) -> None:
    """Catches loss keywords changing meaning or going: ``reduction`` names ("elementwise_mean"), the legacy
    ``size_average``/``reduce`` (warned as "use reduction"), ``label_smoothing``, ``pos_weight``, ``delta``."""
    import torch

    ctx.record("torch_version", torch.__version__, kind="info")
    run_calls(ctx, _torch_loss_calls())


@scenario(area="api_calls", requires=["torch"])
def torch_init(ctx: Context) -> None:
    """Catches ``nn.init`` keywords (``mode``, ``nonlinearity``, ``a``, ``gain``, truncation bounds,
    ``generator=``) being rejected or no longer shaping the drawn values as documented."""
    import torch

    ctx.record("torch_version", torch.__version__, kind="info")
    run_calls(ctx, _torch_init_calls())
