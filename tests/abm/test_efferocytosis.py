"""Efferocytosis memory (biology v2): apoptotic MSCs -> the pool on World -> macrophage uptake
-> memory R (abm.cells.macrophage, abm.cells.msc, abm.space)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import abm
from abm.cells.harness import RuleHarness
from abm.model import JointModel
from abm.units import MIN_PER_DAY

N = 100


@pytest.fixture(scope="module")
def cfg():
    return abm.compose(["scenario=healthy"])


def test_uptake_takes_the_hand_computed_amount_from_the_pool(cfg):
    p = cfg.biology.macrophage
    h = RuleHarness(cfg, "macrophage", N, dt=10.0)
    h.world.apoptotic_msc = 50.0
    h.step(remove_dead=False)
    x = 50.0 / N
    u = p.efferocytosis_rate * x / (p.efferocytosis_K + x)
    assert h.world.apoptotic_msc == pytest.approx(50.0 - N * u * 10.0, rel=1e-12)
    k_in, k_out = p.memory_gain * u, 1.0 / (p.memory_days * MIN_PER_DAY)
    R = k_in / (k_in + k_out) * (1.0 - math.exp(-(k_in + k_out) * 10.0))
    np.testing.assert_allclose(h.pop["regulatory"], R, rtol=1e-5)


def test_uptake_never_takes_more_than_the_pool(cfg):
    h = RuleHarness(cfg, "macrophage", N, dt=1000.0)
    h.world.apoptotic_msc = 0.5
    h.step(remove_dead=False)
    assert h.world.apoptotic_msc == 0.0
    assert h.pop["regulatory"].min() > 0.0


def test_memory_decays_with_tau_r_after_the_pool_empties(cfg):
    p = cfg.biology.macrophage
    h = RuleHarness(cfg, "macrophage", N, dt=60.0)
    h.world.apoptotic_msc = 200.0  # 2 MSCs per macrophage
    h.run(24 * 3, remove_dead=False)
    assert h.world.apoptotic_msc < 1e-3
    R0 = h.pop["regulatory"].astype(np.float64).copy()
    assert R0.min() > 0.4
    h.world.apoptotic_msc = 0.0
    days = 21
    h.run(24 * days, remove_dead=False)
    want = R0 * math.exp(-days * MIN_PER_DAY / (p.memory_days * MIN_PER_DAY))
    np.testing.assert_allclose(h.pop["regulatory"], want, rtol=1e-4)


def test_the_efferocytosis_knockout_gives_no_memory(cfg):
    h = RuleHarness(cfg, "macrophage", N, dt=60.0, knockouts=("efferocytosis",))
    h.world.apoptotic_msc = 200.0
    h.run(24 * 3, remove_dead=False)
    assert h.pop["regulatory"].max() == 0.0
    assert h.world.apoptotic_msc == 200.0  # the macrophages took nothing


def test_memory_shifts_p_down_and_secretes_il10_and_kyn(cfg):
    R = np.linspace(0.0, 1.0, N)
    h = RuleHarness(cfg, "macrophage", N, regulatory=R).clamp(TNF=0.05, IL1b=0.02)
    h.world.apoptotic_msc = 0.0
    before = h.secretion()
    assert before["KYN"][0] == 0.0
    reg = cfg.biology.macrophage.regulatory_secretion
    np.testing.assert_allclose(before["KYN"], reg["KYN"] * R, rtol=1e-6)
    h.run(500, remove_dead=False)  # R barely decays in 1000 min (tau_R = 3 weeks)
    p = h.pop["state"]
    assert p[0] > 0.0 and p[-1] < p[0] - 0.1
    assert np.all(np.diff(p) < 0)


def test_dying_msc_feed_the_pool_with_their_weight_and_it_clears(cfg):
    """Inactivated MSCs (weight 2.5) die with t1/2 ~ 1 d; the pool gets their weight and
    clears with its own t1/2: pool_{k+1} = pool_k e^{-λ dt} + w · deaths_k, by hand."""
    p = cfg.biology.msc
    n, dt, w = 2000, 60.0, 2.5
    h = RuleHarness(cfg, "msc", n, dt=dt, weight=np.full(n, w), potency=np.ones(n),
                    inactivated=np.ones(n, bool))  # fmt: skip
    assert all(np.all(v == 0) for v in h.secretion().values())  # inactivated: nothing
    lam = math.log(2.0) / (p.apoptotic_half_life_days * MIN_PER_DAY)
    pool = 0.0
    for _ in range(24):
        fate = h.step()
        pool = pool * math.exp(-lam * dt) + w * int(fate.death.sum())
        assert h.world.apoptotic_msc == pytest.approx(pool, rel=1e-9)
    assert 0.4 < h.pop.n / n < 0.6  # t1/2 1 day
    assert pool > 0.0


def test_only_the_macrophages_of_the_lining_zone_engulf(small):
    """MSCs die at the lining surface: only macrophages within efferocytosis_depth_um of the
    lining top share the pool; deeper ones keep R = 0, and the pool is split among the zone."""
    m = JointModel(abm.compose([*small, "therapy=none"]))
    m.step()
    depth = m.world.depth_um(m.cells["macrophage"]["voxel"])
    zone = depth < m.bio.macrophage.efferocytosis_depth_um
    assert 0 < zone.sum() < zone.size  # both kinds present on the small lattice
    m.flags.apoptotic_msc = 5.0
    m.step()
    pop = m.cells["macrophage"]
    depth = m.world.depth_um(pop["voxel"])
    R = pop["regulatory"]
    engulfed = depth < m.bio.macrophage.efferocytosis_depth_um
    # the cells that moved into the zone during the step engulfed before moving: compare
    # by where R rose, which must be a subset of cells that are in or next to the zone
    assert (R > 0).any()
    assert np.all(depth[R > 0] < m.bio.macrophage.efferocytosis_depth_um + m.tissue.dx_um)
    assert np.all(
        R[~engulfed & (depth >= m.bio.macrophage.efferocytosis_depth_um + m.tissue.dx_um)] == 0
    )
    assert m.flags.apoptotic_msc < 5.0
