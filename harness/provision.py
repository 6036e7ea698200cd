"""Provision one environment with uv: an isolated venv holding exactly the pins, and a lock of what resolved.

Steps: create the venv (unless nox already did), resolve ``latest`` to the newest release on the index, compile the
pins (plus numpy, the worker's one requirement) into a full lock with ``uv pip compile``, append the packages that
must be installed without their dependencies, then ``uv pip sync`` the venv to exactly that lock. A stamp in the venv
remembers the inputs: when they have not changed and the venv still matches, nothing is installed again.

uv does not read pip's configuration, so the usual ``PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` / ``PIP_FIND_LINKS``
variables are passed on explicitly (unless the matching ``UV_*`` variable is set, which uv reads by itself), after
the index options the matrix gives for the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from harness.errors import ProvisionError
from harness.matrix import Environment
from harness.supervisor import WorkerSpec

__all__ = ["Provisioned", "index_args", "provision", "uv_binary"]

STAMP_NAME = "compat-matrix-stamp.json"
PROVISION_FORMAT = 1  # bump to force every environment to be re-synced
WORKER_REQUIREMENT = "numpy"
_MESSAGE_LIMIT = 3000

Runner = Callable[..., subprocess.CompletedProcess[str]]


# Variables that change framework behaviour: never inherited from the caller's shell, only taken from matrix.yaml.
_FRAMEWORK_VARS = ("TF_USE_LEGACY_KERAS", "KERAS_BACKEND", "KERAS_HOME", "TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH")


@dataclass
class Provisioned:
    """A ready environment, what is in it, and how a worker starts inside it (its process environment, its spec)."""

    python: Path
    packages: dict[str, str]
    lock_text: str
    lock_sha256: str
    latest: dict[str, str] = field(default_factory=dict)
    install_steps: list[str] = field(default_factory=list)
    installer: str = ""
    reused: bool = False
    seconds: float = 0.0

    def worker_environ(
        self, env: Environment, pythonpath: list[Path], base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The caller's environment minus framework switches, plus the matrix's own variables and the venv."""
        environ = dict(os.environ if base is None else base)
        for var in _FRAMEWORK_VARS:
            environ.pop(var, None)
        environ.update(env.env)
        venv_dir = self.python.parent.parent
        environ.update(
            {
                "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
                "PYTHONNOUSERSITE": "1",
                "PYTHONHASHSEED": "0",
                "PYTHONFAULTHANDLER": "1",
                "CUDA_VISIBLE_DEVICES": "",
                "VIRTUAL_ENV": str(venv_dir),
                "PATH": f"{venv_dir / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
            }
        )
        return environ

    def worker_spec(
        self,
        env: Environment,
        scratch: Path,
        preload: list[str],
        *,
        pythonpath: list[Path],
        context: Mapping[str, str],
        seed: int,
        startup_timeout: float,
        scenario_packages: tuple[str, ...] = ("scenarios",),
        scenario_paths: tuple[Path, ...] = (),
        models: tuple[dict[str, Any], ...] = (),
        base: Mapping[str, str] | None = None,
    ) -> WorkerSpec:
        """How to start a worker in this environment; ``context`` reaches scenarios through the plan, not variables."""
        return WorkerSpec(
            python=str(self.python),
            env=self.worker_environ(env, pythonpath, base),
            scratch=scratch,
            log_path=scratch / "worker.log",
            scenario_packages=scenario_packages,
            scenario_paths=tuple(str(p) for p in scenario_paths),
            models=models,
            preload=tuple(preload),
            seed=seed,
            startup_timeout=startup_timeout,
            context=dict(context),
        )


def uv_binary() -> str:
    """The uv executable shipped with the ``uv`` package of the tool's own environment."""
    from uv import find_uv_bin

    return find_uv_bin()


def redact(url: str) -> str:
    """Hide credentials in an index URL before it is written into results."""
    return re.sub(r"//[^/@\s]+@", "//***@", url)


def index_args(env: Environment, environ: Mapping[str, str]) -> list[str]:
    """uv index options: the matrix's own first, then pip's usual variables that uv would otherwise ignore."""
    args: list[str] = []
    if env.install.index_url:
        args += ["--index-url", env.install.index_url]
    elif environ.get("PIP_INDEX_URL") and not (environ.get("UV_INDEX_URL") or environ.get("UV_DEFAULT_INDEX")):
        args += ["--index-url", environ["PIP_INDEX_URL"]]
    for url in env.install.extra_index_urls:
        args += ["--extra-index-url", url]
    if not (environ.get("UV_EXTRA_INDEX_URL") or environ.get("UV_INDEX")):
        for url in environ.get("PIP_EXTRA_INDEX_URL", "").split():
            args += ["--extra-index-url", url]
    for link in env.install.find_links:
        args += ["--find-links", link]
    if not environ.get("UV_FIND_LINKS"):
        for link in environ.get("PIP_FIND_LINKS", "").split():
            args += ["--find-links", link]
    return args


class _Uv:
    """Runs uv with the environment's index options and turns a refusal into a ``ProvisionError``."""

    def __init__(self, env: Environment, environ: Mapping[str, str], run: Runner) -> None:
        self.binary = uv_binary()
        self.index = index_args(env, environ)
        # no interpreter downloads unless the caller asks: where none is installed, the env-error says so at once
        self.environ = {"UV_PYTHON_DOWNLOADS": "never", **environ, "UV_NO_PROGRESS": "1"}
        self.run_process = run

    def __call__(self, args: list[str], what: str, stdin: str | None = None, index: bool = True) -> str:
        command = [self.binary, *args, *(self.index if index else [])]
        proc = self.run_process(command, input=stdin, capture_output=True, text=True, env=self.environ, check=False)
        if proc.returncode != 0:
            output = redact((proc.stderr or "") + (proc.stdout or ""))  # uv echoes index URLs, credentials included
            message = output.strip()[-_MESSAGE_LIMIT:] or f"uv exited with code {proc.returncode}"
            raise ProvisionError(f"{what} failed: {message}", installer_output=output)
        return proc.stdout

    def version(self) -> str:
        return self(["--version"], "uv --version", index=False).strip()


def _pyenv_pythons(version: str) -> list[Path]:
    """Interpreters for ``version`` (e.g. "3.9") in pyenv's versions folder, newest first; none without pyenv."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    proc = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
    versions = Path(proc.stdout.strip()) / "versions"
    if proc.returncode != 0 or not versions.is_dir():
        return []
    matching = [d for d in versions.iterdir() if d.name == version or d.name.startswith(f"{version}.")]

    def key(folder: Path) -> Version:
        try:
            return Version(folder.name)
        except InvalidVersion:
            return Version("0")

    return [d / "bin" / "python" for d in sorted(matching, key=key, reverse=True) if (d / "bin" / "python").exists()]


def find_interpreter(version: str, uv: _Uv) -> str:
    """The interpreter a venv for Python ``version`` is made from: uv's discovery first, then pyenv's folder.

    uv does not see pyenv versions that are not the global one (their shims refuse to run), so both are asked;
    neither downloads anything. None found is a ``ProvisionError`` naming where it looked.
    """
    try:
        return uv(["python", "find", version], f"finding Python {version}", index=False).strip()
    except ProvisionError as exc:
        found = _pyenv_pythons(version)
        if found:
            return str(found[0])
        said = str(exc).splitlines()[-1]
        raise ProvisionError(
            f"no Python {version} interpreter on this machine (uv python find and pyenv's versions folder): {said}",
            installer_output=exc.installer_output,
        ) from None


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def _parse_pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.strip())] = version.strip()
    return pins


def _resolve_latest(env: Environment, uv: _Uv, python: Path) -> dict[str, str]:
    latest = {}
    for name, version in env.packages.items():
        if version != "latest":
            continue
        out = uv(
            ["pip", "compile", "-", "--no-deps", "--no-header", "--no-annotate", "--python", str(python)],
            f"resolving the newest release of {name}",
            stdin=f"{name}\n",
        )
        found = _parse_pins(out).get(name)
        if not found:
            raise ProvisionError(f"could not find any release of {name} on the index")
        latest[name] = found
    return latest


def _matches(installed: str, pin: str) -> bool:
    try:
        have, want = Version(installed), Version(pin)
    except InvalidVersion:
        return installed == pin
    return have == want or (not want.local and have.public == want.public)


def _verify(env: Environment, pins: Mapping[str, str], installed: Mapping[str, str]) -> None:
    wrong = [
        f"{name}: pinned {pin}, installed {installed.get(name, 'nothing')}"
        for name, pin in pins.items()
        if not _matches(installed.get(name, ""), pin)
    ]
    if wrong:
        raise ProvisionError(f"environment {env.name} does not hold its pins: " + "; ".join(wrong))


def _inputs_digest(env: Environment, pins: Mapping[str, str], uv: _Uv) -> str:
    inputs = {
        "format": PROVISION_FORMAT,
        "python": env.python,
        "pins": dict(sorted(pins.items())),
        "no_deps": sorted(env.no_deps),
        "index": uv.index,
        "local": [list(env.local), env.local_digest],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _read_stamp(venv_dir: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((venv_dir / STAMP_NAME).read_text())
        return stamp if isinstance(stamp, dict) else None
    except (OSError, ValueError):
        return None


def _freeze(uv: _Uv, python: Path) -> dict[str, str]:
    return _parse_pins(uv(["pip", "freeze", "--python", str(python)], "uv pip freeze", index=False))


def _compile_lock(env: Environment, pins: Mapping[str, str], uv: _Uv, python: Path, steps: list[str]) -> str:
    """The full lock: the pins (plus numpy for the worker) resolved together, then the no-deps companions."""
    requirements = [f"{n}=={v}" for n, v in pins.items() if n not in env.no_deps]
    if WORKER_REQUIREMENT not in pins:
        requirements.append(WORKER_REQUIREMENT)
        steps.append("numpy added for the worker (resolved to fit the pins)")
    lock = uv(
        ["pip", "compile", "-", "--no-header", "--no-annotate", "--python", str(python)],
        f"resolving {', '.join(requirements)}",
        stdin="\n".join(requirements) + "\n",
    )
    steps.append(f"uv pip compile {' '.join(requirements)}")
    for name in env.no_deps:
        lock += f"{name}=={pins[name]}\n"
        steps.append(f"{name}=={pins[name]} installed without its dependencies (no_deps)")
    return lock


def _sync(env: Environment, venv_dir: Path, lock: str, uv: _Uv, python: Path, steps: list[str]) -> None:
    lock_path = venv_dir / "compat-matrix-lock.txt"
    lock_path.write_text(lock)
    uv(["pip", "sync", str(lock_path), "--python", str(python)], f"installing {env.name}")
    steps.append(f"uv pip sync ({len(_parse_pins(lock))} packages)")


def _install_local(env: Environment, uv: _Uv, python: Path, steps: list[str]) -> str:
    """The user's own code after the pins, without dependencies (so no pin moves); its lines of the lock."""
    if not env.local:
        return ""
    uv(["pip", "install", "--no-deps", "--reinstall", "--python", str(python), *env.local], "installing local code")
    steps.append(f"uv pip install --no-deps {' '.join(env.local)}")
    return "".join(f"# local: {path}\n" for path in env.local) + f"# local sha256: {env.local_digest}\n"


def provision(
    env: Environment,
    venv_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    run: Runner = subprocess.run,
) -> Provisioned:
    """Make ``venv_dir`` hold exactly ``env``'s pins; raise ``ProvisionError`` with uv's words if it cannot.

    A venv whose inputs (pins after resolving ``latest``, Python, index options) and installed packages match its
    stamp is reused as it is; anything else is compiled into a lock and synced to exactly that lock.
    """
    started = time.perf_counter()
    uv = _Uv(env, os.environ if environ is None else environ, run)
    installer = uv.version()
    python = _venv_python(venv_dir)
    steps: list[str] = []
    if not python.exists():
        interpreter = find_interpreter(env.python, uv)
        uv(["venv", "--python", interpreter, str(venv_dir)], f"creating a Python {env.python} venv", index=False)
        steps.append(f"uv venv --python {interpreter}")
    latest = _resolve_latest(env, uv, python)
    pins = {name: latest.get(name, version) for name, version in env.packages.items()}
    steps += [f"latest {name} resolved to {version}" for name, version in latest.items()]
    digest = _inputs_digest(env, pins, uv)
    stamp = _read_stamp(venv_dir)
    installed = _freeze(uv, python) if stamp and stamp.get("inputs") == digest else None
    reused = stamp is not None and installed is not None and installed == stamp.get("packages")
    if stamp is not None and installed is not None and reused:
        lock = str(stamp["lock"])
        steps.append("reused: inputs and installed packages unchanged since the last sync")
    else:
        lock = _compile_lock(env, pins, uv, python, steps)
        _sync(env, venv_dir, lock, uv, python, steps)
        lock += _install_local(env, uv, python, steps)
        installed = _freeze(uv, python)
        _verify(env, pins, installed)
        (venv_dir / STAMP_NAME).write_text(json.dumps({"inputs": digest, "lock": lock, "packages": installed}))
    return Provisioned(
        python=python,
        packages=installed,
        lock_text=lock,
        lock_sha256=hashlib.sha256(lock.encode()).hexdigest(),
        latest=latest,
        install_steps=steps,
        installer=installer,
        reused=reused,
        seconds=time.perf_counter() - started,
    )
