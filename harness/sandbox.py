"""The sandbox that loads formats able to run code from the file: bubblewrap, or nothing (fail closed).

A full pickle, a SavedModel's graph, a Keras config that names functions, a TorchScript program: loading these
may execute what their author put in them, and the relay loads files another environment (or a merged shard from
another machine) wrote. When the matrix opts in (``unsafe_formats: true``) the relay consumer's worker runs inside
``bwrap``: every namespace unshared (no network, its own PIDs), the whole file system read-only but the worker's
scratch folder, a fresh ``/dev`` and ``/proc``, killed with its parent, under resource limits. Where ``bwrap`` is
missing or cannot create namespaces, ``find_sandbox`` says why, and the unsafe formats are not loaded at all.
``unshare -rn`` alone was tried as a fallback: it takes the network away but cannot make ``/`` read-only for an
unprivileged user (the remount is refused), so it is not a sandbox here.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["INSTALL_HINT", "Sandbox", "find_sandbox"]

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
#: The core of a sandboxed command, also the probe: nothing writable, nothing shared, gone with its parent.
_ISOLATION = (
    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
    "--unshare-all", "--die-with-parent", "--new-session",
)  # fmt: skip
#: Bytes a sandboxed process may write into one file, and file descriptors it may hold.
MAX_FILE_BYTES = 4 << 30
MAX_OPEN_FILES = 4096


@dataclass(frozen=True)
class Sandbox:
    """A working ``bwrap``: wraps a command so that it can write only into the folders it is given."""

    executable: str

    def wrap(self, argv: Sequence[str], writable: Sequence[Path]) -> list[str]:
        """``argv`` inside the sandbox; each folder of ``writable`` (created first) is the only place it can write."""
        binds: list[str] = []
        for folder in writable:
            folder.mkdir(parents=True, exist_ok=True)
            binds += ["--bind", str(folder.resolve()), str(folder.resolve())]
        return [self.executable, *_ISOLATION, *binds, "--", *argv]

    @staticmethod
    def limit_resources() -> None:
        """Run in the child before ``exec``: no core dumps, bounded file sizes and descriptors.

        Memory is bounded by the supervisor's timeouts and the kernel's OOM killer (a crash cell), not by
        ``RLIMIT_AS``: the frameworks reserve far more address space than they use, and a cap breaks their import.
        """
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        cap = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(MAX_OPEN_FILES, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, cap), cap))


@functools.cache
def find_sandbox(executable: str | None = None) -> Sandbox | str:
    """A sandbox that was seen working on this machine, or one line saying why there is none."""
    path = executable or shutil.which("bwrap")
    if path is None:
        return f"no sandbox: bwrap is not on PATH; {INSTALL_HINT}"
    try:
        probe = subprocess.run(
            [path, *_ISOLATION, "--", "true"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no sandbox: {path} could not be started ({type(exc).__name__}: {exc})"
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        return f"no sandbox: {path} cannot create its namespaces here ({said}); {INSTALL_HINT} or allow user namespaces"
    return Sandbox(executable=os.fspath(path))
