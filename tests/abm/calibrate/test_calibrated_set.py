"""The calibrated parameter set (conf/biology/calibrated.yaml) holds what the calibration in
docs/figures/calibration/ says: the posterior medians (3 significant digits) of exactly the
parameters whose 95% interval is narrower than 70% of the prior, which are also the declared
defaults (biology=handset keeps the values before the calibration); everything else as declared."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

import abm
from abm.params import parameter_rows

ROOT = Path(__file__).resolve().parents[3]
FIG = ROOT / "docs" / "figures" / "calibration"


def node(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return float(cfg)


def test_calibrated_set_is_the_posterior_medians_of_the_identified_parameters():
    summ = pd.read_csv(FIG / "posterior_summary.csv").set_index("parameter")
    run = yaml.safe_load((FIG / "calibrated.yaml").read_text())
    assert run["source"].startswith("calibrated (posterior median, run joint+emulator-")
    text = (ROOT / "conf" / "biology" / "calibrated.yaml").read_text()
    assert run["run_id"] in text
    cal = abm.compose(["biology=calibrated"])
    default = abm.compose([])
    handset = abm.compose(["biology=handset"])
    declared = {d.key: d for d in parameter_rows()}
    kept = summ.index[summ["ci_width_of_prior"] < 0.7]
    assert len(kept) == 3
    for key in summ.index:
        if key in kept:
            want = float(f"{summ.loc[key, 'median']:.3g}")
            assert node(cal, key) == pytest.approx(want, rel=1e-12), key
            lo, hi = summ.loc[key, "q2.5"], summ.loc[key, "q97.5"]
            assert lo < node(cal, key) < hi
            # the declared default is the calibrated value, its source says so
            assert node(default, key) == node(cal, key), key
            assert node(handset, key) != node(cal, key), key
            assert declared[key].value == node(cal, key), key
            assert f"calibrated (posterior median, run {run['run_id']})" in declared[key].source
        else:  # not identified: the declared value, inside its posterior interval
            assert node(cal, key) == node(default, key) == node(handset, key), key
            assert summ.loc[key, "q2.5"] <= node(default, key) <= summ.loc[key, "q97.5"], key
