"""Chondrocyte rule (biology v2): MSC anti-catabolic action (PROT secretion down with TSG-6,
TIMP-like PROT uptake up with TGF-β/TSG-6) and receptor-scale IL-1β/TNF sensing, checked
against hand-computed values under clamped fields."""

from __future__ import annotations

import numpy as np
import pytest

import abm
from abm.cells.harness import RuleHarness


@pytest.fixture(scope="module")
def cfg():
    return abm.compose(["scenario=healthy"])  # no mechanical drive


def chondrocytes(cfg, c, alive=None) -> RuleHarness:
    c = np.asarray(c, np.float32)
    alive = np.ones(c.size, bool) if alive is None else np.asarray(alive)
    return RuleHarness(cfg, "chondrocyte", c.size, state=c, alive=alive)


def test_prot_secretion_falls_with_tsg6_as_declared(cfg):
    h = chondrocytes(cfg, [0.8, 0.8, 0.8, 0.8, 0.0, 0.8], alive=[1, 1, 1, 1, 1, 0])
    p, K = h.type.p, h.bio.fields["TSG6"].K
    tsg6 = np.array([0.0, K, 9 * K, 1e6 * K, 9 * K, 9 * K], np.float32)
    prot = h.clamp(TSG6=tsg6).secretion()["PROT"]
    H = np.array([0.0, 0.5, 0.9, 1.0, 0.9, 0.9])  # hill_n = 1
    assert h.bio.hill_n == 1.0
    want = p.secretion["PROT"] * np.array([0.8, 0.8, 0.8, 0.8, 0.0, 0.0])
    want = want * (1.0 - p.protease_suppression * H)
    np.testing.assert_allclose(prot, want, rtol=1e-5, atol=1e-9)
    assert prot[0] > prot[1] > prot[2] > prot[3] > 0  # monotone, floor 1 - m_p


def test_timp_uptake_rises_with_tgfb_and_tsg6(cfg):
    h = chondrocytes(cfg, [0.5] * 5, alive=[1, 1, 1, 1, 0])
    p, f = h.type.p, h.bio.fields
    h.clamp(
        TGFb=np.array([0.0, f["TGFb"].K, 0.0, f["TGFb"].K, f["TGFb"].K], np.float32),
        TSG6=np.array([0.0, 0.0, f["TSG6"].K, f["TSG6"].K, f["TSG6"].K], np.float32),
    )
    k = h.type.uptake(h.context(), h.pop)["PROT"]
    np.testing.assert_allclose(k, p.timp_uptake * np.array([0.0, 0.25, 0.25, 0.5, 0.0]),
                               rtol=1e-6)  # fmt: skip


def test_catabolic_drive_senses_il1b_at_receptor_scale(cfg):
    """One Euler step from c = 0 with IL-1β at the chondrocyte's own K: dc = dt k_cat / 2."""
    h = chondrocytes(cfg, [0.0, 0.0])
    K = h.type.p.K
    assert 0.01 <= K["IL1b"] <= 1.0 and 0.01 <= K["TNF"] <= 1.0
    h.clamp(IL1b=np.array([K["IL1b"], 0.0], np.float32),
            TNF=np.array([0.0, K["TNF"]], np.float32)).run(1)  # fmt: skip
    want = h.dt * h.type.p.catabolic_rate * 0.5
    np.testing.assert_allclose(h.pop["state"], [want, want], rtol=1e-5)
