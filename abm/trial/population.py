"""Virtual trial, config stage: the trial's declarations, the virtual population and its designs.

Data flow: ``conf/trial/default.yaml`` (or ``--config``) + ``trial.KEY=VALUE`` overrides ->
:func:`load_spec` (OmegaConf; every key checked, one :class:`TrialError` line naming it) ->
:func:`sample_population` (one row per virtual patient: the sampled feature values, a Latin
hypercube or a seeded numpy Generator, drawn through each declared distribution's inverse CDF,
so every value lies in its declared [low, high]) -> :func:`baseline_design` (one row per
patient and seed: the untreated baseline run) and :func:`arms_design` (one row per patient, arm
and seed) -> written by ``abm-trial`` as design CSVs (:mod:`abm.sweep.design`: config values
only) with a map of each row's patient, arm and seed beside them. The runs
(``abm-run -m design.file=... design.row=...``) and :mod:`abm.trial.analysis` read them back.

Every run of one patient and seed shares its untreated spin-up (abm/spinup.py keys it by seed,
scenario, patient and biology without ``biology.msc``), so the arms are paired.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.errors import ConfigError

DISTS = ("uniform", "loguniform", "normal", "lognormal")
SAMPLERS = ("lhs", "random")
THERAPIES = ("none", "msc", "il1ra_bolus")
GROUPS = ("patient", "product", "procedure")
ROOT = "trial"
PG_PER_NG = 1000.0
# keys every design row sets besides the features (the arm's therapy)
ARM_KEYS = ("therapy.name", "therapy.dose", "therapy.prelicensed", "therapy.dose_mg")
MAP_COLUMNS = ("row", "patient", "arm", "seed")


class TrialError(ConfigError):
    """A bad trial declaration: one line naming the ``trial.*`` key and what is valid."""


@dataclass(frozen=True)
class Feature:
    """One sampled patient/product/procedure feature: the config ``key`` it sets, its
    distribution and the interval [low, high] every sampled value lies in."""

    name: str
    key: str
    group: str
    dist: str
    low: float
    high: float
    median: float | None = None  # lognormal
    sigma_log: float | None = None  # lognormal: SD of ln(value)
    mean: float | None = None  # normal
    sd: float | None = None  # normal
    unit: str = ""
    source: str = ""

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Values of the (truncated) distribution at quantiles ``u`` in [0, 1): the inverse
        CDF restricted to [low, high]."""
        from scipy.stats import norm

        u = np.asarray(u, dtype=float)
        if self.dist == "uniform":
            v = self.low + u * (self.high - self.low)
        elif self.dist == "loguniform":
            a, b = math.log(self.low), math.log(self.high)
            v = np.exp(a + u * (b - a))
        else:
            if self.dist == "normal":
                loc, scale, lo, hi = self.mean, self.sd, self.low, self.high
            else:  # lognormal: normal in ln x
                loc, scale = math.log(self.median), self.sigma_log
                lo, hi = math.log(self.low), math.log(self.high)
            f_lo, f_hi = norm.cdf((lo - loc) / scale), norm.cdf((hi - loc) / scale)
            z = norm.ppf(f_lo + u * (f_hi - f_lo))
            v = loc + scale * z
            if self.dist == "lognormal":
                v = np.exp(v)
        v = np.array([float(f"{a:.12g}") for a in np.atleast_1d(v)])  # readable, exact CSV
        return np.clip(v, self.low, self.high)

    def shape(self) -> str:
        """The distribution in words, e.g. ``log-uniform on [2, 25]``."""
        if self.dist == "normal":
            text = f"normal(mean {self.mean:g}, sd {self.sd:g}), truncated"
        elif self.dist == "lognormal":
            text = f"lognormal(median {self.median:g}, sigma_log {self.sigma_log:g}), truncated"
        else:
            text = "log-uniform" if self.dist == "loguniform" else "uniform"
        return f"{text} on [{self.low:g}, {self.high:g}]"

    def describe(self) -> str:
        return f"{self.key}: {self.shape()}" + (f" ({self.unit})" if self.unit else "")


@dataclass(frozen=True)
class Arm:
    """One arm: what every accepted patient is given (config values of the therapy)."""

    name: str
    therapy: str
    dose: float = 0.0  # MSCs per knee
    dose_per_ml: float | None = None  # MSCs per mL of the patient's synovial fluid
    prelicensed: bool = False
    dose_mg: float = 0.0  # mg of IL-1Ra protein

    def values(self, sf_volume_ml: float) -> dict[str, Any]:
        """The arm's config values for a patient with ``sf_volume_ml`` mL of synovial fluid."""
        dose = self.dose if self.dose_per_ml is None else self.dose_per_ml * sf_volume_ml
        if self.therapy != "msc":
            dose = 0.0
        return {
            "therapy.name": self.therapy,
            "therapy.dose": float(f"{dose:.12g}"),
            "therapy.prelicensed": bool(self.prelicensed and self.therapy == "msc"),
            "therapy.dose_mg": float(self.dose_mg if self.therapy == "il1ra_bolus" else 0.0),
        }

    @property
    def label(self) -> str:
        if self.therapy == "none":
            return "untreated"
        if self.therapy == "il1ra_bolus":
            return f"IL-1Ra {self.dose_mg:g} mg"
        dose = f"{self.dose_per_ml:.3g} MSC/mL SF" if self.dose_per_ml else f"{self.dose:.3g} MSC"
        return dose + (", IFN-γ primed" if self.prelicensed else "")


@dataclass(frozen=True)
class Readout:
    """One readout of the plausibility filter: accepted within ``tolerance_log10`` beyond the
    cohort range [low, high] (pg/mL)."""

    metric: str
    cohort_low_pg_ml: float
    cohort_high_pg_ml: float
    enforce: bool

    def band(self, tolerance_log10: float) -> tuple[float, float]:
        """The accepted interval in pg/mL."""
        f = 10.0**tolerance_log10
        return self.cohort_low_pg_ml / f, self.cohort_high_pg_ml * f


@dataclass(frozen=True)
class Responder:
    """The responder criterion (fixed before running)."""

    day: float
    window_days: float
    pain_metric: str
    pain_max_rel_change: float
    synovitis_metric: str
    synovitis_max_abs_change: float


@dataclass(frozen=True)
class Benefit:
    """A continuous benefit read at the responder day against the same patient and seed
    untreated: ``change`` relative ((treated - untreated) / untreated) or absolute (treated -
    untreated); ``better`` says which sign is a benefit (lower: a fall, higher: a rise)."""

    metric: str
    change: str
    better: str

    @property
    def column(self) -> str:
        """Its column in the outcome tables: ``<metric>_rel_change`` or ``<metric>_change``."""
        return f"{self.metric}_rel_change" if self.change == "relative" else f"{self.metric}_change"


@dataclass(frozen=True)
class TrialSpec:
    """A checked trial declaration (``conf/trial/default.yaml``)."""

    size: int
    seeds: int
    seed_base: int
    sample_seed: int
    sampler: str
    baseline_days: float
    followup_days: float
    run_overrides: tuple[str, ...]
    features: tuple[Feature, ...]
    arms: tuple[Arm, ...]
    control_arm: str
    window_days: float
    tolerance_log10: float
    readouts: tuple[Readout, ...]
    responder: Responder
    effusion_arm: str | None
    effusion_scaled_arm: str | None
    bootstrap_resamples: int
    confidence: float
    benefits: tuple[Benefit, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    @property
    def treated_arms(self) -> list[Arm]:
        return [a for a in self.arms if a.name != self.control_arm]


# -- loading and checking ------------------------------------------------------------------
def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> TrialSpec:
    """The trial declared in ``path`` with ``trial.KEY=VALUE`` ``overrides`` merged; raises
    :class:`TrialError` (one line naming the key) for anything invalid."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = Path(path)
    if not path.is_file():
        raise TrialError(
            f"--config {path}: no such file (a trial YAML like conf/trial/default.yaml)"
        )
    import yaml

    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrialError(f"--config {path}: not a readable YAML file: {first}") from None
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.startswith(f"{ROOT}."):
            raise TrialError(f"{item!r}: a trial override is {ROOT}.KEY=VALUE")
        node = OmegaConf.select(cfg, key.rsplit(".", 1)[0], default=None)
        if OmegaConf.select(cfg, key, default=None) is None and node is None:
            raise TrialError(f"{key}: unknown trial key{_close(cfg, key)}")
        try:
            cfg.merge_with_dotlist([item])
        except (OmegaConfBaseException, ValueError) as exc:
            raise TrialError(f"{item}: {str(exc).splitlines()[0]}") from None
    raw = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(raw, dict) or not isinstance(raw.get(ROOT), dict):
        raise TrialError(f"--config {path}: no top-level '{ROOT}:' mapping")
    return parse_spec(raw)


def _close(cfg: Any, key: str) -> str:
    import difflib

    from omegaconf import DictConfig, OmegaConf

    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    while node is None and "." in parent:
        parent, _, leaf = parent.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None)
    if not isinstance(node, DictConfig):
        return ""
    near = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=3)
    return f"; did you mean {' or '.join(f'{parent}.{n}' for n in near)}?" if near else ""


def _get(d: Mapping, key: str, where: str, kind: type | tuple, *, default: Any = ...) -> Any:
    """``d[key]`` checked against ``kind`` (numbers: int or float, never bool)."""
    if key not in d or d[key] is None:
        if default is not ...:
            return default
        raise TrialError(f"{where}.{key}: missing")
    v = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, bool) and bool not in kinds:
        raise TrialError(f"{where}.{key}: expected {_kind_name(kinds)}, got {v!r}")
    if not isinstance(v, kinds):
        raise TrialError(f"{where}.{key}: expected {_kind_name(kinds)}, got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise TrialError(f"{where}.{key}: expected a finite number, got {v!r}")
    return v


def _kind_name(kinds: tuple) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "a mapping"}  # fmt: skip
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _known(d: Mapping, where: str, allowed: Sequence[str]) -> None:
    for k in d:
        if k not in allowed:
            import difflib

            near = difflib.get_close_matches(str(k), allowed, n=2)
            hint = f"did you mean {' or '.join(near)}?" if near else f"valid: {', '.join(allowed)}"
            raise TrialError(f"{where}.{k}: unknown key; {hint}")


_TOP = ("size", "seeds", "seed_base", "sample_seed", "sampler", "baseline_days", "followup_days",
        "run_overrides", "features", "control_arm", "arms", "plausibility", "responder",
        "analysis")  # fmt: skip
_FEATURE = ("key", "group", "dist", "low", "high", "median", "sigma_log", "mean", "sd", "unit",
            "source")  # fmt: skip
_ARM = ("therapy", "dose", "dose_per_ml", "prelicensed", "dose_mg")


def parse_spec(raw: Mapping[str, Any]) -> TrialSpec:
    """A :class:`TrialSpec` of the plain ``{"trial": {...}}`` mapping (see :func:`load_spec`)."""
    t = raw.get(ROOT)
    if not isinstance(t, Mapping):
        raise TrialError(f"{ROOT}: expected a mapping")
    w = ROOT
    _known(t, w, _TOP)
    size = _get(t, "size", w, int)
    seeds = _get(t, "seeds", w, int)
    if size < 1:
        raise TrialError(f"{w}.size: need >= 1 virtual patients, got {size}")
    if seeds < 1:
        raise TrialError(f"{w}.seeds: need >= 1 seed per patient, got {seeds}")
    seed_base = _get(t, "seed_base", w, int, default=0)
    if seed_base < 0:
        raise TrialError(f"{w}.seed_base: must be >= 0, got {seed_base}")
    sample_seed = _get(t, "sample_seed", w, int, default=0)
    sampler = _get(t, "sampler", w, str, default="lhs")
    if sampler not in SAMPLERS:
        raise TrialError(f"{w}.sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")
    baseline_days = _get(t, "baseline_days", w, float)
    followup_days = _get(t, "followup_days", w, float)
    for k, v in (("baseline_days", baseline_days), ("followup_days", followup_days)):
        if not v > 0:
            raise TrialError(f"{w}.{k}: must be > 0 days, got {v:g}")
    run_overrides = _get(t, "run_overrides", w, list, default=[])
    for i, item in enumerate(run_overrides):
        if not isinstance(item, str) or "=" not in item:
            raise TrialError(f"{w}.run_overrides[{i}]: expected a KEY=VALUE string, got {item!r}")

    feats = _get(t, "features", w, dict)
    if not feats:
        raise TrialError(f"{w}.features: declare at least one feature")
    features = tuple(_feature(name, f, f"{w}.features.{name}") for name, f in feats.items())
    keys = [f.key for f in features]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise TrialError(f"{w}.features: {dup[0]} is set by more than one feature")
    for f in features:
        if f.key in ARM_KEYS or f.key.split(".")[0] in ("seed", "sim", "design", "hydra"):
            raise TrialError(f"{w}.features.{f.name}.key: {f.key} is set by abm-trial itself")

    arms_raw = _get(t, "arms", w, dict)
    if not arms_raw:
        raise TrialError(f"{w}.arms: declare at least one arm")
    arms = tuple(_arm(name, a, f"{w}.arms.{name}") for name, a in arms_raw.items())
    control = _get(t, "control_arm", w, str, default="none")
    if control not in arms_raw:
        raise TrialError(f"{w}.control_arm: {control!r} is not an arm; arms: "
                         f"{', '.join(arms_raw)}")  # fmt: skip
    if next(a for a in arms if a.name == control).therapy != "none":
        raise TrialError(f"{w}.control_arm: arm {control!r} must have therapy: none")
    if len(arms) < 2:
        raise TrialError(f"{w}.arms: need the control arm and at least one treated arm")

    pl = _get(t, "plausibility", w, dict)
    wp = f"{w}.plausibility"
    _known(pl, wp, ("window_days", "tolerance_log10", "readouts"))
    window = _get(pl, "window_days", wp, float)
    if not 0 < window <= baseline_days:
        raise TrialError(f"{wp}.window_days: must lie in (0, {w}.baseline_days="
                         f"{baseline_days:g}], got {window:g}")  # fmt: skip
    tol = _get(pl, "tolerance_log10", wp, float)
    if tol < 0:
        raise TrialError(f"{wp}.tolerance_log10: must be >= 0 (decades), got {tol:g}")
    readouts = []
    for metric, r in _get(pl, "readouts", wp, dict, default={}).items():
        wr = f"{wp}.readouts.{metric}"
        if not isinstance(r, Mapping):
            raise TrialError(
                f"{wr}: expected a mapping with cohort_low_pg_ml, cohort_high_pg_ml, enforce"
            )
        _known(r, wr, ("cohort_low_pg_ml", "cohort_high_pg_ml", "enforce"))
        lo, hi = _get(r, "cohort_low_pg_ml", wr, float), _get(r, "cohort_high_pg_ml", wr, float)
        if not 0 < lo <= hi:
            raise TrialError(
                f"{wr}: need 0 < cohort_low_pg_ml <= cohort_high_pg_ml, got {lo:g}, {hi:g}"
            )
        readouts.append(Readout(metric, lo, hi, _get(r, "enforce", wr, bool, default=True)))

    rs = _get(t, "responder", w, dict)
    wr = f"{w}.responder"
    _known(rs, wr, ("day", "window_days", "pain_metric", "pain_max_rel_change",
                    "synovitis_metric", "synovitis_max_abs_change"))  # fmt: skip
    responder = Responder(
        day=_get(rs, "day", wr, float),
        window_days=_get(rs, "window_days", wr, float),
        pain_metric=_get(rs, "pain_metric", wr, str),
        pain_max_rel_change=_get(rs, "pain_max_rel_change", wr, float),
        synovitis_metric=_get(rs, "synovitis_metric", wr, str),
        synovitis_max_abs_change=_get(rs, "synovitis_max_abs_change", wr, float),
    )
    if not 0 < responder.day <= followup_days + 1e-9:
        raise TrialError(f"{wr}.day: must lie in (0, {w}.followup_days={followup_days:g}], "
                         f"got {responder.day:g}")  # fmt: skip
    if not 0 <= responder.window_days <= responder.day:
        raise TrialError(f"{wr}.window_days: must lie in [0, {wr}.day={responder.day:g}], "
                         f"got {responder.window_days:g}")  # fmt: skip
    if not -1 <= responder.pain_max_rel_change <= 0:
        raise TrialError(f"{wr}.pain_max_rel_change: a relative change in [-1, 0] (-0.2 = a 20% "
                         f"drop), got {responder.pain_max_rel_change:g}")  # fmt: skip

    an = _get(t, "analysis", w, dict, default={})
    wa = f"{w}.analysis"
    _known(an, wa, ("effusion_arm", "effusion_scaled_arm", "bootstrap_resamples", "confidence",
                    "benefits"))  # fmt: skip
    eff = _get(an, "effusion_arm", wa, str, default=None)
    eff_scaled = _get(an, "effusion_scaled_arm", wa, str, default=None)
    for k, v in (("effusion_arm", eff), ("effusion_scaled_arm", eff_scaled)):
        if v is not None and v not in arms_raw:
            raise TrialError(f"{wa}.{k}: {v!r} is not an arm; arms: {', '.join(arms_raw)}")
        if v is not None and v == control:
            raise TrialError(f"{wa}.{k}: {v!r} is the control arm; give a treated arm")
    resamples = _get(an, "bootstrap_resamples", wa, int, default=1000)
    if resamples < 10:
        raise TrialError(f"{wa}.bootstrap_resamples: need >= 10, got {resamples}")
    conf = _get(an, "confidence", wa, float, default=0.95)
    if not 0 < conf < 1:
        raise TrialError(f"{wa}.confidence: must lie in (0, 1), got {conf:g}")
    benefits = _benefits(_get(an, "benefits", wa, dict, default={}), f"{wa}.benefits",
                         (responder.pain_metric, responder.synovitis_metric))  # fmt: skip

    return TrialSpec(
        size=size, seeds=seeds, seed_base=seed_base, sample_seed=sample_seed, sampler=sampler,
        baseline_days=baseline_days, followup_days=followup_days,
        run_overrides=tuple(run_overrides), features=features, arms=arms, control_arm=control,
        window_days=window, tolerance_log10=tol, readouts=tuple(readouts), responder=responder,
        effusion_arm=eff, effusion_scaled_arm=eff_scaled, bootstrap_resamples=resamples,
        confidence=conf, benefits=benefits, raw=dict(raw),
    )  # fmt: skip


def _benefits(raw: Mapping, where: str, responder_metrics: Sequence[str]) -> tuple[Benefit, ...]:
    """The declared continuous benefits (``metric: {change, better}``), checked."""
    out = []
    for metric, b in raw.items():
        wb = f"{where}.{metric}"
        if not isinstance(b, Mapping):
            raise TrialError(f"{wb}: a mapping {{change: relative|absolute, better: lower|higher}}"
                             f", got {b!r}")  # fmt: skip
        _known(b, wb, ("change", "better"))
        change = _get(b, "change", wb, str)
        better = _get(b, "better", wb, str)
        if change not in ("relative", "absolute"):
            raise TrialError(f"{wb}.change: relative or absolute, got {change!r}")
        if better not in ("lower", "higher"):
            raise TrialError(f"{wb}.better: lower or higher, got {better!r}")
        if metric in responder_metrics:
            raise TrialError(f"{wb}: {metric} is a responder readout (its change is already "
                             "analysed); give another readout")  # fmt: skip
        out.append(Benefit(str(metric), change, better))
    return tuple(out)


def _feature(name: str, f: Any, where: str) -> Feature:
    if not isinstance(f, Mapping):
        raise TrialError(f"{where}: expected a mapping (key, dist, low, high, ...)")
    _known(f, where, _FEATURE)
    key = _get(f, "key", where, str)
    group = _get(f, "group", where, str, default="patient")
    if group not in GROUPS:
        raise TrialError(f"{where}.group: {group!r} is not one of {', '.join(GROUPS)}")
    dist = _get(f, "dist", where, str)
    if dist not in DISTS:
        raise TrialError(f"{where}.dist: {dist!r} is not one of {', '.join(DISTS)}")
    low, high = _get(f, "low", where, float), _get(f, "high", where, float)
    if not low < high:
        raise TrialError(f"{where}: need low < high, got low={low:g} high={high:g}")
    kw: dict[str, Any] = {}
    if dist in ("loguniform", "lognormal") and not low > 0:
        raise TrialError(f"{where}.low: a {dist} feature needs low > 0, got {low:g}")
    if dist == "lognormal":
        kw["median"] = _get(f, "median", where, float)
        kw["sigma_log"] = _get(f, "sigma_log", where, float)
        if not kw["median"] > 0:
            raise TrialError(f"{where}.median: must be > 0, got {kw['median']:g}")
        if not kw["sigma_log"] > 0:
            raise TrialError(
                f"{where}.sigma_log: must be > 0 (SD of ln x), got {kw['sigma_log']:g}"
            )
    elif dist == "normal":
        kw["mean"] = _get(f, "mean", where, float)
        kw["sd"] = _get(f, "sd", where, float)
        if not kw["sd"] > 0:
            raise TrialError(f"{where}.sd: must be > 0, got {kw['sd']:g}")
    else:
        extra = [k for k in ("median", "sigma_log", "mean", "sd") if f.get(k) is not None]
        if extra:
            raise TrialError(f"{where}.{extra[0]}: not a parameter of dist {dist} (low, high only)")
    return Feature(name=name, key=key, group=group, dist=dist, low=low, high=high,
                   unit=str(f.get("unit") or ""), source=str(f.get("source") or ""),
                   **kw)  # fmt: skip


def _arm(name: str, a: Any, where: str) -> Arm:
    if not isinstance(a, Mapping):
        raise TrialError(f"{where}: expected a mapping (therapy, dose, ...)")
    _known(a, where, _ARM)
    therapy = _get(a, "therapy", where, str)
    if therapy not in THERAPIES:
        raise TrialError(f"{where}.therapy: {therapy!r} is not one of {', '.join(THERAPIES)}")
    dose = _get(a, "dose", where, float, default=None)
    per_ml = _get(a, "dose_per_ml", where, float, default=None)
    prelicensed = _get(a, "prelicensed", where, bool, default=False)
    dose_mg = _get(a, "dose_mg", where, float, default=None)
    if therapy == "msc":
        if (dose is None) == (per_ml is None):
            raise TrialError(f"{where}: an msc arm needs exactly one of dose (cells per knee) or "
                             "dose_per_ml (cells per mL of synovial fluid)")  # fmt: skip
        value, key = (dose, "dose") if per_ml is None else (per_ml, "dose_per_ml")
        if not value > 0:
            raise TrialError(f"{where}.{key}: must be > 0, got {value:g}")
        if dose_mg is not None:
            raise TrialError(f"{where}.dose_mg: is for therapy il1ra_bolus")
    else:
        for k, v in (("dose", dose), ("dose_per_ml", per_ml)):
            if v is not None:
                raise TrialError(f"{where}.{k}: is for therapy msc (this arm is {therapy})")
        if prelicensed:
            raise TrialError(f"{where}.prelicensed: is for therapy msc (this arm is {therapy})")
    if therapy == "il1ra_bolus":
        if dose_mg is None or not dose_mg > 0:
            raise TrialError(f"{where}.dose_mg: an il1ra_bolus arm needs dose_mg > 0 (mg)")
    elif therapy == "none" and dose_mg is not None:
        raise TrialError(f"{where}.dose_mg: is for therapy il1ra_bolus")
    return Arm(name=name, therapy=therapy, dose=dose or 0.0, dose_per_ml=per_ml,
               prelicensed=prelicensed, dose_mg=dose_mg or 0.0)  # fmt: skip


# -- sampling and designs ------------------------------------------------------------------
def sample_unit(n: int, k: int, sampler: str, seed: int) -> np.ndarray:
    """(n, k) quantiles in [0, 1): a Latin hypercube (scipy.stats.qmc, one point per stratum
    of each column) or independent uniform draws of a numpy Generator, both seeded."""
    if sampler == "lhs":
        from scipy.stats import qmc

        return qmc.LatinHypercube(d=k, seed=np.random.default_rng(seed)).random(n)
    if sampler == "random":
        return np.random.default_rng(seed).random((n, k))
    raise ValueError(f"sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")


def sample_population(spec: TrialSpec) -> pd.DataFrame:
    """One row per virtual patient (``patient`` 0..size-1) with a column per feature's config
    key: reproducible from ``spec.sample_seed``; every value in its feature's [low, high]."""
    u = sample_unit(spec.size, len(spec.features), spec.sampler, spec.sample_seed)
    table = pd.DataFrame({"patient": np.arange(spec.size)})
    for j, f in enumerate(spec.features):
        table[f.key] = f.ppf(u[:, j])
    return table


def patient_seed(spec: TrialSpec, patient: int, replicate: int) -> int:
    """The run seed of ``patient``'s ``replicate``-th seed: distinct for every patient-seed."""
    return spec.seed_base + patient * spec.seeds + replicate


def _sf_volume(row: Mapping, default_ml: float) -> float:
    """The patient's synovial-fluid volume (mL): its feature, else the runs' config value."""
    return float(row.get("patient.sf_volume_ml", default_ml))


def baseline_design(spec: TrialSpec, population: pd.DataFrame,
                    default_sf_ml: float = 10.0) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(design, map) of the untreated baselines: one row per patient and seed with the
    patient's features and the control arm; the map holds each row's patient, arm, seed."""
    control = spec.arm(spec.control_arm)
    rows, where = [], []
    for _, p in population.iterrows():
        for s in range(spec.seeds):
            seed = patient_seed(spec, int(p["patient"]), s)
            feats = {f.key: _plain(p[f.key]) for f in spec.features}
            rows.append({"seed": seed, **feats,
                         **control.values(_sf_volume(feats, default_sf_ml))})  # fmt: skip
            where.append({"patient": int(p["patient"]), "arm": control.name, "seed": seed})
    return _framed(rows, where)


def arms_design(spec: TrialSpec, population: pd.DataFrame,
                default_sf_ml: float = 10.0) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(design, map) of every arm of every patient and seed (rows ordered patient, seed,
    arm: fixed by the population, so rows keep their numbers whichever patients are
    accepted; only the accepted patients' rows are run)."""
    rows, where = [], []
    for _, p in population.iterrows():
        feats = {f.key: _plain(p[f.key]) for f in spec.features}
        sf = _sf_volume(feats, default_sf_ml)
        for s in range(spec.seeds):
            seed = patient_seed(spec, int(p["patient"]), s)
            for arm in spec.arms:
                rows.append({"seed": seed, **feats, **arm.values(sf)})
                where.append({"patient": int(p["patient"]), "arm": arm.name, "seed": seed})
    return _framed(rows, where)


def _framed(rows: list[dict], where: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    design = pd.DataFrame(rows)
    mapping = pd.DataFrame(where)
    mapping.insert(0, "row", np.arange(len(mapping)))
    return design, mapping


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def check_features_against_model(spec: TrialSpec, cfg: Any) -> None:
    """Every feature key is a numeric value of the composed model config ``cfg``, and a
    biology parameter's [low, high] lies within its declared hard bounds (one line naming the
    feature otherwise)."""
    from omegaconf import OmegaConf
    from omegaconf.nodes import BooleanNode, FloatNode, IntegerNode

    declared = None
    for f in spec.features:
        where = f"{ROOT}.features.{f.name}.key"
        node = _value_node(cfg, f.key)
        if node is None:
            raise TrialError(f"{where}: {f.key} is not a config key of abm-run{_close(cfg, f.key)}")
        if not isinstance(node, FloatNode | IntegerNode) or isinstance(node, BooleanNode):
            value = OmegaConf.select(cfg, f.key)
            raise TrialError(f"{where}: {f.key} is not a number in the model config ({value!r})")
        if f.key.startswith("biology."):
            if declared is None:
                from abm.params import parameter_rows

                declared = {d.key: d for d in parameter_rows()}
            d = declared.get(f.key)
            if d is not None:
                lo, hi = d.bounds
                if f.low < lo or f.high > hi:
                    raise TrialError(f"{ROOT}.features.{f.name}: [{f.low:g}, {f.high:g}] leaves "
                                     f"the bounds of {f.key} [{lo:g}, {hi:g}]")  # fmt: skip


def _value_node(cfg: Any, key: str) -> Any:
    """The node at dotted ``key`` of a DictConfig (None where a part is missing)."""
    from abm.sweep.design import config_node

    return config_node(cfg, key)
