"""relay: saved in one environment, loaded in another. The producer and consumer halves of the N x N relay.

``relay.produce`` runs in every environment with Keras or torch: it builds the shared models (``_keras_io`` /
``_torch_io``), trains one step, saves each in every format the version offers under the context's
``artifacts_dir`` and writes a manifest: producer, versions, format, file hashes, the fixed inputs' hash,
the producer's predictions, a digest of the optimizer state, and the predictions after one more training step.

``relay.consume[<producer>:<family>:<format>]`` is planned by the orchestrator (harness.relay), one cell per
producer and format, so a loader that crashes or hangs on one artifact costs only that cell. It verifies the file
hashes before loading anything, loads as a user would (the plain ``load_model(path)`` with ``safe_mode`` left on,
the plain ``torch.load(path)``; ``scenarios._loads``), compares predictions and, where the format keeps the
optimizer, continues training one step and compares with the producer's own continuation. An artifact that loads
only with a fallback (``compile=False``, ``weights_only=False``) is ``fallback-only``: the user's call broke.
A format that can run code from the file (``unsafe`` in the format tables, never the manifest's word) is loaded
only when the plan's context allows it, which the orchestrator grants only to a worker it put in the sandbox.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.worker.atomic import write_json_atomic
from harness.worker.errors import error_text
from harness.worker.scenario import Context, scenario
from scenarios import _keras_io, _keras_relay, _torch_io, _torch_relay
from scenarios._frameworks import keras, keras_identity

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_VERSION_OF = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch", "numpy")


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hashes[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def confined(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it stays inside ``root`` (no absolute path, no '..', no symlink on the way)."""
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts or not relative:
        return None
    path, here = root / candidate, root
    for part in candidate.parts:
        here = here / part
        if here.is_symlink():
            return None
    return path if path.resolve().is_relative_to(root.resolve()) else None


def _symlinks(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink())


def verify(folder: Path, expected: dict[str, str]) -> str | None:
    """None when the files under ``folder`` are exactly the manifest's (no symlink among them); else what differs."""
    if not folder.is_dir():
        return f"artifact folder {folder.name} is missing"
    links = _symlinks(folder)
    if links:
        return f"artifact folder {folder.name} holds symlinks, which are never followed: {links[:3]}"
    actual = file_hashes(folder)
    missing = sorted(set(expected) - set(actual))
    changed = sorted(p for p in expected if p in actual and actual[p] != expected[p])
    if missing or changed:
        return f"files differ from the manifest: missing {missing[:3]}, sha256 mismatch {changed[:3]}"
    return None


def _versions() -> dict[str, str]:
    found = {}
    for name in _VERSION_OF:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _inputs_sha256(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def _artifacts_dir(ctx: Context) -> Path:
    if ctx.artifacts_dir is None:
        ctx.skip("no artifacts_dir in the plan's context: the relay runs through the harness (nox), not standalone")
    return ctx.artifacts_dir


@scenario(area="relay", requires=["keras|torch"], timeout=900)
def produce(ctx: Context) -> None:
    """Producer half of the cross-version relay: every shared model in every format this version can save."""
    root = _artifacts_dir(ctx)
    root.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    families = []
    try:
        k = keras()
    except ImportError:
        k = None
    if k is not None:
        families.append("keras")
        ctx.record("keras", keras_identity(), kind="info")
        entries += _keras_relay.produce(root)
    if importlib.util.find_spec("torch") is not None:
        families.append("torch")
        entries += _torch_relay.produce(root)
    x, _ = _keras_io.fixed_inputs()
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "producer": ctx.environment or root.name,
        "versions": _versions(),
        "keras": keras_identity() if k is not None else None,
        "inputs_sha256": _inputs_sha256(x),
        "artifacts": entries,
    }
    write_json_atomic(root / MANIFEST, manifest)
    # the class of a save error is judged across versions; its wording (in the manifest) is not
    saved = {
        f"{e['family']}:{e['model']}:{e['format']}": f"save-error: {e['save_error'].split(':', 1)[0]}"
        if e.get("save_error")
        else "saved"
        for e in entries
    }
    ctx.record("artifacts", saved, kind="info")  # judged through save_load and the relay loads, not here
    ctx.check("families", bool(families), families=families)
    ctx.check("something_saved", any(v == "saved" for v in saved.values()), count=len(saved))


# ------------------------------------------------------------------------------------------------ consumer


def unsafe_reason(entry: dict[str, Any]) -> str:
    """Why loading this artifact's format can run code, from this consumer's own table (never the manifest's word)."""
    table: dict[str, Any] = _keras_io.FORMATS if entry.get("family") == "keras" else _torch_io.FORMATS
    fmt = table.get(str(entry.get("format")))
    return str(fmt.unsafe) if fmt is not None else ""


def _not_loaded(reason: str, refusal: str) -> dict[str, Any]:
    """The safe default: the artifact exists and its hashes match, and what loading it would take."""
    return {
        "outcome": "skip",
        "how": "not-loaded-unsafe",
        "unsafe": True,
        "message": f"not loaded: {reason}; {refusal}",
    }


def consume_entry(entry: dict[str, Any], root: Path, unsafe_refusal: str = "unsafe formats are off") -> dict[str, Any]:
    """Verify, load and compare one artifact; every failure becomes a ``load-error`` with its class and text.

    A format that can run code from the file is loaded only when ``unsafe_refusal`` is empty (the orchestrator
    put this worker in the sandbox); otherwise the cell says it exists, verified, and why it was not loaded.
    """
    if entry.get("save_error"):
        return {"outcome": "skip", "message": f"the producer could not save it: {entry['save_error']}"}
    folder = confined(root, str(entry.get("path", "")))
    if folder is None:
        return {
            "outcome": "load-error",
            "error_class": "IntegrityError",
            "message": f"artifact path {entry.get('path')!r} leaves the producer's folder; refused",
        }
    problem = verify(folder, entry["files"])
    if problem:
        return {"outcome": "load-error", "error_class": "IntegrityError", "message": problem}
    reason = unsafe_reason(entry)
    if reason and unsafe_refusal:
        return _not_loaded(reason, unsafe_refusal)
    labels = {"unsafe": bool(reason), "sandboxed": not unsafe_refusal}
    try:
        if entry["family"] == "keras":
            return {**_keras_relay.consume(entry, folder), **labels}
        return {**_torch_relay.consume(entry, folder), **labels}
    except Exception as exc:
        return {"outcome": "load-error", "error_class": type(exc).__name__, "message": error_text(exc), **labels}


@scenario(area="relay", parametrized=True, timeout=600)
def consume(ctx: Context) -> None:
    """Consumer half of the relay: this environment loads one producer's artifacts of one format."""
    producer, family, format_name = (ctx.param or "::").split(":")
    if ctx.relay_source is None:
        ctx.skip("no relay_source in the plan's context: the relay runs through the harness (nox), not standalone")
    source = ctx.relay_source / producer
    manifest = json.loads((source / MANIFEST).read_text())
    entries = [e for e in manifest["artifacts"] if e["family"] == family and e["format"] == format_name]
    if not entries:
        ctx.skip(f"{producer} produced no {family} artifact in format {format_name}")
    for entry in entries:
        ctx.record(entry["model"], consume_entry(entry, source, ctx.unsafe_refusal), kind="config")
