"""Scheduled interventions (events stage of the data flow): the MSC injection and the
clodronate-like macrophage depletion, each applied once when its day comes.
"""

from __future__ import annotations

import logging
from typing import Any

from abm.cells.base import StepContext
from abm.cells.msc import Draw as MscDraw
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)


def apply_events(model: Any, ctx: StepContext) -> None:
    """Apply the interventions that are due at ``model.time_min``."""
    cfg, state = model.cfg, model.flags
    if cfg.perturb.deplete_macrophages and not state.depleted:
        if model.time_min >= cfg.perturb.deplete_day * MIN_PER_DAY:
            pop = model.cells["macrophage"]
            pop.keep(model.xp.zeros(pop.n, dtype=bool))
            state.depleted = True
    if not state.injected and model.time_min >= cfg.therapy.day * MIN_PER_DAY:
        inject_msc(model, ctx)


def inject_msc(model: Any, ctx: StepContext) -> int:
    """Bolus of MSCs into free fluid voxels: n = dose · V_fluid_sim / V_sf (>= min_cells)."""
    xp, th = model.xp, model.cfg.therapy
    model.flags.injected = True
    fluid = model.world.regions["fluid"]
    v_sim = fluid.sum() * model.tissue.voxel_ml
    n = max(int(th.min_cells), round(th.dose * v_sim / model.cfg.patient.sf_volume_ml))
    free = xp.nonzero(xp.asarray(fluid) & ~model.world.occupancy())[0]
    if n > int(free.shape[0]):
        log.warning("day %.2f: the MSC dose (%.3g per knee) asks for %d MSCs but only %d fluid "
                    "voxels are free: placing %d", model.time_min / MIN_PER_DAY, th.dose, n,
                    int(free.shape[0]), int(free.shape[0]))  # fmt: skip
    n = min(n, int(free.shape[0]))
    if n == 0:
        return 0
    key = ctx.uniform(MscDraw.INJECT, free)
    vox = xp.sort(free[xp.argsort(key)[:n]])
    ids = model.new_ids(n)
    msc = model.types_by_name["msc"]
    model.cells["msc"].append(id=ids, voxel=vox, **msc.injected(ctx, ids, bool(th.prelicensed)))
    log.info("day %.2f: injected %d MSCs (dose %.3g per knee)",
             model.time_min / MIN_PER_DAY, n, th.dose)  # fmt: skip
    return n
