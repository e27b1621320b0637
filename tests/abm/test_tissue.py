"""Tissue geometry: layering, vessels, per-compartment transport handed to the solver."""

from __future__ import annotations

import numpy as np

import abm
from abm.config import FIELD_NAMES
from abm.tissue import BONE, CARTILAGE, FLUID, LINING, SUBLINING, build_tissue


def test_layers_vessels_and_transport():
    cfg = abm.compose()
    t = build_tissue(cfg.lattice, seed=0)
    col = t.compartment[:, 0]
    assert list(np.flatnonzero(np.diff(col)) + 1) == [10, 60, 110, 113]
    assert col[0] == BONE and col[-1] == SUBLINING
    assert (t.compartment == t.compartment[:, :1]).all()  # layers are flat
    assert (t.compartment.ravel()[t.vessels] == SUBLINING).all()
    D, decay = t.transport(cfg.biology)
    il1b = FIELD_NAMES.index("IL1b")
    assert (D[:, t.compartment == BONE] == 0).all()  # bone is a wall
    assert np.allclose(D[il1b][t.compartment == CARTILAGE], 600)
    fluid = decay[il1b][t.compartment == FLUID]
    lining = decay[il1b][t.compartment == LINING]
    assert np.allclose(fluid, 0.02 + 0.005) and np.allclose(lining, 0.02)


def test_3d_extrudes_the_same_layering():
    cfg = abm.compose(["lattice=3d", "lattice.shape=[80,6,5]"])
    t = build_tissue(cfg.lattice, seed=1)
    assert t.compartment.shape == (80, 6, 5)
    assert (t.compartment == t.compartment[:, :1, :1]).all()
