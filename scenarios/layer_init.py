"""layer_init: default initializers, the values they draw under a fixed seed, and layer defaults.

Each scenario records the resolved initializer configs (a changed default shows as config drift), the drawn values
(a changed RNG stream shows as value drift) and checks the values against the distribution the layer itself reports
(so ``fail`` means the initializer is broken, not merely different).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.worker.checks import constant, normal_moments, orthogonal, uniform_bound
from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity, to_numpy

FAN_IN, UNITS = 32, 64


def _keras_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's own fan rule: for kernels beyond 2-D the leading dimensions are the receptive field."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _check_initializer(ctx: Context, name: str, config: dict[str, Any], values: Any) -> None:
    """Check ``values`` against the distribution ``config`` names; note where there is no check for it."""
    kind = config.get("class_name")
    params = config.get("config") or {}
    array = np.asarray(values)
    if kind == "GlorotUniform":
        fan_in, fan_out = _keras_fans(array.shape)
        uniform_bound(ctx, f"{name}_glorot_uniform", array, math.sqrt(6.0 / (fan_in + fan_out)))
    elif kind == "Orthogonal":
        orthogonal(ctx, f"{name}_orthogonal", array.reshape(-1, array.shape[-1]))
    elif kind == "Zeros":
        constant(ctx, f"{name}_zeros", array, 0.0)
    elif kind == "Ones":
        constant(ctx, f"{name}_ones", array, 1.0)
    elif kind == "RandomUniform":
        low, high = float(params.get("minval", -0.05)), float(params.get("maxval", 0.05))
        uniform_bound(ctx, f"{name}_uniform", array - (low + high) / 2, (high - low) / 2)
    else:
        ctx.note(f"{name}: initializer {kind} has no distribution check here")


def _record_keras_layer(ctx: Context, layer: Any, init_keys: tuple[str, ...]) -> dict[str, Any]:
    config: dict[str, Any] = layer.get_config()
    ctx.record("keras", keras_identity(), kind="info")
    for key in init_keys:
        ctx.record(key, config[key], kind="config")
    return config


@scenario(area="layer_init", requires=["keras"])
def keras_dense(ctx: Context) -> None:
    """Catches a change of ``Dense``'s default kernel/bias initializer, or of the values drawn under a fixed seed.

    The kernel is checked against the distribution the layer reports (glorot-uniform: bound √(6/(fan_in+fan_out)));
    a change of default shows up as drift of the recorded config, a broken initializer as a failed check.
    """
    layer = keras().layers.Dense(UNITS)
    layer.build((None, FAN_IN))
    kernel, bias = layer.get_weights()
    config = _record_keras_layer(ctx, layer, ("kernel_initializer", "bias_initializer"))
    ctx.record("kernel", kernel)
    ctx.record("bias", bias)
    ctx.check("kernel_shape", kernel.shape == (FAN_IN, UNITS), shape=list(kernel.shape))
    _check_initializer(ctx, "kernel", config["kernel_initializer"], kernel)
    _check_initializer(ctx, "bias", config["bias_initializer"], bias)


@scenario(area="layer_init", requires=["keras"])
def keras_conv2d(ctx: Context) -> None:
    """Catches a change of ``Conv2D``'s default initializers or of the fan rule for 4-D kernels."""
    layer = keras().layers.Conv2D(8, 3)
    layer.build((None, 8, 8, 4))
    kernel, bias = layer.get_weights()
    config = _record_keras_layer(ctx, layer, ("kernel_initializer", "bias_initializer"))
    ctx.record("kernel", kernel)
    ctx.record("bias", bias)
    ctx.check("kernel_shape", kernel.shape == (3, 3, 4, 8), shape=list(kernel.shape))
    _check_initializer(ctx, "kernel", config["kernel_initializer"], kernel)
    _check_initializer(ctx, "bias", config["bias_initializer"], bias)


@scenario(area="layer_init", requires=["keras"])
def keras_lstm(ctx: Context) -> None:
    """Catches changes of ``LSTM``'s kernel / recurrent-kernel initializers and of ``unit_forget_bias``.

    The documented defaults: glorot-uniform kernel, orthogonal recurrent kernel, zero bias except ones on the forget
    gate (the second quarter of the bias) when ``unit_forget_bias=True``.
    """
    units, features = 16, 8
    layer = keras().layers.LSTM(units)
    layer.build((None, 5, features))
    kernel, recurrent, bias = layer.get_weights()
    config = _record_keras_layer(
        ctx, layer, ("kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias")
    )
    for name, value in (("kernel", kernel), ("recurrent_kernel", recurrent), ("bias", bias)):
        ctx.record(name, value)
    _check_initializer(ctx, "kernel", config["kernel_initializer"], kernel)
    _check_initializer(ctx, "recurrent_kernel", config["recurrent_initializer"], recurrent)
    if config["unit_forget_bias"] and config["bias_initializer"].get("class_name") == "Zeros":
        expected = np.zeros(4 * units, dtype=np.float32)
        expected[units : 2 * units] = 1.0
        ctx.check(
            "bias_unit_forget",
            np.array_equal(bias, expected),
            "bias is not zeros with ones on the forget gate",
            forget_gate_mean=float(bias[units : 2 * units].mean()),
            other_abs_max=float(np.abs(np.delete(bias, np.s_[units : 2 * units])).max()),
        )


@scenario(area="layer_init", requires=["keras"])
def keras_gru(ctx: Context) -> None:
    """Catches changes of ``GRU``'s initializers and of ``reset_after`` (which changes the bias shape)."""
    units, features = 16, 8
    layer = keras().layers.GRU(units)
    layer.build((None, 5, features))
    kernel, recurrent, bias = layer.get_weights()
    config = _record_keras_layer(
        ctx, layer, ("kernel_initializer", "recurrent_initializer", "bias_initializer", "reset_after")
    )
    for name, value in (("kernel", kernel), ("recurrent_kernel", recurrent), ("bias", bias)):
        ctx.record(name, value)
    expected_bias = (2, 3 * units) if config["reset_after"] else (3 * units,)
    ctx.check("bias_shape", bias.shape == expected_bias, shape=list(bias.shape), expected=list(expected_bias))
    _check_initializer(ctx, "kernel", config["kernel_initializer"], kernel)
    _check_initializer(ctx, "recurrent_kernel", config["recurrent_initializer"], recurrent)
    _check_initializer(ctx, "bias", config["bias_initializer"], bias)


@scenario(area="layer_init", requires=["keras"])
def keras_embedding(ctx: Context) -> None:
    """Catches a change of ``Embedding``'s default initializer (uniform ±0.05) or of its drawn values."""
    layer = keras().layers.Embedding(100, 8)
    layer.build((None, 4))
    (table,) = layer.get_weights()
    config = _record_keras_layer(ctx, layer, ("embeddings_initializer",))
    ctx.record("embeddings", table)
    _check_initializer(ctx, "embeddings", config["embeddings_initializer"], table)


@scenario(area="layer_init", requires=["keras"])
def keras_batch_normalization(ctx: Context) -> None:
    """Catches changes of ``BatchNormalization``'s default momentum/epsilon and of its weight initializers."""
    layer = keras().layers.BatchNormalization()
    layer.build((None, 6))
    gamma, beta, mean, variance = layer.get_weights()
    config = _record_keras_layer(
        ctx,
        layer,
        ("gamma_initializer", "beta_initializer", "moving_mean_initializer", "moving_variance_initializer"),
    )
    ctx.record("momentum", float(config["momentum"]))
    ctx.record("epsilon", float(config["epsilon"]))
    ctx.check("momentum_in_range", 0 < config["momentum"] < 1, momentum=config["momentum"])
    ctx.check("epsilon_positive", config["epsilon"] > 0, epsilon=config["epsilon"])
    for name, value, key in (
        ("gamma", gamma, "gamma_initializer"),
        ("beta", beta, "beta_initializer"),
        ("moving_mean", mean, "moving_mean_initializer"),
        ("moving_variance", variance, "moving_variance_initializer"),
    ):
        ctx.record(name, value)
        _check_initializer(ctx, name, config[key], value)


@scenario(area="layer_init", requires=["keras"])
def keras_layer_normalization(ctx: Context) -> None:
    """Catches changes of ``LayerNormalization``'s default epsilon and gamma/beta initializers."""
    layer = keras().layers.LayerNormalization()
    layer.build((None, 6))
    gamma, beta = layer.get_weights()
    config = _record_keras_layer(ctx, layer, ("gamma_initializer", "beta_initializer"))
    ctx.record("epsilon", float(config["epsilon"]))
    ctx.record("gamma", gamma)
    ctx.record("beta", beta)
    _check_initializer(ctx, "gamma", config["gamma_initializer"], gamma)
    _check_initializer(ctx, "beta", config["beta_initializer"], beta)


@scenario(area="layer_init", requires=["keras"])
def keras_multi_head_attention(ctx: Context) -> None:
    """Catches changes of ``MultiHeadAttention``'s projection initializers, weight layout or drawn values."""
    k = keras()
    layer = k.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    query = np.ones((1, 3, 8), dtype=np.float32)
    layer(query, query)
    config = _record_keras_layer(ctx, layer, ("kernel_initializer", "bias_initializer"))
    names = ("query", "key", "value", "output")
    weights = layer.get_weights()
    ctx.check("weight_count", len(weights) == 8, count=len(weights))
    ctx.record("shapes", {f"w{i}": list(w.shape) for i, w in enumerate(weights)}, kind="config")
    rules = {}
    for i, name in enumerate(names):
        kernel, bias = weights[2 * i], weights[2 * i + 1]
        ctx.record(f"{name}_kernel", kernel)
        ctx.record(f"{name}_bias", bias)
        _check_initializer(ctx, f"{name}_bias", config["bias_initializer"], bias)
        rules[name] = _glorot_fan_rule(ctx, f"{name}_kernel", kernel, input_side=1 if name != "output" else 2)
    # Which fan rule the projections were drawn with: Keras 2 uses the N-D rule on the 3-D kernel, Keras 3 views
    # the projection as a 2-D matrix. Recorded as text, so a change between versions is drift with a name.
    ctx.record("glorot_fan_rules", rules, kind="config")


def _glorot_fan_rule(ctx: Context, name: str, kernel: Any, input_side: int) -> str:
    """Bounded by the widest plausible glorot bound; return which fan rule the sample variance matches."""
    shape = kernel.shape
    fan_in_2d = int(np.prod(shape[:input_side]))
    fan_out_2d = int(np.prod(shape[input_side:]))
    candidates = {
        "nd": math.sqrt(6.0 / sum(_keras_fans(shape))),
        "2d": math.sqrt(6.0 / (fan_in_2d + fan_out_2d)),
    }
    widest = max(candidates.values())
    peak = float(np.abs(kernel).max())
    ctx.check(f"{name}_bounded", peak <= widest * (1 + 1e-6), max_abs=peak, bound=widest)
    variance = float(np.var(kernel))
    for rule, bound in candidates.items():
        if abs(variance - bound * bound / 3) <= 0.25 * bound * bound / 3:
            return rule
    return "other"


@scenario(area="layer_init", requires=["keras"])
def keras_dropout(ctx: Context) -> None:
    """Catches a change of ``Dropout``'s mask under a seed, its keep rate or its 1/(1-rate) scaling."""
    rate, n = 0.5, 4000
    layer = keras().layers.Dropout(rate)
    out = to_numpy(layer(np.ones((n,), dtype=np.float32), training=True))
    mask = (out != 0).astype(np.uint8)
    ctx.record("mask", mask)
    keep = float(mask.mean())
    tolerance = 5 * math.sqrt(rate * (1 - rate) / n)
    ctx.check("keep_rate", abs(keep - (1 - rate)) <= tolerance, keep_rate=keep, expected=1 - rate, tol=tolerance)
    kept = out[mask == 1]
    ctx.check("scaling", bool(np.allclose(kept, 1 / (1 - rate))), kept_value=float(kept[0]) if kept.size else None)


@scenario(area="layer_init", requires=["keras>=3"])
def keras3_seeded_initializers(ctx: Context) -> None:
    """The same Keras 3 initializers and random ops with the same explicit seeds, on whichever backend runs them.

    Recorded under one id in every Keras 3 environment, so TensorFlow-backend and torch-backend values are
    compared directly: Keras 3 promises backend-independent seeded draws only for some ops, and this shows which.
    """
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    glorot = to_numpy(k.initializers.GlorotUniform(seed=42)(shape=(16, 16)))
    normal = to_numpy(k.initializers.RandomNormal(seed=42)(shape=(256,)))
    uniform = to_numpy(k.random.uniform((8,), seed=42))
    ctx.record("glorot_uniform_seed42", glorot)
    ctx.record("random_normal_seed42", normal)
    ctx.record("random_uniform_seed42", uniform)
    uniform_bound(ctx, "glorot_bound", glorot, math.sqrt(6.0 / 32))
    normal_moments(ctx, "random_normal_moments", normal, 0.0, 0.05)
    ctx.check("uniform_range", bool(((uniform >= 0) & (uniform < 1)).all()), min=float(uniform.min()))


# ---------------------------------------------------------------------------------------------------- torch


@scenario(area="layer_init", requires=["torch"])
def torch_linear(ctx: Context) -> None:
    """Catches a change of ``nn.Linear``'s default init (kaiming-uniform, a=√5, i.e. U(±1/√fan_in)) or its stream.

    Values are drawn right after ``torch.manual_seed``, so any change to the order or number of RNG draws in
    ``reset_parameters`` shows up as drift of the recorded weights.
    """
    import torch

    layer = torch.nn.Linear(FAN_IN, UNITS)
    weight = to_numpy(layer.weight)
    bias = to_numpy(layer.bias)
    ctx.record("torch_version", torch.__version__, kind="info")
    ctx.record("weight", weight)
    ctx.record("bias", bias)
    ctx.check("weight_shape", weight.shape == (UNITS, FAN_IN), shape=list(weight.shape))
    bound = 1.0 / math.sqrt(FAN_IN)
    uniform_bound(ctx, "weight_kaiming_uniform", weight, bound)
    # 64 values: too few for the variance test to be tight, so it is loosened.
    uniform_bound(ctx, "bias_uniform", bias, bound, var_rtol=0.5)


@scenario(area="layer_init", requires=["torch"])
def torch_conv2d(ctx: Context) -> None:
    """Catches a change of ``nn.Conv2d``'s default init: U(±1/√fan_in) with fan_in = in_channels·kh·kw."""
    import torch

    layer = torch.nn.Conv2d(4, 8, 3)
    weight, bias = to_numpy(layer.weight), to_numpy(layer.bias)
    ctx.record("weight", weight)
    ctx.record("bias", bias)
    bound = 1.0 / math.sqrt(4 * 3 * 3)
    uniform_bound(ctx, "weight_kaiming_uniform", weight, bound)
    uniform_bound(ctx, "bias_uniform", bias, bound, var_rtol=1.0)


@scenario(area="layer_init", requires=["torch"])
def torch_lstm(ctx: Context) -> None:
    """Catches a change of ``nn.LSTM``'s init: every weight and bias U(±1/√hidden_size), in a fixed draw order."""
    import torch

    hidden = 16
    layer = torch.nn.LSTM(8, hidden)
    bound = 1.0 / math.sqrt(hidden)
    for name, param in layer.named_parameters():
        values = to_numpy(param)
        ctx.record(name, values)
        uniform_bound(ctx, f"{name}_uniform", values, bound, var_rtol=0.5)


@scenario(area="layer_init", requires=["torch"])
def torch_embedding(ctx: Context) -> None:
    """Catches a change of ``nn.Embedding``'s init: N(0, 1)."""
    import torch

    table = to_numpy(torch.nn.Embedding(100, 8).weight)
    ctx.record("weight", table)
    normal_moments(ctx, "weight_standard_normal", table, 0.0, 1.0)


@scenario(area="layer_init", requires=["torch"])
def torch_batch_norm2d(ctx: Context) -> None:
    """Catches changes of ``nn.BatchNorm2d``'s defaults: momentum 0.1, eps 1e-5, weight ones, bias zeros."""
    import torch

    layer = torch.nn.BatchNorm2d(6)
    ctx.record("momentum", float(layer.momentum))
    ctx.record("eps", float(layer.eps))
    ctx.check("momentum_in_range", 0 < layer.momentum < 1, momentum=layer.momentum)
    constant(ctx, "weight_ones", to_numpy(layer.weight), 1.0)
    constant(ctx, "bias_zeros", to_numpy(layer.bias), 0.0)
    constant(ctx, "running_mean_zeros", to_numpy(layer.running_mean), 0.0)
    constant(ctx, "running_var_ones", to_numpy(layer.running_var), 1.0)


@scenario(area="layer_init", requires=["torch"])
def torch_layer_norm(ctx: Context) -> None:
    """Catches changes of ``nn.LayerNorm``'s defaults: eps 1e-5, weight ones, bias zeros."""
    import torch

    layer = torch.nn.LayerNorm(6)
    ctx.record("eps", float(layer.eps))
    constant(ctx, "weight_ones", to_numpy(layer.weight), 1.0)
    constant(ctx, "bias_zeros", to_numpy(layer.bias), 0.0)


@scenario(area="layer_init", requires=["torch"])
def torch_multihead_attention(ctx: Context) -> None:
    """Catches changes of ``nn.MultiheadAttention``'s init: xavier-uniform in_proj, zero biases."""
    import torch

    embed = 8
    layer = torch.nn.MultiheadAttention(embed, 2)
    in_proj = to_numpy(layer.in_proj_weight)
    ctx.record("in_proj_weight", in_proj)
    ctx.record("out_proj_weight", to_numpy(layer.out_proj.weight))
    uniform_bound(ctx, "in_proj_xavier_uniform", in_proj, math.sqrt(6.0 / (embed + 3 * embed)), var_rtol=0.3)
    uniform_bound(ctx, "out_proj_uniform", to_numpy(layer.out_proj.weight), 1 / math.sqrt(embed), var_rtol=0.5)
    constant(ctx, "in_proj_bias_zeros", to_numpy(layer.in_proj_bias), 0.0)
    constant(ctx, "out_proj_bias_zeros", to_numpy(layer.out_proj.bias), 0.0)


@scenario(area="layer_init", requires=["torch"])
def torch_dropout(ctx: Context) -> None:
    """Catches a change of ``nn.functional.dropout``'s mask under a seed, its keep rate or its scaling."""
    import torch

    rate, n = 0.5, 4000
    out = to_numpy(torch.nn.functional.dropout(torch.ones(n), p=rate, training=True))
    mask = (out != 0).astype(np.uint8)
    ctx.record("mask", mask)
    keep = float(mask.mean())
    tolerance = 5 * math.sqrt(rate * (1 - rate) / n)
    ctx.check("keep_rate", abs(keep - (1 - rate)) <= tolerance, keep_rate=keep, expected=1 - rate, tol=tolerance)
    ctx.check("scaling", bool(np.allclose(out[mask == 1], 1 / (1 - rate))))
