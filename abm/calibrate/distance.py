"""The calibration distance: simulated readouts against the targets, on a log10 scale.

Data flow: a simulator's readouts ``{target id: value}`` (:mod:`abm.calibrate.toy`,
:mod:`abm.calibrate.joint`) + the targets (:mod:`abm.calibrate.targets`) -> :func:`excess`
per target (how far outside its band, in units of its tolerance) -> :func:`distance` (the root
mean square of the excesses) -> pyabc's acceptance (:mod:`abm.calibrate.abc`) and the
posterior-predictive verdicts.

For a target with band ``[lo, hi]`` (``lo = value / 10**tol``, ``hi = value * 10**tol``; an
interval ``[lower / 10**tol, upper * 10**tol]``), tolerance ``tol`` decades and a simulated
value ``s`` (``x = log10 s``)::

    level, interval, ratio:  e = max(0, log10 lo - x, x - log10 hi) / tol
    censored_upper (< L):    e = max(0, x - log10 L) / tol
    censored_lower (> L):    e = max(0, log10 L - x) / tol
    qualitative:             e = 2 (1 - clip(s, 0, 1))    (s: fraction of checks that hold)

    D = sqrt( sum_i e_i**2 / n )

Inside its band a target contributes exactly 0: the targets are measurements whose spread
across cohorts is the tolerance, and no point inside it is preferred (so the ABC posterior,
as epsilon reaches 0, is the prior restricted to the parameters that meet every target).
A wholly failed qualitative pattern counts as two tolerances outside.

Non-positive simulated levels (a field that decayed to 0, a count of 0): ``s`` is floored at
``FLOOR_DECADES`` (6) decades below the band's lower edge (or below L), so the excess stays
finite and still ranks such particles as far off; a censored_upper target is met by any
``s <= L``, 0 included. A non-finite readout (NaN, inf: a failed simulation) or a missing one
makes the distance ``inf`` (the particle is rejected).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from abm.calibrate.targets import Target

FLOOR_DECADES = 6.0
QUALITATIVE_SCALE = 2.0  # excess of a wholly failed qualitative pattern, in tolerances


def _log10_floored(s: float, ref: float) -> float:
    """log10 of ``s``, floored at FLOOR_DECADES below log10 ``ref`` (``ref`` > 0)."""
    floor = math.log10(ref) - FLOOR_DECADES
    return floor if s <= 0 else max(math.log10(s), floor)


def excess(target: Target, sim: float) -> float:
    """How far ``sim`` lies outside ``target``'s band, in units of its tolerance (0 inside;
    inf for a non-finite ``sim``). See the module docstring for the formula."""
    s = float(sim)
    if not math.isfinite(s):
        return math.inf
    kind = target.kind
    if kind == "qualitative":
        return QUALITATIVE_SCALE * (1.0 - min(max(s, 0.0), 1.0))
    if kind == "censored_upper":
        lim = target.value
        return 0.0 if s <= lim else (math.log10(s) - math.log10(lim)) / target.tol
    if kind == "censored_lower":
        lim = target.value
        return max(0.0, math.log10(lim) - _log10_floored(s, lim)) / target.tol
    lo, hi = target.band
    x = _log10_floored(s, lo)
    return max(0.0, math.log10(lo) - x, x - math.log10(hi)) / target.tol


def distance(targets: Sequence[Target], readouts: Mapping[str, Any]) -> float:
    """Root mean square of the targets' excesses (:func:`excess`) for ``readouts``
    (``{target id: simulated value}``); inf when a target's readout is missing or not finite;
    0 for no targets."""
    if not targets:
        return 0.0
    total = 0.0
    for t in targets:
        if t.id not in readouts:
            return math.inf
        try:
            e = excess(t, float(readouts[t.id]))
        except (TypeError, ValueError):
            return math.inf
        if not math.isfinite(e):
            return math.inf
        total += e * e
    return math.sqrt(total / len(targets))


class TargetDistance:
    """The distance as pyabc calls it: ``d(x, x_0)`` with ``x`` the simulated readouts; the
    targets are held here (``x_0``, the observed statistics pyabc stores, is not used)."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = list(targets)

    def __call__(self, x: Mapping[str, Any], x_0: Mapping[str, Any] | None = None) -> float:
        return distance(self.targets, x)


def verdict(target: Target, sim: float) -> str:
    """``within band``, ``outside band (low)``/``(high)``, ``pattern fails`` or ``no value``."""
    s = float(sim)
    if math.isnan(s):
        return "no value"
    if s == math.inf and target.kind == "censored_lower":  # a ratio over 0: "more than any"
        return "within band"
    if excess(target, s) == 0:
        return "within band"
    if target.kind == "qualitative":
        return "pattern fails"
    lo, _ = target.band
    return (
        "outside band (low)"
        if (target.kind == "censored_lower" or s < lo)
        else ("outside band (high)")
    )
