"""Judging: from a path's ledger (``harness.ledger``), the waivers and the date to a verdict, as a pure function.

``reasons`` groups what the ledger measured into one reason per root cause (``records`` and ``relay`` hold the
rules for drift and for cross-version loads); ``policy`` applies waivers and decides GO / GO-WITH-WARNINGS / NO-GO /
INCOMPLETE.
"""

from harness.judge.policy import EXIT_CODES, Verdict, judge, verdict_schema
from harness.judge.reasons import Reason

__all__ = ["EXIT_CODES", "Reason", "Verdict", "judge", "verdict_schema"]
