"""A torch 2.5 training loop with a learning-rate schedule and an ONNX export."""

import torch
import torch.onnx
from torch import nn
from torch.optim import lr_scheduler as sched


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(x)


def train(model: nn.Module, batches, epochs: int = 3) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = sched.StepLR(optimizer, step_size=10, verbose=True)  # expect: keyword-rejected
    plateau = sched.ReduceLROnPlateau(optimizer, patience=2, verbose=False)  # expect: keyword-rejected
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        schedule.step()
        plateau.step(loss.item())


def export(model: nn.Module, example: torch.Tensor, path: str):
    torch.onnx.export(model, (example,), path, export_params=True)  # expect: default-changed
    program = torch.onnx.dynamo_export(model, example)  # expect: missing
    exported = torch.export.export(model, (example,))  # expect: default-changed
    return program, exported


def quantize(model: nn.Module) -> nn.Module:
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)  # expect: deprecated
