"""Scheduled interventions (events stage of the data flow): the MSC injection, the IL-1Ra
protein bolus (``therapy=il1ra_bolus``) and the clodronate-like macrophage depletion, each
applied once when its day comes.

MSC dose (:func:`abm.config.msc_dose`): N = dose · adherence · A_patch / A_syn physical MSCs
in the patch (A_patch: the lattice's lateral area, A_syn: ``patient.synovial_area_cm2``), as
n = max(min_cells, round(N), 1) agents each standing for w = N / n cells (the MSC type scales
its secretion by that weight and by ``therapy.potency``). IL-1Ra bolus: dose_mg · 1e6 /
sf_volume_ml ng/mL added to the well-mixed synovial fluid (:mod:`abm.fluid`), which then
clears it with the field's decay + ``biology.fluid_clearance``.
"""

from __future__ import annotations

import logging
from typing import Any

from abm.cells.base import StepContext
from abm.cells.msc import Draw as MscDraw
from abm.config import msc_dose
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)
NG_PER_MG = 1e6


def nothing_to_inject(therapy: Any) -> bool:
    """True when the therapy has no injection to give (the model's initial ``injected``)."""
    if therapy.name == "msc":
        return not therapy.dose > 0
    if therapy.name == "il1ra_bolus":
        return not therapy.dose_mg > 0
    return True


def apply_events(model: Any, ctx: StepContext) -> None:
    """Apply the interventions that are due at ``model.time_min``."""
    cfg, state = model.cfg, model.flags
    if cfg.perturb.deplete_macrophages and not state.depleted:
        if model.time_min >= cfg.perturb.deplete_day * MIN_PER_DAY:
            pop = model.cells["macrophage"]
            pop.keep(model.xp.zeros(pop.n, dtype=bool))
            state.depleted = True
    if not state.injected and model.time_min >= cfg.therapy.day * MIN_PER_DAY:
        if cfg.therapy.name == "il1ra_bolus":
            inject_il1ra(model)
        else:
            inject_msc(model, ctx)


def inject_il1ra(model: Any) -> float:
    """IL-1Ra protein into the synovial fluid: dose_mg · 1e6 / sf_volume_ml ng/mL added to
    every fluid voxel (the well-mixed compartment). Returns the added concentration."""
    th = model.cfg.therapy
    model.flags.injected = True
    conc = float(th.dose_mg) * NG_PER_MG / float(model.cfg.patient.sf_volume_ml)
    model.u = model.fluid.add(model.u, "IL1RA", conc)
    log.info("day %.2f: injected %.3g mg IL-1Ra: +%.4g ng/mL in the synovial fluid",
             model.time_min / MIN_PER_DAY, th.dose_mg, conc)  # fmt: skip
    return conc


def inject_msc(model: Any, ctx: StepContext) -> int:
    """Bolus of MSCs into free fluid voxels: n agents of weight N / n (module docstring)."""
    xp, th = model.xp, model.cfg.therapy
    model.flags.injected = True
    n, N = msc_dose(model.cfg)
    fluid = model.world.regions["fluid"]
    free = xp.nonzero(xp.asarray(fluid) & ~model.world.occupancy())[0]
    if n > int(free.shape[0]):
        log.warning("day %.2f: the MSC dose (%.3g per knee) asks for %d MSCs but only %d fluid "
                    "voxels are free: placing %d", model.time_min / MIN_PER_DAY, th.dose, n,
                    int(free.shape[0]), int(free.shape[0]))  # fmt: skip
    weight = N / n if n else 0.0  # the agents the dose asked for, whatever the cap
    n = min(n, int(free.shape[0]))
    if n == 0:
        return 0
    key = ctx.uniform(MscDraw.INJECT, free)
    vox = xp.sort(free[xp.argsort(key)[:n]])
    ids = model.new_ids(n)
    msc = model.types_by_name["msc"]
    cols = msc.injected(ctx, ids, bool(th.prelicensed), weight=weight,
                        potency=float(th.potency), inactivated=bool(th.inactivated))  # fmt: skip
    model.cells["msc"].append(id=ids, voxel=vox, **cols)
    log.info("day %.2f: injected %d MSC agents of weight %.4g (%.4g cells in the patch; dose "
             "%.3g per knee)", model.time_min / MIN_PER_DAY, n, weight, N, th.dose)  # fmt: skip
    return n
