"""The rule-level checks (C2, C3, C7) on their own, at reduced sizes."""

from __future__ import annotations

import numpy as np
import pytest

from abm.validation import rules


@pytest.fixture(scope="module")
def cfg():
    return rules.rule_config()


def test_msc_survival_is_monotone_and_near_15_percent_at_day_30(cfg):
    surv = rules.msc_survival(cfg, n=10_000, days=30)
    alive = surv.fraction_alive.to_numpy()
    assert list(surv.day) == list(range(31))
    assert alive[0] == 1.0 and np.all(np.diff(alive) <= 0)
    assert 0.12 < alive[30] < 0.19
    expected = rules.msc_survival_expected(cfg, 30)
    assert abs(alive[30] - expected) < 0.01  # 10,000 cells: binomial sd ~0.004


def test_mediators_cut_effector_division_more_with_more_mediator(cfg):
    rule = rules.tcell_suppression(cfg, n=500, steps=360, multiples=(0.0, 1.0, 10.0))
    rate = rule.divisions_per_cell_day.to_numpy()
    supp = rule.suppression_factor.to_numpy()
    assert rate[0] > rate[1] > rate[2]
    assert supp[0] == 1.0 and supp[0] > supp[1] > supp[2]


def test_chondrocyte_catabolism_rises_with_il1b(cfg):
    dr = rules.chondrocyte_dose_response(cfg, levels=(0.0, 0.001, 0.01, 0.1), days=1.0, n=20)
    assert np.all(np.diff(dr.c_mean) > 0)
    assert np.all(np.diff(dr.agg_synthesis_drive) < 0)
    assert np.all(np.diff(dr.prot_molec_cell_s) > 0)


def test_chondrocyte_levels_run_together_as_alone(cfg):
    """One harness for every level gives each level what a harness of its own gives."""
    together = rules.chondrocyte_dose_response(cfg, levels=(0.0, 0.002, 0.05), days=0.5, n=10)
    alone = rules.chondrocyte_dose_response(cfg, levels=(0.002,), days=0.5, n=10)
    assert together.iloc[1].to_dict() == alone.iloc[0].to_dict()
