"""Macrophage rules: continuous polarization p in [-1, 1] (M1 > 0.3, M2 < -0.3), secretion, death.

MODEL.md section 4: dp/dt = a [H(IL1_eff) + H(TNF) + H(IFNg) + drive] (1 - H(TSG6))
- b [H(IL10) + H(PGE2)] - c p; ``drive`` is the scenario's persistent inflammatory stimulus.
Recruitment, movement and chemotaxis are done by the model (shared with T cells).
"""

from __future__ import annotations

from typing import Any

from abm.cells.base import MAC_DEATH, Ctx, Sense, event_prob
from abm.cells.population import Population

M1_THRESHOLD = 0.3


def update(pop: Population, s: Sense, ctx: Ctx) -> tuple[Any, Any]:
    """Advance polarization by dt; return (death mask, division mask or None)."""
    xp, p = ctx.xp, ctx.bio.macrophage
    drive = float(ctx.scenario.inflammatory_drive)
    pro = (s.H("IL1_eff") + s.H("TNF") + s.H("IFNg") + drive) * (1.0 - s.H("TSG6"))
    anti = s.H("IL10") + s.H("PGE2")
    state = pop["state"]
    dp = p.activation_rate * pro - p.resolution_rate * anti - p.relaxation_rate * state
    pop["state"] = xp.clip(state + ctx.dt * dp, -1.0, 1.0).astype(state.dtype)
    death = ctx.uniform(MAC_DEATH, pop["id"]) < event_prob(xp, p.death_rate, ctx.dt)
    return death, None


def secretion(pop: Population, s: Sense, ctx: Ctx) -> dict[str, Any]:
    """Molecules/cell/s per field: pro-inflammatory ∝ max(p, 0), resolving ∝ max(-p, 0)."""
    xp, rates = ctx.xp, ctx.bio.macrophage.secretion
    pro = xp.maximum(pop["state"], 0.0)
    anti = xp.maximum(-pop["state"], 0.0)
    out = {f: rates[f] * pro for f in ("TNF", "IL1b", "IL6", "CCL2")}
    out.update({f: rates[f] * anti for f in ("IL10", "TGFb", "IL1RA")})
    return out


def phenotype(xp: Any, state: Any) -> Any:
    """Phenotype codes: 0 M0, 1 M1 (p > 0.3), 2 M2 (p < -0.3)."""
    return xp.where(state > M1_THRESHOLD, 1, xp.where(state < -M1_THRESHOLD, 2, 0)).astype(xp.int8)
