"""FLS rule (biology v2): graded activation with a per-cell responsiveness g, damping by the
PGE2/TSG-6 the FLS senses (no MSC contact term), receptor-scale Hill constants; checked
against the closed-form steady state and one-step solution under clamped fields."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import abm
from abm.cells.fls import Draw
from abm.cells.harness import RuleHarness
from kernels.random import normal

N = 2000


@pytest.fixture(scope="module")
def cfg():
    return abm.compose(["scenario=oa"])  # drive 0.6 x severity 1


def expected(h: RuleHarness, cfg, a0: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """a* and a after ``steps`` of dt for the clamp of :func:`harness` (TNF, PGE2, TSG6 at
    their Hill constants, so each H = 1/2 at any Hill exponent)."""
    p = h.type.p
    drive = float(cfg.scenario.inflammatory_drive) * float(cfg.patient.severity)
    pro = 0.5 + drive
    damp = 1.0 - p.msc_damping * 0.5 * (0.5 + 0.5)
    g = np.exp(p.responsiveness_sigma * normal(np, h.seed, 0, Draw.RESPONSIVENESS, h.pop["id"]))
    r = p.activation_rate * g * pro * damp
    lam = r + p.deactivation_rate
    a_star = r / lam
    return a_star, a_star + (a0 - a_star) * np.exp(-lam * h.dt * steps)


def harness(cfg, a0: np.ndarray, dt: float = 2.0) -> RuleHarness:
    h = RuleHarness(cfg, "fls", a0.size, dt=dt, state=a0.copy())
    fields = h.bio.fields
    return h.clamp(TNF=h.type.p.K["TNF"], PGE2=fields["PGE2"].K, TSG6=fields["TSG6"].K)


def test_steady_state_matches_the_formula(cfg):
    a0 = np.full(N, 0.9, np.float32)
    h = harness(cfg, a0, dt=60.0).run(
        300, remove_dead=False
    )  # 300 h: >= 15 time constants for every g here
    a_star, _ = expected(h, cfg, a0, 0)
    assert np.abs(h.pop["state"] - a_star).max() < 1e-4
    assert 0.0 < h.pop["state"].min() and h.pop["state"].max() < 1.0


def test_one_step_is_the_exact_solution_at_any_dt(cfg):
    a0 = np.linspace(0.0, 1.0, N).astype(np.float32)
    for dt in (2.0, 600.0):
        h = harness(cfg, a0, dt=dt).run(1, remove_dead=False)
        _, a1 = expected(h, cfg, a0, 1)
        np.testing.assert_allclose(h.pop["state"], a1, atol=2e-6)


def test_responsiveness_is_lognormal_and_a_function_of_the_id(cfg):
    h = harness(cfg, np.zeros(N, np.float32)).run(1)
    g = h.pop["responsiveness"]
    sigma = h.type.p.responsiveness_sigma
    assert abs(np.std(np.log(g)) - sigma) < 0.05 * sigma
    assert abs(np.median(g) - 1.0) < 0.05
    again = h.type.responsiveness(np, h.seed, h.pop["id"])
    np.testing.assert_array_equal(g, again)  # seeding and daughters draw the same function
    assert np.unique(g).size > 0.99 * N  # float32: a rare tie


def test_activation_is_graded_by_responsiveness(cfg):
    h = harness(cfg, np.full(N, 0.5, np.float32), dt=60.0).run(300, remove_dead=False)
    a, g = h.pop["state"], h.pop["responsiveness"]
    assert np.std(a) > 0.05
    assert np.percentile(a, 90) - np.percentile(a, 10) > 0.15
    order = np.argsort(g)
    assert np.all(np.diff(a[order]) >= 0)  # more responsive, more activated


def test_no_contact_dependence_remains(cfg):
    a0 = np.full(N, 0.3, np.float32)
    far = harness(cfg, a0).run(200, remove_dead=False)
    near = harness(cfg, a0)
    near.near[:] = 1.0
    near.run(200, remove_dead=False)
    np.testing.assert_array_equal(far.pop["state"], near.pop["state"])
    assert not hasattr(far.type.p, "msc_contact_um")


def test_sensed_pge2_tsg6_damp_activation(cfg):
    a0 = np.zeros(N, np.float32)
    plain = (
        RuleHarness(cfg, "fls", N, dt=60.0, state=a0.copy())
        .clamp(IL1b=0.05)
        .run(200, remove_dead=False)
    )
    calm = RuleHarness(cfg, "fls", N, dt=60.0, state=a0.copy())
    calm.clamp(IL1b=0.05, PGE2=100.0, TSG6=100.0).run(200, remove_dead=False)
    assert calm.pop["state"].mean() < 0.8 * plain.pop["state"].mean()


def test_receptor_scale_hill_constants(cfg):
    """FLS sense IL-1β and TNF with their own K (10-1000 pg/mL), not the field's."""
    h = RuleHarness(cfg, "fls", 4)
    K = h.type.p.K
    assert all(0.01 <= K[f] <= 1.0 for f in ("IL1b", "TNF"))
    h.clamp(IL1b=K["IL1b"], TNF=K["TNF"])
    np.testing.assert_allclose(h.sense.H("IL1_eff"), 0.5, rtol=1e-6)
    np.testing.assert_allclose(h.sense.H("TNF"), 0.5, rtol=1e-6)


def test_activation_mean_metric(cfg):
    h = harness(cfg, np.array([0.2, 0.4, 0.9], np.float32))
    (metric,) = [m for m in h.type.metrics() if m.name == "fls_activation_mean"]
    model = SimpleNamespace(xp=np, cells={"fls": h.pop})
    assert float(metric.compute(model)) == pytest.approx(0.5, abs=1e-6)
    h.pop.keep(np.zeros(3, bool))
    assert float(metric.compute(model)) == 0.0
