"""Nox sessions for compat-matrix: one per environment of the matrix, plus report, tests and lint.

``nox`` runs every environment of the default matrix, then the report. ``nox -s <env>`` runs one environment;
``nox -l --json`` lists the sessions (CI builds its job matrix from the ``env``-tagged ones). The matrix file is
``matrix.yaml`` unless ``COMPAT_MATRIX`` names another; every session of one nox invocation writes into the same
run folder ``results/<COMPAT_RUN_ID>/``. A broken matrix stops nox here, before anything is provisioned.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import nox
import nox.command

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from harness import matrix as matrix_mod  # noqa: E402
from harness.errors import MatrixError  # noqa: E402
from harness.results import new_run_id  # noqa: E402
from harness.worker import scenario as scenario_mod  # noqa: E402

# Environments are independent: run as many at once as there are cores (report, tests and lint run alone).
nox.options.parallel = os.cpu_count() or 1

MATRIX_FILE = os.environ.get("COMPAT_MATRIX", str(ROOT / "matrix.yaml"))
# Set once per nox invocation and inherited by the sessions nox runs in parallel subprocesses. Whether the user
# named the run decides what `report` and `gonogo` read: that run (refused if it does not exist), or the latest.
RUN_NAMED = "COMPAT_RUN_ID" in os.environ
RUN_ID = os.environ.setdefault("COMPAT_RUN_ID", new_run_id())


def _run_args() -> list[str]:
    """``--run`` for the commands that read a run: the named one, this invocation's if it wrote any, else the latest."""
    results = Path(os.environ.get("COMPAT_RESULTS_DIR", ROOT / "results"))
    return ["--run", RUN_ID if RUN_NAMED or (results / RUN_ID).is_dir() else ""]


SCENARIO_PACKAGES = tuple(os.environ.get("COMPAT_SCENARIO_PACKAGES", "scenarios").split(","))

try:
    MATRIX = matrix_mod.load(MATRIX_FILE, scenario_mod.discover(SCENARIO_PACKAGES))
except MatrixError as error:
    print(error, file=sys.stderr)
    sys.exit(2)


def _harness(session: nox.Session, *args: str) -> None:
    """``python -m harness ARGS``, called in this nox process: the tool's interpreter with the harness imported.

    A separate interpreter per session would pay Python's start and the harness's imports once more (about a
    second), which is most of what an unchanged re-run costs; the exit code still decides the session.
    """
    from harness.cli import main

    session.log("harness " + " ".join(args))
    code = main(list(args))
    if code:  # a failed session, as when a command it runs fails (session.error would call it "aborted")
        session.log(f"harness {args[0]} exited with code {code}")
        raise nox.command.CommandFailed(f"harness {args[0]} exited with code {code}", return_code=code)


def _harness_session(command: str, name: str, venv_slug: str, doc: str) -> Callable[[nox.Session], None]:
    """A session that runs ``harness <command>`` for one environment, in that environment's venv."""

    def run(session: nox.Session) -> None:
        # The environment's venv, wherever --envdir puts it: the harness creates and syncs it (so an interpreter
        # that is missing, like any provisioning failure, becomes an env-error results file, not a nox error).
        venv = str(session.env_dir.parent / venv_slug)
        _harness(
            session, command, "--env", name, "--matrix", MATRIX_FILE, "--run-id", RUN_ID, "--venv-dir", venv,
            *session.posargs,
        )  # fmt: skip

    run.__doc__ = doc
    return run


for _env in MATRIX.environments.values():
    nox.session(
        name=_env.name,
        venv_backend="none",
        tags=["env", *_env.frameworks, *_env.tags],
        allow_parallel=True,
    )(_harness_session("run", _env.name, _env.venv_slug, f"Provision {_env.name} and run the selected scenarios."))

# Consumers run after every producer (requires=); `nox -s relay-<env> --no-dependencies` consumes whatever
# artifacts the run folder already holds.
for _env in MATRIX.environments.values():
    nox.session(
        name=f"relay-{_env.name}",
        venv_backend="none",
        tags=["relay", *_env.frameworks],
        allow_parallel=True,
        requires=list(MATRIX.environments),
    )(
        _harness_session(
            "relay", _env.name, _env.venv_slug, f"Relay consumer: {_env.name} loads every producer's artifacts."
        )
    )


@nox.session(venv_backend="none", default=True, allow_parallel=False)
def report(session: nox.Session) -> None:
    """Reports of the run and a verdict per upgrade path; fails (exit 1) when a path is NO-GO or INCOMPLETE."""
    _harness(session, "report", "--matrix", MATRIX_FILE, *_run_args(), *session.posargs)


@nox.session(venv_backend="none", default=False)
def gonogo(session: nox.Session) -> None:
    """Verdicts of every upgrade path (or -- --baseline A --candidate B): the session fails on NO-GO or INCOMPLETE."""
    _harness(session, "gonogo", "--matrix", MATRIX_FILE, *_run_args(), *session.posargs)


@nox.session(venv_backend="none", default=False)
def scan(session: nox.Session) -> None:
    """Which lines of your code break in the candidate: ``./cm -s scan -- PATH... --baseline A --candidate B``."""
    _harness(session, "scan", "--matrix", MATRIX_FILE, *session.posargs)


@nox.session(venv_backend="none", default=False)
def bisect(session: nox.Session) -> None:
    """The first bad release: ``./cm -s bisect -- --package P --good X --bad Y -k SCENARIO``."""
    _harness(session, "bisect", "--matrix", MATRIX_FILE, *session.posargs)


@nox.session(venv_backend="none", default=False)
def tests(session: nox.Session) -> None:
    """The test suite, integration tests with real environments included (pass -m 'not integration' to skip)."""
    session.run("bash", str(ROOT / "scripts" / "test-prerequisites.sh"), external=True)
    session.run(sys.executable, "-m", "pytest", *session.posargs, external=True)


@nox.session(venv_backend="none", default=False)
def lint(session: nox.Session) -> None:
    """ruff (lint and formatting) and mypy --strict (the files and settings in pyproject.toml)."""
    session.run(sys.executable, "-m", "ruff", "check", ".", external=True)
    session.run(sys.executable, "-m", "ruff", "format", "--check", ".", external=True)
    session.run(sys.executable, "-m", "mypy", external=True)
