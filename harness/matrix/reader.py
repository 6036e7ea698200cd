"""A matrix file's bytes, bounded and decoded: too big, NUL, not UTF-8 or a character YAML forbids is one line.

These are checked on the raw bytes, before YAML sees them, so the reason names the byte offset (and its line) of
the first offender instead of whatever a parser would make of it, and a 2 GB file is never read whole.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from harness.errors import MatrixError
from harness.matrix.limits import MAX_FILE_BYTES

__all__ = ["read_bounded"]

#: What YAML 1.1 calls non-printable (tab, line breaks, NEL, and all else from U+0020 on are fine).
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _refuse(path: Path, data: bytes, offset: int, what: str) -> MatrixError:
    return MatrixError([f"{path}:{_line_of(data, offset)}: (file): {what}"])


def _read(path: Path, regular_only: bool) -> bytes:
    """At most one byte past the limit, so the size is known without reading a huge file (or a device) whole."""
    if regular_only and not stat.S_ISREG(os.stat(path).st_mode):
        raise MatrixError([f"{path}:1: (file): not a regular file; refusing to read it"])
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
        size = os.fstat(handle.fileno()).st_size
    if len(data) > MAX_FILE_BYTES:
        shown = f"{size} bytes" if size > MAX_FILE_BYTES else f"more than {MAX_FILE_BYTES} bytes"
        raise MatrixError([f"{path}:1: (file): the file is {shown}; the limit is {MAX_FILE_BYTES} bytes (1 MiB)"])
    return data


def read_bounded(path: Path, regular_only: bool = False) -> str:
    """The text of ``path``, refused in one line when it is too big, holds a NUL, is not UTF-8 or not printable.

    ``regular_only`` refuses a FIFO or a device, for files named inside a matrix (whose reader must never block).
    An unreadable file raises ``OSError``: the caller says which file it was looking for.
    """
    data = _read(path, regular_only)
    nul = data.find(b"\0")
    if nul >= 0:
        raise _refuse(path, data, nul, f"NUL byte at byte offset {nul}; a matrix file is UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise _refuse(path, data, exc.start, f"not UTF-8: byte 0x{bad:02x} at byte offset {exc.start}") from None
    found = _NON_PRINTABLE.search(text)
    if found:
        offset = len(text[: found.start()].encode())
        what = f"control character U+{ord(found.group()):04X} at byte offset {offset}; YAML does not allow it"
        raise _refuse(path, data, offset, what)
    return text
