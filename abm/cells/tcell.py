"""T cells: naive -> Th1 / Th17 / Treg by local cues, MSC-suppressed effector proliferation,
recruitment at vessels, random walk with CCL2 chemotaxis.

Th1 ∝ H(IFNg) + H(IL1_eff) (IL-1b stands in for M1 contact), Th17 ∝ H(IL6) H(IL1_eff), Treg ∝
H(TGFb) (1 + H(PGE2) + H(KYN)); effector proliferation × (1 - H(KYN)) (1 - H(PGE2))
(1 - H(TGFb)) (IDO [S] Krampera 2006; PGE2 [S] Aggarwal & Pittenger 2005; TGF-b [S] Di Nicola
2002), and needs inflammation: × H(IL1_eff). ``state`` holds that suppression factor
(1 = unsuppressed). IL-1β is sensed at receptor scale (table ``K``); T cells do not read the
disease drive. Data flow: decide stage (sensed fields -> subsets, divisions, deaths), act
stage (moves, secretion), recruitment at vessels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from abm.cells.base import CellType, Fate, Seeding, StepContext, WorldDraw, draws, event_prob
from abm.cells.population import NAIVE, TH1, TH17, TREG
from abm.cells.registry import register
from abm.metrics import Metric
from abm.params import group, param, table

SUBSETS = {NAIVE: "naive", TH1: "th1", TH17: "th17", TREG: "treg"}


@draws
class Draw(enum.IntEnum):
    DIFF = 10
    DIFF_PICK = 11
    DIV = 12
    DEATH = 13
    MOVE = 14
    DIR = 15
    DIV_DIR = 16
    DIV_PRIO = 17
    INIT_PLACE = 74  # initial placement (step 0, keyed by voxel)
    INIT_SUBSET = 82  # initial subset (step 0, keyed by cell id)


SOURCE = "calibrated"


@dataclass(frozen=True)
class Secretion:
    """Secretion of each differentiated subset (molecules/cell/s)."""

    th1: dict[str, float] = table({"IFNg": 0.05, "TNF": 0.002}, "molecules/cell/s", SOURCE)
    th17: dict[str, float] = table({"IL17": 0.1}, "molecules/cell/s", SOURCE)
    treg: dict[str, float] = table({"IL10": 0.5, "TGFb": 0.5}, "molecules/cell/s", SOURCE)


@dataclass(frozen=True)
class Params:
    th1_rate: float = param(0.0005, "1/min", "assumed", doc="per unit of H(IFNg) + H(IL1_eff)")
    th17_rate: float = param(0.0005, "1/min", "assumed", doc="per unit of H(IL6)·H(IL1_eff)")
    treg_rate: float = param(0.0005, "1/min", "assumed",
                             doc="per unit of H(TGFb)·(1 + H(PGE2) + H(KYN))")  # fmt: skip
    proliferation_rate: float = param(
        0.00025, "1/min", "assumed", doc="effector division, unsuppressed, full inflammation"
    )
    treg_proliferation_rate: float = param(0.0001, "1/min",
                                           "assumed: below death_rate so Tregs need induction",
                                           doc="per unit H(TGFb)")  # fmt: skip
    death_rate: float = param(0.00014, "1/min", "assumed: ~5 days in tissue")
    speed_um_min: float = param(5.0, "µm/min", "[R]", plausible=(1.0, 20.0))
    chemotaxis: float = param(1.0, "1", "assumed", plausible=(0.0, 10.0))
    secretion: Secretion = group(Secretion, SOURCE, "Th1: IFNg, TNF; Th17: IL17; Treg: IL10, TGFb")
    K: dict[str, float] = table(
        {"IL1b": 0.01}, "ng/mL",
        "[R] receptor scale, lowest end (10 pg/mL; biology v2 review: 10-1000 pg/mL): IL-1β "
        "stands in for M1 contact, so Th1/Th17 induction stays on at OA synovial levels",
        doc="Hill constants of T-cell sensing (the field's K for the rest)")  # fmt: skip
    uptake: dict[str, float] = table({}, "1/min", "assumed")


@register
class TCell(CellType):
    """T cells of the sublining (naive, Th1, Th17, Treg)."""

    name = "tcell"
    title = "T cells"
    Params = Params
    columns: ClassVar[dict[str, Any]] = {"subset": np.int8}
    phenotypes = ("naive", "Th1", "Th17", "Treg")
    habitat = ("synovium",)
    seed_order = 3
    divide_draws = (Draw.DIV_DIR, Draw.DIV_PRIO)
    recruit_draw = WorldDraw.RECRUIT_T

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE, "sublining", scenario.tcell_density)]

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        xp = ctx.xp
        cum = np.cumsum(np.asarray(ctx.scenario.tcell_subsets, dtype=np.float64))
        u = ctx.uniform(Draw.INIT_SUBSET, ids)
        subset = xp.sum(u[None, :] >= xp.asarray(cum[:-1], dtype=u.dtype)[:, None], axis=0)
        return {"subset": subset, "state": xp.ones(ids.shape[0])}

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Differentiate naive cells, decide divisions and deaths."""
        xp, p, dt, s = ctx.xp, self.p, ctx.dt, ctx.sense[self.name]
        ids, subset = pop["id"], pop["subset"]
        r1 = p.th1_rate * (s.H("IFNg") + s.H("IL1_eff"))
        r17 = p.th17_rate * s.H("IL6") * s.H("IL1_eff")
        rreg = p.treg_rate * s.H("TGFb") * (1.0 + s.H("PGE2") + s.H("KYN"))
        total = r1 + r17 + rreg
        go = (subset == NAIVE) & (ctx.uniform(Draw.DIFF, ids) < event_prob(xp, total, dt))
        pick = ctx.uniform(Draw.DIFF_PICK, ids) * total
        new = xp.where(pick < r1, TH1, xp.where(pick < r1 + r17, TH17, TREG)).astype(subset.dtype)
        subset = xp.where(go, new, subset)
        pop["subset"] = subset

        supp = (1.0 - s.H("KYN")) * (1.0 - s.H("PGE2")) * (1.0 - s.H("TGFb"))
        pop["state"] = supp.astype(pop["state"].dtype)
        effector = (subset == TH1) | (subset == TH17)
        rate = xp.where(effector, p.proliferation_rate * supp * s.H("IL1_eff"), 0.0)
        rate = xp.where(subset == TREG, p.treg_proliferation_rate * s.H("TGFb"), rate)
        divide = ctx.uniform(Draw.DIV, ids) < event_prob(xp, rate, dt)
        death = ctx.uniform(Draw.DEATH, ids) < event_prob(xp, p.death_rate, dt)
        return Fate(death=death, divide=divide & ~death)

    def motility(self, ctx: StepContext, pop: Any) -> Any:
        return ctx.world.walk(ctx, pop, speed_um_min=self.p.speed_um_min,
                              chemotaxis=self.p.chemotaxis, mobile=None,
                              draw=(Draw.MOVE, Draw.DIR))  # fmt: skip

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Th1: IFNg, TNF; Th17: IL17; Treg: IL10, TGFb (molecules/cell/s)."""
        subset = pop["subset"]
        out: dict[str, Any] = {}
        for code, key in ((TH1, "th1"), (TH17, "th17"), (TREG, "treg")):
            on = (subset == code).astype(pop["state"].dtype)
            for f, r in getattr(self.p.secretion, key).items():
                out[f] = out[f] + r * on if f in out else r * on
        return out

    def recruitment(self, ctx: StepContext, n: int) -> float:
        return ctx.scenario.tcell_recruit_rate

    def recruited(self, ctx: StepContext, ids: Any) -> dict[str, Any]:
        return {"state": ctx.xp.ones(ids.shape[0])}

    def phenotype(self, xp: Any, pop: Any) -> Any:
        """0 naive, 1 Th1, 2 Th17, 3 Treg (the subset code)."""
        return pop["subset"].astype(xp.int8)

    def metrics(self) -> list[Metric]:
        def count(code: int) -> Any:
            return lambda m: m.xp.sum(m.cells[self.name]["subset"] == code)

        return [Metric(f"tcell_{key}", "cells", f"T cells of subset {key}", count(code))
                for code, key in SUBSETS.items()]  # fmt: skip
