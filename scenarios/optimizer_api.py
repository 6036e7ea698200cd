"""optimizer_api: which optimizer APIs exist and work, their resolved defaults, and what their updates compute.

API maps probe by importing, constructing and calling (a name that resolves can still be a placeholder that raises
when used), and note deprecation warnings. Update rules run a few steps on fixed weights and fixed gradients (no
randomness) and are matched against closed-form NumPy references, so a change is attributed to the rule.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.worker.checks import allclose
from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios._api_probe import attr_path, construct_and_call, imported, probe, use_schedule
from scenarios._frameworks import is_keras3, keras, keras_identity, to_numpy
from scenarios._references import GRADIENTS, INITIAL, match_rule, run_rule

_KERAS_OPTIMIZERS = (
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Adafactor", "Lion", "Lamb",
)  # fmt: skip
_SCHEDULES = {
    "ExponentialDecay": (0.1, 10, 0.9),
    "CosineDecay": (0.1, 10),
    "CosineDecayRestarts": (0.1, 10),
    "PiecewiseConstantDecay": ([5], [0.1, 0.01]),
    "PolynomialDecay": (0.1, 10),
    "InverseTimeDecay": (0.1, 10, 0.5),
}
_PREPROCESSING = ("Normalization", "RandomFlip", "Rescaling", "Resizing")


# --------------------------------------------------------------------------------------------------- Keras


def _keras_variable(k: Any, values: np.ndarray) -> Any:
    if is_keras3(k):
        return k.Variable(values.astype(np.float32))
    import tensorflow as tf

    return tf.Variable(values.astype(np.float32))


def _keras_apply(k: Any, optimizer: Any, variable: Any, gradient: np.ndarray) -> None:
    if is_keras3(k):
        optimizer.apply_gradients([(k.ops.convert_to_tensor(gradient.astype(np.float32)), variable)])
    else:
        import tensorflow as tf

        optimizer.apply_gradients([(tf.constant(gradient.astype(np.float32)), variable)])


def _use_keras_optimizer(k: Any) -> Callable[[Any], Any]:
    def use(cls: Any) -> None:
        optimizer = cls()
        variable = _keras_variable(k, np.ones(3))
        _keras_apply(k, optimizer, variable, np.full(3, 0.1))

    return use


def _keras_api_map(ctx: Context, root: Any, label: str) -> dict[str, str]:
    k = keras()
    api: dict[str, str] = {}
    for namespace in ("optimizers", "optimizers.experimental", "optimizers.legacy"):
        for name in _KERAS_OPTIMIZERS:
            api[f"{label}.{namespace}.{name}"] = probe(
                functools.partial(attr_path, root, f"{namespace}.{name}"), _use_keras_optimizer(k)
            )
    for name, args in _SCHEDULES.items():
        api[f"{label}.optimizers.schedules.{name}"] = probe(
            functools.partial(attr_path, root, f"optimizers.schedules.{name}"), use_schedule(args)
        )
    model = k.Sequential([k.Input((2,)), k.layers.Dense(1)])
    api[f"{label}.models.experimental.SharpnessAwareMinimization"] = probe(
        functools.partial(attr_path, root, "models.experimental.SharpnessAwareMinimization"), lambda cls: cls(model)
    )
    images = np.ones((1, 4, 4, 3), dtype=np.float32)
    for name in _PREPROCESSING:
        args = (2, 2) if name == "Resizing" else (1 / 255.0,) if name == "Rescaling" else ()
        api[f"{label}.layers.experimental.preprocessing.{name}"] = probe(
            functools.partial(attr_path, root, f"layers.experimental.preprocessing.{name}"),
            construct_and_call(args, images),
        )
    ctx.record("api", api, kind="api_map")
    for core in ("SGD", "Adam"):
        status = api[f"{label}.optimizers.{core}"]
        ctx.check(f"{core}_works", status in ("ok",) or status.startswith("deprecated"), status=status)
    return api


@scenario(area="optimizer_api", requires=["keras"])
def keras_api_map(ctx: Context) -> None:
    """Catches optimizer / schedule / experimental APIs appearing, moving or disappearing under the active Keras
    (``keras``, or ``tf_keras`` where ``TF_USE_LEGACY_KERAS=1``)."""
    ctx.record("keras", keras_identity(), kind="info")
    _keras_api_map(ctx, keras(), "keras")


@scenario(area="optimizer_api", requires=["tensorflow"])
def tf_keras_api_map(ctx: Context) -> None:
    """The same API map seen through ``tf.keras`` (what it resolves to differs: Keras 2, Keras 3 or tf-keras)."""
    import tensorflow as tf

    try:
        root = tf.keras
        ctx.record("tf_keras_is", f"{root.__name__} {getattr(root, '__version__', '')}".strip(), kind="info")
    except Exception as exc:
        ctx.fail(f"tf.keras is unusable: {error_text(exc)}")
    _keras_api_map(ctx, root, "tf.keras")


@scenario(area="optimizer_api", requires=["keras"])
def keras_optimizer_defaults(ctx: Context) -> None:
    """Catches a change of any optimizer's default hyperparameters (learning rate, epsilon, betas, decay, ...)."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    for name in _KERAS_OPTIMIZERS:
        cls = getattr(k.optimizers, name, None)
        if cls is None:
            continue
        config = dict(cls().get_config())
        config.pop("name", None)
        ctx.record(f"{name}.defaults", config, kind="config")
    ctx.check("adam_present", hasattr(k.optimizers, "Adam"))


_KERAS_STEPS = {
    "sgd_momentum": ("sgd", "SGD", {"learning_rate": 0.1, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.9}),
    "sgd_nesterov": (
        "sgd", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    ),
    "adam": (
        "adam", "Adam", {"learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-3},
        {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3},
    ),
    "adamw": (
        "adamw", "AdamW", {"learning_rate": 0.1, "weight_decay": 0.01, "epsilon": 1e-3},
        {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3, "weight_decay": 0.01},
    ),
    "rmsprop": (
        "rmsprop", "RMSprop", {"learning_rate": 0.1, "rho": 0.9, "epsilon": 1e-3}, {"lr": 0.1, "rho": 0.9, "eps": 1e-3}
    ),
    "adagrad": (
        "adagrad", "Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.1, "epsilon": 1e-3},
        {"lr": 0.1, "initial_accumulator": 0.1, "eps": 1e-3},
    ),
}  # fmt: skip


def _keras_trajectory(k: Any, cls_name: str, kwargs: dict[str, Any]) -> np.ndarray:
    optimizer = getattr(k.optimizers, cls_name)(**kwargs)
    variable = _keras_variable(k, INITIAL)
    path = [to_numpy(variable).astype(np.float64)]
    for gradient in GRADIENTS:
        _keras_apply(k, optimizer, variable, gradient)
        path.append(to_numpy(variable).astype(np.float64))
    return np.array(path)


# epsilon is set to 1e-3 in these runs (not the defaults): large enough that the forms which differ only in
# where epsilon enters give measurably different trajectories, so the matched form is an attribution.


def _check_rules(ctx: Context, label: str, rule_key: str, trajectory: np.ndarray, hp: dict[str, Any]) -> None:
    ctx.record(f"{label}.trajectory", trajectory)
    rule, errors = match_rule(rule_key, trajectory, hp)
    ctx.record(f"{label}.rule", rule)
    ctx.check(
        f"{label}_matches_a_documented_rule",
        rule != "none",
        "the update matches none of the documented forms",
        **{f"max_error[{name}]": err for name, err in errors.items()},
    )


@scenario(area="optimizer_api", requires=["keras"])
def keras_update_rules(ctx: Context) -> None:
    """Catches a change of what SGD (momentum, Nesterov), Adam, AdamW, RMSprop and Adagrad compute in Keras."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    for label, (rule_key, cls_name, kwargs, hp) in _KERAS_STEPS.items():
        if not hasattr(k.optimizers, cls_name):
            ctx.note(f"{cls_name} does not exist in {k.__name__} {k.__version__}")
            continue
        _check_rules(ctx, label, rule_key, _keras_trajectory(k, cls_name, kwargs), hp)


# --------------------------------------------------------------------------------------------------- torch

_TORCH_OPTIMIZERS = (
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop",
    "LBFGS", "SparseAdam", "Adafactor",
)  # fmt: skip
_TORCH_SCHEDULERS: dict[str, dict[str, Any]] = {
    "StepLR": {"step_size": 2},
    "MultiStepLR": {"milestones": [2, 4]},
    "ExponentialLR": {"gamma": 0.9},
    "CosineAnnealingLR": {"T_max": 10},
    "CosineAnnealingWarmRestarts": {"T_0": 5},
    "OneCycleLR": {"max_lr": 0.1, "total_steps": 10},
    "LinearLR": {},
    "ConstantLR": {},
    "PolynomialLR": {},
    "LambdaLR": {"lr_lambda": lambda epoch: 0.95**epoch},
    "CyclicLR": {"base_lr": 0.01, "max_lr": 0.1},
    "ReduceLROnPlateau": {},
}


def _torch_step(cls: Any, **kwargs: Any) -> Any:
    import torch

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = cls([param], lr=0.01, **kwargs) if "lr" in inspect.signature(cls).parameters else cls([param], **kwargs)
    param.grad = torch.full((3,), 0.1)
    if cls.__name__ == "LBFGS":
        optimizer.step(lambda: (param**2).sum())
    elif cls.__name__ == "SparseAdam":
        param.grad = param.grad.to_sparse()
        optimizer.step()
    else:
        optimizer.step()
    return optimizer


def _torch_flag_step(flag: str, cls: Any) -> Any:
    """One step of ``cls`` constructed with ``<flag>=True`` (Adam's ``fused`` / ``foreach``)."""
    return _torch_step(cls, **{flag: True})


def _use_scheduler(name: str, kwargs: dict[str, Any]) -> Callable[[Any], Any]:
    def use(cls: Any) -> None:
        import torch

        optimizer = _torch_step(torch.optim.SGD)
        scheduler = cls(optimizer, **kwargs)
        optimizer.step()
        scheduler.step(1.0) if name == "ReduceLROnPlateau" else scheduler.step()

    return use


def _use_swa(name: str) -> Callable[[Any], Any]:
    def use(cls: Any) -> None:
        import torch

        model = torch.nn.Linear(2, 1)
        if name == "AveragedModel":
            averaged = cls(model)
            averaged.update_parameters(model)
        else:
            cls(_torch_step(torch.optim.SGD), swa_lr=0.05).step()

    return use


@scenario(area="optimizer_api", requires=["torch"])
def torch_api_map(ctx: Context) -> None:
    """Catches ``torch.optim`` optimizers, LR schedulers, SWA utilities and Adam's fused/foreach flags appearing,
    moving, disappearing or becoming deprecated."""
    import torch

    api: dict[str, str] = {}
    for name in _TORCH_OPTIMIZERS:
        api[f"torch.optim.{name}"] = probe(functools.partial(getattr, torch.optim, name), _torch_step)
    for name, kwargs in _TORCH_SCHEDULERS.items():
        api[f"torch.optim.lr_scheduler.{name}"] = probe(
            functools.partial(imported, "torch.optim.lr_scheduler", name), _use_scheduler(name, kwargs)
        )
    for name in ("AveragedModel", "SWALR"):
        api[f"torch.optim.swa_utils.{name}"] = probe(
            functools.partial(imported, "torch.optim.swa_utils", name), _use_swa(name)
        )
    for cls_name in ("Adam", "AdamW"):
        for flag in ("fused", "foreach"):
            api[f"torch.optim.{cls_name}({flag}=True)"] = probe(
                functools.partial(getattr, torch.optim, cls_name), functools.partial(_torch_flag_step, flag)
            )
    ctx.record("torch_version", torch.__version__, kind="info")
    ctx.record("api", api, kind="api_map")
    for core in ("SGD", "Adam"):
        ctx.check(f"{core}_works", api[f"torch.optim.{core}"] == "ok", status=api[f"torch.optim.{core}"])


@scenario(area="optimizer_api", requires=["torch"])
def torch_optimizer_defaults(ctx: Context) -> None:
    """Catches a change of any torch optimizer's defaults (``optimizer.defaults``: lr, betas, eps, weight decay...)."""
    import torch

    for name in _TORCH_OPTIMIZERS:
        cls = getattr(torch.optim, name, None)
        if cls is None:
            continue
        param = torch.nn.Parameter(torch.ones(3))
        try:
            optimizer = cls([param])
        except TypeError:  # lr had no default (SGD before torch 2.2)
            optimizer = cls([param], lr=0.01)
            ctx.note(f"{name} needs an explicit lr in torch {torch.__version__}")
        defaults = {k: v for k, v in optimizer.defaults.items() if not callable(v)}
        ctx.record(f"{name}.defaults", defaults, kind="config")
    ctx.check("adam_present", hasattr(torch.optim, "Adam"))


_TORCH_STEPS = {
    "sgd_momentum": ("sgd", "SGD", {"lr": 0.1, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.9}),
    "sgd_nesterov": (
        "sgd", "SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, {"lr": 0.1, "momentum": 0.9, "nesterov": True}
    ),
    "adam": ("adam", "Adam", {"lr": 0.1, "eps": 1e-3}, {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}),
    "adamw": (
        "adamw", "AdamW", {"lr": 0.1, "eps": 1e-3, "weight_decay": 0.01},
        {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3, "weight_decay": 0.01},
    ),
    "rmsprop": ("rmsprop", "RMSprop", {"lr": 0.1, "alpha": 0.9, "eps": 1e-3}, {"lr": 0.1, "rho": 0.9, "eps": 1e-3}),
    "adagrad": ("adagrad", "Adagrad", {"lr": 0.1, "eps": 1e-3}, {"lr": 0.1, "initial_accumulator": 0.0, "eps": 1e-3}),
}  # fmt: skip


def _torch_trajectory(cls_name: str, kwargs: dict[str, Any]) -> np.ndarray:
    import torch

    param = torch.nn.Parameter(torch.tensor(INITIAL, dtype=torch.float32))
    optimizer = getattr(torch.optim, cls_name)([param], **kwargs)
    path = [param.detach().numpy().astype(np.float64).copy()]
    for gradient in GRADIENTS:
        param.grad = torch.tensor(gradient, dtype=torch.float32)
        optimizer.step()
        path.append(param.detach().numpy().astype(np.float64).copy())
    return np.array(path)


@scenario(area="optimizer_api", requires=["torch"])
def torch_update_rules(ctx: Context) -> None:
    """Catches a change of what SGD (momentum, Nesterov), Adam, AdamW, RMSprop and Adagrad compute in torch."""
    for label, (rule_key, cls_name, kwargs, hp) in _TORCH_STEPS.items():
        _check_rules(ctx, label, rule_key, _torch_trajectory(cls_name, kwargs), hp)


@scenario(area="optimizer_api", requires=["keras|torch"])
def adam_matched(ctx: Context) -> None:
    """Adam with the same hyperparameters on the same problem, in Keras where the environment has it, else torch.

    One id in every environment, so Keras-vs-torch drift (where epsilon enters the formula) shows directly.
    """
    hp = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}
    try:
        k = keras()
    except ImportError:
        k = None
    if k is not None:
        framework = f"{k.__name__} {k.__version__}"
        trajectory = _keras_trajectory(
            k, "Adam", {"learning_rate": 0.1, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-3}
        )
    else:
        import torch

        framework = f"torch {torch.__version__}"
        trajectory = _torch_trajectory("Adam", {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-3})
    ctx.record("framework", framework, kind="info")
    ctx.record("trajectory", trajectory)
    rule, _ = match_rule("adam", trajectory, hp)
    ctx.record("rule", rule)
    ctx.check("matches_a_documented_rule", rule != "none", rule=rule)
    reference = run_rule(lambda w, g, s, h: w, hp)
    allclose(ctx, "starts_from_the_fixed_weights", trajectory[0], reference[0])
