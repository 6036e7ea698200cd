"""Probe orchestration: one prober process per environment, provisioned like the scenario worker, cached by content.

The environment is provisioned through ``harness.provision.provision`` (the path ``EnvironmentPipeline.provision``
takes: an unchanged venv is reused in well under a second, an absent one is created and synced), and the prober
(``harness.worker.symbols``) runs in it with the worker's process environment (``Provisioned.worker_environ``: the
repository on ``PYTHONPATH``, framework switches only from the matrix). Its own process group and a timeout bound
it. The answer is stored under a key made of what can change it, as the cell cache does: the environment's lock,
its declared variables, the prober's source and the request (symbols, calls, lookups). An unchanged scan therefore
imports no framework at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from harness import workspace
from harness.cache import default_cache_dir, mark_used
from harness.errors import HarnessError, ProvisionError
from harness.matrix import Matrix
from harness.provision import Provisioned, provision
from harness.scan.model import ProbeAnswer
from harness.worker.atomic import write_text_atomic

__all__ = ["DEFAULT_TIMEOUT", "REPO_ROOT", "probe_environment", "probe_key"]

REPO_ROOT = workspace.LIB_ROOT
DEFAULT_TIMEOUT = 300.0
_PROBER = REPO_ROOT / "harness" / "worker" / "symbols.py"
_PROBER_HELPERS = (REPO_ROOT / "harness" / "worker" / "atomic.py",)
_STDERR_TAIL = 2000


def probe_key(prov: Provisioned, env_vars: Mapping[str, str], request: Mapping[str, object]) -> str:
    """sha256 of the lock, the declared variables, the prober's code and the request."""
    code = hashlib.sha256(b"".join(p.read_bytes() for p in (_PROBER, *_PROBER_HELPERS))).hexdigest()
    text = json.dumps(
        {"lock": prov.lock_sha256, "env": dict(sorted(env_vars.items())), "prober": code, "request": request},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _cache_file(key: str, root: Path | None) -> Path:
    base = root if root is not None else default_cache_dir() / "scan"
    return base / key[:2] / f"{key}.json"


def _cached(path: Path) -> ProbeAnswer | None:
    """A stored answer, or None for a miss (absent, unreadable, malformed: read as untrusted, never trusted)."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        answer = ProbeAnswer.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
    mark_used(path)
    return answer


def _run_prober(prov: Provisioned, environ: dict[str, str], request: Mapping[str, object], timeout: float) -> bytes:
    with tempfile.TemporaryDirectory(prefix="compat-scan-") as folder:
        request_path, answer_path = Path(folder) / "request.json", Path(folder) / "answer.json"
        request_path.write_text(json.dumps(request))
        command = [str(prov.python), "-m", "harness.worker.symbols", str(request_path), str(answer_path)]
        proc = subprocess.Popen(
            command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own group: whatever the frameworks started dies too
            proc.communicate()
            raise HarnessError(
                f"scan: the prober in {prov.python.parent.parent.name} timed out after {timeout:g} s"
            ) from None
        if proc.returncode != 0 or not answer_path.is_file():
            tail = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
            raise HarnessError(f"scan: the prober exited with code {proc.returncode}: {tail}")
        return answer_path.read_bytes()


def probe_environment(
    matrix: Matrix,
    env_name: str,
    request: Mapping[str, object],
    *,
    venv_root: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cache_root: Path | None = None,
    use_cache: bool = True,
) -> ProbeAnswer:
    """The prober's answer in ``env_name`` (provisioned when absent), from the cache when nothing changed."""
    env = matrix.environment(env_name)
    venv_dir = (venv_root or workspace.state_dir()) / env.venv_slug
    try:
        prov = provision(env, venv_dir.resolve())
    except ProvisionError as exc:
        raise HarnessError(f"scan: {env.name} could not be provisioned: {exc}") from None
    key = probe_key(prov, env.env, request)
    path = _cache_file(key, cache_root)
    cached = _cached(path) if use_cache else None
    if cached is not None:
        return cached.model_copy(update={"reused": True, "environment": env.name})
    raw = _run_prober(prov, prov.worker_environ(env, [REPO_ROOT]), request, timeout)
    try:
        answer = ProbeAnswer.model_validate_json(raw)
    except ValidationError as exc:
        raise HarnessError(f"scan: the prober in {env.name} wrote an answer that does not validate: {exc}") from None
    answer = answer.model_copy(update={"environment": env.name})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, answer.model_dump_json())
    return answer
