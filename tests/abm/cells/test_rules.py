"""Each cell rule in isolation: tiny populations, clamped fields (abm.cells.harness)."""

from __future__ import annotations

import numpy as np
import pytest

import abm
from abm.cells.harness import RuleHarness
from abm.cells.msc import Draw as MscDraw
from abm.cells.population import NAIVE, TH1, TREG
from kernels.random import uniform

N = 400


@pytest.fixture(scope="module")
def cfg():
    return abm.compose(["scenario=healthy"])


def mean_state(h: RuleHarness) -> float:
    return float(h.pop["state"].mean())


def test_macrophage_in_high_il10_goes_m2_and_in_il1b_goes_m1(cfg):
    m2 = RuleHarness(cfg, "macrophage", N).clamp(IL10=10.0).run(500)
    assert np.mean([p == "M2" for p in m2.phenotypes()]) > 0.95
    m1 = RuleHarness(cfg, "macrophage", N).clamp(IL1b=1.0, TNF=1.0).run(500)
    assert np.mean([p == "M1" for p in m1.phenotypes()]) > 0.95


def test_tsg6_damps_m1_drive_and_il1ra_blocks_il1(cfg):
    il1 = RuleHarness(cfg, "macrophage", N).clamp(IL1b=0.05).run(200)
    tsg6 = RuleHarness(cfg, "macrophage", N).clamp(IL1b=0.05, TSG6=50.0).run(200)
    ra = RuleHarness(cfg, "macrophage", N).clamp(IL1b=0.05, IL1RA=1000.0).run(200)
    assert mean_state(il1) > 2 * mean_state(tsg6)
    assert mean_state(il1) > 2 * mean_state(ra)


def test_msc_without_ifng_never_licenses_and_with_ifng_does(cfg):
    persistent = np.ones(N, bool)
    no = RuleHarness(cfg, "msc", N, persistent=persistent).clamp(TNF=5.0, IL1b=5.0).run(2000)
    assert no.pop["state"].max() == 0.0
    yes = RuleHarness(cfg, "msc", N, persistent=persistent).clamp(IFNg=1.0, TNF=1.0).run(2000)
    assert set(yes.phenotypes()) == {"MSC_licensed"}


def test_msc_knockouts_remove_their_mediator(cfg):
    one = {"state": np.ones(N), "weight": np.ones(N), "potency": np.ones(N)}
    h = RuleHarness(cfg, "msc", N, **one).clamp(TNF=1.0)
    full = h.secretion()
    assert full["KYN"].min() > 0 and full["PGE2"].min() > 0
    ido = RuleHarness(cfg, "msc", N, knockouts=("ido",), **one).clamp(TNF=1.0)
    assert set(full) - set(ido.secretion()) == {"KYN"}
    every = ("pge2", "tsg6", "ido", "tgfb", "il1ra")
    left = RuleHarness(cfg, "msc", N, knockouts=every, **one).secretion()
    assert set(left) == {"IL6", "CCL2"}  # MSCs' own IL-6 and CCL2 have no knockout


def test_msc_persistence_follows_toupet(cfg):
    """C2: ~15% left at day 30, ~1.5% at 6 months (first-order t1/2 11 d + persistent pool)."""
    n = 10000
    ids = np.arange(n)
    persistent = uniform(np, 0, 0, MscDraw.PERSIST, ids) < cfg.biology.msc.persistent_fraction
    h = RuleHarness(cfg, "msc", n, dt=60.0, persistent=persistent)  # hour steps: same law
    alive = {}
    for k in range(1, 24 * 180 + 1):
        h.step()
        if k in (24 * 30, 24 * 180):
            alive[k // 24] = h.pop.n / n
    assert 0.12 < alive[30] < 0.19
    assert 0.010 < alive[180] < 0.021


def test_kyn_pge2_tgfb_suppress_effector_proliferation(cfg):
    """C3: MSC mediators cut effector T-cell division, more with more mediator."""

    def divisions(**levels):
        h = RuleHarness(cfg, "tcell", N, subset=np.full(N, TH1, np.int8))
        h.clamp(IL1b=1.0, **levels)
        return sum(int(h.step(remove_dead=False).divide.sum()) for _ in range(1, 300))

    base = divisions()
    low = divisions(KYN=1.0, PGE2=0.2)
    high = divisions(KYN=20.0, PGE2=5.0, TGFb=2.0)
    assert base > 50
    assert base > low > high
    assert high < 0.4 * base  # 60-98% suppression in MLR (Di Nicola 2002)


def test_naive_t_cells_follow_their_cues(cfg):
    def final(**levels):
        h = RuleHarness(cfg, "tcell", N, subset=np.full(N, NAIVE, np.int8)).clamp(**levels)
        h.run(1999, remove_dead=False)
        return np.bincount(h.pop["subset"], minlength=4)

    th1 = final(IFNg=1.0)
    treg = final(TGFb=5.0, PGE2=5.0)
    assert th1[TH1] > 0.8 * N
    assert treg[TREG] > 0.8 * N


def test_fls_proliferation_stops_at_the_carrying_capacity(cfg):
    free = RuleHarness(cfg, "fls", N, state=np.ones(N))
    full = RuleHarness(cfg, "fls", N, state=np.ones(N))
    full.habitat_voxels = int(N / cfg.biology.fls.capacity)  # N cells fill the capacity
    divided_free = sum(int(free.step(remove_dead=False).divide.sum()) for _ in range(300))
    divided_full = sum(int(full.step(remove_dead=False).divide.sum()) for _ in range(300))
    assert divided_free > 20
    assert divided_full == 0


def test_il1b_drives_chondrocyte_catabolism_dose_dependently(cfg):
    """C7: more IL-1b, more catabolic drive (Fan 2005)."""
    means = []
    for il1b in (0.0, 0.002, 0.01, 0.1):
        h = RuleHarness(cfg, "chondrocyte", N, alive=np.ones(N, bool)).clamp(IL1b=il1b)
        h.run(2999)  # ~4 days at dt = 2: past the ~14 h relaxation time of c at 0.1 ng/mL
        means.append(mean_state(h))
    assert means[0] == 0.0
    assert means == sorted(means) and means[-1] > 0.5
    assert h.type.synthesis(h.context(), h.pop).mean() < 0.5
