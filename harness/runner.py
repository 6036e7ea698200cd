"""Run one environment end to end: provision, plan the cells, supervise the worker, write results as they come.

The results document is rewritten atomically after every cell, so a run cut short keeps everything already
measured. A provisioning failure becomes ``env-error`` for every selected cell, with the installer's own message;
unmet requirements become ``skip`` cells with the reason, decided here from the resolved versions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import __version__, paths
from harness.errors import ProvisionError, ResultsError
from harness.matrix import Environment, Matrix, restrict
from harness.provision import Provisioned, provision, redact
from harness.requirements import capabilities, preload_modules, unmet
from harness.results import (
    DeclaredEnvironment,
    EnvError,
    EnvironmentInfo,
    EnvironmentResult,
    InstallOptions,
    Invocation,
    ResolvedEnvironment,
    ScenarioResult,
    drop_npz_cells,
    merge_npz,
    new_run_id,
    now_iso,
    read_result,
    write_result,
)
from harness.supervisor import Supervisor, WorkerSpec
from harness.worker.scenario import Scenario

__all__ = ["REPO_ROOT", "new_document", "run_environment", "worker_environ", "worker_spec"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_CPU_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
# Variables that change framework behaviour: never inherited from the caller's shell, only taken from matrix.yaml.
_FRAMEWORK_VARS = (
    "TF_USE_LEGACY_KERAS",
    "KERAS_BACKEND",
    "KERAS_HOME",
    "TF_ENABLE_ONEDNN_OPTS",
    "PYTHONPATH",
)


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


def worker_environ(
    env: Environment, venv_dir: Path, pythonpath: list[Path], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The process environment of a worker: the caller's, minus framework switches, plus the matrix's own."""
    base = dict(os.environ if base is None else base)
    for var in _FRAMEWORK_VARS:
        base.pop(var, None)
    base.update(env.env)
    base.update(
        {
            "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
            "PYTHONNOUSERSITE": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONFAULTHANDLER": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "VIRTUAL_ENV": str(venv_dir),
            "PATH": f"{venv_dir / 'bin'}{os.pathsep}{base.get('PATH', '')}",
        }
    )
    return base


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


def _resolved(prov: Provisioned) -> ResolvedEnvironment:
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


def _cell(scenario_id: str, area: str, status: str, message: str) -> ScenarioResult:
    return ScenarioResult(id=scenario_id, area=area, status=status, message=message)  # type: ignore[arg-type]


class _Recorder:
    """Adds cells to the document in matrix order and rewrites it atomically after each one."""

    def __init__(self, doc: EnvironmentResult, run_dir: Path, scratch: Path, order: list[str], invocation: str):
        self.doc = doc
        self.path = paths.results_file(run_dir, doc.environment.name)
        self.npz_path = paths.records_file(run_dir, doc.environment.name)
        self.scratch = scratch
        self.order = {scenario_id: i for i, scenario_id in enumerate(order)}
        self.invocation = invocation

    def add(self, result: ScenarioResult) -> None:
        result.invocation = self.invocation
        self.doc.scenarios = [c for c in self.doc.scenarios if c.id != result.id] + [result]
        self.doc.scenarios.sort(key=lambda s: self.order.get(s.id, len(self.order)))
        if result.duration_s:
            self.doc.timings.scenarios_s = round(self.doc.timings.scenarios_s + result.duration_s, 6)
        sidecar = self.scratch / f"{result.id}.npz"
        if sidecar.exists():
            merge_npz(self.npz_path, result.id, sidecar)
            sidecar.unlink()
            self.doc.records_file = self.npz_path.name
        self.save()

    def add_raw(self, raw: dict[str, Any]) -> None:
        self.add(ScenarioResult.model_validate(raw))

    def save(self) -> None:
        write_result(self.path, self.doc)


def _document(matrix: Matrix, env: Environment, run_dir: Path, run_id: str, rerun: list[str]) -> EnvironmentResult:
    """This run's document for ``env``: the one already written (a subset re-run keeps its other cells), else new.

    The cells about to run again are dropped, with their stored values, so nothing stale survives beside them.
    """
    path = paths.results_file(run_dir, env.name)
    if not path.exists():
        return new_document(matrix, env, run_id)
    doc = read_result(path)
    if doc.run_id != run_id or doc.environment.name != env.name:
        raise ResultsError(f"{path}: holds {doc.environment.name} of run {doc.run_id}, not {env.name} of run {run_id}")
    doc.scenarios = [c for c in doc.scenarios if c.id not in set(rerun)]
    drop_npz_cells(paths.records_file(run_dir, env.name), rerun)
    doc.state, doc.env_error, doc.finished_at = "running", None, None
    return doc


def worker_spec(
    matrix: Matrix,
    env: Environment,
    python: Path,
    venv_dir: Path,
    scratch: Path,
    preload: list[str],
    *,
    pythonpath: list[Path],
    extra_env: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    scenario_packages: tuple[str, ...] = ("scenarios",),
) -> WorkerSpec:
    """How to start this environment's worker: one place for the main phase and the relay's consumer phase."""
    return WorkerSpec(
        python=str(python),
        env={**worker_environ(env, venv_dir, pythonpath, environ), "COMPAT_ENV_NAME": env.name, **extra_env},
        scratch=scratch,
        log_path=scratch / "worker.log",
        scenario_packages=scenario_packages,
        preload=tuple(preload),
        seed=matrix.defaults.seed,
        startup_timeout=matrix.defaults.startup_timeout,
    )


def _find_flaky(
    doc: EnvironmentResult, spec: WorkerSpec, supervisor: Supervisor, ids: list[str], repeat: int
) -> list[str]:
    """Run the cells ``repeat - 1`` more times in fresh workers; list the records whose values changed."""
    first = {(c.id, r.name): r.sha256 for c in doc.scenarios for r in c.records}
    flaky: set[str] = set()
    for number in range(2, repeat + 1):
        seen: dict[tuple[str, str], str] = {}

        def collect(raw: dict, seen: dict = seen) -> None:
            for record in raw.get("records", []):
                seen[(raw["id"], record["name"])] = record["sha256"]

        again = dataclasses.replace(
            spec, scratch=spec.scratch / f"repeat-{number}", log_path=spec.scratch / f"repeat-{number}" / "worker.log"
        )
        Supervisor(again, supervisor.timeouts, supervisor.areas, collect).run(ids)
        flaky |= {f"{sid}::{name}" for (sid, name), sha in first.items() if seen.get((sid, name), sha) != sha}
    return sorted(flaky)


def run_environment(
    matrix: Matrix,
    env_name: str,
    run_dir: Path,
    venv_dir: Path,
    registry: Mapping[str, Scenario],
    *,
    run_id: str,
    scenario_packages: tuple[str, ...] = ("scenarios",),
    extra_pythonpath: tuple[Path, ...] = (),
    environ: Mapping[str, str] | None = None,
    repeat: int = 1,
    selection: Sequence[str] = (),
) -> EnvironmentResult:
    """Provision ``env_name`` into ``venv_dir``, run its selected scenarios, write ``run_dir/<env>.json``.

    With ``selection`` (``-k`` globs) only the matching cells run; the other cells this run already holds for the
    environment are kept, so the reproduce command a verdict prints never throws evidence away.
    """
    started = time.perf_counter()
    env = matrix.environment(env_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    scratch = paths.logs_dir(run_dir, env.name)
    order = list(matrix.scenario_ids)
    chosen = list(restrict(matrix, list(selection)).scenario_ids) if selection else order
    doc = _document(matrix, env, run_dir, run_id, chosen)
    invocation = Invocation(
        id=f"{new_run_id()}-{os.getpid()}", started_at=now_iso(), selection=list(selection), cells=chosen
    )
    doc.invocations.append(invocation)
    recorder = _Recorder(doc, run_dir, scratch, order, invocation.id)
    recorder.save()
    try:
        prov = provision(env, venv_dir, environ=environ)
    except ProvisionError as exc:
        doc.state = "env-error"
        doc.env_error = EnvError(message=str(exc), installer_output=exc.installer_output[-20000:])
        doc.timings.provision_s = round(time.perf_counter() - started, 3)
        for scenario_id in chosen:
            recorder.add(_cell(scenario_id, registry[scenario_id].area, "env-error", str(exc)))
        doc.finished_at = now_iso()
        doc.timings.total_s = round(time.perf_counter() - started, 3)
        recorder.save()
        return doc
    doc.timings.provision_s = round(prov.seconds, 3)
    doc.environment.resolved = _resolved(prov)
    invocation.lock_sha256 = prov.lock_sha256
    caps = capabilities(prov.packages, env.env)
    to_run: list[str] = []
    for scenario_id in chosen:
        entry = registry[scenario_id]
        reasons = [r for r in (unmet(req, caps) for req in entry.requires) if r]
        if reasons:
            recorder.add(_cell(scenario_id, entry.area, "skip", "; ".join(reasons)))
        else:
            to_run.append(scenario_id)
    if to_run:
        requirements = [req for sid in to_run for req in registry[sid].requires]
        pythonpath = [REPO_ROOT, *extra_pythonpath]
        spec = worker_spec(
            matrix,
            env,
            prov.python,
            venv_dir,
            scratch,
            preload_modules(requirements, env.env, caps),
            pythonpath=pythonpath,
            extra_env={"COMPAT_ARTIFACTS_DIR": str((run_dir / "artifacts" / env.name).resolve())},
            environ=environ,
            scenario_packages=scenario_packages,
        )
        areas = {sid: registry[sid].area for sid in to_run}
        supervisor = Supervisor(spec, {sid: matrix.timeouts[sid] for sid in to_run}, areas, recorder.add_raw)
        stats = supervisor.run(to_run)
        if repeat > 1:
            doc.repeats = repeat
            doc.flaky = _find_flaky(doc, spec, supervisor, to_run, repeat)
        doc.timings.worker_starts = stats.worker_starts
        doc.timings.import_s = round(stats.import_s[0], 3) if stats.import_s else None
        doc.timings.import_s_total = round(sum(stats.import_s), 3)
    doc.state = "complete"
    doc.finished_at = now_iso()
    doc.timings.total_s = round(time.perf_counter() - started, 3)
    recorder.save()
    return doc
