"""Reproduce commands: in the checkout they are ``./cm`` (nox) calls; installed, every ``compat-matrix`` step they
list must be a command line the installed tool's own parser accepts, with the hostile-looking names kept whole."""

from __future__ import annotations

import shlex

import pytest

from harness import commands
from harness.cli import build_parser

RUN, A, B = "20261202T000000Z", "tf2.16-keras3", "tf2.21-keras3"


def _steps(line: str) -> list[list[str]]:
    return [shlex.split(part) for part in line.split(" && ")]


@pytest.mark.parametrize(
    "line",
    [
        commands.rerun(RUN, [A, B], ["user.model_x", "layer_init.keras_dense"], checkout=False),
        commands.run_environment(RUN, A, checkout=False),
        commands.run_environment(None, A, checkout=False),
        commands.relay_rerun(RUN, A, B, checkout=False),
    ],
)
def test_installed_steps_parse_as_the_tools_own_command_lines(line):
    for argv in _steps(line):
        assert argv[0] == "compat-matrix"
        args = build_parser("compat-matrix").parse_args(argv[1:])
        assert args.env in (A, B)
        assert args.run_id in (RUN, None)


def test_installed_rerun_selects_the_same_cells_in_each_environment():
    steps = _steps(commands.rerun(RUN, [A, B], ["b.y", "a.x", "a.x"], checkout=False))
    parsed = [build_parser("compat-matrix").parse_args(argv[1:]) for argv in steps]
    assert [p.env for p in parsed] == [A, B] and all(p.scenarios == ["a.x", "b.y"] for p in parsed)


def test_the_checkout_form_is_one_nox_call_and_quotes_what_came_from_files():
    line = commands.rerun("r 1", ["a;b", B], ["x.$(id)"], checkout=True)
    assert shlex.split(line) == ["COMPAT_RUN_ID=r 1", "./cm", "-s", "a;b", B, "--", "-k", "x.$(id)"]
