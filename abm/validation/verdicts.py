"""The rows of the validation table (``validation_results.csv``) and how verdicts are graded.

Data flow: the target checks (c1.py ... c7.py) turn readouts of the runs and rules into rows
with :func:`row` -> report.py collects them into one table (columns :data:`COLUMNS`).
"""

from __future__ import annotations

import math
from typing import Any

COLUMNS = ("target", "check", "arm", "value", "unit", "expected", "verdict")
# "" marks an informational row (a number quoted in docs/validation.md, no verdict of its own);
# "n/a" a row without a value (its window lies outside the runs, or the event never happened)
VERDICTS = frozenset(
    {
        "met",
        "partly",
        "partly (no collagen loss yet)",
        "marginal (<5%)",
        "outside",
        "not met",
        "",
        "n/a",
    }
)

Row = dict[str, Any]


def row(
    target: str, check: str, arm: str, value: Any, expected: str, verdict: str, unit: str = ""
) -> Row:
    """One table row; a NaN ``value`` gets the verdict ``"n/a"``."""
    value = float(value)
    if math.isnan(value):
        verdict = "n/a"
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {sorted(VERDICTS)}")
    return {
        "target": target,
        "check": check,
        "arm": arm,
        "value": value,
        "unit": unit,
        "expected": expected,
        "verdict": verdict,
    }


def in_range(value: float, lo: float, hi: float, slack: float = 3.0) -> str:
    """``met`` inside [lo, hi], ``partly`` within ``slack``x of it, else ``not met``."""
    if lo <= value <= hi:
        return "met"
    return "partly" if lo / slack <= value <= hi * slack else "not met"


def steady(drift: float) -> str:
    """A ratio of two window means: ``met`` within 10% of 1 (quasi-steady)."""
    return "met" if 0.9 <= drift <= 1.1 else "not met"
