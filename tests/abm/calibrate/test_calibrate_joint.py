"""The joint simulator's therapy-arm readouts (abm.calibrate.joint): ``<metric>_benefit`` is
the untreated arm minus the treated one over the window, a ratio of two therapy arms divides
their benefits with the sign rule of a non-positive denominator, and therapy arms are computed
only when asked (the predictive check), with one phrase saying why otherwise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm.calibrate.joint import JointSimulator, benefit_ratio
from abm.calibrate.targets import load_targets

TINY = ["lattice.shape=[60,40]", "lattice.dx_um=25", "sim.days=30", "sim.spinup_days=0"]


def runs(oa, naive, primed):
    day = np.arange(0, 31, 1.0)

    def frame(level):
        return pd.DataFrame({"day": day, "tnf_fluid": np.full(len(day), level)})

    return {"oa": frame(oa), "oa_msc": frame(naive), "oa_msc_primed": frame(primed)}


@pytest.fixture(scope="module")
def c6():
    targets = load_targets()
    sim = JointSimulator(targets, TINY, therapy=True)
    return sim, next(t for t in targets if t.id == "C6_primed")


def test_therapy_arms_only_when_asked(c6):
    targets = load_targets()
    plain = JointSimulator(targets, TINY)
    t = c6[1]
    assert "computed only in the predictive check" in plain.why_not(t)
    assert "oa_msc" not in plain.arms
    sim = c6[0]
    assert sim.why_not(t) is None
    assert {"oa", "oa_msc", "oa_msc_primed"} <= set(sim.arms)


@pytest.mark.parametrize(
    ("oa", "naive", "primed", "want"),
    [
        (1.0, 0.8, 0.6, 2.0),  # primed cuts TNF twice as much
        (1.0, 0.8, 0.9, 0.5),
        (1.0, 1.2, 0.9, math.inf),  # naive harms, primed helps: primed protects more
        (1.0, 1.0, 1.0, 0.0),  # no benefit at all: not "more"
        (1.0, 1.0, 1.3, 0.0),
    ],
)
def test_benefit_ratio(c6, oa, naive, primed, want):
    sim, t = c6
    r = runs(oa, naive, primed)
    num, den = (sim._benefit(r, a, t) for a in t.arms)
    assert num == pytest.approx(oa - primed) and den == pytest.approx(oa - naive)
    assert benefit_ratio(num, den) == pytest.approx(want)
