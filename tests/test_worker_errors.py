"""error_text: an exception's full text for people, with its type once and its root cause named."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.worker.errors import error_text


def _raised(make):
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


def test_type_already_in_the_message_is_not_repeated():
    assert error_text(TypeError("TypeError: unsupported operand")) == "TypeError: unsupported operand"
    assert error_text(TypeError("unsupported operand")) == "TypeError: unsupported operand"


def test_qualified_type_in_the_message_counts_as_the_type():
    exc = ValueError("builtins.ValueError: bad shape")
    assert error_text(exc) == "builtins.ValueError: bad shape"


def test_a_message_that_merely_starts_with_a_longer_word_still_gets_the_type():
    assert error_text(KeyError("KeyErrors happen")).startswith("KeyError: ")


def test_every_line_of_the_message_is_kept():
    exc = RuntimeError("Weights only load failed.\nRe-running with weights_only=False will work.\nHint: allowlist")
    text = error_text(exc)
    assert text.splitlines() == [
        "RuntimeError: Weights only load failed.",
        "Re-running with weights_only=False will work.",
        "Hint: allowlist",
    ]


def test_the_root_of_a_chain_is_named():
    def load():
        try:
            try:
                Path("/no/such/file/anywhere").read_bytes()
            except OSError as inner:
                raise KeyError("inner") from inner
        except KeyError as middle:
            raise ValueError("could not load the model") from middle

    text = error_text(_raised(load))
    assert text.startswith("ValueError: could not load the model (caused by FileNotFoundError: ")
    assert "No such file or directory" in text and "KeyError" not in text  # the root, not every link


def test_implicit_context_counts_and_from_none_ends_the_chain():
    def implicit():
        try:
            {}["missing"]
        except KeyError:
            raise RuntimeError("lookup failed")  # noqa: B904 - an implicit __context__ on purpose

    def suppressed():
        try:
            {}["missing"]
        except KeyError:
            raise RuntimeError("lookup failed") from None

    assert error_text(_raised(implicit)) == "RuntimeError: lookup failed (caused by KeyError: 'missing')"
    assert error_text(_raised(suppressed)) == "RuntimeError: lookup failed"


def test_a_cause_already_quoted_in_the_message_is_not_repeated():
    root = OSError("disk full")
    exc = RuntimeError("save failed: OSError: disk full")
    exc.__cause__ = root
    assert error_text(exc) == "RuntimeError: save failed: OSError: disk full"


def test_ansi_escapes_and_control_characters_are_stripped():
    exc = RuntimeError("\x1b[1mWeights only load failed\x1b[0m\x07 because\x00 of \x1b[31mGLOBAL\x1b[0m")
    assert error_text(exc) == "RuntimeError: Weights only load failed because of GLOBAL"


def test_no_message_gives_the_type_alone():
    assert error_text(NotImplementedError()) == "NotImplementedError"


@pytest.mark.parametrize("limit", [200, 1000])
def test_long_text_is_bounded_and_keeps_its_end(limit):
    exc = ValueError("x" * 10_000)
    exc.__cause__ = OSError("the real reason")
    text = error_text(exc, limit=limit)
    assert len(text) <= limit
    assert text.startswith("ValueError: xxx") and text.endswith("(caused by OSError: the real reason)")
    assert "[...]" in text
