"""The one shape of every cell type, and what its rules receive each step.

Data flow: the model builds one :class:`StepContext` per step (backend, seed, step, dt, the
frozen biology, the scenario, knockouts, counter-based draws, the fields sensed at each
population's voxels, and the model's spatial services as ``ctx.world``), then calls the same
methods of every registered :class:`CellType` in the step order: ``update`` (states, deaths,
divisions), ``motility`` (targets of a move), ``secretion`` / ``uptake`` (rates scattered
into the lattice), ``recruitment`` (at vessels), ``phenotype`` and ``metrics`` (observers).

A new cell type is one module: a ``CellType`` subclass with its ``Params`` declaration and its
draws, decorated with :func:`abm.cells.register`, plus its parameters' defaults (declared in
the module, overridable as ``biology.<name>.*``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from kernels.random import uniform

# ------------------------------------------------------------------ counter-based draws
GROUP = 10  # purposes p, q with p // GROUP == q // GROUP share one Philox call (row p % GROUP)
SUBSTEP_KEY = 100  # sub-step k of a step draws with purpose group + k * SUBSTEP_KEY
MAX_SUBSTEPS = 600  # keeps every sub-step's purpose word below 2**16
_PURPOSES: dict[int, str] = {}


def draws(enum_cls: type[enum.IntEnum]) -> type[enum.IntEnum]:
    """Register the random-draw purposes of one module (an IntEnum of distinct numbers): a
    purpose is never reused, so two modules claiming one number is an error at import."""
    for member in enum_cls:
        owner = _PURPOSES.get(int(member))
        name = f"{enum_cls.__qualname__}.{member.name}"
        if owner is not None and owner != name:
            raise RuntimeError(f"random purpose {int(member)} of {name} is taken by {owner}")
        _PURPOSES[int(member)] = name
    return enum_cls


def rows_of(group: int) -> int:
    """Rows drawn per call for a purpose group: the highest row in use + 1 (row k's numbers do
    not depend on how many rows are drawn)."""
    used = [p % GROUP for p in _PURPOSES if p // GROUP == group]
    return 1 + max(used) if used else GROUP


@draws
class WorldDraw(enum.IntEnum):
    """Draws of the model's shared machinery (recruitment, moves, initial placement)."""

    RECRUIT_MAC = 50  # vessel fires a macrophage
    RECRUIT_T = 51
    RECRUIT_DIR = 52  # neighbour chosen for the recruit
    RECRUIT_PRIO = 53  # priority among competing recruits
    MOVE_PRIO = 60  # priority among cells that target one voxel
    # 70-89: the cell types' initial placement (keyed by voxel) and states (by cell id), step 0
    VESSELS = 99  # vessel placement, keyed by voxel (step 0): abm.tissue.VESSEL_DRAW


# ------------------------------------------------------------------ small rule helpers
def hill(xp: Any, x: Any, K: float, n: float) -> Any:
    """H(x; K, n) = x^n / (K^n + x^n) for x >= 0 (0 at x = 0)."""
    if n == 1:
        return x / (K + x)
    xn = x**n
    return xn / (K**n + xn)


def event_prob(xp: Any, rate: Any, dt: float) -> Any:
    """Probability that an event of ``rate`` (1/min) fires within ``dt`` min: 1 - exp(-rate dt)."""
    return 1.0 - xp.exp(-rate * dt)


class Sense:
    """Fields at the cells' voxels: ``s["IL1b"]`` is (N,); ``s.H("IL1b")`` its Hill term.

    Hill constants: the cell type's own where its ``Params`` declares a table ``K`` (field
    name -> K in the field's units, ``biology.<type>.K.<field>``; receptor-scale responses),
    else the field's ``biology.fields.<field>.K``. Pass the type's table as ``K``.

    ``IL1_eff = IL1b / (1 + IL1RA / K_ra)`` (receptor antagonist) is available as
    ``s["IL1_eff"]`` and ``s.H("IL1_eff")`` (with IL-1b's K); K_ra is the K of IL1RA (the
    type's, where declared).
    """

    def __init__(self, xp: Any, values: Any, names: tuple[str, ...], bio: Any,
                 K: Any = None) -> None:  # fmt: skip
        self.xp = xp
        self.values = {name: values[i] for i, name in enumerate(names)}
        self.bio = bio
        self.n = float(bio.hill_n)
        self.K = dict(K or {})
        k_ra = self.k("IL1RA")
        self.values["IL1_eff"] = self.values["IL1b"] / (1.0 + self.values["IL1RA"] / k_ra)
        self._h: dict[str, Any] = {}

    def k(self, name: str) -> float:
        """The Hill constant this type senses ``name`` with (field units)."""
        return float(self.K[name]) if name in self.K else float(self.bio.fields[name].K)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def keep(self, mask: Any) -> None:
        """Drop the cells where ``mask`` is False (as :meth:`Population.keep` does)."""
        self.values = {k: v[mask] for k, v in self.values.items()}
        self._h = {k: v[mask] for k, v in self._h.items()}

    def H(self, name: str) -> Any:
        if name not in self._h:
            key = "IL1b" if name == "IL1_eff" else name
            self._h[name] = hill(self.xp, self.values[name], self.k(key), self.n)
        return self._h[name]


# ------------------------------------------------------------------ the context
class World(Protocol):
    """What the model offers the rules besides fields and draws (the model implements it;
    :class:`abm.cells.harness.RuleHarness` fakes it for one type alone)."""

    depleted: bool
    drive: float  # the disease drive on macrophages and FLS (abm/drive.py)
    apoptotic_msc: float  # apoptotic MSCs awaiting clearance (cell equivalents, abm/space.py)

    def add_apoptotic(self, n: float) -> None:
        """Add ``n`` cell equivalents of dying MSCs to the apoptotic pool."""

    def take_apoptotic(self, n: float) -> float:
        """Remove up to ``n`` cell equivalents from the apoptotic pool; returns what was."""

    def near(self, kind: str, radius_um: float, voxels: Any) -> Any:
        """1.0 where a cell of type ``kind`` lies within ``radius_um`` (box) of each voxel."""

    def habitat_voxels(self, kind: str) -> int:
        """Number of voxels where cells of type ``kind`` may live."""

    def matrix_at(self, name: str, voxels: Any) -> Any:
        """Matrix field ``name`` (AGG or COL2) at flat ``voxels``."""

    def walk(self, ctx: StepContext, pop: Any, *, speed_um_min: float, chemotaxis: float,
             mobile: Any, draw: tuple[int, int]) -> Any:  # fmt: skip
        """Targets (-1 = stay) of a random walk biased up the CCL2 gradient."""

    def surface_voxels(self, voxels: Any) -> Any:
        """The lining-surface voxel above each voxel (where floating cells adhere)."""

    def at_surface(self, voxels: Any) -> Any:
        """True for voxels on the lining surface row."""

    def depth_um(self, voxels: Any) -> Any:
        """Depth (µm) of each voxel below the top of the synovial lining."""


@dataclass
class StepContext:
    """What a rule needs besides its own cells, for one step: backend ``xp``, ``seed``,
    ``step``, ``dt`` (min), ``bio`` (frozen :class:`abm.params.Biology`), ``scenario``,
    ``knockouts``, ``sense[type name]`` (fields at that population's voxels), ``world``."""

    xp: Any
    seed: int
    step: int
    dt: float
    bio: Any
    scenario: Any
    knockouts: frozenset = field(default_factory=frozenset)
    world: Any = None
    sense: dict[str, Sense] = field(default_factory=dict)
    key_offset: int = 0  # added to the purpose group of every draw (sub-steps, see substep)
    _cache: dict = field(default_factory=dict, repr=False)

    def uniform(self, purpose: int, ids: Any) -> Any:
        """Counter-based uniforms (N,) keyed by (seed, step, purpose, cell id).

        Purposes of one group (``purpose // GROUP``) are drawn together in one Philox call as
        rows of a (rows, N) block, cached for this ``ids`` array: the draws are the same
        function of (seed, step, purpose, id) however many purposes a rule asks for.
        """
        group, row = divmod(int(purpose), GROUP)
        hit = self._cache.get(group)
        if hit is None or hit[0] is not ids:
            rows, key = rows_of(group), group + self.key_offset
            hit = (ids, uniform(self.xp, self.seed, self.step, key, ids, rows).reshape(rows, -1))
            self._cache[group] = hit
        return hit[1][row]

    def substep(self, k: int, n: int) -> StepContext:
        """The context of sub-step ``k`` of ``n`` (dt / n): sub-step 0 shares this step's
        draws, sub-step k > 0 draws with purpose groups offset by ``SUBSTEP_KEY * k``."""
        if n == 1:
            return self
        return replace(self, dt=self.dt / n, key_offset=SUBSTEP_KEY * k,
                       _cache=self._cache if k == 0 else {})  # fmt: skip

    def remap(self, old_ids: Any, new_ids: Any, mask: Any) -> None:
        """After ``new_ids = old_ids[mask]`` (cells removed), keep their cached draws."""
        for group, (ids, block) in list(self._cache.items()):
            if ids is old_ids:
                self._cache[group] = (new_ids, block[:, mask])


@dataclass
class Fate:
    """What ``update`` decided: ``death`` (N,) bool (removed now), ``divide`` (N,) bool
    (a daughter is placed in the act phase); None means none."""

    death: Any = None
    divide: Any = None


@dataclass(frozen=True)
class Seeding:
    """Initial placement of one region: cells go into ``region`` voxels (names of
    :func:`abm.space.regions`) at ``density`` (fraction of free voxels), drawn with purpose
    ``draw`` (one of the type's registered draws, 70-89 by convention; step 0, keyed by voxel)."""

    draw: int
    region: str
    density: float


# ------------------------------------------------------------------ the cell type
class CellType:
    """One cell type: columns, parameters and rules (subclass, then ``@register``).

    Class attributes: ``name`` (biology key and run-file type name), ``title``, ``Params``
    (frozen declaration dataclass, see :mod:`abm.params`), ``columns`` (extra columns besides
    id, voxel, age, state), ``phenotypes`` (names; run-file codes are assigned in registry
    order), ``habitat`` (tissue regions where cells may live), ``divide_draws`` (direction and
    priority purposes of daughter placement), ``recruit_draw`` (purpose of recruitment at
    vessels, or None). ``self.p`` is the run's parameters of this type.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    Params: ClassVar[type]
    columns: ClassVar[dict[str, Any]] = {}
    phenotypes: ClassVar[tuple[str, ...]] = ()
    habitat: ClassVar[tuple[str, ...]] = ()
    divide_draws: ClassVar[tuple[int, int] | None] = None
    recruit_draw: ClassVar[int | None] = None
    seed_order: ClassVar[int] = 100  # initial placement order: lower claims voxels first
    code: ClassVar[int] = -1  # set by the registry
    phenotype_offset: ClassVar[int] = 0  # set by the registry

    def __init__(self, params: Any) -> None:
        self.p = params

    @classmethod
    def all_columns(cls) -> dict[str, Any]:
        base = {"id": np.int64, "voxel": np.int64, "age": np.float32, "state": np.float32}
        return {**base, **cls.columns}

    # -- build
    def seeding(self, scenario: Any) -> list[Seeding]:
        """Regions and densities of the initial cells (none by default)."""
        return []

    def initial(self, ctx: Any, ids: Any) -> dict[str, Any]:
        """Columns of the initial cells ``ids`` (``ctx``: :class:`abm.seeding.SeedContext`)."""
        return {}

    # -- step
    def update(self, ctx: StepContext, pop: Any) -> Fate:
        """Advance states by ``ctx.dt``; decide deaths and divisions."""
        return Fate()

    def motility(self, ctx: StepContext, pop: Any) -> Any:
        """Target voxels of this step's moves, (N,) int64 (-1 = stay), or None (sessile)."""
        return None

    def moved(self, ctx: StepContext, pop: Any) -> None:
        """Called after the moves are resolved (positions updated)."""

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Field name -> (N,) secretion rate in molecules/cell/s."""
        return {}

    def uptake(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        """Field name -> first-order uptake rate in 1/min at the cell's voxel."""
        return dict(getattr(self.p, "uptake", {}))

    def recruitment(self, ctx: StepContext, n: int) -> float:
        """Recruitment rate per vessel (1/min) at saturating CCL2, given ``n`` cells now."""
        return 0.0

    def recruited(self, ctx: StepContext, ids: Any) -> dict[str, Any]:
        """Columns of newly recruited cells ``ids``."""
        return {}

    # -- observe
    def phenotype(self, xp: Any, pop: Any) -> Any:
        """(N,) int8 local phenotype codes, indices into ``phenotypes``."""
        return xp.zeros(pop.n, dtype=xp.int8)

    def metrics(self) -> list[Any]:
        """Metrics of this type (:class:`abm.metrics.Metric`), in their column order."""
        return []
