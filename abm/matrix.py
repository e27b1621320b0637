"""Cartilage matrix (tissue stage of the data flow): aggrecan (AGG) and collagen II (COL2) on
the cartilage voxels, healthy = 1.

Aggrecan: synthesis in each living chondrocyte's territory (the cartilage voxels nearest to
it), degradation by PROT; collagen II degraded only where AGG < threshold. Semi-implicit
update of dX/dt = s (1 - X) - k PROT X, X_new = (X + dt s) / (1 + dt (s + k PROT)), so both
stay in [0, 1] at any dt. Slow rates (biology.matrix): in-vivo turnover for synthesis,
explant GAG release under IL-1 for degradation (see the declarations).

Data flow: tissue stage, after transport: the chondrocytes' synthesis drive and the PROT field
-> AGG, COL2 -> ``degraded_last`` (read by the disease drive, abm/drive.py, in the same
stage), the cartilage metrics and the snapshots.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from abm.backend import to_numpy
from abm.cells.base import StepContext
from abm.tissue import CARTILAGE

MAINTAINER = "chondrocyte"  # the cell type whose synthesis drive maintains the matrix


def territories(tissue: Any, chondro_voxels: np.ndarray) -> np.ndarray:
    """For each cartilage voxel, the flat voxel of the chondrocyte that maintains it (nearest
    by lattice steps, grown from each cell in turn; -1 if there is no chondrocyte)."""
    shape = tissue.shape
    label = np.full(shape, -1, dtype=np.int64)
    label.reshape(-1)[chondro_voxels] = chondro_voxels
    cart = tissue.compartment == CARTILAGE
    while True:
        todo = cart & (label < 0)
        if not todo.any() or chondro_voxels.size == 0:
            break
        grown = label.copy()
        for ax in range(len(shape)):
            for shift in (1, -1):
                src = np.roll(label, shift, axis=ax)
                edge = [slice(None)] * len(shape)
                edge[ax] = 0 if shift == 1 else -1
                src[tuple(edge)] = -1  # no wrap-around
                take = todo & (grown < 0) & (src >= 0)
                grown[take] = src[take]
        if (grown == label).all():
            break
        label = grown
    return label.reshape(-1)[np.flatnonzero(cart.reshape(-1))]


class Matrix:
    """AGG and COL2 as (*shape) backend arrays (zero outside the cartilage)."""

    def __init__(self, xp: Any, tissue: Any, dtype: Any, agg0: float, col20: float) -> None:
        self.xp = xp
        self.dtype = dtype
        self.cart_idx = xp.asarray(np.flatnonzero(tissue.compartment.ravel() == CARTILAGE))
        self.agg = xp.zeros(tissue.shape, dtype=dtype)
        self.col2 = xp.zeros(tissue.shape, dtype=dtype)
        self.agg.reshape(-1)[self.cart_idx] = agg0
        self.col2.reshape(-1)[self.cart_idx] = col20
        self._synth = xp.zeros(tissue.n_voxels, dtype=dtype)
        self.owner: Any = None
        # AGG + COL2 removed by protease in the last update, mean over cartilage voxels
        # (1 = one healthy voxel's worth; 0-d backend array, >= 0)
        self.degraded_last: Any = xp.zeros((), dtype=dtype)

    def bind(self, model: Any) -> None:
        """Fix each cartilage voxel's chondrocyte (after the initial cells are placed)."""
        voxels = to_numpy(model.cells[MAINTAINER]["voxel"])
        self.owner = self.xp.asarray(territories(model.tissue, voxels))

    def field(self, name: str) -> Any:
        return {"AGG": self.agg, "COL2": self.col2}[name]

    def agg_cart(self) -> Any:
        return self.agg.reshape(-1)[self.cart_idx]

    def col2_cart(self) -> Any:
        return self.col2.reshape(-1)[self.cart_idx]

    def update(self, ctx: StepContext, model: Any) -> None:
        """One step: synthesis drive of the chondrocytes in their territories, degradation
        by the model's PROT field (see :meth:`advance`)."""
        chondrocyte, pop = model.types_by_name[MAINTAINER], model.cells[MAINTAINER]
        self._synth.fill(0)
        if pop.n:
            self._synth[pop["voxel"]] = chondrocyte.synthesis(ctx, pop)
        self.advance(ctx.bio.matrix, ctx.dt, model.u[model.fidx["PROT"]], self._synth)

    def advance(self, m: Any, dt: float, prot: Any, synth: Any) -> None:
        """One semi-implicit step of length ``dt`` (min) with parameters ``m``
        (:class:`abm.params.MatrixParams`), the PROT field ``prot`` (*shape, ng/mL) and the
        synthesis drive ``synth`` (n_voxels,) at each chondrocyte's voxel.

        The protease removes dt·k·PROT·X_new of each field (the implicit degradation term:
        X_new - X = dt·s·(1 - X_new) - dt·k·PROT·X_new); ``degraded_last`` is its mean over
        the cartilage voxels, AGG and COL2 summed."""
        xp = self.xp
        owner = self.owner
        f = xp.where(owner >= 0, synth[xp.maximum(owner, 0)], 0.0)
        prot = prot.reshape(-1)[self.cart_idx]
        agg = self.agg.reshape(-1)
        col = self.col2.reshape(-1)
        a = agg[self.cart_idx]
        s = m.agg_synthesis * f
        ka = m.agg_degradation * prot
        a = (a + dt * s) / (1.0 + dt * (s + ka))
        c = col[self.cart_idx]
        sc = m.col2_synthesis * f
        kc = m.col2_degradation * prot * (a < m.agg_threshold)
        c = (c + dt * sc) / (1.0 + dt * (sc + kc))
        agg[self.cart_idx] = a.astype(self.dtype)
        col[self.cart_idx] = c.astype(self.dtype)
        self.degraded_last = xp.mean(dt * (ka * a + kc * c)).astype(self.dtype)
