"""training (torch side): the code a team writes around a torch model, and what each release does with it.

A user-written ``Optimizer`` subclass leans on ``param_groups``, ``state``, ``step(closure)`` and the
``state_dict`` round trip; ``nn.Transformer`` and ``TransformerEncoderLayer`` carry defaults (``batch_first``,
``norm_first``, the fast path) and warnings that changed across releases. Weights come from a NumPy RNG so every
torch starts from the same numbers; the values are recorded for the verdict's drift rules.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from harness.worker.scenario import Context, scenario
from scenarios._loads import capture_warnings


@functools.cache
def _momentum_class() -> type:
    """A plain user optimizer: SGD with momentum written against the public Optimizer API, as tutorials teach."""
    import torch

    class UserMomentum(torch.optim.Optimizer):  # type: ignore[misc]  # torch's classes are Any to mypy
        def __init__(self, params: Any, lr: float = 0.1, momentum: float = 0.9) -> None:
            super().__init__(params, {"lr": lr, "momentum": momentum})

        @torch.no_grad()  # type: ignore[untyped-decorator]
        def step(self, closure: Any = None) -> Any:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    buffer = self.state[param].setdefault("velocity", torch.zeros_like(param))
                    buffer.mul_(group["momentum"]).add_(param.grad)
                    param.add_(buffer, alpha=-group["lr"])
            return loss

    return UserMomentum


def _fixed_linear() -> Any:
    import torch

    layer = torch.nn.Linear(4, 3)
    rng = np.random.default_rng(5)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, size=tuple(param.shape)).astype(np.float32)))
    return layer


def _fixed_batch() -> tuple[Any, Any]:
    import torch

    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.normal(size=(8, 4)).astype(np.float32))
    y = torch.from_numpy(rng.normal(size=(8, 3)).astype(np.float32))
    return x, y


def _through_a_file(state: Any) -> Any:
    """``torch.save`` then the plain ``torch.load(weights_only=True)`` a checkpoint reader writes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@scenario(area="training", requires=["torch"])
def torch_custom_optimizer(ctx: Context) -> None:
    """Catches a change of the ``Optimizer`` base class a user subclass relies on: ``step(closure)``'s loss,
    ``param_groups`` keys (torch adds defaults such as ``differentiable``), ``state``, and the ``state_dict`` round
    trip into a fresh optimizer continuing exactly where the first left off."""
    import torch

    x, y = _fixed_batch()
    model, klass = _fixed_linear(), _momentum_class()
    optimizer = klass(model.parameters(), lr=0.1, momentum=0.9)

    def closure() -> Any:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    losses = [float(optimizer.step(closure)) for _ in range(3)]
    ctx.record("losses", np.array(losses, dtype=np.float64))
    ctx.record("param_group_keys", sorted(optimizer.param_groups[0]), kind="config")
    ctx.record("state_keys", sorted({key for state in optimizer.state.values() for key in state}), kind="config")
    saved = _through_a_file(optimizer.state_dict())  # as a checkpoint would: no tensor shared with the original
    twin = _fixed_linear()
    twin.load_state_dict(model.state_dict())
    resumed = klass(twin.parameters(), lr=0.5, momentum=0.0)
    resumed.load_state_dict(saved)  # the saved groups' lr and momentum win over the constructor's
    ctx.record("resumed_group", {k: v for k, v in resumed.param_groups[0].items() if k != "params"}, kind="config")
    optimizer.step(closure)
    twin_loss = torch.nn.functional.mse_loss(twin(x), y)
    resumed.zero_grad()
    twin_loss.backward()
    resumed.step()
    gap = max(float((a - b).abs().max()) for a, b in zip(model.parameters(), twin.parameters(), strict=True))
    ctx.check("round_trip_continues_exactly", gap == 0.0, max_abs_error=gap)


@scenario(area="training", requires=["torch"])
def torch_transformer_encoder(ctx: Context) -> None:
    """Catches a change of ``TransformerEncoderLayer`` / ``TransformerEncoder`` defaults (``batch_first``,
    ``norm_first``, activation, dropout), of their seeded outputs in eval mode, and of the warnings they raise
    (the ``enable_nested_tensor`` notice, the fast path)."""
    import torch

    torch.manual_seed(1337)
    ctx.seeding.append("torch.manual_seed(1337)")
    layer, warned = capture_warnings(lambda: torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16))
    encoder, encoder_warned = capture_warnings(lambda: torch.nn.TransformerEncoder(layer, num_layers=2))
    defaults = {
        "batch_first": bool(layer.self_attn.batch_first),
        "norm_first": bool(layer.norm_first),
        "activation": getattr(layer.activation, "__name__", type(layer.activation).__name__),
        "dropout": float(layer.dropout.p),
        "layer_norm_eps": float(layer.norm1.eps),
    }
    ctx.record("defaults", defaults, kind="config")
    raised = sorted({w.split(":", 1)[-1].strip()[:160] for w in warned + encoder_warned})
    ctx.record("warnings", raised, kind="warnings")
    rng = np.random.default_rng(9)
    source = torch.from_numpy(rng.normal(size=(5, 2, 8)).astype(np.float32))  # (sequence, batch, features)
    encoder.eval()
    with torch.no_grad():
        output = encoder(source).numpy()
    ctx.record("encoder_output", output.astype(np.float32))
    ctx.record("parameters", int(sum(p.numel() for p in encoder.parameters())))
    ctx.check("output_shape", output.shape == (5, 2, 8), shape=list(output.shape))
