"""JointModel: the joint patch, its cell types and MSC therapy, stepped on the lattice.

Data flow: validated config -> build (tissue and transport, frozen biology, one population per
registered cell type, initial cells, matrix, lattice solver) -> ``step()`` in the fixed order
of :data:`PHASES` (sense, decide, act, transport, tissue, events, observe) -> one metric row
per step through mesa's DataCollector; observers (:mod:`abm.loop`) take host copies through
:meth:`snapshot` / :meth:`get_state` only when they fire.

The model knows no cell type by name: it calls the same methods of every registered type
(:mod:`abm.cells.base`). Every random draw is keyed by (seed, step, purpose, cell id or voxel
index), so results do not depend on the order of cells in memory; no Python loop runs over cells.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from typing import Any

import mesa
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from abm.backend import get_backend, to_numpy
from abm.cells import phenotype_codes, registry, type_codes
from abm.cells.base import Fate, Sense, StepContext
from abm.cells.population import Populations
from abm.config import ScenarioConf
from abm.drive import Drive
from abm.errors import SimulationError
from abm.events import apply_events, inject_msc, nothing_to_inject
from abm.fluid import SynovialFluid
from abm.loop import run
from abm.matrix import Matrix
from abm.metrics import catalogue, compute_row, units
from abm.params import FIELD_NAMES, default_biology, load_biology
from abm.seeding import seed_cells
from abm.space import World
from abm.state import Flags, ModelState
from abm.tissue import COMPARTMENTS, VesselSink, build_tissue
from abm.units import AVOGADRO, MIN_PER_DAY, S_PER_MIN
from abm.version import __version__
from kernels.diffusion import make_stepper
from kernels.exchange import gather

log = logging.getLogger(__name__)
logging.getLogger("MESA").setLevel(logging.WARNING)  # mesa logs every step at INFO

PHASES = ("sense", "decide", "act", "transport", "tissue", "events", "observe")  # step order
_NO_TIMER = nullcontext()


def metric_names() -> list[str]:
    """Metric columns in order for the registered cell types (the contract of ``metrics.csv``;
    see :mod:`abm.metrics`)."""
    bio = default_biology()
    return [m.name for m in catalogue([t(getattr(bio, t.name)) for t in registry()], bio)]


class JointModel(mesa.Model):
    """The joint model (a ``mesa.Model``); build with a validated config from ``abm.compose``.

    ``.fields`` maps each field name to its (*shape) array on the backend (a view, not a copy);
    ``.metrics`` is a DataFrame with one row per step (and one at t = 0); ``.cells`` holds the
    populations (``model.cells["msc"].n``).
    """

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(seed=int(cfg.seed))
        self.cfg = cfg
        self.seed = int(cfg.seed)
        self._timer: Callable[[str], AbstractContextManager] | None = None
        self.backend = get_backend(cfg.backend.name)
        xp = self.xp = self.backend.xp
        self.bio = load_biology(cfg.biology)  # frozen dataclasses: cheap reads in the loop
        self.scenario = ScenarioConf(**OmegaConf.to_container(cfg.scenario, resolve=True))
        self.dt_min = float(cfg.sim.dt_min)
        self.time_min = 0.0
        self.step0 = 0  # steps before time 0: a run branched from a spin-up (abm/spinup.py)
        self.dtype = np.dtype(cfg.lattice.dtype)
        self.knockouts = frozenset(cfg.therapy.knockouts)
        self.flags = Flags(injected=nothing_to_inject(cfg.therapy))

        tissue = self.tissue = build_tissue(cfg.lattice, self.seed)
        self.shape = tissue.shape
        self.n_voxels = tissue.n_voxels
        D, decay = tissue.transport(self.bio, dtype=str(self.dtype))
        # multi-rate: k transport steps of dt/k per cell step (the cells' sources held)
        self.field_substeps = int(cfg.sim.get("field_substeps", 1))
        self.stepper = make_stepper(self.shape, tissue.dx_um, self.dt_min / self.field_substeps,
                                    D, decay, xp=xp, dtype=str(self.dtype))  # fmt: skip
        self.fidx = {name: i for i, name in enumerate(FIELD_NAMES)}
        self.u = xp.zeros((len(FIELD_NAMES), *self.shape), dtype=self.dtype)
        self._conv = self._secretion_conversion()
        # metric slabs (the compartments are layers along axis 0): fluid, synovium rows
        self.slabs = (tissue.rows["fluid"], (tissue.rows["lining"][0], self.shape[0]))

        self.types = [t(getattr(self.bio, t.name)) for t in registry()]
        self.types_by_name = {t.name: t for t in self.types}
        self.cells = Populations(xp, self.types)
        self.matrix = Matrix(xp, tissue, self.dtype, cfg.scenario.agg0, cfg.scenario.col20)
        self.world = World(self)
        self.fluid = SynovialFluid(self)  # the well-mixed synovial fluid (abm/fluid.py)
        self.vessel_sink = VesselSink(tissue, self.bio, self.dt_min / self.field_substeps, xp,
                                      str(self.dtype))  # fmt: skip
        self.drive = Drive(self)  # the disease drive the rules read as ctx.world.drive
        self.next_id = 0
        seed_cells(self)
        self.matrix.bind(self)

        self.metric_catalogue = catalogue(self.types, self.bio)
        self._names = [m.name for m in self.metric_catalogue]
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
        mol_per_min = S_PER_MIN / AVOGADRO
        for i, f in enumerate(FIELD_NAMES):
            p = self.bio.fields[f]
            if p.units == "µM":
                conv[i] = mol_per_min / (v_ml * 1e-3) * 1e6
            else:
                conv[i] = mol_per_min * p.mw_kda * 1e3 * 1e9 / v_ml
        return conv

    def new_ids(self, m: int) -> Any:
        """``m`` fresh cell ids (never reused in a run)."""
        ids = self.xp.arange(self.next_id, self.next_id + m, dtype=self.xp.int64)
        self.next_id += m
        return ids

    # ------------------------------------------------------------------ public views
    @property
    def fields(self) -> dict[str, Any]:
        """Field name -> (*shape) backend array (views of the state; do not modify)."""
        out = {name: self.u[i] for i, name in enumerate(FIELD_NAMES)}
        out.update({"AGG": self.matrix.agg, "COL2": self.matrix.col2})
        return out

    @property
    def metrics(self) -> pd.DataFrame:
        return self.datacollector.get_model_vars_dataframe()

    def run(self, days: float | None = None) -> pd.DataFrame:
        """Step for ``days`` simulated days (default ``cfg.sim.days``) through the runner's
        loop (no observers); returns the metrics."""
        days = float(self.cfg.sim.days if days is None else days)
        run(self, [], until_min=self.time_min + days * MIN_PER_DAY)
        return self.metrics

    def inject_msc(self) -> int:
        """Inject the therapy's MSC bolus now (normally an event on ``therapy.day``)."""
        return inject_msc(self, self._context())

    # ------------------------------------------------------------------ the step
    def set_phase_timer(self, timer: Callable[[str], AbstractContextManager] | None) -> None:
        """Time the phases of :meth:`step`: ``timer(name)`` is entered around each phase
        (names in :data:`PHASES`); ``None`` removes it. The benchmarks' hook (abm.bench)."""
        self._timer = timer

    def _phase(self, name: str) -> AbstractContextManager:
        return _NO_TIMER if self._timer is None else self._timer(name)

    def _context(self) -> StepContext:
        return StepContext(self.xp, self.seed, int(self.steps), self.dt_min, self.bio,
                           self.scenario, self.knockouts, world=self.world)  # fmt: skip

    def step(self) -> None:
        """One step of ``dt_min`` minutes in the order of :data:`PHASES`."""
        xp, ctx = self.xp, self._context()
        with self._phase("sense"):  # each type's own Hill constants where it declares them
            for t, pop in zip(self.types, self.cells, strict=True):
                ctx.sense[pop.name] = Sense(xp, gather(self.u, pop["voxel"]), FIELD_NAMES,
                                            self.bio, K=getattr(t.p, "K", None))  # fmt: skip
        with self._phase("decide"):  # states, deaths; divisions are placed in "act"
            divide: dict[str, Any] = {}
            for t, pop in zip(self.types, self.cells, strict=True):
                fate: Fate = t.update(ctx, pop)
                if fate.death is None:
                    if fate.divide is not None:
                        divide[t.name] = fate.divide
                    continue
                keep = ~fate.death
                if fate.divide is not None:
                    divide[t.name] = fate.divide[keep]
                old_ids = pop["id"]
                pop.keep(keep)
                ctx.sense[pop.name].keep(keep)
                ctx.remap(old_ids, pop["id"], keep)  # the cells' pending draws follow them
            for pop in self.cells:
                pop["age"] += np.float32(self.dt_min)  # minutes since the cell appeared
        with self._phase("act"):  # move, secrete/take up, place newborn cells
            self.world.move(ctx)
            at, source, uptake = self._secrete(ctx)
            self.world.births(ctx, divide)
        with self._phase("transport"):  # the reaction touches only the voxels holding cells
            dt_field = self.dt_min / self.field_substeps
            for _ in range(self.field_substeps):  # solver, vessel uptake, well-mixed fluid
                before = self.fluid.level(self.u)
                u = self.vessel_sink(self.stepper(self.u, source, uptake, at=at))
                self.u = self.fluid.mix(u, dt_field, before)
        with self._phase("tissue"):
            self.matrix.update(ctx, self)
            self.drive.update(ctx, self)
        self.time_min = (self.steps - self.step0) * self.dt_min
        with self._phase("events"):
            apply_events(self, ctx)
        with self._phase("observe"):  # and stop on a bad field (checks ride on the metrics' copy)
            self._observe()

    def _secrete(self, ctx: StepContext) -> tuple[Any, Any, Any]:
        """Every cell's source (conc/min) and uptake (1/min) at its voxel: (voxels (N,) sorted
        flat indices, one cell per voxel; source (F, N); uptake (F, N))."""
        xp = self.xp
        F = len(FIELD_NAMES)
        voxels = self.cells.concat("voxel")
        src = xp.zeros((F, voxels.shape[0]), dtype=self.dtype)
        upt = xp.zeros((F, voxels.shape[0]), dtype=self.dtype)
        start = 0
        for t, pop in zip(self.types, self.cells, strict=True):
            stop = start + pop.n
            if pop.n:
                for name, rate in t.secretion(ctx, pop).items():
                    src[self.fidx[name], start:stop] = rate * self._conv[self.fidx[name]]
                for name, k in t.uptake(ctx, pop).items():
                    upt[self.fidx[name], start:stop] = k
            start = stop
        order = xp.argsort(voxels)  # sorted voxels: faster gathers in the reaction step
        return voxels[order], src[:, order], upt[:, order]

    # ------------------------------------------------------------------ observe
    def _observe(self) -> None:
        row, lo, hi = compute_row(self, self.metric_catalogue)
        self._check(lo, hi)
        self._last = row
        self.datacollector.collect(self)

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

    # ------------------------------------------------------------------ observers' views
    def static_info(self) -> dict[str, Any]:
        """What never changes in a run: geometry, codes, units, the resolved config."""
        field_units = {f: self.bio.fields[f].units for f in FIELD_NAMES}
        field_units.update({m: "1 (healthy = 1)" for m in ("AGG", "COL2")})
        return {
            "shape": self.shape, "ndim": len(self.shape), "dx_um": self.tissue.dx_um,
            "dt_min": self.dt_min, "seed": self.seed, "backend": self.backend.name,
            "config_yaml": OmegaConf.to_yaml(self.cfg, resolve=True),
            "abm_version": __version__, "compartment": self.tissue.compartment,
            "compartment_names": dict(COMPARTMENTS), "cell_types": type_codes(),
            "phenotypes": phenotype_codes(), "field_units": field_units,
            "metric_units": units(self.metric_catalogue),
        }  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """Host copies of the fields and the cell table (only call when an observer fires)."""
        xp, cells = self.xp, self.cells
        voxel = cells.concat("voxel")
        pos = xp.stack(xp.unravel_index(voxel, self.shape), axis=1).astype(xp.int32)
        table = {
            "id": cells.concat("id"),
            "type": xp.concatenate([xp.full(p.n, t.code, dtype=xp.int8)
                                    for t, p in zip(self.types, cells, strict=True)]),
            "pos": pos,
            "phenotype": xp.concatenate([(t.phenotype(xp, p) + t.phenotype_offset).astype(xp.int8)
                                         for t, p in zip(self.types, cells, strict=True)]),
            "state": xp.concatenate([p["state"].astype(xp.float32) for p in cells]),
        }  # fmt: skip
        fields = {
            name: np.asarray(to_numpy(a), dtype=np.float32) for name, a in self.fields.items()
        }
        return {"time_min": self.time_min, "fields": fields,
                "cells": {k: to_numpy(v) for k, v in table.items()}}  # fmt: skip

    def model_state(self) -> ModelState:
        """The full state as host arrays (fields in the compute dtype)."""
        return ModelState(
            u=np.array(to_numpy(self.u)), agg=np.array(to_numpy(self.matrix.agg)),
            col2=np.array(to_numpy(self.matrix.col2)), steps=int(self.steps),
            time_min=float(self.time_min), seed=self.seed, next_id=int(self.next_id),
            step0=int(self.step0),
            flags=Flags(**asdict(self.flags)),
            cells={p.name: p.to_host() for p in self.cells},
            metrics={n: list(v) for n, v in self.datacollector.model_vars.items()},
        )  # fmt: skip

    def get_state(self) -> dict[str, np.ndarray]:
        """Full state for a checkpoint: :meth:`model_state` as flat arrays."""
        return self.model_state().to_arrays()

    @classmethod
    def from_state(cls, cfg: DictConfig, state: dict[str, np.ndarray]) -> JointModel:
        """A model identical to the one that wrote ``state`` (see :meth:`get_state`)."""
        s = ModelState.from_arrays(state)
        model = cls(cfg)
        xp = model.xp
        model.u = xp.asarray(s.u)
        model.matrix.agg = xp.asarray(s.agg)
        model.matrix.col2 = xp.asarray(s.col2)
        model.steps = s.steps
        model.time_min = s.time_min
        model.step0 = s.step0
        model.next_id = s.next_id
        model.flags = s.flags
        for pop in model.cells:
            pop.load(s.cells.get(pop.name, {}))
        for name in model._names:
            model.datacollector.model_vars[name] = list(s.metrics[name])
        model._last = {n: model.datacollector.model_vars[n][-1] for n in model._names}
        return model
