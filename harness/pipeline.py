"""One environment's pipeline: provision -> run (the relay producer is one of its scenarios) -> relay-consume.

The same object serves the nox sessions, the plain command line, CI shards and the commands that reuse
environments (scan, bisect): it provisions once, hands every stage the same ``Provisioned`` (which owns the
worker's process environment and spec), and passes each stage's context to the scenarios explicitly, in the
worker's plan, never through environment variables. The last stage, the ledger, spans two environments and lives in
``harness.verdicts``.

A provisioning failure becomes ``env-error`` for every selected cell with the installer's own message; unmet
requirements become ``skip`` cells with the reason, decided here from the resolved versions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import paths, relay, workspace
from harness.cache import CachedCell, CellCache, CellKey, EnvironmentKey, source_digest
from harness.documents import (
    Recorder,
    drop_other_locks,
    locked,
    new_document,
    open_document,
    prior_state,
    resolved_of,
)
from harness.errors import ProvisionError, Terminated
from harness.matrix import Matrix, restrict
from harness.progress import Progress
from harness.provision import Provisioned, provision
from harness.requirements import capabilities, preload_modules, unmet
from harness.results import (
    EnvError,
    EnvironmentResult,
    Invocation,
    ResolvedEnvironment,
    ScenarioResult,
    new_run_id,
    now_iso,
    read_result,
    write_result,
)
from harness.sandbox import Sandbox, find_sandbox
from harness.supervisor import ResultSink, Supervisor, WorkerSpec
from harness.worker.models import MODEL_PREFIX
from harness.worker.protocol import UNSAFE_ALLOWED, blank_cell
from harness.worker.scenario import Scenario, split_id

__all__ = ["REPO_ROOT", "EnvironmentPipeline"]

#: What workers get on their PYTHONPATH (the folder holding ``harness`` and ``scenarios``).
REPO_ROOT = workspace.LIB_ROOT


class EnvironmentPipeline:
    """The stages of one environment in one run, sharing one provisioning."""

    def __init__(
        self,
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
        cache: CellCache | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.matrix, self.env = matrix, matrix.environment(env_name)
        self.run_dir, self.venv_dir, self.registry, self.run_id = run_dir, venv_dir, registry, run_id
        self.scenario_packages, self.extra_pythonpath, self.environ = scenario_packages, extra_pythonpath, environ
        self.cache = cache
        self.progress = progress
        self._provisioned: Provisioned | None = None
        self._env_key: EnvironmentKey | None = None

    # ------------------------------------------------------------------------------------------- provision

    def provision(self) -> Provisioned:
        """The environment, provisioned on first use (uv reuses a venv whose inputs did not change)."""
        if self._provisioned is None:
            self._provisioned = provision(self.env, self.venv_dir, environ=self.environ)
        return self._provisioned

    def _phase(self, name: str, total: int = 0) -> None:
        if self.progress is not None:
            self.progress.phase(name, total)

    def _counted(self, sink: ResultSink) -> ResultSink:
        """``sink``, then one more cell done on the progress line."""
        progress = self.progress
        if progress is None:
            return sink

        def count(raw: dict[str, Any]) -> None:
            sink(raw)
            progress.cell_done()

        return count

    def environment_key(self, resolved: ResolvedEnvironment | None = None) -> EnvironmentKey:
        """What this environment adds to every cell's cache key (the lock, Python, machine, variables, seed)."""
        if self._env_key is None:
            prov = self.provision()
            resolved = resolved or resolved_of(prov)
            self._env_key = EnvironmentKey(
                environment=self.env.name,
                lock_sha256=prov.lock_sha256,
                packages=tuple(sorted(prov.packages.items())),
                python_version=resolved.python_version,
                machine=resolved.machine,
                cpu_flags=tuple(resolved.cpu_flags),
                env_vars=tuple(sorted(self.env.env.items())),
                seed=self.matrix.defaults.seed,
            )
        return self._env_key

    def _key(self, cell_id: str, timeout: float, extra: str = "") -> str:
        module = self.registry[split_id(cell_id)[0]].module
        return CellKey(self.environment_key(), cell_id, source_digest(module), timeout, extra).sha256

    def _spec(self, scratch: Path, preload: list[str], context: dict[str, str]) -> WorkerSpec:
        return self.provision().worker_spec(
            self.env,
            scratch,
            preload,
            pythonpath=[REPO_ROOT, *self.extra_pythonpath],
            context={"environment": self.env.name, **context},
            seed=self.matrix.defaults.seed,
            startup_timeout=self.matrix.defaults.startup_timeout,
            scenario_packages=self.scenario_packages,
            scenario_paths=self.matrix.scenario_paths,
            models=self.matrix.models,
            base=self.environ,
        )

    # ------------------------------------------------------------------------------------------------- run

    def run(self, selection: Sequence[str] = (), repeat: int = 1) -> EnvironmentResult:
        """Run the selected scenarios (``selection``: ``-k`` globs over the matrix's); write ``<env>.json``.

        A subset re-run keeps the other cells this run already holds, so a verdict's reproduce command never
        throws evidence away; each cell records which invocation wrote it. One command at a time per document.
        """
        with locked(self.run_dir, self.env.name):
            return self._run(selection, repeat)

    def _run(self, selection: Sequence[str], repeat: int) -> EnvironmentResult:
        started = time.perf_counter()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        order = list(self.matrix.scenario_ids)
        chosen = list(restrict(self.matrix, list(selection)).scenario_ids) if selection else order
        # The same run id again after an interruption resumes: the finished cells stay, only the rest runs. A
        # selection (-k) always measures its cells again, as does a re-run of a run that completed.
        resume = not selection and prior_state(self.run_dir, self.env.name) in ("interrupted", "running")
        doc = open_document(self.matrix, self.env, self.run_dir, self.run_id, [] if resume else chosen)
        invocation = Invocation(
            id=f"{new_run_id()}-{os.getpid()}", started_at=now_iso(), selection=list(selection), cells=chosen
        )
        doc.invocations.append(invocation)
        scratch = paths.logs_dir(self.run_dir, self.env.name)
        recorder = Recorder(doc, self.run_dir, scratch, order, invocation.id)
        recorder.save()
        self._phase("provision")
        try:
            prov = self.provision()
        except ProvisionError as exc:
            return self._env_error(recorder, chosen, exc, started)
        doc.timings.provision_s = round(prov.seconds, 3)
        doc.environment.resolved = resolved_of(prov)
        invocation.lock_sha256 = prov.lock_sha256
        stale = drop_other_locks(doc, self.run_dir, prov.lock_sha256)
        if stale:
            print(f"{self.env.name}: {len(stale)} kept cells came from another lock and were dropped", file=sys.stderr)
        kept = {c.id for c in doc.scenarios}
        missing = [sid for sid in chosen if sid not in kept]
        if resume:
            invocation.cells = missing
            print(f"{self.env.name}: resuming run {self.run_id}: {len(chosen) - len(missing)} finished cells kept, "
                  f"{len(missing)} to run", file=sys.stderr)  # fmt: skip
        to_run = self._skip_unmet(recorder, missing, capabilities(prov.packages, self.env.env))
        self.environment_key(doc.environment.resolved)
        keys = (
            {sid: self._key(sid, self.matrix.timeouts[sid], self._inputs_of(sid)) for sid in to_run}
            if self.cache
            else {}
        )
        if repeat == 1 and not selection:  # a flake hunt, and a -k re-run (a reproduce command), measure again
            to_run = self._reuse(recorder, to_run, keys, scratch)
        try:
            if to_run:
                self._supervise(recorder, scratch, to_run, repeat, keys)
        except (KeyboardInterrupt, Terminated):  # the finished cells stay; the document says it stopped early
            doc.state, doc.finished_at = "interrupted", now_iso()
            recorder.save()
            raise
        doc.state, doc.finished_at = "complete", now_iso()
        doc.timings.total_s = round(time.perf_counter() - started, 3)
        recorder.save()
        return doc

    def _env_error(
        self, recorder: Recorder, chosen: list[str], exc: ProvisionError, started: float
    ) -> EnvironmentResult:
        doc = recorder.doc
        doc.state = "env-error"
        doc.env_error = EnvError(message=str(exc), installer_output=exc.installer_output[-20000:])
        doc.timings.provision_s = round(time.perf_counter() - started, 3)
        for scenario_id in chosen:
            recorder.add(self._cell(scenario_id, "env-error", str(exc)))
        doc.finished_at = now_iso()
        doc.timings.total_s = round(time.perf_counter() - started, 3)
        recorder.save()
        return doc

    def _cell(self, scenario_id: str, status: str, message: str) -> ScenarioResult:
        area = self.registry[scenario_id].area
        return ScenarioResult.model_validate(blank_cell(scenario_id, area, status, message))  # type: ignore[arg-type]

    def _skip_unmet(self, recorder: Recorder, chosen: list[str], caps: Mapping[str, str]) -> list[str]:
        to_run, skipped = [], []
        for scenario_id in chosen:
            reasons = [r for r in (unmet(req, caps) for req in self.registry[scenario_id].requires) if r]
            if reasons:
                skipped.append(self._cell(scenario_id, "skip", "; ".join(reasons)))
            else:
                to_run.append(scenario_id)
        if skipped:
            recorder.add_many(skipped)
        return to_run

    def _reuse(self, recorder: Recorder, to_run: list[str], keys: Mapping[str, str], scratch: Path) -> list[str]:
        """Take every cell the cache holds under its key; return the ones still to measure."""
        if self.cache is None:
            return to_run
        measure, reused = [], []
        for sid in to_run:
            cached = self.cache.get(keys[sid], sid)
            if cached is None:
                measure.append(sid)
                continue
            try:
                self._take_files(sid, cached, scratch)
            except OSError:  # the entry went (``cache prune`` meanwhile) or broke after it was read: measure it
                measure.append(sid)
                continue
            reused.append(cached.cell.model_copy(update={"reused_from": cached.origin}))
        if reused:
            recorder.doc.timings.cells_reused += len(reused)
            recorder.add_many(reused)
        return measure

    def _take_files(self, sid: str, cached: CachedCell, scratch: Path) -> None:
        """A reused cell's values (into the scratch folder the Recorder merges) and a producer's artifacts."""
        if cached.values is not None:
            scratch.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached.values, scratch / f"{sid}.npz")  # the Recorder merges it like a worker's
        if sid == relay.PRODUCE_ID and self.cache is not None:
            self.cache.restore_artifacts(cached, paths.artifacts_dir(self.run_dir, self.env.name))

    def _storing(self, sink: ResultSink, keys: Mapping[str, str], scratch: Path) -> ResultSink:
        """``sink``, after storing each measured cell in the cache (with its values and a producer's artifacts)."""
        cache, origin = self.cache, f"{self.run_id}/{self.env.name}"
        if cache is None:
            return sink

        def store(raw: dict[str, Any]) -> None:
            key = keys.get(raw["id"], "")
            if key:
                raw = {**raw, "cache_key": key}
                produced = paths.artifacts_dir(self.run_dir, self.env.name) if raw["id"] == relay.PRODUCE_ID else None
                cache.put(key, raw, origin, scratch / f"{raw['id']}.npz", produced)
            sink(raw)

        return store

    def _inputs_of(self, scenario_id: str) -> str:
        """What a cell reads besides its code: for a user model, the digest of its files (else nothing)."""
        if not scenario_id.startswith(MODEL_PREFIX):
            return ""
        name = scenario_id.removeprefix(MODEL_PREFIX)
        return next(str(m["digest"]) for m in self.matrix.models if m["name"] == name)

    def _supervise(
        self, recorder: Recorder, scratch: Path, to_run: list[str], repeat: int, keys: Mapping[str, str]
    ) -> None:
        models = [sid for sid in to_run if sid.startswith(MODEL_PREFIX)]
        plain = [sid for sid in to_run if sid not in models]
        if plain:
            self._supervise_scenarios(recorder, scratch, plain, repeat, keys)
        if models:
            self._supervise_models(recorder, scratch / "models", models, keys)

    def _supervise_models(self, recorder: Recorder, scratch: Path, ids: list[str], keys: Mapping[str, str]) -> None:
        """The user's models load in a worker of their own, in the sandbox (a model file can hold code: a pickle,
        a Lambda layer, a SavedModel graph); with no sandbox on this machine they are not loaded, and say why."""
        found = find_sandbox()
        if isinstance(found, str):
            why = (
                f"a saved model can run code when loaded, so it is loaded only in the sandbox; this machine has {found}"
            )
            recorder.add_many([self._cell(sid, "skip", why) for sid in ids])
            return
        caps = capabilities(self.provision().packages, self.env.env)
        requirements = [req for sid in ids for req in self.registry[sid].requires]
        spec = self._spec(scratch, preload_modules(requirements, self.env.env, caps), {})
        spec = dataclasses.replace(spec, sandbox=found)
        areas = {sid: "user" for sid in ids}
        sink = self._storing(recorder.add_raw, keys, scratch)
        self._phase("models", len(ids))
        stats = Supervisor(spec, {sid: self.matrix.timeouts[sid] for sid in ids}, areas, self._counted(sink)).run(ids)
        recorder.doc.timings.worker_starts += stats.worker_starts

    def _supervise_scenarios(
        self, recorder: Recorder, scratch: Path, to_run: list[str], repeat: int, keys: Mapping[str, str]
    ) -> None:
        doc, caps = recorder.doc, capabilities(self.provision().packages, self.env.env)
        requirements = [req for sid in to_run for req in self.registry[sid].requires]
        artifacts = paths.artifacts_dir(self.run_dir, self.env.name).resolve()
        spec = self._spec(scratch, preload_modules(requirements, self.env.env, caps), {"artifacts_dir": str(artifacts)})
        areas = {sid: self.registry[sid].area for sid in to_run}
        sink = self._storing(recorder.add_raw, keys, scratch) if repeat == 1 else recorder.add_raw
        self._phase("scenarios", len(to_run))
        supervisor = Supervisor(spec, {sid: self.matrix.timeouts[sid] for sid in to_run}, areas, self._counted(sink))
        stats = supervisor.run(to_run)
        if repeat > 1:
            doc.repeats = repeat
            doc.flaky = sorted({*doc.flaky, *_find_flaky(doc, spec, supervisor, to_run, repeat)})
        doc.timings.worker_starts = stats.worker_starts
        doc.timings.import_s = round(stats.import_s[0], 3) if stats.import_s else None
        doc.timings.import_s_total = round(sum(stats.import_s), 3)

    # ----------------------------------------------------------------------------------------- relay-consume

    def consume(self, source: Path | None = None) -> EnvironmentResult:
        """Load every producer's artifacts here, one worker cell per producer and format; store the rows."""
        with locked(self.run_dir, self.env.name):
            return self._consume(source)

    def _consume(self, source: Path | None) -> EnvironmentResult:
        source = Path(source) if source else paths.artifacts_dir(self.run_dir)
        path = paths.results_file(self.run_dir, self.env.name)
        doc = read_result(path) if path.exists() else new_document(self.matrix, self.env, self.run_id)
        started = time.perf_counter()
        caps = capabilities(self.provision().packages, self.env.env)
        manifests, problems = relay.load_manifests(source)
        cells = relay.plan_cells(caps, manifests)
        outcomes = self._consume_cells([c for c in cells if c.skip_reason is None], caps, source, manifests)
        doc.timings.relay_cells_reused = sum(1 for o in outcomes.values() if o.reused_from)
        doc.relay = [
            row
            for cell in cells
            for row in relay.relay_results(self.env.name, cell, manifests[cell.producer], outcomes.get(cell.cell_id))
        ]
        doc.timings.relay_s = round(time.perf_counter() - started, 3)
        doc.relay_problems = problems
        write_result(path, doc)
        return doc

    def _consume_cells(
        self,
        to_run: list[relay.Planned],
        caps: Mapping[str, str],
        source: Path,
        manifests: Mapping[str, relay.Manifest],
    ) -> dict[str, ScenarioResult]:
        outcomes: dict[str, ScenarioResult] = {}
        if not to_run:
            return outcomes
        scratch = paths.logs_dir(self.run_dir, self.env.name) / "relay"
        preload = preload_modules(["keras|torch|tensorflow"], self.env.env, caps)
        sandbox, unsafe = relay_sandbox(self.matrix)
        context = {"relay_source": str(source.resolve()), "unsafe_formats": unsafe}
        spec = dataclasses.replace(self._spec(scratch, preload, context), sandbox=sandbox)
        timeout = self.registry[relay.CONSUME_ID].timeout or self.matrix.defaults.timeout
        keys = {c.cell_id: self._key(c.cell_id, timeout, _consumer_inputs(c, manifests, unsafe)) for c in to_run}
        if self.cache:
            for cell_id, key in keys.items():
                cached = self.cache.get(key, cell_id)
                if cached is not None:
                    outcomes[cell_id] = cached.cell.model_copy(update={"reused_from": cached.origin})
        ids = [c.cell_id for c in to_run if c.cell_id not in outcomes]
        if not ids:
            return outcomes

        def sink(raw: dict[str, Any]) -> None:
            outcomes[raw["id"]] = ScenarioResult.model_validate(raw)

        store = self._counted(self._storing(sink, keys, scratch))
        self._phase("relay", len(ids))
        Supervisor(spec, dict.fromkeys(ids, timeout), dict.fromkeys(ids, "relay"), store).run(ids)
        return outcomes


def _consumer_inputs(cell: relay.Planned, manifests: Mapping[str, relay.Manifest], unsafe: str) -> str:
    """A consumer cell's own inputs for its key: the producer's entries it loads (hashes included) and the mode."""
    entries = [
        a.model_dump(mode="json")
        for a in manifests[cell.producer].artifacts
        if a.family == cell.family and a.format == cell.format
    ]
    return json.dumps({"entries": entries, "unsafe_formats": unsafe}, sort_keys=True)


def relay_sandbox(matrix: Matrix) -> tuple[Sandbox | None, str]:
    """The consumer's sandbox and its ``unsafe_formats`` context: load (sandboxed) or why not (fail closed)."""
    if not matrix.unsafe_formats:
        return None, f"unsafe_formats is off in {matrix.path.name}; set unsafe_formats: true to load it in a sandbox"
    found = find_sandbox()
    if isinstance(found, str):
        return None, f"unsafe_formats is on but this machine has {found}"
    return found, UNSAFE_ALLOWED


def _find_flaky(
    doc: EnvironmentResult, spec: WorkerSpec, supervisor: Supervisor, ids: list[str], repeat: int
) -> list[str]:
    """Run the cells ``repeat - 1`` more times in fresh workers; list the records whose values changed."""
    first = {(c.id, r.name): r.sha256 for c in doc.scenarios for r in c.records}
    flaky: set[str] = set()
    for number in range(2, repeat + 1):
        seen: dict[tuple[str, str], str] = {}

        def collect(raw: dict[str, Any], seen: dict[tuple[str, str], str] = seen) -> None:
            for record in raw.get("records", []):
                seen[(raw["id"], record["name"])] = record["sha256"]

        scratch = spec.scratch / f"repeat-{number}"
        again = dataclasses.replace(spec, scratch=scratch, log_path=scratch / "worker.log")
        Supervisor(again, supervisor.timeouts, supervisor.areas, collect).run(ids)
        flaky |= {f"{sid}::{name}" for (sid, name), sha in first.items() if seen.get((sid, name), sha) != sha}
    return sorted(flaky)
