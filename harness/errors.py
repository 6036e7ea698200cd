"""The one family of errors the orchestrator raises at its boundaries.

Every error a user can cause (a broken matrix, a missing results folder, an unreadable results file) is a
``HarnessError`` whose ``str()`` is the message the user sees; the command line maps the family to exit code 2.
"""

from __future__ import annotations

__all__ = ["HarnessError", "MatrixError", "ProvisionError", "ResultsError", "Terminated"]


class HarnessError(Exception):
    """Base of every user-facing error; ``str(err)`` is the whole message."""

    exit_code = 2


class MatrixError(HarnessError):
    """matrix.yaml is invalid. Holds one line per problem, each ``file:line: key: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ProvisionError(HarnessError):
    """The installer refused an environment; ``installer_output`` keeps its own words."""

    def __init__(self, message: str, installer_output: str = "") -> None:
        self.installer_output = installer_output
        super().__init__(message)


class ResultsError(HarnessError):
    """A results file is missing, invalid or of a schema version this harness cannot read."""


class Terminated(Exception):
    """SIGTERM arrived (a CI job cancelled): handled like Ctrl-C, so a run keeps what it finished."""
