"""Tissue geometry: layering, vessels, per-compartment transport handed to the solver."""

from __future__ import annotations

import numpy as np

import abm
from abm.cells.base import WorldDraw
from abm.config import FIELD_NAMES
from abm.params import load_biology
from abm.tissue import (
    BONE,
    CARTILAGE,
    FLUID,
    LINING,
    SUBLINING,
    VESSEL_DRAW,
    VesselSink,
    build_tissue,
)


def test_layers_vessels_and_transport():
    cfg = abm.compose()
    t = build_tissue(cfg.lattice, seed=0)
    col = t.compartment[:, 0]
    assert list(np.flatnonzero(np.diff(col)) + 1) == [10, 60, 65, 68]
    assert col[0] == BONE and col[-1] == SUBLINING
    assert (t.compartment == t.compartment[:, :1]).all()  # layers are flat
    assert (t.compartment.ravel()[t.vessels] == SUBLINING).all()
    D, decay = t.transport(cfg.biology)
    il1b = FIELD_NAMES.index("IL1b")
    assert (D[:, t.compartment == BONE] == 0).all()  # bone is a wall
    assert np.allclose(D[il1b][t.compartment == CARTILAGE], 600)
    fluid = decay[il1b][t.compartment == FLUID]
    lining = decay[il1b][t.compartment == LINING]
    sub = decay[il1b][t.compartment == SUBLINING]
    # the fluid decays as one well-mixed compartment (abm/fluid.py), not in the solver
    assert (fluid == 0).all() and np.allclose(lining, 0.02)
    assert np.allclose(sub, 0.02 + cfg.biology.transport.sublining_clearance)
    assert cfg.biology.transport.sublining_clearance > 0


def test_vessels_take_up_every_field_by_an_exact_first_order_loss():
    cfg = abm.compose(["lattice.shape=[80,12]", "biology.transport.vessel_clearance=0.05",
                       "lattice.vessel_density=0.1"])  # fmt: skip
    t = build_tissue(cfg.lattice, seed=0)
    bio = load_biology(cfg.biology)
    sink = VesselSink(t, bio, 2.0, np, "float64")
    u = np.ones((len(FIELD_NAMES), *t.shape))
    out = sink(u)
    assert out is u  # in place
    flat = u.reshape(len(FIELD_NAMES), -1)
    is_vessel = np.zeros(t.n_voxels, dtype=bool)
    is_vessel[t.vessels] = True
    assert t.vessels.size > 0
    np.testing.assert_allclose(flat[:, is_vessel], np.exp(-0.05 * 2.0), rtol=1e-15)
    assert (flat[:, ~is_vessel] == 1).all()
    off = VesselSink(t, load_biology(abm.compose(["biology.transport.vessel_clearance=0"]).biology),
                     2.0, np, "float64")  # fmt: skip
    v = np.ones_like(u)
    assert (off(v) == 1).all()


def test_3d_extrudes_the_same_layering():
    cfg = abm.compose(["lattice=3d", "lattice.shape=[80,6,5]"])
    t = build_tissue(cfg.lattice, seed=1)
    assert t.compartment.shape == (80, 6, 5)
    assert (t.compartment == t.compartment[:, :1, :1]).all()


def test_vessels_are_counter_based_draws_in_the_deep_sublining():
    lat = abm.compose(["lattice.vessel_density=0.05"]).lattice
    a, b, c = build_tissue(lat, 0), build_tissue(lat, 0), build_tissue(lat, 1)
    np.testing.assert_array_equal(a.vessels, b.vessels)  # same seed, same vessels
    assert not np.array_equal(a.vessels, c.vessels)
    assert np.all(np.diff(a.vessels) > 0)  # sorted, distinct
    sub = a.compartment.ravel() == SUBLINING
    assert sub[a.vessels].all()
    rows = a.vessels // int(np.prod(a.shape[1:]))
    assert rows.min() >= a.rows["sublining"][0] + 2
    assert a.vessels.size == round(0.05 * _deep(a))


def _deep(t):
    lateral = int(np.prod(t.shape[1:]))
    return (t.shape[0] - (t.rows["sublining"][0] + 2)) * lateral


def test_the_vessel_purpose_is_registered_with_the_other_draws():
    assert WorldDraw.VESSELS == VESSEL_DRAW
