"""The synovial fluid as one well-mixed compartment (transport stage of the data flow).

Data flow: validated config (``patient.sf_volume_ml``, ``patient.synovial_area_cm2``) and the
frozen biology (each field's decay, ``biology.fluid_clearance``) -> :class:`SynovialFluid`,
built once by the model -> after every transport step the model calls
``u = fluid.mix(u, dt, before)`` (``before = fluid.level(u)`` taken just before the step) ->
the fluid rows of every field hold the compartment's one concentration C, which the
``*_fluid`` metrics report (abm/metrics.py: mean over the fluid rows = C).

Why: the synovial fluid (SF) is stirred by joint motion, and intra-articular pharmacokinetics
treat it as ONE compartment (protein t½ 1-4 h, Evans, Kraus & Setton 2014 Nat Rev Rheumatol
10:11 [R]). The lattice keeps a thin fluid slab (``lattice.fluid_um``, h_sim = fluid rows ·
dx) between cartilage and lining; it stands for a compartment of physical height
h_eff = V_sf / A_syn (µm; 10 mL over 150 cm² -> 667 µm) per unit of joint-surface area.

Rule (per field, per transport step of ``dt`` min; the solver gives fluid voxels no decay):

    m     = mean of the fluid voxels after the step (their change: net exchange with the
            cartilage and lining surfaces + sources of floating cells, all per patch area)
    C_new = (C_old + (m - C_old) · h_sim / h_eff) · exp(-(λ_f + k_clear) · dt)

written into every fluid voxel. The amount per unit area in the SF is C · h_eff, so with no
decay and no clearance ``mix`` conserves the lattice's amount exactly (amount in tissue +
C · h_eff); a steady surface flux J (amount per area per min) holds C = J / (h_eff (λ + k))
(dt -> 0; exactly J·dt / (h_eff (exp((λ + k) dt) - 1)) per step). λ_f = the field's
``decay``, k_clear = ``biology.fluid_clearance`` (one value for every field: lymphatic
clearance of proteins; small molecules clear faster through capillaries, not modelled here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from abm.params import FIELD_NAMES

UM_PER_CM = 1e4


def sf_height_um(patient: Any) -> float:
    """h_eff = V_sf / A_syn in µm (mL = cm³; cm³/cm² = cm)."""
    return float(patient.sf_volume_ml) / float(patient.synovial_area_cm2) * UM_PER_CM


class SynovialFluid:
    """The synovial fluid of one model (``model.fluid``): reads ``model.tissue`` (fluid rows,
    dx), ``model.bio``, ``model.cfg.patient``, ``model.xp``, ``model.dtype``."""

    def __init__(self, model: Any) -> None:
        self.xp = model.xp
        self.dtype = np.dtype(model.dtype)
        tissue = model.tissue
        self.rows = tuple(tissue.rows["fluid"])  # (first, stop) along axis 0
        self.ndim = len(tissue.shape)
        self.h_sim = (self.rows[1] - self.rows[0]) * float(tissue.dx_um)  # µm
        self.h_eff = sf_height_um(model.cfg.patient)  # µm
        if self.h_sim > self.h_eff:
            raise ValueError(
                f"lattice.fluid_um: the fluid slab ({self.h_sim:g} µm) is thicker than the "
                f"synovial fluid it stands for (V/A = {self.h_eff:.4g} µm)"
            )
        self.ratio = self.h_sim / self.h_eff
        bio = model.bio
        self.rate = np.array(  # λ_f + k_clear, 1/min
            [float(bio.fields[f].decay) + float(bio.fluid_clearance) for f in FIELD_NAMES]
        )
        self._factor: dict[float, Any] = {}

    # -- reading
    def level(self, u: Any) -> Any:
        """(F,) mean of each field over the fluid rows (= C right after :meth:`mix`)."""
        a, b = self.rows
        F = u.shape[0]
        return self.xp.mean(u[:, a:b].reshape(F, -1), axis=1)

    def amount(self, u: Any, dx_um: float) -> Any:
        """(F,) amount per field over the patch, per µm² of patch area x µm (conc · µm³ /
        lateral voxel area): tissue voxels · dx + C · h_eff per fluid column (after a mix)."""
        xp = self.xp
        a, b = self.rows
        F = u.shape[0]
        lateral = math.prod(u.shape[2:])
        tissue = xp.sum(u[:, :a].reshape(F, -1), axis=1) + xp.sum(u[:, b:].reshape(F, -1), axis=1)
        return tissue * dx_um + self.level(u) * self.h_eff * lateral

    # -- the rule
    def _decay_factor(self, dt: float) -> Any:
        f = self._factor.get(dt)
        if f is None:
            f = self.xp.asarray(np.exp(-self.rate * float(dt)), dtype=self.dtype)
            self._factor[dt] = f
        return f

    def mix(self, u: Any, dt: float, before: Any) -> Any:
        """After one transport step of ``dt`` minutes: ``u`` with its fluid rows set to the
        well-mixed concentration (in place; returns ``u``). ``before``: :meth:`level` of the
        fields just before the step (C_old)."""
        xp = self.xp
        a, b = self.rows
        m = self.level(u)
        c = (before + (m - before) * self.ratio) * self._decay_factor(dt)
        u[:, a:b] = xp.reshape(c.astype(u.dtype, copy=False), (-1,) + (1,) * self.ndim)
        return u

    def add(self, u: Any, field: str, conc: float) -> Any:
        """Add ``conc`` (the field's units) to the whole compartment (every fluid voxel), in
        place: an intra-articular bolus."""
        a, b = self.rows
        u[FIELD_NAMES.index(field), a:b] += conc
        return u
