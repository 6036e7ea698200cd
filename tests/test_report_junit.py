"""junit.xml: one suite per upgrade path whose failures are exactly the verdict's blocking reasons; always valid XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import report
from tests.factories import cell, env_doc
from tests.report_factories import A1, A2, BROKEN_ENV, ORDER, SEGV, T1, T2, B, reason, small_docs, small_verdicts
from tests.report_factories import verdict as make_verdict


@pytest.fixture
def small(tmp_path):
    run_dir = tmp_path / "run"
    return small_docs(run_dir), small_verdicts()


def parse(xml: str) -> ET.Element:
    assert xml.startswith("<?xml version='1.0' encoding='utf-8'?>\n")
    return ET.fromstring(xml.encode("utf-8"))


def suites(xml: str) -> dict[str, ET.Element]:
    return {s.get("name"): s for s in parse(xml).findall("testsuite")}


def failed(suite: ET.Element) -> set[str]:
    return {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None}


def test_one_suite_per_path_then_environments_no_path_judges(small):
    docs, verdicts = small
    names = list(suites(report.render_junit(docs, ORDER, verdicts)))
    paths = [f"{A1} -> {B}", f"{A2} -> {B}", f"{B} -> {BROKEN_ENV}", f"{T1} -> {T2}"]
    assert names == [*paths, A1, A2, T1]  # B, broken and torch2.13 are candidates: judged only in their paths


def test_failures_are_exactly_the_blocking_reasons(small):
    docs, verdicts = small
    got = suites(report.render_junit(docs, ORDER, verdicts))
    main = got[f"{A1} -> {B}"]
    # the four no-go reasons of A1 -> B: a regression, a drift, two h5 models, one keras model needing a fallback
    assert failed(main) == {
        "a.two",
        "drift:a.one",
        "relay:keras:h5:functional",
        "relay:keras:h5:sequential",
        "relay:keras:keras:functional",
    }
    assert main.get("failures") == "5" and main.get("errors") == "0"
    assert failed(got[f"{A2} -> {B}"]) == set()  # GO-WITH-WARNINGS: nothing fails
    assert failed(got[f"{B} -> {BROKEN_ENV}"]) == {"environment"}
    assert failed(got[f"{T1} -> {T2}"]) == set()  # INCOMPLETE is no failure of any case
    assert main.find("properties/property[@name='verdict']").get("value") == "NO-GO"


def test_a_path_suite_has_cells_relay_artifacts_and_drift_cases(small):
    docs, verdicts = small
    main = suites(report.render_junit(docs, ORDER, verdicts))[f"{A1} -> {B}"]
    names = [c.get("name") for c in main.findall("testcase")]
    cells = ["a.one", "a.two", "a.three", "b.four", "c.five", "a.six"]
    relay = ["relay:keras:h5:sequential", "relay:keras:h5:functional", "relay:keras:keras:sequential"]
    relay += ["relay:keras:keras:functional"]  # only what A1 saved: A2's artifact belongs to A2 -> B
    assert names == [*cells, *relay, "drift:a.one", "drift:b.four"]
    assert main.get("tests") == "12"


def test_a_failure_carries_the_reason_summary_and_the_exact_error(small):
    docs, verdicts = small
    main = suites(report.render_junit(docs, ORDER, verdicts))[f"{A1} -> {B}"]
    crash = main.find("testcase[@name='a.two']/failure")
    assert crash.get("message") == f"passes on {A1}, crash on {B}"
    assert crash.text.startswith(SEGV) and "re-run: COMPAT_RUN_ID=run ./cm -s x -- -k 'a.two'" in crash.text
    h5 = main.find("testcase[@name='relay:keras:h5:sequential']/failure")
    assert h5.get("message") == "keras h5: 2 model(s) load-error" and h5.text.startswith("TypeError: bad config")


def test_warnings_waivers_and_shared_failures_go_to_system_out(small):
    docs, verdicts = small
    main = suites(report.render_junit(docs, ORDER, verdicts))[f"{A1} -> {B}"]
    four = main.find("testcase[@name='drift:b.four']")
    assert four.find("failure") is None
    out = four.find("system-out").text
    assert "warning [drift-within]: y: max abs 1e-07" in out and "waived [drift]" in out
    shared = main.find("testcase[@name='a.three']")  # fails on A1 and on B alike: not the upgrade's fault
    assert shared.find("failure") is None and "fail on tf2.21-keras3" in shared.find("system-out").text
    assert main.find("testcase[@name='a.six']/skipped") is not None


def test_missing_and_unprovisioned_cells_are_skips(small):
    docs, verdicts = small
    got = suites(report.render_junit(docs, ORDER, verdicts))
    incomplete = got[f"{T1} -> {T2}"]
    missing = incomplete.find("testcase[@name='t.two']")
    assert missing.find("skipped").get("message") == f"not run on {T2}: missing"
    assert "info [incomplete]" in missing.find("system-out").text
    broken = got[f"{B} -> {BROKEN_ENV}"]
    assert {c.get("name") for c in broken.findall("testcase[skipped]")} == {"a.one", "a.two"}


def test_environments_no_path_judges_fail_as_their_cells_did(small):
    docs, verdicts = small
    plain = suites(report.render_junit(docs, ORDER, verdicts))[A1]
    assert failed(plain) == {"a.three", "c.five"} and plain.get("failures") == "2"
    assert plain.find("testcase[@name='a.three']/failure").get("message") == "assert 1 == 2 on both"


def test_without_verdicts_every_environment_is_a_plain_suite(small):
    docs, _ = small
    got = suites(report.render_junit(docs, ORDER))
    assert list(got) == ORDER
    assert got[B].get("errors") == "1" and got[BROKEN_ENV].get("errors") == "2"
    assert got[B].find("testcase[@name='a.two']/error").get("message") == "worker killed by SIGSEGV"


DIRTY = "\x1b[31mred\x1b[0m \x00nul\x0bvt\x0c 🚀 \ud800 end"


def test_control_characters_never_reach_the_xml(tmp_path):
    docs = {
        A1: env_doc(tmp_path, A1, [cell("a.one")]),
        B: env_doc(tmp_path, B, [cell("a.one", "fail", DIRTY)]),
        "plain": env_doc(tmp_path, "plain", [cell("a.one", "error", DIRTY)]),
    }
    evil = reason("no-go", "regression", ["a.one"], DIRTY, error=DIRTY, reproduce=DIRTY)
    xml = report.render_junit(docs, [A1, B, "plain"], [make_verdict(A1, B, "NO-GO", [evil])])
    root = parse(xml)
    failure = root.find("testsuite/testcase[@name='a.one']/failure")
    assert failure.get("message") == "red nulvt 🚀  end"
    assert "\x1b" not in xml and "\x00" not in xml and "\x0b" not in xml and "\ud800" not in xml
    assert root.find("testsuite[@name='plain']/testcase/error").get("message") == "red nulvt 🚀  end"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=80))
def test_any_text_gives_parseable_xml(text):
    evil = reason("no-go", "drift", [f"s{text}"], text, error=text, records=[f"s{text}::r{text}"])
    warn = reason("warning", "relay", [f"relay:keras:{text}"], text, records=[f"{text}::m"])
    xml = report.render_junit({}, [], [make_verdict(f"a{text}", f"b{text}", "NO-GO", [evil, warn])])
    suite = parse(xml).find("testsuite")
    assert suite.get("failures") == "1" and len(suite.findall("testcase")) == 2


def test_failures_of_a_judged_path_land_on_the_artifacts_the_verdict_blocks(tmp_path):
    """Through the real judge (not hand-made reasons): the relay failure sits on the failing model's case."""
    from harness.drift import load_arrays
    from harness.judge import judge
    from harness.ledger import measure_path
    from tests.factories import relay_row

    rows = [
        relay_row("A", "B", "load-error", model="functional", error_class="TypeError", message="bad"),
        relay_row("A", "B", "loaded", model="sequential"),
    ]
    base, cand = env_doc(tmp_path, "A", [cell("a.x")]), env_doc(tmp_path, "B", [cell("a.x")], relay=rows)
    verdict = judge(measure_path(base, cand, (load_arrays(tmp_path, base), load_arrays(tmp_path, cand))))
    root = ET.fromstring(report.render_junit({"A": base, "B": cand}, ["A", "B"], [verdict]))
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "A -> B")
    failing = sorted(c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None)
    assert failing == ["relay:keras:keras:functional"]
    assert suite.find("testcase[@name='relay:keras:keras:sequential']") is not None
