"""MSCs: licensing L in [0, 1], mediator secretion with knockouts, loss with a persistent pool,
adhesion to the lining surface and a slow walk once adhered.

dL/dt = k H(IFNg) (1 + H(TNF) + H(IL1_eff)) (1 - L) - δ L (IFN-γ required [S] Krampera 2006);
PGE2 ∝ (base + L)(1 + H(TNF)); TSG6 ∝ H(TNF); KYN ∝ L (IDO); TGFb and IL1RA constant;
knockouts zero a mediator. Loss: first order with t½ = 11 d except a persistent 1.5% pool
(15% left at 1 month, 1.5% at 6 months [S] Toupet 2013). Injection is an event
(:mod:`abm.events`); floating MSCs drop onto the lining surface and adhere there.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from abm.cells.base import CellType, Fate, StepContext, draws, event_prob
from abm.cells.registry import register
from abm.metrics import Metric
from abm.params import FRACTION, param, table
from abm.units import MIN_PER_DAY

LICENSED = 0.5
KNOCKOUT_OF = {"PGE2": "pge2", "TSG6": "tsg6", "KYN": "ido", "TGFb": "tgfb", "IL1RA": "il1ra"}


@draws
class Draw(enum.IntEnum):
    DEATH = 40
    ADHERE = 41
    MOVE = 42
    DIR = 43
    PERSIST = 44  # joins the persistent pool (at injection)
    INJECT = 45  # placement of the bolus


@dataclass(frozen=True)
class Params:
    licensing_rate: float = param(
        0.0005,
        "1/min",
        "assumed; IFN-γ required [S] Krampera 2006",
        doc="k, per unit H(IFNg)·(1 + H(TNF) + H(IL1_eff))",
    )
    delicensing_rate: float = param(0.0002, "1/min", "assumed", doc="δ")
    adhesion_rate: float = param(0.005, "1/min", "[S] ter Huurne 2012: adhere within hours")
    half_life_days: float = param(11.0, "days", "[S] Toupet 2013: 15% left at 1 month",
                                  plausible=(3.0, 30.0), bounds=(1e-6, math.inf),
                                  doc="first-order loss")  # fmt: skip
    persistent_fraction: float = param(0.015, "1", "[S] Toupet 2013: 1.5% at 6 months",
                                       plausible=(0.0, 0.05), bounds=FRACTION,
                                       doc="long-lived pool")  # fmt: skip
    speed_um_min: float = param(1.0, "µm/min", "assumed", plausible=(0.1, 5.0),
                                doc="walk once adhered")  # fmt: skip
    chemotaxis: float = param(2.0, "1", "assumed", plausible=(0.0, 10.0), doc="homing up CCL2")
    pge2_base: float = param(0.2, "1", "assumed", plausible=(0.0, 1.0),
                             doc="PGE2 ∝ (base + L)(1 + H(TNF))")  # fmt: skip
    secretion: dict[str, float] = table(
        {"PGE2": 3000.0, "TSG6": 0.5, "KYN": 30000.0, "TGFb": 5.0, "IL1RA": 50.0},
        "molecules/cell/s", "calibrated; PGE2 ~ng/1e5 cells/day in vitro [R]; TSG6 ∝ H(TNF) "
        "(Choi 2011 [S]), weak so PGE2 carries the M2 shift (C4); KYN µM in licensed "
        "co-cultures [R]; TGFb constant (Di Nicola 2002 [S])",
        doc="at full drive",
    )  # fmt: skip
    uptake: dict[str, float] = table({}, "1/min", "assumed")


@register
class MSC(CellType):
    """Injected mesenchymal stromal cells (naive or licensed)."""

    name = "msc"
    title = "Mesenchymal stromal cells"
    Params = Params
    columns: ClassVar[dict[str, Any]] = {"adhered": np.bool_, "persistent": np.bool_}
    phenotypes = ("MSC_naive", "MSC_licensed")
    habitat = ("surface", "lining")

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Advance licensing; first-order loss outside the persistent pool."""
        xp, p, dt, s = ctx.xp, self.p, ctx.dt, ctx.sense[self.name]
        L = pop["state"]
        drive = p.licensing_rate * s.H("IFNg") * (1.0 + s.H("TNF") + s.H("IL1_eff"))
        L_new = xp.clip(L + dt * (drive * (1.0 - L) - p.delicensing_rate * L), 0.0, 1.0)
        pop["state"] = L_new.astype(L.dtype)
        loss = math.log(2.0) / (p.half_life_days * MIN_PER_DAY)
        death = (ctx.uniform(Draw.DEATH, pop["id"]) < event_prob(xp, loss, dt)) & ~pop["persistent"]
        return Fate(death=death)

    def motility(self, ctx: StepContext, pop: Any) -> Any:
        """Adhered MSCs walk; floating ones adhere: they drop onto the lining surface."""
        xp = ctx.xp
        tgt = ctx.world.walk(ctx, pop, speed_um_min=self.p.speed_um_min,
                             chemotaxis=self.p.chemotaxis, mobile=pop["adhered"],
                             draw=(Draw.MOVE, Draw.DIR))  # fmt: skip
        adh = ~pop["adhered"] & (
            ctx.uniform(Draw.ADHERE, pop["id"]) < event_prob(xp, self.p.adhesion_rate, ctx.dt)
        )
        return xp.where(adh, ctx.world.surface_voxels(pop["voxel"]), tgt)

    def moved(self, ctx: StepContext, pop: Any) -> None:
        pop["adhered"] = pop["adhered"] | ctx.world.at_surface(pop["voxel"])

    def injected(self, ctx: StepContext, ids: Any, prelicensed: bool) -> dict[str, Any]:
        """Columns of a bolus of MSCs ``ids``."""
        persistent = ctx.uniform(Draw.PERSIST, ids) < self.p.persistent_fraction
        n = ids.shape[0]
        return {"state": ctx.xp.full(n, 1.0 if prelicensed else 0.0), "persistent": persistent}

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Mediators in molecules/cell/s; knocked-out mediators are left out."""
        xp, p, s = ctx.xp, self.p, ctx.sense[self.name]
        L = pop["state"]
        one = xp.ones_like(L)
        rates = p.secretion
        out = {
            "PGE2": rates["PGE2"] * (p.pge2_base + L) * (1.0 + s.H("TNF")),
            "TSG6": rates["TSG6"] * s.H("TNF"),
            "KYN": rates["KYN"] * L,
            "TGFb": rates["TGFb"] * one,
            "IL1RA": rates["IL1RA"] * one,
        }
        return {f: r for f, r in out.items() if KNOCKOUT_OF[f] not in ctx.knockouts}

    def phenotype(self, xp: Any, pop: Any) -> Any:
        """0 naive, 1 licensed (L > 0.5)."""
        return (pop["state"] > LICENSED).astype(xp.int8)

    def metrics(self) -> list[Metric]:
        return [
            Metric("msc_alive", "cells", "MSCs in the joint", lambda m: m.cells[self.name].n),
            Metric("msc_licensed", "cells", "MSCs with L > 0.5",
                   lambda m: m.xp.sum(m.cells[self.name]["state"] > LICENSED)),
        ]  # fmt: skip
