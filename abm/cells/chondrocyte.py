"""Chondrocytes: catabolic drive c in [0, 1], protease/cytokine secretion, protease
inhibition, matrix synthesis (decide stage: sensed fields -> c, apoptosis; act stage: secretion
and uptake; tissue stage: the synthesis drive read by :mod:`abm.matrix`).

c rises with H(IL1_eff) + H(TNF) (dose-dependent [S] Fan 2005; receptor-scale Hill constants,
table ``K``) and the scenario's mechanical drive, falls with H(TGFb). MSC anti-catabolic
action (MMP-13, ADAMTS-4/5 down, TIMP-1/3 up in co-culture, Manferdini 2015): PROT secretion
∝ c (1 - m_p H(TSG6)), and a TIMP-like first-order PROT uptake at the cell,
k_timp (H(TGFb) + H(TSG6))/2. IL1b and IL6 when catabolic (c > 0.5); aggrecan synthesis
∝ (1 + H(TGFb)) (1 - H(IL1_eff)); apoptosis ∝ c (1 - AGG). Chondrocytes never move;
apoptotic ones stay in place with ``alive`` False and secrete, take up and synthesise nothing.
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
    catabolic_rate: float = param(0.001, "1/min", "calibrated: dose-dependent (Fan 2005 [S]); "
                                  "v2: 0.005 -> 0.001 with the receptor-scale K, so that "
                                  "untreated chronic OA loses ~10%/yr of aggrecan (docs/ODD.md 8)",
                                  doc="per unit of H(IL1_eff) + H(TNF)")  # fmt: skip
    recovery_rate: float = param(0.0005, "1/min", "assumed", doc="return of c toward 0")
    tgfb_recovery: float = param(0.001, "1/min", "assumed", doc="extra recovery per H(TGFb)")
    apoptosis_rate: float = param(0.00002, "1/min", "assumed", doc="at c = 1 and AGG = 0")
    density: float = param(0.0096, "cells per cartilage voxel",
                           "[S] Hunziker 2002: 9,626 cells/mm³ × (10 µm)³",
                           plausible=(0.005, 0.02), bounds=FRACTION)  # fmt: skip
    protease_suppression: float = param(
        0.5, "1", "[R] Manferdini 2015 Osteoarthritis Cartilage: MMP-13, ADAMTS-4/5 fall in "
        "MSC co-culture; TSG-6 protects cartilage from proteolysis (Mindrescu 2002 Arthritis "
        "Rheum [R]); the size is assumed", plausible=(0.0, 1.0), bounds=FRACTION,
        doc="m_p: PROT secretion ∝ c (1 - m_p H(TSG6))")  # fmt: skip
    timp_uptake: float = param(
        0.1, "1/min", "[R] TIMP-1/3 rise in MSC co-culture (Manferdini 2015) and with TGF-β; "
        "assumed size: 0.0096 cells/voxel x 0.1/min ~ half the PROT decay (0.002/min) at "
        "full induction", plausible=(0.01, 1.0),
        doc="k_timp: PROT uptake at the cell, x (H(TGFb) + H(TSG6))/2")  # fmt: skip
    K: dict[str, float] = table(
        {"IL1b": 0.05, "TNF": 0.5}, "ng/mL",
        "[R] receptor scale: chondrocyte MMP/ADAMTS induction half-maximal at ~0.05-0.1 "
        "ng/mL IL-1β and ~0.5-5 ng/mL TNF (TNF is the weaker agonist; biology v2 review: "
        "10-1000 pg/mL)",
        doc="Hill constants of chondrocyte sensing (the field's K for the rest)")  # fmt: skip
    secretion: dict[str, float] = table(
        {"PROT": 0.3, "IL1b": 0.0005, "IL6": 0.1},
        "molecules/cell/s",
        "calibrated",
        doc="PROT ∝ c (1 - m_p H(TSG6)); IL1b, IL6 only when catabolic (c > 0.5)",
    )
    uptake: dict[str, float] = table({}, "1/min", "assumed", doc="constant, besides k_timp")


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
        """PROT ∝ c (1 - m_p H(TSG6)); IL1b, IL6 ∝ c while catabolic (molecules/cell/s)."""
        p, s = self.p, ctx.sense[self.name]
        rates = p.secretion
        dtype = pop["state"].dtype
        c = pop["state"] * pop["alive"].astype(dtype)
        catabolic = c * (c > CATABOLIC).astype(dtype)
        prot = rates["PROT"] * c * (1.0 - p.protease_suppression * s.H("TSG6"))
        return {"PROT": prot.astype(dtype), "IL1b": rates["IL1b"] * catabolic,
                "IL6": rates["IL6"] * catabolic}  # fmt: skip

    def uptake(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """TIMP-like PROT uptake k_timp (H(TGFb) + H(TSG6))/2 by living cells (1/min), plus
        the constant ``uptake`` table."""
        p, s = self.p, ctx.sense[self.name]
        out = dict(p.uptake)
        alive = pop["alive"].astype(pop["state"].dtype)
        timp = p.timp_uptake * 0.5 * (s.H("TGFb") + s.H("TSG6")) * alive
        out["PROT"] = out.get("PROT", 0.0) + timp
        return out

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
