"""Config: Hydra schemas, composition and validation (first stop of the data flow).

conf/*.yaml (+ overrides) -> Hydra composes against the dataclass schema registered here as
``base_config`` -> :func:`validate` checks values and the memory estimate -> the validated
DictConfig goes to :class:`abm.model.JointModel`. Every error is one :class:`ConfigError` line
naming the offending key and what would be valid, raised before anything is allocated.
"""

from __future__ import annotations

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

KNOCKOUTS = ("pge2", "tsg6", "ido", "tgfb", "il1ra")
SCENARIOS = ("healthy", "oa", "oa_mild")
THERAPIES = ("none", "msc")


@dataclass
class SimConf:
    days: float = 7.0
    dt_min: float = 2.0


@dataclass
class LatticeConf:
    shape: list[int] = field(default_factory=lambda: [193, 256])
    dx_um: float = 10.0
    dtype: str = "float32"
    bone_um: float = 100.0
    cartilage_um: float = 500.0
    fluid_um: float = 500.0
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
    sf_volume_ml: float = 2.0


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
class Config:
    seed: int = 0
    resume: str | None = None
    sim: SimConf = field(default_factory=SimConf)
    lattice: LatticeConf = field(default_factory=LatticeConf)
    backend: BackendConf = field(default_factory=BackendConf)
    scenario: ScenarioConf = field(default_factory=ScenarioConf)
    therapy: TherapyConf = field(default_factory=TherapyConf)
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


def compose(overrides: Iterable[str] = ()) -> DictConfig:
    """The validated config, as ``abm-run`` with the same overrides would see it.

    Raises :class:`ConfigError` (one line) for an unknown key, group option or bad value.
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
    return validate(cfg)


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


def estimate_bytes(cfg: Any) -> int:
    """Estimated peak bytes of the lattice arrays of a run (fields, solver buffers, masks, cells).

    Fields: F diffusing fields x (state, source, uptake, solver scratch x2, per-voxel D/decay
    factors x3) + 2 matrix fields, in the compute dtype; plus per-voxel masks and an upper bound
    of one cell per voxel of the cell arrays (~64 B per cell).
    """
    n_vox = math.prod(int(s) for s in cfg.lattice.shape)
    item = 8 if cfg.lattice.dtype == "float64" else 4
    fields = len(FIELD_NAMES) * 8 * item + 2 * item
    masks = 8 + 8  # compartment, occupancy, index maps
    cells = 0.3 * 64  # cells occupy at most ~30% of voxels
    return int(n_vox * (fields + masks + cells))


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


def validate(cfg: DictConfig) -> DictConfig:
    """Check a composed config; return it (read-only) or raise :class:`ConfigError`."""
    _require(cfg.backend.name in ("numpy", "cupy", "auto"), "backend",
             f"{cfg.backend.name!r} is not one of numpy, cupy, auto")  # fmt: skip
    _require(cfg.scenario.name in SCENARIOS, "scenario",
             f"{cfg.scenario.name!r} is not one of {', '.join(SCENARIOS)}")  # fmt: skip
    _require(cfg.therapy.name in THERAPIES, "therapy",
             f"{cfg.therapy.name!r} is not one of {', '.join(THERAPIES)}")  # fmt: skip

    # simulation
    _require(cfg.sim.days > 0, "sim.days", f"must be > 0, got {cfg.sim.days}")
    _require(cfg.sim.dt_min > 0, "sim.dt_min", f"must be > 0, got {cfg.sim.dt_min}")

    # therapy and interventions
    th = cfg.therapy
    _require(th.dose >= 0 and math.isfinite(th.dose), "therapy.dose",
             f"must be a number of cells per knee >= 0, got {th.dose}")  # fmt: skip
    _require(th.day >= 0, "therapy.day", f"must be a day >= 0, got {th.day}")
    _require(th.min_cells >= 0, "therapy.min_cells", f"must be >= 0, got {th.min_cells}")
    _require(th.sf_volume_ml > 0, "therapy.sf_volume_ml", f"must be > 0, got {th.sf_volume_ml}")
    for ko in th.knockouts:
        _require(ko in KNOCKOUTS, "therapy.knockouts",
                 f"unknown knockout {ko!r}; valid: {', '.join(KNOCKOUTS)}")  # fmt: skip
    _require(cfg.perturb.deplete_day >= 0, "perturb.deplete_day", "must be >= 0")

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

    # lattice geometry and memory
    lat = cfg.lattice
    _require(len(lat.shape) in (2, 3), "lattice.shape",
             f"must have 2 or 3 entries (2D or 3D), got {list(lat.shape)}")  # fmt: skip
    _require(all(int(s) >= 1 for s in lat.shape), "lattice.shape",
             f"entries must be >= 1, got {list(lat.shape)}")  # fmt: skip
    _require(lat.dx_um > 0, "lattice.dx_um", f"must be > 0, got {lat.dx_um}")
    _require(lat.dtype in ("float32", "float64"), "lattice.dtype",
             f"{lat.dtype!r} is not one of float32, float64")  # fmt: skip
    _require(0 <= lat.vessel_density <= 1, "lattice.vessel_density", "must lie in [0, 1]")
    rows = compartment_rows(lat)
    for name in ("cartilage", "fluid", "lining"):
        _require(rows[name] >= 1, f"lattice.{name}_um",
                 f"gives {rows[name]} rows at dx_um={lat.dx_um}; need >= 1")  # fmt: skip
    _require(rows["bone"] >= 0, "lattice.bone_um", "must be >= 0")
    _require(rows["sublining"] >= 1, "lattice.shape",
             f"shape[0]={lat.shape[0]} rows cannot hold bone {rows['bone']} + cartilage "
             f"{rows['cartilage']} + fluid {rows['fluid']} + lining {rows['lining']} rows "
             "plus >= 1 sublining row; enlarge shape[0] or thin the layers")  # fmt: skip
    need, have = estimate_bytes(cfg), available_bytes()
    _require(need < 0.8 * have, "lattice.shape",
             f"{list(lat.shape)} needs an estimated {need / 2**30:.2f} GiB of arrays but only "
             f"{have / 2**30:.2f} GiB of memory is available; use a smaller shape")  # fmt: skip

    # biology: every declared parameter within its bounds
    check_biology(cfg.biology)

    # output
    out = cfg.output
    _require(out.snapshot_every_min > 0, "output.snapshot_every_min", "must be > 0 minutes")
    _require(out.checkpoint_every_min > 0, "output.checkpoint_every_min", "must be > 0 minutes")
    if cfg.resume is not None:
        _require(Path(cfg.resume).is_file(), "resume", f"no such file: {cfg.resume}")

    # a GPU asked for but absent is a config error too (before any allocation)
    if cfg.backend.name == "cupy":
        from abm.backend import BackendError, get_backend

        try:
            get_backend("cupy")
        except BackendError as exc:
            raise ConfigError(f"backend: {exc}") from None

    OmegaConf.set_readonly(cfg, True)
    return cfg
