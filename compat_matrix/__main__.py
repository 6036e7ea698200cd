"""``compat-matrix`` (the console script) and ``python -m compat_matrix``: the harness's command line."""

from __future__ import annotations

import sys

import compat_matrix  # noqa: F401  (puts the harness on sys.path)


def main() -> int:
    from harness.cli import main as cli_main

    return cli_main(prog="compat-matrix")


if __name__ == "__main__":
    sys.exit(main())
