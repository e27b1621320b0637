"""Consistency analysis (abm.sweep.replicates, abm-replicates): the A statistics on synthetic
pools with known answers, the recommendation rule, and one small end-to-end run of the model."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from abm.cli.replicates import main
from abm.sweep import replicates as rep
from abm.validation.equivalence import vargha_delaney_a

TINY = ["lattice.shape=[60,40]", "lattice.dx_um=25", "sim.days=0.05", "sim.spinup_days=0",
        "output.summary_png=false", "output.xdmf=false"]  # fmt: skip


def pool(values: dict[str, np.ndarray], day: float = 1.0) -> pd.DataFrame:
    """A long readout table (job, metric, day, value) of one value per job and metric."""
    rows = [{"job": f"j{i}", "metric": m, "day": day, "value": float(v)}
            for m, vs in values.items() for i, v in enumerate(vs)]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_of_identical_distributions_is_about_half():
    x = np.random.default_rng(1).normal(size=400)
    assert vargha_delaney_a(x, x) == 0.5
    assert vargha_delaney_a(x[:200], x[200:]) == pytest.approx(0.5, abs=0.06)
    assert vargha_delaney_a(x + 10, x) == 1.0


def test_draw_subsets_disjoint_or_overlapping():
    rng = np.random.default_rng(0)
    draws, overlap = rep.draw_subsets(100, 10, 5, rng)
    assert draws.shape == (5, 10) and not overlap
    assert len(np.unique(draws)) == 50  # disjoint
    draws, overlap = rep.draw_subsets(12, 5, 4, rng)
    assert overlap and draws.shape == (4, 5)
    assert all(len(set(d)) == 5 for d in draws)  # no run twice within a subset
    with pytest.raises(ValueError):
        rep.draw_subsets(4, 5, 2, rng)
    assert rep.needed_pool([1, 5, 50], 20) == 1000


def test_spread_of_a_shrinks_with_n_for_one_distribution():
    rng = np.random.default_rng(7)
    values = pool({"noise": rng.lognormal(size=20 * 100), "const": np.ones(20 * 100)})
    summary, every = rep.consistency(values, [1, 5, 100], subsets=20, seed=3)
    assert list(summary.columns) == list(rep.COLUMNS)
    noise = summary[summary.metric == "noise"].set_index("n")
    assert noise.loc[1, "max_dev"] == 0.5  # one run vs one run: A is 0 or 1
    assert noise.loc[100, "max_dev"] < noise.loc[5, "max_dev"] < 0.5
    assert noise.loc[100, "max_dev"] < 0.15
    # over many subsets the A values centre on 0.5 (the pool is one distribution)
    assert every[(every.metric == "noise") & (every.n == 100)]["A"].mean() == pytest.approx(
        0.5, abs=0.03)  # fmt: skip
    const = summary[summary.metric == "const"]
    assert (const.a_min == 0.5).all() and const.within.all()  # ties: A = 0.5 exactly
    assert len(every) == 3 * 2 * 19
    assert summary.attrs["overlap"] == []


def test_a_shifted_subset_would_show():
    """The statistic sees a difference when there is one: subset 1 drawn from a shifted pool."""
    a = vargha_delaney_a(np.arange(10) + 5.0, np.arange(10))
    assert a > 0.56


def _summary(within: dict[int, list[bool]]) -> pd.DataFrame:
    rows = [{"n": n, "metric": f"m{i}", "day": 1.0, "a_min": 0.5, "a_max": 0.5,
             "max_dev": 0.0 if ok else 0.2, "within": ok}
            for n, oks in within.items() for i, ok in enumerate(oks)]  # fmt: skip
    return pd.DataFrame(rows)


def test_recommendation_is_the_smallest_n_with_every_a_within():
    assert rep.recommend(_summary({1: [False, False], 5: [True, False], 10: [True, True],
                                   20: [True, True]})) == 10  # fmt: skip
    assert rep.recommend(_summary({1: [False], 5: [False]})) is None
    assert rep.recommend(_summary({1: [True], 5: [True]})) == 1
    text = rep.report(_summary({1: [False, False], 5: [True, False], 10: [True, True],
                                20: [True, False]}))  # fmt: skip
    assert "recommended: n = 10 runs" in text and "at larger n some A fall outside" in text
    assert "no n tested" in rep.report(_summary({1: [False], 5: [False]}))


def test_end_to_end_small_pool(tmp_path, capsys):
    """A pool of 6 seeds, n = 1, 2, 4 and 3 subsets (so the subsets overlap): writes the CSV
    and the PNG and prints a verdict; asking for 2 more seeds runs only those 2."""
    out = tmp_path / "rep"
    args = ["--out", str(out), "--n", "1", "2", "4", "--subsets", "3", "--pool", "6", "--quiet",
            *TINY]  # fmt: skip
    t0 = time.perf_counter()
    main(args)
    wall = time.perf_counter() - t0
    text = capsys.readouterr().out
    table = pd.read_csv(out / "replicates.csv")
    assert list(table.columns) == list(rep.COLUMNS)
    assert sorted(table.n.unique()) == [1, 2, 4]
    assert set(table.metric) == set(rep.DEFAULT_METRICS)
    assert (table.day == 0.05).all()
    assert ((table.a_min >= 0) & (table.a_max <= 1) & (table.a_min <= table.a_max)).all()
    assert (out / "replicates.png").stat().st_size > 5000
    assert "overlap" in text and ("recommended: n =" in text or "no n tested" in text)
    assert len(list((out / "runs").glob("*/metrics.csv"))) == 6
    print(f"replicates end to end: {wall:.1f} s")

    started = {p.parent.name: json.loads(p.read_text())["started"]
               for p in (out / "runs").glob("*/status.json")}  # fmt: skip
    main([*args[: -len(TINY)], "--pool", "8", *TINY])  # a larger pool: 2 more seeds
    after = {p.parent.name: json.loads(p.read_text())["started"]
             for p in (out / "runs").glob("*/status.json")}  # fmt: skip
    assert len(after) == 8 and all(after[k] == v for k, v in started.items())
    assert "8 runs" in capsys.readouterr().out

    # a job folder of the same --out run with other overrides is not part of the pool
    first = sorted((out / "runs").glob("*/status.json"))[0].parent
    other = out / "runs" / "other"
    shutil.copytree(first, other)
    ov = other / ".hydra" / "overrides.yaml"
    ov.write_text(ov.read_text() + "- therapy=none\n")
    main([*args[: -len(TINY)], "--pool", "8", "--no-run", *TINY])
    text = capsys.readouterr().out
    assert "1 job folder(s) in the sweep folder ran with other overrides" in text
    assert "(8 runs, 3 subsets per n)" in text


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    for extra, needle in [
        (["--n", "0", "2"], "--n 0"),
        (["--subsets", "1"], "--subsets 1"),
        (["--pool", "3", "--n", "4"], "--pool 3: must hold at least the largest n (4)"),
        (["--metrics", "treg"], "not a readout"),
        (["seed=3"], "seed=3: seed is set by abm-replicates itself"),
        (["--days", "0.5"], "--days 0.5: must lie in (0, sim.days=0.05]"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["--out", str(tmp_path / "x"), *extra, *TINY])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1, (extra, err)
        assert err[0].startswith("abm-replicates: error: ") and needle in err[0], (extra, err)
    assert not (tmp_path / "x").exists()
