"""The options of ``bisect``, apart from the command, so that building the tool's parser imports none of what a
bisection needs (numpy, the verdict, the pipeline): every other command starts without them."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bisect`` (the shared ``--matrix``, ``--scenario-packages`` and ``--results-dir`` are added
    by the caller)."""
    parser.add_argument("--package", required=True, help="the distribution whose releases are bisected, e.g. torch")
    parser.add_argument("--good", required=True, metavar="X", help="the older release: the reference behaviour")
    parser.add_argument("--bad", required=True, metavar="Y", help="a newer release whose behaviour differs from X's")
    parser.add_argument(
        "--scenarios", "-k", action="append", default=[], help="the scenarios to judge (globs, repeatable)"
    )
    parser.add_argument(
        "--record", action="append", default=[], help="judge only these records (globs over name or id::name)"
    )
    parser.add_argument("--env", default=None, metavar="TEMPLATE", help="default: the environment pinning P at X")
    parser.add_argument("--pre", action="store_true", help="also bisect pre-releases and dev releases")
    parser.add_argument("--relay", action="store_true", help="save the relay's artifacts at X, load them at each step")
    parser.add_argument("--keep", action="store_true", help="keep the step environments' venvs afterwards")
    parser.add_argument("--run-id", default=None, help="default: <time>-<package>, under <results-dir>/bisect/")
    parser.add_argument(
        "--no-cache", action="store_true", help="measure every cell again instead of reusing unchanged ones"
    )
