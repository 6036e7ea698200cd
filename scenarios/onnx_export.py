"""onnx_export: ``torch.onnx.export`` of the relay's torch module, and onnxruntime running what it wrote.

A team that serves a torch model through ONNX writes ``torch.onnx.export(model, args, path)`` and loads the file in
onnxruntime. torch has two exporters behind that call: the TorchScript-based ("legacy") one and the
``torch.export``-based ("dynamo") one, which builds the graph with onnxscript. torch 2.5 added ``dynamo=`` to
``torch.onnx.export``; later releases made the dynamo exporter the default and deprecated the legacy one. Which
exporter a plain call runs, whether each succeeds, the graph it writes (opset, operators) and onnxruntime's numbers
against torch's all move with torch, onnx, onnxscript and onnxruntime releases while the model does not. The model
is ``scenarios._torch_io``'s TinyNet with its fixed weights, on the relay's fixed inputs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios._loads import capture_warnings
from scenarios._torch_io import build, fixed_inputs, predict

#: The exporters by the keyword that selects them; "default" passes no ``dynamo=`` at all (what most users write).
EXPORTERS: dict[str, dict[str, bool]] = {"legacy": {"dynamo": False}, "dynamo": {"dynamo": True}, "default": {}}

#: onnxruntime against torch on the same float32 inputs: a few ulps of a small MLP.
TOLERANCE = 1e-5


def _versions() -> dict[str, str]:
    """The ONNX toolchain's installed versions (info: which releases produced the records)."""
    found = {}
    for name in ("torch", "onnx", "onnxruntime", "onnxscript"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def short_error(exc: BaseException) -> str:
    """``error: <Type>: <first line>``, bounded: the outcome as a config record compares it across versions.

    A ``weights_only`` refusal's first line is generic; the class it refused is named further down, and kept.
    """
    text = error_text(exc)
    first = (text.splitlines() or [""])[0][:200].rstrip()
    refused = _REFUSED_GLOBAL.search(text)
    return f"error: {first}" + (f" (refused global {refused.group(1)})" if refused else "")


def _export(model: Any, x: np.ndarray, path: Path, options: dict[str, Any]) -> tuple[str, list[str]]:
    """Export ``model`` to ``path`` with the exporter ``options`` select.

    Returns the type of what the call returned (the legacy exporter returns None, the dynamo one an
    ``ONNXProgram``: how a plain call's exporter is told apart where both write the same graph) and its warnings.
    """
    import torch

    def call() -> Any:
        names = {"input_names": ["x"], "output_names": ["y"]}
        return torch.onnx.export(model, (torch.from_numpy(x),), str(path), **names, **options)

    returned, warned = capture_warnings(call)
    return type(returned).__name__, warned


def graph_summary(path: Path) -> dict[str, Any]:
    """What the file holds: the default-domain opset, the operators in graph order, inputs (with their dimensions:
    a number, or the name of a dynamic one) and outputs."""
    onnx = importlib.import_module("onnx")  # imported by name: the package's type stubs are not in the tool env
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    opsets = {entry.domain or "ai.onnx": int(entry.version) for entry in model.opset_import}
    return {
        "opset": opsets.get("ai.onnx"),
        "op_types": [node.op_type for node in model.graph.node],
        "inputs": [value.name for value in model.graph.input],
        "input_dims": [_dims(value) for value in model.graph.input],
        "outputs": [value.name for value in model.graph.output],
    }


def _dims(value: Any) -> list[int | str]:
    return [dim.dim_param or int(dim.dim_value) for dim in value.type.tensor_type.shape.dim]


def _run_onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    onnxruntime = importlib.import_module("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (entry,) = session.get_inputs()
    (output,) = session.run(None, {entry.name: x})
    return np.asarray(output, dtype=np.float32)


def _export_and_run(ctx: Context, label: str, options: dict[str, Any], rows: int, folder: Path) -> str:
    """Export with ``options``, summarise the file, run it in onnxruntime on the first ``rows`` inputs; record what
    happened under ``label``; return the outcome."""
    model, (x, _) = build().eval(), fixed_inputs()
    path = folder / f"{label}.onnx"
    try:
        returned, warned = _export(model, x, path, options)
    except Exception as exc:
        return short_error(exc)
    ctx.record(f"{label}_returns", returned, kind="config")
    ctx.record(f"{label}_warnings", warned, kind="warnings")
    try:
        ctx.record(f"{label}_graph", graph_summary(path), kind="config")
        got = _run_onnxruntime(path, x[:rows])
    except Exception as exc:
        return f"exported, then {short_error(exc)}"
    gap = float(np.max(np.abs(got - predict(model, x[:rows]))))
    ctx.record(f"{label}_onnxruntime_output", got)
    ctx.check(f"{label}_onnxruntime_matches_torch", gap <= TOLERANCE, max_abs_error=gap)
    return "exported"


@scenario(area="onnx_export", requires=["torch", "onnx", "onnxruntime"], timeout=300)
def torch_onnx_exporters(ctx: Context) -> None:
    """Catches an exporter of ``torch.onnx.export`` starting or ceasing to work on a plain module (legacy and dynamo),
    the default exporter switching (a plain call's graph changes operators or opset), a new deprecation warning, and
    onnxruntime's output leaving torch's by more than 1e-5."""
    ctx.record("versions", _versions(), kind="info")
    rows = len(fixed_inputs()[0])
    outcomes = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, options in EXPORTERS.items():
            outcomes[label] = _export_and_run(ctx, label, options, rows, Path(folder))
    ctx.record("outcomes", outcomes, kind="outcomes")
    ctx.check("an_exporter_works", "exported" in outcomes.values(), **outcomes)


#: A batch dimension left open, in the legacy exporter's spelling (the one tutorials and most scripts use).
DYNAMIC_AXES = {"x": {0: "batch"}, "y": {0: "batch"}}
#: The open batch is exercised with fewer rows than the export traced.
OTHER_BATCH = 3


@scenario(area="onnx_export", requires=["torch", "onnx", "onnxruntime"], timeout=300)
def torch_onnx_dynamic_batch(ctx: Context) -> None:
    """Catches ``dynamic_axes=`` ceasing to open the batch dimension in either exporter (onnxruntime then refuses
    another batch size), the dynamo exporter renaming the dimension ("s0" where the user wrote "batch"), the warning
    that ``dynamic_axes`` is discouraged with ``dynamo=True``, and outputs on another batch size leaving torch's."""
    ctx.record("versions", _versions(), kind="info")
    outcomes = {}
    with tempfile.TemporaryDirectory() as folder:
        for label in ("legacy", "dynamo"):
            options = {**EXPORTERS[label], "dynamic_axes": DYNAMIC_AXES}
            outcomes[label] = _export_and_run(ctx, label, options, OTHER_BATCH, Path(folder))
    ctx.record("outcomes", outcomes, kind="outcomes")
    ctx.check("an_exporter_opens_the_batch", "exported" in outcomes.values(), **outcomes)
