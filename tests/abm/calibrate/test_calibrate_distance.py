"""The calibration distance (abm.calibrate.distance) against hand-computed values: zero inside
a band, the excess beyond it in tolerances, censoring both ways, the floor of non-positive
levels, qualitative patterns, and the root mean square over targets."""

from __future__ import annotations

import itertools
import math

import pytest

from abm.calibrate.distance import FLOOR_DECADES, TargetDistance, distance, excess, verdict
from abm.calibrate.targets import Target

NAN = math.nan


def target(kind: str, value=NAN, lower=NAN, upper=NAN, tol=0.5, tid="t") -> Target:
    return Target(
        id=tid,
        readout="r",
        arm="a",
        window=None,
        kind=kind,
        value=value,
        lower=lower,
        upper=upper,
        unit="pg/mL",
        tol=tol,
        species="s",
        source="s",
        role="calibrate",
    )


def test_level_zero_inside_and_tolerances_beyond():
    t = target("level", 100.0, tol=0.5)  # band 10**1.5 .. 10**2.5
    for s in (100.0, 10**1.5 * 1.0001, 10**2.5 * 0.9999, 50.0):
        assert excess(t, s) == 0.0
    assert excess(t, 1000.0) == pytest.approx(1.0)  # (3 - 2.5) / 0.5
    assert excess(t, 1e4) == pytest.approx(3.0)
    assert excess(t, 1.0) == pytest.approx(3.0)  # (1.5 - 0) / 0.5
    assert excess(t, 10.0) == pytest.approx(1.0)


def test_interval_band_from_lower_and_upper():
    t = target("interval", lower=1.14, upper=28.0, tol=0.5)
    assert excess(t, 0.5) == 0.0 and excess(t, 80.0) == 0.0
    expected = (math.log10(1.14 / 10**0.5) - math.log10(0.1)) / 0.5
    assert excess(t, 0.1) == pytest.approx(expected)
    assert excess(t, 280.0 * 10**0.5) == pytest.approx(2.0)  # one decade above hi = 2 tol


def test_censored_upper_below_limit_is_zero_above_grows():
    t = target("censored_upper", 1.0, tol=0.5)  # detection limit 1 pg/mL
    for s in (0.0, -3.0, 1e-9, 0.5, 1.0):
        assert excess(t, s) == 0.0
    e = [excess(t, s) for s in (2.0, 10.0, 100.0, 1e4)]
    assert e == pytest.approx([math.log10(2) / 0.5, 2.0, 4.0, 8.0])
    assert all(b > a > 0 for a, b in itertools.pairwise(e))


def test_censored_lower_above_limit_is_zero_below_grows():
    t = target("censored_lower", 1.0, tol=0.5)
    for s in (1.0, 2.0, 1e6):
        assert excess(t, s) == 0.0
    e = [excess(t, s) for s in (0.5, 0.1, 0.01)]
    assert e == pytest.approx([math.log10(2) / 0.5, 2.0, 4.0])
    # non-positive: floored FLOOR_DECADES below the limit, finite and the largest
    assert excess(t, 0.0) == pytest.approx(FLOOR_DECADES / 0.5)
    assert excess(t, -5.0) == excess(t, 0.0) > excess(t, 1e-5)


def test_non_positive_levels_are_floored_not_infinite():
    t = target("level", 100.0, tol=0.5)
    floor = (FLOOR_DECADES) / 0.5  # lo = 10**1.5, floor 6 decades below it
    assert excess(t, 0.0) == pytest.approx(floor)
    assert excess(t, -1.0) == pytest.approx(floor)
    assert excess(t, 1e-30) == pytest.approx(floor)


def test_qualitative_and_non_finite():
    t = target("qualitative", 1.0, tol=NAN)
    assert [excess(t, s) for s in (1.0, 0.5, 0.0, 2.0, -1.0)] == [0.0, 1.0, 2.0, 0.0, 2.0]
    assert excess(target("level", 1.0), NAN) == math.inf
    assert excess(target("censored_upper", 1.0), math.inf) == math.inf


def test_distance_is_root_mean_square():
    a = target("level", 100.0, tid="a")
    b = target("censored_upper", 1.0, tid="b")
    c = target("censored_lower", 1.0, tid="c")
    ts = [a, b, c]
    # a: 1 tolerance above; b: 2 above the limit; c: inside
    assert distance(ts, {"a": 1000.0, "b": 10.0, "c": 5.0}) == pytest.approx(math.sqrt(5 / 3))
    assert distance(ts, {"a": 100.0, "b": 0.1, "c": 5.0}) == 0.0
    assert distance(ts, {"a": 100.0, "b": 0.1}) == math.inf  # c missing
    assert distance(ts, {"a": NAN, "b": 0.1, "c": 5.0}) == math.inf
    assert distance([], {}) == 0.0
    assert TargetDistance(ts)({"a": 1000.0, "b": 10.0, "c": 5.0}, {}) == pytest.approx(
        math.sqrt(5 / 3)
    )


def test_verdicts():
    t = target("level", 100.0)
    assert verdict(t, 100.0) == "within band"
    assert verdict(t, 1.0) == "outside band (low)"
    assert verdict(t, 1e5) == "outside band (high)"
    assert verdict(target("censored_upper", 1.0), 3.0) == "outside band (high)"
    assert verdict(target("censored_lower", 1.0), 0.3) == "outside band (low)"
    assert verdict(target("qualitative", 1.0, tol=NAN), 0.0) == "pattern fails"
    assert verdict(t, NAN) == "no value"
