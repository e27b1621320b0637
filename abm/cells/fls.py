"""Fibroblast-like synoviocytes: activation a in [0, 1], hyperplasia, secretion (decide stage
of the data flow: sensed fields + ``ctx.world.drive`` -> a, divisions, deaths; act stage:
secretion).

da/dt = k·g·pro·damp·(1 - a) - d·a, pro = H(IL1_eff) + H(TNF) + H(IL17) + drive,
damp = 1 - m·(H(PGE2) + H(TSG6))/2 from the mediators the FLS senses (receptor-scale Hill
constants, table ``K``). There is no contact term: the co-culture result (Manferdini 2015:
co-culture works, conditioned medium lacks PGE2) comes from MSC PGE2 induced by OA-cell
signals (abm/cells/msc.py). g is a per-cell responsiveness (column ``responsiveness``,
lognormal with median 1), a pure function of (seed, cell id), so activation under one
environment is a distribution, steady state a* = k g pro damp / (k g pro damp + d). The step
is the exact solution for fields held over dt, so a stays in [0, 1] at any dt.
FLS proliferate at r (b + a)(1 - N/K): activation drives hyperplasia, a basal rate b keeps a
healthy lining, and the carrying capacity K (cells per synovium voxel x synovium voxels) makes
the synovitis saturate. They secrete IL6, CCL2, PROT, PGE2, IL1b ∝ max(a, basal).
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
from kernels.random import normal

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
    RESPONSIVENESS = 87  # responsiveness g (step 0, keyed by cell id: seeded cells, daughters)


@dataclass(frozen=True)
class Params:
    basal_activity: float = param(0.05, "1 (fraction of activated)", "assumed",
                                  plausible=(0.0, 0.3), bounds=FRACTION,
                                  doc="secretion floor of resting FLS")  # fmt: skip
    activation_rate: float = param(0.002, "1/min", "calibrated", doc="k")
    deactivation_rate: float = param(0.001, "1/min", "assumed", doc="d")
    msc_damping: float = param(0.8, "1", "[S] Manferdini 2015: MSC co-culture calms OA FLS "
                               "through PGE2; the size is assumed",
                               plausible=(0.2, 1.0), bounds=FRACTION,
                               doc="m: max fractional damping by sensed PGE2 + TSG-6")  # fmt: skip
    responsiveness_sigma: float = param(
        0.5, "1 (SD of ln g)",
        "assumed; FLS are heterogeneous (distinct subsets in single-cell studies of synovium, "
        "Zhang 2019 Nat Immunol, Croft 2019 Nature [R])",
        plausible=(0.1, 1.0), bounds=(0.0, 3.0),
        doc="per-cell responsiveness g = exp(σ Z), median 1")  # fmt: skip
    K: dict[str, float] = table(
        {"IL1b": 0.02, "TNF": 0.1, "IL17": 1.0}, "ng/mL",
        "[R] receptor scale: FLS IL-6/MMP responses half-maximal at ~10-50 pg/mL IL-1β, "
        "~0.1-1 ng/mL TNF, ~1-10 ng/mL IL-17 (biology v2 review: 10-1000 pg/mL)",
        doc="Hill constants of FLS sensing (the field's K for the rest)")  # fmt: skip
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
        {"IL6": 0.533, "CCL2": 0.05, "PROT": 0.001, "PGE2": 10.0, "IL1b": 0.0003},
        "molecules/cell/s",
        "IL6: calibrated (posterior median, run joint+emulator-20261202-002924-f96c98a8); 95% "
        "interval 0.16-1.63, hand-set before 0.35. Others hand-calibrated; PROT v2: 0.03 -> "
        "0.001 so that the cartilage of untreated chronic OA loses ~10%/yr of aggrecan at the "
        "explant-calibrated degradation rate (docs/ODD.md 8)",
        doc="at a = 1; ∝ max(a, basal_activity)",
        plausible={"IL6": (0.035, 3.5)},  # the calibration's prior (hand-set 0.35 ÷/× 10)
    )
    uptake: dict[str, float] = table({}, "1/min", "assumed")


@register
class FLS(CellType):
    """Fibroblast-like synoviocytes of the lining and sublining (resting or activated)."""

    name = "fls"
    title = "Fibroblast-like synoviocytes"
    Params = Params
    columns: ClassVar[dict[str, Any]] = {"responsiveness": np.float32}
    phenotypes = ("FLS_resting", "FLS_activated")
    habitat = ("synovium",)
    seed_order = 1
    divide_draws = (Draw.DIV_DIR, Draw.DIV_PRIO)

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE_LINING, "lining", scenario.fls_lining_density),
                Seeding(Draw.INIT_PLACE_SUBLINING, "sublining", scenario.fls_density)]  # fmt: skip

    def responsiveness(self, xp: Any, seed: int, ids: Any) -> Any:
        """g = exp(σ Z) of cells ``ids``, Z ~ N(0, 1) keyed by (seed, step 0, purpose, id): the
        same value whenever it is drawn (at seeding, for a daughter on its first step)."""
        z = normal(xp, seed, 0, Draw.RESPONSIVENESS, ids)
        return xp.exp(self.p.responsiveness_sigma * z).astype(np.float32)

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        a0 = ctx.scenario.fls_a0 + 0.1 * ctx.normal(Draw.INIT_STATE, ids)
        return {"state": ctx.xp.clip(a0, 0, 1),
                "responsiveness": self.responsiveness(ctx.xp, ctx.seed, ids)}  # fmt: skip

    def activation(self, ctx: StepContext, pop: Any) -> Any:
        """Activation after one step: the exact solution of da/dt = r (1 - a) - d a with the
        fields held, r = k g pro damp (a relaxes to r / (r + d) at rate r + d)."""
        xp, p, s = ctx.xp, self.p, ctx.sense[self.name]
        pro = s.H("IL1_eff") + s.H("TNF") + s.H("IL17") + ctx.world.drive
        damp = 1.0 - p.msc_damping * 0.5 * (s.H("PGE2") + s.H("TSG6"))
        r = p.activation_rate * pop["responsiveness"] * pro * damp
        lam = r + p.deactivation_rate
        a_star = r / xp.maximum(lam, 1e-30)
        a = pop["state"]
        return (a_star + (a - a_star) * xp.exp(-lam * ctx.dt)).astype(a.dtype)

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Draw g of newborn cells; advance activation; logistic proliferation; death."""
        xp, p, dt = ctx.xp, self.p, ctx.dt
        newborn = pop["age"] == 0  # seeded cells (same g again) and last step's daughters
        if bool(xp.any(newborn)):
            g = self.responsiveness(xp, ctx.seed, pop["id"][newborn])
            pop["responsiveness"][newborn] = g
        capacity = max(1.0, p.capacity * ctx.world.habitat_voxels(self.name))
        room = max(0.0, 1.0 - pop.n / capacity)
        a = self.activation(ctx, pop)
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
            Metric("fls_activation_mean", "1", "mean FLS activation a (0 with no FLS)",
                   lambda m: _mean(m.xp, m.cells[self.name]["state"])),
        ]  # fmt: skip


def _mean(xp: Any, x: Any) -> Any:
    return xp.sum(x) / max(1, int(x.shape[0]))
