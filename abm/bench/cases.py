"""Benchmark cases, derived from the composed config (first stage of abm-bench's data flow).

Data flow: a case is a name and Hydra overrides -> :func:`abm.compose` gives the config the
model would run -> lattice cases: the model's own per-voxel diffusivity and decay on that
lattice (:func:`lattice_problem`, from ``model.tissue.transport(model.bio)``); cell cases: the
scenario's seeding densities, scaled by one factor so that the lattice holds about the target
number of cells (:func:`cell_densities`) -> :mod:`abm.bench.suite` times them.

Nothing here copies a number from ``conf/``: change the scenario or the biology there and the
cases follow.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from abm.config import compartment_rows, compose
from abm.errors import BenchError

SIZES = ("small", "full")
SCENARIO = "oa"  # the scenario whose densities the cell cases scale


# ------------------------------------------------------------------------------ lattice cases
@dataclass(frozen=True)
class LatticeCase:
    """The lattice solver alone on the lattice that ``overrides`` compose (all its fields)."""

    name: str
    overrides: tuple[str, ...]


# 3D layering thin enough for 32 rows: 2 bone + 8 cartilage + 8 fluid + 2 lining + 12 sublining
_THIN_3D = (
    "lattice.bone_um=20",
    "lattice.cartilage_um=80",
    "lattice.fluid_um=80",
    "lattice.lining_um=20",
)
LATTICE_CASES: dict[str, dict[str, LatticeCase]] = {
    "small": {
        "2d-128": LatticeCase("2d-128", ("lattice=2d", "lattice.shape=[128,128]")),
        "3d-32": LatticeCase("3d-32", ("lattice=3d", "lattice.shape=[32,32,32]", *_THIN_3D)),
    },
    "full": {
        "2d-512": LatticeCase("2d-512", ("lattice=2d", "lattice.shape=[512,512]")),
        "3d-128": LatticeCase("3d-128", ("lattice=3d", "lattice.shape=[128,128,128]")),
    },
}


@dataclass(frozen=True)
class LatticeProblem:
    """What the model's solver gets on one lattice: D (F, *shape) in µm²/min and decay
    (F, *shape) in 1/min for its F diffusing fields (float32, read-only host arrays), dx in µm,
    dt in min."""

    shape: tuple[int, ...]
    dx_um: float
    dt_min: float
    D: np.ndarray
    decay: np.ndarray

    @property
    def n_fields(self) -> int:
        return int(self.D.shape[0])

    def initial(self, n_fields: int | None = None) -> np.ndarray:
        """A reproducible random state (n_fields or F, *shape) float32 in [0, 1)."""
        F = self.n_fields if n_fields is None else n_fields
        return np.random.default_rng(0).random((F, *self.shape), dtype=np.float32)


@functools.lru_cache(maxsize=2)  # the lattice and ratio cases of one run share a problem
def lattice_problem(case: LatticeCase) -> LatticeProblem:
    """The model's transport on the case's lattice (a numpy model is built to read it)."""
    model, _ = build_model(case.overrides, "numpy")
    D, decay = (np.asarray(a, dtype=np.float32) for a in model.tissue.transport(model.bio))
    D.flags.writeable = decay.flags.writeable = False
    dx_um, dt_min = float(model.tissue.dx_um), float(model.dt_min)
    return LatticeProblem(tuple(model.shape), dx_um, dt_min, D, decay)


# ------------------------------------------------------------------------------ cell cases
@dataclass(frozen=True)
class CellCase:
    """Whole model steps: lattice/therapy overrides and the number of cells to aim at
    (``None``: the scenario's densities as they are)."""

    name: str
    overrides: tuple[str, ...]
    target_cells: int | None = None


# 2D layering for 100 rows: 5 bone + 30 cartilage + 30 fluid + 3 lining + 32 sublining
_THIN_2D = ("lattice.bone_um=50", "lattice.cartilage_um=300", "lattice.fluid_um=300")
# MSCs are injected at t = 0 (therapy.day=0: they appear at the end of the first, warm-up
# step) so every timed step runs all five cell types' rules.
MSC_T0 = ("therapy=msc", "therapy.day=0")
CELL_CASES: dict[str, dict[str, CellCase]] = {
    "small": {
        "2d-small": CellCase("2d-small", (*MSC_T0, "lattice.shape=[100,40]", *_THIN_2D), 600),
        "3d-small": CellCase("3d-small", (*MSC_T0, "lattice=3d", "lattice.shape=[80,12,12]"), 900),
    },
    "full": {
        "2d-1e4": CellCase("2d-1e4", (*MSC_T0, "lattice.shape=[193,768]"), 10_000),
        "3d-1e4": CellCase("3d-1e4", (*MSC_T0, "lattice=3d", "lattice.shape=[128,32,32]"), 10_000),
        "3d-1e5": CellCase("3d-1e5", (*MSC_T0, "lattice=3d"), 100_000),
        "3d-1e6": CellCase(
            "3d-1e6", (*MSC_T0, "lattice=3d", "lattice.shape=[128,256,256]"), 1_000_000
        ),
    },
}

# The layers each scenario density seeds (its "fraction of ... voxels" in conf/scenario).
DENSITY_LAYERS = {
    "mac_density": ("lining", "sublining"),
    "fls_lining_density": ("lining",),
    "fls_density": ("sublining",),
    "tcell_density": ("sublining",),
}


def expected_cells(cfg: Any, densities: dict[str, float]) -> float:
    """Cells seeded at t = 0 on ``cfg``'s lattice with these scenario densities: chondrocytes
    (biology's density) plus each density times the voxels of its layers.

    Approximate: it ignores that cells exclude each other and vessels (a few % fewer) and the
    injected MSCs (a few % more).
    """
    lateral = math.prod(int(n) for n in cfg.lattice.shape[1:])
    rows = compartment_rows(cfg.lattice)
    n = float(cfg.biology.chondrocyte.density) * rows["cartilage"] * lateral
    for key, layers in DENSITY_LAYERS.items():
        n += densities[key] * sum(rows[layer] for layer in layers) * lateral
    return n


def cell_densities(case: CellCase, scenario: str = SCENARIO) -> tuple[dict[str, float], float]:
    """The scenario's densities scaled by one factor (each capped at 1) so that the case's
    lattice holds about ``case.target_cells`` cells; returns (densities, factor).

    Raises :class:`BenchError` when even full density stays short of the target.
    """
    cfg = compose([f"scenario={scenario}", *case.overrides])
    base = {key: float(cfg.scenario[key]) for key in DENSITY_LAYERS}
    if case.target_cells is None:
        return base, 1.0

    def scaled(s: float) -> dict[str, float]:
        return {key: min(1.0, s * d) for key, d in base.items()}

    hi = max((1.0 / d for d in base.values() if d > 0), default=1.0)  # all at 1 from here
    if expected_cells(cfg, scaled(hi)) < case.target_cells:
        raise BenchError(
            f"cell case {case.name}: its lattice holds at most "
            f"{expected_cells(cfg, scaled(hi)):.0f} cells, fewer than {case.target_cells}"
        )
    lo = 0.0
    for _ in range(60):  # bisection: expected_cells grows with the factor
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if expected_cells(cfg, scaled(mid)) < case.target_cells else (lo, mid)
    return scaled(hi), hi


def model_overrides(case: CellCase, scenario: str = SCENARIO) -> tuple[str, ...]:
    """Every Hydra override of a cell case: scenario, the case's own, the scaled densities."""
    if case.target_cells is None:
        return (f"scenario={scenario}", *case.overrides)
    densities, _ = cell_densities(case, scenario)
    dens = (f"scenario.{key}={value:.6g}" for key, value in densities.items())
    return (f"scenario={scenario}", *case.overrides, *dens)


def build_model(overrides: Sequence[str], backend: str) -> tuple[Any, float]:
    """A JointModel for ``overrides`` on ``backend`` and its build time (s)."""
    from abm.model import JointModel

    cfg = compose([*overrides, f"backend={backend}"])
    t0 = time.perf_counter()
    model = JointModel(cfg)
    return model, time.perf_counter() - t0
