"""An unchanged re-run of the default matrix against one framework import, measured side by side.

  import   a fresh ``python -c "import tensorflow, keras"`` in the baseline's venv (median of --imports runs):
           what a single environment pays before its first scenario when nothing can be reused
  rerun    ``nox`` on the default matrix into a new run id with the cell cache warm (every session: provision
           check, reuse, relay, report), as the nightly job does when nothing changed
  fresh    (--fresh) the same with ``COMPAT_NO_CACHE=1``: every cell measured again, the cost before the cache

Prints each time and the ratios rerun / import (target <= 2) and fresh / rerun. A cold cache is primed first by
one ordinary run. Usage: .nox/_tool/bin/python bench/rerun.py [--imports 3] [--fresh] [--env tf2.21-keras3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import matrix as matrix_mod  # noqa: E402
from harness.cache import default_cache_dir  # noqa: E402
from harness.worker import scenario as scenario_mod  # noqa: E402

NOX = ROOT / ".nox" / "_tool" / "bin" / "nox"


def import_seconds(python: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([str(python), "-c", "import tensorflow, keras"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def nox_seconds(run_id: str, **env: str) -> float:
    """The whole default matrix through nox; exit 1 is a NO-GO verdict (the report's), not a failed run."""
    started = time.perf_counter()
    proc = subprocess.run(
        [str(NOX)], cwd=ROOT, env={**os.environ, "COMPAT_RUN_ID": run_id, **env}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    failed = re.findall(r"\* (\S+): failed", proc.stdout + proc.stderr)
    if proc.returncode not in (0, 1) or failed not in ([], ["report"]):
        raise SystemExit(f"nox failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imports", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="also time a run with the cache off")
    parser.add_argument("--env", default="tf2.21-keras3", help="the environment whose import is timed")
    args = parser.parse_args()
    matrix = matrix_mod.load(ROOT / "matrix.yaml", scenario_mod.discover())
    python = ROOT / ".nox" / matrix.environment(args.env).venv_slug / "bin" / "python"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    cache = default_cache_dir()
    if not cache.is_dir() or not any(cache.iterdir()) or not python.exists():
        print(f"priming: one ordinary run fills the cache ({nox_seconds(f'bench-prime-{stamp}'):.1f} s)")
    rerun = nox_seconds(f"bench-rerun-{stamp}")
    imported = import_seconds(python, args.imports)
    print(f"{'import tensorflow, keras':<34} {imported:8.2f} s  (median of {args.imports}, {args.env})")
    print(f"{'unchanged re-run (cache warm)':<34} {rerun:8.2f} s")
    print(f"{'ratio re-run / import':<34} {rerun / imported:8.2f}    target <= 2")
    if args.fresh:
        fresh = nox_seconds(f"bench-fresh-{stamp}", COMPAT_NO_CACHE="1")
        print(f"{'re-run with --no-cache':<34} {fresh:8.2f} s")
        print(f"{'ratio no-cache / cached re-run':<34} {fresh / rerun:8.2f}")


if __name__ == "__main__":
    main()
