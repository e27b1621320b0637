"""Macrophages: continuous, unsaturated polarization p in (-1, 1) (M1 > 0.3, M2 < -0.3), a
per-cell responsiveness g, an efferocytosis memory R in [0, 1], secretion, death, recruitment
at vessels up to a carrying capacity, random walk with CCL2 chemotaxis (decide/act stages of
the data flow; reads ``ctx.world.drive`` (abm/drive.py) and the apoptotic-MSC pool on World).

    dp/dt = a g pro (1 - p) - b anti (1 + p) - c p
    pro  = [H(IL1_eff) + H(TNF) + H(IFNg) + drive] (1 - H(TSG6))
    anti = H(IL10) + H(PGE2) + w_R R

integrated exactly over a step (fields held), so p stays in (-1, 1) without clipping and
relaxes to p* = (a g pro - b anti) / (a g pro + b anti + c). g = exp(log_g), log_g ~ N(0, σ²)
drawn once per cell (seeding, recruitment): the same signals give a spectrum of phenotypes
(mixed CD86+/CD206+ macrophages in OA synovium). Hill constants: the receptor-scale ``K`` table.

Efferocytosis memory (Galleu 2017 Sci Transl Med 9:eaam7828; de Witte 2018 Stem Cells):
MSCs adhere to and die at the lining surface, so the macrophages of the lining (within
``efferocytosis_depth_um`` of its top; resident lining macrophages form the barrier there,
Culemann 2019 Nature 572:670) take up apoptotic MSCs from the pool on World at
u = k x / (K_e + x) per cell, x = pool / those macrophages (capped at the pool), and
dR/dt = e u (1 - R) - R / τ_R (exact per step). R adds to anti and makes the cell secrete
IL-10 and KYN (IDO) ∝ R. Knockout ``efferocytosis`` stops the uptake.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from abm.cells.base import CellType, Fate, Seeding, StepContext, WorldDraw, draws, event_prob
from abm.cells.registry import register
from abm.metrics import Metric
from abm.params import param, table
from abm.units import MIN_PER_DAY
from kernels.random import normal

M1_THRESHOLD = 0.3
REGULATORY = 0.5  # R above which a macrophage counts as regulatory (metric)
KNOCKOUT = "efferocytosis"


@draws
class Draw(enum.IntEnum):
    DEATH = 1
    MOVE = 2
    DIR = 3
    G = 4  # log responsiveness: normal draw keyed by cell id at the cell's birth step
    INIT_PLACE = 73  # initial placement (step 0, keyed by voxel)
    INIT_STATE = 81  # initial polarization (step 0, keyed by cell id)


@dataclass(frozen=True)
class Params:
    activation_rate: float = param(0.0184, "1/min", "calibrated (posterior median, run "
                                   "joint+emulator-20261202-002924-f96c98a8); 95% interval "
                                   "0.0046-0.069; hand-set before: 0.008 (hours; Frank 2021 "
                                   "[S] form)",
                                   plausible=(0.0008, 0.08),  # the calibration's prior
                                   doc="a: pro-inflammatory drive on p")  # fmt: skip
    resolution_rate: float = param(0.004, "1/min", "calibrated",
                                   doc="b: IL-10/PGE2/memory drive toward M2")  # fmt: skip
    relaxation_rate: float = param(0.003, "1/min",
                                   "assumed: of the order of a so that OA signals give a "
                                   "spectrum of p, not p = 1", bounds=(1e-9, math.inf),
                                   doc="c: return of p toward 0")  # fmt: skip
    responsiveness_sigma: float = param(0.5, "1 (log scale)",
                                        "assumed: cell-to-cell spread of responses [R]",
                                        plausible=(0.0, 1.0),
                                        doc="σ of log g, g the per-cell gain on pro")  # fmt: skip
    death_rate: float = param(0.0000330, "1/min", "[R] lifespan ~3 weeks")
    capacity: float = param(0.25, "cells per synovium voxel",
                            "calibrated (C1 steady state): recruitment × (1 - N/K)",
                            plausible=(0.05, 1.0), bounds=(1e-9, 1.0))  # fmt: skip
    speed_um_min: float = param(2.0, "µm/min", "[R]", plausible=(0.5, 10.0), doc="random walk")
    chemotaxis: float = param(2.0, "1", "assumed", plausible=(0.0, 10.0),
                              doc="bias of steps up the CCL2 gradient")  # fmt: skip
    basal_fraction: float = param(0.05, "1", "assumed: resident macrophages keep a low TNF/IL-1β "
                                  "output, the healthy joint's source", plausible=(0.0, 0.2),
                                  doc="TNF, IL1b ∝ basal + max(p, 0)")  # fmt: skip
    efferocytosis_rate: float = param(1.0 / 120.0, "apoptotic cells/macrophage/min",
                                      "[R] an engulfment takes ~0.5-2 h in vitro",
                                      plausible=(1.0 / 1440.0, 1.0 / 30.0),
                                      doc="k: uptake per macrophage, saturating pool")  # fmt: skip
    efferocytosis_K: float = param(1.0, "apoptotic cells per macrophage", "assumed",
                                   plausible=(0.1, 10.0), bounds=(1e-9, math.inf),
                                   doc="K_e: pool per macrophage, half-max uptake")  # fmt: skip
    efferocytosis_depth_um: float = param(
        30.0,
        "µm",
        "assumed: the lining (1-3 cells) where MSCs adhere and die; resident lining "
        "macrophages (Culemann 2019 Nature 572:670)",
        plausible=(10.0, 200.0),
        bounds=(0.0, math.inf),
        doc="macrophages this deep below the lining top engulf",
    )
    memory_gain: float = param(0.5, "1 per engulfed cell", "assumed: a few engulfed MSCs "
                               "program a regulatory (IDO+) phagocyte (Galleu 2017 [R])",
                               plausible=(0.05, 2.0),
                               doc="e in dR/dt = e u (1 - R) - R/τ_R")  # fmt: skip
    memory_days: float = param(21.0, "days", "[R] regulatory phagocytes persist for weeks after "
                               "MSC efferocytosis (Galleu 2017; de Witte 2018)",
                               plausible=(7.0, 56.0), bounds=(1e-6, math.inf),
                               doc="τ_R: reversion of the memory R")  # fmt: skip
    memory_weight: float = param(1.0, "1", "assumed", plausible=(0.2, 3.0),
                                 doc="w_R: weight of R in anti")  # fmt: skip
    K: dict[str, float] = table(
        {"IL1b": 0.05, "TNF": 0.1, "IFNg": 0.1, "IL10": 0.1, "PGE2": 1.0, "TSG6": 0.5},
        "ng/mL (µM for KYN)",
        "[R] receptor-scale half-maximal responses of macrophages: IL-1β/TNF 0.01-1 ng/mL, "
        "IFN-γ ~0.1 ng/mL, IL-10 ~0.1 ng/mL, PGE2 EP2/EP4 ~1-3 nM (0.35-1 ng/mL)",
        doc="Hill constants of the macrophage's responses (others: biology.fields.<f>.K)",
    )  # fmt: skip
    secretion: dict[str, float] = table(
        {"TNF": 0.002, "IL1b": 0.001, "IL6": 0.1, "CCL2": 0.06, "IL10": 0.5, "TGFb": 0.5,
         "IL1RA": 5.0},
        "molecules/cell/s", "calibrated",
        doc="at |p| = 1; TNF, IL1b ∝ basal + max(p, 0), IL6, CCL2 ∝ max(p, 0), "
            "IL10, TGFb, IL1RA ∝ max(-p, 0)",
    )  # fmt: skip
    regulatory_secretion: dict[str, float] = table(
        {"IL10": 0.5, "KYN": 3000.0},
        "molecules/cell/s",
        "assumed: IDO/IL-10-producing phagocytes after MSC efferocytosis (Galleu 2017 [R]); KYN "
        "10x below a licensed MSC's",
        doc="at R = 1, ∝ R (added to the polarization's IL10)",
    )  # fmt: skip
    uptake: dict[str, float] = table({"CCL2": 0.01, "IL10": 0.005}, "1/min",
                                     "assumed (receptor-mediated)",
                                     doc="first-order uptake at the cell's voxel")  # fmt: skip


PRO = ("IL6", "CCL2")
BASAL = ("TNF", "IL1b")  # pro-inflammatory, with a basal output at p = 0
ANTI = ("IL10", "TGFb", "IL1RA")


def relax(xp: Any, x: Any, target: Any, rate: Any, dt: float) -> Any:
    """x after ``dt`` of dx/dt = rate (target - x), rate and target held: exact."""
    return target + (x - target) * xp.exp(-rate * dt)


@register
class Macrophage(CellType):
    """Macrophages of the synovium (M0/M1/M2 by polarization, with efferocytosis memory)."""

    name = "macrophage"
    title = "Macrophages"
    Params = Params
    columns: ClassVar[dict[str, Any]] = {"log_g": np.float32, "regulatory": np.float32}
    phenotypes = ("M0", "M1", "M2")
    habitat = ("synovium",)
    seed_order = 2
    recruit_draw = WorldDraw.RECRUIT_MAC

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE, "synovium", scenario.mac_density)]

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        p0 = ctx.scenario.mac_p0 + 0.2 * ctx.normal(Draw.INIT_STATE, ids)
        log_g = self.p.responsiveness_sigma * ctx.normal(Draw.G, ids)
        return {"state": ctx.xp.clip(p0, -0.99, 0.99), "log_g": log_g}

    def recruited(self, ctx: StepContext, ids: Any) -> dict[str, Any]:
        """New monocyte-derived macrophages: p = 0, R = 0, their own g."""
        z = normal(ctx.xp, ctx.seed, ctx.step, int(Draw.G), ids)
        return {"log_g": self.p.responsiveness_sigma * z}

    def uptake_per_cell(self, ctx: StepContext, n: int) -> float:
        """u: apoptotic MSCs taken up per engulfing macrophage per minute this step (pool
        shared by the ``n`` macrophages of the lining zone; 0 under the ``efferocytosis``
        knockout)."""
        pool = float(ctx.world.apoptotic_msc)
        if n == 0 or pool <= 0.0 or KNOCKOUT in ctx.knockouts:
            return 0.0
        x = pool / n
        u = self.p.efferocytosis_rate * x / (self.p.efferocytosis_K + x)
        return min(u, pool / (n * ctx.dt))

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        xp, p, s, dt = ctx.xp, self.p, ctx.sense[self.name], ctx.dt
        # efferocytosis memory: the macrophages of the lining zone engulf
        zone = ctx.world.depth_um(pop["voxel"]) < p.efferocytosis_depth_um
        n_zone = int(xp.count_nonzero(zone))
        u = self.uptake_per_cell(ctx, n_zone)
        if u > 0.0:
            ctx.world.take_apoptotic(u * n_zone * dt)
        R = pop["regulatory"]
        k_in, k_out = p.memory_gain * u * zone, 1.0 / (p.memory_days * MIN_PER_DAY)
        R = relax(xp, R, k_in / (k_in + k_out), k_in + k_out, dt).astype(np.float32)
        pop["regulatory"] = R
        # polarization
        pro = (s.H("IL1_eff") + s.H("TNF") + s.H("IFNg") + ctx.world.drive) * (1.0 - s.H("TSG6"))
        anti = s.H("IL10") + s.H("PGE2") + p.memory_weight * R
        up = p.activation_rate * xp.exp(pop["log_g"]) * pro
        down = p.resolution_rate * anti
        rate = up + down + p.relaxation_rate
        state = pop["state"]
        pop["state"] = relax(xp, state, (up - down) / rate, rate, dt).astype(state.dtype)
        death = ctx.uniform(Draw.DEATH, pop["id"]) < event_prob(xp, p.death_rate, dt)
        return Fate(death=death)

    def motility(self, ctx: StepContext, pop: Any) -> Any:
        return ctx.world.walk(ctx, pop, speed_um_min=self.p.speed_um_min,
                              chemotaxis=self.p.chemotaxis, mobile=None,
                              draw=(Draw.MOVE, Draw.DIR))  # fmt: skip

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Molecules/cell/s per field: pro-inflammatory ∝ max(p, 0) (TNF, IL-1β with a basal
        output), resolving ∝ max(-p, 0), IL-10 and KYN (IDO) ∝ R."""
        xp, rates, reg = ctx.xp, self.p.secretion, self.p.regulatory_secretion
        pro = xp.maximum(pop["state"], 0.0)
        anti = xp.maximum(-pop["state"], 0.0)
        R = pop["regulatory"]
        out = {f: rates[f] * (self.p.basal_fraction + pro) for f in BASAL}
        out.update({f: rates[f] * pro for f in PRO})
        out.update({f: rates[f] * anti for f in ANTI})
        out["IL10"] = out["IL10"] + reg["IL10"] * R
        out["KYN"] = reg["KYN"] * R
        return out

    def recruitment(self, ctx: StepContext, n: int) -> float:
        if ctx.world.depleted:
            return 0.0
        capacity = max(1.0, self.p.capacity * ctx.world.habitat_voxels(self.name))
        return ctx.scenario.mac_recruit_rate * max(0.0, 1.0 - n / capacity)

    def phenotype(self, xp: Any, pop: Any) -> Any:
        """0 M0, 1 M1 (p > 0.3), 2 M2 (p < -0.3)."""
        s = pop["state"]
        return xp.where(s > M1_THRESHOLD, 1, xp.where(s < -M1_THRESHOLD, 2, 0)).astype(xp.int8)

    def metrics(self) -> list[Metric]:
        def count(sel: Any) -> Any:
            return lambda m: m.xp.sum(sel(m.xp, m.cells[self.name]["state"]))

        def p_mean(m: Any) -> Any:
            pop = m.cells[self.name]
            return m.xp.sum(m.xp.sort(pop["state"]).astype(m.xp.float64)) / max(1, pop.n)

        return [
            Metric("macrophage_m1", "cells", "macrophages with p > 0.3",
                   count(lambda xp, p: p > M1_THRESHOLD)),
            Metric("macrophage_m0", "cells", "macrophages with |p| <= 0.3",
                   count(lambda xp, p: xp.abs(p) <= M1_THRESHOLD)),
            Metric("macrophage_m2", "cells", "macrophages with p < -0.3",
                   count(lambda xp, p: p < -M1_THRESHOLD)),
            Metric("macrophage_p_mean", "1", "mean macrophage polarization p (0 when none)",
                   p_mean),
            Metric("macrophage_regulatory", "cells",
                   "macrophages with efferocytosis memory R > 0.5",
                   lambda m: m.xp.sum(m.cells[self.name]["regulatory"] > REGULATORY)),
        ]  # fmt: skip
