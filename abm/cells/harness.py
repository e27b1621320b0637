"""One cell type alone, its fields clamped: the rule-level harness of the tests and of the
rule-level validation checks (outside the step loop of the data flow).

``RuleHarness(cfg, "tcell", n=400, subset=...)`` builds ``n`` cells of one registered type
with the run's parameters, a clamped :class:`~abm.cells.base.Sense` (``clamp(IL1b=1.0)``) and
a fake ``world`` (no MSCs near unless ``near`` is set, intact matrix unless ``agg`` is set),
then ``step()`` / ``run(steps)`` call the type's ``update`` exactly as the model does (dead
cells removed with their sensed values and pending draws). Draws are the model's: keyed by
(seed, step, purpose, cell id).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from abm.cells import registry
from abm.cells.base import Fate, Sense, StepContext
from abm.cells.population import Population
from abm.params import FIELD_NAMES, load_biology


class _FakeWorld:
    """The world of one population: constant contact, matrix and habitat size."""

    def __init__(self, harness: RuleHarness) -> None:
        self.h = harness
        self.depleted = False
        self.drive = float(harness.scenario.inflammatory_drive) * float(harness.severity)
        self.apoptotic_msc = 0.0  # the apoptotic-MSC pool (cell equivalents), set by tests

    def add_apoptotic(self, n: float) -> None:
        self.apoptotic_msc += max(0.0, float(n))

    def take_apoptotic(self, n: float) -> float:
        taken = min(self.apoptotic_msc, max(0.0, float(n)))
        self.apoptotic_msc -= taken
        return taken

    def near(self, kind: str, radius_um: float, voxels: Any) -> Any:
        return self.h.near.astype(np.float32)

    def habitat_voxels(self, kind: str) -> int:
        return self.h.habitat_voxels

    def matrix_at(self, name: str, voxels: Any) -> Any:
        return self.h.agg

    def walk(self, ctx: StepContext, pop: Any, **_: Any) -> Any:
        return np.full(pop.n, -1, dtype=np.int64)

    def surface_voxels(self, voxels: Any) -> Any:
        return voxels

    def at_surface(self, voxels: Any) -> Any:
        return np.zeros(voxels.shape[0], dtype=bool)

    def depth_um(self, voxels: Any) -> Any:
        return np.zeros(voxels.shape[0], dtype=np.float32)  # every cell in the lining


class RuleHarness:
    """``n`` cells of type ``kind`` (columns from ``columns``), fields clamped (NumPy).

    Attributes: ``type`` (the CellType instance), ``pop``, ``sense``, ``near`` (N,) 0/1 MSC
    contact, ``agg`` (N,) aggrecan at each cell, ``habitat_voxels`` (for carrying capacities,
    default: so large that crowding is negligible), ``dt`` (min), ``steps`` done.
    """

    def __init__(self, cfg: Any, kind: str, n: int, *, dt: float = 2.0, seed: int = 0,
                 knockouts: tuple[str, ...] = (), **columns: Any) -> None:  # fmt: skip
        self.bio = load_biology(cfg.biology)
        self.scenario = cfg.scenario
        self.severity = float(cfg.patient.severity) if "patient" in cfg else 1.0
        cls = {t.name: t for t in registry()}[kind]
        self.type = cls(getattr(self.bio, kind))
        self.pop = Population(np, self.type)
        self.pop.append(id=np.arange(n, dtype=np.int64), voxel=np.arange(n, dtype=np.int64),
                        **columns)  # fmt: skip
        self.dt = dt
        self.seed = seed
        self.knockouts = frozenset(knockouts)
        self.steps = 0
        self.near = np.zeros(n, dtype=np.float32)
        self.agg = np.ones(n, dtype=np.float32)
        self.habitat_voxels = 10**12
        self.world = _FakeWorld(self)  # one world for the run: the apoptotic pool persists
        self.clamp()

    def clamp(self, **levels: Any) -> RuleHarness:
        """Every cell sees ``levels`` (field name -> concentration, a number or an (N,) array
        of one level per cell), the other fields 0."""
        n = self.pop.n
        values = np.zeros((len(FIELD_NAMES), n), dtype=np.float32)
        for name, level in levels.items():
            values[FIELD_NAMES.index(name)] = level
        self.sense = Sense(np, values, FIELD_NAMES, self.bio, K=getattr(self.type.p, "K", None))
        return self

    def context(self, step: int | None = None) -> StepContext:
        """The context of step ``step`` (default: the next one)."""
        step = self.steps + 1 if step is None else step
        ctx = StepContext(np, self.seed, step, self.dt, self.bio, self.scenario, self.knockouts,
                          world=self.world)  # fmt: skip
        ctx.sense[self.type.name] = self.sense
        return ctx

    def step(self, remove_dead: bool = True) -> Fate:
        """One ``update``; dead cells leave (with their sensed values, contact and matrix)
        unless ``remove_dead`` is False (then ``death`` only reports)."""
        fate = self.type.update(self.context(), self.pop)
        self.steps += 1
        if fate.death is not None and remove_dead:
            keep = ~fate.death
            self.pop.keep(keep)
            self.sense.keep(keep)
            self.near, self.agg = self.near[keep], self.agg[keep]
            if fate.divide is not None:
                fate = Fate(fate.death, fate.divide[keep])
        return fate

    def run(self, steps: int, remove_dead: bool = True) -> RuleHarness:
        for _ in range(steps):
            self.step(remove_dead)
        return self

    def secretion(self) -> dict[str, Any]:
        """Secretion rates (molecules/cell/s) of the cells now."""
        return self.type.secretion(self.context(), self.pop)

    def phenotypes(self) -> list[str]:
        """Phenotype name of each cell."""
        names = self.type.phenotypes
        return [names[int(c)] for c in self.type.phenotype(np, self.pop)]
