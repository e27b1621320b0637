"""The dish's medium column against known answers (abm.assays.dish): mass balance of a closed
well, the analytic steady state with decay, the secretion conversion, and the transwell vs
contact geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

import abm
from abm.assays.dish import FIDX, Column, CultureSpec, Dish, Well, secretion_conversion
from abm.params import load_biology

AVOGADRO = 6.02214076e23


@pytest.fixture(scope="module")
def bio_no_decay():
    cfg = abm.compose(["biology.fields.IL6.decay=0", "biology.fields.PGE2.decay=0"], warn=False)
    return load_biology(cfg.biology)


@pytest.fixture(scope="module")
def bio():
    return load_biology(abm.compose([], warn=False).biology)


def test_well_geometry():
    w = Well(area_cm2=1.9, medium_ml=0.5, dx_um=25.0)
    assert w.height_um == pytest.approx(0.5 / 1.9 * 1e4)  # 2.63 mm
    assert w.n_voxels * w.voxel_um == pytest.approx(w.height_um)
    assert w.n_voxels * w.voxel_ml == pytest.approx(0.5)  # the layers make up the medium
    assert w.index(0.0) == 0 and w.index(1000.0) == int(1000.0 // w.voxel_um)
    assert w.index(1e9) == w.n_voxels - 1


def test_closed_well_accumulates_rate_times_time(bio_no_decay):
    """A constant secretion into a closed well with no decay: total = rate x time, exactly."""
    w = Well(1.9, 0.5, 25.0)
    col = Column(w, bio_no_decay, dt_min=2.0)
    src = np.zeros_like(col.u)
    rate = 0.37  # ng/mL/min in the floor voxel
    src[FIDX["IL6"], 0] = rate
    steps = 500
    for _ in range(steps):
        col.step(src)
    total = col.amount()[FIDX["IL6"]]  # ng
    assert total == pytest.approx(rate * w.voxel_ml * 2.0 * steps, rel=1e-12)
    assert col.u[FIDX["IL6"], 0] > col.u[FIDX["IL6"], -1] > 0  # made at the floor, spreading up
    assert np.all(col.u[[i for i in range(col.u.shape[0]) if i != FIDX["IL6"]]] == 0)


def test_steady_state_with_decay_matches_the_analytic_profile(bio):
    """Floor flux J into a closed column with decay λ: total amount J A / λ exactly, and the
    profile C(z) = J cosh((H - z)/L) / (D/L sinh(H/L)), L = sqrt(D/λ)."""
    w = Well(1.9, 0.5, 10.0)
    col = Column(w, bio, dt_min=2.0)
    f = FIDX["IL6"]
    D, lam = bio.fields["IL6"].D_fluid, bio.fields["IL6"].decay
    src = np.zeros_like(col.u)
    src[f, 0] = 0.05  # ng/mL/min in the floor voxel
    for _ in range(3000):  # (1 + λ dt)^-3000 ~ e^-118: converged
        col.step(src)
    made = 0.05 * w.voxel_ml  # ng/min
    assert col.amount()[f] * lam == pytest.approx(made, rel=1e-9)
    J = 0.05 * w.voxel_um  # ng/mL · µm / min through the floor
    L, H = math.sqrt(D / lam), w.height_um
    z = (np.arange(w.n_voxels) + 0.5) * w.voxel_um
    exact = J * np.cosh((H - z) / L) / (D / L * math.sinh(H / L))
    near = z < 2 * L
    np.testing.assert_allclose(col.u[f][near], exact[near], rtol=0.03)


def test_secretion_conversion_by_hand(bio):
    """molecules/s -> ng/mL/min (IL-6, 21 kDa) and µM/min (KYN) in a 0.1-mL voxel."""
    conv = secretion_conversion(bio, 0.1)
    per_min = 60.0 / AVOGADRO  # mol/min per molecule/s
    il6 = per_min * 21.0e3 * 1e9 / 0.1  # ng/mL/min
    kyn = per_min / 0.1e-3 * 1e6  # µM/min
    assert conv[FIDX["IL6"]] == pytest.approx(il6, rel=1e-12)
    assert conv[FIDX["KYN"]] == pytest.approx(kyn, rel=1e-12)


def test_transwell_reaches_the_floor_later_then_equally(bio_no_decay):
    """A pulse of PGE2 (no decay) released on the insert reaches the floor later than one
    released on the floor; in a closed well both end uniform at amount / volume."""
    w = Well(1.9, 0.5, 25.0)
    f = FIDX["PGE2"]
    floors = {}
    for name, height in (("contact", 0.0), ("transwell", 1000.0)):
        col = Column(w, bio_no_decay, dt_min=2.0)
        src = np.zeros_like(col.u)
        src[f, w.index(height)] = 10.0  # ng/mL/min for one step
        col.step(src)
        trace = [col.u[f, 0]]
        for _ in range(3000):
            col.step()
            trace.append(col.u[f, 0])
        floors[name] = np.array(trace)
        assert col.amount()[f] == pytest.approx(10.0 * 2.0 * w.voxel_ml, rel=1e-9)  # round-off
    c, t = floors["contact"], floors["transwell"]
    uniform = 10.0 * 2.0 * w.voxel_ml / 0.5
    assert np.all(c[:10] > 3 * t[:10])  # the first 20 min: the insert's PGE2 is not there yet
    arrive = {k: int(np.argmax(v >= 0.5 * uniform)) for k, v in floors.items()}
    assert arrive["transwell"] > arrive["contact"]  # half the final level, later
    assert c[-1] == pytest.approx(uniform, rel=1e-6)
    assert t[-1] == pytest.approx(uniform, rel=1e-6)


def test_msc_on_the_insert_give_the_floor_less_pge2_than_in_contact():
    """The real MSC rule: with the model's PGE2 decay, the floor sees more PGE2 when the MSCs
    share it than when they sit 1 mm up (a consequence the docs report)."""
    cfg = abm.compose([], warn=False)
    w = Well(1.9, 0.5, 25.0)
    floor = {}
    for name, height in (("contact", 0.0), ("transwell", 1000.0)):
        dish = Dish(cfg, w, [CultureSpec("msc", 5e4, 10, height_um=height)],
                    stimulus={"IL1b": 1.0}, seed=3)  # fmt: skip
        dish.run(90)  # 3 h
        floor[name] = dish.sensed(0)[FIDX["PGE2"]]
        assert dish.culture("msc").h.pop["exposure"].mean() > 0.1  # IL-1β exposes them
    assert floor["contact"] > 5 * floor["transwell"] > 0
