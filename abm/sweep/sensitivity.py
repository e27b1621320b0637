"""Global sensitivity analysis: designs and indices for ``abm-sensitivity`` (analysis stage).

Parameters are sampled over ranges (:func:`factors`): by default the plausible range declared
with each biology parameter (:mod:`abm.params`), or one given explicitly. A range spanning
more than a decade (hi / lo > 10, lo > 0) is sampled log-uniformly: the sampler works on
log10 of the value. Designs come from SALib's samplers (:func:`sample`):

- ``morris``: r trajectories of the Morris method on a ``levels``-level grid: r (k + 1) runs
  for k parameters. Indices: mu* (mean |elementary effect|, an effect being the readout's
  change over one step divided by the step as a fraction of the (log-)range: in readout units
  per whole range) with its bootstrap 95% confidence, mu (the signed mean) and sigma (the
  effects' spread: non-linearity or interactions).
- ``sobol``: Saltelli's scheme on a Sobol' sequence, N base samples: N (k + 2) runs. Indices:
  first-order S1 and total-order ST with their bootstrap confidence.
- ``prcc``: Latin hypercube, N runs. Index: the partial rank correlation coefficient
  (:func:`prcc`) with a bootstrap 95% percentile interval, and its p-value.

:func:`analyse` turns a design and one readout into rows of ``indices.csv``: method, metric,
day, parameter, index, value, ci_low, ci_high.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.errors import ConfigError

METHODS = ("morris", "sobol", "prcc")
MAIN_INDEX = {"morris": "mu_star", "sobol": "ST", "prcc": "prcc"}
LABEL = {"morris": "Morris mu*", "sobol": "Sobol total-order ST", "prcc": "PRCC"}
DEFAULT_SIZE = {"morris": 10, "sobol": 256, "prcc": 100}  # trajectories r / samples N
INDEX_COLUMNS = ("method", "metric", "day", "parameter", "index", "value", "ci_low", "ci_high")
LOG_SPAN = 10.0  # a range with hi / lo above this is sampled log-uniformly
CONF = 0.95


@dataclass(frozen=True)
class Factor:
    """One sampled parameter: dotted config key, range [lo, hi], log-uniform or uniform, and
    where the range came from (``declared`` or ``--range``)."""

    key: str
    lo: float
    hi: float
    log: bool
    origin: str = "declared"
    integer: bool = False

    @property
    def bounds(self) -> list[float]:
        """The sampled interval: [log10 lo, log10 hi] for a log-uniform factor."""
        return [math.log10(self.lo), math.log10(self.hi)] if self.log else [self.lo, self.hi]

    def values(self, x: np.ndarray) -> np.ndarray:
        """Config values of sampled values ``x`` (10**x for a log-uniform factor, to 12
        significant digits; rounded for an integer key)."""
        v = np.asarray(x, dtype=float)
        if self.log:  # 12 significant digits: 0.002, not 10**log10(0.002) = 0.0020000000000000005
            v = np.array([float(f"{a:.12g}") for a in np.power(10.0, v)])
        v = np.clip(v, self.lo, self.hi)
        return np.round(v) if self.integer else v

    def describe(self) -> str:
        scale = "log-uniform (spans more than a decade)" if self.log else "uniform"
        return f"{self.key}: {self.lo:g} to {self.hi:g}, {scale}; {self.origin} range"


def factors(keys: Sequence[str], ranges: Mapping[str, tuple[float, float]],
            cfg: Any = None, min_keys: int = 2) -> list[Factor]:  # fmt: skip
    """The factors of ``keys``: ranges from ``ranges`` (``--range``) or else the parameter's
    declared plausible range. Raises :class:`ConfigError` (one line) for an unknown key, a
    fixed or undeclared range without ``--range``, a range outside the hard bounds, lo >= hi,
    a duplicate, fewer than ``min_keys`` keys (2: a sensitivity analysis compares), or a
    ``--range`` for a key that is not a ``--param``. ``cfg`` (a composed config) lets
    non-biology numeric keys be sampled (with ``--range``)."""
    from abm.params import describe, parameter_rows

    declared = {d.key: d for d in parameter_rows()}
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if list(keys).count(k) > 1)
        raise ConfigError(f"--param {dup}: given twice")
    extra = [k for k in ranges if k not in keys]
    if extra:
        raise ConfigError(f"--range {extra[0]}: not one of the --param keys")
    if len(keys) < min_keys:
        raise ConfigError(
            f"--param: give at least {min_keys} parameter{'s' if min_keys > 1 else ''}"
            + (" to compare" if min_keys > 1 else "")
        )
    out = []
    for key in keys:
        d = declared.get(key)
        integer = False
        if d is None:
            node = _value_node(cfg, key) if cfg is not None else None
            if node is None:
                raise ConfigError(f"--param {key}: not a declared biology parameter or "
                                  "numeric config key (docs/parameters.md lists them)")  # fmt: skip
            if key not in ranges:
                raise ConfigError(f"--param {key}: not a biology parameter, so no declared "
                                  f"range: give --range {key}=LO:HI")  # fmt: skip
            integer, bounds = node == "int", (-math.inf, math.inf)
        else:
            bounds = d.bounds
            if key.endswith(".units"):
                raise ConfigError(f"--param {key}: not a number")
        if key in ranges:
            lo, hi = ranges[key]
            origin = "--range"
        else:
            if d.plausible is None or d.plausible[0] >= d.plausible[1]:
                raise ConfigError(f"--param {key}: its declared plausible range is fixed "
                                  f"({d.value:g}): give --range {key}=LO:HI")  # fmt: skip
            lo, hi = (float(v) for v in d.plausible)
            origin = "declared"
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"--range {key}={lo:g}:{hi:g}: need finite LO < HI")
        if lo < bounds[0] or hi > bounds[1]:
            what = describe(key) or f"within [{bounds[0]:g}, {bounds[1]:g}]"
            raise ConfigError(f"--range {key}={lo:g}:{hi:g}: outside the hard bounds "
                              f"({what})")  # fmt: skip
        log = lo > 0 and hi / lo > LOG_SPAN
        out.append(Factor(key, float(lo), float(hi), log, origin, integer))
    return out


def _value_node(cfg: Any, key: str) -> str | None:
    """``"int"`` or ``"float"`` for a numeric value key of ``cfg``, else None."""
    from omegaconf import DictConfig
    from omegaconf.nodes import BooleanNode, FloatNode, IntegerNode

    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node._get_node(part)
    if isinstance(node, BooleanNode):
        return None
    if isinstance(node, IntegerNode):
        return "int"
    if isinstance(node, FloatNode):
        return "float"
    return None


def parse_range(text: str) -> tuple[str, tuple[float, float]]:
    """``KEY=LO:HI`` -> (key, (lo, hi)); ValueError with what is expected."""
    key, sep, rng = text.partition("=")
    lo, sep2, hi = rng.partition(":")
    try:
        if not (sep and sep2 and key):
            raise ValueError
        return key.strip(), (float(lo), float(hi))
    except ValueError:
        raise ValueError(f"--range {text}: expected KEY=LO:HI, e.g. "
                         "biology.macrophage.activation_rate=1e-4:1e-2") from None  # fmt: skip


def problem(fs: Sequence[Factor]) -> dict[str, Any]:
    """The SALib problem (in the sampled space: log10 for log-uniform factors)."""
    return {"num_vars": len(fs), "names": [f.key for f in fs], "bounds": [f.bounds for f in fs]}


def runs_needed(method: str, k: int, size: int) -> int:
    """Runs of a design: Morris r (k + 1), Sobol N (k + 2) (first and total order), PRCC N."""
    return {"morris": size * (k + 1), "sobol": size * (k + 2), "prcc": size}[method]


def sample(method: str, fs: Sequence[Factor], size: int, *, seed: int = 0,
           levels: int = 4) -> np.ndarray:  # fmt: skip
    """The design in the sampled space (rows x factors), from SALib's samplers: Morris
    (``size`` trajectories), Sobol/Saltelli (``size`` base samples, first and total order),
    Latin hypercube for PRCC (``size`` runs)."""
    prob = problem(fs)
    if method == "morris":
        from SALib.sample import morris

        return morris.sample(prob, size, num_levels=levels, seed=seed)
    if method == "sobol":
        import warnings

        from SALib.sample import sobol

        with warnings.catch_warnings():  # N not a power of 2: said by the front end
            warnings.simplefilter("ignore", UserWarning)
            return sobol.sample(prob, size, calc_second_order=False, seed=seed)
    if method == "prcc":
        from SALib.sample import latin

        return latin.sample(prob, size, seed=seed)
    raise ValueError(f"method {method!r}: one of {', '.join(METHODS)}")


def design_table(fs: Sequence[Factor], x: np.ndarray) -> pd.DataFrame:
    """The config values of sampled design ``x``: one column per factor key."""
    return pd.DataFrame({f.key: f.values(x[:, i]) for i, f in enumerate(fs)})


# ------------------------------------------------------------------------------ PRCC
def _prcc_ranked(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    n, k = rx.shape
    out = np.full(k, np.nan)
    for j in range(k):
        others = np.column_stack([np.ones(n), np.delete(rx, j, axis=1)])
        both = np.column_stack([rx[:, j], ry])
        coef, *_ = np.linalg.lstsq(others, both, rcond=None)
        res = both - others @ coef  # residuals of parameter j and the output
        den = math.sqrt(float(res[:, 0] @ res[:, 0]) * float(res[:, 1] @ res[:, 1]))
        if den > 1e-12 * max(1.0, float(both[:, 0] @ both[:, 0])):
            out[j] = float(res[:, 0] @ res[:, 1]) / den
    return np.clip(out, -1.0, 1.0)


def prcc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Partial rank correlation of each column of ``x`` with ``y``: rank-transform all, regress
    the other parameters (and a constant) out of parameter j and of the output, correlate the
    residuals. NaN where undefined (a constant output or parameter)."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return _prcc_ranked(rankdata(x, axis=0), rankdata(y))


def prcc_pvalue(r: np.ndarray, n: int, k: int) -> np.ndarray:
    """Two-sided p-value of PRCC ``r`` (t test, n - 2 - (k - 1) degrees of freedom)."""
    from scipy.stats import t

    df = n - 2 - (k - 1)
    if df < 1:
        return np.full_like(r, np.nan)
    r = np.clip(r, -0.999999999, 0.999999999)
    stat = r * np.sqrt(df / (1 - r * r))
    return 2 * t.sf(np.abs(stat), df)


def bootstrap(stat: Any, x: np.ndarray, y: np.ndarray, *, resamples: int = 1000,
              conf: float = CONF, seed: int = 0) -> tuple[np.ndarray, ...]:  # fmt: skip
    """(stat(x, y), lower, upper): the percentile interval of ``stat`` (one value per column of
    ``x``) over ``resamples`` bootstrap resamples of the rows; NaN where every resample is."""
    import warnings

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    value = stat(x, y)
    rng = np.random.default_rng(seed)
    boots = np.empty((resamples, x.shape[1]))
    for b in range(resamples):
        i = rng.integers(0, len(y), len(y))
        boots[b] = stat(x[i], y[i])
    alpha = (1 - conf) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, said by value
        lo = np.nanquantile(boots, alpha, axis=0)
        hi = np.nanquantile(boots, 1 - alpha, axis=0)
    return value, lo, hi


def prcc_bootstrap(x: np.ndarray, y: np.ndarray, *, resamples: int = 1000, conf: float = CONF,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(PRCC, lower, upper): the percentile interval of ``resamples`` bootstrap resamples of
    the runs (ranks recomputed in every resample)."""
    return bootstrap(prcc, x, y, resamples=resamples, conf=conf, seed=seed)


# ------------------------------------------------------------------------------ analysis
def analyse(method: str, fs: Sequence[Factor], x: np.ndarray, y: np.ndarray, *,
            seed: int = 0, levels: int = 4, resamples: int = 1000) -> pd.DataFrame:  # fmt: skip
    """Indices of one readout ``y`` (one value per design row of ``x``, sampled space): rows
    parameter, index, value, ci_low, ci_high. A readout constant over the design has Morris
    indices 0 and no Sobol/PRCC index (NaN): nothing to apportion."""
    y = np.asarray(y, dtype=float)
    names = [f.key for f in fs]
    rows: list[dict[str, Any]] = []

    def add(index: str, values: Any, lo: Any = None, hi: Any = None) -> None:
        for i, name in enumerate(names):
            rows.append({"parameter": name, "index": index, "value": float(values[i]),
                         "ci_low": np.nan if lo is None else float(lo[i]),
                         "ci_high": np.nan if hi is None else float(hi[i])})  # fmt: skip

    constant = bool(np.ptp(y) == 0)
    if method == "morris":
        from SALib.analyze import morris

        si = morris.analyze(problem(fs), np.asarray(x, dtype=float), y, num_levels=levels,
                            num_resamples=resamples, conf_level=CONF, seed=seed)  # fmt: skip
        mu_star, conf = np.asarray(si["mu_star"]), np.asarray(si["mu_star_conf"])
        add("mu_star", mu_star, np.maximum(mu_star - conf, 0.0), mu_star + conf)
        add("mu", si["mu"])
        add("sigma", si["sigma"])
    elif method == "sobol":
        if constant:
            nan = np.full(len(fs), np.nan)
            add("S1", nan, nan, nan)
            add("ST", nan, nan, nan)
        else:
            from SALib.analyze import sobol

            si = sobol.analyze(problem(fs), y, calc_second_order=False, num_resamples=resamples,
                               conf_level=CONF, seed=seed)  # fmt: skip
            for name in ("S1", "ST"):
                v, c = np.asarray(si[name]), np.asarray(si[f"{name}_conf"])
                add(name, v, v - c, v + c)
    elif method == "prcc":
        value, lo, hi = prcc_bootstrap(x, y, resamples=resamples, seed=seed)
        add("prcc", value, lo, hi)
        add("p_value", prcc_pvalue(value, len(y), len(fs)))
    else:
        raise ValueError(f"method {method!r}: one of {', '.join(METHODS)}")
    return pd.DataFrame(rows)


def ranked(indices: pd.DataFrame) -> pd.DataFrame:
    """The main index of each (method, metric, day), parameters ranked (1 = most influential;
    |PRCC| for PRCC; NaN last)."""
    out = []
    for (method, _, _), g in indices.groupby(["method", "metric", "day"], sort=False):
        main = g[g["index"] == MAIN_INDEX[method]].copy()
        main["score"] = main["value"].abs()
        main = main.sort_values("score", ascending=False, na_position="last")
        main["rank"] = range(1, len(main) + 1)
        out.append(main.drop(columns="score"))
    return pd.concat(out, ignore_index=True) if out else indices.iloc[:0]


def table(indices: pd.DataFrame) -> str:
    """The printed ranking: per readout and day, parameters by their main index with its
    confidence interval (Morris: and sigma)."""
    lines = []
    rk = ranked(indices)
    for (method, metric, day), g in rk.groupby(["method", "metric", "day"], sort=False):
        ci = "bootstrap 95% interval" if method == "prcc" else "95% bootstrap confidence"
        lines.append(f"{metric} at day {day:g}: {LABEL[method]} [{ci}]")
        width = max(len(p) for p in g["parameter"])
        allidx = indices[(indices["method"] == method) & (indices["metric"] == metric)
                         & (indices["day"] == day)]  # fmt: skip
        for r in g.itertuples():
            extra = ""
            if method == "morris":
                sig = allidx[(allidx["index"] == "sigma") & (allidx["parameter"] == r.parameter)]
                extra = f"  sigma {sig['value'].iloc[0]:.3g}"
            elif method == "sobol":
                s1 = allidx[(allidx["index"] == "S1") & (allidx["parameter"] == r.parameter)]
                extra = f"  S1 {s1['value'].iloc[0]:.3g}"
            else:
                pv = allidx[(allidx["index"] == "p_value") & (allidx["parameter"] == r.parameter)]
                extra = f"  p {pv['value'].iloc[0]:.2g}"
            lines.append(f"  {r.rank:>2}. {r.parameter:<{width}}  {r.value:>10.3g} "
                         f"[{r.ci_low:.3g}, {r.ci_high:.3g}]{extra}")  # fmt: skip
        lines.append("")
    return "\n".join(lines).rstrip()


def chart(indices: pd.DataFrame, method: str, metric: str, day: float, path: str | Path) -> Path:
    """A bar chart of one readout and day: the main index (Sobol: S1 and ST) per parameter,
    with its confidence interval, largest first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = indices[(indices["method"] == method) & (indices["metric"] == metric)
                & (indices["day"] == day)]  # fmt: skip
    main = ranked(g)
    order = list(main["parameter"])[::-1]  # largest at the top
    show = ["S1", "ST"] if method == "sobol" else [MAIN_INDEX[method]]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(order) + 1.4), constrained_layout=True)
    h = 0.8 / len(show)
    for i, name in enumerate(show):
        s = g[g["index"] == name].set_index("parameter").reindex(order)
        v = s["value"].to_numpy(dtype=float)
        err = np.vstack([v - s["ci_low"].to_numpy(float), s["ci_high"].to_numpy(float) - v])
        err = np.where(np.isfinite(err), np.abs(err), 0.0)
        y = np.arange(len(order)) + (i - (len(show) - 1) / 2) * h
        ax.barh(y, np.nan_to_num(v), height=h, xerr=err, capsize=3, color=f"C{i}", label=name)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.axvline(0, color="0.4", lw=0.6)
    ax.set_xlabel(f"{method} {' / '.join(show)}")
    ax.set_title(f"{metric}, day {day:g}", fontsize=10)
    if len(show) > 1:
        ax.legend(fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def chart_name(metric: str, day: float) -> str:
    """``indices_<metric>_day<d>.png``."""
    return f"indices_{metric}_day{day:g}.png"


def request(method: str, fs: Sequence[Factor], size: int, seed: int, levels: int,
            overrides: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """What a design is: compared with the stored one when a command is run again."""
    return {"method": method, "size": int(size), "sample_seed": int(seed),
            "levels": int(levels) if method == "morris" else None,
            "factors": [{k: v for k, v in asdict(f).items() if k != "origin"} for f in fs],
            "overrides": sorted(overrides)}  # fmt: skip
