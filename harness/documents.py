"""The results document of one environment in one run: created, re-opened for a subset re-run, kept current.

A document is rewritten atomically after every cell, so a run cut short keeps everything already measured; a
subset re-run (``-k``) re-opens the run's document and replaces only the cells it runs again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import __version__, paths
from harness.errors import ResultsError
from harness.matrix import Environment, Matrix
from harness.provision import Provisioned, redact
from harness.results import (
    DeclaredEnvironment,
    EnvironmentInfo,
    EnvironmentResult,
    InstallOptions,
    ResolvedEnvironment,
    ScenarioResult,
    now_iso,
    read_result,
    write_result,
)
from harness.sidecar import drop_npz_cells, merge_npz_many

__all__ = ["Recorder", "cpu_flags", "locked", "new_document", "open_document", "resolved_of"]

_CPU_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_flags() -> list[str]:
    """The CPU features that change numeric kernels (oneDNN, MKL paths), as /proc/cpuinfo lists them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [f for f in _CPU_FLAGS_OF_INTEREST if f in flags]
    return []


def _declared(env: Environment) -> DeclaredEnvironment:
    install = InstallOptions(
        index_url=redact(env.install.index_url) if env.install.index_url else None,
        extra_index_urls=[redact(u) for u in env.install.extra_index_urls],
        find_links=list(env.install.find_links),
    )
    return DeclaredEnvironment(
        python=env.python,
        packages=dict(env.packages),
        env=dict(env.env),
        install=install,
        no_deps=list(env.no_deps),
        tags=list(env.tags),
    )


def new_document(matrix: Matrix, env: Environment, run_id: str) -> EnvironmentResult:
    """An empty results document for ``env`` in run ``run_id``."""
    return EnvironmentResult(
        run_id=run_id,
        harness_version=__version__,
        matrix_file=str(matrix.path),
        started_at=now_iso(),
        environment=EnvironmentInfo(name=env.name, declared=_declared(env)),
        matrix_sha256=matrix.sha256,
    )


def _platform_of(python: Path) -> dict[str, str]:
    code = (
        "import json, platform; print(json.dumps([platform.python_version(), platform.platform(), platform.machine()]))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    version, plat, machine = json.loads(out)
    return {"python_version": version, "platform": plat, "machine": machine}


def resolved_of(prov: Provisioned) -> ResolvedEnvironment:
    return ResolvedEnvironment(
        **_platform_of(prov.python),
        cpu_flags=cpu_flags(),
        packages=prov.packages,
        lock_sha256=prov.lock_sha256,
        latest=prov.latest,
        install_steps=prov.install_steps,
        installer=prov.installer,
        reused=prov.reused,
    )


class Recorder:
    """Adds cells to the document in matrix order and rewrites it atomically after each one."""

    def __init__(self, doc: EnvironmentResult, run_dir: Path, scratch: Path, order: list[str], invocation: str):
        self.doc = doc
        self.path = paths.results_file(run_dir, doc.environment.name)
        self.npz_path = paths.records_file(run_dir, doc.environment.name)
        self.scratch = scratch
        self.order = {scenario_id: i for i, scenario_id in enumerate(order)}
        self.invocation = invocation

    def add(self, result: ScenarioResult) -> None:
        """One cell, saved at once: a run cut short after it keeps it."""
        self.add_many([result])

    def add_many(self, cells: list[ScenarioResult]) -> None:
        """Several cells (taken from the cache) in one rewrite of the document and of its ``.npz``."""
        ids = {cell.id for cell in cells}
        for cell in cells:
            cell.invocation = self.invocation
        self.doc.scenarios = [c for c in self.doc.scenarios if c.id not in ids] + cells
        self.doc.scenarios.sort(key=lambda s: self.order.get(s.id, len(self.order)))
        self.doc.timings.scenarios_s = round(sum(c.duration_s or 0.0 for c in self.doc.scenarios), 6)
        sidecars = {cell.id: self.scratch / f"{cell.id}.npz" for cell in cells}
        sidecars = {sid: path for sid, path in sidecars.items() if path.exists()}
        if sidecars:
            merge_npz_many(self.npz_path, sidecars)
            for path in sidecars.values():
                path.unlink()
            self.doc.records_file = self.npz_path.name
        self.save()

    def add_raw(self, raw: dict[str, Any]) -> None:
        self.add(ScenarioResult.model_validate(raw))

    def save(self) -> None:
        write_result(self.path, self.doc)


def open_document(matrix: Matrix, env: Environment, run_dir: Path, run_id: str, rerun: list[str]) -> EnvironmentResult:
    """This run's document for ``env``: the one already written (a subset re-run keeps its other cells), else new.

    The cells about to run again are dropped, with their stored values and flaky marks, so nothing stale survives
    beside them; so are cells an earlier failed installation left as env-error (this run installs again).
    """
    path = paths.results_file(run_dir, env.name)
    if not path.exists():
        return new_document(matrix, env, run_id)
    doc = read_result(path)
    if doc.run_id != run_id or doc.environment.name != env.name:
        raise ResultsError(f"{path}: holds {doc.environment.name} of run {doc.run_id}, not {env.name} of run {run_id}")
    drop_cells(doc, run_dir, set(rerun) | {c.id for c in doc.scenarios if c.status == "env-error"})
    doc.state, doc.env_error, doc.finished_at = "running", None, None
    return doc


def drop_cells(doc: EnvironmentResult, run_dir: Path, ids: set[str]) -> None:
    """Remove cells from the document, with their values in the ``.npz`` and their flaky marks."""
    doc.scenarios = [c for c in doc.scenarios if c.id not in ids]
    doc.flaky = [key for key in doc.flaky if key.partition("::")[0] not in ids]
    drop_npz_cells(paths.records_file(run_dir, doc.environment.name), sorted(ids))


def prior_state(run_dir: Path, env: str) -> str | None:
    """The state this run's document for ``env`` was left in (None: there is none yet, or it is unreadable)."""
    path = paths.results_file(run_dir, env)
    try:
        return read_result(path).state if path.exists() else None
    except ResultsError:
        return None


def drop_other_locks(doc: EnvironmentResult, run_dir: Path, lock_sha256: str) -> list[str]:
    """Drop kept cells measured with another lock (a ``latest`` that moved): they describe another environment.

    Returns the dropped ids; the caller measures the selected ones again with this lock (the others are then
    missing, INCOMPLETE in a verdict) rather than mixing two releases in one document.
    """
    locks = {inv.id: inv.lock_sha256 for inv in doc.invocations}
    stale = {c.id for c in doc.scenarios if locks.get(c.invocation, lock_sha256) != lock_sha256}
    drop_cells(doc, run_dir, stale)
    return sorted(stale)


@contextlib.contextmanager
def locked(run_dir: Path, env: str) -> Iterator[None]:
    """Hold this environment's document of this run for one command; a second command gets a clear refusal.

    Environments of one run are written by parallel sessions, so the lock is per environment, not per run. The
    lock is released by the kernel when the process ends, however it ends.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = Path(run_dir) / f".{paths.results_file(run_dir, env).name}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ResultsError(
                f"{run_dir.name}: {env} is being written by {holder}; wait for it or use another run id"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
