"""Time-step equivalence: the Vargha-Delaney A, the readout windows, and a tiny end-to-end run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm.validation import equivalence as eq


def test_vargha_delaney_a_known_values():
    assert eq.vargha_delaney_a([1, 2, 3], [1, 2, 3]) == 0.5
    assert eq.vargha_delaney_a([4, 5], [1, 2, 3]) == 1.0
    assert eq.vargha_delaney_a([0], [1, 2]) == 0.0
    assert eq.vargha_delaney_a([1, 3], [2, 2]) == 0.5


def test_readouts_average_the_day_before_each_checkpoint():
    t = np.arange(0, 3 * 1440 + 1, 60.0)
    frame = pd.DataFrame(
        {"time_min": t, **{k: t / 1440 for k in eq.READOUTS if k != "treg_fraction"}}
    )
    frame["tcell_treg"] = 1.0
    for k in ("tcell_naive", "tcell_th1", "tcell_th17"):
        frame[k] = 1.0
    r = eq.readouts(frame, [1, 3])
    assert abs(r[("il6_fluid", 1)] - 0.52) < 0.01  # mean of (0, 1] in hourly samples
    assert abs(r[("il6_fluid", 3)] - 2.52) < 0.01
    assert r[("treg_fraction", 3)] == 0.25


def test_a_tiny_comparison_runs_end_to_end(tmp_path, small):
    base = [o for o in small if not o.startswith("sim.dt_min")] + ["therapy.day=0.2"]
    arms = ["--reference", "sim.dt_min=5", "--candidate", "sim.dt_min=10"]
    eq.main(["--seeds", "2", "--days", "1", "--jobs", "2", "--out", str(tmp_path), *arms,
             "--base", *base])  # fmt: skip
    tab = pd.read_csv(tmp_path / "equivalence.csv")
    assert set(tab.readout) == set(eq.READOUTS) and (tab.seeds == 2).all()
    assert set(tab.candidate) == {"sim.dt_min=10"}
    assert tab.A.between(0, 1).all()
    assert (tmp_path / "equivalence.png").stat().st_size > 0


def test_stored_reference_rows_and_seed_offset(tmp_path, small):
    """--reference-runs reuses the reference rows of an earlier CSV; the reference's own
    overrides as candidate on the same seeds reproduce them exactly (A = 0.5 everywhere), and
    --seed-offset runs other seeds (the A/A test of the criterion)."""
    base = [o for o in small if not o.startswith("sim.dt_min")] + ["therapy.day=0.2"]
    first = tmp_path / "first"
    eq.main(["--seeds", "2", "--days", "1", "--jobs", "2", "--out", str(first),
             "--reference", "sim.dt_min=10", "--candidate", "sim.dt_min=10",
             "--base", *base])  # fmt: skip
    runs = pd.read_csv(first / "equivalence_runs.csv")
    ref = runs[runs.arm == "reference"].sort_values(["readout", "day", "seed"])
    same = runs[runs.arm == "sim.dt_min=10"].sort_values(["readout", "day", "seed"])
    np.testing.assert_array_equal(ref.value.to_numpy(), same.value.to_numpy())
    assert (pd.read_csv(first / "equivalence.csv").A == 0.5).all()

    again = tmp_path / "again"
    eq.main(["--seeds", "2", "--days", "1", "--jobs", "2", "--out", str(again),
             "--reference-runs", str(first / "equivalence_runs.csv"), "--seed-offset", "2",
             "--candidate", "sim.dt_min=10", "--base", *base])  # fmt: skip
    runs2 = pd.read_csv(again / "equivalence_runs.csv")
    ref2 = runs2[runs2.arm == "reference"].sort_values(["readout", "day", "seed"])
    np.testing.assert_array_equal(ref2.value.to_numpy(), ref.value.to_numpy())  # reused
    other = runs2[runs2.arm == "sim.dt_min=10"]
    assert sorted(other.seed.unique()) == [2, 3]
    assert not np.array_equal(
        other.sort_values(["readout", "day", "seed"]).value.to_numpy(), ref.value.to_numpy()
    )

    pooled = eq.merge([first / "equivalence_runs.csv", again / "equivalence_runs.csv"],
                      ["sim.dt_min=10"])  # fmt: skip
    assert set(pooled.arm) == {"reference"}  # the candidate had the reference's overrides
    assert sorted(pooled.seed.unique()) == [0, 1, 2, 3]
    assert len(pooled) == 4 * len(eq.READOUTS)


def _exact_outside(m, n):
    """P(A <= LOW or A >= HIGH) under the null, from the exact Mann-Whitney U distribution."""
    from functools import cache
    from math import comb

    @cache
    def count(u, a, b):  # orderings of a x's and b y's with u (x > y) pairs
        if u < 0:
            return 0
        if a == 0 or b == 0:
            return int(u == 0)
        return count(u - b, a - 1, b) + count(u, a, b - 1)

    total = comb(m + n, m)
    hits = sum(count(u, m, n) for u in range(m * n + 1)
               if u / (m * n) <= eq.LOW or u / (m * n) >= eq.HIGH)  # fmt: skip
    return hits / total


def test_false_alarm_rate_matches_the_exact_null_distribution():
    """8 seeds per arm flag ~38% of readouts of a model identical to the reference."""
    for m, n in ((8, 8), (16, 16), (8, 16)):
        assert abs(eq.false_alarm_rate(n, m) - _exact_outside(m, n)) < 0.01
    assert eq.false_alarm_rate(8, 8) > 0.35 > 0.2 > eq.false_alarm_rate(16, 16)
