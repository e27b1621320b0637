"""Config: Hydra schemas, composition and validation (first stop of the data flow).

conf/*.yaml (+ overrides) -> Hydra composes against the dataclass schema registered here as
``base_config`` -> :func:`validate` checks values and the memory estimate -> the validated
DictConfig goes to :class:`abm.model.JointModel`. Every error is one :class:`ConfigError` line
naming the offending key and what would be valid, raised before anything is allocated.

Rules beyond "the right type" (each broken one is a ConfigError naming the key, the value and
what is valid):

- ``seed`` is an integer in [0, 2**64): the counter-based RNG keys its draws with 64 bits.
- Numbers are finite: ``inf``/``nan`` are refused (``sim.days``, ``sim.dt_min``, the lattice
  lengths, ``therapy.day``, ``perturb.deplete_day``, ...). "Never" is said otherwise:
  ``therapy=none``, ``perturb.deplete_macrophages=false``.
- ``sim.dt_min`` lies in :data:`DT_MIN_RANGE` (0.01 to 60 minutes). Above an hour the
  forward-Euler cell states (fastest rates ~0.02/min at full drive) take steps of rate·dt ~ 1
  (overshoot, held only by clipping), the probabilities ``1 - exp(-rate·dt)`` of the fastest
  events approach 1, and a cell decides to divide or die only once an hour; below 0.01 min
  (0.6 s) nothing in the model changes within a step and the run only costs time.
- ``sim.field_substeps`` k in [1, :data:`MAX_FIELD_SUBSTEPS`]: the fields take k transport
  steps of ``sim.dt_min / k`` per cell step (multi-rate stepping for long runs).
- A run has 1 to :data:`MAX_STEPS` steps (``round(sim.days · 1440 / sim.dt_min)``): zero steps
  would run nothing; a million steps already take hours to days even on a small lattice and
  keep ~3 GB of metric history in memory, so more is almost always a mistyped ``sim.dt_min``
  or ``sim.days``.
- The MSC bolus (:func:`msc_dose`): N = dose · adherence · A_patch / A_syn physical MSCs in
  the patch, as n = max(min_cells, round(N), 1) agents of weight N / n each; the n agents must
  fit in the fluid at one cell per voxel, i.e. ``therapy.dose <=`` fluid voxels · A_syn /
  (adherence · A_patch) and ``therapy.min_cells <=`` the fluid voxels; a larger bolus used to
  be capped silently. (If the fluid is partly occupied at injection, the cap that remains is
  logged by abm.events with the requested and the placed count.)
- The fluid slab of the lattice is part of the synovial fluid: ``lattice.fluid_um`` must not
  exceed V/A = patient.sf_volume_ml / patient.synovial_area_cm2 (667 µm by default).
- ``therapy.day`` (``perturb.deplete_day``) after ``sim.days`` is a warning, not an error
  (:func:`config_warnings`): the run is valid, and a resume may extend ``sim.days`` past that
  day later.
- Memory: :func:`estimate_bytes`, an upper bound of the run's peak resident memory, must stay
  below 80% of the memory available.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from abm.errors import ConfigError
from abm.params import FIELD_NAMES, biology_schema, check_biology, describe
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)

KNOCKOUTS = ("pge2", "tsg6", "ido", "tgfb", "il1ra", "efferocytosis")
SCENARIOS = ("healthy", "oa", "oa_mild")
THERAPIES = ("none", "msc", "il1ra_bolus")
SEED_LIMIT = 2**64  # the Philox key is 64 bits (kernels/random.py)
DT_MIN_RANGE = (0.01, 60.0)  # minutes; reasons in the module docstring
MAX_STEPS = 1_000_000
MAX_FIELD_SUBSTEPS = 60  # transport steps per cell step (dt = 60 min in 1-min transport steps)


@dataclass
class SimConf:
    days: float = 7.0
    dt_min: float = 2.0
    field_substeps: int = 1
    spinup_days: float = 0.0


@dataclass
class LatticeConf:
    shape: list[int] = field(default_factory=lambda: [148, 256])
    dx_um: float = 10.0
    dtype: str = "float32"
    bone_um: float = 100.0
    cartilage_um: float = 500.0
    fluid_um: float = 50.0  # a thin slab of the well-mixed synovial fluid (abm/fluid.py)
    lining_um: float = 30.0
    vessel_density: float = 0.01


@dataclass
class BackendConf:
    name: str = "numpy"


@dataclass
class ScenarioConf:
    name: str = MISSING
    inflammatory_drive: float = 0.0
    mechanical_drive: float = 0.0
    mac_density: float = 0.0
    fls_lining_density: float = 0.0
    fls_density: float = 0.0
    tcell_density: float = 0.0
    tcell_subsets: list[float] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
    mac_p0: float = 0.0
    fls_a0: float = 0.0
    chondrocyte_c0: float = 0.0
    mac_recruit_rate: float = 0.0
    tcell_recruit_rate: float = 0.0
    agg0: float = 1.0
    col20: float = 1.0


@dataclass
class TherapyConf:
    name: str = "none"
    dose: float = 0.0
    day: float = 1.0
    prelicensed: bool = False
    knockouts: list[str] = field(default_factory=list)
    min_cells: int = 0
    potency: float = 1.0
    inactivated: bool = False
    adherence: float = 0.5
    dose_mg: float = 0.0


@dataclass
class PatientConf:
    sf_volume_ml: float = 10.0
    synovial_area_cm2: float = 150.0
    severity: float = 1.0


@dataclass
class PerturbConf:
    deplete_macrophages: bool = False
    deplete_day: float = 0.0


@dataclass
class OutputConf:
    snapshot_every_min: float = 360.0
    checkpoint_every_min: float = MIN_PER_DAY
    summary_png: bool = True
    progress: bool | None = None
    xdmf: bool = True


@dataclass
class DesignConf:
    """One row of a parameter design (abm-sensitivity, abm-replicates): ``file`` is a CSV with a
    ``row`` column and one column per config key; the job applies the values of row ``row``
    before validation (:func:`abm.sweep.design.apply_design`)."""

    file: str | None = None
    row: int | None = None


@dataclass
class Config:
    seed: int = 0
    resume: str | None = None
    design: DesignConf = field(default_factory=DesignConf)
    sim: SimConf = field(default_factory=SimConf)
    lattice: LatticeConf = field(default_factory=LatticeConf)
    backend: BackendConf = field(default_factory=BackendConf)
    scenario: ScenarioConf = field(default_factory=ScenarioConf)
    therapy: TherapyConf = field(default_factory=TherapyConf)
    patient: PatientConf = field(default_factory=PatientConf)
    perturb: PerturbConf = field(default_factory=PerturbConf)
    output: OutputConf = field(default_factory=OutputConf)
    biology: Any = None  # replaced by the typed schema of the registered cell types


def register_schema() -> None:
    """Store the schema (``base_config``) in Hydra's ConfigStore, with ``biology`` typed by the
    parameter declarations of the cell types registered now (abm.params)."""
    schema = biology_schema()
    node = make_dataclass(
        "RunConfig", [("biology", schema, field(default_factory=schema))], bases=(Config,)
    )
    ConfigStore.instance().store(name="base_config", node=node)


register_schema()


def compose(
    overrides: Iterable[str] = (), *, warn: bool = True, machine: bool = True
) -> DictConfig:
    """The validated config, as ``abm-run`` with the same overrides would see it.

    Raises :class:`ConfigError` (one line) for an unknown key, group option or bad value;
    ``warn`` logs the warnings of :func:`validate` (a check that runs before the real
    validation of the same config passes False, so that each warning is said once);
    ``machine`` as for :func:`validate`.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    register_schema()  # a cell type registered since import brings its parameters
    try:
        if GlobalHydra.instance().is_initialized():
            cfg = hydra_compose(config_name="config", overrides=overrides)
        else:
            with initialize_config_module(config_module="abm.conf", version_base="1.3"):
                cfg = hydra_compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc)) from None
    return validate(cfg, warn=warn, machine=machine)


def _one_line(exc: BaseException) -> str:
    """One line for a Hydra/OmegaConf error; a value of the wrong type names the key, what it
    expects (with the declared unit and range for biology parameters) and the value."""
    from omegaconf.errors import ValidationError

    cause = exc.__cause__
    key = getattr(cause, "full_key", None)
    if isinstance(cause, ValidationError) and key:
        text = str(cause).splitlines()[0]
        expected = next((e for pat, e in _EXPECTED if pat in text), None)
        if expected is not None:
            declared = describe(key) if key.startswith("biology.") else None
            value = getattr(cause, "value", None)
            return f"{key}: {declared or expected}, got {value!r}"
    text = " ".join(str(exc).split()).split(" Config search path")[0]
    return text if len(text) < 400 else text[:397] + "..."


_EXPECTED = (
    ("converted to Float", "expected a number"),
    ("converted to Integer", "expected an integer"),
    ("not a valid bool", "expected true or false"),
    ("converted to String", "expected a string"),
)


def _require(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {msg}")


def compartment_rows(lat: Any) -> dict[str, int]:
    """Rows (voxels along axis 0) of each layer; sublining takes the rest."""
    dx = float(lat.dx_um)
    rows = {
        name: round(float(lat[f"{name}_um"]) / dx)
        for name in ("bone", "cartilage", "fluid", "lining")
    }
    rows["sublining"] = int(lat.shape[0]) - sum(rows.values())
    return rows


# Memory estimate (estimate_bytes), measured with NumPy on the CPU (peak RSS of abm-run, and
# tracemalloc per phase); the numbers are in the docstring of estimate_bytes.
BASE_BYTES = 192 * 2**20  # interpreter + numpy, h5py, hydra, matplotlib, mesa, pandas (~175 MB)
CELL_BYTES = 256  # per cell at the step's peak: columns, sensed fields, move temporaries (~210 B)
CELLS_PER_SYNOVIUM_VOXEL = 0.5  # the FLS + macrophage carrying capacities (0.27 + 0.25)
HISTORY_BYTES_PER_STEP = 3 * 1024  # metric history: ~1.4 KB/step kept, ~1.1 KB more exported


def n_steps(cfg: Any) -> int:
    """Steps of a run from t = 0 to ``sim.days`` (the loop's rounding)."""
    return round(float(cfg.sim.days) * MIN_PER_DAY / float(cfg.sim.dt_min))


def spinup_steps(cfg: Any) -> int:
    """Steps of the untreated spin-up before t = 0 (``sim.spinup_days``; 0 without one)."""
    return round(float(cfg.sim.get("spinup_days", 0.0) or 0.0) * MIN_PER_DAY
                 / float(cfg.sim.dt_min))  # fmt: skip


def _memory_parts(cfg: Any) -> tuple[int, int]:
    """(lattice + cells bytes, metric-history bytes) of :func:`estimate_bytes`."""
    shape = [int(s) for s in cfg.lattice.shape]
    n = math.prod(shape)
    F, c = len(FIELD_NAMES), (8 if cfg.lattice.dtype == "float64" else 4)
    masks = 16  # compartment, regions, occupancy, index maps
    # the step: u, source, uptake, 3 solver buffers, 1 temporary; matrix (AGG, COL2 + 4)
    running = 7 * F * c + 6 * c + masks
    # build: D and decay made in float64 and cast (tissue.transport); then the stepper holds
    # them with float64 copies, and materializes ~6 float64 coefficients per field over the
    # largest (axis 0 x axis k) plane: the whole lattice in 2D, one slice in 3D
    plane = shape[0] * max(shape[1:])
    transport = F * (16 + 2 * c) + masks
    stepper = F * (2 * c + (16 if c == 4 else 0) + 1) + masks + 48 * F * plane / n
    rows, per_row = compartment_rows(cfg.lattice), n // shape[0]
    synovium = rows["lining"] + rows["sublining"]
    sc = cfg.scenario  # a scenario seeded above the carrying capacities starts fuller
    seeded = sc.mac_density + sc.fls_density + sc.tcell_density
    seeded += sc.fls_lining_density * rows["lining"] / max(1, synovium)
    occupancy = min(1.0, max(CELLS_PER_SYNOVIUM_VOXEL, seeded))
    cells = occupancy * synovium * per_row + msc_dose(cfg)[0]
    lattice = max(n * running + cells * CELL_BYTES, n * max(transport, stepper))
    # a spin-up keeps its own metric history while it runs (the run's starts afresh after it)
    return int(lattice), max(0, n_steps(cfg), spinup_steps(cfg)) * HISTORY_BYTES_PER_STEP


def estimate_bytes(cfg: Any) -> int:
    """Estimated peak resident memory of a run (bytes): an upper bound, for the memory guard.

    ``BASE_BYTES`` (interpreter and libraries) + the larger of two phases + the metric history
    (``HISTORY_BYTES_PER_STEP`` per step). With F = 13 fields, c = 4 (float32) or 8 bytes:

    - build: ``tissue.transport`` makes D and decay in float64 and casts them (F·(16 + 2c)
      per voxel); the LOD stepper then holds them, float64 copies and a mask, and materializes
      ~6 float64 coefficients per field over the largest plane (axis 0 x axis k, k >= 1): in
      2D that is the whole lattice (48·F B/voxel, the 2D peak), in 3D one slice;
    - the step: u, source, uptake, 3 solver buffers and a temporary (7·F·c per voxel), the
      matrix and masks, plus ``CELL_BYTES`` per cell for ``CELLS_PER_SYNOVIUM_VOXEL`` cells
      per synovium voxel (more if the scenario seeds more, at most 1) and the MSC bolus.

    Measured (peak RSS of ``abm-run lattice.shape=S sim.days=0.01
    output.snapshot_every_min=1e9 output.summary_png=false``, ``/usr/bin/time -v``; ~176 MB
    for a tiny lattice): 2D [512,512] 389 MB (float64 404), [1024,1024] 1070 MB,
    [2048,1024] 1992 MB; 3D [128,64,64] 401 MB, [128,128,128] 971 MB, [128,96,96] float64
    1106 MB. The estimate is 1.1-1.3x these. Not counted: GPU memory (``backend=cupy``
    holds the fields on the device; the host still builds the coefficients).
    """
    lattice, history = _memory_parts(cfg)
    return BASE_BYTES + lattice + history


def patch_area_cm2(lat: Any) -> float:
    """Lateral area of the lattice in cm² (2D: width · dx times dx, a slab one voxel thick;
    3D: width · depth)."""
    shape = [int(s) for s in lat.shape]
    lateral = shape[1] * (shape[2] if len(shape) > 2 else 1)
    return lateral * float(lat.dx_um) ** 2 * 1e-8


def msc_dose(cfg: Any) -> tuple[int, float]:
    """(agents n, physical MSCs N) of the therapy's MSC bolus in the patch; (0, 0.0) without
    an MSC therapy. N = dose · adherence · A_patch / A_syn; n = max(min_cells, round(N), 1)
    when N > 0, each agent standing for N / n cells (the dose acts linearly at any n)."""
    th = cfg.therapy
    if th.name != "msc" or not th.dose > 0:
        return 0, 0.0
    N = (float(th.dose) * float(th.adherence) * patch_area_cm2(cfg.lattice)
         / float(cfg.patient.synovial_area_cm2))  # fmt: skip
    if not N > 0:
        return 0, 0.0
    return max(int(th.min_cells), round(N), 1), N


def voxel_ml(lat: Any) -> float:
    """Volume of one voxel in mL (a 2D lattice is a slab one voxel thick; as abm.tissue)."""
    return float(lat.dx_um) ** 3 * 1e-12


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (falls back to total physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_nonnegative(node: Any, key: str) -> None:
    if isinstance(node, DictConfig | dict):
        for k, v in node.items():
            _check_nonnegative(v, f"{key}.{k}")
    elif isinstance(node, bool | str) or node is None:
        return
    elif isinstance(node, int | float):
        _require(
            math.isfinite(node) and node >= 0, key, f"must be a finite number >= 0, got {node}"
        )
    elif isinstance(node, Sequence):
        for i, v in enumerate(node):
            _check_nonnegative(v, f"{key}[{i}]")


def _finite(
    value: Any, key: str, what: str, *, lo: float = 0.0, strict: bool = False, hint: str = ""
) -> None:
    """``value`` must be a finite number >= lo (> lo with ``strict``); ``what`` names it."""
    v = float(value)
    ok = math.isfinite(v) and (v > lo if strict else v >= lo)
    msg = f"must be a finite {what} {'>' if strict else '>='} {lo:g}, got {value}"
    _require(ok, key, msg + (f" ({hint})" if hint else ""))


def validate(cfg: DictConfig, *, warn: bool = True, machine: bool = True) -> DictConfig:
    """Check a composed config; return it (read-only) or raise :class:`ConfigError`.

    ``warn``: log the warnings (valid but probably unintended values, e.g. an injection day
    after the end of the run) on the logger ``abm.config``. A ``design.file`` row is applied
    first (:func:`abm.sweep.design.apply_design`), so its values are checked like any other.
    ``machine`` False leaves out the checks of this machine (the memory a run needs, a GPU for
    ``backend=cupy``): for jobs that will run elsewhere (a Slurm sweep) and check them there.
    """
    design = cfg.get("design")
    if design is not None and design.file is not None:
        from abm.sweep.design import apply_design

        cfg = apply_design(cfg)
    elif design is not None and design.row is not None:
        raise ConfigError(
            f"design.row={design.row}: given without design.file (the CSV of parameter sets "
            "whose row to apply); give both, or neither"
        )
    _require(cfg.backend.name in ("numpy", "cupy", "auto"), "backend",
             f"{cfg.backend.name!r} is not one of numpy, cupy, auto")  # fmt: skip
    _require(cfg.scenario.name in SCENARIOS, "scenario",
             f"{cfg.scenario.name!r} is not one of {', '.join(SCENARIOS)}")  # fmt: skip
    _require(cfg.therapy.name in THERAPIES, "therapy",
             f"{cfg.therapy.name!r} is not one of {', '.join(THERAPIES)}")  # fmt: skip
    _require(0 <= cfg.seed < SEED_LIMIT, "seed",
             f"must be an integer in [0, 2**64), got {cfg.seed}")  # fmt: skip

    # simulation: time step and length
    sim = cfg.sim
    _finite(sim.days, "sim.days", "number of days", strict=True)
    lo, hi = DT_MIN_RANGE
    _require(math.isfinite(sim.dt_min) and lo <= sim.dt_min <= hi, "sim.dt_min",
             f"must be a step in minutes in [{lo:g}, {hi:g}], got {sim.dt_min}")  # fmt: skip
    _require(1 <= sim.field_substeps <= MAX_FIELD_SUBSTEPS, "sim.field_substeps",
             f"must be an integer in [1, {MAX_FIELD_SUBSTEPS}] (transport steps of "
             f"sim.dt_min / k per cell step), got {sim.field_substeps}")  # fmt: skip
    steps = n_steps(cfg)
    _require(steps >= 1, "sim.days",
             f"sim.days={sim.days} is less than half a step of sim.dt_min={sim.dt_min} min: "
             "the run would have 0 steps")  # fmt: skip
    if steps > MAX_STEPS:
        dt_needed = sim.days * MIN_PER_DAY / MAX_STEPS
        fix = f"raise sim.dt_min to >= {dt_needed:.3g} or " if dt_needed <= hi else ""
        raise ConfigError(
            f"{'sim.dt_min' if fix else 'sim.days'}: sim.days={sim.days} at sim.dt_min="
            f"{sim.dt_min} min is {steps:,} steps, more than the {MAX_STEPS:,} a run may have; "
            f"{fix}shorten sim.days"
        )

    # lattice geometry (before anything is computed from its lengths)
    lat = cfg.lattice
    _require(len(lat.shape) in (2, 3), "lattice.shape",
             f"must have 2 or 3 entries (2D or 3D), got {list(lat.shape)}")  # fmt: skip
    _require(all(int(s) >= 1 for s in lat.shape), "lattice.shape",
             f"entries must be >= 1, got {list(lat.shape)}")  # fmt: skip
    _finite(lat.dx_um, "lattice.dx_um", "length in µm", strict=True)
    for name in ("bone", "cartilage", "fluid", "lining"):
        _finite(lat[f"{name}_um"], f"lattice.{name}_um", "thickness in µm")
    _require(lat.dtype in ("float32", "float64"), "lattice.dtype",
             f"{lat.dtype!r} is not one of float32, float64")  # fmt: skip
    _require(0 <= lat.vessel_density <= 1, "lattice.vessel_density",
             f"must lie in [0, 1], got {lat.vessel_density}")  # fmt: skip
    rows = compartment_rows(lat)
    for name in ("cartilage", "fluid", "lining"):
        _require(rows[name] >= 1, f"lattice.{name}_um",
                 f"gives {rows[name]} rows at dx_um={lat.dx_um}; need >= 1")  # fmt: skip
    _require(rows["sublining"] >= 1, "lattice.shape",
             f"shape[0]={lat.shape[0]} rows cannot hold bone {rows['bone']} + cartilage "
             f"{rows['cartilage']} + fluid {rows['fluid']} + lining {rows['lining']} rows "
             "plus >= 1 sublining row; enlarge shape[0] or thin the layers")  # fmt: skip

    # therapy and interventions
    th = cfg.therapy
    _finite(th.dose, "therapy.dose", "number of cells per knee")
    _finite(th.day, "therapy.day", "day", hint="no injection: therapy=none")
    _require(th.min_cells >= 0, "therapy.min_cells", f"must be >= 0, got {th.min_cells}")
    pt = cfg.patient
    _finite(pt.sf_volume_ml, "patient.sf_volume_ml", "volume in mL", strict=True)
    _finite(pt.synovial_area_cm2, "patient.synovial_area_cm2", "area in cm²", strict=True)
    _finite(pt.severity, "patient.severity", "multiplier of the disease drive (1 = the scenario's)")
    _require(pt.severity >= 0, "patient.severity", f"must be >= 0, got {pt.severity}")
    _finite(th.potency, "therapy.potency", "multiplier of the MSC secretion (1 = reference donor)")
    _require(th.potency >= 0, "therapy.potency", f"must be >= 0, got {th.potency}")
    _finite(th.adherence, "therapy.adherence", "fraction of injected MSCs that reach the synovium")
    _require(0 <= th.adherence <= 1, "therapy.adherence", f"must lie in [0, 1], got {th.adherence}")
    _finite(th.dose_mg, "therapy.dose_mg", "mg of IL-1Ra protein (therapy=il1ra_bolus)")
    _require(th.dose_mg >= 0, "therapy.dose_mg", f"must be >= 0, got {th.dose_mg}")
    _finite(sim.spinup_days, "sim.spinup_days", "days of untreated spin-up before day 0")
    _require(sim.spinup_days >= 0, "sim.spinup_days", f"must be >= 0, got {sim.spinup_days}")
    spin = spinup_steps(cfg)
    _require(spin <= MAX_STEPS, "sim.spinup_days",
             f"{sim.spinup_days:g} days at sim.dt_min={sim.dt_min:g} min is {spin:,} steps, more "
             f"than the {MAX_STEPS:,} a run may have: shorten the spin-up (0 for none) or raise "
             "sim.dt_min")  # fmt: skip
    for ko in th.knockouts:
        _require(ko in KNOCKOUTS, "therapy.knockouts",
                 f"unknown knockout {ko!r}; valid: {', '.join(KNOCKOUTS)}")  # fmt: skip
    _finite(cfg.perturb.deplete_day, "perturb.deplete_day", "day",
            hint="no depletion: perturb.deplete_macrophages=false")  # fmt: skip
    h_eff = pt.sf_volume_ml / pt.synovial_area_cm2 * 1e4  # µm: V/A of the synovial fluid
    _require(rows["fluid"] * float(lat.dx_um) <= h_eff, "lattice.fluid_um",
             f"the fluid slab ({rows['fluid']} rows of {lat.dx_um:g} µm) is thicker than the "
             f"synovial fluid it stands for (patient.sf_volume_ml / patient.synovial_area_cm2 "
             f"= {h_eff:.4g} µm); thin it")  # fmt: skip
    fluid = rows["fluid"] * math.prod(int(s) for s in lat.shape[1:])
    n_msc, _ = msc_dose(cfg)
    if n_msc > fluid:
        _require(int(th.min_cells) <= fluid, "therapy.min_cells",
                 f"{th.min_cells} MSCs exceed the {fluid:,} fluid voxels of this lattice "
                 f"(one cell per voxel at most): at most {fluid}")  # fmt: skip
        max_dose = fluid * float(pt.synovial_area_cm2) / (float(th.adherence) * patch_area_cm2(lat))
        raise ConfigError(
            f"therapy.dose: {th.dose:g} cells per knee gives {n_msc:,} MSCs for the {fluid:,} "
            "fluid voxels of this lattice (one cell per voxel at most): with therapy.adherence="
            f"{th.adherence:g}, patient.synovial_area_cm2={pt.synovial_area_cm2:g} and this "
            f"lattice's area the dose can be at most {max_dose:.4g}"
        )

    # scenario numbers
    sc = cfg.scenario
    _check_nonnegative({k: v for k, v in sc.items() if k not in ("name", "mac_p0")}, "scenario")
    _require(-1 <= sc.mac_p0 <= 1, "scenario.mac_p0", f"must lie in [-1, 1], got {sc.mac_p0}")
    _require(len(sc.tcell_subsets) == 4 and abs(sum(sc.tcell_subsets) - 1) < 1e-6,
             "scenario.tcell_subsets",
             "must be 4 fractions (naive, Th1, Th17, Treg) summing to 1")  # fmt: skip
    for key in ("mac_density", "fls_lining_density", "fls_density", "tcell_density",
                "fls_a0", "chondrocyte_c0"):  # fmt: skip
        _require(sc[key] <= 1, f"scenario.{key}", f"must lie in [0, 1], got {sc[key]}")

    # memory
    (lattice_b, history_b), have = _memory_parts(cfg), available_bytes() if machine else math.inf
    need = BASE_BYTES + lattice_b + history_b
    _require(need < 0.8 * have, "lattice.shape" if lattice_b >= history_b else "sim.days",
             f"{list(lat.shape)} for {steps:,} steps needs an estimated {need / 2**30:.2f} GiB "
             f"({lattice_b / 2**30:.2f} GiB lattice and cells, {history_b / 2**30:.2f} GiB "
             f"metric history) but only {have / 2**30:.2f} GiB of memory is available; use a "
             "smaller shape or fewer steps")  # fmt: skip

    # biology: every declared parameter within its bounds
    check_biology(cfg.biology)

    # output
    out = cfg.output
    for key in ("snapshot_every_min", "checkpoint_every_min"):
        _require(out[key] > 0, f"output.{key}", f"must be > 0 minutes, got {out[key]}")
    if cfg.resume is not None:
        _require(Path(cfg.resume).is_file(), "resume", f"no such file: {cfg.resume}")

    # a GPU asked for but absent is a config error too (before any allocation)
    if cfg.backend.name == "cupy" and machine:
        from abm.backend import BackendError, get_backend

        try:
            get_backend("cupy")
        except BackendError as exc:
            raise ConfigError(f"backend: {exc}") from None

    if warn:
        for message in config_warnings(cfg):
            log.warning(message)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def config_warnings(cfg: Any) -> list[str]:
    """Valid but probably unintended settings of a validated config, one line each: an MSC
    injection or macrophage depletion day after the end of the run. (Warnings, not errors: a
    resume may extend ``sim.days`` past that day. Not checked for ``resume=``, whose run keeps
    the checkpoint's therapy.)"""
    if cfg.get("resume"):
        return []
    days, th, pt = float(cfg.sim.days), cfg.therapy, cfg.perturb
    out = []
    if th.name != "none" and th.dose > 0 and th.day > days:
        out.append(f"therapy.day={th.day:g} is after the end of the run (sim.days={days:g}): "
                   "no MSCs will be injected")  # fmt: skip
    if pt.deplete_macrophages and pt.deplete_day > days:
        out.append(f"perturb.deplete_day={pt.deplete_day:g} is after the end of the run "
                   f"(sim.days={days:g}): macrophages will not be depleted")  # fmt: skip
    return out
