"""Fuzz inputs for ``python -m harness check``: real matrix files, mutated. No tests here (see test_matrix_fuzz.py).

Each input starts from a real file (matrix.yaml, tests/resources/*.yaml, the README's example, one file using
every key) and goes through up to two structural mutations (a random YAML value at a random key, a key from the
schema, a forbidden variable, a tricky name, a ``generate:`` block of many axes) and up to three byte-level ones
(byte flips, line deletions and duplications, huge numbers, deep nesting, aliases and alias bombs, YAML tags,
escapes, syntax characters, non-UTF-8, truncation, files around the size limit). Hypothesis draws the choices of
what to do and what to put; positions and counts come from a ``random.Random`` seeded by one draw (a hypothesis
draw costs ~50 us, and an input needs dozens of positions), so the same seed still replays the same input.
"""

from __future__ import annotations

import copy
import functools
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from harness.matrix import matrix_schema
from tests.test_matrix_fuzz_mutations import WEIGHTED, Draw

ROOT = Path(__file__).resolve().parent.parent

EVERY_KEY = """
version: 1
defaults: {python: "3.11", timeout: 300, startup_timeout: 600, seed: 1337}
baseline: torch2.13
upgrades:
  - {from: torch2.5, to: torch2.13}
  - chain: [tf2.16.2-keras3.3.3, tf2.17.1-keras3.6.0]
scenarios: {areas: [layer_init], ids: ["layer_init.*"], exclude: [], timeouts: {"layer_init.*": 60}}
environments:
  - name: torch2.5
    python: "3.11"
    packages: {torch: "2.5.1"}
    env: {OMP_NUM_THREADS: "2"}
    install: {find_links: [/opt/wheels], extra_index_urls: [], index_url: null}
    tags: [torch]
  - {name: torch2.13, packages: {torch: "==2.13.0"}}
generate:
  - name: "tf{tensorflow-cpu}-keras{keras}"
    axes:
      packages: {tensorflow-cpu: ["2.16.2", "2.17.1"], keras: ["3.3.3", "3.6.0"]}
      env: {KERAS_BACKEND: [tensorflow]}
    exclude: [{tensorflow-cpu: "2.17.1", keras: "3.3.3"}]
drift:
  tolerances: {"layer_init.*::*": {rtol: 1.0e-5, atol: 1.0e-6}}
  waivers:
    - {scenario: layer_init.keras_dense, record: kernel, reason: new RNG, owner: ml, expires: 2027-12-31}
"""


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"## matrix\.yaml\s+```yaml\n(.*?)```", text, re.S)
    return found.group(1) if found else ""


def seeds() -> list[tuple[str, bytes]]:
    """The real files the inputs grow from, by name."""
    files = [ROOT / "matrix.yaml", *sorted((ROOT / "tests" / "resources").glob("*.yaml"))]
    found = [(f.name, f.read_bytes()) for f in files]
    return [*found, ("README example", _readme_example().encode()), ("every key", EVERY_KEY.encode())]


def _schema_keys() -> list[str]:
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(matrix_schema())
    return sorted(keys)


KEYS = _schema_keys()
TRICKY = [
    *("", " ", "latest", "2.16.2", "==2.5.1", ">=1", "3.11", "3.11\n", "a\nb", "..", "../x", ".hidden", "-dash"),
    *("-e", "--index-url x", "relay-x", "tests", "x" * 101, "y" * 5000, "\x00", "\u202e", "tf{keras}", "{", "*"),
    *("LD_PRELOAD", "PATH", "PYTHONPATH", "layer_init.*", "2027-03-31", "yes", "~", "null", "torch\n", "a__b"),
]
VARIABLES = ["LD_PRELOAD", "PATH", "PYTHONPATH", "PYTHONHOME", "UV_INDEX_URL", "PIP_INDEX_URL", "VIRTUAL_ENV"]
VARIABLES += ["DYLD_INSERT_LIBRARIES", "TF_USE_LEGACY_KERAS", "KERAS_BACKEND", "OMP_NUM_THREADS", "TF_CPP_X", "1X"]
NUMBERS = [0, 1, -1, 300, 1337, 2**31, 2**63, 2**64, -(2**70), 0.5, 1e308, float("inf"), float("nan")]
#: Hypothesis draws cost ~0.5 ms each for text and numbers: most values come from the lists above.
SCALARS = st.sampled_from(TRICKY + NUMBERS) | st.none() | st.booleans() | st.text(max_size=12)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.sampled_from(KEYS) | st.sampled_from(VARIABLES), SCALARS, max_size=4),
)


def _slots(data: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of ``data``, to put a value at."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        out.append((data, key))
        _slots(value, out)
    return out


def _set_value(draw: Draw, rng: random.Random, data: Any) -> None:
    slots = _slots(data, [])
    if slots:
        container, key = rng.choice(slots)
        container[key] = draw(VALUES)


def _insert_key(draw: Draw, rng: random.Random, data: Any) -> None:
    mappings = [data] + [c[k] for c, k in _slots(data, []) if isinstance(c[k], dict)]
    rng.choice(mappings)[draw(st.sampled_from(KEYS))] = draw(VALUES)


def _environments(data: Any) -> list[dict[str, Any]]:
    envs = data.get("environments") if isinstance(data, dict) else None
    return [e for e in envs if isinstance(e, dict)] if isinstance(envs, list) else []


def _override_variable(draw: Draw, rng: random.Random, data: Any) -> None:
    envs = _environments(data)
    if envs:
        env = rng.choice(envs).setdefault("env", {})
        if isinstance(env, dict):
            env[draw(st.sampled_from(VARIABLES))] = draw(st.sampled_from(["1", "/tmp/x.so", "a\nb", "z" * 5000, 7]))


def _tricky_name(draw: Draw, rng: random.Random, data: Any) -> None:
    envs = _environments(data)
    if envs:
        rng.choice(envs)["name"] = draw(st.sampled_from(TRICKY) | st.text(max_size=120))


def _wide_generate(draw: Draw, rng: random.Random, data: Any) -> None:
    axes = draw(st.integers(1, 8))
    width = draw(st.integers(1, 12))
    packages = {f"pkg{i}": [f"1.{j}" for j in range(width)] for i in range(axes)}
    if isinstance(data, dict):
        data["generate"] = [{"axes": {"packages": packages}}]


STRUCTURAL: list[Callable[[Draw, random.Random, Any], None]] = [
    _set_value,
    _insert_key,
    _override_variable,
    _tricky_name,
    _wide_generate,
]


@functools.cache
def _parsed(text: bytes) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader) or {}


def structural(draw: Draw, rng: random.Random, text: bytes) -> tuple[bytes, list[str]]:
    """The seed with up to two structural changes, dumped back to YAML (flow or block style)."""
    ops = draw(st.lists(st.sampled_from(STRUCTURAL), max_size=2))
    if not ops:
        return text, []
    data = copy.deepcopy(_parsed(text))
    for op in ops:
        op(draw, rng, data)
    flow = draw(st.booleans())
    dumped = yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, default_flow_style=flow)
    return dumped.encode(), [op.__name__.strip("_") for op in ops]


def matrix_input(draw: Draw, corpus: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """One fuzz input and a short description of how it was made (seed name, mutations)."""
    name, blob = draw(st.sampled_from(corpus))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    blob, done = structural(draw, rng, blob)
    ops = draw(st.lists(st.sampled_from(WEIGHTED), min_size=0 if done else 1, max_size=3))
    for op in ops:
        blob = op(draw, rng, blob)
        done.append(op.__name__)
    return blob, f"{name} + {', '.join(done)} ({len(blob)} bytes)"
