"""The scenario catalogue: what a run observed of each scenario, its Markdown, and the committed page being current."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from harness import catalogue
from harness.cli import main
from harness.report import catalogue as catalogue_page
from harness.worker import scenario as scenario_mod
from tests.factories import cell, env_doc, relay_row

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "SCENARIOS.md"


def _registry() -> dict[str, scenario_mod.Scenario]:
    def probe(ctx: object) -> None:
        """Catches a change of ``Dense``'s default initializer.

        Second paragraph, not shown.
        """

    make = scenario_mod.Scenario
    return {
        "layer_init.probe": make("layer_init.probe", "layer_init", "probe", probe, ("keras",), doc=probe.__doc__ or ""),
        "relay.consume": make("relay.consume", "relay", "consume", probe, doc="Loads.", parametrized=True),
    }


def test_a_run_says_where_a_scenario_ran_skipped_and_what_it_recorded(tmp_path):
    a = env_doc(tmp_path, "a", [cell("layer_init.probe", kernel=np.ones(3), config=("config", {"x": 1}))],
                relay=[relay_row("a", "a", "loaded", model="recurrent")])  # fmt: skip
    b = env_doc(tmp_path, "b", [cell("layer_init.probe", "skip", "requires keras; not installed")])
    entries = {e.id: e for e in catalogue.gather(_registry(), {"b": b, "a": a})}
    probe = entries["layer_init.probe"]
    assert probe.catches == "Catches a change of ``Dense``'s default initializer."
    assert probe.runs_in == ["a"] and probe.skips == {"requires keras": ["b"]}
    assert probe.records == {"kernel": "array", "config": "config"}
    assert entries["relay.consume"].runs_in == ["a"]
    assert entries["relay.consume"].records == {"keras:recurrent": "relay load"}


def test_without_a_run_every_scenario_is_listed_as_not_run():
    entries = catalogue.gather(_registry())
    assert [e.id for e in entries] == ["layer_init.probe", "relay.consume"]
    page = catalogue_page.render(entries, "no run", "docs/SCENARIOS.md")
    assert page.count("(not run)") == 2
    assert "`Dense`" in page and "``" not in page  # reST literals become Markdown code spans


def test_a_docstring_sentence_keeps_the_blanks_around_its_code_spans():
    from harness.report.catalogue import _prose

    sentence = "Catches ``Dense`` moving, or ``Conv2D`` - 2 layers"
    assert _prose(sentence) == "Catches `Dense` moving, or `Conv2D` - 2 layers"
    assert _prose("``x`` first") == "`x` first"


def test_hostile_names_from_results_cannot_break_the_table(tmp_path):
    doc = env_doc(tmp_path, "a|b", [cell("layer_init.probe", **{"k|`x`\n## injected": np.ones(2)})])
    page = catalogue_page.render(catalogue.gather(_registry(), {"a|b": doc}), "r", "t")
    row = next(line for line in page.splitlines() if line.startswith("| `layer_init.probe`"))
    assert len(re.findall(r"(?<!\\)\|", row)) == 7  # six columns: nothing in the values adds a cell
    assert "\n## injected" not in page


def test_the_cli_writes_the_page_from_a_run(tmp_path, capsys):
    env_doc(tmp_path / "results" / "r1", "a", [cell("layer_init.keras_dense", kernel=np.ones(2))])
    target = tmp_path / "SCENARIOS.md"
    code = main(["catalogue", "--results-dir", str(tmp_path / "results"), "--write", str(target)])
    assert code == 0 and "in the run r1" in target.read_text()
    assert "| `layer_init.keras_dense` |" in target.read_text()


def test_the_committed_page_lists_every_scenario_with_what_it_catches():
    registry = scenario_mod.discover(("scenarios",))
    page = PAGE.read_text()
    listed = re.findall(r"^\| `([a-z_]+\.[a-z_0-9]+)` \|", page, flags=re.M)
    assert sorted(listed) == sorted(registry), "regenerate with: python -m harness catalogue --write"
    for sid, scenario in registry.items():
        first_words = catalogue.catches(scenario.doc).replace("``", "").split()[:4]
        row = next(line for line in page.splitlines() if line.startswith(f"| `{sid}` |"))
        shown = html.unescape(row.replace("`", "").replace("\\", ""))  # the page escapes markup and < > &
        assert " ".join(first_words) in shown, sid


def test_the_readme_links_the_catalogue():
    assert "docs/SCENARIOS.md" in (ROOT / "README.md").read_text()
