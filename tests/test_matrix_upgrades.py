"""Upgrade paths: framework lines, derived older -> newer pairs, the declared ``upgrades:`` key and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness import matrix
from harness.matrix import Environment, UpgradePath
from tests.test_matrix import problems, write

ROOT = Path(__file__).resolve().parent.parent


def env(name: str, packages: dict[str, str], **variables: str) -> Environment:
    return Environment(name=name, python="3.11", packages=packages, env=variables)


TWO_TORCH = """
environments:
  - {name: a, packages: {torch: "2.5.1"}}
  - {name: b, packages: {torch: "2.6.0"}}
"""


def test_default_matrix_derives_every_older_newer_pair_per_line():
    m = matrix.load(ROOT / "matrix.yaml")
    assert m.upgrades == ()
    paths = matrix.upgrade_paths(m)
    assert [(p.baseline, p.candidate) for p in paths] == [
        ("tf2.15-keras2", "tf2.16-keras3"),
        ("tf2.15-keras2", "tf2.21-keras3"),
        ("tf2.15-keras2", "latest-tf-keras"),
        ("tf2.16-keras3", "tf2.21-keras3"),
        ("tf2.16-keras3", "latest-tf-keras"),
        ("tf2.21-keras3", "latest-tf-keras"),
        ("torch2.5", "torch2.13"),
        ("torch2.5", "latest-torch"),
        ("torch2.13", "latest-torch"),
    ]
    assert [p.line for p in paths] == ["tensorflow"] * 6 + ["torch"] * 3
    assert not any(p.declared for p in paths)


def test_on_the_same_framework_versions_the_older_python_is_the_baseline(tmp_path):
    newer_first = """
environments:
  - {name: py313, python: "3.13", packages: {torch: "2.5.1"}}
  - {name: py310, python: "3.10", packages: {torch: "2.5.1"}}
  - {name: py39-newer-torch, python: "3.9", packages: {torch: "2.6.0"}}
"""
    m = matrix.load(write(tmp_path, newer_first))
    assert [(p.baseline, p.candidate) for p in matrix.upgrade_paths(m)] == [
        ("py310", "py313"),  # declared in the other order: the interpreter decides the direction
        ("py310", "py39-newer-torch"),  # the framework's version comes before the interpreter's
        ("py313", "py39-newer-torch"),
    ]


def test_default_matrix_framework_lines():
    m = matrix.load(ROOT / "matrix.yaml")
    assert {name: matrix.framework_line(e) for name, e in m.environments.items()} == {
        "tf2.15-keras2": "tensorflow",
        "tf2.16-keras3": "tensorflow",
        "tf2.21-keras3": "tensorflow",
        "tf2.21-tfkeras": "tf-keras",
        "keras3-torch": "keras-torch",
        "torch2.5": "torch",
        "torch2.13": "torch",
        "latest-tf-keras": "tensorflow",
        "latest-torch": "torch",
    }


@pytest.mark.parametrize(
    ("packages", "variables", "line"),
    [
        ({"tensorflow": "2.16.1"}, {}, "tensorflow"),
        ({"tensorflow-cpu": "2.15.1", "keras": "2.15.0"}, {}, "tensorflow"),
        ({"tensorflow-cpu": "2.16.2", "keras": "3.3.3"}, {"KERAS_BACKEND": "torch"}, "tensorflow"),
        ({"tensorflow-cpu": "2.21.0", "tf-keras": "2.21.0"}, {"TF_USE_LEGACY_KERAS": "true"}, "tf-keras"),
        ({"tensorflow-cpu": "2.21.0", "tf-keras": "2.21.0"}, {"TF_USE_LEGACY_KERAS": "0"}, "tensorflow"),
        ({"keras": "3.6.0", "jax": "0.4.30"}, {"KERAS_BACKEND": "jax"}, "keras-jax"),
        ({"keras": "3.6.0"}, {}, None),
        ({"keras": "3.6.0"}, {"KERAS_BACKEND": "tensorflow"}, None),
        ({"torch": "2.5.1", "torchvision": "0.20.1"}, {}, "torch"),
        ({"numpy": "1.26.4"}, {}, None),
    ],
)
def test_framework_line(packages, variables, line):
    assert matrix.framework_line(env("x", packages, **variables)) == line


def test_lines_are_ordered_by_version_not_by_text_nor_declaration(tmp_path):
    m = matrix.load(
        write(
            tmp_path,
            """
            environments:
              - {name: newest, packages: {torch: latest}}
              - {name: t10, packages: {torch: "2.10.0"}}
              - {name: also-newest, packages: {torch: latest}}
              - {name: t9, packages: {torch: "2.9.1"}}
              - {name: k-new, packages: {keras: "3.10.0", torch: "2.5.1"}, env: {KERAS_BACKEND: torch}}
              - {name: k-old, packages: {keras: "3.9.0", torch: "2.10.0"}, env: {KERAS_BACKEND: torch}}
            """,
        )
    )
    assert matrix.upgrade_paths(m) == [
        UpgradePath("t9", "t10", "torch", False),
        UpgradePath("t9", "newest", "torch", False),
        UpgradePath("t9", "also-newest", "torch", False),
        UpgradePath("t10", "newest", "torch", False),
        UpgradePath("t10", "also-newest", "torch", False),
        UpgradePath("newest", "also-newest", "torch", False),
        UpgradePath("k-old", "k-new", "keras-torch", False),
    ]


def test_tf_keras_line_is_ordered_by_tf_keras(tmp_path):
    m = matrix.load(
        write(
            tmp_path,
            """
            environments:
              - name: b
                packages: {tensorflow-cpu: "2.17.0", tf-keras: "2.17.0"}
                env: {TF_USE_LEGACY_KERAS: "1"}
              - name: a
                packages: {tensorflow-cpu: "2.18.0", tf-keras: "2.16.0"}
                env: {TF_USE_LEGACY_KERAS: "1"}
            """,
        )
    )
    assert matrix.upgrade_paths(m) == [UpgradePath("a", "b", "tf-keras", False)]


def test_declared_pairs_and_chains_replace_the_derived_paths(tmp_path):
    m = matrix.load(
        write(
            tmp_path,
            """
            baseline: c
            environments:
              - {name: a, packages: {torch: "2.5.1"}}
              - {name: b, packages: {torch: "2.6.0"}}
              - {name: c, packages: {tensorflow-cpu: "2.16.2"}}
            upgrades:
              - {from: b, to: a}
              - chain: [a, b, c]
            """,
        )
    )
    assert m.baseline == "c"
    assert m.upgrades == (("b", "a"), ("a", "b"), ("b", "c"))
    assert matrix.upgrade_paths(m) == [
        UpgradePath("b", "a", "declared", True),
        UpgradePath("a", "b", "declared", True),
        UpgradePath("b", "c", "declared", True),
    ]


def test_baseline_does_not_decide_the_pairs(tmp_path):
    m = matrix.load(write(tmp_path, "baseline: b\n" + TWO_TORCH.lstrip()))
    assert matrix.upgrade_paths(m) == [UpgradePath("a", "b", "torch", False)]


def test_unknown_environment_in_upgrades(tmp_path):
    found = problems(tmp_path, TWO_TORCH + "upgrades:\n  - {from: x, to: a}\n  - chain: [a, b, nope]\n")
    path = tmp_path / "matrix.yaml"
    assert found == [
        f"{path}:5: upgrades[0].from: unknown environment 'x' (known: a, b)",
        f"{path}:6: upgrades[1].chain[2]: unknown environment 'nope' (known: a, b)",
    ]


def test_self_moves_and_duplicates_are_refused(tmp_path):
    found = problems(
        tmp_path,
        TWO_TORCH + "upgrades:\n  - {from: a, to: a}\n  - {from: a, to: b}\n  - chain: [b, b]\n  - chain: [a, b]\n",
    )
    path = tmp_path / "matrix.yaml"
    assert found == [
        f"{path}:5: upgrades[0].to: moves 'a' to itself; an upgrade path joins two environments",
        f"{path}:7: upgrades[2].chain[1]: moves 'b' to itself; an upgrade path joins two environments",
        f"{path}:8: upgrades[3].chain[0]: duplicate upgrade path a -> b (first at line 6)",
    ]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("{from: a}", "upgrades[0]: missing required key 'to'"),
        ("{chain: [a]}", "upgrades[0].chain: List should have at least 2 items"),
        ("{chain: [a, b], to: b}", "upgrades[0].to: unknown key"),
        ("a", "upgrades[0]: an upgrade path is {from: A, to: B} or {chain: [A, B, C]}"),
        ("{from: a, to: 2}", 'upgrades[0].to: quote this value: YAML read 2 as a number (write "2")'),
    ],
)
def test_malformed_upgrade_items(tmp_path, item, expected):
    found = problems(tmp_path, TWO_TORCH + f"upgrades:\n  - {item}\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'matrix.yaml'}:5: {expected}"), found


def test_comparable():
    old_torch = env("torch-old", {"torch": "2.5.1"})
    new_torch = env("torch-new", {"torch": "2.6.0"})
    tf = env("tf", {"tensorflow-cpu": "2.16.2", "keras": "3.3.3"})
    keras_only = env("keras-only", {"keras": "3.6.0"})
    assert matrix.comparable(old_torch, new_torch)
    assert not matrix.comparable(old_torch, tf)
    assert not matrix.comparable(keras_only, keras_only)
    assert matrix.comparable(old_torch, tf, declared=[("tf", "torch-old")])
    assert not matrix.comparable(new_torch, tf, declared=[("tf", "torch-old")])


def test_published_schema_describes_upgrades():
    schema = json.loads((ROOT / "harness" / "schemas" / "matrix.schema.json").read_text())
    base = {"environments": [{"name": "a", "packages": {"torch": "2.5.1"}}]}
    jsonschema.validate({**base, "upgrades": [{"from": "a", "to": "b"}, {"chain": ["a", "b", "c"]}]}, schema)
    for bad in ({"from": "a"}, {"chain": ["a"]}, {"from": "a", "to": "b", "chain": ["a", "b"]}, "a"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**base, "upgrades": [bad]}, schema)
