"""Scenario outcomes (docs/ODD.md 2.5) at small scale (small lattice, dt = 10 min)."""

from __future__ import annotations

import numpy as np

import abm


def final(small, days, *overrides, seed=0):
    m = abm.JointModel(abm.compose([*small, f"seed={seed}", *overrides]))
    return m.run(days=days)


def test_healthy_keeps_matrix_and_stays_quiet(small):
    df = final(small, 14, "scenario=healthy", "therapy=none")
    assert df["cartilage_agg"].iloc[-1] > 0.9
    assert df["cartilage_col2"].iloc[-1] > 0.99
    oa = final(small, 3, "scenario=oa", "therapy=none")
    # C1: healthy fluid cytokines several-fold lower than in OA
    for name in ("il6_fluid", "il1b_fluid", "ccl2_fluid"):
        assert df[name].iloc[-1] < 0.3 * oa[name].iloc[-1], name


def test_oa_loses_aggrecan_over_weeks_before_collagen(small):
    df = final(small, 21, "scenario=oa", "therapy=none")
    agg = df["cartilage_agg"].to_numpy()
    week = len(df) // 3
    assert agg[-1] < agg[week] < agg[0]  # slow matrix (biology v2: ~10% a year)
    healthy = final(small, 21, "scenario=healthy", "therapy=none")["cartilage_agg"].to_numpy()
    assert 1.0 - agg[-1] > 2.0 * (1.0 - healthy[-1])  # OA loses it faster than a healthy joint
    # C7: aggrecan goes first; collagen II only where aggrecan is nearly gone
    col2 = df["cartilage_col2"].to_numpy()
    assert col2[week] > 0.99
    assert df["macrophage_m1"].iloc[-1] > df["macrophage_m2"].iloc[-1]


def test_msc_in_oa_means_fewer_m1_and_less_il1b(small):
    """C5 at small scale, two seeds: the treated arm ends below the untreated one, by the
    margin set for the hand-set values (biology=handset); the calibrated defaults below."""
    for seed in (0, 1):
        oa = final(small, 5, "scenario=oa", "therapy=none", "biology=handset", seed=seed).iloc[-1]
        msc = final(
            small, 5, "scenario=oa", "therapy=msc", "therapy.day=1", "biology=handset", seed=seed
        ).iloc[-1]
        assert msc["macrophage_m1"] < 0.7 * oa["macrophage_m1"]
        assert msc["il1b_fluid"] < oa["il1b_fluid"]
        assert msc["cartilage_agg"] > oa["cartilage_agg"]
        assert np.isfinite(msc.to_numpy(dtype=float)).all()


def test_msc_in_oa_with_the_calibrated_defaults_goes_the_c5_way(small):
    """C5 (docs/ODD.md: M1 -> M2, less IL-1β, slower aggrecan loss) with the declared
    (calibrated) values, two seeds, paired: every readout moves the C5 way in every seed. No
    margin: the size of the effect is judged by the 6-seed experiment (docs/validation.md
    "Calibration"). The shift toward M2 is asserted on the spectrum (mean p down): at this
    scale no macrophage crosses the M2 threshold by day 5 in either arm (a miss the docs
    report)."""
    for seed in (0, 1):
        oa = final(small, 5, "scenario=oa", "therapy=none", seed=seed).iloc[-1]
        msc = final(small, 5, "scenario=oa", "therapy=msc", "therapy.day=1", seed=seed).iloc[-1]
        assert msc["macrophage_m1"] < oa["macrophage_m1"]
        assert msc["macrophage_p_mean"] < oa["macrophage_p_mean"]
        assert msc["il1b_fluid"] < oa["il1b_fluid"]
        assert msc["cartilage_agg"] > oa["cartilage_agg"]
