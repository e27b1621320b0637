"""The disease drive on macrophages and FLS (tissue stage of the data flow: after the matrix
update, once per step; the rules read ``value`` as ``ctx.world.drive`` in the next step).

    drive = baseline · severity + leak_gain · S · E + fragment_gain · F

- baseline: ``scenario.inflammatory_drive`` × ``patient.severity`` (what no therapy reaches);
- S in [0, 1], synovitis: the mean pro-inflammatory state of the synovial effector cells, FLS
  activation a and macrophage max(p, 0) pooled over all FLS and macrophages (0 when none);
- E, effusion: ``patient.sf_volume_ml`` / ``healthy_sf_ml``, bounded by ``max_effusion``;
  leak_gain · S · E stands for plasma proteins/DAMPs leaking into an inflamed, effused joint
  (TLR4 ligands in OA SF drive macrophage TNF: Sohn 2012 Arthritis Res Ther 14:R7);
- F, the cartilage-fragment pool: dF/dt = q D − F / τ_F, D = matrix (AGG + COL2, mean over
  cartilage voxels) degraded per minute (``model.matrix.degraded_last`` / dt), integrated
  exactly over a step with D held.

MSC mediators lower S (FLS, macrophages) and D (protease activity), so the drive is reachable.
F and the value are kept in ``model.flags`` (``fragments``, ``drive``) so checkpoints carry them.
"""

from __future__ import annotations

import math
from typing import Any

PRO_STATE = {"fls": "activation a", "macrophage": "max(p, 0)"}  # what S pools


def _ordered_sum(xp: Any, x: Any) -> float:
    """Sum that does not depend on the order of the cells in memory (sorted, float64)."""
    return float(xp.sum(xp.sort(x).astype(xp.float64)))


def synovitis(model: Any) -> float:
    """S in [0, 1]: mean of FLS activation and macrophage max(p, 0) over all of those cells."""
    xp = model.xp
    total, n = 0.0, 0
    names = {t.name for t in model.types}
    if "fls" in names:
        pop = model.cells["fls"]
        if pop.n:
            total += _ordered_sum(xp, xp.clip(pop["state"], 0.0, 1.0))
            n += pop.n
    if "macrophage" in names:
        pop = model.cells["macrophage"]
        if pop.n:
            total += _ordered_sum(xp, xp.clip(pop["state"], 0.0, 1.0))
            n += pop.n
    return total / n if n else 0.0


def effusion(sf_volume_ml: float, p: Any) -> float:
    """E = V_sf / V_healthy, bounded to [0, max_effusion]."""
    return min(float(p.max_effusion), max(0.0, float(sf_volume_ml) / float(p.healthy_sf_ml)))


def fragments_step(F: float, D: float, dt: float, p: Any) -> float:
    """F after ``dt`` min of dF/dt = q D − F / τ_F (D held): exact."""
    tau = float(p.fragment_lifetime_days) * 1440.0
    decay = math.exp(-dt / tau)
    return F * decay + float(p.fragment_yield) * D * tau * (1.0 - decay)


def drive_value(baseline: float, S: float, E: float, F: float, p: Any) -> float:
    return baseline + float(p.leak_gain) * S * E + float(p.fragment_gain) * F


class Drive:
    """The drive of one model (``model.drive``); ``value`` is what the rules read as
    ``ctx.world.drive``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        model.flags.drive = self.baseline()  # before the first update: the baseline alone

    @property
    def value(self) -> float:
        return float(self.model.flags.drive)

    @property
    def fragments(self) -> float:
        return float(self.model.flags.fragments)

    def baseline(self) -> float:
        cfg = self.model.cfg
        return float(cfg.scenario.inflammatory_drive) * float(cfg.patient.severity)

    def update(self, ctx: Any, model: Any) -> None:
        """Once per step, after the matrix update: advance F, then the value."""
        p = ctx.bio.drive
        D = max(0.0, float(getattr(model.matrix, "degraded_last", 0.0))) / ctx.dt
        flags = model.flags
        flags.fragments = fragments_step(float(flags.fragments), D, ctx.dt, p)
        S = synovitis(model)
        E = effusion(model.cfg.patient.sf_volume_ml, p)
        flags.drive = drive_value(self.baseline(), S, E, float(flags.fragments), p)
