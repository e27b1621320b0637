"""Each cell rule in isolation: tiny populations, clamped fields (Sense built by hand)."""

from __future__ import annotations

import numpy as np
import pytest

import abm
from abm.cells import chondrocyte, fls, macrophage, msc, tcell
from abm.cells.base import Ctx, Sense
from abm.cells.population import CHONDROCYTE, FLS, MACROPHAGE, MSC, NAIVE, TCELL, TH1, Population
from abm.config import FIELD_NAMES

N = 400


@pytest.fixture(scope="module")
def cfg():
    return abm.compose(["scenario=healthy"])


def ctx(cfg, step=1, knockouts=()):
    return Ctx(np, 0, step, 2.0, cfg.biology, cfg.scenario, frozenset(knockouts))


def clamp(cfg, **levels):
    """A Sense for N cells that all see the given field levels (others 0)."""
    values = np.zeros((len(FIELD_NAMES), N), dtype=np.float32)
    for name, level in levels.items():
        values[FIELD_NAMES.index(name)] = level
    return Sense(np, values, FIELD_NAMES, cfg.biology)


def pop(kind, **cols):
    p = Population(np, kind)
    p.append(id=np.arange(N), voxel=np.arange(N), **cols)
    return p


def run(module, p, sense, cfg, steps, *extra):
    """Step a rule ``steps`` times, removing the cells it kills (and their extra inputs)."""
    for k in range(1, steps + 1):
        out = module.update(p, sense, ctx(cfg, k), *extra)
        if out is not None and out[0] is not None:
            p.keep(~out[0])
            sense.keep(~out[0])
            extra = tuple(e[~out[0]] for e in extra)
    return p


def test_macrophage_in_high_il10_goes_m2_and_in_il1b_goes_m1(cfg):
    m2 = run(macrophage, pop(MACROPHAGE), clamp(cfg, IL10=10.0), cfg, 500)
    assert (macrophage.phenotype(np, m2["state"]) == 2).mean() > 0.95
    m1 = run(macrophage, pop(MACROPHAGE), clamp(cfg, IL1b=1.0, TNF=1.0), cfg, 500)
    assert (macrophage.phenotype(np, m1["state"]) == 1).mean() > 0.95


def test_tsg6_damps_m1_drive_and_il1ra_blocks_il1(cfg):
    il1 = run(macrophage, pop(MACROPHAGE), clamp(cfg, IL1b=0.05), cfg, 200)
    tsg6 = run(macrophage, pop(MACROPHAGE), clamp(cfg, IL1b=0.05, TSG6=50.0), cfg, 200)
    ra = run(macrophage, pop(MACROPHAGE), clamp(cfg, IL1b=0.05, IL1RA=1000.0), cfg, 200)
    assert il1["state"].mean() > 2 * tsg6["state"].mean()
    assert il1["state"].mean() > 2 * ra["state"].mean()


def test_msc_without_ifng_never_licenses_and_with_ifng_does(cfg):
    no = run(msc, pop(MSC, persistent=np.ones(N, bool)), clamp(cfg, TNF=5.0, IL1b=5.0), cfg, 2000)
    assert no["state"].max() == 0.0
    yes = run(msc, pop(MSC, persistent=np.ones(N, bool)), clamp(cfg, IFNg=1.0, TNF=1.0), cfg, 2000)
    assert (msc.phenotype(np, yes["state"]) == 13).all()


def test_msc_knockouts_remove_their_mediator(cfg):
    p = pop(MSC, state=np.ones(N))
    s = clamp(cfg, TNF=1.0)
    full = msc.secretion(p, s, ctx(cfg))
    assert full["KYN"].min() > 0 and full["PGE2"].min() > 0
    ido = msc.secretion(p, s, ctx(cfg, knockouts=["ido"]))
    assert "KYN" not in ido and set(full) - set(ido) == {"KYN"}
    allko = msc.secretion(p, s, ctx(cfg, knockouts=["pge2", "tsg6", "ido", "tgfb", "il1ra"]))
    assert allko == {}


def test_msc_persistence_follows_toupet(cfg):
    """C2: ~15% left at day 30, ~1.5% at 6 months (first-order t1/2 11 d + persistent pool)."""
    n = 10000
    p = Population(np, MSC)
    ids = np.arange(n)
    from kernels.random import uniform

    persistent = uniform(np, 0, 0, 44, ids) < cfg.biology.msc.persistent_fraction
    p.append(id=ids, voxel=ids, persistent=persistent)
    s = Sense(np, np.zeros((len(FIELD_NAMES), n), np.float32), FIELD_NAMES, cfg.biology)
    alive = {}
    for k in range(1, 24 * 180 + 1):
        hour = Ctx(np, 0, k, 60.0, cfg.biology, cfg.scenario)  # hour steps: same first-order law
        death, _ = msc.update(p, s, hour)
        p.keep(~death)
        s.keep(~death)
        if k in (24 * 30, 24 * 180):
            alive[k // 24] = p.n / n
    assert 0.12 < alive[30] < 0.19
    assert 0.010 < alive[180] < 0.021


def test_kyn_pge2_tgfb_suppress_effector_proliferation(cfg):
    """C3: MSC mediators cut effector T-cell division, more with more mediator."""

    def divisions(**levels):
        p = pop(TCELL, subset=np.full(N, TH1, np.int8))
        total = 0
        for k in range(1, 300):
            _, div = tcell.update(p, clamp(cfg, IL1b=1.0, **levels), ctx(cfg, k))
            total += int(div.sum())
        return total

    base = divisions()
    low = divisions(KYN=1.0, PGE2=0.2)
    high = divisions(KYN=20.0, PGE2=5.0, TGFb=2.0)
    assert base > 50
    assert base > low > high
    assert high < 0.4 * base  # 60-98% suppression in MLR (Di Nicola 2002)


def test_naive_t_cells_follow_their_cues(cfg):
    def final(**levels):
        p = pop(TCELL, subset=np.full(N, NAIVE, np.int8))
        for k in range(1, 2000):
            tcell.update(p, clamp(cfg, **levels), ctx(cfg, k))
        return np.bincount(p["subset"], minlength=4)

    th1 = final(IFNg=1.0)
    treg = final(TGFb=5.0, PGE2=5.0)
    assert th1[TH1] > 0.8 * N
    assert treg[3] > 0.8 * N


def test_fls_activation_is_damped_only_near_mscs(cfg):
    s = clamp(cfg, IL1b=0.05, PGE2=10.0, TSG6=10.0)
    far = run(fls, pop(FLS), s, cfg, 300, np.zeros(N, np.float32))
    s = clamp(cfg, IL1b=0.05, PGE2=10.0, TSG6=10.0)
    near = run(fls, pop(FLS), s, cfg, 300, np.ones(N, np.float32))
    assert far["state"].mean() > 0.5
    assert near["state"].mean() < 0.6 * far["state"].mean()


def test_il1b_drives_chondrocyte_catabolism_dose_dependently(cfg):
    """C7: more IL-1b, more catabolic drive (Fan 2005)."""
    means = []
    for il1b in (0.0, 0.002, 0.01, 0.1):
        p = pop(CHONDROCYTE, alive=np.ones(N, bool))
        s = clamp(cfg, IL1b=il1b)
        for k in range(1, 400):
            chondrocyte.update(p, s, ctx(cfg, k), np.ones(N, np.float32))
        means.append(float(p["state"].mean()))
    assert means[0] == 0.0
    assert means == sorted(means) and means[-1] > 0.5
    assert chondrocyte.synthesis(p, s, ctx(cfg)).mean() < 0.5
