"""Virtual trial analysis (abm.trial.analysis): the pure rules on hand-computed numbers, and the
tables built from them (paired changes, seed means, acceptance, rates)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm.trial.analysis import (
    arm_outcomes,
    baseline_table,
    classify,
    effusion_table,
    patient_outcomes,
    plausible,
    relative_change,
    responder_rates,
    snap_day,
    wilson_interval,
)
from abm.trial.population import parse_spec

RAW = {
    "trial": {
        "size": 3,
        "seeds": 2,
        "baseline_days": 1.0,
        "followup_days": 10.0,
        "features": {
            "sf": {"key": "patient.sf_volume_ml", "dist": "loguniform", "low": 2.0, "high": 25.0}
        },
        "arms": {"none": {"therapy": "none"}, "msc": {"therapy": "msc", "dose": 1.0e7}},
        "plausibility": {
            "window_days": 1.0,
            "tolerance_log10": 0.5,
            "readouts": {
                "il6_fluid": {"cohort_low_pg_ml": 975.0, "cohort_high_pg_ml": 975.0},
                "tnf_fluid": {
                    "cohort_low_pg_ml": 2.92,
                    "cohort_high_pg_ml": 50.0,
                    "enforce": False,
                },
            },
        },
        "responder": {
            "day": 10.0,
            "window_days": 1.0,
            "pain_metric": "pain_index",
            "pain_max_rel_change": -0.2,
            "synovitis_metric": "synovitis_score",
            "synovitis_max_abs_change": 0.0,
        },
        "analysis": {"effusion_arm": "msc", "bootstrap_resamples": 20},
    }
}


def test_relative_change_and_an_untreated_zero():
    got = relative_change([8.0, 12.0, 5.0, 1.0, np.nan], [10.0, 10.0, 0.0, 4.0, 3.0])
    assert got[0] == pytest.approx(-0.2)
    assert got[1] == pytest.approx(0.2)
    assert np.isnan(got[2])  # untreated 0: no relative change
    assert got[3] == pytest.approx(-0.75)
    assert np.isnan(got[4])


def test_classify_hand_computed_cases():
    pain = [-0.20, -0.25, -0.19, -0.5, -0.5, np.nan, -0.2 - 1e-12, -0.1999]
    syn = [0.0, -1.0, -1.0, 0.5, 0.0, -1.0, 0.0, 0.0]
    got = classify(pain, syn, -0.2, 0.0)
    # exactly -20% with synovitis equal: responder; -19%: no; synovitis worse: no; NaN: no
    assert got.tolist() == [True, True, False, False, True, False, True, False]


def test_classify_exactly_minus_20_percent_from_readouts():
    # 8 vs 10 is -20% up to rounding (8/10 - 1 = -0.19999999999999996): still a responder
    rel = relative_change(8.0, 10.0)
    assert classify(rel, 0.0).item() is True
    assert classify(relative_change(8.01, 10.0), 0.0).item() is False


def test_classify_other_thresholds():
    assert classify(-0.3, 0.4, -0.3, 0.5).item() is True
    assert classify(-0.29, 0.4, -0.3, 0.5).item() is False
    assert classify(-0.3, 0.6, -0.3, 0.5).item() is False


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-15) and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-4)
    # 1/2 hand-computed: z = 1.959964, centre 0.5, half = z*sqrt(0.125+z²/16)/(1+z²/2)
    z = 1.959963984540054
    half = z * math.sqrt(0.25 / 2 + z * z / 16) / (1 + z * z / 2)
    assert wilson_interval(1, 2) == pytest.approx((0.5 - half, 0.5 + half))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    # the interval holds the observed rate exactly, also at k = 0 and k = n (where rounding
    # once put the lower edge a hair above 0 and broke the error bars of the dose figure)
    for n in range(1, 60):
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert lo <= k / n <= hi, (k, n)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_plausible_band_is_half_a_decade_beyond_the_cohort_range():
    lo, hi = 975 / 10**0.5, 975 * 10**0.5  # 308.3, 3083
    got = plausible([lo, hi, lo * 0.99, hi * 1.01, np.nan, 975.0], 975.0, 975.0, 0.5)
    assert got.tolist() == [True, True, False, False, False, True]


def test_snap_day_to_the_step_grid():
    assert snap_day(0.05, 10) == pytest.approx(70 / 1440)  # 7.2 steps -> 7
    assert snap_day(90.0, 10) == 90.0


def _spec():
    return parse_spec(RAW)


def test_baseline_table_accepts_on_the_seed_median_of_enforced_readouts():
    spec = _spec()
    pop = pd.DataFrame({"patient": [0, 1, 2], "patient.sf_volume_ml": [3.0, 10.0, 20.0]})
    bmap = pd.DataFrame({"row": range(6), "patient": [0, 0, 1, 1, 2, 2], "arm": "none",
                         "seed": range(6)})  # fmt: skip
    # ng/mL: patient 0 IL-6 0.2/0.5 (median 0.35 = 350 pg/mL: in), patient 1 0.1/0.2 (150:
    # out), patient 2 a missing seed; TNF (not enforced) out for everyone
    values = pd.DataFrame({"row": [0, 1, 2, 3, 4], "il6_fluid": [0.2, 0.5, 0.1, 0.2, 1.0],
                           "tnf_fluid": [1e-4] * 5})  # fmt: skip
    t = baseline_table(spec, pop, bmap, values)
    assert t["il6_fluid_pg_ml"].tolist()[:2] == pytest.approx([350.0, 150.0])
    assert t["accepted"].tolist() == [True, False, False]
    assert "il6_fluid 150" in t["reason"][1]
    assert "no complete baseline" in t["reason"][2]
    assert not t["tnf_fluid_ok"].any()


def test_paired_outcomes_seed_means_and_rates():
    spec = _spec()
    amap = pd.DataFrame({"row": range(12), "patient": np.repeat([0, 1, 2], 4),
                         "seed": np.repeat([0, 1, 2, 3, 4, 5], 2),
                         "arm": ["none", "msc"] * 6})  # fmt: skip
    pain = [
        10,
        7,
        20,
        17,  # patient 0: -30% and -15% -> mean -22.5%: responder
        10,
        9,
        10,
        9,  # patient 1: -10%: no
        0,
        0,
        10,
        5,
    ]  # patient 2: untreated 0 in one seed: no verdict
    syn = [4, 4, 4, 3, 4, 3, 4, 3, 4, 4, 4, 4]
    values = pd.DataFrame({"row": range(12), "pain_index": pain, "synovitis_score": syn})
    out = arm_outcomes(spec, amap, values)
    assert len(out) == 6 and set(out["arm"]) == {"msc"}
    p0 = out[out["patient"] == 0]
    assert p0["pain_rel_change"].tolist() == pytest.approx([-0.3, -0.15])
    assert p0["synovitis_change"].tolist() == [0, -1]
    pat = patient_outcomes(spec, out, [0, 1, 2])
    assert pat["pain_rel_change"].iloc[0] == pytest.approx(-0.225)
    assert pat["responder"].tolist() == [True, False, False]
    assert pat["classified"].tolist() == [True, True, False]
    rates = responder_rates(spec, pat)
    r = rates.iloc[0]
    assert (r["n"], r["responders"], r["unclassified"]) == (2, 1, 1)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson_interval(1, 2))
    pop = pd.DataFrame({"patient": [0, 1, 2], "patient.sf_volume_ml": [3.0, 10.0, 20.0]})
    eff = effusion_table(spec, pop, pat)
    assert eff["n"].tolist() == [1, 1]  # median of the 2 classified patients: 6.5 mL
    assert eff["responders"].tolist() == [1, 0]


def test_predictors_prcc_finds_the_feature_that_drives_the_change():
    from abm.trial.analysis import predictors

    raw = {"trial": {**RAW["trial"], "seeds": 1}}
    raw["trial"]["features"] = {
        "sf": {"key": "patient.sf_volume_ml", "dist": "loguniform", "low": 2.0, "high": 25.0},
        "pot": {"key": "therapy.potency", "dist": "uniform", "low": 0.3, "high": 3.0},
    }
    spec = parse_spec(raw)
    rng = np.random.default_rng(1)
    n = 30
    pop = pd.DataFrame({"patient": range(n), "patient.sf_volume_ml": rng.uniform(2, 25, n),
                        "therapy.potency": rng.uniform(0.3, 3, n)})  # fmt: skip
    noise = rng.normal(0, 0.01, n)
    change = -0.3 + 0.01 * pop["patient.sf_volume_ml"] + noise  # larger effusion: less relief
    pat = pd.DataFrame({"patient": range(n), "arm": "msc", "n_seeds": 1,
                        "pain_rel_change": change, "synovitis_change": 0.0,
                        "classified": True, "responder": change <= -0.2})  # fmt: skip
    got = predictors(spec, pop, pat).set_index("feature")
    assert (got["method"] == "PRCC").all()
    assert got.loc["patient.sf_volume_ml", "value"] > 0.9
    assert got.loc["patient.sf_volume_ml", "ci_low"] > 0.8
    assert abs(got.loc["therapy.potency", "value"]) < 0.5
    lo, hi = got.loc["therapy.potency", ["ci_low", "ci_high"]]
    assert lo <= got.loc["therapy.potency", "value"] <= hi
    few = predictors(spec, pop.iloc[:4], pat.iloc[:4])  # 4 < k + 3 = 5: Spearman instead
    assert (few["method"] == "Spearman").all()
    sf4 = pop["patient.sf_volume_ml"].iloc[:4].rank().to_numpy()
    ch4 = change.iloc[:4].rank().to_numpy()
    rho = np.corrcoef(sf4, ch4)[0, 1]  # Spearman = Pearson of the ranks
    assert few.set_index("feature").loc["patient.sf_volume_ml", "value"] == pytest.approx(rho)


def _benefit_spec():
    raw = {"trial": {**RAW["trial"]}}
    raw["trial"]["analysis"] = {
        **RAW["trial"]["analysis"],
        "benefits": {
            "il1b_fluid": {"change": "relative", "better": "lower"},
            "cartilage_agg": {"change": "absolute", "better": "higher"},
        },
    }
    return parse_spec(raw)


def test_benefit_changes_are_paired_and_seed_means_hand_computed():
    spec = _benefit_spec()
    amap = pd.DataFrame({"row": range(8), "patient": np.repeat([0, 1], 4),
                         "seed": np.repeat([0, 1, 2, 3], 2),
                         "arm": ["none", "msc"] * 4})  # fmt: skip
    values = pd.DataFrame({
        "row": range(8),
        "pain_index": [10.0] * 8,
        "synovitis_score": [4.0] * 8,
        # patient 0: 2 -> 1.5 (-25%), 4 -> 4 (0%): mean -12.5%; patient 1: +10%, seed 3 missing
        "il1b_fluid": [2.0, 1.5, 4.0, 4.0, 1.0, 1.1, 1.0, np.nan],
        # patient 0: +0.02 and +0.04 (mean +0.03); patient 1: -0.01, -0.03 (mean -0.02)
        "cartilage_agg": [0.5, 0.52, 0.5, 0.54, 0.6, 0.59, 0.6, 0.57],
    })  # fmt: skip
    out = arm_outcomes(spec, amap, values)
    assert out["il1b_fluid_rel_change"].tolist()[:3] == pytest.approx([-0.25, 0.0, 0.1])
    assert np.isnan(out["il1b_fluid_rel_change"].iloc[3])
    assert out["cartilage_agg_change"].tolist() == pytest.approx([0.02, 0.04, -0.01, -0.03])
    assert out["il1b_fluid_control"].tolist()[:2] == [2.0, 4.0]
    pat = patient_outcomes(spec, out, [0, 1])
    assert pat["il1b_fluid_rel_change"].iloc[0] == pytest.approx(-0.125)
    assert np.isnan(pat["il1b_fluid_rel_change"].iloc[1])  # one seed lacks it: no seed mean
    assert pat["cartilage_agg_change"].tolist() == pytest.approx([0.03, -0.02])
    assert pat["classified"].all()  # the benefits do not touch the responder verdict

    from abm.trial.analysis import benefit_summary

    summ = benefit_summary(spec, pat).set_index("outcome")
    agg = summ.loc["cartilage_agg_change"]
    assert agg["n"] == 2 and agg["mean"] == pytest.approx(0.005)
    assert (agg["n_benefit"], agg["n_harm"]) == (1, 1)  # higher is better for aggrecan
    # the bootstrap over 2 patients resamples {0.03, -0.02}: the interval spans [-0.02, 0.03]
    assert -0.02 - 1e-12 <= agg["ci_low"] <= agg["mean"] <= agg["ci_high"] <= 0.03 + 1e-12
    il = summ.loc["il1b_fluid_rel_change"]
    assert il["n"] == 1 and il["mean"] == pytest.approx(-0.125) and np.isnan(il["ci_low"])
    assert (il["n_benefit"], il["n_harm"]) == (1, 0)  # lower is better for IL-1β
    pain = summ.loc["pain_rel_change"]
    assert pain["mean"] == 0 and (pain["n_benefit"], pain["n_harm"]) == (0, 0)


def test_predictors_rank_each_benefit_by_its_own_driver():
    from abm.trial.analysis import predictors

    raw = {"trial": {**RAW["trial"], "seeds": 1}}
    raw["trial"]["features"] = {
        "sf": {"key": "patient.sf_volume_ml", "dist": "loguniform", "low": 2.0, "high": 25.0},
        "pot": {"key": "therapy.potency", "dist": "uniform", "low": 0.3, "high": 3.0},
    }
    raw["trial"]["analysis"] = {
        **RAW["trial"]["analysis"],
        "benefits": {"il1b_fluid": {"change": "relative", "better": "lower"}},
    }
    spec = parse_spec(raw)
    rng = np.random.default_rng(2)
    n = 30
    pop = pd.DataFrame({"patient": range(n), "patient.sf_volume_ml": rng.uniform(2, 25, n),
                        "therapy.potency": rng.uniform(0.3, 3, n)})  # fmt: skip
    pain = -0.3 + 0.01 * pop["patient.sf_volume_ml"] + rng.normal(0, 0.01, n)
    il1b = -0.1 * pop["therapy.potency"] + rng.normal(0, 0.01, n)  # more potent: lower IL-1β
    pat = pd.DataFrame({"patient": range(n), "arm": "msc", "n_seeds": 1,
                        "pain_rel_change": pain, "synovitis_change": 0.0, "classified": True,
                        "responder": pain <= -0.2, "il1b_fluid_rel_change": il1b})  # fmt: skip
    got = predictors(spec, pop, pat).set_index(["outcome", "feature"])
    assert set(got.index.get_level_values(0)) == {"pain_rel_change", "il1b_fluid_rel_change"}
    assert got.loc[("pain_rel_change", "patient.sf_volume_ml"), "ci_low"] > 0.8
    assert got.loc[("il1b_fluid_rel_change", "therapy.potency"), "ci_high"] < -0.8
    assert abs(got.loc[("il1b_fluid_rel_change", "patient.sf_volume_ml"), "value"]) < 0.5
