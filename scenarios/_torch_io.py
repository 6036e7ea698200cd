"""torch models and save/load formats, shared by the save_load scenarios and the cross-version relay.

The model classes live in this importable module (``scenarios._torch_io``) so that a full-model pickle saved in one
environment names classes every other environment can import. Weights come from a NumPy RNG, so every torch
version starts from the same numbers.

Loads are the calls a user writes: plain ``torch.load(path)`` where users write it, ``weights_only=...`` only in the
formats named after that argument. A format not labelled unsafe is unpickled by the plain call only after the same
bytes passed ``weights_only=True`` (on torch < 2.6 the plain call would run whatever a planted pickle holds).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scenarios._keras_io import FEATURES, HIDDEN, OUTPUTS, fixed_inputs
from scenarios._loads import Fallback, LoadAttempt, load_as_user

__all__ = [
    "FORMATS",
    "TINYNET",
    "TorchFormat",
    "TorchLoaded",
    "TorchModel",
    "build",
    "build_trained",
    "fixed_inputs",
    "load",
    "optimizer_state",
    "plain_load",
]

# The same fixed data and sizes as the Keras models: one definition, in _keras_io.


@functools.cache
def _classes() -> dict[str, type]:
    """Define the torch classes on first use, so importing this module never imports torch."""
    import torch

    class ScaleShift(torch.nn.Module):  # type: ignore[misc]  # the frameworks are untyped: their classes are Any
        """A custom submodule with its own parameters."""

        def __init__(self, features: int) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(features))
            self.shift = torch.nn.Parameter(torch.zeros(features))

        # No annotation and no comment on forward: TorchScript parses its source, reads '# type:' comments as
        # signatures and knows no Any (pyproject.toml lets this one module define untyped functions).
        def forward(self, x):
            return x * self.scale + self.shift

    class TinyNet(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(FEATURES, HIDDEN)
            self.head = torch.nn.Linear(HIDDEN, OUTPUTS)
            self.post = ScaleShift(OUTPUTS)

        def forward(self, x):
            return self.post(self.head(torch.relu(self.hidden(x))))

    # Make them importable by pickle under this module's name.
    for klass in (ScaleShift, TinyNet):
        klass.__module__ = __name__
        klass.__qualname__ = klass.__name__
        globals()[klass.__name__] = klass
    return {"ScaleShift": ScaleShift, "TinyNet": TinyNet}


def __getattr__(name: str) -> Any:
    """``scenarios._torch_io.TinyNet`` resolves (defining the classes) when pickle looks it up."""
    if name in ("TinyNet", "ScaleShift"):
        return _classes()[name]
    raise AttributeError(name)


def build() -> Any:
    import torch

    model = _classes()["TinyNet"]()
    rng = np.random.default_rng(7)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, size=tuple(param.shape)).astype(np.float32)))
    return model


def build_trained() -> tuple[Any, Any]:
    """The model and its Adam optimizer after one step."""
    import torch

    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = fixed_inputs()
    loss = torch.nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return model, optimizer


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        predictions: np.ndarray = model(torch.from_numpy(x)).detach().numpy().astype(np.float32)
    return predictions


def optimizer_state(optimizer: Any) -> list[np.ndarray]:
    """Every tensor in the optimizer's state (step, exp_avg, exp_avg_sq per parameter), in parameter order."""
    import torch

    arrays = []
    for _, state in sorted(optimizer.state_dict()["state"].items()):
        for key in sorted(state):
            value = state[key]
            arrays.append(np.array(value.detach().numpy() if isinstance(value, torch.Tensor) else value))
    return arrays


# The schedule every relay training runs under (``_torch_zoo.train``) and a training checkpoint restores.
LR, STEP_SIZE, GAMMA = 0.01, 2, 0.5


@dataclass(frozen=True)
class TorchModel:
    """A model the relay saves: how to build it with its fixed weights, its fixed inputs, the formats it goes in.

    ``formats`` empty: every format of ``FORMATS``.
    """

    name: str
    build: Callable[[], Any]
    inputs: Callable[[], tuple[np.ndarray, np.ndarray]]
    formats: tuple[str, ...] = ()


TINYNET = TorchModel("tinynet", build, fixed_inputs)


@dataclass(frozen=True)
class TorchLoaded:
    """What came back from an artifact: a predict function, and the model/optimizer where the format keeps them.

    ``switches_modes``: ``model.eval()``/``train()`` work (an exported program refuses them); ``trains``: its
    training mode computes what the module's does (a trace recorded the eval-mode graph; an export has no modes).
    """

    predict: Callable[[np.ndarray], np.ndarray]
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    epoch: int | None = None
    switches_modes: bool = False
    trains: bool = False


@dataclass(frozen=True)
class TorchFallback:
    """What a user tries when a format's own call fails: ``how`` names the outcome, ``option`` the change."""

    how: str
    option: str
    load: Load


class Save(Protocol):
    """Save ``model`` (and, where the format keeps them, its optimizer and scheduler) into ``folder``."""

    def __call__(
        self, model: Any, optimizer: Any, folder: Path, kind: TorchModel = ..., scheduler: Any = ...
    ) -> None: ...


class Load(Protocol):
    """Load what ``Save`` wrote in ``folder``, into a fresh ``kind`` where the format holds only weights."""

    def __call__(self, folder: Path, kind: TorchModel = ...) -> TorchLoaded: ...


@dataclass(frozen=True)
class TorchFormat:
    """A way of saving a torch model: when it exists, how to save (into a folder), how to load (may raise).

    ``unsafe`` says why loading the format can run code from the file (empty: it cannot); the relay loads such a
    format only inside the sandbox. ``fallback`` exists only for formats labelled ``unsafe``: unpickling code is
    never a fallback of a safe format.
    """

    name: str
    unavailable: Callable[[], str | None]
    save: Save
    load: Load
    unsafe: str = ""
    keeps_optimizer: bool = False
    fallback: TorchFallback | None = None

    def __post_init__(self) -> None:
        if self.fallback is not None and not self.unsafe:
            raise ValueError(f"torch format {self.name}: only a format labelled unsafe may fall back")


def _torch_version() -> tuple[int, int]:
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def _loaded(model: Any, *, trains: bool = True, switches_modes: bool = True, **state: Any) -> TorchLoaded:
    return TorchLoaded(lambda x: predict(model, x), model, switches_modes=switches_modes, trains=trains, **state)


def plain_load(path: Path, *, unsafe: bool = False) -> Any:
    """``torch.load(path)``, the call a user writes; for a format not labelled unsafe, after a safe look first.

    The look is ``torch.load(path, weights_only=True)`` on the same bytes: where the plain call's default unpickles
    (torch < 2.6) it keeps a planted pickle from running; where the default is ``weights_only=True`` it is the same
    call, and its error is the one the plain call would raise.
    """
    import torch

    if not unsafe:
        torch.load(path, weights_only=True)
    return torch.load(path)


def _save_state_dict(
    model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None
) -> None:
    import torch

    torch.save(model.state_dict(), folder / "model.pt")


def _load_state_dict(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
    model = kind.build()
    model.load_state_dict(plain_load(folder / "model.pt"))
    return _loaded(model)


def _safetensors_unavailable() -> str | None:
    import importlib.util

    if importlib.util.find_spec("safetensors") is None:
        return "the safetensors package is not installed in this environment"
    return None


def _safetensors() -> Any:
    """``safetensors.torch``, imported by name: the package ships no type information."""
    import importlib

    return importlib.import_module("safetensors.torch")


def _save_safetensors(
    model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None
) -> None:
    tensors = {name: value.contiguous() for name, value in model.state_dict().items()}
    _safetensors().save_file(tensors, str(folder / "model.safetensors"))


def _load_safetensors(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
    """``safetensors.torch.load_file`` into a fresh module: tensors only, no pickle, so nothing in it can run."""
    model = kind.build()
    model.load_state_dict(_safetensors().load_file(str(folder / "model.safetensors")))
    return _loaded(model)


def _save_checkpoint(
    model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None
) -> None:
    import torch

    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, folder / "checkpoint.pt")


def _load_checkpoint(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
    """Model and Adam state dicts (the usual training checkpoint), loaded by the plain ``torch.load``."""
    import torch

    checkpoint = plain_load(folder / "checkpoint.pt")
    model = kind.build()
    model.load_state_dict(checkpoint["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    optimizer.load_state_dict(checkpoint["optimizer"])
    return _loaded(model, optimizer=optimizer)


def _save_training_checkpoint(
    model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None
) -> None:
    """What a training loop saves to resume: model, optimizer and LR scheduler state dicts and the epoch."""
    import torch

    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "epoch": None if scheduler is None else int(scheduler.last_epoch),
    }
    torch.save(state, folder / "training.pt")


def _load_training_checkpoint(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
    """Resume as a user resumes: plain ``torch.load``, then model, Adam and StepLR each take their state dict."""
    import torch

    checkpoint = plain_load(folder / "training.pt")
    model = kind.build()
    model.load_state_dict(checkpoint["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler = None
    if checkpoint["scheduler"] is not None:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, STEP_SIZE, GAMMA)
        scheduler.load_state_dict(checkpoint["scheduler"])
    return _loaded(model, optimizer=optimizer, scheduler=scheduler, epoch=checkpoint["epoch"])


def _save_pickle(model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None) -> None:
    import torch

    torch.save(model, folder / "model.pkl")


def _load_pickle(weights_only: bool | None) -> Load:
    """A full-model pickle loaded plainly (``None``: no argument, unsafe by label) or with ``weights_only``."""

    def load(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
        import torch

        _classes()  # the classes must exist before unpickling refers to them
        path = folder / "model.pkl"
        if weights_only is None:
            return _loaded(plain_load(path, unsafe=True))
        return _loaded(torch.load(path, weights_only=weights_only))

    return load


def _save_script(model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None) -> None:
    import torch

    torch.jit.save(torch.jit.script(model), str(folder / "model.ts"))


def _save_trace(model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None) -> None:
    """Traced without gradients: what inference runs (MultiheadAttention takes its fused path only there)."""
    import torch

    x, _ = kind.inputs()
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.from_numpy(x))
    torch.jit.save(traced, str(folder / "model.ts"))


def _load_jit(traced: bool) -> Load:
    """A TorchScript archive; a trace recorded one mode's graph, so its training mode is not the module's."""

    def load(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
        import torch

        return _loaded(torch.jit.load(str(folder / "model.ts")), trains=not traced)

    return load


def train_step(model: Any, optimizer: Any) -> None:
    """One more Adam step on the fixed batch: the continuation compared across a save/load."""
    import torch

    x, y = fixed_inputs()
    loss = torch.nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _export_unavailable() -> str | None:
    import torch

    export = getattr(torch, "export", None)
    if export is None or not hasattr(export, "save"):
        return f"torch.export.save does not exist in torch {torch.__version__} (arrived in 2.1)"
    return None


def _save_export(model: Any, optimizer: Any, folder: Path, kind: TorchModel = TINYNET, scheduler: Any = None) -> None:
    import torch

    x, _ = kind.inputs()
    torch.export.save(torch.export.export(model, (torch.from_numpy(x),)), str(folder / "model.pt2"))


def _load_export(folder: Path, kind: TorchModel = TINYNET) -> TorchLoaded:
    """The program's module: captured in one mode, it refuses ``eval()``/``train()`` (NotImplementedError)."""
    import torch

    module = torch.export.load(str(folder / "model.pt2")).module()
    return _loaded(module, trains=False, switches_modes=False)


_PICKLE = "a full pickle: unpickling may call any Python function the file names"
_TORCHSCRIPT = "a TorchScript archive: loading and calling it runs the program stored in the file"
_EXPORTED = "an exported program: loading and calling it runs the graph stored in the file"

FORMATS: dict[str, TorchFormat] = {
    f.name: f
    for f in (
        TorchFormat("state_dict", lambda: None, _save_state_dict, _load_state_dict),
        TorchFormat("safetensors", _safetensors_unavailable, _save_safetensors, _load_safetensors),
        TorchFormat("checkpoint", lambda: None, _save_checkpoint, _load_checkpoint, keeps_optimizer=True),
        TorchFormat(
            "training_checkpoint", lambda: None, _save_training_checkpoint, _load_training_checkpoint,
            keeps_optimizer=True,
        ),
        TorchFormat(
            "pickle_default_load", lambda: None, _save_pickle, _load_pickle(None), unsafe=_PICKLE,
            fallback=TorchFallback("loaded-with-weights-only-false", "weights_only=False", _load_pickle(False)),
        ),
        TorchFormat("pickle_weights_only", lambda: None, _save_pickle, _load_pickle(True)),
        TorchFormat("pickle_unsafe_load", lambda: None, _save_pickle, _load_pickle(False), unsafe=_PICKLE),
        TorchFormat("torchscript_script", lambda: None, _save_script, _load_jit(False), unsafe=_TORCHSCRIPT),
        TorchFormat("torchscript_trace", lambda: None, _save_trace, _load_jit(True), unsafe=_TORCHSCRIPT),
        TorchFormat("torch_export", _export_unavailable, _save_export, _load_export, unsafe=_EXPORTED),
    )
}  # fmt: skip


def load(fmt: TorchFormat, folder: Path, kind: TorchModel = TINYNET) -> LoadAttempt:
    """Load as a user would: the format's own call, then its fallback (one that works is a finding)."""
    fallback = fmt.fallback
    fallbacks = (
        [] if fallback is None else [Fallback(fallback.how, fallback.option, lambda: fallback.load(folder, kind))]
    )
    return load_as_user(lambda: fmt.load(folder, kind), fallbacks)
