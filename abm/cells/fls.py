"""Fibroblast-like synoviocytes: activation a in [0, 1], hyperplasia, secretion.

da/dt = k [H(IL1_eff) + H(TNF) + H(IL17) + drive] (1 - a) damp - d a, with
damp = 1 - m·near_MSC·(H(PGE2) + H(TSG6))/2: MSC mediators calm FLS only where MSCs are near
(co-culture, not conditioned medium, works [S] Manferdini 2015). FLS proliferate at
r (b + a)(1 - N/K): activation drives hyperplasia, a basal rate b keeps a healthy lining, and
the carrying capacity K (cells per synovium voxel x synovium voxels) makes the synovitis
saturate. They secrete IL6, CCL2, PROT, PGE2, IL1b ∝ max(a, basal).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from abm.cells.base import CellType, Fate, Seeding, StepContext, draws, event_prob
from abm.cells.registry import register
from abm.metrics import Metric
from abm.params import FRACTION, param, table

ACTIVATED = 0.5


@draws
class Draw(enum.IntEnum):
    DIV = 20
    DEATH = 21
    DIV_DIR = 22
    DIV_PRIO = 23
    INIT_PLACE_LINING = 71  # initial placement (step 0, keyed by voxel)
    INIT_PLACE_SUBLINING = 72
    INIT_STATE = 80  # initial activation (step 0, keyed by cell id)


@dataclass(frozen=True)
class Params:
    basal_activity: float = param(0.05, "1 (fraction of activated)", "assumed",
                                  plausible=(0.0, 0.3), bounds=FRACTION,
                                  doc="secretion floor of resting FLS")  # fmt: skip
    activation_rate: float = param(0.002, "1/min", "calibrated", doc="k")
    deactivation_rate: float = param(0.001, "1/min", "assumed", doc="d")
    msc_damping: float = param(0.8, "1", "[S] Manferdini 2015: contact-dependent",
                               plausible=(0.2, 1.0), bounds=FRACTION,
                               doc="max fractional damping of activation near MSCs")  # fmt: skip
    msc_contact_um: float = param(50.0, "µm", "assumed", plausible=(10.0, 200.0),
                                  doc="'near' an MSC (box)")  # fmt: skip
    proliferation_rate: float = param(0.00015, "1/min", "assumed",
                                      doc="per unit (basal + a), at no crowding")  # fmt: skip
    basal_proliferation: float = param(0.6, "1", "calibrated: healthy lining turnover",
                                       plausible=(0.1, 2.0),
                                       doc="relative proliferation of resting FLS")  # fmt: skip
    capacity: float = param(0.27, "cells per synovium voxel",
                            "calibrated: hyperplasia saturates", plausible=(0.05, 1.0),
                            bounds=(1e-9, 1.0))  # fmt: skip
    death_rate: float = param(0.00007, "1/min", "assumed: balances resting turnover")
    secretion: dict[str, float] = table(
        {"IL6": 0.35, "CCL2": 0.05, "PROT": 0.03, "PGE2": 10.0, "IL1b": 0.0003},
        "molecules/cell/s",
        "calibrated",
        doc="at a = 1; ∝ max(a, basal_activity)",
    )
    uptake: dict[str, float] = table({}, "1/min", "assumed")


@register
class FLS(CellType):
    """Fibroblast-like synoviocytes of the lining and sublining (resting or activated)."""

    name = "fls"
    title = "Fibroblast-like synoviocytes"
    Params = Params
    phenotypes = ("FLS_resting", "FLS_activated")
    habitat = ("synovium",)
    seed_order = 1
    divide_draws = (Draw.DIV_DIR, Draw.DIV_PRIO)

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE_LINING, "lining", scenario.fls_lining_density),
                Seeding(Draw.INIT_PLACE_SUBLINING, "sublining", scenario.fls_density)]  # fmt: skip

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        a0 = ctx.scenario.fls_a0 + 0.1 * ctx.normal(Draw.INIT_STATE, ids)
        return {"state": ctx.xp.clip(a0, 0, 1)}

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Advance activation (damped near MSCs); logistic proliferation; death."""
        xp, p, dt, s = ctx.xp, self.p, ctx.dt, ctx.sense[self.name]
        capacity = max(1.0, p.capacity * ctx.world.habitat_voxels(self.name))
        room = max(0.0, 1.0 - pop.n / capacity)
        near = ctx.world.near("msc", p.msc_contact_um, pop["voxel"])
        drive = ctx.world.drive
        pro = s.H("IL1_eff") + s.H("TNF") + s.H("IL17") + drive
        damp = 1.0 - p.msc_damping * near * 0.5 * (s.H("PGE2") + s.H("TSG6"))
        a = pop["state"]
        da = p.activation_rate * pro * damp * (1.0 - a) - p.deactivation_rate * a
        a = xp.clip(a + dt * da, 0.0, 1.0).astype(a.dtype)
        pop["state"] = a
        ids = pop["id"]
        rate = p.proliferation_rate * (p.basal_proliferation + a) * room
        divide = ctx.uniform(Draw.DIV, ids) < event_prob(xp, rate, dt)
        death = ctx.uniform(Draw.DEATH, ids) < event_prob(xp, p.death_rate, dt)
        return Fate(death=death, divide=divide & ~death)

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        level = ctx.xp.maximum(pop["state"], self.p.basal_activity)
        return {f: r * level for f, r in self.p.secretion.items()}

    def phenotype(self, xp: Any, pop: Any) -> Any:
        """0 resting, 1 activated (a > 0.5)."""
        return (pop["state"] > ACTIVATED).astype(xp.int8)

    def metrics(self) -> list[Metric]:
        return [
            Metric("fls_total", "cells", "FLS in the synovium",
                   lambda m: m.cells[self.name].n),
            Metric("fls_activated", "cells", "FLS with a > 0.5",
                   lambda m: m.xp.sum(m.cells[self.name]["state"] > ACTIVATED)),
            Metric("lining_thickness_um", "µm",
                   "mean depth of the unbroken layer of FLS + macrophages below the fluid",
                   lambda m: m.world.lining_thickness(("fls", "macrophage"))),
        ]  # fmt: skip
