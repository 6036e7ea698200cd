"""Does ``report`` scale linearly? Synthetic runs of 1k, 10k and 100k cells, the report beside a plain json.load.

For each size a run folder is written once (results documents through ``harness.results.write_result``, record
values in each environment's ``.npz`` as a real run has them, a matrix whose environments form one upgrade chain and
a scenario package that registers the run's scenario ids), then measured side by side, each in a fresh Python
process so no peak memory is shared:

  json    ``json.load`` of every results document of the run (the floor: reading the same bytes at all)
  report  ``harness.cli.main(["report", ...])``, the entry point ``python -m harness report`` calls: load, judge
          every upgrade path (ledgers and verdicts written), Markdown, HTML, JUnit XML, trend

Printed per size (times: the median of ``--repeats`` runs of each, interleaved, and each repeat's own ratio
beside): seconds of each inside its process (the report's after its modules are imported, those
``main`` imports while building its parser included: a fixed cost printed apart, and the ratio with it), the
ratio report / json, and the report's CPU seconds per json second: a large run's report judges half its paths
and renders its HTML in forked copies of itself (``harness.split_work``), so its wall time is not its CPU time,
and the CPU ratio is what it would take on one core. Peak memory: ru_maxrss of each process and, for the report,
the sum of the proportional set sizes of it and its copies sampled every 20 ms (a page they share counts once),
against the bytes of the run on disk (documents and ``.npz``), also counted from the report process's size right
after its imports (the interpreter and libraries are not the data); and the size of report.html. The phases are
those of the report's own process; the copies' share is their CPU.

Targets (issue 12): at 10k cells the report takes at most 3x the json load, its peak memory is at most 2x the data
and report.html at most 5 MB; at 100k the time ratio stays within 1.5x of the 10k ratio. Runs are kept in
``--workdir`` and reused when their parameters match.

Usage: .nox/_tool/bin/python bench/report_scale.py [--sizes 1k,10k,100k] [--repeats 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import results, sidecar  # noqa: E402
from harness.results import (  # noqa: E402
    CheckResult,
    DeclaredEnvironment,
    EnvironmentInfo,
    EnvironmentResult,
    RecordSummary,
    RelayResult,
    ResolvedEnvironment,
    ScenarioResult,
    Timings,
    WarningEntry,
)
from harness.worker import records  # noqa: E402

#: cells = environments x scenarios; 1,000 environments is the matrix's bound, so scenarios grow with them.
SIZES = {"1k": (10, 100), "10k": (100, 100), "100k": (1000, 100)}
AREAS = ("layer_init", "save_load", "data_order", "numerics", "api_surface", "training", "export")
PACKAGE = "bench_report_scenarios"
RUN_ID = "bench"
MB = 1 << 20

JSON_CHILD = """
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
docs = []
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    with open(path, encoding="utf-8") as handle:
        docs.append(json.load(handle))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

REPORT_CHILD = """
import contextlib, functools, json, os, resource, sys, time
start = time.perf_counter()
from harness.cli import build_parser, main
import harness.history, harness.report, harness.results, harness.verdicts, jinja2  # what cmd_report imports
build_parser()  # what main imports before any command runs (the bisect and scan commands' modules)
imported = time.perf_counter()
rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
phases, running = {}, []


def timed(module, name, phase):
    real = getattr(module, name)

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        if running and running[-1] == phase:  # nested in itself (history's functions call each other): once
            return real(*args, **kwargs)
        running.append(phase)
        began = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - began
            running.pop()

    setattr(module, name, wrapper)


# cmd_report looks these up when it runs, so the wrappers are what it calls; measure_path is judging's measuring
for module, name, phase in PHASES:
    timed(sys.modules[module], name, phase)
with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
    code = main(sys.argv[1:])
seconds = time.perf_counter() - imported
own, copies = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "imports": imported - start, "rss": own.ru_maxrss * 1024,
                  "rss_imported": rss_imported, "copies_rss": copies.ru_maxrss * 1024,
                  "cpu": own.ru_utime + own.ru_stime, "copies_cpu": copies.ru_utime + copies.ru_stime,
                  "exit": code, "phases": phases}), file=sys.__stdout__)
"""
#: Where the report's time goes, each function timed inside the report's own process (module, function, phase).
#: ``judge`` is ``load_and_judge`` less the ``load``, ``measure`` and ``history`` inside it: the judge itself, the
#: ledgers and verdicts written, and waiting for the copy that judged the other paths meanwhile.
PHASES = [
    ("harness.verdicts", "_read_run", "load"),
    ("harness.verdicts", "measure_path", "measure"),
    ("harness.verdicts", "load_and_judge", "judge"),
    ("harness.history", "list_runs", "history"),
    ("harness.history", "completeness_flags", "history"),
    ("harness.history", "trend", "history"),
    ("harness.history", "new_releases", "history"),
    ("harness.report", "render_markdown", "markdown"),
    ("harness.report", "render_html", "html"),
    ("harness.report", "render_junit", "junit"),
]
PHASE_NAMES = list(dict.fromkeys(phase for _, _, phase in PHASES))


# ------------------------------------------------------------------------------------------- the synthetic run


def scenario_ids(count: int) -> list[str]:
    return [f"{AREAS[i % len(AREAS)]}.case_{i:04d}" for i in range(count)]


def _status(env: int, index: int) -> str:
    """Mostly passes and skips; failures that come and go along the chain, so verdicts have reasons to give."""
    roll = (env * 7 + index * 13) % 100
    if index % 5 == 4:
        return "skip"
    if roll < 4:
        return "fail"
    if roll == 4:
        return "error"
    if roll == 5 and index % 2:
        return "crash"
    return "pass"


def _traceback(env: int, index: int) -> str:
    frames = "".join(
        f'  File "site-packages/keras/src/layers/layer_{k}.py", line {10 + k}, in call\n' for k in range(12)
    )
    return f"Traceback (most recent call last):\n{frames}ValueError: env {env} case {index}: shapes (4, 8) and (8, 3)"


def _records(sid: str, env: int, index: int) -> tuple[list[RecordSummary], dict[str, np.ndarray]]:
    """Five records as the worker summarizes them: two arrays in the .npz, a config, a scalar and an info."""
    base = np.linspace(-1.0, 1.0, 32, dtype=np.float32) * (index + 1)
    drift = np.float32(1e-3) if index % 17 == env % 17 else np.float32(0.0)  # one scenario in 17 drifts per step
    values: dict[str, tuple[str | None, Any]] = {
        "kernel": ("array", base + drift),
        "order": ("ordering", np.arange(16, dtype=np.int64)[:: 1 if index % 3 else -1]),
        "config": ("config", {"units": 8, "activation": "relu", "use_bias": True, "dtype": "float32"}),
        "loss": ("scalar", float(0.25 + index / 1000)),
        "versions": ("info", {"keras": f"3.{env % 20}.0", "numpy": "2.1.3"}),
    }
    summaries, arrays = [], {}
    for name, (kind, value) in values.items():
        summary, array = records.summarize(name, kind, value)
        summaries.append(RecordSummary.model_validate(summary))
        if array is not None:
            arrays[sidecar.npz_key(sid, name)] = array
    return summaries, arrays


def _cell(sid: str, env: int, index: int) -> tuple[ScenarioResult, dict[str, np.ndarray]]:
    status = _status(env, index)
    cell = ScenarioResult(id=sid, area=sid.split(".")[0], status=status, duration_s=0.05 + index / 1000)
    if status == "skip":
        cell.message = f"requires torch>=2.{index % 9}; the environment has torch 2.5.1"
        return cell, {}
    cell.seeding = ["python.random", "numpy", "keras.utils.set_random_seed"]
    cell.checks = [
        CheckResult(name="shape", ok=True, values={"expected": [4, 8], "got": [4, 8]}),
        CheckResult(name="finite", ok=status == "pass", values={"nonfinite": 0 if status == "pass" else 3}),
    ]
    if index % 4 == 0:
        cell.warnings = [
            WarningEntry(
                source="warnings",
                category="DeprecationWarning",
                message=f"`layer.add_weight(shape)` positional argument is deprecated (case {index})",
                module="keras.src.layers.layer",
                framework=True,
            )
        ]
    if status != "pass":
        cell.message = _traceback(env, index).splitlines()[-1]
        cell.traceback = _traceback(env, index)
        cell.output_tail = "W0000 00:00:00.000000 1 cpu_feature_guard.cc:210] oneDNN custom operations are on.\n"
        return cell, {}
    cell.records, arrays = _records(sid, env, index)
    return cell, arrays


def _relay(names: list[str], env: int) -> list[RelayResult]:
    """Artifacts of this environment and the two before it, loaded here (a real run loads every producer's)."""
    rows = []
    for producer in names[max(0, env - 2) : env + 1]:
        for fmt in ("keras", "h5"):
            for k, model in enumerate(("sequential", "functional", "subclassed")):
                broken = fmt == "h5" and model == "subclassed" and (env + k) % 3 == 0
                rows.append(
                    RelayResult(
                        producer=producer,
                        consumer=names[env],
                        family="keras",
                        model=model,
                        format=fmt,
                        outcome="load-error" if broken else "loaded",
                        max_abs_error=None if broken else 0.0,
                        error_class="TypeError" if broken else "",
                        message="Could not deserialize class 'Custom'" if broken else "",
                        producer_versions={"keras": "3.3.3"},
                        duration_s=0.4,
                    )
                )
    return rows


def _document(names: list[str], env: int, cells: list[ScenarioResult], has_npz: bool) -> EnvironmentResult:
    packages = {"keras": f"3.{env % 20}.0", "torch": "2.5.1", "numpy": "2.1.3"}
    info = EnvironmentInfo(
        name=names[env],
        declared=DeclaredEnvironment(python="3.11", packages={"torch": "2.5.1"}),
        resolved=ResolvedEnvironment(
            python_version="3.11.7",
            platform="Linux-6.1-x86_64",
            machine="x86_64",
            cpu_flags=["avx2", "fma"],
            packages=packages,
            lock_sha256="0" * 64,
            installer="uv 0.5.0",
        ),
    )
    return EnvironmentResult(
        run_id=RUN_ID,
        harness_version="bench",
        matrix_file="matrix.yaml",
        started_at="2026-12-01T00:00:00+00:00",
        finished_at="2026-12-01T00:10:00+00:00",
        state="complete",
        environment=info,
        timings=Timings(provision_s=12.5, import_s=3.2, scenarios_s=40.0, total_s=60.0),
        scenarios=cells,
        records_file=f"{names[env]}.npz" if has_npz else None,
        relay=_relay(names, env),
        matrix_sha256="bench",
    )


def _matrix(names: list[str]) -> str:
    lines = ["version: 1", "scenarios: {ids: []}", "environments:"]
    lines += [f'  - name: {name}\n    packages: {{torch: "2.5.1"}}' for name in names]
    lines += ["upgrades:", f"  - chain: [{', '.join(names)}]", ""]
    return "\n".join(lines)


def _scenario_package(folder: Path, ids: list[str]) -> None:
    """The run's scenario ids as a registry, so the matrix selects exactly the cells the run has."""
    package = folder / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "cells.py").write_text(
        "from harness.worker.scenario import scenario\n\n"
        f"for _id in {ids!r}:\n"
        "    _area, _name = _id.split('.')\n"
        "    scenario(area=_area, name=_name)(lambda ctx: None)\n"
    )


def build_run(folder: Path, envs: int, scenarios: int) -> Path:
    """Write the run (reused when ``folder`` already holds one of these parameters) and return its run folder."""
    stamp = folder / "parameters.json"
    wanted = {"envs": envs, "scenarios": scenarios, "version": 1}
    run_dir = folder / "results" / RUN_ID
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return run_dir
    shutil.rmtree(folder, ignore_errors=True)
    run_dir.mkdir(parents=True)
    ids = scenario_ids(scenarios)
    names = [f"env{i:04d}" for i in range(envs)]
    for env, name in enumerate(names):
        built = [_cell(sid, env, index) for index, sid in enumerate(ids)]
        arrays = {key: value for _, a in built for key, value in a.items()}
        if arrays:
            np.savez(run_dir / f"{name}.npz", **arrays)  # type: ignore[arg-type]
        results.write_result(run_dir / f"{name}.json", _document(names, env, [c for c, _ in built], bool(arrays)))
    (folder / "matrix.yaml").write_text(_matrix(names))
    _scenario_package(folder, ids)
    stamp.write_text(json.dumps(wanted))
    return run_dir


# ------------------------------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    seconds: float
    rss: int
    imports: float = 0.0
    rss_imported: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    pss: int = 0  # the process and its forked copies together (sampled sum of proportional set sizes)
    copies_rss: int = 0  # the largest copy's own peak, the pages it shares with the report counted in it
    cpu: float = 0.0  # seconds of CPU of the process itself, imports included
    copies_cpu: float = 0.0


def _pss(pid: int) -> int:
    """Bytes of ``pid``'s proportional set size (a page shared by two processes counts half in each), 0 once gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (the report's forked copies)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(child) for child in children)]


def _child(code: str, args: list[str], folder: Path, sample: bool = False) -> dict[str, Any]:
    """Run ``code`` in a fresh process; its last stdout line (JSON), with ``pss``: when ``sample``, the largest sum
    of the proportional set sizes of it and its children, sampled from here every 20 ms (a sampling thread inside
    the report would keep it from forking). Reading them costs the kernel time beside the report's two processes
    on two cores, so timed runs are not sampled: the memory comes from a run of its own."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)])}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=out, stderr=err)
        peak = 0
        while child.poll() is None:
            if sample:
                peak = max(peak, sum(_pss(pid) for pid in _tree(child.pid)))
            time.sleep(0.02 if sample else 0.005)
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        if child.returncode != 0 or not lines:
            raise SystemExit(f"child failed ({child.returncode}):\n{err.read()[-3000:]}")
    measured: dict[str, Any] = json.loads(lines[-1])
    measured["pss"] = peak
    return measured


def measure_json(run_dir: Path, folder: Path) -> Measured:
    got = _child(JSON_CHILD, [str(run_dir)], folder)
    return Measured(got["seconds"], got["rss"], pss=got["pss"])


def measure_report(run_dir: Path, folder: Path, sample: bool = False) -> Measured:
    argv = ["report", "--matrix", str(folder / "matrix.yaml"), "--scenario-packages", PACKAGE]
    argv += ["--results-dir", str(run_dir.parent), "--run", run_dir.name, "--gate", "incomplete"]
    got = _child(REPORT_CHILD.replace("PHASES", repr(PHASES), 1), argv, folder, sample)
    if got["exit"] not in (0, 1):
        raise SystemExit(f"report exited {got['exit']}")
    phases = dict(got["phases"])
    phases["judge"] = phases.get("judge", 0.0) - sum(phases.get(p, 0.0) for p in ("load", "measure", "history"))
    return Measured(
        got["seconds"],
        got["rss"],
        got["imports"],
        got["rss_imported"],
        phases,
        got["pss"],
        got["copies_rss"],
        got["cpu"],
        got["copies_cpu"],
    )


def data_bytes(run_dir: Path) -> int:
    return sum(p.stat().st_size for pattern in ("*.json", "*.npz") for p in run_dir.glob(pattern))


@dataclass
class Row:
    size: str
    cells: int
    documents: int
    data: int
    json: Measured
    report: Measured
    html: int
    ratios: list[float] = field(default_factory=list)  # each repeat's report / json, the two measured in a row

    @property
    def ratio(self) -> float:
        """The median report time over the median json time (each repeat's own ratio is printed beside it: on a
        shared machine they spread widely, a busy moment hitting one of the two and not the other)."""
        return self.report.seconds / self.json.seconds

    @property
    def peak(self) -> int:
        """The report's memory at its peak: its own, or with its forked copies the sampled sum of their
        proportional set sizes (what the two took together; a page they share is counted once), the larger."""
        return max(self.report.rss, self.report.pss)

    @property
    def memory(self) -> float:
        """The report's peak above its process right after the imports, per byte of data."""
        return (self.peak - self.report.rss_imported) / self.data

    @property
    def cpu_ratio(self) -> float:
        """CPU seconds of the report and its copies (imports left out) per second of the json load: what the
        report costs a machine with one core."""
        return (self.report.cpu + self.report.copies_cpu - self.report.imports) / self.json.seconds


def _pick(runs: list[Measured]) -> Measured:
    """The median time and the largest peak of the repeats (each phase its median)."""
    return Measured(
        statistics.median(r.seconds for r in runs),
        max(r.rss for r in runs),
        statistics.median(r.imports for r in runs),
        max(r.rss_imported for r in runs),
        {p: statistics.median(r.phases.get(p, 0.0) for r in runs) for p in PHASE_NAMES},
        0,  # timed runs are not sampled
        max(r.copies_rss for r in runs),
        statistics.median(r.cpu for r in runs),
        statistics.median(r.copies_cpu for r in runs),
    )


def phases_line(row: Row) -> str:
    """The report's time by phase, each as a multiple of the json load of the same run (they add up to the ratio)."""
    phases = {p: row.report.phases.get(p, 0.0) for p in PHASE_NAMES}
    phases["other"] = max(0.0, row.report.seconds - sum(phases.values()))
    shown = ", ".join(f"{name} {seconds / row.json.seconds:.2f}" for name, seconds in phases.items())
    copies = row.report.copies_cpu / row.json.seconds
    return f"{row.size}: report phases / json load: {shown}; CPU of its forked copies meanwhile {copies:.2f}"


def measure(size: str, workdir: Path, repeats: int) -> Row:
    envs, scenarios = SIZES[size]
    folder = workdir / size
    print(f"{size}: building {envs} environments x {scenarios} scenarios in {folder} ...", flush=True)
    run_dir = build_run(folder, envs, scenarios)
    json_runs, report_runs = [], []
    for _ in range(repeats):  # interleaved, so a busy moment of the machine hits both
        json_runs.append(measure_json(run_dir, folder))
        report_runs.append(measure_report(run_dir, folder))
    row = Row(size, envs * scenarios, envs, data_bytes(run_dir), _pick(json_runs), _pick(report_runs), 0)
    row.ratios = [r.seconds / j.seconds for j, r in zip(json_runs, report_runs, strict=True)]
    row.report.pss = measure_report(run_dir, folder, sample=True).pss  # memory: a run of its own, sampled
    row.html = (run_dir / "report.html").stat().st_size
    print(
        f"{size}: json {row.json.seconds:.2f} s, report {row.report.seconds:.2f} s (x{row.ratio:.2f}; each repeat's "
        f"ratio: {' '.join(f'{r:.2f}' for r in sorted(row.ratios))}), "
        f"report peak {row.report.rss / MB:.0f} MB for {row.data / MB:.1f} MB of data, html {row.html / MB:.2f} MB",
        flush=True,
    )
    print(phases_line(row), flush=True)
    return row


def print_table(rows: list[Row]) -> None:
    """One line per size, then each target against the numbers it is judged on."""
    print()
    header = (
        f"{'size':>5} {'cells':>7} {'docs':>5} {'data MB':>8} {'json s':>7} {'report s':>9} {'ratio':>6} "
        f"{'(+imports)':>10} {'cpu ratio':>9} {'json peak':>9} {'report peak':>11} {'with copies':>11} "
        f"{'peak/data':>9} {'(-imports)':>10} {'html MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        with_imports = (r.report.seconds + r.report.imports) / r.json.seconds
        print(
            f"{r.size:>5} {r.cells:>7} {r.documents:>5} {r.data / MB:>8.1f} {r.json.seconds:>7.2f} "
            f"{r.report.seconds:>9.2f} {r.ratio:>6.2f} {with_imports:>10.2f} {r.cpu_ratio:>9.2f} "
            f"{r.json.rss / MB:>9.0f} {r.report.rss / MB:>11.0f} {r.report.pss / MB:>11.0f} "
            f"{r.peak / r.data:>9.2f} {r.memory:>10.2f} {r.html / MB:>8.2f}"
        )
    print()
    for r in rows:
        print(phases_line(r))
    print(
        "\nreport s: main() after its modules are imported (imports once per process, "
        f"{statistics.median(r.report.imports for r in rows):.2f} s); cpu ratio: CPU seconds of the report and its "
        "forked copies, imports left out, per json second (its time on one core); peaks in MB: ru_maxrss, and "
        "'with copies' the sampled sum of the proportional set sizes of the report and its copies; peak/data: the "
        "larger of the two per byte of data; (-imports): that peak above the process right after its imports."
    )
    _targets({r.size: r for r in rows})


def _targets(by_size: dict[str, Row]) -> None:
    if "10k" not in by_size:
        return
    ten = by_size["10k"]
    ok = {True: "ok", False: "MISSED"}
    print()
    print(f"10k: report / json load {ten.ratio:.2f} (target <= 3): {ok[ten.ratio <= 3]}")
    mem, imports = ten.peak / ten.data, ten.report.rss_imported
    print(
        f"10k: report peak memory / data, what the data costs (above the imports) {ten.memory:.2f} (target <= 2): "
        f"{ok[ten.memory <= 2]}"
    )
    print(
        f"10k: report peak memory / data, the whole process {mem:.2f} (target <= 2): {ok[mem <= 2]} (its "
        f"interpreter and libraries alone: {imports / MB:.0f} MB, {imports / ten.data:.2f} x the data)"
    )
    print(f"10k: report.html {ten.html / MB:.2f} MB (target <= 5): {ok[ten.html <= 5 * MB]}")
    if "100k" in by_size:
        growth = by_size["100k"].ratio / ten.ratio
        ratio = by_size["100k"].ratio
        print(f"100k: time ratio {ratio:.2f} = {growth:.2f} x the 10k ratio (target <= 1.5): {ok[growth <= 1.5]}")
        big = by_size["100k"]
        print(
            f"100k: report peak memory / data {big.peak / big.data:.2f} the whole process, "
            f"{big.memory:.2f} above the imports"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1k,10k,100k", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per size (median time, max memory)")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "compat-matrix-report-scale"))
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {', '.join(SIZES)}")
    rows = [measure(size, Path(args.workdir), args.repeats) for size in sizes]
    print_table(rows)


if __name__ == "__main__":
    main()
