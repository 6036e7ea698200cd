"""The Markdown a command prints: rendered for a person at a terminal, as it is for everything else.

The report's and the verdict's Markdown is written for GitHub (a PR comment, a job summary): untrusted text in it
is escaped (``-&gt;``, ``pickle\\_default``) and folded sections are raw HTML (``<details>``). Printed as it is to a
terminal, a reader sees the escapes. On a terminal it goes through rich's Markdown renderer instead, which reads
the escapes back; a pipe, a file or a CI log gets the Markdown itself, byte for byte, to paste or post.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

__all__ = ["show_markdown"]

#: A folded section's summary, kept as a bold line (rich drops raw HTML, and with it the summary's words).
_SUMMARY = re.compile(r"<details>\s*<summary>(.*?)</summary>", re.DOTALL)
_CLOSING = re.compile(r"</details>")


def _for_terminal(markdown: str) -> str:
    return _CLOSING.sub("", _SUMMARY.sub(lambda m: f"**{m.group(1).strip()}**", markdown))


def show_markdown(markdown: str, stream: TextIO | None = None) -> None:
    """Print ``markdown``: rendered when ``stream`` (default stdout) is a terminal, verbatim otherwise."""
    out = sys.stdout if stream is None else stream
    if not out.isatty():
        print(markdown, file=out)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console(file=out, highlight=False).print(Markdown(_for_terminal(markdown)))
