"""The commands a verdict tells its reader to run again: one home for their form.

In the project's checkout a reason's reproduce line is a nox call (``COMPAT_RUN_ID=r ./cm -s A B -- -k X``); where
compat-matrix is installed as a tool there is no ``./cm`` and the same steps are ``compat-matrix run --env A
--run-id r -k X``. Every part is quoted: environment names, ids and run ids come from result files.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from harness import workspace

__all__ = ["relay_rerun", "rerun", "run_environment"]


def _selection(scenarios: Iterable[str]) -> str:
    return " ".join(f"-k {shlex.quote(s)}" for s in sorted(set(scenarios)))


def rerun(run_id: str, environments: list[str], scenarios: Iterable[str], checkout: bool | None = None) -> str:
    """Re-run exactly these cells in these environments, into the same run."""
    selection = _selection(scenarios)
    if workspace.is_checkout() if checkout is None else checkout:
        sessions = " ".join(shlex.quote(e) for e in environments)
        return f"COMPAT_RUN_ID={shlex.quote(run_id)} ./cm -s {sessions} -- {selection}"
    run = shlex.quote(run_id)
    return " && ".join(f"compat-matrix run --env {shlex.quote(e)} --run-id {run} {selection}" for e in environments)


def run_environment(run_id: str | None, environment: str, checkout: bool | None = None) -> str:
    """Provision and run one environment again (into ``run_id``, or a new run)."""
    if workspace.is_checkout() if checkout is None else checkout:
        prefix = f"COMPAT_RUN_ID={shlex.quote(run_id)} " if run_id else ""
        return f"{prefix}./cm -s {shlex.quote(environment)}"
    into = f" --run-id {shlex.quote(run_id)}" if run_id else ""
    return f"compat-matrix run --env {shlex.quote(environment)}{into}"


def relay_rerun(run_id: str, producer: str, consumer: str, checkout: bool | None = None) -> str:
    """Save the producer's artifacts again, then load them in the producer (the reference) and the consumer."""
    run, base, cand = shlex.quote(run_id), shlex.quote(producer), shlex.quote(consumer)
    if workspace.is_checkout() if checkout is None else checkout:
        prefix = f"COMPAT_RUN_ID={run}"
        consumers = f"relay-{base} relay-{cand}"
        return f"{prefix} ./cm -s {base} -- -k relay.produce && {prefix} ./cm -s {consumers} --no-dependencies"
    return (
        f"compat-matrix run --env {base} --run-id {run} -k relay.produce && "
        f"compat-matrix relay --env {base} --run-id {run} && compat-matrix relay --env {cand} --run-id {run}"
    )
