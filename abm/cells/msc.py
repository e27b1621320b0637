"""MSCs: exposure X and IDO licensing L in [0, 1], mediator secretion scaled by the agent's
weight and potency with knockouts, loss with a persistent pool, fast death when inactivated,
the apoptotic pool they feed, adhesion to the lining surface and a slow walk once adhered
(decide/act stages of the data flow; the injection is an event, :mod:`abm.events`).

dX/dt = k_X [H(TNF) + H(IL1_eff)] (1 - X) - δ_X X: exposure to OA-cell signals induces COX-2
  (PGE2) and TSG-6 (co-culture with OA cells works, conditioned medium fails for lack of PGE2:
  Manferdini 2015 Osteoarthritis Cartilage [R]; TSG-6 is TNF/IL-1-induced: Lee 2009 Cell Stem
  Cell [R]); no contact box.
dL/dt = k H(IFNg) (1 + H(TNF) + H(IL1_eff)) (1 - L) - δ L (IFN-γ required [S] Krampera 2006).
Secretion (molecules/cell/s) × weight × potency: PGE2 ∝ base + X; TSG6 ∝ base + X (rate
estimated from in-vitro output, not tuned down); KYN ∝ L (IDO); TGFb, IL1RA, IL6, CCL2
constant; knockouts zero a mediator; inactivated MSCs secrete nothing.
Loss: first order with t½ = 11 d except a persistent 1.5% pool (15% left at 1 month, 1.5% at
6 months [S] Toupet 2013); inactivated MSCs die with t½ ~ 1 d (persistent or not). Dying MSCs
add their weight (cell equivalents) to the apoptotic pool on World, which clears by its own
t½ ~ 1 d here and by macrophage efferocytosis (abm/cells/macrophage.py): the "hit-and-run"
part of the effect that apoptotic or inactivated MSCs keep.
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
    exposure_rate: float = param(
        0.002,
        "1/min",
        "assumed: COX-2/PGE2 induced within hours of exposure to OA cells (Manferdini 2015 [R])",
        doc="k_X, per unit H(TNF) + H(IL1_eff)",
    )
    exposure_decay: float = param(0.0005, "1/min", "assumed: fades over ~1 day", doc="δ_X")
    adhesion_rate: float = param(0.005, "1/min", "[S] ter Huurne 2012: adhere within hours")
    half_life_days: float = param(11.0, "days", "[S] Toupet 2013: 15% left at 1 month",
                                  plausible=(3.0, 30.0), bounds=(1e-6, math.inf),
                                  doc="first-order loss")  # fmt: skip
    persistent_fraction: float = param(0.015, "1", "[S] Toupet 2013: 1.5% at 6 months",
                                       plausible=(0.0, 0.05), bounds=FRACTION,
                                       doc="long-lived pool")  # fmt: skip
    inactivated_half_life_days: float = param(
        1.0, "days", "assumed: heat-inactivated/apoptotic MSCs are cleared within ~1-2 days "
        "after injection (Galleu 2017; de Witte 2018 [R])", plausible=(0.25, 3.0),
        bounds=(1e-6, math.inf), doc="loss of inactivated MSCs",
    )  # fmt: skip
    apoptotic_half_life_days: float = param(
        1.0, "days", "assumed: apoptotic cells become secondarily necrotic/cleared within ~1 d",
        plausible=(0.25, 3.0), bounds=(1e-6, math.inf),
        doc="clearance of the apoptotic pool besides efferocytosis",
    )  # fmt: skip
    speed_um_min: float = param(1.0, "µm/min", "assumed", plausible=(0.1, 5.0),
                                doc="walk once adhered")  # fmt: skip
    chemotaxis: float = param(2.0, "1", "assumed", plausible=(0.0, 10.0), doc="homing up CCL2")
    pge2_base: float = param(0.1, "1", "assumed: naive MSCs alone make little PGE2 "
                             "(conditioned medium fails: Manferdini 2015 [R])",
                             plausible=(0.0, 1.0), doc="PGE2, TSG6 ∝ base + X")  # fmt: skip
    secretion: dict[str, float] = table(
        {"PGE2": 3000.0, "TSG6": 0.3, "KYN": 30000.0, "TGFb": 5.0, "IL1RA": 50.0, "IL6": 1.0,
         "CCL2": 0.5},
        "molecules/cell/s",
        "calibrated; PGE2 ~15 ng/1e5 cells/day in vitro [R] (197 molecules/cell/s per "
        "ng/1e5/day); TSG6 estimated: TNF-stimulated hMSCs ~1 ng/1e6 cells/day (Lee 2009 [R]) "
        "= 0.2 and ~0.5 ng/mL per 1e5 cells in 48 h = 0.5 -> 0.3; KYN µM in licensed "
        "co-cultures [R]; TGFb constant (Di Nicola 2002 [S]); IL6 [R] constitutive, ~0.3 ng/"
        "1e5 cells/day; CCL2 [R] constitutive, assumed ~10x below the in-vitro ~6 so MSCs do "
        "not dominate macrophage recruitment (C1)",
        doc="per cell at X = 1 (PGE2, TSG6), L = 1 (KYN), always (TGFb, IL1RA, IL6, CCL2)",
    )  # fmt: skip
    uptake: dict[str, float] = table({}, "1/min", "assumed")


@register
class MSC(CellType):
    """Injected mesenchymal stromal cells (naive or licensed), each agent standing for
    ``weight`` cells of relative ``potency``."""

    name = "msc"
    title = "Mesenchymal stromal cells"
    Params = Params
    columns: ClassVar[dict[str, Any]] = {
        "adhered": np.bool_, "persistent": np.bool_, "exposure": np.float32,
        "weight": np.float32, "potency": np.float32, "inactivated": np.bool_,
    }  # fmt: skip
    phenotypes = ("MSC_naive", "MSC_licensed")
    habitat = ("surface", "lining")

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Advance exposure and licensing (exactly, fields held); first-order loss outside the
        persistent pool, fast loss when inactivated; the dying feed the apoptotic pool, which
        clears with its own half-life."""
        xp, p, dt, s = ctx.xp, self.p, ctx.dt, ctx.sense[self.name]
        clear = math.log(2.0) / (p.apoptotic_half_life_days * MIN_PER_DAY)
        pool = float(ctx.world.apoptotic_msc)
        if pool > 0.0:
            ctx.world.take_apoptotic(pool * -math.expm1(-clear * dt))
        if pop.n == 0:
            return Fate()
        signal = s.H("TNF") + s.H("IL1_eff")
        kx = p.exposure_rate * signal
        X = pop["exposure"]
        rate = kx + p.exposure_decay
        pop["exposure"] = (kx / rate + (X - kx / rate) * xp.exp(-rate * dt)).astype(X.dtype)
        L = pop["state"]
        kl = p.licensing_rate * s.H("IFNg") * (1.0 + signal)
        rate = kl + p.delicensing_rate
        pop["state"] = (kl / rate + (L - kl / rate) * xp.exp(-rate * dt)).astype(L.dtype)
        dead = pop["inactivated"]
        loss = math.log(2.0) / (p.half_life_days * MIN_PER_DAY)
        fast = math.log(2.0) / (p.inactivated_half_life_days * MIN_PER_DAY)
        u = ctx.uniform(Draw.DEATH, pop["id"])
        death = xp.where(dead, u < event_prob(xp, fast, dt),
                         (u < event_prob(xp, loss, dt)) & ~pop["persistent"])  # fmt: skip
        if bool(xp.any(death)):
            dying = xp.sort(pop["weight"][death]).astype(xp.float64)  # order-free sum
            ctx.world.add_apoptotic(float(xp.sum(dying)))
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

    def injected(self, ctx: StepContext, ids: Any, prelicensed: bool, *, weight: float = 1.0,
                 potency: float = 1.0, inactivated: bool = False) -> dict[str, Any]:  # fmt: skip
        """Columns of a bolus of MSCs ``ids``: each agent stands for ``weight`` cells of
        relative ``potency``; ``inactivated`` ones secrete nothing and die within days."""
        xp = ctx.xp
        persistent = ctx.uniform(Draw.PERSIST, ids) < self.p.persistent_fraction
        n = ids.shape[0]
        return {"state": xp.full(n, 1.0 if prelicensed else 0.0), "persistent": persistent,
                "weight": xp.full(n, float(weight)), "potency": xp.full(n, float(potency)),
                "inactivated": xp.full(n, bool(inactivated))}  # fmt: skip

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Mediators in molecules/cell/s × weight × potency (0 when inactivated); knocked-out
        mediators are left out."""
        xp, p = ctx.xp, self.p
        L, X = pop["state"], pop["exposure"]
        scale = xp.where(pop["inactivated"], 0.0, pop["weight"] * pop["potency"])
        rates = p.secretion
        out = {
            "PGE2": rates["PGE2"] * (p.pge2_base + X) * scale,
            "TSG6": rates["TSG6"] * (p.pge2_base + X) * scale,
            "KYN": rates["KYN"] * L * scale,
            "TGFb": rates["TGFb"] * scale,
            "IL1RA": rates["IL1RA"] * scale,
            "IL6": rates["IL6"] * scale,
            "CCL2": rates["CCL2"] * scale,
        }
        return {f: r for f, r in out.items() if KNOCKOUT_OF.get(f) not in ctx.knockouts}

    def phenotype(self, xp: Any, pop: Any) -> Any:
        """0 naive, 1 licensed (L > 0.5)."""
        return (pop["state"] > LICENSED).astype(xp.int8)

    def metrics(self) -> list[Metric]:
        return [
            Metric("msc_alive", "cells", "MSCs in the joint", lambda m: m.cells[self.name].n),
            Metric("msc_licensed", "cells", "MSCs with L > 0.5",
                   lambda m: m.xp.sum(m.cells[self.name]["state"] > LICENSED)),
        ]  # fmt: skip
