"""The bounds of a matrix file: each found by fuzzing ``check``, each refused fast in one line naming the limit."""

from __future__ import annotations

import time

import pytest

from harness import cli, matrix
from harness.errors import MatrixError
from harness.matrix import expand, limits
from tests.test_matrix import problems, write

ONE_ENV = 'environments: [{name: a, packages: {torch: "2.5.1"}}]\n'


def _raw(tmp_path, data: bytes) -> list[str]:
    path = tmp_path / "matrix.yaml"
    path.write_bytes(data)
    with pytest.raises(MatrixError) as info:
        matrix.load(path)
    return info.value.problems


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + ONE_ENV


def test_alias_bomb_is_refused_fast_with_the_count(tmp_path):
    start = time.perf_counter()
    found = problems(tmp_path, _bomb())  # 9**9 = 387,420,489 nodes once expanded
    assert time.perf_counter() - start < 1.0
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'matrix.yaml'}:6: (yaml): the document has more than 100000 nodes (")
    assert found[0].endswith("; the limit is 100000")


def test_aliases_within_the_bound_still_work(tmp_path):
    text = 'pins: &p {torch: "2.5.1"}\nenvironments: [{name: a, packages: *p}, {name: b, packages: *p}]\n'
    with pytest.raises(MatrixError) as info:
        matrix.load(write(tmp_path, text))
    assert [p.split(": ", 1)[1] for p in info.value.problems] == ["pins: unknown key"]


def test_recursive_alias_and_second_document_are_one_line_each(tmp_path):
    assert problems(tmp_path, "a: &r [*r]\n" + ONE_ENV) == [
        f"{tmp_path / 'matrix.yaml'}:1: (yaml): alias *r names no complete anchor (unknown, or inside itself)"
    ]
    assert problems(tmp_path, ONE_ENV + "---\n" + ONE_ENV) == [
        f"{tmp_path / 'matrix.yaml'}:2: (yaml): a second YAML document ('---'); a matrix file holds one"
    ]


def test_generate_block_of_7_axes_of_7_is_refused_with_its_count_without_expanding(tmp_path, monkeypatch):
    def never(*args):
        raise AssertionError("the block was expanded")

    monkeypatch.setattr(expand, "_combinations", never)
    values = ", ".join(f"'1.{j}'" for j in range(7))
    axes = "".join(f"        p{i}: [{values}]\n" for i in range(7))
    start = time.perf_counter()
    found = problems(tmp_path, f"generate:\n  - axes:\n      packages:\n{axes}")
    assert time.perf_counter() - start < 1.0
    assert found == [
        f"{tmp_path / 'matrix.yaml'}:2: generate[0]: this block makes 823543 environments "
        "(7 axes: 7 x 7 x 7 x 7 x 7 x 7 x 7); the limit is 1000 environments per matrix"
    ]


def test_environments_of_all_blocks_together_are_capped(tmp_path):
    axis = "[" + ", ".join(f'"1.{j}"' for j in range(30)) + "]"
    block = "  - name: 'bN-{x}-{y}'\n    axes: {packages: {x: AXIS, y: AXIS}}\n".replace("AXIS", axis)
    found = problems(tmp_path, ONE_ENV + "generate:\n" + block.replace("N", "1") + block.replace("N", "2"))
    assert found == [
        f"{tmp_path / 'matrix.yaml'}:1: (top level): the matrix makes 1801 environments (1 explicit); "
        "the limit is 1000 environments per matrix"
    ]


def test_too_deep_nesting_is_refused_directly_and_through_an_alias(tmp_path):
    deep = "x: " + "[" * 60 + "]" * 60 + "\n"
    assert problems(tmp_path, deep + ONE_ENV) == [
        f"{tmp_path / 'matrix.yaml'}:1: (yaml): nesting deeper than 50 levels; the limit is 50"
    ]
    half = "[" * 30
    aliased = f"a: &a {half}1{']' * 30}\nb: {half}*a{']' * 30}\n"
    found = problems(tmp_path, aliased + ONE_ENV)
    assert found == [
        f"{tmp_path / 'matrix.yaml'}:2: (yaml): nesting deeper than 50 levels through an alias; the limit is 50"
    ]


def test_huge_file_is_refused_before_it_is_read_whole(tmp_path):
    data = ONE_ENV.encode() + b"# " + b"x" * (3 * limits.MAX_FILE_BYTES) + b"\n"
    assert _raw(tmp_path, data) == [
        f"{tmp_path / 'matrix.yaml'}:1: (file): the file is {len(data)} bytes; the limit is 1048576 bytes (1 MiB)"
    ]


def test_file_just_under_the_limit_is_read(tmp_path):
    data = ONE_ENV.encode() + b"#" * (limits.MAX_FILE_BYTES - len(ONE_ENV) - 1) + b"\n"
    path = tmp_path / "matrix.yaml"
    path.write_bytes(data)
    assert len(data) == limits.MAX_FILE_BYTES and list(matrix.load(path).environments) == ["a"]


def test_non_utf8_is_refused_with_its_byte_offset_and_line(tmp_path):
    data = b'environments:\n  - name: caf\xe9\n    packages: {torch: "2.5.1"}\n'  # latin-1: 0xe9 is byte 27
    assert _raw(tmp_path, data) == [f"{tmp_path / 'matrix.yaml'}:2: (file): not UTF-8: byte 0xe9 at byte offset 27"]


def test_nul_byte_and_control_character_are_refused_with_their_offsets(tmp_path):
    assert _raw(tmp_path, ONE_ENV.encode() + b"# \x00\n") == [
        f"{tmp_path / 'matrix.yaml'}:2: (file): NUL byte at byte offset {len(ONE_ENV) + 2}; a matrix file is UTF-8 text"
    ]
    found = _raw(tmp_path, b"# \xc3\xa9\x1b[31m\n" + ONE_ENV.encode())
    assert found == [
        f"{tmp_path / 'matrix.yaml'}:1: (file): control character U+001B at byte offset 4; YAML does not allow it"
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("!!binary AA==", "binary data (!!binary) is not allowed here"),
        ("!!int abc", "cannot read 'abc' as tag:yaml.org,2002:int"),
        ("!!timestamp 1", "cannot read '1' as tag:yaml.org,2002:timestamp"),
        ("!!python/object:os.system x", "could not determine a constructor"),
        ("0x" + "f" * 2000, "integer of 8000 bits; the limit is 64 bits"),
        ('"a\\0b"', "control character U+0000 in 'a\\x00b'"),
        ('"' + "z" * 5000 + '"', "string of 5000 characters; the limit is 4096"),
    ],
)
def test_values_yaml_cannot_or_should_not_construct(tmp_path, value, fragment):
    found = problems(tmp_path, f"environments:\n  - name: {value}\n    packages: {{torch: '2.5.1'}}\n")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'matrix.yaml'}:2: environments[0].name: ")
    assert fragment in found[0]


def test_long_list_complex_key_and_line_break_in_a_key(tmp_path):
    items = ", ".join(["1"] * 1001)
    assert problems(tmp_path, f"scenarios: {{ids: [{items}]}}\n" + ONE_ENV) == [
        f"{tmp_path / 'matrix.yaml'}:1: scenarios.ids: this list has 1001 items; the limit is 1000"
    ]
    assert problems(tmp_path, "? [a, b]\n: 1\n" + ONE_ENV) == [
        f"{tmp_path / 'matrix.yaml'}:1: (top level): a key must be a plain value"
    ]
    found = problems(tmp_path, '"a\\nb": 1\n' + ONE_ENV)
    assert found == [f"{tmp_path / 'matrix.yaml'}:1: ['a\\nb']: unknown key"]


@pytest.mark.parametrize(
    "defaults", ["{timeout: .inf}", "{timeout: 1e9}", "{startup_timeout: .nan}", "{seed: -1}", "{seed: 4294967296}"]
)
def test_timeouts_and_seed_are_bounded(tmp_path, defaults):
    found = problems(tmp_path, f"defaults: {defaults}\n" + ONE_ENV)
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'matrix.yaml'}:1: defaults.")


def test_waivers_file_must_be_a_regular_file(tmp_path):
    found = problems(tmp_path, "drift: {waivers_file: /dev/zero}\n" + ONE_ENV)
    assert found == ["/dev/zero:1: (file): not a regular file; refusing to read it"]


def test_check_command_answers_a_bomb_with_exit_2_and_one_line(tmp_path, capsys):
    path = write(tmp_path, _bomb())
    assert cli.main(["check", "--matrix", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"{path}:6: (yaml): ")
