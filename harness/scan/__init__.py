"""``scan``: which lines of the user's code break when moving from environment A to environment B.

``extract`` reads the user's files statically, ``probe`` asks each environment about every symbol they use (one
prober process per environment, cached), ``findings`` compares the two answers per line, ``format`` shows them;
``harness.judge.scan`` turns findings into verdict reasons for ``gonogo --scan``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.matrix import Matrix
from harness.scan.extract import extract
from harness.scan.findings import compare, counts, request_of
from harness.scan.model import Finding, ScanReport
from harness.scan.probe import DEFAULT_TIMEOUT, probe_environment

__all__ = ["DEFAULT_TIMEOUT", "Finding", "ScanReport", "run_scan"]


def run_scan(
    matrix: Matrix,
    paths: Sequence[str],
    baseline: str,
    candidate: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    use_cache: bool = True,
    venv_root: Path | None = None,
    cache_root: Path | None = None,
) -> ScanReport:
    """Extract, probe A then B (one environment at a time), compare."""
    for name in (baseline, candidate):
        matrix.environment(name)  # an unknown name is a usage error before anything is read or provisioned
    extraction = extract(paths)
    request = request_of(extraction)
    answer_a, answer_b = (
        probe_environment(
            matrix, name, request, timeout=timeout, use_cache=use_cache, venv_root=venv_root, cache_root=cache_root
        )
        for name in (baseline, candidate)
    )
    findings = compare(extraction, answer_a, answer_b)
    return ScanReport(
        baseline=baseline,
        candidate=candidate,
        findings=tuple(findings),
        unchecked=extraction.unchecked,
        not_scanned=extraction.not_scanned,
        files=extraction.files,
        counts=counts(extraction, answer_a, answer_b, findings),
        seconds={baseline: answer_a.seconds, candidate: answer_b.seconds},
        reused={baseline: answer_a.reused, candidate: answer_b.reused},
        versions={baseline: answer_a.versions, candidate: answer_b.versions},
    )
