"""The well-mixed synovial fluid (abm/fluid.py): the mixing rule against hand-computed cases,
exact mass conservation with the lattice solver, the analytic whole-knee balance of a steady
surface flux (2D and 3D), and the IL-1Ra bolus comparator."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest

import abm
from abm.errors import ConfigError
from abm.fluid import SynovialFluid, sf_height_um
from abm.params import FIELD_NAMES, load_biology
from abm.tissue import FLUID, LINING, build_tissue
from kernels.diffusion import make_stepper

F = len(FIELD_NAMES)
IL1B = FIELD_NAMES.index("IL1b")
IL1RA = FIELD_NAMES.index("IL1RA")
NO_LOSS = [f"biology.fields.{f}.decay=0" for f in FIELD_NAMES] + [
    "biology.fluid_clearance=0",
    "biology.transport.sublining_clearance=0",
    "biology.transport.vessel_clearance=0",
]


def thin(shape, *extra):
    """A tiny layered lattice: 1 bone, 5 cartilage, 5 fluid, 3 lining, rest sublining rows."""
    return abm.compose([f"lattice.shape=[{','.join(map(str, shape))}]", "lattice.dx_um=10",
                        "lattice.bone_um=10", "lattice.cartilage_um=50", "lattice.fluid_um=50",
                        "lattice.lining_um=30", "lattice.dtype=float64", "therapy=none",
                        *extra])  # fmt: skip


def fake_model(cfg):
    tissue = build_tissue(cfg.lattice, 0)
    return SimpleNamespace(xp=np, dtype=np.float64, tissue=tissue, cfg=cfg,
                           bio=load_biology(cfg.biology))  # fmt: skip


def test_the_compartment_height_is_volume_over_area():
    assert sf_height_um(SimpleNamespace(sf_volume_ml=10, synovial_area_cm2=150)) == pytest.approx(
        10 / 150 * 1e4
    )
    fl = SynovialFluid(fake_model(thin([16, 3])))
    assert fl.h_sim == 50 and fl.h_eff == pytest.approx(666.6667, rel=1e-6)


def test_mix_by_hand():
    cfg = thin([16, 2], "biology.fluid_clearance=0.01", "biology.fields.IL1b.decay=0.02")
    m = fake_model(cfg)
    fl = SynovialFluid(m)
    a, b = fl.rows
    u = np.zeros((F, 16, 2))
    before = np.full(F, 1.0)
    u[:, a:b] = 1.0
    u[IL1B, a:b, 0] = 3.0  # mean of the 10 fluid voxels: 2
    u[IL1B, 0, 0] = 7.0  # tissue: untouched
    out = fl.mix(u, 2.0, before)
    expected = (1.0 + (2.0 - 1.0) * 50 / (1e5 / 150)) * math.exp(-(0.02 + 0.01) * 2.0)
    np.testing.assert_allclose(out[IL1B, a:b], expected, rtol=1e-14)
    assert out[IL1B, 0, 0] == 7.0
    i = FIELD_NAMES.index("PROT")  # unchanged by the step: only its own decay + clearance
    np.testing.assert_allclose(out[i, a:b], math.exp(-(0.002 + 0.01) * 2.0), rtol=1e-14)


@pytest.mark.parametrize("shape", [[22, 6], [20, 4, 3]])
def test_mixing_conserves_the_amount_exactly_without_losses(shape, rng):
    cfg = thin(shape, *NO_LOSS)
    m = fake_model(cfg)
    t, fl = m.tissue, SynovialFluid(m)
    D, decay = t.transport(m.bio, dtype="float64")
    assert (decay == 0).all()
    step = make_stepper(t.shape, t.dx_um, 2.0, D, decay, xp=np, dtype="float64")
    u = rng.random((F, *t.shape))
    u[:, t.compartment == 0] = 0.0  # bone holds nothing (a wall)
    a, b = fl.rows
    u[:, a:b] = 0.3  # a mixed fluid
    total = fl.amount(u, t.dx_um)
    for _ in range(40):
        before = fl.level(u)
        u = fl.mix(step(u.copy()), 2.0, before)
        assert np.ptp(u[:, a:b].reshape(F, -1), axis=1).max() == 0  # one concentration
    np.testing.assert_allclose(fl.amount(u, t.dx_um), total, rtol=1e-12)
    assert not np.allclose(u[:, a], 0.3)  # it did exchange with the tissue


@pytest.mark.parametrize("shape", [[20, 3], [20, 3, 2]])
def test_a_steady_surface_flux_holds_the_whole_knee_balance(shape):
    """Source S in the lining, no loss in the tissue: at steady state all of it enters the
    fluid, J = S · h_lining, and C = J / (h_eff (λ + k)) (exactly J dt / (h_eff (e^{(λ+k)dt}
    - 1)) per step of dt)."""
    lam, k, S, dt = 0.02, 0.005, 1e-3, 1.0
    cfg = thin(shape, *NO_LOSS, f"biology.fields.IL1b.decay={lam}",
               f"biology.fluid_clearance={k}")  # fmt: skip
    m = fake_model(cfg)
    t, fl = m.tissue, SynovialFluid(m)
    D, decay = t.transport(m.bio, dtype="float64")
    assert (decay[IL1B][t.compartment == FLUID] == 0).all()  # the fluid decays in mix
    assert (decay[IL1B][t.compartment != FLUID] == lam).all()
    decay[IL1B][t.compartment != FLUID] = 0.0  # no sink in the tissue for this balance
    step = make_stepper(t.shape, t.dx_um, dt, D, decay, xp=np, dtype="float64")
    src = np.zeros((F, *t.shape))
    src[IL1B][t.compartment == LINING] = S
    h_lining = 3 * t.dx_um
    J = S * h_lining  # conc · µm / min
    u = np.zeros((F, *t.shape))
    for _ in range(6000):
        before = fl.level(u)
        u = fl.mix(step(u, src), dt, before)
    c = float(fl.level(u)[IL1B])
    rate = lam + k
    exact = J * dt / (fl.h_eff * (math.exp(rate * dt) - 1))
    assert c == pytest.approx(exact, rel=1e-6)
    assert c == pytest.approx(J / (fl.h_eff * rate), rel=rate * dt)


def test_a_slab_thicker_than_the_fluid_is_refused():
    with pytest.raises(ConfigError, match=r"^lattice\.fluid_um: .*= 666.7 µm"):
        abm.compose(["lattice.fluid_um=700"])


def test_the_il1ra_bolus_enters_the_fluid_and_clears_with_its_half_life(small, caplog):
    walls = [f"biology.fields.IL1RA.{d}=0" for d in ("D_cartilage", "D_synovium")]
    cfg = abm.compose([*small, "therapy=il1ra_bolus", "therapy.dose_mg=150", "therapy.day=0",
                       "patient.sf_volume_ml=20", "lattice.dtype=float64", *walls])  # fmt: skip
    model = abm.JointModel(cfg)
    assert not model.flags.injected
    caplog.set_level(logging.INFO, logger="abm.events")
    model.step()
    assert model.flags.injected and model.cells["msc"].n == 0
    c0 = 150 * 1e6 / 20  # ng/mL
    row = model.metrics.iloc[-1]
    assert row["il1ra_fluid"] == pytest.approx(c0, rel=1e-9)
    assert any("IL-1Ra" in r.getMessage() for r in caplog.records if r.name == "abm.events")
    model.run(days=6 * model.dt_min / 1440)  # 6 more steps: decays, never injected again
    rate = float(model.bio.fields["IL1RA"].decay) + float(model.bio.fluid_clearance)
    c = model.metrics["il1ra_fluid"].to_numpy()
    np.testing.assert_allclose(c[2:] / c[1:-1], math.exp(-rate * model.dt_min), rtol=1e-6)
    t_half = math.log(2) / rate
    assert c[-1] == pytest.approx(c0 * 0.5 ** (6 * model.dt_min / t_half), rel=1e-5)
