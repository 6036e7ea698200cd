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


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("tf2.16\\n", "environment name 'tf2.16\\n' is not safe as a file name"),
        (".hidden", "must start with a letter or a digit"),
        ("-rf", "must start with a letter or a digit"),
        ("a" * 101, "environment name of 101 characters; the limit is 100"),
        ("a__b", "no '__'"),
    ],
)
def test_names_with_a_line_break_a_leading_dot_or_dash_or_too_long(tmp_path, name, fragment):
    found = problems(tmp_path, f'environments:\n  - name: "{name}"\n    packages: {{torch: "2.5.1"}}\n')
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'matrix.yaml'}:2: environments[0].name: ")
    assert fragment in found[0] and "\n" not in found[0]


def test_a_generated_name_with_a_line_break_is_refused(tmp_path):
    found = problems(tmp_path, 'generate:\n  - name: "t{torch}"\n    axes: {packages: {torch: ["2.5.1\\n"]}}\n')
    assert any("generate[0].name: environment name 't2.5.1\\n' is not safe" in p for p in found), found


def test_a_name_of_100_characters_is_accepted(tmp_path):
    name = "a" * 100
    m = matrix.load(write(tmp_path, f'environments:\n  - {{name: {name}, packages: {{torch: "2.5.1"}}}}\n'))
    assert list(m.environments) == [name]


@pytest.mark.parametrize(
    ("var", "why"),
    [
        ("LD_PRELOAD", "it changes what the dynamic loader loads into the worker"),
        ("LD_LIBRARY_PATH", "dynamic loader"),
        ("DYLD_INSERT_LIBRARIES", "dynamic loader"),
        ("PATH", "it decides which interpreter and programs run"),
        ("VIRTUAL_ENV", "which interpreter"),
        ("PYTHONPATH", "it changes the worker's interpreter"),
        ("PYTHONHOME", "interpreter"),
        ("PYTHONSTARTUP", "interpreter"),
        ("pythonpath", "interpreter"),
        ("UV_INDEX_URL", "use 'install:'"),
        ("PIP_FIND_LINKS", "use 'install:'"),
    ],
)
def test_variables_that_change_the_loader_interpreter_or_installer_are_refused(tmp_path, var, why):
    found = problems(tmp_path, f'environments:\n  - name: a\n    packages: {{torch: "2.5.1"}}\n    env: {{{var}: x}}\n')
    where = f"{tmp_path / 'matrix.yaml'}:4: environments[0].env.{var}: {var} may not be set by a matrix: "
    assert len(found) == 1 and found[0].startswith(where) and why in found[0]


def test_framework_switches_are_allowed(tmp_path):
    env = '{KERAS_BACKEND: torch, TF_CPP_MIN_LOG_LEVEL: "2", CUDA_VISIBLE_DEVICES: "", OMP_NUM_THREADS: 2, MY_PATH: x}'
    m = matrix.load(write(tmp_path, f'environments:\n  - name: a\n    packages: {{keras: "3.3.3"}}\n    env: {env}\n'))
    assert m.environment("a").env == {
        "KERAS_BACKEND": "torch",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "2",
        "MY_PATH": "x",
    }


@pytest.mark.parametrize(
    ("value", "fragment"),
    [('"a\\nb"', "a value must be one line without NUL"), ('"' + "v" * 4097 + '"', "the limit is 4096")],
)
def test_variable_values_are_one_bounded_line(tmp_path, value, fragment):
    found = problems(
        tmp_path, f'environments:\n  - name: a\n    packages: {{torch: "2.5.1"}}\n    env: {{A: {value}}}\n'
    )
    assert len(found) == 1 and ":4: environments[0].env.A: " in found[0] and fragment in found[0]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ('torch: "2.5.1\\n"', "bad version '2.5.1\\n': no spaces, line breaks or control characters"),
        ('torch: "2.5.1\\t"', "no spaces, line breaks or control characters"),
        ('torch: " 2.5.1"', "no spaces, line breaks or control characters"),
        ('torch: "' + "1." * 40 + '1"', "version of 81 characters; the limit is 64"),
        ('"torch\\n": "2.5.1"', "'torch\\n' is not a valid package name"),
        ('"a' + "b" * 100 + '": "1.0"', "package name of 101 characters; the limit is 100"),
    ],
)
def test_versions_and_package_names_with_line_breaks_or_absurd_lengths(tmp_path, entry, fragment):
    found = problems(tmp_path, f"environments:\n  - name: a\n    packages: {{{entry}}}\n")
    assert len(found) == 1 and ":3: environments[0].packages" in found[0] and fragment in found[0], found


def test_python_tags_and_install_options_are_plain_words(tmp_path):
    found = problems(
        tmp_path,
        """
        defaults: {python: "3.11\\n"}
        environments:
          - name: a
            packages: {torch: "2.5.1"}
            tags: ["two words"]
            install: {index_url: "--trusted-host=x", find_links: ["/opt/wheels dir"]}
        """,
    )
    joined = "\n".join(found)
    assert "defaults.python: python '3.11\\n' must look like 3.11" in joined
    assert ":5: environments[0].tags[0]: tag 'two words' must be" in joined
    assert ":6: environments[0].install.index_url: '--trusted-host=x' must be a URL or a folder" in joined
    assert ":6: environments[0].install.find_links[0]: '/opt/wheels dir' must be a URL or a folder" in joined
