"""MSC rules (biology v2): weight and potency, inactivated MSCs, PGE2 induced by exposure to
OA-cell signals (no contact), IL-6/CCL2/TSG-6 secretion, injection columns (abm.cells.msc)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import abm
from abm.cells.base import StepContext
from abm.cells.harness import RuleHarness

N = 50


@pytest.fixture(scope="module")
def cfg():
    return abm.compose(["scenario=healthy"])


def cols(n: int, weight: float = 1.0, potency: float = 1.0, **extra) -> dict:
    return {"weight": np.full(n, weight), "potency": np.full(n, potency),
            "persistent": np.ones(n, bool), **extra}  # fmt: skip


def test_a_weight_two_msc_secretes_twice_a_weight_one_msc(cfg):
    state = {"state": np.full(N, 0.7), "exposure": np.full(N, 0.3)}
    one = RuleHarness(cfg, "msc", N, **cols(N, 1.0, **state)).secretion()
    two = RuleHarness(cfg, "msc", N, **cols(N, 2.0, **state)).secretion()
    half = RuleHarness(cfg, "msc", N, **cols(N, 1.0, 0.5, **state)).secretion()
    assert set(one) == {"PGE2", "TSG6", "KYN", "TGFb", "IL1RA", "IL6", "CCL2"}
    for f in one:
        assert one[f].min() > 0
        np.testing.assert_allclose(two[f], 2.0 * one[f], rtol=1e-6)
        np.testing.assert_allclose(half[f], 0.5 * one[f], rtol=1e-6)


def test_secretion_rates_by_hand(cfg):
    p = cfg.biology.msc
    h = RuleHarness(cfg, "msc", 1, **cols(1, 3.0, 0.5, state=np.full(1, 0.4),
                                            exposure=np.full(1, 0.6)))  # fmt: skip
    out = h.secretion()
    r, scale = p.secretion, 3.0 * 0.5
    assert out["PGE2"][0] == pytest.approx(r["PGE2"] * (p.pge2_base + 0.6) * scale, rel=1e-6)
    assert out["TSG6"][0] == pytest.approx(r["TSG6"] * (p.pge2_base + 0.6) * scale, rel=1e-6)
    assert out["KYN"][0] == pytest.approx(r["KYN"] * 0.4 * scale, rel=1e-6)
    for f in ("TGFb", "IL1RA", "IL6", "CCL2"):
        assert out[f][0] == pytest.approx(r[f] * scale, rel=1e-6)


def test_pge2_is_induced_by_oa_cell_signals_without_contact_or_ifng(cfg):
    p = cfg.biology.msc
    quiet = RuleHarness(cfg, "msc", N, dt=10.0, **cols(N)).run(300)
    exposed = RuleHarness(cfg, "msc", N, dt=10.0, **cols(N)).clamp(TNF=0.05, IL1b=0.01)
    exposed.run(300)  # 50 h: X at its steady state
    assert quiet.pop["exposure"].max() == 0.0
    assert exposed.pop["state"].max() == 0.0  # no IFN-γ: no IDO licensing
    signal = 0.05 / (0.05 + cfg.biology.fields.TNF.K) + 0.01 / (0.01 + cfg.biology.fields.IL1b.K)
    k = p.exposure_rate * signal
    np.testing.assert_allclose(exposed.pop["exposure"], k / (k + p.exposure_decay), rtol=1e-4)
    assert exposed.secretion()["PGE2"].min() > 3 * quiet.secretion()["PGE2"].max()


def test_ido_licensing_needs_ifng(cfg):
    h = RuleHarness(cfg, "msc", N, dt=10.0, **cols(N)).clamp(IFNg=1.0, TNF=1.0).run(400)
    assert set(h.phenotypes()) == {"MSC_licensed"}


def test_injected_columns(cfg):
    h = RuleHarness(cfg, "msc", 1)
    ctx = StepContext(np, 0, 1, 2.0, h.bio, cfg.scenario)
    ids = np.arange(10, dtype=np.int64)
    out = h.type.injected(ctx, ids, True, weight=4.0, potency=0.5, inactivated=True)
    np.testing.assert_array_equal(out["weight"], 4.0)
    np.testing.assert_array_equal(out["potency"], 0.5)
    assert out["inactivated"].all() and (out["state"] == 1.0).all()
    plain = h.type.injected(ctx, ids, False)
    assert (plain["weight"] == 1.0).all() and not plain["inactivated"].any()


def test_live_msc_keep_the_toupet_half_life_and_feed_the_pool(cfg):
    n, dt = 4000, 60.0
    h = RuleHarness(cfg, "msc", n, dt=dt, **cols(n, persistent=np.zeros(n, bool)))
    h.run(24 * 11)
    assert 0.45 < h.pop.n / n < 0.55
    assert h.world.apoptotic_msc > 0.0
    assert math.isfinite(h.world.apoptotic_msc)
