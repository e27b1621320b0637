"""ABC-SMC (abm.calibrate.abc) on the toy with a known answer: the true values fall inside the
posterior's 95% interval and the posterior is much narrower than the prior; an interrupted
run resumes where it stopped; a different request is refused; weighted quantiles and priors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from abm.calibrate import abc, toy
from abm.sweep.sensitivity import Factor

FS = [Factor(k, lo, hi, True) for k, (lo, hi) in toy.PRIOR.items()]


def toy_run(out, generations, population=60, run=None, min_epsilon=0.0, jobs=1):
    targets = toy.toy_targets()
    used = [t for t in targets if t.role == "calibrate"]
    sim = toy.ToySimulator(targets)
    req = abc.request("toy", FS, population, used, [], 0)
    model = abc.ParticleModel(sim, FS, [t.id for t in used])
    return abc.run_abc(
        out,
        model,
        FS,
        used,
        population=population,
        generations=generations,
        min_epsilon=min_epsilon,
        jobs=jobs,
        run=run,
        req=req,
        progress=False,
    ), req


def test_toy_targets_come_from_the_true_values():
    ts = {t.id: t for t in toy.toy_targets()}
    exact = toy.readouts(toy.TRUE["toy.production"], toy.TRUE["toy.decay"], None)
    for tid, t in ts.items():
        if t.kind == "level":  # noise of 0.01 decades: within 5 SD of the exact readout
            assert abs(math.log10(t.value / exact[tid])) < 5 * toy.NOISE_LOG10
    sim = toy.ToySimulator(list(ts.values()))
    assert sim(toy.TRUE) == sim(toy.TRUE)  # a particle's noise is reproducible
    assert sim(toy.TRUE) != toy.ToySimulator(list(ts.values()), seed=1)(toy.TRUE)


def test_toy_calibration_recovers_the_truth(tmp_path):
    run, _ = toy_run(tmp_path, generations=12, population=50)
    assert run["epsilon"] == 0.0 and run["generations"] < 12  # stopped at epsilon 0
    post = abc.last_population(tmp_path, run["abc_id"], FS)
    assert post["weight"].sum() == pytest.approx(1.0)
    summ = abc.summary(post, FS, toy.TRUE).set_index("parameter")
    for key, true in toy.TRUE.items():
        row = summ.loc[key]
        assert row["q2.5"] <= true <= row["q97.5"], (key, row.to_dict())
        # the prior spans 4 decades; the parameters meeting every band span ~0.2 (decay) and
        # ~0.4 (production) decades: the 95% interval must be far narrower than the prior
        assert row["ci_width_of_prior"] < 0.15, (key, row.to_dict())
        assert abs(math.log10(row["median"] / true)) < 0.15
    # posterior-predictive: at epsilon 0 every draw meets every calibrate target; the hold-out
    # (not in the distance) is predicted around its pseudo-measured value
    pred = abc.predictive(
        toy.ToySimulator(toy.toy_targets()), post, FS, toy.toy_targets(), {}, n=10, progress=False
    ).set_index("id")
    assert (pred["n_draws"] == 10).all()
    cal = pred[pred["role"] == "calibrate"]
    assert (cal["verdict"] == "within band").all() and (cal["fraction_within"] == 1).all()
    held = pred.loc["level_day5"]
    assert held["role"] == "hold_out"
    assert held["q2.5"] <= held["band_hi"] and held["q97.5"] >= held["band_lo"]


def test_interrupted_run_resumes(tmp_path):
    run1, req = toy_run(tmp_path, generations=1, population=30)
    assert run1["generations"] == 1 and math.isinf(run1["epsilon"])  # generation 0: the prior
    first = abc.last_population(tmp_path, run1["abc_id"], FS)
    stored = abc.out_state(tmp_path, req)
    assert stored is not None and stored["run_id"] == run1["run_id"]
    run2, _ = toy_run(tmp_path, generations=3, population=30, run=stored)
    assert run2["run_id"] == run1["run_id"] and run2["abc_id"] == run1["abc_id"]
    assert run2["generations"] == 3 and run2["evaluations"] > run1["evaluations"]
    import pyabc

    h = pyabc.History(f"sqlite:///{tmp_path / abc.DB}", _id=run2["abc_id"], create=False)
    pops = h.get_all_populations()
    assert list(pops[pops["t"] >= 0]["t"]) == [0, 1, 2]  # t continues, nothing redone
    eps = list(pops[pops["t"] >= 0]["epsilon"])
    assert math.isinf(eps[0]) and eps[1] > eps[2] > 0  # epsilon shrinks across the restart
    again = h.get_population(0)
    assert sorted(p.weight for p in again.particles) == pytest.approx(
        sorted(first["weight"] * sum(p.weight for p in again.particles))
    )
    assert json.loads((tmp_path / abc.RUN).read_text())["generations"] == 3


def test_out_state_refuses_another_request(tmp_path):
    _, req = toy_run(tmp_path, generations=1, population=20)
    other = {**req, "population": 21}
    with pytest.raises(abc.CalibrationError, match="differs in: population"):
        abc.out_state(tmp_path, other)
    assert abc.out_state(tmp_path, other, force_new=True) is None
    aside = list(tmp_path.glob("previous-*"))
    assert len(aside) == 1 and (aside[0] / abc.DB).is_file()
    assert not (tmp_path / abc.DB).exists()
    assert abc.out_state(tmp_path / "empty", req) is None


def test_weighted_quantile_known_answers():
    x = np.random.default_rng(3).normal(size=41)
    # equal weights: the Hazen quantile
    q = abc.weighted_quantile(x, np.ones_like(x), [0.1, 0.5, 0.9])
    assert q == pytest.approx(np.quantile(x, [0.1, 0.5, 0.9], method="hazen"))
    # two points, weights 3:1: CDF midpoints 0.375 and 0.875, so the median is 0.25
    assert abc.weighted_quantile([0.0, 1.0], [3.0, 1.0], 0.5)[0] == pytest.approx(0.25)
    assert abc.weighted_quantile([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], 0.5)[0] == 3.0
    # importance weights: U(0, 1) draws weighted by the density 2u give the triangular law,
    # whose median is sqrt(0.5) and 2.5% quantile sqrt(0.025)
    u = np.random.default_rng(4).uniform(size=40000)
    q = abc.weighted_quantile(u, 2 * u, [0.025, 0.5])
    assert q == pytest.approx([math.sqrt(0.025), math.sqrt(0.5)], abs=0.01)


def test_factors_priors_and_values():
    fs = abc.calibration_factors(["biology.macrophage.activation_rate"], {})
    assert len(fs) == 1 and fs[0].log and fs[0].lo == pytest.approx(0.0008)
    with pytest.raises(abc.CalibrationError, match="not a declared"):
        abc.calibration_factors(["biology.nope"], {})
    with pytest.raises(abc.CalibrationError, match="at least one"):
        abc.calibration_factors([], {})
    pr = abc.prior(FS)
    x = pd.DataFrame([pr.rvs() for _ in range(200)])
    assert x["toy.decay"].between(-3, 1).all() and x["toy.production"].between(0, 4).all()
    vals = abc.config_values(FS, {"toy.production": 2.0, "toy.decay": -1.0})
    assert vals == {"toy.production": 100.0, "toy.decay": 0.1}
    assert abc.sampled_values(FS, vals) == pytest.approx({"toy.production": 2.0, "toy.decay": -1.0})


def test_failed_simulation_is_rejected_not_fatal():
    def broken(values):
        raise RuntimeError("boom")

    m = abc.ParticleModel(broken, FS, ["a", "b"])
    out = m({"toy.production": 1.0, "toy.decay": 0.0})
    assert set(out) == {"a", "b"} and all(math.isnan(v) for v in out.values())


def test_predictive_counts_an_infinite_ratio_and_drops_nan():
    """A ratio over 0 (+inf: "more than any") is a readout a censored_lower target meets; a
    failed simulation (NaN) is no readout."""
    from abm.calibrate.targets import Target

    t = Target(id="rise", readout="r", arm="a/b", window=None, kind="censored_lower", value=1.0,
               lower=math.nan, upper=math.nan, unit="fold", tol=0.1, species="", source="",
               role="hold_out")  # fmt: skip
    post = pd.DataFrame({"toy.production": [1.0, 2.0, 3.0], "toy.decay": [0.1] * 3,
                         "weight": [1 / 3] * 3})  # fmt: skip
    outs = iter([{"rise": math.inf}, {"rise": math.inf}, {"rise": math.nan}])
    pred = abc.predictive(lambda v: next(outs), post, FS, [t], {}, n=3, progress=False)
    row = pred.iloc[0]
    assert row["n_draws"] == 2 and row["q50"] == math.inf
    assert row["verdict"] == "within band" and row["fraction_within"] == 1.0
