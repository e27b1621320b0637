"""Global sensitivity analysis (abm.sweep.sensitivity, abm-sensitivity): ranges, designs and
indices on functions with known answers, the command's resume/refusal/failed-row rules on a
hand-built sweep, and one Morris run of the real model on a tiny lattice."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from abm.cli.sensitivity import main
from abm.config import compose
from abm.errors import ConfigError
from abm.sweep import sensitivity as sa
from abm.sweep.design import read_design
from abm.sweep.status import write_status

TINY = ["lattice.shape=[60,40]", "lattice.dx_um=25", "output.summary_png=false",
        "sim.spinup_days=0", "output.xdmf=false"]  # fmt: skip
RATE = "biology.macrophage.activation_rate"  # 0.0008-0.08 declared: log-uniform
DECAY = "biology.fields.IL1b.decay"  # 0.002-0.2 declared: log-uniform
HILL = "biology.hill_n"  # 1-2 declared: uniform
MSC = "biology.msc.licensing_rate"  # read only by MSCs: no effect with therapy=none


# -------------------------------------------------------------------------- ranges
def test_factors_from_declared_ranges_log_when_more_than_a_decade():
    rate, hill = sa.factors([RATE, HILL], {})
    assert (rate.lo, rate.hi, rate.log) == (0.0008, 0.08, True)
    assert rate.bounds == pytest.approx([np.log10(0.0008), np.log10(0.08)])
    assert (hill.lo, hill.hi, hill.log) == (1.0, 2.0, False)
    assert "log-uniform" in rate.describe() and "uniform" in hill.describe()
    (_, given) = sa.factors([RATE, HILL], {HILL: (1.0, 1.5)})
    assert (given.lo, given.hi, given.origin) == (1.0, 1.5, "--range")
    # exactly one decade is not "more than a decade"
    assert not sa.factors([RATE, HILL], {RATE: (0.001, 0.01)})[0].log


def test_log_uniform_values_stay_in_range_and_spread_evenly_in_log():
    fs = sa.factors([RATE, HILL], {})
    x = sa.sample("prcc", fs, 400, seed=1)
    table = sa.design_table(fs, x)
    v = table[RATE].to_numpy()
    assert v.min() >= 0.0008 and v.max() <= 0.08
    assert np.median(v) == pytest.approx(0.008, rel=0.1)  # geometric middle, not 0.04
    assert np.mean(v < 0.008) == pytest.approx(0.5, abs=0.02)  # LHS: exactly stratified
    assert table[HILL].between(1, 2).all()


def test_factor_errors_are_one_line():
    cases = [
        (["biology.macrophage.nothing", HILL], {}, "not a declared biology parameter"),
        (["biology.fields.IL1b.mw_kda", HILL], {}, "plausible range is fixed"),
        ([RATE, HILL], {HILL: (1.0, 9.0)}, "outside the hard bounds"),
        ([RATE, HILL], {HILL: (1.5, 1.2)}, "need finite LO < HI"),
        ([RATE, HILL], {DECAY: (0.1, 0.2)}, "not one of the --param keys"),
        ([RATE, RATE], {}, "given twice"),
        ([RATE], {}, "at least 2"),
        ([RATE, "therapy.dose"], {}, "give --range therapy.dose=LO:HI"),
    ]
    cfg = compose(TINY)
    for keys, ranges, needle in cases:
        with pytest.raises(ConfigError) as exc:
            sa.factors(keys, ranges, cfg)
        assert needle in str(exc.value) and "\n" not in str(exc.value), (keys, str(exc.value))


def test_a_numeric_config_key_with_a_range_and_integer_keys_rounded():
    cfg = compose(TINY)
    fs = sa.factors([RATE, "therapy.min_cells"], {"therapy.min_cells": (0.0, 40.0)}, cfg)
    assert fs[1].integer and not fs[1].log
    table = sa.design_table(fs, sa.sample("prcc", fs, 20, seed=0))
    assert (table["therapy.min_cells"] == table["therapy.min_cells"].round()).all()


def test_runs_needed():
    assert sa.runs_needed("morris", 3, 10) == 40
    assert sa.runs_needed("sobol", 3, 64) == 320
    assert sa.runs_needed("prcc", 3, 50) == 50
    fs = sa.factors([RATE, HILL, DECAY], {})
    assert len(sa.sample("morris", fs, 5)) == 20
    assert len(sa.sample("sobol", fs, 16)) == 80


# -------------------------------------------------------------------------- indices
def _problem(k: int, names=None) -> list[sa.Factor]:
    names = names or [f"x{i}" for i in range(k)]
    return [sa.Factor(n, 0.0, 1.0, False) for n in names]


def test_prcc_matches_the_partial_correlation_of_the_ranks():
    rng = np.random.default_rng(3)
    x = rng.random((300, 4))
    y = x[:, 0] + 0.5 * x[:, 1] ** 3 - 0.8 * x[:, 2] + 0.3 * rng.standard_normal(300)
    # independent formula: partial correlations from the inverse correlation matrix of ranks
    ranks = np.column_stack([pd.Series(c).rank().to_numpy() for c in [*x.T, y]])
    prec = np.linalg.inv(np.corrcoef(ranks, rowvar=False))
    expect = -prec[:4, 4] / np.sqrt(np.diag(prec)[:4] * prec[4, 4])
    assert sa.prcc(x, y) == pytest.approx(expect, abs=1e-10)


def test_prcc_of_a_monotone_function_gives_zero_for_the_dummy():
    fs = _problem(3, ["a", "b", "dummy"])
    x = sa.sample("prcc", fs, 200, seed=2)
    y = np.exp(3 * x[:, 0]) - 20 * x[:, 1] ** 3  # monotone up in a, down in b; dummy unused
    idx = sa.analyse("prcc", fs, x, y, resamples=300)
    p = idx[idx["index"] == "prcc"].set_index("parameter")
    assert p.loc["a", "value"] > 0.8 and p.loc["b", "value"] < -0.8
    assert abs(p.loc["dummy", "value"]) < 0.2
    assert p.loc["dummy", "ci_low"] < 0 < p.loc["dummy", "ci_high"]  # the interval holds 0
    assert p.loc["a", "ci_low"] > 0.7
    pv = idx[idx["index"] == "p_value"].set_index("parameter")["value"]
    assert pv["a"] < 1e-6 and pv["dummy"] > 0.01
    rk = sa.ranked(idx.assign(method="prcc", metric="y", day=1.0))
    assert list(rk["parameter"])[-1] == "dummy"


def test_prcc_of_a_constant_output_is_nan():
    x = np.random.default_rng(0).random((20, 2))
    assert np.isnan(sa.prcc(x, np.ones(20))).all()


def test_morris_ranks_the_dummy_last():
    fs = _problem(4, ["strong", "mild", "curved", "dummy"])
    x = sa.sample("morris", fs, 20, seed=4)
    y = 10 * x[:, 0] + 2 * x[:, 1] + 5 * np.sin(6 * x[:, 2])
    idx = sa.analyse("morris", fs, x, y, resamples=200)
    mu = idx[idx["index"] == "mu_star"].set_index("parameter")
    assert mu.loc["strong", "value"] == pytest.approx(10.0)  # a linear effect: exact
    assert mu.loc["mild", "value"] == pytest.approx(2.0)
    assert mu.loc["dummy", "value"] == 0.0
    sigma = idx[idx["index"] == "sigma"].set_index("parameter")["value"]
    assert sigma["strong"] == pytest.approx(0.0, abs=1e-9) and sigma["curved"] > 1.0
    rk = sa.ranked(idx.assign(method="morris", metric="y", day=1.0))
    assert list(rk["parameter"]) == ["strong", "curved", "mild", "dummy"]
    assert (mu["ci_low"] <= mu["value"]).all() and (mu["value"] <= mu["ci_high"]).all()


def test_sobol_reproduces_the_ishigami_indices():
    fs = [sa.Factor(f"x{i}", -np.pi, np.pi, False) for i in range(3)]
    x = sa.sample("sobol", fs, 1024, seed=5)
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    idx = sa.analyse("sobol", fs, x, y, resamples=100)
    s1 = idx[idx["index"] == "S1"].set_index("parameter")["value"]
    st = idx[idx["index"] == "ST"].set_index("parameter")["value"]
    assert s1.to_numpy() == pytest.approx([0.314, 0.442, 0.0], abs=0.05)
    assert st.to_numpy() == pytest.approx([0.558, 0.442, 0.244], abs=0.05)


# -------------------------------------------------------------------------- the command
def _fake_jobs(out, f, *, failed=(), metric="il1b_fluid"):
    """Job folders in OUT/runs as abm-run -m would leave them, with ``metric`` = f(design row)
    at day 0.05 (72 min); rows in ``failed`` failed."""
    keys, rows = read_design(out / "design.csv")
    for r in rows:
        i = int(r["row"])
        job = out / "runs" / f"design.row={i}"
        (job / ".hydra").mkdir(parents=True)
        ov = [f"design.file={out / 'design.csv'}", f"design.row={i}"]
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in ov))
        values = {k: float(r[k]) for k in keys}
        if i in failed:
            write_status(job, status="failed", overrides=ov, error="SimulationError: boom",
                         exit_code=1, design=values)  # fmt: skip
            continue
        metrics = pd.DataFrame({"time_min": [0.0, 36.0, 72.0], metric: [0.0, 0.0, f(values)]})
        metrics.to_csv(job / "metrics.csv", index=False)
        write_status(job, status="complete", overrides=ov, exit_code=0, design=values)


def _args(out, method, *extra):
    return ["--method", method, "--param", RATE, "--param", DECAY, "--param", MSC,
            "--metrics", "il1b_fluid", "--days", "0.05", "--out", str(out), "--no-run",
            "--resamples", "100", *extra, *TINY, "sim.days=0.05", "therapy=none"]  # fmt: skip


def _rate_decay(v):
    return 2 * np.log10(v[RATE]) - np.log10(v[DECAY])  # the MSC rate plays no part


def test_command_analyses_refuses_another_design_and_names_failed_rows(tmp_path, capsys):
    out = tmp_path / "sa"
    with pytest.raises(SystemExit) as exc:  # nothing run yet: every row missing
        main(_args(out, "morris", "--trajectories", "4"))
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rows 0, 1, 2" in err[0] and "16 not run" in err[0], err
    assert len(read_design(out / "design.csv")[1]) == 16
    request = json.loads((out / "request.json").read_text())
    assert request["method"] == "morris" and request["size"] == 4

    _fake_jobs(out, _rate_decay, failed=(5,))
    with pytest.raises(SystemExit) as exc:
        main(_args(out, "morris", "--trajectories", "4"))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 1 and len(err) == 1, err
    assert "rows 5 of 16" in err[0] and "1 failed" in err[0] and "boom" in err[0]

    shutil.rmtree(out / "runs")  # the failed row run again: now complete
    _fake_jobs(out, _rate_decay)
    main(_args(out, "morris", "--trajectories", "4"))
    text = capsys.readouterr().out
    assert "reusing the design" in text
    idx = pd.read_csv(out / "indices.csv")
    assert list(idx.columns) == list(sa.INDEX_COLUMNS)
    mu = idx[idx["index"] == "mu_star"].set_index("parameter")["value"]
    # log10 scale, whole range = 2 decades: effects 2 x 2 = 4 and 1 x 2 = 2 per whole range
    assert mu[RATE] == pytest.approx(4.0) and mu[DECAY] == pytest.approx(2.0) and mu[MSC] == 0
    assert (out / "indices_il1b_fluid_day0.05.png").stat().st_size > 1000
    lines = [ln for ln in text.splitlines() if ln.strip().startswith(("1.", "2.", "3."))]
    assert [ln.split()[1] for ln in lines] == [RATE, DECAY, MSC]

    with pytest.raises(SystemExit) as exc:  # another request into the same folder
        main(_args(out, "morris", "--trajectories", "5"))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "differs in: size" in err[0], err
    with pytest.raises(SystemExit):  # --force-new: set aside, new design, nothing run yet
        main(_args(out, "morris", "--trajectories", "5", "--force-new"))
    assert len(read_design(out / "design.csv")[1]) == 20
    aside = list(out.glob("previous-*"))
    assert len(aside) == 1 and (aside[0] / "runs").is_dir() and (aside[0] / "indices.csv").is_file()


def test_prcc_leaves_out_failed_rows_and_says_so(tmp_path, capsys):
    out = tmp_path / "prcc"
    with pytest.raises(SystemExit):
        main(_args(out, "prcc", "--samples", "30"))
    capsys.readouterr()
    _fake_jobs(out, _rate_decay, failed=(3, 7))
    main(_args(out, "prcc", "--samples", "30"))
    text = capsys.readouterr().out
    assert "leaves out rows 3, 7" in text and "28 of 30 rows used" in text
    idx = pd.read_csv(out / "indices.csv")
    p = idx[idx["index"] == "prcc"].set_index("parameter")["value"]
    assert p[RATE] > 0.9 and p[DECAY] < -0.9 and abs(p[MSC]) < 0.5


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    bad = [
        (["--trajectories", "1"], "--trajectories 1: need >= 2"),
        (["--samples", "8"], "--samples is for sobol and prcc"),
        (["--range", f"{RATE}=1"], "expected KEY=LO:HI"),
        (["--metrics", "il1b_fluidd"], "did you mean il1b_fluid"),
        (["--days", "3"], "must lie in (0, sim.days=0.05]"),
        ([f"{RATE}=0.1"], f"{RATE}=0.1: {RATE} is set by abm-sensitivity itself"),
        (["design.row=2"], "design.row is set by abm-sensitivity itself"),
        (["sim.dt_min=0"], "sim.dt_min: must be a step in minutes"),
    ]
    for extra, needle in bad:
        with pytest.raises(SystemExit) as exc:
            main(_args(tmp_path / "x", "morris", *extra))
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1, (extra, err)
        assert err[0].startswith("abm-sensitivity: error: ") and needle in err[0], (extra, err)
    assert not (tmp_path / "x").exists()  # nothing written


def test_morris_end_to_end_ranks_the_msc_parameter_last(tmp_path, capsys):
    """Three parameters, four trajectories (16 runs of the real model, basic launcher): the
    MSC licensing rate cannot act without MSCs (therapy=none), so it must come last, with
    mu* = 0, for fluid IL-1b; running the command again reuses everything."""
    out = tmp_path / "morris"
    args = [a for a in _args(out, "morris", "--trajectories", "4", "--quiet") if a != "--no-run"]
    t0 = time.perf_counter()
    main(args)
    wall = time.perf_counter() - t0
    text = capsys.readouterr().out
    idx = pd.read_csv(out / "indices.csv")
    mu = idx[idx["index"] == "mu_star"].set_index("parameter")["value"]
    assert mu[MSC] == 0.0 and mu[RATE] > 0 and mu[DECAY] > 0, mu
    ranked = [ln.split()[1] for ln in text.splitlines() if ln.strip()[:2] in ("1.", "2.", "3.")]
    assert ranked[-1] == MSC
    assert len(list((out / "runs").glob("*/metrics.csv"))) == 16
    assert wall < 60, f"{wall:.0f} s"
    print(f"morris end to end: {wall:.1f} s")

    started = {p.parent.name: json.loads(p.read_text())["started"]
               for p in (out / "runs").glob("*/status.json")}  # fmt: skip
    assert len(started) == 16
    main(args)  # the same command again: the design reused, every job skipped
    assert "reusing the design" in capsys.readouterr().out
    again = {p.parent.name: json.loads(p.read_text())["started"]
             for p in (out / "runs").glob("*/status.json")}  # fmt: skip
    assert again == started
    assert pd.read_csv(out / "indices.csv").equals(idx)
