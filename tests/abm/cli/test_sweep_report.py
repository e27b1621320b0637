"""abm-sweep-report: tables, intervals, plots and the page, from sweep folders built by hand and
from a real (tiny) ``abm-run -m`` sweep."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from abm.cli.sweep_report import main
from abm.model import metric_names
from abm.sweep.report import course_step, t_quantile
from tests.abm.sweep.test_collect import make_job

# Student-t 97.5% quantiles from printed tables (two-sided 95%), df -> t
T_TABLE = {
    1: 12.706204736,
    2: 4.302652730,
    3: 3.182446305,
    5: 2.570581836,
    10: 2.228138852,
    30: 2.042272456,
    120: 1.979930405,
    1000: 1.962339081,
}


def fake_sweep(root, doses=(1e6, 1e7), seeds=(0, 1, 2), failed=(), agg=None):
    """Jobs named as abm-run names them, one constant override (sim.days), metrics every 6 h;
    cartilage_agg at the end = ``agg(dose, seed)``; ``failed``: (dose, seed) pairs."""
    agg = agg or (lambda dose, seed: 0.8 + dose / 1e8 + 0.01 * seed)
    t = [0.0, 360.0, 720.0]
    for i, dose in enumerate(doses):
        for seed in seeds:
            bad = (dose, seed) in failed
            over = [f"therapy.dose={dose}", f"seed={seed}", "sim.days=0.5"]
            values = {n: [float(i + seed + k) for k in range(3)] for n in metric_names()[1:]}
            values["cartilage_agg"] = [1.0, 0.9, agg(dose, seed)]
            make_job(
                root,
                f"seed={seed},sim.days=0.5,therapy.dose={dose}",
                over,
                status="failed" if bad else "complete",
                error="SimulationError: field IL1b became negative" if bad else None,
                times=t if not bad else t[:2],
                values=values,
                metric_names=tuple(metric_names()),
            )


def test_t_quantile_matches_the_tables():
    for df, t in T_TABLE.items():
        assert t_quantile(0.95, df) == pytest.approx(t, rel=1e-8 if df <= 400 else 1e-6)
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 7, 19, 64, 399, 401, 5000):
        assert t_quantile(0.95, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-7)
        assert t_quantile(0.9, df) == pytest.approx(stats.t.ppf(0.95, df), rel=1e-7)


def test_tables_intervals_and_plots(tmp_path, capsys):
    fake_sweep(tmp_path, failed=[(1e7, 2)])
    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "6 jobs (5 complete, 1 failed); swept: therapy.dose, seed" in out
    assert "same in every job: sim.days=0.5" in out
    assert "failed" in out and "SimulationError: field IL1b became negative" in out

    final = pd.read_csv(tmp_path / "sweep_final.csv")
    assert len(final) == 5  # complete jobs only
    assert list(final.columns[:4]) == ["job", "therapy.dose", "seed", "time_min"]
    assert "sim.days" not in final.columns  # constant: not a swept parameter
    row = final[(final["therapy.dose"] == 1e7) & (final["seed"] == 1)]
    assert row["cartilage_agg"].iloc[0] == pytest.approx(0.91)

    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert list(summary.columns) == [
        "therapy.dose",
        "metric",
        "n",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
    ]
    agg = summary[summary["metric"] == "cartilage_agg"].set_index("therapy.dose")
    # dose 1e6, seeds 0, 1, 2: values 0.81, 0.82, 0.83 -> mean 0.82, sd 0.01, t(0.975, 2)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert agg.loc[1e6, "n"] == 3 and agg.loc[1e6, "mean"] == pytest.approx(0.82)
    assert agg.loc[1e6, "ci_low"] == pytest.approx(0.82 - half, rel=1e-9)
    assert agg.loc[1e6, "ci_high"] == pytest.approx(0.82 + half, rel=1e-9)
    # dose 1e7: seed 2 failed; seeds 0, 1: 0.9, 0.91 -> sd 0.01/sqrt(2), t(0.975, 1)
    values = np.array([0.9, 0.91])
    half = 12.706204736174698 * values.std(ddof=1) / math.sqrt(2)
    assert agg.loc[1e7, "n"] == 2
    assert agg.loc[1e7, "ci_high"] - agg.loc[1e7, "mean"] == pytest.approx(half, rel=1e-9)

    series = pd.read_csv(tmp_path / "sweep_timeseries.csv")
    assert list(series.columns) == ["job", "therapy.dose", "seed", "time_day", "metric", "value"]
    # a sweep shorter than 5 days: 20 steps (36 min) from 0 to 0.5 days, else every 6 h
    assert course_step(0.5) == pytest.approx(36 / 1440) and course_step(7.0) == 0.25
    assert set(series["time_day"]) == set(np.round(np.arange(21) * 36 / 1440, 9))
    assert len(series) == 5 * 21 * (len(metric_names()) - 1)
    at = series[(series["metric"] == "cartilage_agg") & (series["seed"] == 1)]
    at = at[at["therapy.dose"] == 1e6].set_index("time_day")["value"]
    assert at[0.2] == 1.0 and at[0.25] == 0.9 and at[0.5] == pytest.approx(0.82)  # last row <= t
    jobs = pd.read_csv(tmp_path / "sweep_jobs.csv")
    assert jobs["status"].value_counts().to_dict() == {"complete": 5, "failed": 1}
    assert (tmp_path / "sweep_therapy_dose.png").stat().st_size > 1000
    assert (tmp_path / "sweep_timecourses.png").stat().st_size > 1000
    page = (tmp_path / "sweep_report.html").read_text()
    assert "SimulationError: field IL1b became negative" in page  # the failed jobs' table
    assert "<script src=" not in page and len(page) > 3e6  # plotly.js is in the page


def test_one_seed_per_set_has_no_interval(tmp_path, capsys):
    fake_sweep(tmp_path, doses=(1e6, 1e7, 1e8), seeds=(4,))
    main([str(tmp_path), "--out", str(tmp_path / "report"), "--no-html"])
    summary = pd.read_csv(tmp_path / "report" / "sweep_summary.csv")
    agg = summary[summary["metric"] == "cartilage_agg"]
    assert (agg["n"] == 1).all() and agg["ci_low"].isna().all() and agg["sd"].isna().all()
    assert agg["mean"].tolist() == pytest.approx([0.85, 0.94, 1.84])
    final = pd.read_csv(tmp_path / "report" / "sweep_final.csv")
    assert list(final.columns[:3]) == ["job", "therapy.dose", "time_min"]  # seed is constant
    assert not (tmp_path / "report" / "sweep_report.html").exists()
    assert (tmp_path / "report" / "sweep_therapy_dose.png").is_file()
    assert "swept: therapy.dose" in capsys.readouterr().out


def test_all_failed_still_reports_and_exits_1(tmp_path, capsys):
    fake_sweep(tmp_path, doses=(1e6,), seeds=(0, 1), failed=[(1e6, 0), (1e6, 1)])
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 1
    out, err = capsys.readouterr()
    assert "2 jobs (2 failed)" in out and out.count("SimulationError") == 2
    assert err.strip().splitlines() == [
        "abm-sweep-report: no job completed (2 failed): the report lists the jobs and their errors"
    ]
    page = (tmp_path / "sweep_report.html").read_text()
    assert "No job completed" in page and page.count("SimulationError") >= 2
    assert len(pd.read_csv(tmp_path / "sweep_jobs.csv")) == 2
    assert pd.read_csv(tmp_path / "sweep_final.csv").empty


def test_not_a_sweep_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no job folders" in err[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--metrics", "il1b_fluid", "nonsense"], "--metrics nonsense: no such metric"),
        (["--out", "FILE"], "--out FILE: is a file; give a folder"),
        (["--out", "FILE/sub"], "cannot create a folder there"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, words):
    sweep = tmp_path / "sweep"
    fake_sweep(sweep, doses=(1e6,), seeds=(0,))
    regular = tmp_path / "a_file"
    regular.write_text("x")
    args = [a.replace("FILE", str(regular)) for a in args]
    with pytest.raises(SystemExit) as exc:
        main([str(sweep), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("abm-sweep-report: error: ")
    assert words.replace("FILE", str(regular)) in err[0]
    assert not (sweep / "sweep_final.csv").exists()


TINY = [
    "lattice.shape=[60,40]",
    "lattice.dx_um=25",
    "sim.days=0.05",
    "output.summary_png=false",
    "sim.spinup_days=0",
]


def test_real_two_job_sweep(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    res = subprocess.run(
        [sys.executable, "-m", "abm", "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    main([str(sweep), "--no-html"])
    assert "2 jobs (2 complete); swept: seed" in capsys.readouterr().out
    final = pd.read_csv(sweep / "sweep_final.csv")
    assert list(final.columns[:3]) == ["job", "seed", "time_min"]  # only seed varies
    assert sorted(final["seed"]) == [0, 1]
    assert final["time_min"].tolist() == pytest.approx([72.0, 72.0])  # 0.05 days
    summary = pd.read_csv(sweep / "sweep_summary.csv")
    assert list(summary.columns[:2]) == ["metric", "n"] and (summary["n"] == 2).all()
    series = pd.read_csv(sweep / "sweep_timeseries.csv")
    assert series["time_day"].nunique() > 10  # a short sweep: 20 steps, not every 6 h
    assert (sweep / "sweep_seed.png").is_file() and (sweep / "sweep_timecourses.png").is_file()
