"""What ``report`` and ``gonogo`` print: rendered on a terminal, the Markdown itself anywhere else."""

from __future__ import annotations

import io

from harness.report import mdsafe
from harness.report.terminal import show_markdown

MARKDOWN = (
    "## NO-GO: a → b\n\n"
    f"**1. drift** in `layer_init.x`: {mdsafe.text('fans: nd -> 2d in pickle_default_load_')}\n\n"
    f"<details><summary>{mdsafe.html('Warnings (2) <b>')}</summary>\n\n- one\n\n</details>\n"
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_or_a_file_gets_the_markdown_byte_for_byte():
    out = io.StringIO()
    show_markdown(MARKDOWN, out)
    assert out.getvalue() == MARKDOWN + "\n"


def test_a_terminal_reads_the_escapes_back_and_keeps_a_folded_sections_summary():
    assert "-&gt;" in MARKDOWN and "\\_" in MARKDOWN  # what GitHub needs, and a terminal would show as it is
    out = Terminal()
    show_markdown(MARKDOWN, out)
    shown = out.getvalue()
    assert "nd -> 2d" in shown and "pickle_default_load_" in shown
    assert "&gt;" not in shown and "\\_" not in shown and "<details>" not in shown
    assert "Warnings (2) <b>" in shown and "one" in shown  # the summary's words, as text: no markup made of them
