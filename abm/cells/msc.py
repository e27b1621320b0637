"""MSC rules: licensing L in [0, 1], mediator secretion with knockouts, loss with a persistent pool.

MODEL.md section 4: dL/dt = k H(IFNg) (1 + H(TNF) + H(IL1_eff)) (1 - L) - δ L (IFN-γ required
[S] Krampera 2006); PGE2 ∝ (base + L)(1 + H(TNF)); TSG6 ∝ H(TNF); KYN ∝ L (IDO); TGFb and IL1RA
constant; knockouts zero a mediator. Loss: first order with t½ = 11 d except a persistent 1.5%
pool (15% left at 1 month, 1.5% at 6 months [S] Toupet 2013). Injection, adhesion to the lining
and movement are done by the model.
"""

from __future__ import annotations

import math
from typing import Any

from abm.cells.base import MSC_DEATH, Ctx, Sense, event_prob
from abm.cells.population import Population

LICENSED = 0.5
KNOCKOUT_OF = {"PGE2": "pge2", "TSG6": "tsg6", "KYN": "ido", "TGFb": "tgfb", "IL1RA": "il1ra"}


def update(pop: Population, s: Sense, ctx: Ctx) -> tuple[Any, Any]:
    """Advance licensing; return (death mask, None)."""
    xp, p, dt = ctx.xp, ctx.bio.msc, ctx.dt
    L = pop["state"]
    drive = p.licensing_rate * s.H("IFNg") * (1.0 + s.H("TNF") + s.H("IL1_eff"))
    pop["state"] = xp.clip(L + dt * (drive * (1.0 - L) - p.delicensing_rate * L), 0.0, 1.0).astype(
        L.dtype
    )
    loss = math.log(2.0) / (p.half_life_days * 1440.0)
    death = (ctx.uniform(MSC_DEATH, pop["id"]) < event_prob(xp, loss, dt)) & ~pop["persistent"]
    return death, None


def secretion(pop: Population, s: Sense, ctx: Ctx) -> dict[str, Any]:
    """Mediators in molecules/cell/s; knocked-out mediators are left out."""
    xp, p = ctx.xp, ctx.bio.msc
    L = pop["state"]
    one = xp.ones_like(L)
    out = {
        "PGE2": p.secretion.PGE2 * (p.pge2_base + L) * (1.0 + s.H("TNF")),
        "TSG6": p.secretion.TSG6 * s.H("TNF"),
        "KYN": p.secretion.KYN * L,
        "TGFb": p.secretion.TGFb * one,
        "IL1RA": p.secretion.IL1RA * one,
    }
    return {f: r for f, r in out.items() if KNOCKOUT_OF[f] not in ctx.knockouts}


def phenotype(xp: Any, state: Any) -> Any:
    """Phenotype codes 12 naive, 13 licensed (L > 0.5)."""
    return xp.where(state > LICENSED, 13, 12).astype(xp.int8)
