"""Chondrocyte rules: catabolic drive c in [0, 1], protease/cytokine secretion, matrix synthesis.

MODEL.md section 4: c rises with H(IL1_eff) + H(TNF) (dose-dependent [S] Fan 2005) and the
scenario's mechanical drive, falls with H(TGFb); PROT ∝ c; IL1b and IL6 when catabolic
(c > 0.5); aggrecan synthesis ∝ (1 + H(TGFb)) (1 - H(IL1_eff)); apoptosis ∝ c (1 - AGG).
Chondrocytes never move; apoptotic ones stay in place with ``alive`` False.
"""

from __future__ import annotations

from typing import Any

from abm.cells.base import CH_APOPTOSIS, Ctx, Sense, event_prob
from abm.cells.population import Population

CATABOLIC = 0.5


def update(pop: Population, s: Sense, ctx: Ctx, agg: Any) -> None:
    """Advance c and apoptosis; ``agg`` (N,) is the aggrecan at each cell's voxel."""
    xp, p, dt = ctx.xp, ctx.bio.chondrocyte, ctx.dt
    alive = pop["alive"]
    c = pop["state"]
    up = p.catabolic_rate * (s.H("IL1_eff") + s.H("TNF")) + ctx.scenario.mechanical_drive
    down = p.recovery_rate + p.tgfb_recovery * s.H("TGFb")
    c_new = xp.clip(c + dt * (up * (1.0 - c) - down * c), 0.0, 1.0).astype(c.dtype)
    pop["state"] = xp.where(alive, c_new, c)
    rate = p.apoptosis_rate * c_new * xp.clip(1.0 - agg, 0.0, 1.0)
    dies = ctx.uniform(CH_APOPTOSIS, pop["id"]) < event_prob(xp, rate, dt)
    pop["alive"] = alive & ~dies


def secretion(pop: Population, s: Sense, ctx: Ctx) -> dict[str, Any]:
    rates = ctx.bio.chondrocyte.secretion
    dtype = pop["state"].dtype
    c = pop["state"] * pop["alive"].astype(dtype)
    catabolic = c * (c > CATABOLIC).astype(dtype)
    return {"PROT": rates.PROT * c, "IL1b": rates.IL1b * catabolic, "IL6": rates.IL6 * catabolic}


def synthesis(pop: Population, s: Sense, ctx: Ctx) -> Any:
    """Relative aggrecan synthesis drive of each cell, (1 + H(TGFb)) (1 - H(IL1_eff)) if alive."""
    f = (1.0 + s.H("TGFb")) * (1.0 - s.H("IL1_eff"))
    return f * pop["alive"].astype(f.dtype)


def phenotype(xp: Any, state: Any, alive: Any) -> Any:
    """Phenotype codes 9 homeostatic, 10 catabolic (c > 0.5), 11 apoptotic."""
    return xp.where(~alive, 11, xp.where(state > CATABOLIC, 10, 9)).astype(xp.int8)
