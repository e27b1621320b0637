"""Chondrocytes: catabolic drive c in [0, 1], protease/cytokine secretion, matrix synthesis.

c rises with H(IL1_eff) + H(TNF) (dose-dependent [S] Fan 2005) and the scenario's mechanical
drive, falls with H(TGFb); PROT ∝ c; IL1b and IL6 when catabolic (c > 0.5); aggrecan
synthesis ∝ (1 + H(TGFb)) (1 - H(IL1_eff)) (read by :mod:`abm.matrix`); apoptosis ∝ c (1 - AGG).
Chondrocytes never move; apoptotic ones stay in place with ``alive`` False.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from abm.cells.base import CellType, Fate, Seeding, StepContext, draws, event_prob
from abm.cells.registry import register
from abm.metrics import Metric
from abm.params import FRACTION, param, table

CATABOLIC = 0.5


@draws
class Draw(enum.IntEnum):
    APOPTOSIS = 30
    INIT_PLACE = 70  # initial placement (step 0, keyed by voxel)


@dataclass(frozen=True)
class Params:
    catabolic_rate: float = param(0.005, "1/min", "calibrated; Fan 2005 [S]: dose-dependent",
                                  doc="per unit of H(IL1_eff) + H(TNF)")  # fmt: skip
    recovery_rate: float = param(0.0005, "1/min", "assumed", doc="return of c toward 0")
    tgfb_recovery: float = param(0.001, "1/min", "assumed", doc="extra recovery per H(TGFb)")
    apoptosis_rate: float = param(0.00002, "1/min", "assumed", doc="at c = 1 and AGG = 0")
    density: float = param(0.0096, "cells per cartilage voxel",
                           "[S] Hunziker 2002: 9,626 cells/mm³ × (10 µm)³",
                           plausible=(0.005, 0.02), bounds=FRACTION)  # fmt: skip
    secretion: dict[str, float] = table(
        {"PROT": 0.3, "IL1b": 0.0005, "IL6": 0.1},
        "molecules/cell/s",
        "calibrated",
        doc="PROT ∝ c; IL1b, IL6 only when catabolic (c > 0.5)",
    )
    uptake: dict[str, float] = table({}, "1/min", "assumed")


@register
class Chondrocyte(CellType):
    """Chondrocytes of the cartilage (homeostatic, catabolic or apoptotic)."""

    name = "chondrocyte"
    title = "Chondrocytes"
    Params = Params
    columns: ClassVar[dict[str, Any]] = {"alive": np.bool_}
    phenotypes = ("chondrocyte_homeostatic", "chondrocyte_catabolic", "chondrocyte_apoptotic")
    habitat = ("cartilage",)
    seed_order = 0

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE, "cartilage", self.p.density)]

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        n = ids.shape[0]
        return {"state": ctx.xp.full(n, ctx.scenario.chondrocyte_c0),
                "alive": ctx.xp.ones(n, dtype=bool)}  # fmt: skip

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Advance c of living cells; apoptosis ∝ c (1 - AGG) (the cells stay, not alive)."""
        xp, p, dt, s = ctx.xp, self.p, ctx.dt, ctx.sense[self.name]
        agg = ctx.world.matrix_at("AGG", pop["voxel"])
        alive = pop["alive"]
        c = pop["state"]
        up = p.catabolic_rate * (s.H("IL1_eff") + s.H("TNF")) + ctx.scenario.mechanical_drive
        down = p.recovery_rate + p.tgfb_recovery * s.H("TGFb")
        c_new = xp.clip(c + dt * (up * (1.0 - c) - down * c), 0.0, 1.0).astype(c.dtype)
        pop["state"] = xp.where(alive, c_new, c)
        rate = p.apoptosis_rate * c_new * xp.clip(1.0 - agg, 0.0, 1.0)
        dies = ctx.uniform(Draw.APOPTOSIS, pop["id"]) < event_prob(xp, rate, dt)
        pop["alive"] = alive & ~dies
        return Fate()

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        rates = self.p.secretion
        dtype = pop["state"].dtype
        c = pop["state"] * pop["alive"].astype(dtype)
        catabolic = c * (c > CATABOLIC).astype(dtype)
        return {"PROT": rates["PROT"] * c, "IL1b": rates["IL1b"] * catabolic,
                "IL6": rates["IL6"] * catabolic}  # fmt: skip

    def synthesis(self, ctx: StepContext, pop: Any) -> Any:
        """Relative aggrecan synthesis drive, (1 + H(TGFb)) (1 - H(IL1_eff)) if alive."""
        s = ctx.sense[self.name]
        f = (1.0 + s.H("TGFb")) * (1.0 - s.H("IL1_eff"))
        return f * pop["alive"].astype(f.dtype)

    def phenotype(self, xp: Any, pop: Any) -> Any:
        """0 homeostatic, 1 catabolic (c > 0.5), 2 apoptotic."""
        state, alive = pop["state"], pop["alive"]
        return xp.where(~alive, 2, xp.where(state > CATABOLIC, 1, 0)).astype(xp.int8)

    def metrics(self) -> list[Metric]:
        def pop(m: Any) -> Any:
            return m.cells[self.name]

        return [
            Metric("chondrocyte_alive", "cells", "living chondrocytes",
                   lambda m: m.xp.sum(pop(m)["alive"])),
            Metric("chondrocyte_catabolic", "cells", "living chondrocytes with c > 0.5",
                   lambda m: m.xp.sum(pop(m)["alive"] & (pop(m)["state"] > CATABOLIC))),
        ]  # fmt: skip
