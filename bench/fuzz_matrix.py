"""A fuzzing campaign against ``python -m harness check``: many mutated matrix files, and what became of them.

The inputs and the checking are those of tests/test_matrix_fuzz.py (grown from matrix.yaml, tests/resources/*.yaml
and the README's example; one in five through ``harness.cli.main``, the others through ``harness.matrix.load``),
with more of them and a seed of your choosing, so a campaign can run for minutes while the test suite stays fast.
Prints the inputs, those rejected cleanly (exit 2, every line ``file:line: key: what``), accepted, tracebacks
(an exception escaped or exit 3), malformed rejections, hangs (over 2 s) and the slowest input. Exits 1 when any
input was neither accepted nor rejected cleanly.

Usage: .nox/_tool/bin/python bench/fuzz_matrix.py [--inputs 10000] [--seed 1] [--save-slowest FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.worker import scenario as scenario_mod  # noqa: E402
from tests.test_matrix_fuzz import SLOW_SECONDS, Checker, Tally, campaign  # noqa: E402


def report(tally: Tally, seconds: float, again: float) -> str:
    kinds = tally.kinds
    slowest, what = tally.slowest
    lines = [
        f"inputs:            {sum(kinds.values())} in {seconds:.1f} s",
        f"rejected cleanly:  {kinds['rejected']}",
        f"accepted:          {kinds['accepted']}",
        f"tracebacks:        {kinds['traceback']}",
        f"malformed lines:   {kinds['malformed']}",
        f"hangs (> {SLOW_SECONDS:g} s):    {kinds['hang']}",
        f"slowest input:     {slowest:.3f} s: {what}",
        f"  checked again alone: {again:.3f} s (the campaign's own heap and other processes add pauses)",
        *(f"  {failure}" for failure in tally.failures),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=10_000, help="how many inputs to check (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="the campaign's random seed (default 1)")
    parser.add_argument("--save-slowest", type=Path, metavar="FILE", help="write the slowest input to FILE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-matrix-") as folder:
        start = time.perf_counter()
        tally = campaign(Path(folder), args.inputs, random_seed=args.seed)
        seconds = time.perf_counter() - start
        again = Checker(Path(folder), scenario_mod.discover()).run(tally.slowest_input).seconds
        print(report(tally, seconds, again))
    if args.save_slowest:
        args.save_slowest.write_bytes(tally.slowest_input)
    clean = tally.kinds["rejected"] + tally.kinds["accepted"]
    return 0 if clean == sum(tally.kinds.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
