"""T-cell rules: naive -> Th1 / Th17 / Treg by local cues, MSC-suppressed effector proliferation.

MODEL.md section 4: Th1 ∝ H(IFNg) + H(IL1_eff) (IL-1b stands in for M1 contact), Th17 ∝
H(IL6) H(IL1_eff), Treg ∝ H(TGFb) (1 + H(PGE2) + H(KYN)); effector proliferation × (1 - H(KYN))
(1 - H(PGE2)) (1 - H(TGFb)) (IDO [S] Krampera 2006; PGE2 [S] Aggarwal & Pittenger 2005; TGF-b
[S] Di Nicola 2002), and needs inflammation: × H(IL1_eff). ``state`` holds that suppression
factor (1 = unsuppressed).
"""

from __future__ import annotations

from typing import Any

from abm.cells.base import T_DEATH, T_DIFF, T_DIFF_PICK, T_DIV, Ctx, Sense, event_prob
from abm.cells.population import NAIVE, TH1, TH17, TREG, Population


def update(pop: Population, s: Sense, ctx: Ctx) -> tuple[Any, Any]:
    """Differentiate naive cells, decide divisions and deaths; return (death, divide) masks."""
    xp, p, dt = ctx.xp, ctx.bio.tcell, ctx.dt
    ids, subset = pop["id"], pop["subset"]
    r1 = p.th1_rate * (s.H("IFNg") + s.H("IL1_eff"))
    r17 = p.th17_rate * s.H("IL6") * s.H("IL1_eff")
    rreg = p.treg_rate * s.H("TGFb") * (1.0 + s.H("PGE2") + s.H("KYN"))
    total = r1 + r17 + rreg
    go = (subset == NAIVE) & (ctx.uniform(T_DIFF, ids) < event_prob(xp, total, dt))
    pick = ctx.uniform(T_DIFF_PICK, ids) * total
    new = xp.where(pick < r1, TH1, xp.where(pick < r1 + r17, TH17, TREG)).astype(subset.dtype)
    subset = xp.where(go, new, subset)
    pop["subset"] = subset

    supp = (1.0 - s.H("KYN")) * (1.0 - s.H("PGE2")) * (1.0 - s.H("TGFb"))
    pop["state"] = supp.astype(pop["state"].dtype)
    effector = (subset == TH1) | (subset == TH17)
    rate = xp.where(effector, p.proliferation_rate * supp * s.H("IL1_eff"), 0.0)
    rate = xp.where(subset == TREG, p.treg_proliferation_rate * s.H("TGFb"), rate)
    divide = ctx.uniform(T_DIV, ids) < event_prob(xp, rate, dt)
    death = ctx.uniform(T_DEATH, ids) < event_prob(xp, p.death_rate, dt)
    return death, divide & ~death


def secretion(pop: Population, s: Sense, ctx: Ctx) -> dict[str, Any]:
    """Th1: IFNg, TNF; Th17: IL17; Treg: IL10, TGFb (molecules/cell/s)."""
    rates, subset = ctx.bio.tcell.secretion, pop["subset"]
    out: dict[str, Any] = {}
    for code, name in ((TH1, "th1"), (TH17, "th17"), (TREG, "treg")):
        on = (subset == code).astype(pop["state"].dtype)
        for field, r in rates[name].items():
            out[field] = out[field] + r * on if field in out else r * on
    return out


def phenotype(xp: Any, subset: Any) -> Any:
    """Phenotype codes 3 naive, 4 Th1, 5 Th17, 6 Treg."""
    return (subset + 3).astype(xp.int8)
