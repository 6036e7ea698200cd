"""The releases of a package on the index, as uv sees it, and the candidates a bisection tries between two of them.

uv has no command that lists a package's releases, so the index is read directly, from the same places the
provisioning hands uv (``harness.provision.index_args``: the matrix's ``install:`` options, then pip's variables,
then uv's own ``UV_*`` variables): each index through its simple API in JSON (PEP 691), each ``--find-links``
folder by its file names. A release counts when some non-yanked file of it is there; whether that file fits this
machine's Python is left to the resolver (a release it refuses is skipped by the bisection, like ``git bisect
skip``). Local versions (``2.13.0+cpu``) count as their public version, which is what a pin ``==2.13.0`` matches.

Index pages are untrusted input: a page that is not the JSON shape PEP 691 describes, a file name that is not a
distribution of the package, or an answer larger than ``MAX_PAGE_BYTES`` is refused or ignored, never followed.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from harness.errors import HarnessError
from harness.matrix import Environment
from harness.provision import index_args, redact

__all__ = ["DEFAULT_INDEX", "MAX_PAGE_BYTES", "Fetch", "between", "index_sources", "list_releases", "parse_release"]

DEFAULT_INDEX = "https://pypi.org/simple"
#: A project page of PyPI's largest projects is a few MB (torch: about 2 MB); anything far beyond is not an index.
MAX_PAGE_BYTES = 64 * 1024 * 1024
_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_TIMEOUT_S = 60.0
_MAX_NAME = 300

#: Reads one URL: (url, accept header) -> body text. Injected so the listing is tested offline.
Fetch = Callable[[str, str], str]


def _fetch(url: str, accept: str) -> str:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        body = bytes(response.read(MAX_PAGE_BYTES + 1))
    if len(body) > MAX_PAGE_BYTES:
        raise ValueError(f"the answer is larger than {MAX_PAGE_BYTES} bytes")
    return body.decode("utf-8")


def _split(value: str) -> list[str]:
    """uv's list variables: separated by spaces (or commas); ``UV_INDEX`` entries may be ``name=url``."""
    parts = [part for part in re.split(r"[\s,]+", value) if part]
    return [part.split("=", 1)[1] if re.match(r"^[\w.-]+=", part) else part for part in parts]


def index_sources(env: Environment, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(index URLs, find-links locations) uv uses for ``env``: the provisioning's own options, then uv's variables."""
    args = index_args(env, environ)
    options: dict[str, list[str]] = {"--index-url": [], "--extra-index-url": [], "--find-links": []}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        options[flag].append(value)
    default = options["--index-url"] or _split(environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL") or "")
    extra = options["--extra-index-url"] + _split(environ.get("UV_INDEX", ""))
    extra += _split(environ.get("UV_EXTRA_INDEX_URL", ""))
    links = options["--find-links"] + _split(environ.get("UV_FIND_LINKS", ""))
    return [*extra, *(default or [DEFAULT_INDEX])], links


def _version_of(filename: str, package: str) -> Version | None:
    """The public version of a distribution file of ``package``, or None (another package, not a distribution)."""
    if len(filename) > _MAX_NAME or "/" in filename:
        return None
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return Version(version.public) if name == package else None


def _files(text: str) -> list[Any]:
    """The ``files`` list of a PEP 691 project page; anything else is a refusal naming the page."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ValueError("not a PEP 691 project page (no 'files' list)")
    return list(data["files"])


def _from_index(url: str, package: str, fetch: Fetch) -> set[Version]:
    """The releases of ``package`` with at least one file that is not yanked, from one simple-API index."""
    page = f"{url.rstrip('/')}/{package}/"
    try:
        files = _files(fetch(page, _SIMPLE_JSON))
    except Exception as exc:  # an index that does not answer or has no such project: named, then the others
        raise HarnessError(f"--package {package}: cannot list its releases on {redact(page)}: {exc}") from None
    found = set()
    for item in files:
        if isinstance(item, dict) and isinstance(item.get("filename"), str) and not item.get("yanked"):
            version = _version_of(item["filename"], package)
            if version is not None:
                found.add(version)
    return found


def _from_links(location: str, package: str, fetch: Fetch) -> set[Version]:
    """The releases of ``package`` in one ``--find-links`` location: a folder's file names, or a page's links."""
    folder = Path(location.removeprefix("file://"))
    names: Iterable[str]
    if folder.is_dir():
        names = (p.name for p in folder.iterdir())
    elif location.startswith(("http://", "https://")):
        try:
            hrefs = re.findall(r'href="([^"]+)"', fetch(location, "text/html"))
        except Exception:  # a find-links page that does not answer: uv finds nothing there either
            return set()
        names = [href.split("#")[0].rsplit("/", 1)[-1] for href in hrefs]
    else:
        return set()
    return {v for v in (_version_of(name, package) for name in names) if v is not None}


def list_releases(
    package: str, env: Environment, environ: Mapping[str, str], fetch: Fetch | None = None
) -> list[Version]:
    """Every release of ``package`` uv could install for ``env``, oldest first (public versions, deduplicated)."""
    fetch = fetch or _fetch
    name = canonicalize_name(package)
    indexes, links = index_sources(env, environ)
    found: set[Version] = set()
    problems = []
    for url in indexes:
        try:
            found |= _from_index(url, name, fetch)
        except HarnessError as exc:
            problems.append(str(exc))
    for location in links:
        found |= _from_links(location, name, fetch)
    if not found:
        where = ", ".join(redact(u) for u in indexes)
        raise HarnessError(problems[0] if problems else f"--package {package}: no release of it on {where}")
    return sorted(found)


def parse_release(option: str, value: str) -> Version:
    """``--good`` / ``--bad`` as a version, or a usage error naming the option."""
    try:
        return Version(value)
    except InvalidVersion:
        raise HarnessError(f"{option} {value!r}: not a version (e.g. 2.5.1)") from None


def between(releases: Iterable[Version], good: Version, bad: Version, pre: bool) -> list[Version]:
    """The releases strictly between ``good`` and ``bad`` in version order; pre- and dev releases only with ``pre``."""
    low, high = min(good, bad), max(good, bad)
    return sorted(v for v in set(releases) if low < v < high and (pre or not v.is_prerelease))
