"""Initial cells (build stage of the data flow): each type's seeding regions are filled at the
scenario's densities, types with a lower ``seed_order`` first (they claim their voxels first).

Every draw is counter-based and keyed by voxel (placement) or cell id (initial states) at
step 0, with the purposes each type registers for it (70-89 by convention): the same cells on
any backend, in any order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from abm.backend import to_numpy
from kernels.random import normal, uniform


class SeedContext:
    """What a type's ``initial`` sees: ``xp``, ``scenario``, and draws keyed by cell id."""

    def __init__(self, xp: Any, seed: int, scenario: Any) -> None:
        self.xp = xp
        self.seed = seed
        self.scenario = scenario

    def uniform(self, purpose: int, ids: Any) -> Any:
        return uniform(self.xp, self.seed, 0, purpose, ids)

    def normal(self, purpose: int, ids: Any) -> Any:
        return normal(self.xp, self.seed, 0, purpose, ids)


def seed_cells(model: Any) -> None:
    """Fill ``model.cells`` with the initial cells of every type (vessels are never free)."""
    xp, world = model.xp, model.world
    occ = np.zeros(model.n_voxels, dtype=bool)
    occ[model.tissue.vessels] = True
    vox_ids = xp.asarray(np.arange(model.n_voxels, dtype=np.int64))
    ctx = SeedContext(xp, model.seed, model.scenario)
    for t in sorted(model.types, key=lambda t: t.seed_order):
        picked = []
        for s in t.seeding(model.scenario):
            u = to_numpy(uniform(xp, model.seed, 0, s.draw, vox_ids))
            chosen = world.regions[s.region] & ~occ & (u < float(s.density))
            occ[chosen] = True
            picked.append(np.flatnonzero(chosen))
        if not picked:
            continue
        voxels = np.sort(np.concatenate(picked)) if len(picked) > 1 else picked[0]
        ids = model.new_ids(voxels.size)
        model.cells[t.name].append(id=ids, voxel=xp.asarray(voxels), **t.initial(ctx, ids))
