"""Byte-level mutations of a matrix file, for the fuzz inputs of test_matrix_fuzz_inputs.py. No tests here.

Each takes hypothesis's ``draw`` (for what to do and what to put) and a seeded ``random.Random`` (for positions and
counts) and returns new bytes: byte flips, line edits, huge numbers, deep nesting, aliases and alias bombs, YAML
tags, escapes, syntax characters, non-UTF-8, truncation, and files around the size limit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from harness.matrix.limits import MAX_FILE_BYTES

Draw = Callable[[st.SearchStrategy[Any]], Any]
Mutation = Callable[[Draw, random.Random, bytes], bytes]


def _insert(rng: random.Random, blob: bytes, piece: bytes) -> bytes:
    where = rng.randint(0, len(blob))
    return blob[:where] + piece + blob[where:]


def flip_bytes(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    out = bytearray(blob or b" ")
    special = [0, 0xFF, 0x80, 0xC3, 0xED, *b"\n\t :[]{}&*!\"'-#%|>?,\\\r"]
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.choice(special) if draw(st.booleans()) else rng.randrange(256)
    return bytes(out)


def edit_lines(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    lines = blob.split(b"\n")
    i = rng.randrange(len(lines))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent"]))
    if kind == "delete":
        del lines[i : i + rng.randint(1, 5)]
    elif kind == "duplicate":
        lines[i:i] = [lines[i]] * draw(st.sampled_from([1, 2, 3, 10, 50, 2000, 40000]))
    elif kind == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = b"  " + lines[i] if kind == "indent" else lines[i][2:]
    return b"\n".join(lines)


def huge_number(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    digits = draw(st.sampled_from([19, 20, 64, 300, 4400, 6000]))
    numbers = [b"9" * digits, b"0x" + b"f" * digits, b"-" + b"9" * digits, b"1e999", b"-.inf"]
    number: bytes = draw(st.sampled_from(numbers))
    runs = list(re.finditer(rb"\d+", blob))
    if not runs:
        return _insert(rng, blob, number)
    run = rng.choice(runs)
    return blob[: run.start()] + number + blob[run.end() :]


def deep_nesting(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    depth = draw(st.sampled_from([1, 5, 20, 48, 49, 50, 51, 120, 5000, 200000]))
    piece: bytes = draw(st.sampled_from([b"[" * depth + b"]" * depth, b"{a: " * depth + b"1" + b"}" * depth]))
    return _insert(rng, blob, piece)


def _bomb(levels: int, width: int) -> bytes:
    lines = [b"a0: &a0 [" + b", ".join([b"lol"] * width) + b"]"]
    for i in range(1, levels):
        refs = b", ".join([b"*a%d" % (i - 1)] * width)
        lines.append(b"a%d: &a%d [%s]" % (i, i, refs))
    return b"\n".join(lines) + b"\n"


ALIASES = [
    b"x: &r [*r]\n",
    b"x: *nothing\n",
    b"base: &b {torch: '2.5.1'}\nmore: {<<: *b}\n",
    b"? *k\n: 1\nk: &k [1]\n",
    b"d: &d "
    + b"[" * 10
    + b"1"
    + b"]" * 10
    + b"\ne: &e "
    + b"[" * 10
    + b"*d, *d"
    + b"]" * 10
    + b"\nf: [[[[[[[[[[[*e]]]]]]]]]]]\n",
]


def aliases(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    choice = draw(st.integers(0, len(ALIASES) + 1))
    if choice == len(ALIASES):
        return blob + b"\n" + _bomb(draw(st.integers(2, 10)), draw(st.integers(2, 10)))
    if choice > len(ALIASES):
        return b"environments: [&e {name: a, packages: {torch: '2.5.1'}}, *e]\n" + blob
    return _insert(rng, blob, ALIASES[choice])


def yaml_tags(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    tags = [b"!!binary ", b"!!python/object:os.system ", b"!!timestamp ", b"!foo ", b"!!set ", b"!!int ", b"!!float "]
    tag: bytes = draw(st.sampled_from([*tags, b"!!omap ", b"!!str ", b"!!null ", b"!<tag:x> "]))
    spots = [m.end() for m in re.finditer(rb": ", blob)]
    where = rng.choice(spots) if spots else 0
    return blob[:where] + tag + blob[where:]


ESCAPES = [b"\\0", b"\\x01", b"\\e", b"\\N", b"\\u2028", b"\\x85", b"\\n", b"\\t", b"\\r"]


def escapes(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    escape: bytes = draw(st.sampled_from(ESCAPES))
    quotes = [m.start() + 1 for m in re.finditer(rb'"', blob)]
    if not quotes:
        return _insert(rng, blob, b'x: "' + escape + b'"\n')
    where = rng.choice(quotes)
    return blob[:where] + escape + blob[where:]


SYNTAX = [b"{", b"}", b"[", b"]", b": ", b"- ", b"? ", b"&a ", b"*a ", b"!", b"%YAML 1.1\n", b"---\n", b"...\n"]
SYNTAX += [b"|\n", b">-\n", b"\t", b"'", b'"', b"#", b"\\", b"\r", b"\r\n", "\ufeff".encode(), "\u2028".encode()]


def syntax(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    for _ in range(rng.randint(1, 4)):
        blob = _insert(rng, blob, draw(st.sampled_from(SYNTAX)))
    return blob


def not_utf8(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return _insert(rng, blob, draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])))
    text = "# é ü ✓\n" + blob.decode("utf-8", "replace")
    return text.encode("utf-16") if kind == 1 else text.encode("latin-1", "replace")


def truncate(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    return blob[: rng.randint(0, len(blob))]


def near_size_limit(draw: Draw, rng: random.Random, blob: bytes) -> bytes:
    target: int = draw(st.sampled_from([MAX_FILE_BYTES - 64, MAX_FILE_BYTES, MAX_FILE_BYTES + 1, 3 * MAX_FILE_BYTES]))
    filler: bytes = draw(st.sampled_from([b"# padding\n", b"x: [1, 2, 3]\n", b"- a\n", b" " * 63 + b"\n"]))
    padded = blob + b"\n" + filler * ((target - len(blob)) // len(filler) + 1)
    return padded[:target]


BYTE_LEVEL: list[Mutation] = [flip_bytes, edit_lines, huge_number, deep_nesting, aliases, yaml_tags, escapes, syntax]
BYTE_LEVEL += [not_utf8, truncate, near_size_limit]
#: How often each byte-level mutation is drawn: the costly files around the size limit rarely.
WEIGHTED = [op for op in BYTE_LEVEL for _ in range(1 if op is near_size_limit else 4)]
