"""The model's space: regions, occupancy, movement with exclusion, adhesion to the lining
surface, contact neighbourhoods, division and recruitment placement (act stage of the data flow).

:class:`World` is what the cell rules see as ``ctx.world`` (the protocol of
:class:`abm.cells.base.World`): it reads the model's fields, populations and matrix, never
writes the fields. One cell per voxel everywhere; exclusion and ties are resolved with
counter-based draws (:mod:`kernels.moves`), so results do not depend on cell order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from abm.cells.base import MAX_SUBSTEPS, StepContext, WorldDraw, event_prob, hill
from abm.errors import ConfigError
from abm.tissue import CARTILAGE, FLUID, LINING, SUBLINING
from kernels.moves import neighbors, place_daughters, resolve_moves

SURFACE_ROWS = 2  # fluid rows next to the lining where adhered MSCs sit and move


def move_substeps(celltype: Any, dt_min: float, dx_um: float) -> int:
    """Sub-steps a type moves in per step: enough that at its ``speed_um_min`` it needs at
    most one voxel per sub-step (1 for a type without a speed, and at the default dt)."""
    speed = float(getattr(celltype.p, "speed_um_min", 0.0))
    return max(1, math.ceil(speed * dt_min / dx_um - 1e-9))


def regions(tissue: Any) -> dict[str, np.ndarray]:
    """Named host masks (flat, bool) of the tissue: compartments, ``synovium`` (lining +
    sublining) and ``surface`` (the fluid rows next to the lining)."""
    comp = tissue.compartment.ravel()
    lateral = tissue.n_voxels // tissue.shape[0]
    lining_start = tissue.rows["lining"][0]
    surface = np.zeros((tissue.shape[0], lateral), dtype=bool)
    surface[lining_start - SURFACE_ROWS : lining_start] = True
    return {
        "cartilage": comp == CARTILAGE, "fluid": comp == FLUID, "lining": comp == LINING,
        "sublining": comp == SUBLINING, "synovium": (comp == LINING) | (comp == SUBLINING),
        "surface": surface.ravel(),
    }  # fmt: skip


class World:
    """Spatial services of one model (``model.world``); see :class:`abm.cells.base.World`."""

    def __init__(self, model: Any) -> None:
        self.model = model
        xp = self.xp = model.xp
        tissue = model.tissue
        self.shape = tissue.shape
        self.n_voxels = tissue.n_voxels
        self.lateral = self.n_voxels // self.shape[0]  # voxels per row
        self.dx_um = tissue.dx_um
        self.regions = regions(tissue)
        self.surface_row = tissue.rows["lining"][0] - 1
        self.allowed: dict[str, Any] = {}
        self._habitat_n: dict[str, int] = {}
        for t in model.types:
            mask = np.zeros(self.n_voxels, dtype=bool)
            for r in t.habitat:
                mask |= self.regions[r]
            self.allowed[t.name] = xp.asarray(mask)
            self._habitat_n[t.name] = int(mask.sum())
        self.vessels = xp.asarray(tissue.vessels)
        self.recruiters = [t for t in model.types if t.recruit_draw is not None]
        self.substeps = {t.name: move_substeps(t, model.dt_min, self.dx_um) for t in model.types}
        self.move_substeps = max(self.substeps.values(), default=1)
        if self.move_substeps > MAX_SUBSTEPS:
            fast = max(self.substeps, key=self.substeps.__getitem__)
            raise ConfigError(
                f"biology.{fast}.speed_um_min: needs {self.move_substeps} move sub-steps per "
                f"step of {model.dt_min:g} min; at most {MAX_SUBSTEPS}: lower the speed or dt"
            )
        self._occ: Any = None

    # -- what the rules ask
    @property
    def depleted(self) -> bool:
        return bool(self.model.flags.depleted)

    @property
    def drive(self) -> float:
        """The disease drive on macrophages and FLS this step (abm/drive.py)."""
        return float(self.model.drive.value)

    def habitat_voxels(self, kind: str) -> int:
        return self._habitat_n[kind]

    # -- the apoptotic-MSC pool (cell equivalents in the patch; kept in model.flags so that
    # checkpoints carry it): fed by dying MSCs, cleared by efferocytosis and its own clearance
    @property
    def apoptotic_msc(self) -> float:
        """Apoptotic MSCs awaiting clearance (cell equivalents, MSC weight)."""
        return float(self.model.flags.apoptotic_msc)

    def add_apoptotic(self, n: float) -> None:
        """Add ``n`` cell equivalents (>= 0) of dying MSCs to the pool."""
        self.model.flags.apoptotic_msc = self.apoptotic_msc + max(0.0, float(n))

    def take_apoptotic(self, n: float) -> float:
        """Remove up to ``n`` cell equivalents from the pool; returns what was removed."""
        pool = self.apoptotic_msc
        taken = min(pool, max(0.0, float(n)))
        self.model.flags.apoptotic_msc = pool - taken
        return taken

    def matrix_at(self, name: str, voxels: Any) -> Any:
        return self.model.matrix.field(name).reshape(-1)[voxels]

    def near(self, kind: str, radius_um: float, voxels: Any) -> Any:
        """1.0 for ``voxels`` within ``radius_um`` (box) of a cell of type ``kind``, else 0.0."""
        xp, dtype = self.xp, self.model.dtype
        others = self.model.cells[kind]
        if others.n == 0 or voxels.shape[0] == 0:
            return xp.zeros(voxels.shape[0], dtype=dtype)
        grid = xp.zeros(self.n_voxels, dtype=bool)
        grid[others["voxel"]] = True
        grid = grid.reshape(self.shape)
        r = round(float(radius_um) / self.dx_um)
        nd = len(self.shape)
        for ax in range(nd):  # separable box dilation
            out = grid.copy()
            for s in range(1, r + 1):
                lo = [slice(None)] * nd
                hi = [slice(None)] * nd
                lo[ax], hi[ax] = slice(s, None), slice(None, -s)
                out[tuple(lo)] |= grid[tuple(hi)]
                out[tuple(hi)] |= grid[tuple(lo)]
            grid = out
        return grid.reshape(-1)[voxels].astype(dtype)

    def surface_voxels(self, voxels: Any) -> Any:
        return self.surface_row * self.lateral + voxels % self.lateral

    def at_surface(self, voxels: Any) -> Any:
        return (voxels // self.lateral) == self.surface_row

    def depth_um(self, voxels: Any) -> Any:
        """Depth (µm) of each voxel below the top of the synovial lining (0 in its first row;
        negative in the fluid and cartilage)."""
        return ((voxels // self.lateral) - (self.surface_row + 1)) * self.dx_um

    def walk(self, ctx: StepContext, pop: Any, *, speed_um_min: float, chemotaxis: float,
             mobile: Any, draw: tuple[int, int]) -> Any:  # fmt: skip
        """Targets (N,) of a random walk to a free neighbour in the habitat, weighted by
        exp(chemotaxis · ΔCCL2 / (K + CCL2)); -1 = stay. ``mobile`` None means all cells."""
        xp = self.xp
        if pop.n == 0:
            return xp.full(0, -1, dtype=xp.int64)
        ccl2 = self.model.u[self.model.fidx["CCL2"]].reshape(-1)
        K = float(ctx.bio.fields["CCL2"].K)
        occ = self._occ
        mobile = xp.ones(pop.n, dtype=bool) if mobile is None else mobile
        go = ctx.uniform(draw[0], pop["id"]) < min(1.0, speed_um_min * ctx.dt / self.dx_um)
        nb = neighbors(xp, self.shape, pop["voxel"])
        valid = nb >= 0
        nbc = xp.where(valid, nb, 0)
        ok = valid & self.allowed[pop.name][nbc] & ~occ[nbc]
        c0 = ccl2[pop["voxel"]]
        bias = chemotaxis * (ccl2[nbc] - c0[None, :]) / (K + c0[None, :])
        w = xp.exp(xp.clip(bias, -20.0, 20.0)) * ok
        cw = xp.cumsum(w, axis=0)
        pick = ctx.uniform(draw[1], pop["id"]) * cw[-1]
        k = xp.minimum(xp.sum(cw <= pick[None, :], axis=0), nb.shape[0] - 1)
        chosen = xp.take_along_axis(nbc, k[None, :], axis=0)[0]
        return xp.where(go & mobile & (cw[-1] > 0), chosen, -1)

    def lining_thickness(self, kinds: tuple[str, ...]) -> Any:
        """Mean depth (µm) of the unbroken layer of cells of ``kinds`` below the fluid."""
        xp = self.xp
        occ = xp.zeros(self.n_voxels, dtype=bool)
        for k in kinds:
            occ[self.model.cells[k]["voxel"]] = True
        start = self.model.tissue.rows["lining"][0]
        region = occ.reshape(self.shape[0], -1)[start:]
        depth = xp.where(xp.all(region, axis=0), region.shape[0], xp.argmax(~region, axis=0))
        return xp.mean(depth.astype(self.model.dtype)) * self.dx_um

    # -- what the step does
    def occupancy(self) -> Any:
        """(n_voxels,) bool: voxels holding a cell or a vessel."""
        occ = self.xp.zeros(self.n_voxels, dtype=bool)
        for pop in self.model.cells:
            occ[pop["voxel"]] = True  # one cell per voxel: plain assignment is exact
        occ[self.vessels] = True
        return occ

    def move(self, ctx: StepContext) -> None:
        """Moves in sub-steps: a type moves in ``substeps[name]`` sub-steps of dt / k (so that
        at its speed it needs at most one voxel per sub-step), spread evenly over the
        :attr:`move_substeps` sub-steps of the phase. Each sub-step: the targets of the types
        that move in it (``motility``), exclusion resolved at random among them, ``moved``."""
        n = self.move_substeps
        occ = None  # built at the first sub-step that moves anything, then kept up to date
        for j in range(n):
            turns = []  # (type, population, its own sub-step index) moving in sub-step j
            for t, pop in zip(self.model.types, self.model.cells, strict=True):
                k = self.substeps[t.name]
                i = -(-j * k // n)  # the first own sub-step at or after j
                if pop.n and i < k and i * n // k == j:
                    turns.append((t, pop, i))
            if turns:
                occ = self.occupancy() if occ is None else occ
                self._move_once(ctx, j, turns, occ)

    def _move_once(
        self, ctx: StepContext, j: int, turns: list[tuple[Any, Any, int]], occ: Any
    ) -> None:
        """One phase sub-step; ``occ`` (the occupancy) follows the moves."""
        xp = self.xp
        self._occ = occ
        movers = []  # (type, population, its sub-step context, targets)
        for t, pop, i in turns:
            sub = ctx.substep(i, self.substeps[t.name])
            tgt = t.motility(sub, pop)
            if tgt is not None:
                movers.append((t, pop, sub, tgt))
        self._occ = None
        if not movers:
            return
        # targets are free voxels (walk excludes every occupied one): only movers can conflict
        cur = xp.concatenate([m[1]["voxel"] for m in movers])
        ids = xp.concatenate([m[1]["id"] for m in movers])
        tgt = xp.concatenate([m[3] for m in movers])
        tgt = xp.where(tgt == cur, -1, tgt)
        prio = ctx.substep(j, self.move_substeps).uniform(WorldDraw.MOVE_PRIO, ids)
        new = resolve_moves(xp, self.n_voxels, cur, tgt, prio, ids)
        occ[cur] = False  # one cell per voxel: the movers' old voxels, then their new ones
        occ[new] = True
        start = 0
        for t, pop, sub, _ in movers:
            stop = start + pop.n
            pop["voxel"] = new[start:stop]
            t.moved(sub, pop)
            start = stop

    def _place(self, occ: Any, kind: str, parents: Any, key: Any, choice: Any,
               prio: Any) -> tuple[Any, Any]:  # fmt: skip
        """Daughter voxels for ``parents`` (flat voxels; ``key`` ids break ties); marks them
        occupied. Returns (placed mask, daughter voxels)."""
        xp = self.xp
        d = place_daughters(xp, self.shape, occ, self.allowed[kind], parents, choice, prio, key)
        ok = d >= 0
        occ[d[ok]] = True
        return ok, d

    def births(self, ctx: StepContext, divide: dict[str, Any]) -> None:
        """Divisions into a free neighbour (by parent id order), then recruitment at vessels
        (rate × H(CCL2 at the vessel)); newborn cells act from the next step."""
        xp, model = self.xp, self.model
        occ = self.occupancy()
        for t in model.types:
            mask = divide.get(t.name)
            if mask is None or not bool(xp.any(mask)):
                continue
            pop = model.cells[t.name]
            order = xp.argsort(pop["id"][mask])
            parent_idx = xp.nonzero(mask)[0][order]
            choice, prio = (ctx.uniform(p, pop["id"])[parent_idx] for p in t.divide_draws)
            ok, d = self._place(occ, t.name, pop["voxel"][parent_idx], pop["id"][parent_idx],
                                choice, prio)  # fmt: skip
            src = parent_idx[ok]
            extra = {c: pop[c][src] for c in pop.cols if c not in ("id", "voxel", "age")}
            pop.append(id=model.new_ids(int(xp.sum(ok))), voxel=d[ok], **extra)
        if self.vessels.shape[0] == 0:
            return
        ccl2 = model.u[model.fidx["CCL2"]].reshape(-1)[self.vessels]
        h = hill(xp, ccl2, float(ctx.bio.fields["CCL2"].K), float(ctx.bio.hill_n))
        for i, t in enumerate(self.recruiters):
            rate = t.recruitment(ctx, model.cells[t.name].n)
            keys = self.vessels + i * self.n_voxels  # one id space per recruited type
            fire = ctx.uniform(t.recruit_draw, keys) < event_prob(xp, rate * h, ctx.dt)
            if not bool(xp.any(fire)):
                continue
            choice, prio = (ctx.uniform(p, keys)[fire]
                            for p in (WorldDraw.RECRUIT_DIR, WorldDraw.RECRUIT_PRIO))  # fmt: skip
            ok, d = self._place(occ, t.name, self.vessels[fire], keys[fire], choice, prio)
            ids = model.new_ids(int(xp.sum(ok)))
            model.cells[t.name].append(id=ids, voxel=d[ok], **t.recruited(ctx, ids))
