"""The scenario API user scenarios import as ``compat_matrix``: the built-in scenarios' own decorator and Context.

One module re-exports it so a user's scenario file reads the same in the orchestrator (where ``compat_matrix`` is
the installed package) and in a worker (where the worker registers this module under that name before importing
any scenario): standard library only, like the rest of the worker.
"""

from __future__ import annotations

from harness.worker.scenario import Context, fail, scenario, skip

__all__ = ["Context", "fail", "scenario", "skip"]
