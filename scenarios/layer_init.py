"""layer_init: default initializers and the values they draw under a fixed seed."""

from __future__ import annotations

import math

from harness.checks import constant, uniform_bound
from harness.scenario import Context, scenario
from scenarios._frameworks import keras, keras_identity

FAN_IN, UNITS = 32, 64


@scenario(area="layer_init", requires=["keras"])
def keras_dense(ctx: Context) -> None:
    """Catches a change of ``Dense``'s default kernel/bias initializer, or of the values drawn under a fixed seed.

    The kernel is checked against the distribution the layer reports (glorot-uniform: bound √(6/(fan_in+fan_out)));
    a change of default shows up as drift of the recorded config, a broken initializer as a failed check.
    """
    k = keras()
    layer = k.layers.Dense(UNITS)
    layer.build((None, FAN_IN))
    kernel, bias = layer.get_weights()
    config = layer.get_config()
    ctx.record("keras", keras_identity())
    ctx.record("kernel_initializer", config["kernel_initializer"], kind="config")
    ctx.record("bias_initializer", config["bias_initializer"], kind="config")
    ctx.record("kernel", kernel)
    ctx.record("bias", bias)
    ctx.check("kernel_shape", kernel.shape == (FAN_IN, UNITS), shape=list(kernel.shape))
    kernel_init = config["kernel_initializer"].get("class_name")
    if kernel_init == "GlorotUniform":
        uniform_bound(ctx, "kernel_glorot_uniform", kernel, math.sqrt(6.0 / (FAN_IN + UNITS)))
    else:
        ctx.note(f"kernel initializer is {kernel_init}; no distribution check for it here")
    if config["bias_initializer"].get("class_name") == "Zeros":
        constant(ctx, "bias_zeros", bias, 0.0)


@scenario(area="layer_init", requires=["torch"])
def torch_linear(ctx: Context) -> None:
    """Catches a change of ``nn.Linear``'s default init (kaiming-uniform, a=√5, i.e. U(±1/√fan_in)) or its stream.

    Values are drawn right after ``torch.manual_seed``, so any change to the order or number of RNG draws in
    ``reset_parameters`` shows up as drift of the recorded weights.
    """
    import torch

    layer = torch.nn.Linear(FAN_IN, UNITS)
    weight = layer.weight.detach().numpy().copy()
    bias = layer.bias.detach().numpy().copy()
    ctx.record("torch_version", torch.__version__)
    ctx.record("weight", weight)
    ctx.record("bias", bias)
    ctx.check("weight_shape", weight.shape == (UNITS, FAN_IN), shape=list(weight.shape))
    bound = 1.0 / math.sqrt(FAN_IN)
    uniform_bound(ctx, "weight_kaiming_uniform", weight, bound)
    # 64 values: too few for the variance test to be tight, so only the bound is checked strictly.
    uniform_bound(ctx, "bias_uniform", bias, bound, var_rtol=0.5)
