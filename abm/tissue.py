"""Tissue: compartments, vessels and per-compartment transport (config -> lattice solver).

Builds, from the validated ``lattice`` config, the fixed compartment mask (layers stacked along
axis 0: bone, cartilage, synovial fluid, lining, sublining; 3D extrudes the same layering), the
vessel voxels in the sublining, and the per-voxel diffusivity and decay arrays that
:func:`kernels.diffusion.make_stepper` receives. Built once on the host; the model moves what
it needs to the backend.

Sinks: the fluid voxels get no decay in the solver (the well-mixed synovial fluid,
:mod:`abm.fluid`, applies decay and clearance to the compartment); the sublining adds
``biology.transport.sublining_clearance`` (lymphatic drainage) to every field's decay; vessel
voxels lose ``biology.transport.vessel_clearance`` (uptake into blood/lymph) through
:class:`VesselSink`, an exact pointwise factor applied after each transport step (kept out of
the solver's decay so that decay stays layered and the solver keeps its fast class path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from abm.config import compartment_rows
from abm.params import FIELD_NAMES
from abm.units import ML_PER_UM3
from kernels.random import uniform

BONE, CARTILAGE, FLUID, LINING, SUBLINING = range(5)
VESSEL_DRAW = 99  # draw purpose of vessel placement (step 0, by voxel): WorldDraw.VESSELS
COMPARTMENTS = {BONE: "bone", CARTILAGE: "cartilage", FLUID: "fluid", LINING: "lining",
                SUBLINING: "sublining"}  # fmt: skip


@dataclass(frozen=True)
class Tissue:
    """Host-side geometry of the joint patch.

    compartment: int8 (*shape) codes of :data:`COMPARTMENTS`; vessels: sorted int64 flat voxel
    indices (sublining); rows: compartment -> (first row, stop row) along axis 0; dx_um: µm.
    """

    shape: tuple[int, ...]
    dx_um: float
    compartment: np.ndarray
    vessels: np.ndarray
    rows: dict[str, tuple[int, int]]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL (a 2D lattice is a slab one voxel thick)."""
        return self.dx_um**3 * ML_PER_UM3

    def transport(self, bio: Any, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
        """Per-voxel diffusivity (F, *shape) in µm²/min and decay (F, *shape) in 1/min.

        Bone is impermeable (D = 0, a wall for the harmonic-mean faces); fluid and both
        synovium layers take their own D. Decay: the field's own everywhere but in the fluid
        (0 there: :mod:`abm.fluid` decays and clears the well-mixed compartment), plus
        ``bio.transport.sublining_clearance`` in the sublining.
        """
        F = len(FIELD_NAMES)
        D = np.zeros((F, *self.shape), dtype=np.float64)
        decay = np.zeros((F, *self.shape), dtype=np.float64)
        comp = self.compartment
        for f, name in enumerate(FIELD_NAMES):
            p = bio.fields[name]
            D[f][comp == CARTILAGE] = p.D_cartilage
            D[f][comp == FLUID] = p.D_fluid
            D[f][(comp == LINING) | (comp == SUBLINING)] = p.D_synovium
            decay[f] = p.decay
            decay[f][comp == FLUID] = 0.0
            decay[f][comp == SUBLINING] += bio.transport.sublining_clearance
        return D.astype(dtype), decay.astype(dtype)


class VesselSink:
    """Uptake into blood/lymph at the vessel voxels: after each transport step of ``dt`` min,
    every field there is multiplied by exp(-vessel_clearance · dt) (exact first-order loss,
    operator-split from the solver). Identity when the rate is 0 or there are no vessels."""

    def __init__(self, tissue: Tissue, bio: Any, dt: float, xp: Any, dtype: str) -> None:
        k = float(bio.transport.vessel_clearance)
        self.active = k > 0 and tissue.vessels.size > 0
        coords = np.unravel_index(tissue.vessels, tissue.shape)
        self.idx = (slice(None), *(xp.asarray(c) for c in coords))
        self.factor = float(np.exp(-k * float(dt)))
        self.dtype = dtype

    def __call__(self, u: Any) -> Any:
        if self.active:
            u[self.idx] *= np.dtype(self.dtype).type(self.factor)
        return u


def build_tissue(lattice: Any, seed: int) -> Tissue:
    """Compartments and vessels from the ``lattice`` config (vessels: counter-based draws keyed
    by (``seed``, step 0, :data:`VESSEL_DRAW`, voxel), like every other draw of a run)."""
    shape = tuple(int(s) for s in lattice.shape)
    rows = compartment_rows(lattice)
    order = ("bone", "cartilage", "fluid", "lining", "sublining")
    spans: dict[str, tuple[int, int]] = {}
    start = 0
    layer = np.empty(shape[0], dtype=np.int8)
    for code, name in enumerate(order):
        stop = start + rows[name]
        layer[start:stop] = code
        spans[name] = (start, stop)
        start = stop
    compartment = np.ascontiguousarray(
        np.broadcast_to(layer.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    )
    # vessels: a fixed random subset of sublining voxels, away from the lining by >= 2 rows
    sub = np.flatnonzero(compartment.ravel() == SUBLINING)
    row_of = sub // int(np.prod(shape[1:]))
    sub = sub[row_of >= spans["sublining"][0] + 2] if rows["sublining"] > 2 else sub
    n_vessels = max(1, round(lattice.vessel_density * sub.size)) if sub.size else 0
    # the n_vessels candidates with the smallest counter-based key (keyed by voxel index)
    key = uniform(np, seed, 0, VESSEL_DRAW, sub)
    vessels = np.sort(sub[np.argsort(key, kind="stable")[:n_vessels]])
    return Tissue(shape, float(lattice.dx_um), compartment, vessels.astype(np.int64), spans)
