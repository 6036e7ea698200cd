"""Decide, from an environment's resolved versions, whether a scenario's ``requires`` are met.

Requirements name frameworks the way a scenario author thinks of them, not distributions: ``tensorflow`` is met by
``tensorflow-cpu`` too, and ``keras`` is the Keras a user of the environment gets (``tf-keras`` under
``TF_USE_LEGACY_KERAS=1``, else ``keras``). Evaluated in the orchestrator, so the worker needs no ``packaging``.
"""

from __future__ import annotations

from collections.abc import Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["capabilities", "preload_modules", "unmet"]

_TENSORFLOW_DISTS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos")
_MODULES = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "tf-keras": "tf_keras"}


def legacy_keras(env: Mapping[str, str]) -> bool:
    return env.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")


def capabilities(packages: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """Framework name -> version, as scenarios' ``requires`` see them."""
    caps: dict[str, str] = {canonicalize_name(name): version for name, version in packages.items()}
    for dist in _TENSORFLOW_DISTS:
        if dist in caps:
            caps["tensorflow"] = caps[dist]
            break
    if legacy_keras(env) and "tf-keras" in caps:
        caps["keras"] = caps["tf-keras"]
    return caps


def unmet(requirement: str, caps: Mapping[str, str]) -> str | None:
    """Why ``requirement`` is not met in an environment with ``caps``, or None when it is.

    ``"keras|torch"`` is met when either alternative is: for scenarios that probe the same thing in whichever
    framework the environment has, under one id, so their records compare across frameworks.
    """
    if "|" in requirement:
        reasons = [unmet(alternative.strip(), caps) for alternative in requirement.split("|")]
        return None if None in reasons else "; ".join(r for r in reasons if r)
    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        return f"invalid requirement {requirement!r}: {exc}"
    name = canonicalize_name(req.name)
    have = caps.get(name)
    if have is None:
        return f"requires {requirement}; the environment has no {name}"
    if req.specifier:
        try:
            version = Version(have)
        except InvalidVersion:
            return f"requires {requirement}; {name} {have} is not a comparable version"
        if not req.specifier.contains(Version(version.public), prereleases=True):
            return f"requires {requirement}; the environment has {name} {have}"
    return None


def preload_modules(
    requirements: list[str], env: Mapping[str, str], caps: Mapping[str, str] | None = None
) -> list[str]:
    """Modules the worker imports once up front, torch before TensorFlow (the other order can segfault).

    With ``caps``, only frameworks the environment has are listed (an alternative may name an absent one).
    """
    alternatives = [alt.strip() for r in requirements for alt in r.split("|")]
    names: set[str] = {canonicalize_name(Requirement(r).name) for r in alternatives}
    if "keras" in names and legacy_keras(env):
        names = (names - {"keras"}) | {"tf-keras"}
    order = ["torch", "tensorflow", "tf-keras", "keras"]
    return [_MODULES[n] for n in order if n in names and (caps is None or n in caps)]
