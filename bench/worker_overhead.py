"""Worker overhead per environment: the supervised worker against the same scenarios in one bare Python process.

For each environment (already provisioned under .nox/, e.g. by ./cm), run side by side and interleaved:
  harness  the Supervisor starting ``python -m harness.worker``: spawn, framework import, determinism warm-up,
           per-scenario seeding, output capture, record summaries and npz, JSON events
  bare     ``python -c`` importing the same frameworks and calling the same scenario functions back to back
  bare+seeding  the same, calling the determinism helper before each scenario as the worker does
Prints the median wall time of each and the differences: against bare+seeding is the worker's own overhead
(process supervision, capture, records, events); the rest is the cost of determinism itself.

Usage: .nox/_tool/bin/python bench/worker_overhead.py [--repeats 3] [ENV ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import matrix as matrix_mod  # noqa: E402
from harness.provision import provision  # noqa: E402
from harness.requirements import capabilities, preload_modules, unmet  # noqa: E402
from harness.supervisor import Supervisor, WorkerSpec  # noqa: E402
from harness.worker import scenario as scenario_mod  # noqa: E402

# The same context the worker gets (relay.produce needs its artifacts folder), and the same tolerance: a scenario
# that skips, fails a check or raises ends its own cell, not the process.
BARE = """
for name in {preload!r}:
    __import__(name)
from harness.worker import determinism
from harness.worker.scenario import Context, discover
registry = discover(["scenarios"])
for sid in {ids!r}:
    if {seeded!r}:
        determinism.reset()
    try:
        registry[sid].func(Context(sid, context={context!r}))
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
"""


def harness_run(spec: WorkerSpec, ids: list[str], timeouts: dict[str, float]) -> float:
    started = time.perf_counter()
    Supervisor(spec, timeouts, {}, lambda result: None).run(ids)
    return time.perf_counter() - started


def bare_run(python: str, env: dict[str, str], preload: list[str], ids: list[str], seeded: bool) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        context = {"environment": "bench", "artifacts_dir": str(Path(scratch) / "artifacts")}
        started = time.perf_counter()
        code = BARE.format(preload=preload, ids=ids, seeded=seeded, context=context)
        subprocess.run([python, "-c", code], env=env, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("envs", nargs="*", default=["tf2.21-keras3", "torch2.13", "tf2.15-keras2"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    registry = scenario_mod.discover()
    matrix = matrix_mod.load(ROOT / "matrix.yaml", registry)
    print(
        f"{'environment':<16} {'scenarios':>9} {'harness s':>10} {'bare s':>8} {'bare+seeding s':>15} "
        f"{'overhead vs bare':>17} {'vs bare+seeding':>16} {'ratio':>6}"
    )
    for name in args.envs:
        env = matrix.environment(name)
        venv = ROOT / ".nox" / env.venv_slug
        prov = provision(env, venv)
        caps = capabilities(prov.packages, env.env)
        ids = [s for s in matrix.scenario_ids if not any(unmet(r, caps) for r in registry[s].requires)]
        preload = preload_modules([r for s in ids for r in registry[s].requires], env.env, caps)
        environ = prov.worker_environ(env, [ROOT])
        timings: dict[str, list[float]] = {"harness": [], "bare": [], "seeded": []}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                spec = WorkerSpec(
                    python=str(prov.python),
                    env=environ,
                    scratch=Path(scratch),
                    log_path=Path(scratch) / "worker.log",
                    preload=tuple(preload),
                    context={"environment": "bench", "artifacts_dir": str(Path(scratch) / "artifacts")},
                )
                timings["harness"].append(harness_run(spec, ids, dict.fromkeys(ids, 300.0)))
            timings["bare"].append(bare_run(str(prov.python), environ, preload, ids, seeded=False))
            timings["seeded"].append(bare_run(str(prov.python), environ, preload, ids, seeded=True))
        h, b, s = (statistics.median(timings[k]) for k in ("harness", "bare", "seeded"))
        print(f"{name:<16} {len(ids):>9} {h:>10.2f} {b:>8.2f} {s:>15.2f} {h - b:>17.2f} {h - s:>16.2f} {h / s:>6.2f}")


if __name__ == "__main__":
    main()
