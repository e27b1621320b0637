"""abm-trial end to end on a tiny population (real abm-run subprocesses through
abm.sweep.launch.run_sweep): baseline, plausibility filter, paired arms, tables and report,
resumption, refusal of another request, --no-run, and one-line input errors (exit 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from abm.cli.trial import main

TINY = {
    "trial": {
        "size": 2,
        "seeds": 1,
        "sample_seed": 3,
        "baseline_days": 0.05,
        "followup_days": 0.1,
        "run_overrides": [
            "therapy=msc",
            "therapy.min_cells=5",  # a therapy key the arms leave alone may be set
            "lattice.shape=[60,40]",
            "lattice.dx_um=25",
            "sim.dt_min=10",
            "sim.spinup_days=0.02",
            "output.summary_png=false",
            "output.xdmf=false",
        ],
        "features": {
            "sf": {"key": "patient.sf_volume_ml", "dist": "loguniform", "low": 2.0, "high": 25.0},
            "day": {
                "key": "therapy.day",
                "group": "procedure",
                "dist": "uniform",
                "low": 0.0,
                "high": 0.02,
            },
        },
        "control_arm": "none",
        "arms": {
            "none": {"therapy": "none"},
            "msc_per_ml": {"therapy": "msc", "dose_per_ml": 4.0e6},
            "il1ra": {"therapy": "il1ra_bolus", "dose_mg": 150.0},
        },
        "plausibility": {
            "window_days": 0.05,
            "tolerance_log10": 10.0,  # relaxed: every tiny patient passes
            "readouts": {"il6_fluid": {"cohort_low_pg_ml": 975.0, "cohort_high_pg_ml": 975.0}},
        },
        "responder": {
            "day": 0.1,
            "window_days": 0.05,
            "pain_metric": "pain_index",
            "pain_max_rel_change": -0.2,
            "synovitis_metric": "synovitis_score",
            "synovitis_max_abs_change": 0.0,
        },
        "analysis": {
            "effusion_arm": "msc_per_ml",
            "bootstrap_resamples": 20,
            "benefits": {"il1b_fluid": {"change": "relative", "better": "lower"}},
        },
    }
}


def _config(tmp_path, name="tiny.yaml", **plaus):
    raw = OmegaConf.create(TINY)
    for k, v in plaus.items():
        OmegaConf.update(raw, k, v)
    path = tmp_path / name
    OmegaConf.save(raw, path)
    return path


def _window_mean(job, metric, day, window):
    m = pd.read_csv(job / "metrics.csv")
    t = m["time_min"] / 1440
    end = round(day * 1440 / 10) * 10 / 1440
    sel = (t > end - window + 1e-6) & (t <= end + 1e-6)
    return float(m.loc[sel, metric].mean())


def _one_line_exit_2(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("abm-trial: error: "), err
    return err[0]


def test_tiny_trial_end_to_end(tmp_path, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "trial"
    main(["--config", str(cfg), "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert "plausibility filter: 2 of 2 patients accepted" in text
    for name in ("report.md", "report.html", "population.csv", "outcomes.csv", "patients.csv",
                 "responder_rates.csv", "predictors.csv", "effusion.csv", "waterfall.png",
                 "baseline.csv", "arms.csv", "arms_map.csv", "request.json",
                 "trial.yaml", "benefits.csv", "benefits.png"):  # fmt: skip
        assert (out / name).is_file(), name
    pop = pd.read_csv(out / "population.csv")
    assert pop["accepted"].all() and np.isfinite(pop["il6_fluid_pg_ml"]).all()
    # the baseline readout is the window mean of the baseline run's metrics (ng/mL -> pg/mL)
    bmap = pd.read_csv(out / "baseline_map.csv")
    job = out / "runs" / "baseline" / f"design.row={int(bmap.row[0])}"
    assert pop["il6_fluid_pg_ml"][0] == pytest.approx(
        1000 * _window_mean(job, "il6_fluid", 0.05, 0.05)
    )

    # paired outcomes recomputed from the arms' metrics
    outc = pd.read_csv(out / "outcomes.csv")
    amap = pd.read_csv(out / "arms_map.csv")
    assert len(outc) == 2 * 2  # 2 patients x 2 treated arms x 1 seed
    for _, o in outc.iterrows():
        ctrl = amap[(amap.patient == o.patient) & (amap.seed == o.seed) & (amap.arm == "none")]
        cjob = out / "runs" / "arms" / f"design.row={int(ctrl.row.iloc[0])}"
        tjob = out / "runs" / "arms" / f"design.row={int(o.row)}"
        c, t = (_window_mean(j, "pain_index", 0.1, 0.05) for j in (cjob, tjob))
        assert o.pain_index_control == pytest.approx(c)
        assert o.pain_rel_change == pytest.approx((t - c) / c)
        s_c, s_t = (_window_mean(j, "synovitis_score", 0.1, 0.05) for j in (cjob, tjob))
        assert o.synovitis_change == pytest.approx(s_t - s_c)
        b_c, b_t = (_window_mean(j, "il1b_fluid", 0.1, 0.05) for j in (cjob, tjob))
        assert o.il1b_fluid_rel_change == pytest.approx((b_t - b_c) / b_c)
    # the benefit's arm mean is the mean over patients of their (1-seed) changes
    ben = pd.read_csv(out / "benefits.csv")
    for _, b in ben[ben.outcome == "il1b_fluid_rel_change"].iterrows():
        want = outc.loc[outc.arm == b.arm, "il1b_fluid_rel_change"].mean()
        assert b.n == 2 and b["mean"] == pytest.approx(want)
    assert set(pd.read_csv(out / "predictors.csv").outcome) == {
        "pain_rel_change",
        "il1b_fluid_rel_change",
    }
    # arms of a patient branch from one spin-up: identical at t = 0
    first = {r: pd.read_csv(out / "runs" / "arms" / f"design.row={r}" / "metrics.csv").iloc[0]
             for r in amap[amap.patient == 0].row}  # fmt: skip
    rows = list(first.values())
    assert all(np.allclose(rows[0]["pain_index"], r["pain_index"]) for r in rows)

    # rates agree with the per-patient table and with the report
    pat = pd.read_csv(out / "patients.csv")
    rates = pd.read_csv(out / "responder_rates.csv")
    report = (out / "report.md").read_text()
    for _, r in rates.iterrows():
        p = pat[pat.arm == r.arm]
        assert r.n == int(p.classified.sum()) and r.responders == int(p.responder.sum())
        lo, hi = r.ci_low, r.ci_high
        assert 0 <= lo <= r.rate <= hi <= 1
        assert f"| {r.arm} | {r.label} | {r.n} | {r.responders} |" in report
    assert "2 of 2 patients accepted" in report
    assert "## Continuous benefits" in report and "`il1b_fluid` (relative" in report
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page and 'src="http' not in page

    # the same command again: nothing re-run
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("metrics.csv")}
    main(["--config", str(cfg), "--out", str(out), "--quiet"])
    assert "reusing the trial" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("metrics.csv")}
    # another analysis of the same runs: reused, nothing re-run, the stored request follows it
    more = "trial.analysis.bootstrap_resamples=40"
    main(["--config", str(cfg), "--out", str(out), "--quiet", more])
    assert "reusing the trial" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("metrics.csv")}
    assert "(40 resamples)" in (out / "report.md").read_text()
    assert json.loads((out / "request.json").read_text())["trial"]["analysis"][
        "bootstrap_resamples"] == 40  # fmt: skip
    main(["--config", str(cfg), "--out", str(out), "--quiet"])  # back to the declared analysis
    assert (out / "report.md").read_text() == report

    # another request into the same folder is refused; --no-run re-analyses the stored one
    err = _one_line_exit_2(capsys, ["--config", str(cfg), "--out", str(out), "trial.seeds=2"])
    assert "holds another trial (it differs in: trial.seeds)" in err
    (out / "report.md").unlink()
    main(["--no-run", "--out", str(out)])
    assert (out / "report.md").read_text() == report
    err = _one_line_exit_2(capsys, ["--no-run", "--out", str(out), "--size", "3"])
    assert "--no-run analyses the trial stored in --out; drop --size" in err

    # a filter that accepts patient 0 only: the arms run for patient 0 alone
    v = pop["il6_fluid_pg_ml"].to_numpy()
    assert v[0] != v[1]
    tol = abs(math.log10(v[0] / v[1])) / 2
    cfg2 = _config(tmp_path, "strict.yaml", **{
        "trial.plausibility.tolerance_log10": tol,
        "trial.plausibility.readouts.il6_fluid.cohort_low_pg_ml": float(v[0]),
        "trial.plausibility.readouts.il6_fluid.cohort_high_pg_ml": float(v[0])})  # fmt: skip
    out2 = tmp_path / "strict"
    main(["--config", str(cfg2), "--out", str(out2), "--quiet"])
    assert "plausibility filter: 1 of 2 patients accepted" in capsys.readouterr().out
    pop2 = pd.read_csv(out2 / "population.csv")
    assert pop2["accepted"].tolist() == [True, False]
    assert "il6_fluid" in pop2["reason"][1]
    ran = sorted(int(p.name.split("=")[1]) for p in (out2 / "runs" / "arms").glob("design.row=*"))
    amap2 = pd.read_csv(out2 / "arms_map.csv")
    assert ran == amap2[amap2.patient == 0].row.tolist()
    assert set(pd.read_csv(out2 / "patients.csv").patient) == {0}


def test_bad_input_is_one_line_exit_2_before_any_work(tmp_path, capsys):
    cfg = str(_config(tmp_path))
    out = tmp_path / "o"
    cases = [
        (["therapy.dosee=1"], "therapy.dosee"),
        (["seed=4"], "seed=4: seed is set by trial.seed_base and trial.seeds"),
        (["therapy.dose=5"], "therapy.dose is set by the arms"),
        (["therapy.prelicensed=true"], "therapy.prelicensed is set by the arms"),
        (["therapy=none"], "therapy is set by the arms"),
        (["patient.sf_volume_ml=3"], "patient.sf_volume_ml is set by trial.features.sf"),
        (["sim.days=3"], "sim.days is set by trial.baseline_days and trial.followup_days"),
        (["trial.size=x"], "trial.size: expected an integer"),
        (
            ["trial.responder.pain_metric=pain"],
            "trial.responder.pain_metric: pain is not a readout",
        ),
        (["hydra.sweep.dir=x"], "the sweep folders are OUT/runs"),
        (["--size", "0"], "--size 0: need >= 1"),
    ]
    for extra, message in cases:
        err = _one_line_exit_2(capsys, ["--config", cfg, "--out", str(out), *extra])
        assert message in err, (extra, err)
    assert not out.exists()  # nothing written
    # a row abm-run would refuse (0.1-0.2 mL over 150 cm² is thinner than the 50 µm fluid slab)
    thin = ["trial.features.sf.low=0.1", "trial.features.sf.high=0.2"]
    err = _one_line_exit_2(capsys, ["--config", cfg, "--out", str(out), *thin])
    assert err.startswith("abm-trial: error: baseline row 0: ") and "lattice.fluid_um" in err
    assert not out.exists()  # the designs written for the check are gone
    err = _one_line_exit_2(capsys, ["--no-run", "--out", str(out)])
    assert "holds no trial" in err
    (tmp_path / "file").write_text("x")
    err = _one_line_exit_2(capsys, ["--config", cfg, "--out", str(tmp_path / "file")])
    assert "is a file" in err
    err = _one_line_exit_2(capsys, ["--config", str(tmp_path / "nope.yaml"), "--out", str(out)])
    assert "nope.yaml: no such file" in err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--config", "--out", "--size", "--launcher", "--no-run", "--force-new"):
        assert opt in text


def test_every_patient_rejected_runs_no_arm_and_still_reports(tmp_path, capsys):
    cfg = _config(tmp_path, **{
        "trial.plausibility.tolerance_log10": 0.0,
        "trial.plausibility.readouts.il6_fluid.cohort_low_pg_ml": 1e6,
        "trial.plausibility.readouts.il6_fluid.cohort_high_pg_ml": 1e6})  # fmt: skip
    out = tmp_path / "none"
    main(["--config", str(cfg), "--out", str(out), "--quiet"])
    assert "0 of 2 patients accepted (rejected: il6_fluid out of band 2)" in capsys.readouterr().out
    assert not (out / "runs" / "arms").exists()
    rates = pd.read_csv(out / "responder_rates.csv")
    assert (rates["n"] == 0).all() and rates["rate"].isna().all()
    assert "**0 of 2 patients accepted.**" in (out / "report.md").read_text()
