"""Virtual population (abm.trial.population): sampling within the declared bounds,
reproducible by seed, the declared shapes, the designs' pairing, and one-line errors naming
the trial key."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from abm.trial.population import (
    TrialError,
    arms_design,
    baseline_design,
    load_spec,
    parse_spec,
    sample_population,
)
from tests.abm.trial.test_analysis import RAW


def _raw(**trial):
    raw = copy.deepcopy(RAW)
    raw["trial"].update(trial)
    return raw


FEATURES = {
    "sev": {"key": "patient.severity", "dist": "lognormal", "median": 1.0, "sigma_log": 0.3,
            "low": 0.5, "high": 2.0},
    "sf": {"key": "patient.sf_volume_ml", "dist": "loguniform", "low": 2.0, "high": 25.0},
    "area": {"key": "patient.synovial_area_cm2", "dist": "uniform", "low": 100.0, "high": 250.0},
    "pot": {"key": "therapy.potency", "group": "product", "dist": "normal", "mean": 1.0,
            "sd": 0.5, "low": 0.3, "high": 3.0},
}  # fmt: skip


@pytest.mark.parametrize("sampler", ["lhs", "random"])
def test_sampling_respects_bounds_and_is_reproducible(sampler):
    spec = parse_spec(_raw(size=200, features=FEATURES, sampler=sampler, sample_seed=7))
    a, b = sample_population(spec), sample_population(spec)
    assert a.equals(b)
    other = sample_population(parse_spec(_raw(size=200, features=FEATURES, sampler=sampler,
                                              sample_seed=8)))  # fmt: skip
    assert not np.allclose(a["patient.severity"], other["patient.severity"])
    for f in FEATURES.values():
        v = a[f["key"]].to_numpy()
        assert v.min() >= f["low"] and v.max() <= f["high"]
    assert a["patient"].tolist() == list(range(200))


def test_lhs_puts_one_patient_in_each_stratum_of_each_feature():
    spec = parse_spec(_raw(size=50, features=FEATURES, sampler="lhs"))
    pop = sample_population(spec)
    sf = np.log(pop["patient.sf_volume_ml"].to_numpy())  # log-uniform: strata equal in log
    strata = np.floor((sf - math.log(2.0)) / (math.log(25.0) - math.log(2.0)) * 50)
    assert sorted(strata.astype(int)) == list(range(50))
    area = pop["patient.synovial_area_cm2"].to_numpy()
    assert sorted(np.floor((area - 100) / 150 * 50).astype(int)) == list(range(50))


def test_declared_shapes_median_and_truncation():
    spec = parse_spec(_raw(size=4000, features=FEATURES, sampler="random"))
    pop = sample_population(spec)
    sev = pop["patient.severity"].to_numpy()
    assert np.median(sev) == pytest.approx(1.0, rel=0.03)  # lognormal median 1 (symmetric cut)
    assert np.std(np.log(sev)) == pytest.approx(0.3, rel=0.1)  # barely truncated at ±2.3 sigma
    pot = pop["therapy.potency"].to_numpy()
    assert np.mean(pot) > 1.0  # normal(1, 0.5) cut at 0.3 and 3: the mean shifts up
    sf = np.log10(pop["patient.sf_volume_ml"].to_numpy())
    hist, _ = np.histogram(sf, bins=4, range=(math.log10(2), math.log10(25)))
    assert hist.min() > 0.85 * hist.max()  # log-uniform: flat in log


def test_designs_pair_the_arms_of_a_patient_and_seed():
    raw = _raw(size=3, seeds=2, features=FEATURES, seed_base=100)
    raw["trial"]["arms"] = {"none": {"therapy": "none"},
                            "fixed": {"therapy": "msc", "dose": 4.0e7, "prelicensed": True},
                            "per_ml": {"therapy": "msc", "dose_per_ml": 4.0e6},
                            "il1ra": {"therapy": "il1ra_bolus", "dose_mg": 150.0}}  # fmt: skip
    raw["trial"]["analysis"] = {"effusion_arm": "fixed", "effusion_scaled_arm": "per_ml"}
    spec = parse_spec(raw)
    pop = sample_population(spec)
    bdes, bmap = baseline_design(spec, pop)
    assert len(bdes) == 6 and (bdes["therapy.name"] == "none").all()
    assert bmap["seed"].tolist() == bdes["seed"].tolist() == list(range(100, 106))
    des, amap = arms_design(spec, pop)
    assert len(des) == 3 * 2 * 4 and amap["row"].tolist() == list(range(24))
    feats = [f["key"] for f in FEATURES.values()]
    for (p, _s), g in des.groupby([amap["patient"], amap["seed"]]):
        assert (g[feats].nunique() == 1).all()  # the same patient in every arm
        assert g["seed"].nunique() == 1
        sf = float(pop.loc[p, "patient.sf_volume_ml"])
        per_ml = g[amap.loc[g.index, "arm"] == "per_ml"].iloc[0]
        assert per_ml["therapy.dose"] == pytest.approx(4.0e6 * sf)
        fixed = g[amap.loc[g.index, "arm"] == "fixed"].iloc[0]
        assert fixed["therapy.dose"] == 4.0e7 and bool(fixed["therapy.prelicensed"])
        il = g[amap.loc[g.index, "arm"] == "il1ra"].iloc[0]
        assert il["therapy.name"] == "il1ra_bolus" and il["therapy.dose"] == 0
        assert il["therapy.dose_mg"] == 150.0
    assert des["seed"].nunique() == 6  # distinct seeds for every patient-seed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 0}, "trial.size: need >= 1"),
        ({"sampler": "sobol"}, "trial.sampler: 'sobol' is not one of lhs, random"),
        (
            {
                "features": {
                    "x": {"key": "patient.severity", "dist": "uniform", "low": 2.0, "high": 1.0}
                }
            },
            "trial.features.x: need low < high",
        ),
        (
            {
                "features": {
                    "x": {"key": "patient.severity", "dist": "gamma", "low": 0.0, "high": 1.0}
                }
            },
            "trial.features.x.dist: 'gamma'",
        ),
        (
            {
                "features": {
                    "x": {
                        "key": "patient.severity",
                        "dist": "lognormal",
                        "low": 0.5,
                        "high": 2.0,
                        "median": 1.0,
                    }
                }
            },
            "trial.features.x.sigma_log: missing",
        ),
        (
            {"features": {"x": {"key": "seed", "dist": "uniform", "low": 0.0, "high": 1.0}}},
            "trial.features.x.key: seed is set by abm-trial itself",
        ),
        (
            {"arms": {"none": {"therapy": "none"}, "m": {"therapy": "msc"}}},
            "trial.arms.m: an msc arm needs exactly one of dose",
        ),
        (
            {
                "arms": {
                    "none": {"therapy": "none"},
                    "m": {"therapy": "msc", "dose": 1.0e7, "dose_mg": 3.0},
                }
            },
            "trial.arms.m.dose_mg",
        ),
        (
            {"arms": {"none": {"therapy": "none"}, "m": {"therapy": "il1ra_bolus"}}},
            "trial.arms.m.dose_mg: an il1ra_bolus arm needs dose_mg > 0",
        ),
        ({"control_arm": "msc"}, "trial.control_arm: arm 'msc' must have therapy: none"),
        ({"followup_days": 5.0}, "trial.responder.day: must lie in (0, trial.followup_days=5]"),
        ({"sizee": 3}, "trial.sizee: unknown key; did you mean size"),
        (
            {"analysis": {"benefits": {"il1b_fluid": {"change": "ratio", "better": "lower"}}}},
            "trial.analysis.benefits.il1b_fluid.change: relative or absolute, got 'ratio'",
        ),
        (
            {"analysis": {"benefits": {"il1b_fluid": {"change": "relative", "better": "less"}}}},
            "trial.analysis.benefits.il1b_fluid.better: lower or higher, got 'less'",
        ),
        (
            {"analysis": {"benefits": {"il1b_fluid": {"change": "relative"}}}},
            "trial.analysis.benefits.il1b_fluid.better: missing",
        ),
        (
            {"analysis": {"benefits": {"il1b_fluid": "relative"}}},
            "trial.analysis.benefits.il1b_fluid: a mapping {change: relative|absolute",
        ),
        (
            {"analysis": {"benefits": {"pain_index": {"change": "relative", "better": "lower"}}}},
            "trial.analysis.benefits.pain_index: pain_index is a responder readout",
        ),
    ],
)
def test_bad_declarations_are_one_line_naming_the_key(change, message):
    with pytest.raises(TrialError) as exc:
        parse_spec(_raw(**change))
    text = str(exc.value)
    assert message in text and "\n" not in text


def test_load_spec_overrides_and_errors(tmp_path):
    from omegaconf import OmegaConf

    path = tmp_path / "t.yaml"
    OmegaConf.save(OmegaConf.create(RAW), path)
    spec = load_spec(path, ["trial.size=7", "trial.responder.pain_max_rel_change=-0.3"])
    assert spec.size == 7 and spec.responder.pain_max_rel_change == -0.3
    with pytest.raises(TrialError, match=r"trial\.responder\.pain_max: unknown key"):
        load_spec(path, ["trial.responder.pain_max=-0.3"])
    with pytest.raises(TrialError, match=r"trial\.size: expected an integer, got 'x'"):
        load_spec(path, ["trial.size=x"])
    with pytest.raises(TrialError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("trial:\n  a: b: c\n")
    with pytest.raises(TrialError, match="not a readable YAML file"):
        load_spec(tmp_path / "bad.yaml")


def test_the_default_trial_is_valid_and_its_features_are_model_keys():
    from abm.cli.trial import default_config
    from abm.config import compose
    from abm.trial.population import check_features_against_model

    spec = load_spec(default_config())
    cfg = compose(list(spec.run_overrides), warn=False)
    check_features_against_model(spec, cfg)
    assert spec.control_arm == "none" and len(spec.arms) == 7
    from abm.sweep.launch import known_readouts

    assert spec.benefits and {b.metric for b in spec.benefits} <= set(known_readouts())
    assert {a.therapy for a in spec.arms} == {"none", "msc", "il1ra_bolus"}
    assert any(a.dose_per_ml for a in spec.arms) and any(a.prelicensed for a in spec.arms)
    keys = {f.key for f in spec.features}
    assert {"patient.sf_volume_ml", "therapy.potency", "biology.msc.half_life_days"} <= keys
    bad = load_spec(default_config(), ["trial.features.severity.key=patient.severty"])
    with pytest.raises(TrialError, match=r"patient\.severty is not a config key of abm-run"):
        check_features_against_model(bad, cfg)
    wide = load_spec(
        default_config(), ["trial.features.injection_day.key=biology.msc.persistent_fraction"]
    )
    with pytest.raises(
        TrialError, match=r"leaves the bounds of biology\.msc\.persistent_fraction \[0, 1\]"
    ):
        check_features_against_model(wide, cfg)
