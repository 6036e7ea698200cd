"""``junit.xml``: one test suite per upgrade path, so a CI dashboard fails exactly where the verdict blocks.

A path's suite ("A -> B") has a case per cell of B, per relay artifact of A loaded on B
(``relay:<family>:<format>:<model>``) and per scenario whose records changed (``drift:<scenario>``). A case fails
exactly when a blocking reason of that verdict covers it, with the reason's summary and its exact error: a cell
that fails on A and B alike is no failure of the upgrade. Warnings, waivers and notes go to ``<system-out>``.
Environments that are the candidate of no path get a plain suite, one case per cell, failing as the cell did.
Every attribute and text is cleaned of control characters: XML 1.0 refuses them, and a refused file hides it all.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from harness.judge import Reason, Verdict
from harness.judge.reasons import is_pseudo
from harness.report.cleaning import clean
from harness.report.common import ordered
from harness.results import EnvironmentResult

__all__ = ["case_names", "render_junit"]

ENVIRONMENT_CASE = "environment"
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
_ERRORS = ("error", "crash", "timeout", "env-error")


def xml_text(value: object) -> str:
    """Text XML 1.0 accepts: ``clean_text`` plus the surrogates and non-characters JSON may still carry."""
    cleaned = clean(str(value))
    return cleaned if cleaned.isascii() else _NOT_XML.sub("", cleaned)


@dataclass
class Case:
    """One test case before it becomes XML: what it is, how it ended, and what else the verdict says about it."""

    name: str
    time: float = 0.0
    result: str = "pass"  # pass, failure, error, skipped
    message: str = ""
    text: str = ""
    out: list[str] = field(default_factory=list)


def case_names(reason: Reason) -> list[str]:
    """The test cases of a path's suite that ``reason`` covers."""
    if any(is_pseudo(s) for s in reason.scenarios):
        return [ENVIRONMENT_CASE]
    if reason.kind == "relay" or any(s.startswith("relay:") for s in reason.scenarios):
        return _relay_names(reason)
    if reason.records and reason.kind != "regression":
        return list(dict.fromkeys(f"drift:{key.partition('::')[0]}" for key in reason.records))
    return list(reason.scenarios)


def _relay_names(reason: Reason) -> list[str]:
    """``relay:<family>:<format>:<model>`` for each record ``relay:<family>:<format>::<model>`` of the reason."""
    names = []
    for scenario in reason.scenarios:
        models = [key.partition("::")[2] for key in reason.records if key.partition("::")[0] == scenario]
        names += [f"{scenario}:{model}" for model in models] or [scenario]
    return names


def _cell_cases(verdict: Verdict, cand: EnvironmentResult) -> dict[str, Case]:
    cases = {}
    for cell in cand.scenarios:
        case = Case(cell.id, cell.duration_s or 0.0)
        if cell.status in ("skip", "env-error"):
            case.result, case.message = "skipped", f"{cell.status}: {cell.message}"[:500]
        elif cell.status != "pass":
            case.out.append(f"{cell.status} on {verdict.candidate} (not blocking the upgrade): {cell.message}")
        cases[cell.id] = case
    for sid in verdict.missing.get(verdict.candidate, []):
        cases.setdefault(sid, Case(sid, result="skipped", message=f"not run on {verdict.candidate}: missing"))
    return cases


def _relay_cases(verdict: Verdict, cand: EnvironmentResult) -> dict[str, Case]:
    cases = {}
    for row in cand.relay:
        if row.producer != verdict.baseline:
            continue
        case = Case(f"relay:{row.family}:{row.format}:{row.model}", row.duration_s or 0.0)
        if row.outcome == "skip":
            case.result, case.message = "skipped", row.message[:500]
        else:
            case.out.append(f"{row.outcome} {row.how} {row.error}".strip())
        cases[case.name] = case
    return cases


def _apply(cases: dict[str, Case], reason: Reason) -> None:
    for name in case_names(reason):
        case = cases.setdefault(name, Case(name))
        if reason.severity != "no-go":
            case.out.append(f"{reason.severity} [{reason.kind}]: {reason.summary}")
            continue
        detail = f"{reason.error}\n\nre-run: {reason.reproduce}".strip()
        if case.result != "failure":
            case.result, case.message, case.text = "failure", reason.summary, detail
        else:
            case.text += f"\n\n{reason.summary}\n{detail}"


def path_cases(verdict: Verdict, docs: dict[str, EnvironmentResult]) -> list[Case]:
    """Every case of a path's suite, with the verdict's reasons applied."""
    cand = docs.get(verdict.candidate)
    cases = {**_cell_cases(verdict, cand), **_relay_cases(verdict, cand)} if cand else {}
    for reason in verdict.reasons:
        if reason.records and reason.kind != "regression":
            for name in case_names(reason):
                cases.setdefault(name, Case(name))
    for reason in verdict.reasons:
        _apply(cases, reason)
    return list(cases.values())


def plain_cases(doc: EnvironmentResult) -> list[Case]:
    """An environment no path judges: its cells as they ended (fail is a failure, crash or timeout an error)."""
    cases = []
    for cell in doc.scenarios:
        first = (clean(cell.message).splitlines() or [""])[0][:500]
        case = Case(cell.id, cell.duration_s or 0.0, message=first)
        if cell.status == "fail":
            case.result, case.text = "failure", cell.message
        elif cell.status in _ERRORS:
            case.result, case.text = "error", cell.traceback or cell.message
        elif cell.status == "skip":
            case.result = "skipped"
        cases.append(case)
    return cases


def _suite(root: ET.Element, name: str, classname: str, cases: list[Case], verdict: str = "") -> None:
    counts = {kind: str(sum(c.result == kind for c in cases)) for kind in ("failure", "error", "skipped")}
    suite = ET.SubElement(
        root,
        "testsuite",
        name=xml_text(name),
        tests=str(len(cases)),
        failures=counts["failure"],
        errors=counts["error"],
        skipped=counts["skipped"],
    )
    if verdict:
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="verdict", value=verdict)
    for case in cases:
        element = ET.SubElement(
            suite, "testcase", classname=xml_text(classname), name=xml_text(case.name), time=f"{case.time:.3f}"
        )
        if case.result != "pass":
            child = ET.SubElement(element, case.result, message=xml_text(case.message[:1000]))
            if case.result != "skipped":
                child.set("type", xml_text(case.result))
                child.text = xml_text(case.text)
        if case.out:
            ET.SubElement(element, "system-out").text = xml_text("\n".join(case.out))


def render_junit(
    docs: dict[str, EnvironmentResult], order: list[str] | None = None, verdicts: list[Verdict] | None = None
) -> str:
    """One suite per upgrade path, then one per environment that is the candidate of no path."""
    root = ET.Element("testsuites", name="compat-matrix")
    judged = list(verdicts or [])
    for verdict in judged:
        name = f"{verdict.baseline} -> {verdict.candidate}"
        classname = f"compat-matrix.{verdict.baseline}__{verdict.candidate}"  # a label, never a path
        _suite(root, name, classname, path_cases(verdict, docs), verdict.verdict)
    candidates = {v.candidate for v in judged}
    for env in ordered(docs, order):
        if env not in candidates:
            _suite(root, env, f"compat-matrix.{env}", plain_cases(docs[env]))
    for kind in ("tests", "failures", "errors", "skipped"):
        root.set(kind, str(sum(int(suite.get(kind, "0")) for suite in root)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
