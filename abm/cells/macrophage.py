"""Macrophages: continuous polarization p in [-1, 1] (M1 > 0.3, M2 < -0.3), secretion, death,
recruitment at vessels up to a carrying capacity, random walk with CCL2 chemotaxis.

dp/dt = a [H(IL1_eff) + H(TNF) + H(IFNg) + drive] (1 - H(TSG6)) - b [H(IL10) + H(PGE2)] - c p;
``drive`` is the scenario's persistent inflammatory stimulus (docs/ODD.md, 7.2). Recruitment
at vessels slows as the synovium fills: rate × (1 - N/K), K = capacity × synovium voxels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from abm.cells.base import CellType, Fate, Seeding, StepContext, WorldDraw, draws, event_prob
from abm.cells.registry import register
from abm.metrics import Metric
from abm.params import param, table

M1_THRESHOLD = 0.3


@draws
class Draw(enum.IntEnum):
    DEATH = 1
    MOVE = 2
    DIR = 3
    INIT_PLACE = 73  # initial placement (step 0, keyed by voxel)
    INIT_STATE = 81  # initial polarization (step 0, keyed by cell id)


@dataclass(frozen=True)
class Params:
    activation_rate: float = param(0.004, "1/min", "calibrated (hours; Frank 2021 [S] form)",
                                   doc="a: pro-inflammatory drive on p")  # fmt: skip
    resolution_rate: float = param(0.004, "1/min", "calibrated",
                                   doc="b: IL-10/PGE2 drive toward M2")  # fmt: skip
    relaxation_rate: float = param(0.001, "1/min", "assumed", doc="c: return of p toward 0")
    death_rate: float = param(0.0000330, "1/min", "[R] lifespan ~3 weeks")
    capacity: float = param(0.25, "cells per synovium voxel",
                            "calibrated (C1 steady state): recruitment × (1 - N/K)",
                            plausible=(0.05, 1.0), bounds=(1e-9, 1.0))  # fmt: skip
    speed_um_min: float = param(2.0, "µm/min", "[R]", plausible=(0.5, 10.0), doc="random walk")
    chemotaxis: float = param(2.0, "1", "assumed", plausible=(0.0, 10.0),
                              doc="bias of steps up the CCL2 gradient")  # fmt: skip
    secretion: dict[str, float] = table(
        {"TNF": 0.002, "IL1b": 0.001, "IL6": 0.1, "CCL2": 0.06, "IL10": 0.5, "TGFb": 0.5,
         "IL1RA": 5.0},
        "molecules/cell/s", "calibrated",
        doc="at |p| = 1; TNF, IL1b, IL6, CCL2 ∝ max(p, 0), IL10, TGFb, IL1RA ∝ max(-p, 0)",
    )  # fmt: skip
    uptake: dict[str, float] = table({"CCL2": 0.01, "IL10": 0.005}, "1/min",
                                     "assumed (receptor-mediated)",
                                     doc="first-order uptake at the cell's voxel")  # fmt: skip


PRO = ("TNF", "IL1b", "IL6", "CCL2")
ANTI = ("IL10", "TGFb", "IL1RA")


@register
class Macrophage(CellType):
    """Macrophages of the synovium (M0/M1/M2 by polarization)."""

    name = "macrophage"
    title = "Macrophages"
    Params = Params
    phenotypes = ("M0", "M1", "M2")
    habitat = ("synovium",)
    seed_order = 2
    recruit_draw = WorldDraw.RECRUIT_MAC

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE, "synovium", scenario.mac_density)]

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        p0 = ctx.scenario.mac_p0 + 0.2 * ctx.normal(Draw.INIT_STATE, ids)
        return {"state": ctx.xp.clip(p0, -1, 1)}

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        xp, p, s = ctx.xp, self.p, ctx.sense[self.name]
        drive = ctx.world.drive
        pro = (s.H("IL1_eff") + s.H("TNF") + s.H("IFNg") + drive) * (1.0 - s.H("TSG6"))
        anti = s.H("IL10") + s.H("PGE2")
        state = pop["state"]
        dp = p.activation_rate * pro - p.resolution_rate * anti - p.relaxation_rate * state
        pop["state"] = xp.clip(state + ctx.dt * dp, -1.0, 1.0).astype(state.dtype)
        death = ctx.uniform(Draw.DEATH, pop["id"]) < event_prob(xp, p.death_rate, ctx.dt)
        return Fate(death=death)

    def motility(self, ctx: StepContext, pop: Any) -> Any:
        return ctx.world.walk(ctx, pop, speed_um_min=self.p.speed_um_min,
                              chemotaxis=self.p.chemotaxis, mobile=None,
                              draw=(Draw.MOVE, Draw.DIR))  # fmt: skip

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Molecules/cell/s per field: pro-inflammatory ∝ max(p, 0), resolving ∝ max(-p, 0)."""
        xp, rates = ctx.xp, self.p.secretion
        pro = xp.maximum(pop["state"], 0.0)
        anti = xp.maximum(-pop["state"], 0.0)
        out = {f: rates[f] * pro for f in PRO}
        out.update({f: rates[f] * anti for f in ANTI})
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

        return [
            Metric("macrophage_m1", "cells", "macrophages with p > 0.3",
                   count(lambda xp, p: p > M1_THRESHOLD)),
            Metric("macrophage_m0", "cells", "macrophages with |p| <= 0.3",
                   count(lambda xp, p: xp.abs(p) <= M1_THRESHOLD)),
            Metric("macrophage_m2", "cells", "macrophages with p < -0.3",
                   count(lambda xp, p: p < -M1_THRESHOLD)),
        ]  # fmt: skip
