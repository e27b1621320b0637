"""Fibroblast-like synoviocyte rules: activation a in [0, 1], hyperplasia, secretion.

MODEL.md section 4: da/dt = k [H(IL1_eff) + H(TNF) + H(IL17) + drive] (1 - a) damp - d a, with
damp = 1 - m·near_MSC·(H(PGE2) + H(TSG6))/2: MSC mediators calm FLS only where MSCs are near
(co-culture, not conditioned medium, works [S] Manferdini 2015). FLS proliferate at
r (b + a)(1 - N/K): activation drives hyperplasia, a basal rate b keeps a healthy lining, and
the carrying capacity K (cells per synovium voxel x synovium voxels) makes the synovitis
saturate. They secrete IL6, CCL2, PROT, PGE2, IL1b ∝ max(a, basal).
"""

from __future__ import annotations

from typing import Any

from abm.cells.base import FLS_DEATH, FLS_DIV, Ctx, Sense, event_prob
from abm.cells.population import Population

ACTIVATED = 0.5


def update(
    pop: Population, s: Sense, ctx: Ctx, near_msc: Any, crowding: float = 1.0
) -> tuple[Any, Any]:
    """Advance activation; ``near_msc`` (N,) float 0/1 marks FLS within reach of an MSC;
    ``crowding`` = max(0, 1 - N/K) is the logistic room left for proliferation."""
    xp, p, dt = ctx.xp, ctx.bio.fls, ctx.dt
    drive = float(ctx.scenario.inflammatory_drive)
    pro = s.H("IL1_eff") + s.H("TNF") + s.H("IL17") + drive
    damp = 1.0 - p.msc_damping * near_msc * 0.5 * (s.H("PGE2") + s.H("TSG6"))
    a = pop["state"]
    da = p.activation_rate * pro * damp * (1.0 - a) - p.deactivation_rate * a
    a = xp.clip(a + dt * da, 0.0, 1.0).astype(a.dtype)
    pop["state"] = a
    ids = pop["id"]
    rate = p.proliferation_rate * (p.basal_proliferation + a) * crowding
    divide = ctx.uniform(FLS_DIV, ids) < event_prob(xp, rate, dt)
    death = ctx.uniform(FLS_DEATH, ids) < event_prob(xp, p.death_rate, dt)
    return death, divide & ~death


def secretion(pop: Population, s: Sense, ctx: Ctx) -> dict[str, Any]:
    p = ctx.bio.fls
    level = ctx.xp.maximum(pop["state"], p.basal_activity)
    return {f: r * level for f, r in p.secretion.items()}


def phenotype(xp: Any, state: Any) -> Any:
    """Phenotype codes 7 resting, 8 activated (a > 0.5)."""
    return xp.where(state > ACTIVATED, 8, 7).astype(xp.int8)
