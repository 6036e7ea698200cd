"""One step of a bisection: the template environment with the package at one release, through the harness's pipeline.

Each release becomes an environment of its own (``bisect-<template>-<package>-<version>``: a name no matrix run
writes, so its cache keys never mix with a matrix environment's), with a venv under ``.nox/_bisect/`` (nox's own
venv folders never start with ``_``), provisioned and run by ``harness.pipeline.EnvironmentPipeline`` exactly as a
matrix environment is: uv's cache for the wheels, the cell cache for cells measured before (a second bisection over
the same releases measures nothing again). The gate's second measurement of a release goes to the run folder's
``repeat/`` sub-folder and always measures afresh (no cell cache), so a flaky behaviour cannot hide behind a
cached cell.

A release whose frameworks cannot be imported says nothing about the behaviour: when every cell of a step errs or
crashes, the step imports the frameworks once more on their own (the modules the worker preloads) and, if that
fails too, the release is marked as one that cannot start (skipped) rather than bad.

With ``relay``, the good release also saves the relay's artifacts (``relay.produce``) and every release loads them
(``relay.consume``): the loads are judged like the verdict's relay rules.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from harness import paths, workspace
from harness import relay as relay_mod
from harness.bisect.decide import Measured
from harness.cache import CellCache
from harness.drift import load_arrays
from harness.errors import HarnessError
from harness.matrix import Environment, Matrix, venv_slug
from harness.pipeline import REPO_ROOT, EnvironmentPipeline
from harness.requirements import capabilities, preload_modules
from harness.worker.scenario import Scenario

__all__ = ["REPEAT_DIR", "Steps", "default_venv_root", "step_name"]

REPEAT_DIR = "repeat"


def step_name(template: str, package: str, version: Version) -> str:
    """The environment name of one release; refused (a usage error) if it cannot be a file name."""
    name = f"bisect-{template}-{canonicalize_name(package)}-{version}"
    if not paths.is_safe_name(name):
        raise HarnessError(f"--env {template}: the step environment name {name!r} is not safe as a file name")
    return name


def with_release(template: Environment, package: str, version: Version, name: str) -> Environment:
    """``template`` with ``package`` pinned at ``version``, under the template's own spelling of the name (the
    ``no_deps`` list refers to it), or added under its canonical name when the template does not pin it."""
    wanted = canonicalize_name(package)
    key = next((k for k in template.packages if canonicalize_name(k) == wanted), wanted)
    return dataclasses.replace(template, name=name, packages={**template.packages, key: str(version)})


@dataclasses.dataclass
class Steps:
    """Measures releases of ``package`` in ``template``'s environment; ``matrix`` is restricted to the selection."""

    matrix: Matrix
    template: Environment
    package: str
    good: Version
    registry: Mapping[str, Scenario]
    run_dir: Path
    venv_root: Path
    cache: CellCache | None
    run_id: str
    scenario_packages: tuple[str, ...] = ("scenarios",)
    extra_pythonpath: tuple[Path, ...] = ()
    environ: Mapping[str, str] | None = None
    relay: bool = False
    keep: bool = False
    made: list[Path] = dataclasses.field(default_factory=list)

    def environment(self, version: Version) -> Environment:
        return with_release(self.template, self.package, version, step_name(self.template.name, self.package, version))

    def venv(self, version: Version) -> Path:
        return self.venv_root / venv_slug(self.environment(version).name)

    def _selection(self, version: Version) -> tuple[str, ...]:
        """The cells one release runs: the selection, plus the relay's producer at the good release."""
        chosen = [s for s in self.matrix.scenario_ids if not (self.relay and s == relay_mod.PRODUCE_ID)]
        if self.relay and version == self.good:
            chosen.append(relay_mod.PRODUCE_ID)
        return tuple(chosen)

    def _pipeline(
        self, env: Environment, run_dir: Path, selection: tuple[str, ...], fresh: bool
    ) -> EnvironmentPipeline:
        timeouts = {s: self.matrix.timeouts.get(s, self.matrix.defaults.timeout) for s in selection}
        matrix = dataclasses.replace(
            self.matrix, environments={env.name: env}, scenario_ids=selection, timeouts=timeouts, upgrades=()
        )
        venv = self.venv_root / venv_slug(env.name)
        if venv not in self.made:
            self.made.append(venv)
        return EnvironmentPipeline(
            matrix,
            env.name,
            run_dir,
            venv.resolve(),
            self.registry,
            run_id=self.run_id,
            scenario_packages=self.scenario_packages,
            extra_pythonpath=self.extra_pythonpath,
            environ=self.environ,
            cache=None if fresh else self.cache,
        )

    def measure(self, version: Version, fresh: bool = False) -> Measured:
        """Provision and run the release; ``fresh``: a second, independent measurement (never from the cache)."""
        started = time.perf_counter()
        env = self.environment(version)
        run_dir = self.run_dir / REPEAT_DIR if fresh else self.run_dir
        selection = self._selection(version)
        pipeline = self._pipeline(env, run_dir, selection, fresh)
        doc = pipeline.run()
        if self.relay and doc.env_error is None:
            doc = pipeline.consume(paths.artifacts_dir(run_dir if version == self.good else self.run_dir))
        broken = bool(doc.scenarios) and all(c.status in ("error", "crash") for c in doc.scenarios)
        cannot_start = self._import_problem(pipeline, selection) if broken and doc.env_error is None else ""
        return Measured(doc, load_arrays(run_dir, doc), time.perf_counter() - started, cannot_start)

    def _import_problem(self, pipeline: EnvironmentPipeline, selection: tuple[str, ...]) -> str:
        """Why the frameworks the worker preloads cannot be imported in this release's venv, or ''."""
        prov, env = pipeline.provision(), pipeline.env
        requirements = [req for sid in selection if sid in self.registry for req in self.registry[sid].requires]
        modules = preload_modules(requirements, env.env, capabilities(prov.packages, env.env))
        if not modules:
            return ""
        code = f"import {', '.join(modules)}"
        environ = prov.worker_environ(env, [REPO_ROOT, *self.extra_pythonpath], self.environ)
        limit = self.matrix.defaults.startup_timeout
        try:
            proc = subprocess.run(
                [str(prov.python), "-c", code], env=environ, capture_output=True, text=True, timeout=limit, check=False
            )
        except subprocess.TimeoutExpired:
            return f"`{code}` did not finish within {limit:g} s"
        if proc.returncode == 0:
            return ""
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        return f"`{code}` fails: {(lines[-1] if lines else f'exit code {proc.returncode}')[:300]}"

    def clean(self) -> list[Path]:
        """Remove the venvs this bisection made (unless ``keep``); the folders removed."""
        if self.keep:
            return []
        removed = []
        for venv in self.made:
            if venv.is_dir():
                shutil.rmtree(venv, ignore_errors=True)
                removed.append(venv)
        return removed


def default_venv_root(environ: Mapping[str, str] | None = None) -> Path:
    """``_bisect`` in the state folder, beside the matrix's venvs (``COMPAT_BISECT_VENVS`` moves it)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("COMPAT_BISECT_VENVS") or workspace.state_dir(environ) / "_bisect")
