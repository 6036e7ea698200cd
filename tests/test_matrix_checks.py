"""The rules about one environment no schema can say: exact pins, installer options, safe names, variables."""

from __future__ import annotations

import pytest

from harness import matrix
from tests.test_matrix import problems, write


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ('">=2.15"', "bad version '>=2.15'"),
        ('"2.15.*"', "bad version '2.15.*'"),
        ('"two"', "bad version 'two'"),
        ("2.16", "quote this value"),
        ('"--index-url https://x"', "looks like an installer option"),
    ],
)
def test_bad_versions(tmp_path, version, fragment):
    found = problems(tmp_path, f"environments:\n  - name: a\n    packages:\n      torch: {version}\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'matrix.yaml'}:4: environments[0].packages.torch: ")
    assert fragment in found[0]


def test_exact_pin_with_double_equals_is_accepted(tmp_path):
    m = matrix.load(write(tmp_path, 'environments:\n  - {name: a, packages: {torch: "==2.5.1"}}\n'))
    assert m.environment("a").packages == {"torch": "2.5.1"}


@pytest.mark.parametrize("entry", ["--index-url https://example.org/simple", "-e", "git+https://x/y.git"])
def test_installer_options_posing_as_packages(tmp_path, entry):
    found = problems(tmp_path, f'environments:\n  - name: a\n    packages:\n      "{entry}": "1.0"\n')
    assert len(found) == 1 and "is an installer option, not a package" in found[0]
    assert ":4: environments[0].packages." in found[0]


@pytest.mark.parametrize("name", ["../evil", "a/b", "x..y", "tests", " sp"])
def test_unsafe_or_reserved_names(tmp_path, name):
    found = problems(tmp_path, f'environments:\n  - name: "{name}"\n    packages: {{torch: "2.5.1"}}\n')
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'matrix.yaml'}:2: environments[0].name: ")


def test_legacy_keras_without_tf_keras_is_refused(tmp_path):
    found = problems(
        tmp_path,
        'environments:\n  - name: a\n    packages: {tensorflow-cpu: "2.15.1"}\n    env: {TF_USE_LEGACY_KERAS: "1"}\n',
    )
    assert len(found) == 1 and "environments[0].env.TF_USE_LEGACY_KERAS" in found[0] and ":4:" in found[0]


def test_boolean_env_value_and_bad_var_name(tmp_path):
    found = problems(
        tmp_path,
        'environments:\n  - name: a\n    packages: {torch: "2.5.1"}\n    env: {"1BAD": x, OK: true}\n',
    )
    assert any("env.1BAD" in p and "not a valid environment variable name" in p for p in found)
    assert any("env.OK" in p for p in found)


def test_no_deps_must_name_a_package(tmp_path):
    found = problems(tmp_path, 'environments:\n  - name: a\n    packages: {torch: "2.5.1"}\n    no_deps: [tf-keras]\n')
    where = f"{tmp_path / 'matrix.yaml'}:4: environments[0].no_deps[0]"
    assert found == [f"{where}: 'tf-keras' is not one of this environment's packages"]
