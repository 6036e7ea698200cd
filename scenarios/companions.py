"""companions: the libraries a team installs beside its framework, smoke-tested per environment.

A torch upgrade is also a torchvision, torch-geometric and Lightning upgrade, and each companion is built for a range
of torch releases: a wheel built against another torch build fails on import, an argument deprecated for years
disappears, a checkpoint written by one Lightning meets another ``torch.load`` default. On the Keras side the
``keras.applications`` families and the transfer-learning recipe (freeze a base, train a head) are what most users
build first. Every model here starts from weights a NumPy generator gives (never the framework's RNG, whose streams
differ between releases), so the recorded outputs compare across versions; the parameter counts have published
values. The torch companions run in the extras matrix (matrix-extras.yaml); the Keras scenarios need no extra
package and run in the default matrix's Keras environments.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from harness.worker.scenario import Context, scenario
from scenarios._frameworks import keras, keras_backend, keras_identity, to_numpy
from scenarios._loads import capture_warnings
from scenarios.onnx_export import short_error

# ----------------------------------------------------------------------------------------------------------- torch


def _installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def import_or_skip(ctx: Context, distribution: str, module: str) -> Any:
    """Import ``module``; where it fails (a wheel built for another torch), record why and skip with that cause."""
    import torch

    try:
        return importlib.import_module(module)
    except Exception as exc:
        outcome = short_error(exc)
        ctx.record("import", outcome, kind="config")
        ctx.skip(
            f"{distribution} {_installed(distribution)} does not import beside torch {torch.__version__}: {outcome}"
        )


def numpy_init(module: Any, seed: int) -> None:
    """Every parameter from a NumPy generator, scaled by its fan-in, so each torch release starts from these numbers.

    Buffers (BatchNorm's running statistics) keep their constructor values (zeros and ones in every release).
    """
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, param in sorted(module.named_parameters()):
            shape = tuple(param.shape)
            scale = 1.0 / np.sqrt(np.prod(shape[1:])) if len(shape) > 1 else 0.1
            param.copy_(torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32)))


def fixed_image(shape: tuple[int, ...], seed: int = 11) -> np.ndarray:
    """A fixed float32 image batch in [0, 255], from NumPy's generator."""
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype(np.float32)


def _legacy_keyword(builder: Any) -> dict[str, Any]:
    """What ``resnet18(pretrained=False)`` does, as a call record: deprecated or warned (with its warnings), accepted,
    or rejected (with the error). The verdict blocks on a move to rejected, not on a reworded warning."""
    try:
        _, warned = capture_warnings(lambda: builder(pretrained=False))
    except Exception as exc:
        return {"keyword": "pretrained", "outcome": "rejected", "error": short_error(exc), "warnings": []}
    outcome = "deprecated" if any("deprecat" in line.lower() for line in warned) else "warned" if warned else "accepted"
    return {"keyword": "pretrained", "outcome": outcome, "warnings": warned}


#: resnet18's parameter count, as torchvision's weight metadata and the ResNet paper's architecture give it.
RESNET18_PARAMETERS = 11_689_512


@scenario(area="companions", requires=["torch", "torchvision"], timeout=300)
def torchvision_resnet18(ctx: Context) -> None:
    """Catches a torchvision that does not import beside the environment's torch (a wheel built for another torch
    build), ``resnet18(weights=None)`` changing its parameters or its output from fixed weights, the weight enum's
    metadata moving, and the deprecated ``pretrained=`` argument changing from a warning to an error."""
    import torch

    torchvision = import_or_skip(ctx, "torchvision", "torchvision")
    ctx.record("versions", {"torch": torch.__version__, "torchvision": torchvision.__version__}, kind="info")
    ctx.record("import", "imported", kind="config")
    model = torchvision.models.resnet18(weights=None).eval()
    count = sum(int(p.numel()) for p in model.parameters())
    ctx.record("parameters", count)
    numpy_init(model, seed=18)
    with torch.no_grad():
        output = model(torch.from_numpy(fixed_image((1, 3, 64, 64)) / 255.0)).numpy()
    ctx.record("output", output)
    meta = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta
    ctx.record("weights_meta", {"num_params": meta.get("num_params"), "categories": len(meta["categories"])})
    ctx.record("pretrained_false", _legacy_keyword(torchvision.models.resnet18), kind="call")
    ctx.check("parameters_match_metadata", count == meta.get("num_params"), built=count, meta=meta.get("num_params"))
    ctx.check("parameters_as_published", count == RESNET18_PARAMETERS, built=count, published=RESNET18_PARAMETERS)


def _path_graph() -> tuple[np.ndarray, np.ndarray]:
    """A 3-node path graph 0 - 1 - 2 (both directions of each edge) and fixed node features."""
    edges = np.array([[0, 1, 1, 2], [1, 0, 2, 1]], dtype=np.int64)
    features = np.random.default_rng(12).normal(size=(3, 4)).astype(np.float32)
    return edges, features


def gcn_reference(edges: np.ndarray, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Kipf and Welling's GCN layer in NumPy: D^-1/2 (A + I) D^-1/2 X W^T + b, with W in torch's (out, in) layout."""
    nodes = x.shape[0]
    adjacency = np.eye(nodes)
    adjacency[edges[1], edges[0]] = 1.0  # a message flows from source (row 0) to target (row 1)
    inverse_root = 1.0 / np.sqrt(adjacency.sum(axis=1))
    normalized = adjacency * inverse_root[:, None] * inverse_root[None, :]
    result: np.ndarray = (normalized @ x @ weight.T + bias).astype(np.float32)
    return result


@scenario(area="companions", requires=["torch", "torch-geometric"], timeout=300)
def torch_geometric_gcnconv(ctx: Context) -> None:
    """Catches torch-geometric failing to import or build beside the environment's torch, ``GCNConv`` renaming its
    parameters (a state_dict from one release no longer loads), and its output leaving the GCN formula."""
    import torch

    geometric = import_or_skip(ctx, "torch-geometric", "torch_geometric")
    ctx.record("versions", {"torch": torch.__version__, "torch_geometric": geometric.__version__}, kind="info")
    conv = geometric.nn.GCNConv(4, 2)
    numpy_init(conv, seed=21)
    ctx.record("parameter_names", sorted(name for name, _ in conv.named_parameters()), kind="config")
    edges, x = _path_graph()
    with torch.no_grad():
        output = conv(torch.from_numpy(x), torch.from_numpy(edges)).numpy()
    ctx.record("output", output)
    params = dict(conv.named_parameters())
    weight = next(p for name, p in params.items() if name.endswith("weight")).detach().numpy()
    bias = params["bias"].detach().numpy()
    gap = float(np.max(np.abs(output - gcn_reference(edges, x, weight, bias))))
    ctx.check("matches_the_gcn_formula", gap <= 1e-5, max_abs_error=gap)


def _lightning() -> Any:
    """``lightning.pytorch`` (the unified package), else the standalone ``pytorch_lightning``."""
    try:
        return importlib.import_module("lightning.pytorch")
    except ImportError:
        return importlib.import_module("pytorch_lightning")


@functools.cache
def _regressor_class() -> type:
    """A LightningModule as tutorials write it: hyperparameters saved, SGD, an MSE training step."""
    import torch

    pl = _lightning()

    class Regressor(pl.LightningModule):  # type: ignore[misc,name-defined]  # Lightning's classes are Any to mypy
        def __init__(self, features: int = 4, outputs: int = 3, lr: float = 0.1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(features, outputs)

        def forward(self, x: Any) -> Any:
            return self.layer(x)

        def training_step(self, batch: Any, batch_index: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    Regressor.__module__ = __name__  # importable by name, as a checkpoint's class must be
    globals()["Regressor"] = Regressor
    return Regressor


def _regression_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(31)
    return rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)


def _fit_with_lightning(folder: Path) -> Any:
    """One epoch of ``Trainer.fit`` on CPU, in this process: no loggers, no checkpoint callback, no data workers."""
    import torch

    pl = _lightning()
    model = _regressor_class()()
    numpy_init(model, seed=41)
    x, y = _regression_data()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=4, num_workers=0
    )
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(folder),
    )  # fmt: skip
    trainer.fit(model, loader)
    trainer.save_checkpoint(str(folder / "plain_hparams.ckpt"))
    model.hparams.data_dir = PurePosixPath("data")  # a path among the hyperparameters, as scripts often add
    trainer.save_checkpoint(str(folder / "path_in_hparams.ckpt"))
    return model


def _fit_by_hand() -> np.ndarray:
    """The same two SGD steps written as a plain torch loop: what ``Trainer.fit`` must compute."""
    import torch

    model = _regressor_class()()
    numpy_init(model, seed=41)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _regression_data()
    for start in (0, 4):
        loss = torch.nn.functional.mse_loss(
            model(torch.from_numpy(x[start : start + 4])), torch.from_numpy(y[start : start + 4])
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.array(model.layer.weight.detach().numpy())


def _load_outcome(action: Any) -> tuple[str, Any]:
    """``loaded`` (naming the warning categories it raised) or the error, and what came back."""
    try:
        value, warned = capture_warnings(action)
    except Exception as exc:
        return short_error(exc), None
    categories = sorted({line.split(":", 1)[0] for line in warned if "weights_only" in line})
    return "loaded" + (f", warned: {', '.join(categories)}" if categories else ""), value


def _reload(ctx: Context, label: str, path: Path, fitted: np.ndarray) -> None:
    """A checkpoint through a plain ``torch.load`` and through ``load_from_checkpoint``: outcomes and contents."""
    import torch

    plain, checkpoint = _load_outcome(lambda: torch.load(path))
    regressor: Any = _regressor_class()
    reloaded, module = _load_outcome(lambda: regressor.load_from_checkpoint(str(path)))
    ctx.record(f"{label}_torch_load", plain, kind="config")
    ctx.record(f"{label}_load_from_checkpoint", reloaded, kind="config")
    if checkpoint is not None:
        ctx.record(f"{label}_keys", sorted(checkpoint), kind="config")
    if module is not None:
        same = np.array_equal(module.layer.weight.detach().numpy(), fitted)
        ctx.check(f"{label}_reloaded_weights_equal", same)
        ctx.record(
            f"{label}_hparams", {key: repr(module.hparams[key]) for key in sorted(module.hparams)}, kind="config"
        )


@scenario(area="companions", requires=["torch", "lightning|pytorch-lightning"], timeout=300)
def lightning_fit_and_checkpoint(ctx: Context) -> None:
    """Catches Lightning's ``Trainer.fit`` training to other weights than the plain loop it stands for, its
    ``.ckpt`` changing keys, and that file meeting the environment's ``torch.load`` default (``weights_only=True``
    from torch 2.6) through a plain ``torch.load`` and through ``load_from_checkpoint``, with plain hyperparameters
    and with a path among them. Runs in this process on CPU with no data workers, so nothing spawns; the cell's
    timeout bounds it."""
    import torch

    pl = _lightning()
    ctx.record("versions", {"torch": torch.__version__, "lightning": pl.__version__}, kind="info")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        fitted = _fit_with_lightning(folder).layer.weight.detach().numpy()
        ctx.record("fitted_weight", fitted)
        gap = float(np.max(np.abs(fitted - _fit_by_hand())))
        ctx.check("fit_equals_the_plain_loop", gap <= 1e-6, max_abs_error=gap)
        for label in ("plain_hparams", "path_in_hparams"):
            _reload(ctx, label, folder / f"{label}.ckpt", fitted)


# ----------------------------------------------------------------------------------------------------------- Keras

#: The input every Keras application here is built for: the smallest those families accept, to stay fast.
IMAGE = (32, 32, 3)


def keras_numpy_init(model: Any, seed: int) -> None:
    """Every weight from a NumPy generator keyed by (index among the layers with weights, weight index), never by
    names Keras renames nor by positions in ``model.layers`` (Keras 2 and 3 build different weightless layers).

    Batch-norm statistics and scales start at their usual constructor values (mean 0, variance 1, gamma 1, beta 0),
    so activations stay finite through a deep network; kernels are scaled by their fan-in. Other non-trainable
    weights are constants the family sets (EfficientNet's ImageNet normalization in Keras 2) and are left alone.
    """
    weighted = [layer for layer in model.layers if layer.weights]  # Keras 2 spells hard-swish as weightless op layers
    for layer_index, layer in enumerate(weighted):
        for weight_index, variable in enumerate(layer.weights):
            ends = str(getattr(variable, "path", variable.name)).split(":")[0].rsplit("/", 1)[-1]
            shape = tuple(int(d) for d in variable.shape)
            if "int" in str(variable.dtype) or not (variable.trainable or ends.startswith("moving_")):
                continue  # fixed constants (EfficientNet's normalization) keep what the family sets
            if ends in ("moving_variance", "variance", "gamma"):
                value = np.ones(shape)
            elif ends in ("moving_mean", "mean", "beta"):
                value = np.zeros(shape)
            else:
                rng = np.random.default_rng([seed, layer_index, weight_index])
                fan_in = np.prod(shape[:2]) if ends == "depthwise_kernel" else np.prod(shape[:-1]) if shape else 1
                value = rng.standard_normal(shape) / np.sqrt(max(int(fan_in), 1))
            variable.assign(value.astype(np.float32))


def _build_family(k: Any, family: str, **options: Any) -> Any:
    k.backend.clear_session()
    return getattr(k.applications, family)(weights=None, input_shape=IMAGE, **options)


def _skip_eager_jax(ctx: Context, k: Any) -> None:
    """JAX traces every layer to build and compiles every op of an eager call: measured 15-20 s per network."""
    if keras_backend(k) == "jax":
        ctx.skip(
            "on the JAX backend a keras.applications network takes 10-15 s to build and 5 s to call eagerly here "
            "(budget: 3 s per scenario)"
        )


def _family_scenario(ctx: Context, family: str) -> None:
    k = keras()
    _skip_eager_jax(ctx, k)
    ctx.record("keras", keras_identity(), kind="info")
    model = _build_family(k, family)
    ctx.record("parameters", int(model.count_params()))
    ctx.record("output_shape", list(model.output_shape), kind="config")
    keras_numpy_init(model, seed=len(family))
    output = np.asarray(to_numpy(model(fixed_image((1, *IMAGE)), training=False)), dtype=np.float64)
    ctx.record("output", output.astype(np.float32))
    ctx.check("output_is_a_distribution", abs(float(output.sum()) - 1.0) < 1e-4, total=float(output.sum()))


@scenario(area="companions", requires=["keras"], timeout=300)
def keras_mobilenet_v3_small(ctx: Context) -> None:
    """Catches ``keras.applications.MobileNetV3Small(weights=None)`` no longer building at 32x32, changing its
    parameter count, output shape, or its output from fixed NumPy weights (hard-swish, squeeze-and-excite, padding)."""
    _family_scenario(ctx, "MobileNetV3Small")


@scenario(area="companions", requires=["keras"], timeout=300)
def keras_efficientnet_b0(ctx: Context) -> None:
    """Catches ``keras.applications.EfficientNetB0(weights=None)`` no longer building at 32x32, changing its
    parameter count, output shape, or its output from fixed NumPy weights (its built-in rescaling and ImageNet
    normalization, swish, squeeze-and-excite)."""
    _family_scenario(ctx, "EfficientNetB0")


#: preprocess_input's documented modes: "tf" scales to [-1, 1], "torch" normalises by ImageNet's RGB mean and std,
#: "caffe" flips RGB to BGR and subtracts ImageNet's BGR mean; the efficientnet/mobilenet_v3 ones pass through.
PREPROCESS_MODULES = ("mobilenet_v2", "densenet", "resnet50", "efficientnet", "mobilenet_v3")


def expected_preprocessing(module: str, image: np.ndarray) -> np.ndarray:
    """``preprocess_input`` of each module, written from its documented mode (not from Keras' code)."""
    if module == "mobilenet_v2":
        return np.asarray(image / 127.5 - 1.0)
    if module == "densenet":
        return np.asarray((image / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]))
    if module == "resnet50":
        return np.asarray(image[..., ::-1] - np.array([103.939, 116.779, 123.68]))
    return image


@scenario(area="companions", requires=["keras"], timeout=120)
def keras_applications_preprocess_input(ctx: Context) -> None:
    """Catches ``preprocess_input`` of a family changing mode (tf / torch / caffe / pass-through) or dtype on a
    fixed image: weights trained with one preprocessing then see other numbers."""
    k = keras()
    ctx.record("keras", keras_identity(), kind="info")
    image = fixed_image((1, 4, 4, 3))
    for module in PREPROCESS_MODULES:
        got = np.asarray(to_numpy(getattr(k.applications, module).preprocess_input(image.copy())))
        ctx.record(f"{module}_output", got.astype(np.float32))
        gap = float(np.max(np.abs(got - expected_preprocessing(module, image))))
        ctx.check(f"{module}_documented_mode", gap <= 1e-4, max_abs_error=gap)


def _transfer_model(k: Any) -> tuple[Any, Any]:
    """A frozen MobileNetV3Small base under a new 3-class head, as Keras' transfer-learning guide builds it."""
    base = _build_family(k, "MobileNetV3Small", include_top=False, pooling="avg")
    keras_numpy_init(base, seed=5)
    base.trainable = False
    head = k.layers.Dense(3, activation="softmax")
    inputs = k.Input(IMAGE)
    model = k.Model(inputs, head(base(inputs)))
    kernel = np.random.default_rng(6).standard_normal(tuple(int(d) for d in head.kernel.shape)) / 24.0  # sqrt(576)
    head.kernel.assign(kernel.astype(np.float32))
    head.bias.assign(np.zeros(3, dtype=np.float32))
    return model, base


def _batch_norm_statistics(base: Any) -> np.ndarray:
    """Every BatchNormalization moving mean and variance of ``base``, concatenated."""
    values = [
        np.asarray(to_numpy(variable)).ravel()
        for layer in base.layers
        if type(layer).__name__ == "BatchNormalization"
        for variable in layer.weights
        if "moving" in str(getattr(variable, "path", variable.name))
    ]
    return np.concatenate(values)


def _counts(model: Any) -> dict[str, int]:
    return {
        "trainable_weights": len(model.trainable_weights),
        "non_trainable_weights": len(model.non_trainable_weights),
        "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }


def _compile_and_fit(k: Any, model: Any) -> None:
    """(Re)compile, as the guide says to after changing ``trainable``, then one eager SGD step on a fixed batch."""
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy", run_eagerly=True)
    x = fixed_image((8, *IMAGE), seed=13)
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)


@scenario(area="companions", requires=["keras"], timeout=300)
def keras_transfer_learning_freeze(ctx: Context) -> None:
    """Catches ``base.trainable = False`` freezing other weights than before (trainable counts), and a frozen base's
    BatchNormalization statistics moving during ``fit`` (frozen BN layers run in inference mode since TF 2.0's Keras).
    Then the guide's fine-tuning step (unfreeze, recompile, fit): the statistics must move, which shows the check can
    fail, and their values after the step record how moving variances are updated."""
    k = keras()
    _skip_eager_jax(ctx, k)
    ctx.record("keras", keras_identity(), kind="info")
    model, base = _transfer_model(k)
    for label in ("frozen", "unfrozen"):
        base.trainable = label == "unfrozen"
        ctx.record(f"{label}_counts", _counts(model), kind="config")
        before = _batch_norm_statistics(base)
        _compile_and_fit(k, model)
        after = _batch_norm_statistics(base)
        moved = float(np.max(np.abs(after - before)))
        ctx.record(f"{label}_batch_norm_statistics", after.astype(np.float32))
        ctx.record(f"{label}_head_after_fit", np.asarray(to_numpy(model.layers[-1].weights[0]), dtype=np.float32))
        ctx.check(f"{label}_batch_norm_statistics", (moved == 0.0) == (label == "frozen"), moved=moved)
