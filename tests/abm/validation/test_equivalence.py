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
