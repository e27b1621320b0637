"""Typed biology parameters: every parameter declared once, in code, with value, unit, source
and a plausible range (config stage of the data flow).

Declarations are frozen dataclasses whose fields carry metadata (:func:`param`, :func:`table`):
the shared ones here (diffusing fields, matrix, Hill exponent, fluid clearance), each cell
type's in its own module (``abm/cells/<type>.py``, class ``Params``). From them:

- :func:`biology_schema` derives the (mutable) dataclass that Hydra composes ``biology.*``
  overrides against, so a value of the wrong type names its key before any work;
- :func:`check_biology` checks every value against its hard bounds (one line naming the key,
  the expected type, unit and range);
- :func:`load_biology` turns the validated config into the frozen :class:`Biology` the model
  reads in its step loop (plain attribute reads, no DictConfig);
- :func:`parameter_rows` / :func:`parameters_md` write ``docs/parameters.md``
  (``python -m abm.params > docs/parameters.md``); the plausible ranges are what sensitivity
  analysis and calibration sample.

Source tags: ``[S]`` read in the named source, ``[R]`` recalled/unverified, ``[D]`` derived,
``calibrated`` (set to meet the validation targets, docs/validation.md), ``assumed`` (no
source; a plausible value). Sources are listed in docs/sources.md.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, make_dataclass
from typing import Any, get_type_hints

from abm.errors import ConfigError

FIELD_NAMES = (
    "IL1b", "TNF", "IFNg", "IL6", "IL17", "IL10", "TGFb",
    "PGE2", "TSG6", "KYN", "IL1RA", "CCL2", "PROT",
)  # fmt: skip
MATRIX_FIELDS = ("AGG", "COL2")
NONNEG = (0.0, math.inf)  # default hard bounds: a finite number >= 0
FRACTION = (0.0, 1.0)
HILL_K_BOUNDS = (1e-12, math.inf)  # a Hill constant (field units): > 0
DEFAULT_SPREAD = 10.0  # plausible range of a parameter with no better knowledge: value ÷/× 10


def param(
    value: Any,
    unit: str,
    source: str,
    *,
    plausible: tuple[float, float] | str | None = None,
    bounds: tuple[float, float] = NONNEG,
    doc: str = "",
) -> Any:
    """A declared scalar: ``value`` in ``unit``; ``source`` = tag + note; ``plausible`` range
    (default value ÷/× 10; ``"fixed"`` for a known property); ``bounds`` = hard limits that
    validation enforces."""
    meta = {"unit": unit, "source": source, "plausible": plausible, "bounds": bounds, "doc": doc}
    return field(default=value, metadata=meta)


def table(
    values: Mapping[str, float],
    unit: str,
    source: str,
    *,
    doc: str = "",
    keys: Any = FIELD_NAMES,
    plausible: Mapping[str, tuple[float, float]] | None = None,
) -> Any:
    """A declared name -> value table (e.g. secretion rates per field); each entry is a
    parameter with ``unit`` and bounds [0, inf), plausible value ÷/× 10 unless ``plausible``
    names its range (e.g. a calibrated entry keeps the prior it was calibrated in); keys from
    ``keys``."""
    meta = {"unit": unit, "source": source, "plausible": "x", "bounds": NONNEG, "doc": doc,
            "keys": tuple(keys), "plausible_of": dict(plausible or {})}  # fmt: skip
    frozen = dict(values)
    return field(default_factory=lambda: dict(frozen), metadata=meta)


def group(factory: Any, source: str = "", doc: str = "") -> Any:
    """A nested group of parameters (a declaration dataclass)."""
    return field(default_factory=factory, metadata={"source": source, "doc": doc})


# ------------------------------------------------------------------ shared declarations
@dataclass(frozen=True)
class FieldParams:
    """Transport and sensing of one diffusing field."""

    D_fluid: float = param(1500.0, "µm²/min", "[R]", doc="diffusivity in fluid")
    D_synovium: float = param(1500.0, "µm²/min", "[R]", doc="diffusivity in the synovium")
    D_cartilage: float = param(600.0, "µm²/min", "[R]", doc="diffusivity in cartilage")
    decay: float = param(0.02, "1/min", "[R]", doc="first-order decay")
    K: float = param(1.0, "conc", "[R]", bounds=(1e-12, math.inf),
                     doc="Hill constant for sensing (field units)")  # fmt: skip
    mw_kda: float = param(17.0, "kDa", "[R]", bounds=(1e-6, math.inf), plausible="fixed",
                          doc="molecular weight: secretion -> concentration")  # fmt: skip
    units: str = param("ng/mL", "-", "convention", bounds=(0, 0), doc="ng/mL or µM")


def _f(D: float, Dc: float, decay: float, K: float, mw: float, units: str = "ng/mL") -> Any:
    return FieldParams(D, D, Dc, decay, K, mw, units)


def _fieldp(value: FieldParams, source: str) -> Any:
    return field(default_factory=lambda: value, metadata={"source": source, "doc": ""})


@dataclass(frozen=True)
class Fields:
    """The 13 diffusing fields (``fields["IL1b"]`` or ``fields.IL1b``)."""

    IL1b: FieldParams = _fieldp(
        _f(1500, 600, 0.02, 0.005, 17.0), "D, decay [R]; K calibrated near SF levels (Sohn 2012)"
    )
    TNF: FieldParams = _fieldp(_f(1000, 400, 0.03, 0.01, 51.0), "[R]; trimer 51 kDa")
    IFNg: FieldParams = _fieldp(_f(1500, 600, 0.02, 0.02, 17.0), "[R]")
    IL6: FieldParams = _fieldp(_f(1500, 600, 0.02, 1.0, 21.0),
                               "[R]; K near SF IL-6 (Sohn 2012)")  # fmt: skip
    IL17: FieldParams = _fieldp(_f(1500, 600, 0.02, 0.02, 35.0), "[R] homodimer")
    IL10: FieldParams = _fieldp(_f(1500, 600, 0.02, 0.05, 37.0), "[R] homodimer")
    TGFb: FieldParams = _fieldp(_f(300, 150, 0.005, 1.0, 25.0),
                                "[R] binds matrix: slow; K calibrated (C3)")  # fmt: skip
    PGE2: FieldParams = _fieldp(_f(10000, 5000, 0.05, 2.0, 0.352),
                                "[R] small lipid; K ~6 nM calibrated: FLS PGE2 alone must not "
                                "suppress T cells (C3)")  # fmt: skip
    TSG6: FieldParams = _fieldp(_f(1000, 400, 0.01, 0.5, 35.0), "[R]")
    KYN: FieldParams = _fieldp(_f(15000, 8000, 0.005, 2.0, 0.208, "µM"), "[R]; K in µM")
    IL1RA: FieldParams = _fieldp(_f(1500, 600, 0.02, 1.0, 17.0), "[R]; K = K_ra of IL1_eff")
    CCL2: FieldParams = _fieldp(_f(2000, 800, 0.02, 0.1, 11.0),
                                "[R]; K near SF CCL2 (Sohn 2012)")  # fmt: skip
    PROT: FieldParams = _fieldp(_f(300, 300, 0.002, 1.0, 60.0), "[R] lumped MMP-13/ADAMTS-5")

    def __getitem__(self, name: str) -> FieldParams:
        return getattr(self, name)


@dataclass(frozen=True)
class MatrixParams:
    """Cartilage matrix: aggrecan (AGG) and collagen II (COL2), healthy = 1 (abm/matrix.py).

    Calibration reference: PROT_ref = 8.6 ng/mL, the cartilage PROT of fully catabolic
    chondrocytes (c = 1, as under explant IL-1) with no outflow: 0.3 molecules/cell/s x
    0.0996 x 60 kDa ng/mL/min per (molecule/s) in a 10-µm voxel x 0.0096 cells/voxel
    / decay 0.002/min."""

    agg_synthesis: float = param(
        3.9e-7, "1/min",
        "[R] Maroudas 1998: aggrecan core protein t½ ~3.4 years in adult human cartilage: "
        "ln 2 / (3.4 × 525,960 min) = 3.9e-7/min; explant synthesis (young bovine, ~1%/day "
        "= 7e-6/min) is the upper end",
        plausible=(1e-7, 1e-5), doc="s: synthesis at full drive (f = 1)")  # fmt: skip
    agg_degradation: float = param(
        2.0e-6, "1/min per ng/mL PROT",
        "[R] IL-1-treated cartilage explants release ~3% of their GAG per day vs ~0.5%/day in "
        "controls (data of Eskelinen 2020 PLoS Comput Biol 16:e1007998, Grodzinsky lab): "
        "(0.03 - 0.005)/day / 1440 min/day / PROT_ref 8.6 ng/mL = 2.0e-6; in vivo, where "
        "chondrocytes are far from c = 1, loss is slower (OA cartilage thins a few %/year [R])",
        plausible=(5e-7, 1e-5), doc="k_agg")  # fmt: skip
    col2_synthesis: float = param(0.0, "1/min", "[S] Heinemeier 2016: barely resynthesised",
                                  plausible=(0.0, 1e-5))  # fmt: skip
    col2_degradation: float = param(
        8.1e-6, "1/min per ng/mL PROT",
        "[R] once proteoglycan is gone, IL-1 + OSM explants release most collagen within ~2 "
        "weeks (Cawston 1998): ~10%/day / 1440 / PROT_ref 8.6 ng/mL = 8.1e-6; only where "
        "AGG < agg_threshold",
        plausible=(1e-6, 5e-5), doc="k_col")  # fmt: skip
    agg_threshold: float = param(0.3, "1 (AGG)", "[S] Karsdal 2008: aggrecan goes first",
                                 plausible=(0.1, 0.6), bounds=FRACTION)  # fmt: skip


@dataclass(frozen=True)
class TransportParams:
    """Joint-scale transport: the well-mixed synovial fluid and the sinks of the synovium
    (abm/fluid.py, abm/tissue.py)."""

    vessel_clearance: float = param(
        0.01,
        "1/min",
        "[D] k = P·S/V: P ~ 1e-7 cm/s for 20-60 kDa proteins across fenestrated synovial "
        "capillaries [R] (small solutes ~1e-5 cm/s: k ~ 1/min), S/V = 0.22 µm⁻¹ for one "
        "7-µm capillary through a 10-µm voxel",
        plausible=(0.001, 1.0),
        doc="extra decay at vessel voxels (uptake into blood/lymph)",
    )
    sublining_clearance: float = param(
        3e-4,
        "1/min",
        "[D] lymph flow / interstitial volume, whole body ~3 L/day over ~11 L [R] (Guyton); "
        "synovium likely higher",
        plausible=(1e-4, 3e-3),
        doc="extra decay everywhere in the sublining (lymphatic drainage)",
    )


@dataclass(frozen=True)
class DriveParams:
    """The disease drive on macrophages and FLS: baseline (scenario x patient severity) +
    plasma-protein/DAMP leakage + cartilage fragments (abm/drive.py)."""

    leak_gain: float = param(
        0.218,
        "1",
        "calibrated (posterior median, run joint+emulator-20261202-002924-f96c98a8); 95% interval "
        "0.021-0.48; hand-set before 0.35 (TLR4 ligands (plasma proteins) in OA SF drive "
        "macrophage TNF, Sohn 2012 Arthritis Res Ther 14:R7 [R])",
        plausible=(0.0, 2.0),
        doc="drive per unit synovitis S x effusion E",
    )
    fragment_gain: float = param(
        3.0,
        "1 per healthy-matrix fraction",
        "assumed; cartilage fragments (fibronectin, COMP, aggrecan) are TLR/DAMP ligands [R]",
        plausible=(0.0, 30.0),
        doc="drive per unit cartilage-fragment pool F",
    )
    fragment_yield: float = param(
        1.0,
        "1",
        "assumed: every degraded unit of matrix is released as fragments",
        plausible=(0.1, 1.0),
        bounds=FRACTION,
        doc="q in dF/dt = q D - F/tau_F",
    )
    fragment_lifetime_days: float = param(
        1.0,
        "days",
        "assumed; SF proteins clear by lymphatics in hours (fluid_clearance) to days [R]",
        plausible=(0.1, 7.0),
        bounds=(1e-6, math.inf),
        doc="tau_F: clearance time of the fragment pool",
    )
    healthy_sf_ml: float = param(
        7.0,
        "mL",
        "assumed (biology v2 review: healthy knee 7 mL)",
        plausible=(1.0, 10.0),
        bounds=(1e-6, math.inf),
        doc="effusion E = patient.sf_volume_ml / healthy_sf_ml",
    )
    max_effusion: float = param(
        3.0,
        "1",
        "assumed: leakage saturates in large effusions",
        plausible=(1.5, 10.0),
        bounds=(1e-6, math.inf),
        doc="upper bound of E",
    )


@dataclass(frozen=True)
class ReadoutParams:
    """The clinical readouts synovitis_score and pain_index (abm/readouts.py): model constructs
    mapped onto the Krenn synovitis score and a 0-100 pain scale, not validated clinical scales."""

    healthy_lining_cells: float = param(
        2.0,
        "cells",
        "[R] Krenn 2006 Histopathology 49:358: normal lining = 1-2 cell layers",
        plausible="fixed",
        doc="lining layers scoring 0; each further layer adds 1 (max 3)",
    )
    stroma_healthy: float = param(
        0.04,
        "FLS/voxel",
        "assumed: the healthy scenario's sublining FLS density",
        plausible=(0.01, 0.1),
        doc="sublining FLS density scoring 0 (stromal cellularity)",
    )
    stroma_per_point: float = param(
        0.04,
        "FLS/voxel",
        "assumed: untreated chronic OA (~0.11 sublining FLS/voxel after spin-up) scores ~1.75, "
        "so the sum sits at the low-grade synovitis of OA (Krenn 2-4 [R]) with room both ways",
        plausible=(0.005, 0.1),
        bounds=(1e-9, math.inf),
        doc="rise of sublining FLS density per score point",
    )
    infiltrate_healthy: float = param(
        0.002,
        "cells/voxel",
        "assumed: the healthy scenario's T-cell density",
        plausible=(0.0, 0.02),
        doc="inflammatory infiltrate density scoring 0",
    )
    infiltrate_per_point: float = param(
        0.04,
        "cells/voxel",
        "assumed: untreated chronic OA (~0.075 pro-inflammatory macrophages + T cells per "
        "synovium voxel after spin-up) scores ~1.8 (low-grade OA synovitis, Krenn 2-4 [R])",
        plausible=(0.005, 0.1),
        bounds=(1e-9, math.inf),
        doc="rise of (macrophages with p > 0 + T cells) per synovium voxel per score point",
    )
    K_pge2: float = param(
        2.0,
        "ng/mL",
        "assumed: = the sensing K of PGE2 (Jang 2020 J Neuroinflammation 17:30: "
        "PGE2 is pro-nociceptive)",
        bounds=(1e-12, math.inf),
        doc="half-saturating SF PGE2",
    )
    K_tnf: float = param(
        0.01,
        "ng/mL",
        "assumed: = the sensing K of TNF (Orita 2011 BMC Musculoskelet Disord "
        "12:144: SF TNF correlates with WOMAC pain)",
        bounds=(1e-12, math.inf),
        doc="half-saturating SF TNF",
    )
    K_il6: float = param(
        1.0,
        "ng/mL",
        "assumed: = the sensing K of IL-6 (near SF IL-6, Sohn 2012)",
        bounds=(1e-12, math.inf),
        doc="half-saturating SF IL-6",
    )
    w_pge2: float = param(0.3, "1", "assumed", plausible=(0.0, 1.0), doc="weight of SF PGE2")
    w_tnf: float = param(0.2, "1", "assumed", plausible=(0.0, 1.0), doc="weight of SF TNF")
    w_il6: float = param(0.2, "1", "assumed", plausible=(0.0, 1.0), doc="weight of SF IL-6")
    w_synovitis: float = param(
        0.3, "1", "assumed", plausible=(0.0, 1.0), doc="weight of synovitis_score / 9"
    )


SHARED = {
    "hill_n": param(1.0, "1", "assumed: n = 1-2 for cytokine responses", plausible=(1.0, 2.0),
                    bounds=(1e-9, 8.0), doc="Hill exponent of every sensed field"),
    "fluid_clearance": param(0.005, "1/min", "[R] protein t½ 1-4 h in the joint (Evans, "
                             "Kraus & Setton 2014); albumin CL 0.0053 L/h (Owen 1994) over "
                             "10-20 mL: 0.0044-0.0088/min",
                             plausible=(0.0029, 0.0116),
                             doc="clearance of the well-mixed synovial fluid (every field)"),
    "fields": group(Fields, doc="diffusing fields"),
    "matrix": group(MatrixParams, doc="cartilage matrix"),
    "transport": group(TransportParams, doc="joint-scale transport"),
    "drive": group(DriveParams, doc="disease drive"),
    "readouts": group(ReadoutParams, doc="clinical readouts (abm/readouts.py)"),
}  # fmt: skip


# ------------------------------------------------------------------ Biology (frozen, built)
class Biology:
    """The frozen biology parameters of a run: ``bio.hill_n``, ``bio.fields["IL1b"].K``,
    ``bio.matrix.agg_threshold``, and one group per cell type (``bio.macrophage.death_rate``)."""

    __slots__ = ("_groups", "fields", "fluid_clearance", "hill_n", "matrix")

    def __init__(self, hill_n: float, fluid_clearance: float, fields: Fields,
                 matrix: MatrixParams, groups: Mapping[str, Any]) -> None:  # fmt: skip
        object.__setattr__(self, "hill_n", float(hill_n))
        object.__setattr__(self, "fluid_clearance", float(fluid_clearance))
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "_groups", dict(groups))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._groups[name]
        except KeyError:
            raise AttributeError(f"biology has no parameter group {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to biology.{name}")

    def __repr__(self) -> str:
        return f"Biology(groups={sorted(self._groups)})"


def declarations() -> dict[str, Any]:
    """Name -> field declaration of ``biology``: the shared ones, then one group per
    registered cell type (its ``Params`` class)."""
    from abm.cells.registry import registry

    out = dict(SHARED)
    for ct in registry():
        out[ct.name] = group(ct.Params, doc=ct.__doc__.splitlines()[0] if ct.__doc__ else "")
    return out


# ------------------------------------------------------------------ Hydra schema
_MUTABLE: dict[type, type] = {}


def mutable(cls: type) -> type:
    """A non-frozen mirror of declaration dataclass ``cls`` (Hydra cannot override frozen
    ones), with the same fields, types and defaults."""
    if cls in _MUTABLE:
        return _MUTABLE[cls]
    hints = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    spec = []
    for f in fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and is_dataclass(tp):
            sub = mutable(tp)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            spec.append((f.name, sub, field(default_factory=_converter(sub, default))))
        elif f.default_factory is not MISSING:
            spec.append((f.name, tp, field(default_factory=f.default_factory)))
        else:
            spec.append((f.name, tp, field(default=f.default)))
    out = make_dataclass(f"{cls.__name__}Conf", spec)
    out.__module__ = __name__
    _MUTABLE[cls] = out
    return out


def _converter(sub: type, default: Any) -> Any:
    def make() -> Any:
        return sub(**{f.name: _plain(getattr(default, f.name)) for f in fields(default)})

    return make


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return _converter(mutable(type(value)), value)()
    if isinstance(value, dict):
        return dict(value)
    return value


def biology_schema() -> type:
    """The dataclass Hydra composes ``biology`` against (shared groups + each cell type)."""
    spec = []
    for name, decl in declarations().items():
        if decl.default_factory is not MISSING:  # a group
            value = decl.default_factory()
            sub = mutable(type(value))
            spec.append((name, sub, field(default_factory=_converter(sub, value))))
        else:
            spec.append((name, float, field(default=decl.default)))
    return make_dataclass("BiologyConf", spec)


# ------------------------------------------------------------------ walking declarations
@dataclass(frozen=True)
class Declared:
    """One declared parameter: dotted key, default value, unit, source, ranges, doc."""

    key: str
    value: Any
    unit: str
    source: str
    plausible: tuple[float, float] | None
    bounds: tuple[float, float]
    doc: str
    keys: tuple[str, ...] | None = None  # allowed keys of a table entry's parent


def _plausible(value: Any, meta: Mapping[str, Any]) -> tuple[float, float] | None:
    """The declared plausible range, or value ÷/× :data:`DEFAULT_SPREAD` for a number."""
    if meta.get("plausible") == "fixed":  # a known property, not sampled
        return (value, value)
    if meta.get("plausible") is not None:
        return meta["plausible"]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (value / DEFAULT_SPREAD, value * DEFAULT_SPREAD)
    return None


def _walk(obj: Any, prefix: str, source: str) -> Iterator[Declared]:
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}"
        meta = f.metadata
        if is_dataclass(value):
            yield from _walk(value, key, meta.get("source", source) or source)
        elif isinstance(value, dict) and "keys" in meta:
            if f.name == "K":  # a type's Hill constants (abm.cells.base.Sense): K > 0
                meta = {**meta, "bounds": HILL_K_BOUNDS}
            yield from _table_rows(key, value, meta)
        else:
            src = meta.get("source", "")
            if source and (not src or src == "[R]"):
                src = source  # a field's own note covers its entries
            yield Declared(key, value, meta.get("unit", ""), src, _plausible(value, meta),
                           meta.get("bounds", NONNEG), meta.get("doc", ""))  # fmt: skip


def _table_rows(key: str, table_: dict, meta: Mapping[str, Any]) -> Iterator[Declared]:
    for name, v in table_.items():
        if isinstance(v, dict):
            yield from _table_rows(f"{key}.{name}", v, meta)
            continue
        plaus = meta.get("plausible_of", {}).get(name) or _plausible(v, {})
        yield Declared(f"{key}.{name}", v, meta["unit"], meta["source"], plaus,
                       meta["bounds"], meta.get("doc", ""), meta["keys"])  # fmt: skip


def parameter_rows(bio: Biology | None = None) -> list[Declared]:
    """Every declared biology parameter (defaults, or the values of ``bio``), in order."""
    bio = bio or default_biology()
    rows: list[Declared] = []
    for name, decl in declarations().items():
        if decl.default_factory is not MISSING:
            yield_from = _walk(getattr(bio, name), f"biology.{name}", "")
            rows.extend(yield_from)
        else:
            m = decl.metadata
            value = getattr(bio, name)
            rows.append(Declared(f"biology.{name}", value, m["unit"], m["source"],
                                 _plausible(value, m), m["bounds"], m["doc"]))  # fmt: skip
    return rows


# ------------------------------------------------------------------ validation and loading
def _describe(d: Declared) -> str:
    lo, hi = d.bounds
    rng = f">= {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}]"
    extra = [d.unit] if d.unit not in ("", "1", "-", "conc") else []
    if d.plausible:
        extra.append(f"plausible {d.plausible[0]:g} to {d.plausible[1]:g}")
    return f"expected a number {rng}" + (f" ({'; '.join(extra)})" if extra else "")


def describe(key: str) -> str | None:
    """What a declared biology key expects (e.g. for a value of the wrong type), or None."""
    d = _declared().get(key)
    if d is None:
        return None
    return "expected 'ng/mL' or 'µM'" if key.endswith(".units") else _describe(d)


def _declared() -> dict[str, Declared]:
    return {d.key: d for d in parameter_rows()}


def check_biology(node: Any) -> None:
    """Raise :class:`ConfigError` (one line: key, expected type/range, value) for any value of
    the composed ``biology`` node outside its declared bounds or with an unknown table key."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    declared = _declared()
    for d in parameter_rows(_build(node)):
        v = d.value
        if d.key.endswith(".units"):
            if v not in ("ng/mL", "µM"):
                raise ConfigError(f"{d.key}: expected 'ng/mL' or 'µM', got {v!r}")
            continue
        if d.keys is not None and d.key.rsplit(".", 1)[1] not in d.keys:
            raise ConfigError(f"{d.key}: unknown name; valid: {', '.join(d.keys)}")
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        lo, hi = d.bounds
        if not ok or not lo <= v <= hi:
            raise ConfigError(f"{d.key}: {_describe(declared.get(d.key, d))}, got {v!r}")


def _build(container: Mapping[str, Any]) -> Biology:
    decls = declarations()
    groups: dict[str, Any] = {}
    for name, decl in decls.items():
        if decl.default_factory is not MISSING:
            groups[name] = _instance(type(decl.default_factory()), container.get(name, {}))
    return Biology(container.get("hill_n", SHARED["hill_n"].default),
                   container.get("fluid_clearance", SHARED["fluid_clearance"].default),
                   groups.pop("fields"), groups.pop("matrix"), groups)  # fmt: skip


def _instance(cls: type, values: Mapping[str, Any]) -> Any:
    hints = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    kwargs = {}
    for f in fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        tp = hints[f.name]
        if isinstance(tp, type) and is_dataclass(tp):
            v = _instance(tp, v)
        elif isinstance(v, dict):
            v = {k: (dict(x) if isinstance(x, dict) else x) for k, x in v.items()}
        kwargs[f.name] = v
    return cls(**kwargs)


def load_biology(node: Any) -> Biology:
    """The frozen :class:`Biology` of a composed (and validated) ``biology`` config node."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    return _build(node or {})


def default_biology() -> Biology:
    """The declared defaults."""
    return _build({})


# ------------------------------------------------------------------ docs/parameters.md
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _tag(source: str) -> str:
    s = source.lower()
    tags = [t for t in ("[S]", "[R]", "[D]") if t.lower() in s]
    tags += [t for t in ("calibrated", "assumed") if t in s]
    return ", ".join(tags) or "-"


def parameters_md() -> str:
    """docs/parameters.md: every declared biology parameter (value, unit, plausible range,
    hard bounds, source), generated from the declarations."""
    from abm.cells.registry import registry

    lines = [
        "# Parameters",
        "",
        "Generated from the declarations in code (`abm/params.py` for the shared groups,",
        "`abm/cells/<type>.py` class `Params` for each cell type) by",
        "`python -m abm.params > docs/parameters.md`; do not edit by hand. A test regenerates",
        "this page and compares. Override any value with Hydra (`abm-run",
        "biology.macrophage.death_rate=4e-5`); a value outside its *bounds* stops the run",
        "with one line naming the key. The *plausible* range is what sensitivity analysis and",
        "calibration sample; where nothing better is known it is the value ÷/× 10.",
        "",
        "Tags: **[S]** read in the named source, **[R]** recalled/unverified, **[D]** derived,",
        "**calibrated** (set to meet the validation targets, `docs/validation.md`), **assumed**",
        "(no source; a plausible value). Sources: `docs/sources.md`.",
        "",
        "Secretion is declared in molecules/cell/s and turned into a source in the cell's own",
        "voxel (volume V = dx³; a 2D lattice is a slab one voxel thick): ng/mL fields",
        "`S [ng/mL/min] = r · 60 / N_A · MW[kDa] · 1e12 / V[mL]` (at dx = 10 µm, S = r · 0.0996",
        "· MW ng/mL/min); KYN (µM) `S [µM/min] = r · 60 / N_A / (V[mL] · 1e-3) · 1e6`.",
        "",
    ]
    rows = parameter_rows()
    groups: dict[str, list[Declared]] = {}
    for d in rows:
        parts = d.key.split(".")
        head = parts[1] if len(parts) > 2 else "shared"
        groups.setdefault(head, []).append(d)
    titles = {
        "shared": "Shared",
        "fields": "Diffusing fields",
        "matrix": "Cartilage matrix",
        "transport": "Joint-scale transport",
        "drive": "Disease drive",
    }
    for ct in registry():
        titles[ct.name] = f"{ct.title} (`biology.{ct.name}`)"
    lines += _fields_table(groups.pop("fields"))
    for head, ds in groups.items():
        lines += [f"## {titles.get(head, head)}", ""]
        lines += ["| key | value | unit | plausible | bounds | source / note | tag |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        last = ""
        for d in ds:
            if d.key.endswith(".units"):
                continue
            unit = d.unit
            if d.unit == "conc":
                fname = d.key.split(".")[2]
                unit = getattr(default_biology().fields, fname).units
            plaus = f"{_fmt(d.plausible[0])}–{_fmt(d.plausible[1])}" if d.plausible else "-"
            lo, hi = d.bounds
            bnd = f"≥ {_fmt(lo)}" if hi == math.inf else f"[{_fmt(lo)}, {_fmt(hi)}]"
            note = d.source + (f" — {d.doc}" if d.doc else "")
            note = note.replace("|", "\\|")
            note, last = ("〃" if note == last else note), note
            lines.append(f"| `{d.key}` | {_fmt(d.value)} | {unit} | {plaus} | {bnd} | {note} "
                         f"| {_tag(d.source)} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _fields_table(rows: list[Declared]) -> list[str]:
    """One row per diffusing field (its six parameters side by side)."""
    by_field: dict[str, dict[str, Declared]] = {}
    for d in rows:
        _, _, name, attr = d.key.split(".")
        by_field.setdefault(name, {})[attr] = d
    cols = ("D_fluid", "D_synovium", "D_cartilage", "decay", "K", "mw_kda")
    out = [
        "## Diffusing fields (`biology.fields.<NAME>.<key>`)",
        "",
        "D in µm²/min (bounds ≥ 0; D = 0 is a wall), decay in 1/min (≥ 0), K (Hill constant of",
        "sensing) in the field's units (> 0), MW in kDa (a known property, not sampled). The",
        "plausible range of D, decay and K is the value ÷/× 10.",
        "",
        "| field | units | " + " | ".join(cols) + " | source / note | tag |",
        "|---|---|" + "---|" * len(cols) + "---|---|",
    ]
    for name, ds in by_field.items():
        vals = " | ".join(_fmt(ds[c].value) for c in cols)
        src = ds["K"].source.replace("|", "\\|")
        out.append(f"| {name} | {ds['units'].value} | {vals} | {src} | {_tag(src)} |")
    return [*out, ""]


if __name__ == "__main__":
    sys.stdout.write(parameters_md())
