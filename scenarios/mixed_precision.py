"""mixed_precision: what a dtype policy or an autocast region does to a model's numbers, on CPU.

A team turns mixed precision on with one line (``set_global_policy("mixed_float16")``, ``torch.autocast``) and
relies on the rest staying put: variables in float32, the layer computing in the half type, the loss scaled so
half-precision gradients do not underflow. Upgrades moved that machinery: Keras 3 replaced Keras 2's
``LossScaleOptimizer`` (``get_scaled_loss`` and ``get_unscaled_gradients`` became ``scale_loss``, the class moved to
``keras.optimizers``), and torch moved ``torch.cuda.amp.*`` to ``torch.amp.*`` behind deprecation warnings. All of it
is dtype semantics, so it is measured on CPU: no GPU is needed to see a dtype, a loss or a warning. Weights and data
come from a NumPy RNG, so the losses are comparable across versions.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

import numpy as np

from harness.worker import capture
from harness.worker.scenario import PRECISIONS, Context, scenario
from scenarios._api_probe import attr_path, probe
from scenarios._frameworks import keras, keras_identity, to_numpy

FEATURES, HIDDEN, UNITS, SAMPLES = 4, 5, 3, 16
KERAS_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
#: How far a mixed-precision loss may sit from the float32 one: bfloat16 keeps 8 bits of mantissa (about 3e-3).
HALF_LOSS_TOLERANCE = 2e-2
INITIAL_SCALE = 1024.0
#: A loss as a tensor-like scalar: Keras 2's ``get_scaled_loss`` reads ``.dtype`` (a Python float has none).
LOSS = np.float32(2.0)


def fixed_data() -> tuple[np.ndarray, np.ndarray]:
    """Inputs and one-hot targets from NumPy's generator: the same bytes in every environment."""
    rng = np.random.default_rng(20261219)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype(np.float32)
    y = np.eye(UNITS, dtype=np.float32)[rng.integers(0, UNITS, size=SAMPLES)]
    return x, y


def fixed_weights(shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """One float32 array per shape from a NumPy RNG, in the order given."""
    rng = np.random.default_rng(7)
    return [rng.uniform(-0.5, 0.5, size=shape).astype(np.float32) for shape in shapes]


def dtype_name(dtype: Any) -> str:
    """``float16`` for a TensorFlow, NumPy or torch dtype, or a Keras 3 dtype string."""
    name = getattr(dtype, "name", None)
    return str(name if isinstance(name, str) else dtype).removeprefix("torch.")


# --- Keras -------------------------------------------------------------------------------------------------------


def _keras_model(k: Any) -> tuple[Any, Any]:
    """Dense-tanh-Dense under the global policy, and a float32 softmax head (as the Keras guide says to keep)."""
    hidden = k.layers.Dense(HIDDEN, activation="tanh")
    model = k.Sequential(
        [k.Input((FEATURES,)), hidden, k.layers.Dense(UNITS), k.layers.Activation("softmax", dtype="float32")]
    )
    model.set_weights(fixed_weights([tuple(w.shape) for w in model.get_weights()]))
    return model, hidden


def _keras_policy_run(k: Any, policy: str) -> dict[str, Any]:
    """Dtypes of one layer under ``policy``, the model's output, and the loss of one SGD step from fixed weights."""
    k.mixed_precision.set_global_policy(policy)
    try:
        model, hidden = _keras_model(k)
        x, y = fixed_data()
        hidden_out = hidden(x[:2])
        model.compile(optimizer=k.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
        history = model.fit(x, y, batch_size=SAMPLES, epochs=1, shuffle=False, verbose=0)
        after = float(model.evaluate(x, y, batch_size=SAMPLES, verbose=0))
        return {
            "dtypes": {
                "policy": str(getattr(hidden.dtype_policy, "name", hidden.dtype_policy)),
                "compute": dtype_name(hidden.compute_dtype),
                "variable": dtype_name(hidden.variable_dtype),
                "kernel": dtype_name(hidden.kernel.dtype),
                "layer_output": dtype_name(hidden_out.dtype),
                "model_output": dtype_name(model(x[:2]).dtype),
            },
            "optimizer": type(model.optimizer).__name__,
            "losses": np.array([history.history["loss"][0], after], dtype=np.float64),
        }
    finally:
        k.mixed_precision.set_global_policy("float32")


@scenario(area="mixed_precision", requires=["keras"])
def keras_policy_dtypes(ctx: Context) -> None:
    """Catches a dtype policy changing a layer's compute, variable or output dtype (``mixed_float16``,
    ``mixed_bfloat16``), ``compile`` no longer wrapping the optimizer for loss scaling under ``mixed_float16``
    (Keras 2's ``LossScaleOptimizerV3``, Keras 3's ``LossScaleOptimizer``), and the loss after one step moving."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    runs = {policy: _keras_policy_run(k, policy) for policy in KERAS_POLICIES}
    for policy, run in runs.items():
        ctx.record(f"{policy}_dtypes", run["dtypes"], kind="config")
        # computed from float16/bfloat16 activations: compared at that precision, not at the float64 they are kept in
        compute = run["dtypes"]["compute"]
        ctx.record(f"{policy}_losses", run["losses"], precision=compute if compute in PRECISIONS else None)
    ctx.record("optimizer_after_compile", {policy: run["optimizer"] for policy, run in runs.items()}, kind="config")
    reference = runs["float32"]["losses"]
    for policy in KERAS_POLICIES[1:]:
        dtypes, gap = runs[policy]["dtypes"], float(np.max(np.abs(runs[policy]["losses"] - reference)))
        half = policy.removeprefix("mixed_")
        ctx.check(f"{policy}_computes_in_{half}", dtypes["compute"] == half == dtypes["layer_output"], **dtypes)
        ctx.check(f"{policy}_keeps_float32_variables", dtypes["variable"] == "float32" == dtypes["kernel"])
        ctx.check(f"{policy}_loss_near_float32", gap <= HALF_LOSS_TOLERANCE, max_abs_error=gap)


LOSS_SCALE_MEMBERS = (
    "get_scaled_loss",
    "get_unscaled_gradients",
    "scale_loss",
    "loss_scale",
    "dynamic",
    "initial_scale",
    "dynamic_growth_steps",
    "inner_optimizer",
)


def _itself(found: Any) -> Any:
    """Resolving is the use: a location or a name that exists."""
    return found


def _member_use(name: str) -> Callable[[Any], Any]:
    if name in ("get_scaled_loss", "scale_loss", "loss_scale", "initial_scale"):
        return lambda found: float(np.asarray(to_numpy(found(LOSS) if callable(found) else found)))
    if name == "get_unscaled_gradients":
        return lambda found: found([np.float32(2048.0)])
    return _itself


def _member_values(optimizer: Any) -> dict[str, Any]:
    """What each loss-scaling member gives (None where it is missing): 2.0 scaled, or the scale."""
    values: dict[str, Any] = {}
    for name in ("get_scaled_loss", "scale_loss", "loss_scale", "initial_scale"):
        try:
            values[name] = _member_use(name)(getattr(optimizer, name))
        except Exception:
            values[name] = None
    return values


@scenario(area="mixed_precision", requires=["keras"])
def keras_loss_scale_optimizer(ctx: Context) -> None:
    """Catches ``LossScaleOptimizer`` moving (``keras.mixed_precision`` in Keras 2 and tf-keras; also
    ``keras.optimizers`` in Keras 3) and its methods changing: ``get_scaled_loss``/``get_unscaled_gradients`` are
    gone in Keras 3, where ``scale_loss`` does the job; the scaled value of a loss must stay loss x scale."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    locations = {
        path: probe(functools.partial(attr_path, k, path), _itself)
        for path in ("mixed_precision.LossScaleOptimizer", "optimizers.LossScaleOptimizer")
    }
    ctx.record("locations", locations, kind="api_map")
    optimizer = k.mixed_precision.LossScaleOptimizer(k.optimizers.SGD(learning_rate=0.1), initial_scale=INITIAL_SCALE)
    ctx.record("class", f"{type(optimizer).__module__}.{type(optimizer).__name__}", kind="config")
    members = {
        name: probe(functools.partial(getattr, optimizer, name), _member_use(name)) for name in LOSS_SCALE_MEMBERS
    }
    ctx.record("members", members, kind="api_map")
    values = _member_values(optimizer)
    ctx.record("values", values, kind="config")
    scaled = [v for name, v in values.items() if name in ("get_scaled_loss", "scale_loss") and v is not None]
    ctx.check("a_way_to_scale_the_loss", bool(scaled), **values)
    ctx.check("scaled_loss_is_loss_times_scale", all(v == float(LOSS) * INITIAL_SCALE for v in scaled), scaled=scaled)


# --- torch -------------------------------------------------------------------------------------------------------


def _torch_model(torch: Any) -> Any:
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, UNITS))
    shapes = [tuple(p.shape) for p in model.parameters()]
    with torch.no_grad():
        for param, value in zip(model.parameters(), fixed_weights(shapes), strict=True):
            param.copy_(torch.from_numpy(value))
    return model


def _autocast_op_dtypes(torch: Any, model: Any, x: Any, target: Any) -> dict[str, str]:
    """The dtype each common op returns inside the region: autocast's per-op lists decide it, not the inputs."""
    functional = torch.nn.functional
    logits = model(x)
    ops = {
        "linear": logits,
        "matmul": x @ x.T,
        "tanh": torch.tanh(logits),
        "softmax": torch.softmax(logits, dim=-1),
        "log_softmax": torch.log_softmax(logits, dim=-1),
        "add_float32": logits + x[:, :UNITS],
        "sum": logits.sum(),
        "mse_loss": functional.mse_loss(logits, target),
        "cross_entropy": functional.cross_entropy(logits, target.argmax(dim=-1)),
    }
    return {name: dtype_name(value.dtype) for name, value in ops.items()}


def _torch_losses(torch: Any, autocast: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Loss before and after one SGD step (forward in the region when ``autocast``), the output, grad dtypes."""
    model, (x_np, y_np) = _torch_model(torch), fixed_data()
    x, labels = torch.from_numpy(x_np), torch.from_numpy(y_np).argmax(dim=-1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def forward() -> tuple[Any, Any]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            output = model(x)
            return output, torch.nn.functional.cross_entropy(output, labels)

    output, loss = forward()
    loss.backward()
    grad_dtypes = sorted({dtype_name(p.grad.dtype) for p in model.parameters()})
    optimizer.step()
    _, after = forward()
    losses = np.array([float(loss.detach()), float(after.detach())], dtype=np.float64)
    return losses, output.detach().float().numpy(), grad_dtypes


@scenario(area="mixed_precision", requires=["torch"])
def torch_autocast_cpu_bfloat16(ctx: Context) -> None:
    """Catches ``torch.autocast("cpu", dtype=torch.bfloat16)`` changing which ops run in bfloat16 (its per-op
    lists), the outputs and the loss after one step from fixed weights, or gradients no longer float32."""
    import torch

    ctx.record("torch", torch.__version__, kind="info")
    model, (x_np, y_np) = _torch_model(torch), fixed_data()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        op_dtypes = _autocast_op_dtypes(torch, model, torch.from_numpy(x_np), torch.from_numpy(y_np))
    ctx.record("op_dtypes", op_dtypes, kind="config")
    half_losses, half_output, grad_dtypes = _torch_losses(torch, autocast=True)
    full_losses, full_output, _ = _torch_losses(torch, autocast=False)
    ctx.record("bfloat16_output", half_output, precision="bfloat16")
    ctx.record("bfloat16_losses", half_losses, precision="bfloat16")
    ctx.record("float32_losses", full_losses)
    ctx.record("grad_dtypes", grad_dtypes, kind="config")
    gap = float(np.max(np.abs(half_losses - full_losses)))
    ctx.check("linear_runs_in_bfloat16", op_dtypes["linear"] == "bfloat16", linear=op_dtypes["linear"])
    ctx.check("gradients_stay_float32", grad_dtypes == ["float32"], grad_dtypes=grad_dtypes)
    ctx.check("bfloat16_loss_near_float32", gap <= HALF_LOSS_TOLERANCE, max_abs_error=gap)
    output_gap = float(np.max(np.abs(half_output - full_output)))
    ctx.check("bfloat16_output_near_float32", output_gap <= HALF_LOSS_TOLERANCE, max_abs_error=output_gap)


AMP_SYMBOLS = (
    "amp.autocast",
    "amp.GradScaler",
    "amp.custom_fwd",
    "cuda.amp.autocast",
    "cuda.amp.GradScaler",
    "cuda.amp.custom_fwd",
    "cpu.amp.autocast",
    "cpu.amp.GradScaler",
)


def _amp_calls(torch: Any) -> dict[str, Callable[[], Any]]:
    """Constructions a training script makes, runnable without a GPU (they disable themselves, with a warning)."""
    return {
        "torch.cuda.amp.autocast()": lambda: torch.cuda.amp.autocast(),
        "torch.cuda.amp.GradScaler()": lambda: torch.cuda.amp.GradScaler(),
        "torch.cpu.amp.autocast()": lambda: torch.cpu.amp.autocast(),
        "torch.amp.autocast('cuda')": lambda: torch.amp.autocast("cuda"),
        "torch.amp.GradScaler('cpu')": lambda: torch.amp.GradScaler("cpu"),
        "torch.amp.GradScaler()": lambda: torch.amp.GradScaler(),
    }


def _raiser(frame: FrameType | None) -> str:
    """The module of the first frame outside the warnings machinery: the code that called ``warnings.warn``."""
    while frame is not None and frame.f_globals.get("__name__") in ("warnings", "_py_warnings"):
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def _warned(call: Callable[[], Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The call's value (or its error text) and its Python warnings, each with two origins.

    ``raised_in`` is the module that called ``warnings.warn`` (torch's code, or ``typing_extensions`` for a
    ``@deprecated`` decorator); ``shown_at`` is the module the warning is attributed to (``stacklevel``): the line a
    user sees, which is the caller's when the framework points the warning at it. The cell's capture still gets
    every warning (forwarded).
    """
    warned: list[dict[str, Any]] = []
    with capture.capture():
        forward = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            text = (str(message).splitlines() or [""])[0][:200]
            origins = {"raised_in": _raiser(sys._getframe(1)), "shown_at": capture.module_of_file(filename)}
            warned.append({"category": category.__name__, "message": text, **origins})
            forward(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            value = call()
        except Exception as exc:
            value = f"error: {type(exc).__name__}"
    return value, warned


@scenario(area="mixed_precision", requires=["torch"])
def torch_amp_namespace_move(ctx: Context) -> None:
    """Catches the ``torch.cuda.amp.*`` -> ``torch.amp.*`` move: which names exist, which constructions warn
    (``FutureWarning`` deprecations, the "CUDA is not available" notice) and from which module, and whether a
    ``GradScaler`` on a machine without a GPU scales the loss at all."""
    import torch

    ctx.record("torch", torch.__version__, kind="info")
    present = {f"torch.{path}": probe(functools.partial(attr_path, torch, path), _itself) for path in AMP_SYMBOLS}
    ctx.record("symbols", present, kind="api_map")
    warnings_by_call, scaler_enabled = {}, {}
    for label, call in _amp_calls(torch).items():
        value, warned = _warned(call)
        warnings_by_call[label] = warned
        if hasattr(value, "is_enabled"):
            scaler_enabled[label] = bool(value.is_enabled())
    ctx.record("warnings", warnings_by_call, kind="warnings")
    ctx.record("scaler_enabled", scaler_enabled, kind="config")
    deprecated = sorted(label for label, warned in warnings_by_call.items() if _is_deprecation(warned))
    ctx.record("deprecated_calls", deprecated, kind="config")
    new_api_warns = [w for w in warnings_by_call["torch.amp.autocast('cuda')"] if w["category"] == "FutureWarning"]
    ctx.check("torch_amp_autocast_not_deprecated", not new_api_warns, warnings=new_api_warns)


def _is_deprecation(warned: list[dict[str, Any]]) -> bool:
    return any(w["category"] in ("FutureWarning", "DeprecationWarning") for w in warned)
