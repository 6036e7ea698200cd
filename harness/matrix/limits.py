"""The bounds a matrix file must stay within, in one place: each is refused with a line naming it and the count.

A matrix file is untrusted input (a pull request may change it), and ``check`` must answer every file quickly with
one line per problem. Each bound is far above any real matrix (the default one has 9 environments, 200 nodes and
a depth of 4) and low enough that the slowest file allowed is read, composed and checked in well under a second.
"""

from __future__ import annotations

__all__ = [
    "MAX_DEPTH",
    "MAX_ENVIRONMENTS",
    "MAX_FILE_BYTES",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_NODES",
    "MAX_PACKAGES",
    "MAX_SCALAR_CHARS",
    "MAX_TIMEOUT_SECONDS",
    "MAX_VARIABLE_CHARS",
    "MAX_VERSION_CHARS",
    "about",
]

#: Bytes of one matrix (or waivers) file: 1 MiB, checked before the file is decoded or parsed.
MAX_FILE_BYTES = 1 << 20
#: Nesting of lists and mappings, aliases included (the deepest real key is about 6 levels down).
MAX_DEPTH = 50
#: YAML nodes of a document with every alias expanded where it is used: an alias bomb stops here, uncomposed.
MAX_NODES = 100_000
#: Items of one list or keys of one mapping (bounds every loop over rules, globs and waivers).
MAX_ITEMS = 1_000
#: Environments of one matrix, explicit and generated together; a ``generate:`` block is counted, not expanded.
MAX_ENVIRONMENTS = 1_000
#: Characters of any one string or key of the file.
MAX_SCALAR_CHARS = 4_096
#: Characters of an environment name (it becomes a folder and a nox session), of a tag and of a package name.
MAX_NAME_CHARS = 100
#: Characters of a package version.
MAX_VERSION_CHARS = 64
#: Characters of an environment variable's name.
MAX_VARIABLE_CHARS = 128
#: Packages of one environment.
MAX_PACKAGES = 100
#: Bits of an integer (seeds and counts are 64-bit at most; a bigger one cannot even be printed safely).
MAX_INT_BITS = 64
#: Seconds a timeout may give a scenario or a worker's start: a week.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0


def about(count: int) -> str:
    """A count for a message: exact when printable at a glance, else its order of magnitude (never a 10,000-digit
    number, which Python refuses to print anyway)."""
    if count < 10**30:
        return str(count)
    return f"about 10^{int(count.bit_length() * 0.30103)}"
