"""The culture dish of the in-silico assays: a closed well of medium with a monolayer of target
cells on its floor and MSCs on the floor too ("contact") or on a transwell insert above it.

Data flow of one step of ``dt_min`` (the joint model's order, :meth:`abm.model.JointModel.step`):

    medium column (F, nz) -> each culture senses the voxel at its height, plus the assay's held
    stimulus (:meth:`Culture.sense`) -> its rule's ``update`` through a
    :class:`~abm.cells.harness.RuleHarness` (the registered type, the run's parameters, its
    clamped ``Sense``, the model's counter-based draws): deaths leave -> secretion
    (molecules/cell/s) and uptake (1/min per cell) of every culture, converted into a source
    (field units/min) and an uptake (1/min) of the voxel at its height (:meth:`Culture.release`)
    -> daughters of the step's divisions join (copies of their parent, new ids) -> one implicit
    step of the column (:class:`Column`: :func:`kernels.diffusion.make_stepper`, float64).

Geometry (1-D): the medium is a column of height ``medium_ml / area_cm2`` (0.5 mL in a 1.9 cm²
well: 2.63 mm) cut into ``nz`` voxels of about ``dx_um``; a voxel is a layer of the whole well
(volume ``area_cm2 × dx``). Fields diffuse with their fluid diffusivity
``biology.fields.<f>.D_fluid`` (what :mod:`abm.tissue` gives the synovial fluid) and decay with
``biology.fields.<f>.decay``; no flux through the floor or the surface (a closed well: no
clearance, no vessels). Contact: the MSCs share the target cells' floor voxel and the
harness's contact flag ``near`` is 1; transwell: the MSCs sit in the voxel at the insert's
height (``insert_um`` above the floor; the membrane itself is taken to offer no resistance,
assumed) and ``near`` is 0.

Mean field: a culture is a uniform monolayer, so every cell of it sees the same medium (the
voxel at its height), which is exact for a uniform layer in a 1-D column. Its ``agents``
agents are a representative sample: each stands for ``cells / agents`` cells, and the
culture's secretion and uptake are the agents' sums times that number. Secretion is converted
exactly as the joint model converts it (:meth:`abm.model.JointModel._secretion_conversion`,
here for the dish voxel's volume); an uptake rate k (1/min) of a cell of the model clears k ×
(the model voxel's volume, ``lattice.dx_um``³) per minute, so the dish voxel loses
Σ k × cells × v_model / v_voxel per minute.

Units: concentrations in the fields' units (ng/mL; KYN µM), heights and dx in µm, time in min.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
from omegaconf import OmegaConf, open_dict, read_write

from abm.cells.harness import RuleHarness
from abm.cells.population import NAIVE, TH1, TH17, TREG
from abm.params import FIELD_NAMES, load_biology
from abm.units import ML_PER_UM3
from kernels.diffusion import make_stepper
from kernels.random import normal, uniform

F = len(FIELD_NAMES)
FIDX = {f: i for i, f in enumerate(FIELD_NAMES)}
SUBSET_CODES = {"naive": NAIVE, "th1": TH1, "th17": TH17, "treg": TREG}
CM_PER_UM = 1e-4


@dataclass(frozen=True)
class Well:
    """A culture well: floor area (cm²), medium volume (mL), voxel size of the column (µm)."""

    area_cm2: float
    medium_ml: float
    dx_um: float

    @property
    def height_um(self) -> float:
        """Height of the medium (µm)."""
        return self.medium_ml / self.area_cm2 / CM_PER_UM

    @property
    def n_voxels(self) -> int:
        """Voxels of the column (at least 2)."""
        return max(2, round(self.height_um / self.dx_um))

    @property
    def voxel_um(self) -> float:
        """Thickness of one voxel (µm): the height split evenly, close to ``dx_um``."""
        return self.height_um / self.n_voxels

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel (a layer of the whole well), mL."""
        return self.area_cm2 * self.voxel_um * CM_PER_UM

    def index(self, height_um: float) -> int:
        """The voxel holding height ``height_um`` above the floor (clipped to the column)."""
        return int(min(self.n_voxels - 1, max(0, math.floor(height_um / self.voxel_um))))


def secretion_conversion(bio: Any, voxel_ml: float) -> np.ndarray:
    """(F,) factors: molecules/s (of all cells in a voxel) -> field units/min in a voxel of
    ``voxel_ml`` mL; the joint model's own conversion (:mod:`abm.model`), reused."""
    from abm.model import JointModel

    stand_in = SimpleNamespace(tissue=SimpleNamespace(voxel_ml=voxel_ml), bio=bio)
    return np.asarray(JointModel._secretion_conversion(stand_in), dtype=np.float64)


class Column:
    """The medium: concentrations ``u`` (F, nz) in field units, floor at index 0.

    ``step(source, uptake)`` advances ``dt_min`` with source (F, nz) in units/min and uptake
    (F, nz) in 1/min: the joint model's implicit stepper in float64 (reaction, then backward
    Euler diffusion with the decay; no flux through either end), so with no decay the total
    amount grows by exactly ``dt × Σ source × voxel_ml`` per step.
    """

    def __init__(self, well: Well, bio: Any, dt_min: float) -> None:
        self.well, self.dt = well, float(dt_min)
        nz = well.n_voxels
        D = np.array([bio.fields[f].D_fluid for f in FIELD_NAMES], dtype=np.float64)
        decay = np.array([bio.fields[f].decay for f in FIELD_NAMES], dtype=np.float64)
        self.D, self.decay = D, decay
        self._step = make_stepper(
            (nz,),
            well.voxel_um,
            self.dt,
            np.broadcast_to(D[:, None], (F, nz)).copy(),
            np.broadcast_to(decay[:, None], (F, nz)).copy(),
            dtype="float64",
        )
        self.u = np.zeros((F, nz), dtype=np.float64)

    def step(self, source: np.ndarray | None = None, uptake: np.ndarray | None = None) -> None:
        self.u = np.array(self._step(self.u, source, uptake), dtype=np.float64)

    def medium(self) -> np.ndarray:
        """(F,) the well's mean concentration (the supernatant as harvested, mixed)."""
        return self.u.mean(axis=1)

    def amount(self) -> np.ndarray:
        """(F,) total amount in the well: field units × mL (ng; KYN µM·mL = nmol)."""
        return self.u.sum(axis=1) * self.well.voxel_ml


@dataclass
class CultureSpec:
    """One cell type in the dish: ``cells`` per well, simulated by ``agents`` agents in the
    voxel at ``height_um``; ``init`` sets starting states (see :func:`initial_columns`)."""

    kind: str
    cells: float
    agents: int
    height_um: float = 0.0
    near: float = 0.0
    init: dict[str, Any] = field(default_factory=dict)


def initial_columns(kind: str, n: int, seed: int, bio: Any, init: dict[str, Any]) -> dict:
    """Starting columns of ``n`` cultured cells of ``kind`` (ids 0..n-1), per-cell draws as the
    model draws them (keyed by seed and id). ``init``: ``state`` (p, a, c or L; default 0),
    T cells ``subset`` (naive/th1/th17/treg, default naive)."""
    ids = np.arange(n, dtype=np.int64)
    state = np.full(n, float(init.get("state", 0.0)), dtype=np.float32)
    if kind == "tcell":
        code = SUBSET_CODES[str(init.get("subset", "naive"))]
        return {"subset": np.full(n, code, np.int8), "state": np.ones(n, np.float32)}
    if kind == "macrophage":
        from abm.cells.macrophage import Draw

        log_g = bio.macrophage.responsiveness_sigma * normal(np, seed, 0, int(Draw.G), ids)
        return {"state": state, "log_g": log_g.astype(np.float32)}
    if kind == "fls":  # responsiveness g is drawn by the rule on the cells' first step
        return {"state": state}
    if kind == "chondrocyte":
        return {"state": state, "alive": np.ones(n, bool)}
    if kind == "msc":
        from abm.cells.msc import Draw

        persistent = uniform(np, seed, 0, int(Draw.PERSIST), ids) < bio.msc.persistent_fraction
        return {
            "state": state,
            "exposure": np.zeros(n, np.float32),
            "adhered": np.ones(n, bool),
            "persistent": persistent,
            "weight": np.ones(n, np.float32),
            "potency": np.ones(n, np.float32),
            "inactivated": np.zeros(n, bool),
        }
    raise ValueError(f"no cultured form of cell type {kind!r}")


class Culture:
    """The agents of one :class:`CultureSpec` in a harness, at one voxel of the column.

    ``divisions`` (steps, phenotypes) counts the agents' divisions per step by the parent's
    phenotype (after the step's update); ``cells_per_agent`` converts counts into cells.
    """

    def __init__(
        self,
        cfg: Any,
        spec: CultureSpec,
        well: Well,
        *,
        seed: int,
        knockouts: tuple[str, ...],
        drive: float,
        dt_min: float,
    ) -> None:
        if spec.agents < 1:
            raise ValueError(f"{spec.kind}: agents must be >= 1, got {spec.agents}")
        self.spec = spec
        self.index = well.index(spec.height_um)
        bio = load_biology(cfg.biology)
        cols = initial_columns(spec.kind, spec.agents, seed, bio, spec.init)
        self.h = RuleHarness(
            cfg, spec.kind, spec.agents, dt=dt_min, seed=seed, knockouts=knockouts, **cols
        )
        self.h.world.drive = float(drive)
        self.h.near = np.full(spec.agents, float(spec.near), np.float32)
        self.cells_per_agent = float(spec.cells) / spec.agents
        self.next_id = spec.agents
        self.divisions: list[np.ndarray] = []
        self._pending: Any = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def n(self) -> int:
        return self.h.pop.n

    def sense(self, levels: np.ndarray) -> None:
        """Every agent sees ``levels`` (F,): the column at its voxel plus the stimulus."""
        self.h.clamp(**{f: float(levels[i]) for i, f in enumerate(FIELD_NAMES)})

    def decide(self) -> None:
        """The rule's update (deaths removed); divisions are placed by :meth:`births`."""
        h = self.h
        fate = h.step(remove_dead=True)
        h.pop["age"] += np.float32(h.dt)  # minutes since the cell appeared (as the model)
        n_phen = len(h.type.phenotypes)
        counts = np.zeros(n_phen, dtype=np.int64)
        if fate.divide is not None and fate.divide.any():
            phen = np.asarray(h.type.phenotype(np, h.pop))[fate.divide]
            counts = np.bincount(phen, minlength=n_phen)
        self.divisions.append(counts)
        self._pending = fate.divide

    def release(self, conv: np.ndarray, v_model_ml: float, voxel_ml: float) -> tuple:
        """(source (F,) units/min, uptake (F,) 1/min) of the culture into its voxel."""
        h = self.h
        src, upt = np.zeros(F), np.zeros(F)
        if h.pop.n == 0:
            return src, upt
        ctx = h.context()
        for name, rate in h.type.secretion(ctx, h.pop).items():
            total = float(np.sum(np.asarray(rate, dtype=np.float64))) * self.cells_per_agent
            src[FIDX[name]] = total * conv[FIDX[name]]
        for name, k in h.type.uptake(ctx, h.pop).items():
            k_sum = float(np.sum(np.broadcast_to(np.asarray(k, np.float64), (h.pop.n,))))
            upt[FIDX[name]] = k_sum * self.cells_per_agent * v_model_ml / voxel_ml
        return src, upt

    def births(self) -> None:
        """Daughters of this step's divisions: copies of their parents (by parent id order)
        with new ids and age 0, as :meth:`abm.space.World.births` places them."""
        divide, self._pending = self._pending, None
        if divide is None or not divide.any():
            return
        pop = self.h.pop
        parents = np.nonzero(divide)[0]
        parents = parents[np.argsort(pop["id"][parents], kind="stable")]
        m = parents.shape[0]
        extra = {c: pop[c][parents] for c in pop.cols if c not in ("id", "age")}
        pop.append(id=np.arange(self.next_id, self.next_id + m, dtype=np.int64), **extra)
        self.next_id += m
        self.h.near = np.concatenate([self.h.near, self.h.near[parents]])
        self.h.agg = np.concatenate([self.h.agg, self.h.agg[parents]])

    def division_counts(self) -> np.ndarray:
        """(steps, phenotypes) divisions per step (agents)."""
        n_phen = len(self.h.type.phenotypes)
        return np.array(self.divisions, dtype=np.int64).reshape(-1, n_phen)


def dish_config(cfg: Any, mechanical_drive: float) -> Any:
    """``cfg`` with the scenario's mechanical drive replaced (a dish is not loaded)."""
    out = copy.deepcopy(cfg)
    with read_write(out), open_dict(out):
        out.scenario.mechanical_drive = float(mechanical_drive)
    return out


class Dish:
    """A closed well: the medium :class:`Column`, the cultures (target cells and/or MSCs) and
    a held ``stimulus`` (field -> level in field units, added to what every cell senses and to
    the medium readouts, not to the column).

    ``cultures`` are stepped in the registry's order of types (as the model steps them); a
    shared apoptotic-MSC pool reaches the macrophages only when the MSCs share their voxel.
    """

    def __init__(
        self,
        cfg: Any,
        well: Well,
        specs: list[CultureSpec],
        *,
        stimulus: dict[str, float] | None = None,
        drive: float = 0.0,
        mechanical_drive: float = 0.0,
        seed: int = 0,
        knockouts: tuple[str, ...] = (),
    ) -> None:
        from abm.cells import registry

        self.cfg = dish_config(cfg, mechanical_drive)
        self.bio = load_biology(self.cfg.biology)
        self.dt = float(cfg.sim.dt_min)
        self.well = well
        self.column = Column(well, self.bio, self.dt)
        self.conv = secretion_conversion(self.bio, well.voxel_ml)
        self.v_model_ml = float(cfg.lattice.dx_um) ** 3 * ML_PER_UM3
        self.stimulus = np.zeros(F)
        for name, level in (stimulus or {}).items():
            if name not in FIDX:
                raise ValueError(f"stimulus {name!r}: not a field ({', '.join(FIELD_NAMES)})")
            self.stimulus[FIDX[name]] = float(level)
        order = {t.name: i for i, t in enumerate(registry())}
        specs = sorted(specs, key=lambda s: order[s.kind])
        self.cultures = [
            Culture(
                self.cfg,
                s,
                well,
                seed=seed,
                knockouts=tuple(knockouts),
                drive=drive,
                dt_min=self.dt,
            )
            for s in specs
        ]
        self.steps = 0
        self.apoptotic = 0.0  # shared apoptotic-MSC pool (cell equivalents of one agent)

    def culture(self, kind: str) -> Culture | None:
        return next((c for c in self.cultures if c.kind == kind), None)

    @property
    def time_min(self) -> float:
        return self.steps * self.dt

    def sensed(self, index: int) -> np.ndarray:
        """(F,) what a cell at voxel ``index`` senses."""
        return self.column.u[:, index] + self.stimulus

    def medium(self) -> np.ndarray:
        """(F,) the harvested medium: the column's mean plus the held stimulus."""
        return self.column.medium() + self.stimulus

    def step(self) -> None:
        msc = self.culture("msc")
        for c in self.cultures:
            c.sense(self.sensed(c.index))
        for c in self.cultures:  # decide; the apoptotic pool is shared within one voxel
            shares = msc is not None and c.kind == "macrophage" and msc.index == c.index
            if c is msc:
                c.h.world.apoptotic_msc = self.apoptotic
            elif shares:
                c.h.world.apoptotic_msc = self.apoptotic * msc.cells_per_agent / c.cells_per_agent
            c.decide()
            if c is msc:
                self.apoptotic = msc.h.world.apoptotic_msc
            elif shares:
                self.apoptotic = c.h.world.apoptotic_msc * c.cells_per_agent / msc.cells_per_agent
        nz = self.well.n_voxels
        source, uptake = np.zeros((F, nz)), np.zeros((F, nz))
        for c in self.cultures:
            s, k = c.release(self.conv, self.v_model_ml, self.well.voxel_ml)
            source[:, c.index] += s
            uptake[:, c.index] += k
        for c in self.cultures:
            c.births()
        self.column.step(source, uptake)
        self.steps += 1

    def run(self, steps: int, every: int = 0, record: Any = None) -> None:
        """``steps`` steps; ``record(dish)`` after every ``every``-th (0: never)."""
        for _ in range(steps):
            self.step()
            if record is not None and every and self.steps % every == 0:
                record(self)


def as_plain(obj: Any) -> Any:
    """A plain Python value of an OmegaConf node (or the value itself)."""
    return OmegaConf.to_container(obj, resolve=True) if OmegaConf.is_config(obj) else obj
