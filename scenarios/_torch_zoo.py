"""The torch relay zoo: a few modules that together hold the layers whose saving changes between torch releases.

``recurrent`` (Embedding on integer inputs -> LSTM -> GRU -> Linear), ``convolutional`` (Conv2d -> BatchNorm2d with
running statistics -> max pool -> Conv1d -> average pool -> Linear) and ``attention`` (MultiheadAttention +
LayerNorm + Linear), beside ``_torch_io``'s TinyNet. Each starts from weights drawn by a NumPy RNG and fixed inputs,
and is trained a few Adam steps under a StepLR schedule, so a checkpoint holds optimizer and scheduler state. The
classes live in this importable module so a full pickle names classes every environment can import.

Training mode is deterministic for all of them (no dropout; BatchNorm uses the batch's statistics), so training-mode
outputs are compared too: the one place a changed BatchNorm or attention kernel shows when inference agrees.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios import _torch_io
from scenarios._relay_compare import weights_layout

__all__ = [
    "GAMMA",
    "LR",
    "MODELS",
    "STEPS",
    "STEP_SIZE",
    "Trained",
    "continue_training",
    "continued_outcome",
    "inference",
    "layout_like",
    "schedule",
    "schedule_outcome",
    "train",
    "training_outputs",
    "weights",
]

BATCH, OUTPUTS = 8, 3
VOCAB, TOKENS = 16, 6  # recurrent: integer token ids
IMAGE = 8  # convolutional: one-channel 8 x 8 images
SEQUENCE, WIDTH, HEADS = 5, 8, 2  # attention
LR, STEP_SIZE, GAMMA = _torch_io.LR, _torch_io.STEP_SIZE, _torch_io.GAMMA  # Adam under StepLR (a checkpoint's)
STEPS = 3  # leaves the scheduler at epoch 3: lr 0.01 halved once, 0.005


@functools.cache
def _classes() -> dict[str, type]:
    """Define the torch classes on first use, so importing this module never imports torch."""
    import torch

    nn = torch.nn

    class RecurrentNet(torch.nn.Module):  # type: ignore[misc]  # the frameworks are untyped: their classes are Any
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, 8)
            self.lstm = nn.LSTM(8, 8, batch_first=True)
            self.gru = nn.GRU(8, 8, batch_first=True)
            self.head = nn.Linear(8, OUTPUTS)

        def forward(self, tokens: Any) -> Any:
            hidden, _ = self.lstm(self.embed(tokens))
            hidden, _ = self.gru(hidden)
            return self.head(hidden[:, -1])

    class ConvNet(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv2d = nn.Conv2d(1, 4, kernel_size=3, padding=1)
            self.norm = nn.BatchNorm2d(4)
            self.conv1d = nn.Conv1d(4, 4, kernel_size=3, padding=1)
            self.head = nn.Linear(4 * 8, OUTPUTS)

        def forward(self, images: Any) -> Any:
            maps = torch.max_pool2d(torch.relu(self.norm(self.conv2d(images))), 2)  # (batch, 4, 4, 4)
            rows = torch.relu(self.conv1d(maps.flatten(2)))  # (batch, 4, 16)
            return self.head(torch.avg_pool1d(rows, 2).flatten(1))

    class AttentionNet(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.attention = nn.MultiheadAttention(WIDTH, HEADS, batch_first=True)
            self.norm = nn.LayerNorm(WIDTH)
            self.head = nn.Linear(WIDTH, OUTPUTS)

        def forward(self, sequence: Any) -> Any:
            attended, _ = self.attention(sequence, sequence, sequence, need_weights=False)
            return self.head(self.norm(sequence + attended).mean(dim=1))

    classes: dict[str, type] = {"RecurrentNet": RecurrentNet, "ConvNet": ConvNet, "AttentionNet": AttentionNet}
    for klass in classes.values():  # importable by pickle under this module's name
        klass.__module__ = __name__
        klass.__qualname__ = klass.__name__
        globals()[klass.__name__] = klass
    return classes


def __getattr__(name: str) -> Any:
    """``scenarios._torch_zoo.ConvNet`` resolves (defining the classes) when pickle looks it up."""
    if name in ("RecurrentNet", "ConvNet", "AttentionNet"):
        return _classes()[name]
    raise AttributeError(name)


def _fixed_weights(model: Any, seed: int) -> Any:
    """Every parameter from NumPy's generator (buffers keep their initial values: BatchNorm's 0 mean, 1 variance)."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, size=tuple(param.shape)).astype(np.float32)))
    return model


def _builder(class_name: str, seed: int) -> Callable[[], Any]:
    def build() -> Any:
        return _fixed_weights(_classes()[class_name](), seed)

    return build


def _inputs(kind: str, seed: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """Fixed inputs from NumPy's generator: int64 token ids, float32 images or sequences; float32 targets."""

    def inputs() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        if kind == "tokens":
            x = rng.integers(0, VOCAB, size=(BATCH, TOKENS), dtype=np.int64)
        elif kind == "images":
            x = rng.normal(size=(BATCH, 1, IMAGE, IMAGE)).astype(np.float32)
        else:
            x = rng.normal(size=(BATCH, SEQUENCE, WIDTH)).astype(np.float32)
        return x, rng.normal(size=(BATCH, OUTPUTS)).astype(np.float32)

    return inputs


# Every saving format, where the model can take it: one TorchScript flavour each (tracing; the modules' forward
# methods carry annotations TorchScript's compiler would have to resolve), one full pickle loaded plainly.
_ZOO_FORMATS = (
    "state_dict",
    "safetensors",
    "training_checkpoint",
    "pickle_default_load",
    "torchscript_trace",
    "torch_export",
)

MODELS: dict[str, _torch_io.TorchModel] = {
    m.name: m
    for m in (
        _torch_io.TINYNET,
        _torch_io.TorchModel("recurrent", _builder("RecurrentNet", 101), _inputs("tokens", 201), _ZOO_FORMATS),
        _torch_io.TorchModel("convolutional", _builder("ConvNet", 102), _inputs("images", 202), _ZOO_FORMATS),
        _torch_io.TorchModel("attention", _builder("AttentionNet", 103), _inputs("sequences", 203), _ZOO_FORMATS),
    )
}


@dataclass
class Trained:
    """A module after training, with the Adam optimizer and StepLR scheduler that trained it."""

    model: Any
    optimizer: Any
    scheduler: Any


def train(kind: _torch_io.TorchModel) -> Trained:
    """``STEPS`` Adam steps under StepLR from the fixed weights; left in eval mode, as a user saves for inference."""
    import torch

    model = kind.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, STEP_SIZE, GAMMA)
    for _ in range(STEPS):
        continue_training(kind, model, optimizer, scheduler)
    return Trained(model, optimizer, scheduler)


def continue_training(kind: _torch_io.TorchModel, model: Any, optimizer: Any, scheduler: Any = None) -> None:
    """One training step on the fixed batch (and a scheduler step where there is one), back in eval mode after.

    The producer's continuation and every consumer's: the parameters after it depend on the optimizer state and
    the learning rate, not on whether the format kept the scheduler (it steps after the optimizer).
    """
    import torch

    x, y = kind.inputs()
    model.train()
    loss = torch.nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    model.eval()


def inference(loaded: _torch_io.TorchLoaded, x: np.ndarray) -> np.ndarray:
    """Eval-mode outputs; an exported program has no modes to switch (its graph was captured in eval mode)."""
    if loaded.switches_modes:
        loaded.model.eval()
    return loaded.predict(x)


def training_outputs(loaded: _torch_io.TorchLoaded, x: np.ndarray) -> np.ndarray | None:
    """Training-mode outputs (batch statistics), with the module's state put back; None where modes are fixed.

    A training-mode forward updates BatchNorm's running statistics even without gradients, so the state is
    restored afterwards: the comparisons that follow see the module as loaded.
    """
    if not loaded.trains:
        return None
    module = loaded.model
    saved = {name: value.clone() for name, value in module.state_dict().items()}
    module.train()
    try:
        return loaded.predict(x)
    finally:
        module.eval()
        module.load_state_dict(saved)


def weights(module: Any) -> list[tuple[str, np.ndarray]]:
    """Every entry of the state dict (parameters and buffers, running statistics included), in order."""
    return [(str(name), value.detach().cpu().numpy()) for name, value in module.state_dict().items()]


def layout_like(named: list[tuple[str, np.ndarray]], entry: dict[str, Any]) -> list[list[Any]]:
    """The loaded weights' layout, in the producer's order when both hold the same names.

    A state dict is looked up by name; the order of an exported program's module (torch 2.5 lists the custom
    submodule's parameters first) is not something a user loads by.
    """
    layout = weights_layout(named)
    order = {str(w[0]): index for index, w in enumerate(entry.get("weights") or [])}
    if sorted(order) == sorted(str(w[0]) for w in layout):
        layout.sort(key=lambda w: order[str(w[0])])
    return layout


def schedule(scheduler: Any, epoch: int | None) -> dict[str, Any]:
    """What a resumed training takes: the epoch it saved, the scheduler's own epoch and the learning rates it set."""
    return {"epoch": epoch, "last_epoch": int(scheduler.last_epoch), "lr": [float(v) for v in scheduler.get_last_lr()]}


def schedule_outcome(optimizer_kept: bool, got: dict[str, Any] | None, want: dict[str, Any] | None) -> str:
    """``kept`` when the optimizer state and the schedule (epoch, learning rates) came back; else what differs."""
    if not optimizer_kept:
        return "changed"
    if want is None:
        return "kept"
    if got is None:
        return "changed: the checkpoint's scheduler state did not load"
    if got != want:
        return f"changed: scheduler {got}, the producer's {want}"
    return "kept"


def continued_outcome(before: str, got: dict[str, Any] | None, want: dict[str, Any] | None) -> str:
    """The outcome of the loaded state (``before``), unless one more scheduler step then lands somewhere else."""
    if before != "kept" or want is None or got == want:
        return before
    return f"changed after one more step: scheduler {got}, the producer's {want}"
