"""JointModel: the joint patch, its five cell types and MSC therapy, stepped on the lattice.

Data flow: validated config -> tissue (compartments, transport) + populations + lattice solver
-> ``step()`` in the fixed order of MODEL.md section 3 (sense, decide, act, transport, tissue,
events, observe) -> metrics through mesa's DataCollector every step; observers (abm.runner)
take host copies through :meth:`snapshot` / :meth:`get_state` only when they fire.

Every random draw is keyed by (seed, step, purpose, cell id or voxel index), so results do not
depend on the order of cells in memory; no Python loop runs over cells.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import mesa
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from abm import __version__
from abm.backend import get_backend, to_numpy
from abm.cells import chondrocyte, fls, macrophage, msc, tcell
from abm.cells.base import (
    DIVIDE,
    INIT,
    MOVE,
    MOVE_PRIO,
    MSC_ADHERE,
    MSC_INJECT,
    MSC_PERSIST,
    RECRUIT_DIR,
    RECRUIT_MAC,
    RECRUIT_PRIO,
    RECRUIT_T,
    Ctx,
    Sense,
    event_prob,
    hill,
)  # fmt: skip
from abm.cells.population import (
    CELL_TYPES,
    CHONDROCYTE,
    FLS,
    MACROPHAGE,
    MSC,
    NAIVE,
    PHENOTYPES,
    TCELL,
    TH1,
    TH17,
    TREG,
    Population,
)  # fmt: skip
from abm.config import FIELD_NAMES, MATRIX_FIELDS, plain
from abm.errors import SimulationError
from abm.tissue import CARTILAGE, COMPARTMENTS, FLUID, LINING, SUBLINING, build_tissue
from kernels.diffusion import make_stepper
from kernels.exchange import gather, scatter_add
from kernels.moves import neighbors, place_daughters, resolve_moves
from kernels.random import normal, uniform

log = logging.getLogger(__name__)
logging.getLogger("MESA").setLevel(logging.WARNING)  # mesa logs every step at INFO

AVOGADRO = 6.02214076e23
RULES = {MACROPHAGE: macrophage, TCELL: tcell, FLS: fls, CHONDROCYTE: chondrocyte, MSC: msc}
PHASES = ("sense", "decide", "act", "transport", "tissue", "events", "observe")  # step order
_NO_TIMER = nullcontext()
MSC_SURFACE_ROWS = 2  # fluid rows next to the lining where adhered MSCs sit and move


def metric_names() -> list[str]:
    """Metric columns in order (contract: DESIGN.md section 2)."""
    names = ["time_min"]
    for f in FIELD_NAMES:
        names += [f"{f.lower()}_fluid", f"{f.lower()}_synovium"]
    return [
        *names,
        "macrophage_m1", "macrophage_m0", "macrophage_m2",
        "tcell_naive", "tcell_th1", "tcell_th17", "tcell_treg",
        "fls_total", "fls_activated", "lining_thickness_um",
        "chondrocyte_alive", "chondrocyte_catabolic",
        "msc_alive", "msc_licensed", "cartilage_agg", "cartilage_col2",
    ]  # fmt: skip


def field_units(bio: Any) -> dict[str, str]:
    units = {f: str(bio.fields[f].units) for f in FIELD_NAMES}
    units.update({m: "1 (healthy = 1)" for m in MATRIX_FIELDS})
    return units


class JointModel(mesa.Model):
    """The joint model (a ``mesa.Model``); build with a validated config from ``abm.compose``.

    ``.fields`` maps each field name to its (*shape) array on the backend (a view, not a copy);
    ``.metrics`` is a DataFrame with one row per step (and one at t = 0).
    """

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(seed=int(cfg.seed))
        self.cfg = cfg
        self.seed = int(cfg.seed)
        self._timer: Callable[[str], AbstractContextManager] | None = None
        self.backend = get_backend(cfg.backend.name)
        xp = self.xp = self.backend.xp
        self.bio = plain(cfg.biology)  # plain dicts: cheap reads in the step loop
        self.scenario = plain(cfg.scenario)
        self.dt_min = float(cfg.sim.dt_min)
        self.time_min = 0.0
        self.dtype = np.dtype(cfg.lattice.dtype)
        self.knockouts = frozenset(cfg.therapy.knockouts)

        tissue = self.tissue = build_tissue(cfg.lattice, self.seed)
        self.shape = tissue.shape
        self.n_voxels = tissue.n_voxels
        self.lateral = self.n_voxels // self.shape[0]  # voxels per row
        D, decay = tissue.transport(self.bio, dtype=str(self.dtype))
        self.stepper = make_stepper(self.shape, tissue.dx_um, self.dt_min, D, decay, xp=xp,
                                    dtype=str(self.dtype))  # fmt: skip
        F = len(FIELD_NAMES)
        self.fidx = {name: i for i, name in enumerate(FIELD_NAMES)}
        self.u = xp.zeros((F, *self.shape), dtype=self.dtype)
        self._source = xp.zeros_like(self.u)
        self._uptake = xp.zeros_like(self.u)
        self._conv = self._secretion_conversion()

        comp = tissue.compartment.ravel()
        synovium = (comp == LINING) | (comp == SUBLINING)
        lining_start = tissue.rows["lining"][0]
        self._surface_row = lining_start - 1
        surface = np.zeros((self.shape[0], self.lateral), dtype=bool)
        surface[lining_start - MSC_SURFACE_ROWS : lining_start] = True
        surface = surface.ravel()
        self._allowed = {
            MACROPHAGE: xp.asarray(synovium), TCELL: xp.asarray(synovium),
            FLS: xp.asarray(synovium), MSC: xp.asarray(surface | (comp == LINING)),
        }  # fmt: skip
        self._vessels = xp.asarray(tissue.vessels)
        n_syn = float(synovium.sum())  # carrying capacities, cells per synovium voxel x voxels
        self._fls_capacity = max(1.0, self.bio.fls.capacity * n_syn)
        self._mac_capacity = max(1.0, self.bio.macrophage.capacity * n_syn)
        # random keys of the recruitment sites: one id space per recruited type
        self._vessel_keys = {MACROPHAGE: self._vessels, TCELL: self._vessels + self.n_voxels}
        self._cart_idx = xp.asarray(np.flatnonzero(comp == CARTILAGE))
        # metric slabs (the compartments are layers along axis 0): fluid, synovium rows
        self._slabs = (tissue.rows["fluid"], (tissue.rows["lining"][0], self.shape[0]))

        sc = cfg.scenario
        self.agg = xp.zeros(self.shape, dtype=self.dtype)
        self.col2 = xp.zeros(self.shape, dtype=self.dtype)
        self.agg.reshape(-1)[self._cart_idx] = sc.agg0
        self.col2.reshape(-1)[self._cart_idx] = sc.col20
        self._synth = xp.zeros(self.n_voxels, dtype=self.dtype)

        self.pops = {kind: Population(xp, kind) for kind in CELL_TYPES}
        self.next_id = 0
        self.injected = cfg.therapy.name == "none" or cfg.therapy.dose <= 0
        self.depleted = False
        self._seed_cells()
        self._owner = xp.asarray(self._territories())

        self._names = metric_names()
        self._last: dict[str, float] = {}
        self.datacollector = mesa.DataCollector(
            model_reporters={n: (lambda m, n=n: m._last[n]) for n in self._names}
        )
        self._observe()

    # ------------------------------------------------------------------ build helpers
    def _secretion_conversion(self) -> np.ndarray:
        """molecules/cell/s -> concentration rate in the cell's voxel (ng/mL/min; KYN µM/min)."""
        v_ml = self.tissue.voxel_ml
        conv = np.empty(len(FIELD_NAMES))
        for i, f in enumerate(FIELD_NAMES):
            p = self.bio.fields[f]
            mol_per_min = 60.0 / AVOGADRO
            if str(p.units) == "µM":
                conv[i] = mol_per_min / (v_ml * 1e-3) * 1e6
            else:
                conv[i] = mol_per_min * p.mw_kda * 1e3 * 1e9 / v_ml
        return conv

    def _new_ids(self, m: int) -> Any:
        ids = self.xp.arange(self.next_id, self.next_id + m, dtype=self.xp.int64)
        self.next_id += m
        return ids

    def _seed_cells(self) -> None:
        """Initial cells: each voxel of a region holds a cell with the scenario's density."""
        xp, sc, bio = self.xp, self.cfg.scenario, self.bio
        comp = self.tissue.compartment.ravel()
        occ = np.zeros(self.n_voxels, dtype=bool)
        vox_ids = np.arange(self.n_voxels, dtype=np.int64)

        def pick(k: int, where: np.ndarray, density: float) -> np.ndarray:
            u = to_numpy(uniform(xp, self.seed, 0, INIT + k, xp.asarray(vox_ids)))
            chosen = where & ~occ & (u < density)
            occ[chosen] = True
            return np.flatnonzero(chosen)

        vessels = np.zeros(self.n_voxels, dtype=bool)
        vessels[self.tissue.vessels] = True
        occ |= vessels  # vessels are not free tissue
        synovium = (comp == LINING) | (comp == SUBLINING)
        chondro = pick(0, comp == CARTILAGE, float(bio.chondrocyte.density))
        fls_lin = pick(1, comp == LINING, sc.fls_lining_density)
        fls_sub = pick(2, comp == SUBLINING, sc.fls_density)
        macs = pick(3, synovium, sc.mac_density)
        tcs = pick(4, comp == SUBLINING, sc.tcell_density)

        def add(kind: int, voxels: np.ndarray, **cols: Any) -> Any:
            ids = self._new_ids(voxels.size)
            self.pops[kind].append(id=ids, voxel=xp.asarray(voxels), **cols)
            return ids

        add(CHONDROCYTE, chondro, state=xp.full(chondro.size, sc.chondrocyte_c0),
            alive=xp.ones(chondro.size, dtype=bool))  # fmt: skip
        fls_vox = np.sort(np.concatenate([fls_lin, fls_sub]))
        ids = self._new_ids(fls_vox.size)
        a0 = sc.fls_a0 + 0.1 * normal(xp, self.seed, 0, INIT + 10, ids)
        self.pops[FLS].append(id=ids, voxel=xp.asarray(fls_vox), state=xp.clip(a0, 0, 1))
        ids = self._new_ids(macs.size)
        p0 = sc.mac_p0 + 0.2 * normal(xp, self.seed, 0, INIT + 11, ids)
        self.pops[MACROPHAGE].append(id=ids, voxel=xp.asarray(macs), state=xp.clip(p0, -1, 1))
        ids = self._new_ids(tcs.size)
        cum = np.cumsum(np.asarray(sc.tcell_subsets, dtype=np.float64))
        u = uniform(xp, self.seed, 0, INIT + 12, ids)
        subset = xp.sum(u[None, :] >= xp.asarray(cum[:-1], dtype=u.dtype)[:, None], axis=0)
        self.pops[TCELL].append(id=ids, voxel=xp.asarray(tcs), subset=subset,
                                state=xp.ones(tcs.size))  # fmt: skip

    def _territories(self) -> np.ndarray:
        """For each cartilage voxel, the flat voxel of the chondrocyte that maintains it
        (nearest by lattice steps, grown from each cell in turn; -1 if no chondrocyte)."""
        comp = self.tissue.compartment
        label = np.full(self.shape, -1, dtype=np.int64)
        vox = to_numpy(self.pops[CHONDROCYTE]["voxel"])
        label.reshape(-1)[vox] = vox
        cart = comp == CARTILAGE
        while True:
            todo = cart & (label < 0)
            if not todo.any() or vox.size == 0:
                break
            grown = label.copy()
            for ax in range(len(self.shape)):
                for shift in (1, -1):
                    src = np.roll(label, shift, axis=ax)
                    edge = [slice(None)] * len(self.shape)
                    edge[ax] = 0 if shift == 1 else -1
                    src[tuple(edge)] = -1  # no wrap-around
                    take = todo & (grown < 0) & (src >= 0)
                    grown[take] = src[take]
            if (grown == label).all():
                break
            label = grown
        return label.reshape(-1)[np.flatnonzero(cart.reshape(-1))]

    # ------------------------------------------------------------------ public views
    @property
    def fields(self) -> dict[str, Any]:
        """Field name -> (*shape) backend array (views of the state; do not modify)."""
        out = {name: self.u[i] for i, name in enumerate(FIELD_NAMES)}
        out.update({"AGG": self.agg, "COL2": self.col2})
        return out

    @property
    def metrics(self) -> pd.DataFrame:
        return self.datacollector.get_model_vars_dataframe()

    def run(self, days: float | None = None) -> pd.DataFrame:
        """Step for ``days`` simulated days (default ``cfg.sim.days``); returns the metrics."""
        days = float(self.cfg.sim.days if days is None else days)
        for _ in range(round(days * 1440.0 / self.dt_min)):
            self.step()
        return self.metrics

    # ------------------------------------------------------------------ the step
    def set_phase_timer(self, timer: Callable[[str], AbstractContextManager] | None) -> None:
        """Time the phases of :meth:`step`: ``timer(name)`` is entered around each phase
        (names in :data:`PHASES`); ``None`` removes it. The benchmark's hook (abm.bench)."""
        self._timer = timer

    def _phase(self, name: str) -> AbstractContextManager:
        return _NO_TIMER if self._timer is None else self._timer(name)

    def step(self) -> None:
        """One step of ``dt_min`` minutes in the order of :data:`PHASES`."""
        xp = self.xp
        ctx = Ctx(xp, self.seed, int(self.steps), self.dt_min, self.bio, self.scenario,
                  self.knockouts)  # fmt: skip
        pops = self.pops
        with self._phase("sense"):
            sense = {k: Sense(xp, gather(self.u, p["voxel"]), FIELD_NAMES, self.bio)
                     for k, p in pops.items()}  # fmt: skip
        with self._phase("decide"):  # states and deaths (divisions placed in act)
            divide: dict[int, Any] = {}
            for kind in (MACROPHAGE, TCELL, FLS, MSC):
                pop = pops[kind]
                if kind == FLS:
                    room = max(0.0, 1.0 - pop.n / self._fls_capacity)
                    death, div = fls.update(pop, sense[kind], ctx, self._near_msc(pop), room)
                else:
                    death, div = RULES[kind].update(pop, sense[kind], ctx)
                if div is not None:
                    divide[kind] = div[~death]
                keep = ~death
                old_ids = pop["id"]
                pop.keep(keep)
                sense[kind].keep(keep)
                ctx.remap(old_ids, pop["id"], keep)  # the cells' pending draws follow them
            for pop in pops.values():
                pop["age"] += np.float32(self.dt_min)  # minutes since the cell appeared
            ch = pops[CHONDROCYTE]
            chondrocyte.update(ch, sense[CHONDROCYTE], ctx, self.agg.reshape(-1)[ch["voxel"]])
        with self._phase("act"):  # move, secrete/take up, place newborn cells
            self._move(ctx)
            self._secrete(sense, ctx)
            self._births(ctx, divide)
        with self._phase("transport"):
            self.u = self.stepper(self.u, self._source, self._uptake)
        with self._phase("tissue"):
            self._matrix(ctx, sense[CHONDROCYTE])
        self.time_min = self.steps * self.dt_min
        with self._phase("events"):
            self._events(ctx)
        with self._phase("observe"):  # and stop on a bad field (checks ride on the metrics' copy)
            self._observe()

    # ------------------------------------------------------------------ step parts
    def _secrete(self, sense: dict[int, Sense], ctx: Ctx) -> None:
        """Fill the source (conc/min) and uptake (1/min) arrays from every cell's rates."""
        xp = self.xp
        self._source.fill(0)
        self._uptake.fill(0)
        F = len(FIELD_NAMES)
        voxels = xp.concatenate([p["voxel"] for p in self.pops.values()])
        src = xp.zeros((F, voxels.shape[0]), dtype=self.dtype)
        upt = xp.zeros((F, voxels.shape[0]), dtype=self.dtype)
        start = 0
        for kind, pop in self.pops.items():
            stop = start + pop.n
            if pop.n:
                for name, rate in RULES[kind].secretion(pop, sense[kind], ctx).items():
                    src[self.fidx[name], start:stop] = rate * self._conv[self.fidx[name]]
                for name, k in self.bio[CELL_TYPES[kind]].get("uptake", {}).items():
                    upt[self.fidx[name], start:stop] = k
            start = stop
        scatter_add(xp, self._source, voxels, src)
        scatter_add(xp, self._uptake, voxels, upt)

    def _occupancy(self) -> Any:
        occ = self.xp.zeros(self.n_voxels, dtype=bool)
        for pop in self.pops.values():
            occ[pop["voxel"]] = True  # one cell per voxel: plain assignment is exact
        occ[self._vessels] = True
        return occ

    def _near_msc(self, pop: Population) -> Any:
        """1.0 for cells within ``fls.msc_contact_um`` (box) of an MSC, else 0.0."""
        xp = self.xp
        if self.pops[MSC].n == 0 or pop.n == 0:
            return xp.zeros(pop.n, dtype=self.dtype)
        grid = xp.zeros(self.n_voxels, dtype=bool)
        grid[self.pops[MSC]["voxel"]] = True
        grid = grid.reshape(self.shape)
        r = round(float(self.bio.fls.msc_contact_um) / self.tissue.dx_um)
        for ax in range(len(self.shape)):  # separable box dilation
            out = grid.copy()
            for s in range(1, r + 1):
                lo = [slice(None)] * len(self.shape)
                hi = [slice(None)] * len(self.shape)
                lo[ax], hi[ax] = slice(s, None), slice(None, -s)
                out[tuple(lo)] |= grid[tuple(hi)]
                out[tuple(hi)] |= grid[tuple(lo)]
            grid = out
        return grid.reshape(-1)[pop["voxel"]].astype(self.dtype)

    def _move(self, ctx: Ctx) -> None:
        """Random walk + CCL2 chemotaxis for macrophages, T cells and adhered MSCs; adhesion
        of floating MSCs to the lining surface; exclusion resolved at random (kernels.moves)."""
        xp, pops = self.xp, self.pops
        occ = self._occupancy()
        ccl2 = self.u[self.fidx["CCL2"]].reshape(-1)
        K = float(self.bio.fields.CCL2.K)
        targets = []
        for kind, pop in pops.items():
            tgt = xp.full(pop.n, -1, dtype=xp.int64)
            if pop.n and kind in (MACROPHAGE, TCELL, MSC):
                p = self.bio[CELL_TYPES[kind]]
                mobile = pop["adhered"] if kind == MSC else xp.ones(pop.n, dtype=bool)
                go = ctx.uniform(MOVE[kind][0], pop["id"]) < min(
                    1.0, p.speed_um_min * self.dt_min / self.tissue.dx_um
                )
                nb = neighbors(xp, self.shape, pop["voxel"])
                valid = nb >= 0
                nbc = xp.where(valid, nb, 0)
                ok = valid & self._allowed[kind][nbc] & ~occ[nbc]
                c0 = ccl2[pop["voxel"]]
                bias = p.chemotaxis * (ccl2[nbc] - c0[None, :]) / (K + c0[None, :])
                w = xp.exp(xp.clip(bias, -20.0, 20.0)) * ok
                cw = xp.cumsum(w, axis=0)
                pick = ctx.uniform(MOVE[kind][1], pop["id"]) * cw[-1]
                k = xp.minimum(xp.sum(cw <= pick[None, :], axis=0), nb.shape[0] - 1)
                chosen = xp.take_along_axis(nbc, k[None, :], axis=0)[0]
                tgt = xp.where(go & mobile & (cw[-1] > 0), chosen, -1)
                if kind == MSC:  # floating MSCs adhere: drop onto the lining surface
                    lat = pop["voxel"] % self.lateral
                    surface = self._surface_row * self.lateral + lat
                    adh = ~pop["adhered"] & (
                        ctx.uniform(MSC_ADHERE, pop["id"])
                        < event_prob(xp, self.bio.msc.adhesion_rate, self.dt_min)
                    )
                    tgt = xp.where(adh, surface, tgt)
            targets.append(tgt)
        cur = xp.concatenate([p["voxel"] for p in pops.values()])
        ids = xp.concatenate([p["id"] for p in pops.values()])
        tgt = xp.concatenate(targets)
        tgt = xp.where(tgt == cur, -1, tgt)
        new = resolve_moves(xp, self.n_voxels, cur, tgt, ctx.uniform(MOVE_PRIO, ids), ids)
        start = 0
        for pop in pops.values():
            stop = start + pop.n
            if pop.kind == MSC:
                at_surface = (new[start:stop] // self.lateral) == self._surface_row
                pop["adhered"] = pop["adhered"] | at_surface
            pop["voxel"] = new[start:stop]
            start = stop

    def _place(
        self, occ: Any, kind: int, parents: Any, key: Any, choice: Any, prio: Any
    ) -> tuple[Any, Any]:
        """Daughter voxels for ``parents`` (flat voxels; ``key`` ids break ties); marks them
        occupied. Returns (placed mask, daughter voxels)."""
        xp = self.xp
        d = place_daughters(xp, self.shape, occ, self._allowed[kind], parents, choice, prio, key)
        ok = d >= 0
        occ[d[ok]] = True
        return ok, d

    def _births(self, ctx: Ctx, divide: dict[int, Any]) -> None:
        """Divisions into a free neighbour (by parent id order) and recruitment at vessels."""
        xp, pops = self.xp, self.pops
        occ = self._occupancy()
        for kind, mask in divide.items():
            pop = pops[kind]
            if not bool(xp.any(mask)):
                continue
            order = xp.argsort(pop["id"][mask])
            parent_idx = xp.nonzero(mask)[0][order]
            choice, prio = (ctx.uniform(p, pop["id"])[parent_idx] for p in DIVIDE[kind])
            ok, d = self._place(occ, kind, pop["voxel"][parent_idx], pop["id"][parent_idx],
                                choice, prio)  # fmt: skip
            src = parent_idx[ok]
            n_new = int(xp.sum(ok))
            extra = {c: pop[c][src] for c in pop.cols if c not in ("id", "voxel", "age")}
            pop.append(id=self._new_ids(n_new), voxel=d[ok], **extra)
        if self._vessels.shape[0] == 0:
            return
        ccl2 = self.u[self.fidx["CCL2"]].reshape(-1)[self._vessels]
        h = hill(xp, ccl2, float(self.bio.fields.CCL2.K), float(self.bio.hill_n))
        sc = self.scenario
        mac_room = max(0.0, 1.0 - pops[MACROPHAGE].n / self._mac_capacity)
        for kind, rate, purpose in (
            (MACROPHAGE, 0.0 if self.depleted else sc.mac_recruit_rate * mac_room, RECRUIT_MAC),
            (TCELL, sc.tcell_recruit_rate, RECRUIT_T),
        ):
            keys = self._vessel_keys[kind]
            fire = ctx.uniform(purpose, keys) < event_prob(xp, rate * h, ctx.dt)
            if not bool(xp.any(fire)):
                continue
            choice, prio = (ctx.uniform(p, keys)[fire] for p in (RECRUIT_DIR, RECRUIT_PRIO))
            ok, d = self._place(occ, kind, self._vessels[fire], keys[fire], choice, prio)
            n_new = int(xp.sum(ok))
            cols: dict[str, Any] = {"id": self._new_ids(n_new), "voxel": d[ok]}
            if kind == TCELL:
                cols["state"] = xp.ones(n_new)
            pops[kind].append(**cols)

    def _matrix(self, ctx: Ctx, sense_ch: Sense) -> None:
        """Aggrecan: synthesis in each living chondrocyte's territory, PROT degradation;
        collagen II degraded only where AGG < threshold (semi-implicit, stays in [0, 1])."""
        xp, m, dt = self.xp, self.bio.matrix, self.dt_min
        ch = self.pops[CHONDROCYTE]
        self._synth.fill(0)
        if ch.n:
            self._synth[ch["voxel"]] = chondrocyte.synthesis(ch, sense_ch, ctx)
        owner = self._owner
        f = xp.where(owner >= 0, self._synth[xp.maximum(owner, 0)], 0.0)
        prot = self.u[self.fidx["PROT"]].reshape(-1)[self._cart_idx]
        agg = self.agg.reshape(-1)
        col = self.col2.reshape(-1)
        a = agg[self._cart_idx]
        s = m.agg_synthesis * f
        a = (a + dt * s) / (1.0 + dt * (s + m.agg_degradation * prot))
        c = col[self._cart_idx]
        sc = m.col2_synthesis * f
        c = (c + dt * sc) / (1.0 + dt * (sc + m.col2_degradation * prot * (a < m.agg_threshold)))
        agg[self._cart_idx] = a.astype(self.dtype)
        col[self._cart_idx] = c.astype(self.dtype)

    def _events(self, ctx: Ctx) -> None:
        """Scheduled interventions: MSC injection, macrophage depletion."""
        cfg, xp = self.cfg, self.xp
        if cfg.perturb.deplete_macrophages and not self.depleted:
            if self.time_min >= cfg.perturb.deplete_day * 1440.0:
                pop = self.pops[MACROPHAGE]
                pop.keep(xp.zeros(pop.n, dtype=bool))
                self.depleted = True
        if not self.injected and self.time_min >= cfg.therapy.day * 1440.0:
            self.inject_msc(ctx)

    def inject_msc(self, ctx: Ctx) -> int:
        """Bolus of MSCs into free fluid voxels: n = dose · V_fluid_sim / V_sf (>= min_cells)."""
        xp, th = self.xp, self.cfg.therapy
        self.injected = True
        fluid = self.tissue.compartment.ravel() == FLUID
        v_sim = fluid.sum() * self.tissue.voxel_ml
        n = max(int(th.min_cells), round(th.dose * v_sim / th.sf_volume_ml))
        free = xp.nonzero(xp.asarray(fluid) & ~self._occupancy())[0]
        n = min(n, int(free.shape[0]))
        if n == 0:
            return 0
        key = ctx.uniform(MSC_INJECT, free)
        vox = xp.sort(free[xp.argsort(key)[:n]])
        ids = self._new_ids(n)
        persistent = ctx.uniform(MSC_PERSIST, ids) < self.bio.msc.persistent_fraction
        state = xp.full(n, 1.0 if th.prelicensed else 0.0)
        self.pops[MSC].append(id=ids, voxel=vox, state=state, persistent=persistent)
        log.info(
            "day %.2f: injected %d MSCs (dose %.3g per knee)", self.time_min / 1440, n, th.dose
        )
        return n

    def _check(self, lo: float, hi: float) -> None:
        """Raise :class:`SimulationError` unless every field value lies in [0, inf)."""
        if lo >= 0 and math.isfinite(hi):
            return
        host = to_numpy(self.u)
        bad = ~np.isfinite(host) | (host < 0)
        f = int(np.argmax(bad.reshape(len(FIELD_NAMES), -1).any(axis=1)))
        value = host[f][bad[f]][0]
        codes, counts = np.unique(self.tissue.compartment[bad[f]], return_counts=True)
        where = ", ".join(f"{COMPARTMENTS[int(c)]} {n}" for c, n in zip(codes, counts, strict=True))
        raise SimulationError(
            f"field {FIELD_NAMES[f]} became {float(value)!r} on step {self.steps} "
            f"(t = {self.time_min:g} min) in {int(bad[f].sum())} voxels ({where})"
        )

    # ------------------------------------------------------------------ observe
    def _observe(self) -> None:
        metrics, lo, hi = self._compute_metrics()
        self._check(lo, hi)
        self._last = metrics
        self.datacollector.collect(self)

    def _compute_metrics(self) -> tuple[dict[str, float], float, float]:
        """The metric row, and the smallest and largest field value (one device->host copy)."""
        xp, pops = self.xp, self.pops
        F = len(FIELD_NAMES)
        means = xp.stack(
            [xp.mean(self.u[:, a:b].reshape(F, -1), axis=1) for a, b in self._slabs], axis=1
        )  # (F, 2): fluid, synovium
        mac, tc, fl, ch, ms = (pops[k] for k in (MACROPHAGE, TCELL, FLS, CHONDROCYTE, MSC))
        p = mac["state"]
        counts = [
            xp.sum(p > macrophage.M1_THRESHOLD), xp.sum(xp.abs(p) <= macrophage.M1_THRESHOLD),
            xp.sum(p < -macrophage.M1_THRESHOLD),
            *(xp.sum(tc["subset"] == s) for s in (NAIVE, TH1, TH17, TREG)),
            xp.sum(fl["state"] > fls.ACTIVATED),
            xp.sum(ch["alive"]), xp.sum(ch["alive"] & (ch["state"] > chondrocyte.CATABOLIC)),
            xp.sum(ms["state"] > msc.LICENSED),
            xp.mean(self.agg.reshape(-1)[self._cart_idx]),
            xp.mean(self.col2.reshape(-1)[self._cart_idx]),
            self._lining_thickness(), xp.min(self.u), xp.max(self.u),
        ]  # fmt: skip
        vec = to_numpy(xp.concatenate([means.reshape(-1), xp.stack(counts).astype(means.dtype)]))
        vals = [float(v) for v in vec]
        out = {"time_min": self.time_min}
        for i, f in enumerate(FIELD_NAMES):
            out[f"{f.lower()}_fluid"] = vals[2 * i]
            out[f"{f.lower()}_synovium"] = vals[2 * i + 1]
        c = vals[2 * F :]
        out.update(
            macrophage_m1=c[0], macrophage_m0=c[1], macrophage_m2=c[2], tcell_naive=c[3],
            tcell_th1=c[4], tcell_th17=c[5], tcell_treg=c[6], fls_total=float(fl.n),
            fls_activated=c[7], lining_thickness_um=c[13], chondrocyte_alive=c[8],
            chondrocyte_catabolic=c[9], msc_alive=float(ms.n), msc_licensed=c[10],
            cartilage_agg=c[11], cartilage_col2=c[12],
        )  # fmt: skip
        return {n: out[n] for n in self._names}, c[14], c[15]

    def _lining_thickness(self) -> Any:
        """Mean depth (µm) of the unbroken layer of FLS + macrophages below the fluid."""
        xp = self.xp
        occ = xp.zeros(self.n_voxels, dtype=bool)
        occ[self.pops[FLS]["voxel"]] = True
        occ[self.pops[MACROPHAGE]["voxel"]] = True
        start = self.tissue.rows["lining"][0]
        region = occ.reshape(self.shape[0], -1)[start:]
        depth = xp.where(xp.all(region, axis=0), region.shape[0], xp.argmax(~region, axis=0))
        return xp.mean(depth.astype(self.dtype)) * self.tissue.dx_um

    # ------------------------------------------------------------------ observers' views
    def static_info(self) -> dict[str, Any]:
        """What never changes in a run: geometry, codes, units, the resolved config."""
        return {
            "shape": self.shape, "ndim": len(self.shape), "dx_um": self.tissue.dx_um,
            "dt_min": self.dt_min, "seed": self.seed, "backend": self.backend.name,
            "config_yaml": OmegaConf.to_yaml(self.cfg, resolve=True),
            "abm_version": __version__, "compartment": self.tissue.compartment,
            "compartment_names": dict(COMPARTMENTS), "cell_types": dict(CELL_TYPES),
            "phenotypes": dict(PHENOTYPES), "field_units": field_units(self.bio),
        }  # fmt: skip

    def _phenotypes(self, kind: int, pop: Population) -> Any:
        xp = self.xp
        if kind == TCELL:
            return tcell.phenotype(xp, pop["subset"])
        if kind == CHONDROCYTE:
            return chondrocyte.phenotype(xp, pop["state"], pop["alive"])
        return RULES[kind].phenotype(xp, pop["state"])

    def snapshot(self) -> dict[str, Any]:
        """Host copies of the fields and the cell table (only call when an observer fires)."""
        xp = self.xp
        pops = [(k, p) for k, p in self.pops.items()]
        voxel = xp.concatenate([p["voxel"] for _, p in pops])
        pos = xp.stack(xp.unravel_index(voxel, self.shape), axis=1).astype(xp.int32)
        cells = {
            "id": xp.concatenate([p["id"] for _, p in pops]),
            "type": xp.concatenate([xp.full(p.n, k, dtype=xp.int8) for k, p in pops]),
            "pos": pos,
            "phenotype": xp.concatenate([self._phenotypes(k, p) for k, p in pops]),
            "state": xp.concatenate([p["state"].astype(xp.float32) for _, p in pops]),
        }
        fields = {
            name: np.asarray(to_numpy(a), dtype=np.float32) for name, a in self.fields.items()
        }
        return {"time_min": self.time_min, "fields": fields,
                "cells": {k: to_numpy(v) for k, v in cells.items()}}  # fmt: skip

    def get_state(self) -> dict[str, np.ndarray]:
        """Full state for a checkpoint (host arrays; fields in the compute dtype)."""
        state: dict[str, np.ndarray] = {
            "u": np.array(to_numpy(self.u)), "agg": np.array(to_numpy(self.agg)),
            "col2": np.array(to_numpy(self.col2)), "steps": np.asarray(self.steps),
            "time_min": np.asarray(self.time_min), "seed": np.asarray(self.seed),
            "next_id": np.asarray(self.next_id), "injected": np.asarray(self.injected),
            "depleted": np.asarray(self.depleted),
        }  # fmt: skip
        for kind, pop in self.pops.items():
            for col, arr in pop.to_host().items():
                state[f"cells/{CELL_TYPES[kind]}/{col}"] = arr
        for name, values in self.datacollector.model_vars.items():
            state[f"metrics/{name}"] = np.asarray(values, dtype=np.float64)
        return state

    @classmethod
    def from_state(cls, cfg: DictConfig, state: dict[str, np.ndarray]) -> JointModel:
        """A model identical to the one that wrote ``state`` (see :meth:`get_state`)."""
        model = cls(cfg)
        xp = model.xp
        model.u = xp.asarray(state["u"])
        model.agg = xp.asarray(state["agg"])
        model.col2 = xp.asarray(state["col2"])
        model.steps = int(state["steps"])
        model.time_min = float(state["time_min"])
        model.next_id = int(state["next_id"])
        model.injected = bool(state["injected"])
        model.depleted = bool(state["depleted"])
        for kind, pop in model.pops.items():
            prefix = f"cells/{CELL_TYPES[kind]}/"
            pop.load({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        for name in model._names:
            model.datacollector.model_vars[name] = [float(v) for v in state[f"metrics/{name}"]]
        model._last = {n: model.datacollector.model_vars[n][-1] for n in model._names}
        return model
