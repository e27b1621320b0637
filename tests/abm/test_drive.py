"""The disease drive (abm.drive): baseline + leak_gain · S · E + fragment_gain · F, against hand
computations on a fake model, and in the model (checkpointed)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import abm
from abm.drive import Drive, effusion, synovitis
from abm.model import JointModel
from abm.params import default_biology
from abm.state import Flags

BIO = default_biology()


class Pop:
    def __init__(self, state):
        self.cols = {"state": np.asarray(state, dtype=np.float32)}
        self.n = len(state)

    def __getitem__(self, key):
        return self.cols[key]


def fake(fls, mac, *, drive=0.4, severity=1.5, sf_ml=14.0, degraded=0.0):
    scenario = SimpleNamespace(inflammatory_drive=drive)
    cfg = SimpleNamespace(
        scenario=scenario, patient=SimpleNamespace(severity=severity, sf_volume_ml=sf_ml)
    )
    return SimpleNamespace(
        xp=np, cfg=cfg, flags=Flags(),
        types=[SimpleNamespace(name="fls"), SimpleNamespace(name="macrophage")],
        cells={"fls": Pop(fls), "macrophage": Pop(mac)},
        matrix=SimpleNamespace(degraded_last=degraded),
    )  # fmt: skip


CTX = SimpleNamespace(dt=10.0, bio=BIO)


def test_synovitis_pools_fls_activation_and_pro_inflammatory_macrophages():
    m = fake([0.2, 0.4], [-0.5, 0.9])
    assert synovitis(m) == pytest.approx((0.2 + 0.4 + 0.0 + 0.9) / 4, rel=1e-6)
    assert synovitis(fake([], [])) == 0.0


def test_effusion_is_relative_to_a_healthy_knee_and_bounded():
    p = BIO.drive
    assert effusion(p.healthy_sf_ml, p) == 1.0
    assert effusion(14.0, p) == pytest.approx(14.0 / p.healthy_sf_ml)
    assert effusion(1e6, p) == p.max_effusion


def test_drive_responds_to_synovitis_as_declared():
    p = BIO.drive
    m = fake([0.2, 0.4], [-0.5, 0.9])
    d = Drive(m)
    assert d.value == pytest.approx(0.4 * 1.5)  # before the first update: the baseline
    d.update(CTX, m)
    S, E = 0.375, 14.0 / p.healthy_sf_ml
    assert d.value == pytest.approx(0.6 + p.leak_gain * S * E, rel=1e-6)
    m.cells["fls"] = Pop([1.0, 1.0])
    d.update(CTX, m)
    S2 = (2.0 + 0.9) / 4
    assert d.value == pytest.approx(0.6 + p.leak_gain * S2 * E, rel=1e-6)


def test_fragment_pool_follows_its_ode_and_feeds_the_drive():
    p = BIO.drive
    tau = p.fragment_lifetime_days * 1440.0
    m = fake([0.0], [0.0], drive=0.0, degraded=2e-4)  # per 10-min step: D = 2e-5/min
    d = Drive(m)
    d.update(CTX, m)
    F1 = p.fragment_yield * 2e-5 * tau * (1.0 - math.exp(-10.0 / tau))
    assert d.fragments == pytest.approx(F1, rel=1e-12)
    assert d.value == pytest.approx(p.fragment_gain * F1, rel=1e-12)  # S = 0
    for _ in range(int(20 * tau / 10)):
        d.update(CTX, m)
    assert d.fragments == pytest.approx(p.fragment_yield * 2e-5 * tau, rel=1e-6)
    F0 = d.fragments
    m.matrix.degraded_last = 0.0
    for _ in range(144):  # one day
        d.update(CTX, m)
    assert d.fragments == pytest.approx(F0 * math.exp(-1440.0 / tau), rel=1e-9)


def test_the_model_drive_and_pools_survive_a_checkpoint(small):
    cfg = abm.compose([*small, "scenario=oa", "sim.days=0.1"])
    m = JointModel(cfg)
    for _ in range(3):
        m.step()
    assert m.drive.value > 0.3  # baseline 0.3 + leakage of an inflamed, effused joint
    m.world.add_apoptotic(7.5)
    state = m.get_state()
    r = JointModel.from_state(cfg, state)
    assert r.drive.value == m.drive.value
    assert r.drive.fragments == m.drive.fragments
    assert r.world.apoptotic_msc == 7.5
    m.step()
    r.step()
    assert r.drive.value == m.drive.value
    assert r.world.apoptotic_msc == m.world.apoptotic_msc
    np.testing.assert_array_equal(r.cells["macrophage"]["state"], m.cells["macrophage"]["state"])
