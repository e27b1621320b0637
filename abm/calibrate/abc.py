"""ABC-SMC calibration through pyabc: priors, the resumable run and its outputs.

Data flow: parameter keys and ranges -> :func:`calibration_factors` (the
:class:`abm.sweep.sensitivity.Factor` of each: the declared plausible range or ``--range``,
log-uniform when it spans more than a decade) -> :func:`prior` (pyabc priors, uniform in the
sampled space: log10 of the value for a log-uniform factor) -> :class:`ParticleModel` (sampled
values -> config values -> a simulator's readouts ``{target id: value}``) -> pyabc's ABC-SMC
with :class:`abm.calibrate.distance.TargetDistance` over the ``calibrate`` targets, its history
in ``OUT/history.db`` (SQLite) -> the last generation: ``posterior.csv`` (particles, weights,
distances, readouts), ``posterior_summary.csv`` (weighted median and 95% interval per
parameter), ``predictive.csv`` (posterior-predictive bands of every target the simulator
computes, hold-outs included), ``corner.png`` and ``calibrated.yaml`` (the posterior medians
as config overrides, with the run id).

Resuming: ``OUT/request.json`` records what was asked (model, factors, population size, the
targets in the distance, overrides, seed); ``OUT/run.json`` the run id and pyabc's id of the
run in ``history.db``. The same request aimed at the same OUT loads the stored run
(``ABCSMC.load``) and continues it from its last complete generation up to ``generations``;
a different request is refused (:func:`out_state`). Generations run one ``ABCSMC.run`` call
at a time (epsilon, transitions and weights are rebuilt from the stored last generation, as in
one long run), so an interrupted command loses at most the generation under way.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.calibrate.distance import TargetDistance, verdict
from abm.calibrate.targets import Target
from abm.sweep.outdir import move_aside, request_diff, write_csv, write_figure, write_text
from abm.sweep.sensitivity import Factor

DB, REQUEST, RUN = "history.db", "request.json", "run.json"
POSTERIOR, SUMMARY, PREDICTIVE = "posterior.csv", "posterior_summary.csv", "predictive.csv"
PREDICTIVE_PNG, PREDICTIVE_DRAWS = "predictive.png", "predictive_draws.csv"
CORNER, CALIBRATED, TARGETS_USED = "corner.png", "calibrated.yaml", "targets_used.csv"
OUTPUTS = (POSTERIOR, SUMMARY, PREDICTIVE, PREDICTIVE_DRAWS, PREDICTIVE_PNG, CORNER, CALIBRATED,
           TARGETS_USED)  # fmt: skip
DISTANCE = "log10-band-rms/1"  # abm.calibrate.distance: changes here make a new request
QUANTILES = (0.025, 0.5, 0.975)


class CalibrationError(ValueError):
    """Bad input or an OUT that cannot be used; the message is one line."""


# ------------------------------------------------------------------------------ priors
def calibration_factors(
    keys: Sequence[str], ranges: Mapping[str, tuple[float, float]], cfg: Any = None
) -> list[Factor]:
    """The factors of ``keys`` as :func:`abm.sweep.sensitivity.factors` makes them (declared
    plausible range or ``ranges``; log-uniform beyond a decade), for one key or more. Raises
    :class:`CalibrationError` (one line)."""
    from abm.errors import ConfigError
    from abm.sweep.sensitivity import factors

    keys = list(keys)
    if not keys:
        raise CalibrationError("--param: give at least one parameter to calibrate")
    try:
        return factors(keys, ranges, cfg, min_keys=1)
    except ConfigError as exc:
        raise CalibrationError(str(exc)) from None


def prior(fs: Sequence[Factor]) -> Any:
    """pyabc's prior: each factor uniform over its sampled interval (``Factor.bounds``:
    [log10 lo, log10 hi] for a log-uniform factor)."""
    import pyabc

    return pyabc.Distribution(
        **{f.key: pyabc.RV("uniform", f.bounds[0], f.bounds[1] - f.bounds[0]) for f in fs}
    )


def config_values(fs: Sequence[Factor], sampled: Mapping[str, float]) -> dict[str, float]:
    """Config values of one particle's sampled values (10**x for log-uniform factors)."""
    return {f.key: float(f.values(np.array([float(sampled[f.key])]))[0]) for f in fs}


def sampled_values(fs: Sequence[Factor], values: Mapping[str, float]) -> dict[str, float]:
    """The inverse of :func:`config_values`."""
    return {f.key: math.log10(values[f.key]) if f.log else float(values[f.key]) for f in fs}


class ParticleModel:
    """The model pyabc calls: sampled parameters -> the simulator's readouts. A simulation
    that raises gives NaN readouts (the distance is then inf: the particle is rejected) and
    one logged line."""

    def __init__(
        self,
        simulator: Callable[[Mapping[str, float]], dict[str, float]],
        fs: Sequence[Factor],
        target_ids: Sequence[str],
    ) -> None:
        self.simulator = simulator
        self.fs = list(fs)
        self.target_ids = list(target_ids)

    def __call__(self, par: Mapping[str, float]) -> dict[str, float]:
        values = config_values(self.fs, par)
        try:
            return {k: float(v) for k, v in self.simulator(values).items()}
        except Exception as exc:  # a failed particle must not stop the sampler
            logging.getLogger(__name__).warning(
                "simulation failed at %s: %s", values, str(exc).splitlines()[0] if str(exc) else exc
            )
            return dict.fromkeys(self.target_ids, math.nan)


# ------------------------------------------------------------------------------ OUT state
def request(
    model: str,
    fs: Sequence[Factor],
    population: int,
    targets: Sequence[Target],
    overrides: Sequence[str],
    seed: int,
) -> dict[str, Any]:
    """What a calibration is: compared with OUT's stored one when a command is run again.
    Not part of it (may change between runs): generations, min epsilon, jobs, predictive
    draws."""
    return {
        "model": model,
        "factors": [{k: v for k, v in asdict(f).items() if k != "origin"} for f in fs],
        "population": int(population),
        "targets": [
            {
                "id": t.id,
                "readout": t.readout,
                "arm": t.arm,
                "window": t.window_text(),
                "kind": t.kind,
                "band": [t.band[0], t.band[1]] if t.kind != "censored_lower" else [t.band[0], None],
                "tol": None if math.isnan(t.tol) else t.tol,
            }
            for t in targets
        ],
        "distance": DISTANCE,
        "overrides": sorted(overrides),
        "seed": int(seed),
    }


def out_state(out: Path, req: Mapping[str, Any], force_new: bool = False) -> dict | None:
    """OUT's stored run of ``req`` (the contents of ``run.json``) to continue, or None when a
    new run starts. Raises :class:`CalibrationError` when OUT holds another request (unless
    ``force_new``: it is moved to ``OUT/previous-<time>/`` first)."""
    held = [p for p in (out / DB, out / REQUEST, out / RUN) if p.exists()]
    if not held:
        return None
    diff = ["(no request.json)"]
    run = None
    try:
        old = json.loads((out / REQUEST).read_text())
        diff = request_diff(old, req)
        run = json.loads((out / RUN).read_text()) if (out / RUN).is_file() else None
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        diff = ["(request.json or run.json unreadable)"]
    if not diff:
        if run is not None and (out / DB).is_file():
            return run
        if not (out / DB).exists():
            return None  # the request was written, the run never started
        diff = ["(history.db without run.json)"]
    if not force_new:
        raise CalibrationError(
            f"--out {out} holds another calibration (it differs in: {', '.join(diff)}); give "
            f"another --out, or --force-new to move it to {out}/previous-<time>/ and start afresh"
        )
    aside = move_aside(out, [*held, *(out / name for name in OUTPUTS)])
    print(f"moved the previous calibration to {aside}")
    return None


def new_run_id(req: Mapping[str, Any]) -> str:
    """``<model>-<YYYYmmdd-HHMMSS>-<8 hex of the request>``."""
    import hashlib

    sha = hashlib.sha256(json.dumps(req, sort_keys=True).encode()).hexdigest()[:8]
    return f"{req['model']}-{datetime.now():%Y%m%d-%H%M%S}-{sha}"


# ------------------------------------------------------------------------------ the run
def _sampler(jobs: int) -> Any:
    from pyabc.sampler import MulticoreEvalParallelSampler, SingleCoreSampler

    return SingleCoreSampler() if jobs <= 1 else MulticoreEvalParallelSampler(n_procs=jobs)


def quiet_pyabc() -> None:
    """pyabc logs every generation at INFO: keep its warnings only (the progress bar says the
    rest)."""
    for name in (
        "ABC",
        "pyabc",
        "Sampler",
        "Epsilon",
        "Distance",
        "Acceptor",
        "History",
        "ABC.Sampler",
        "ABC.Epsilon",
        "ABC.History",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


def generations_done(out: Path, abc_id: int) -> tuple[int, float]:
    """(generations stored, the last one's epsilon; inf when none) of run ``abc_id``."""
    import pyabc

    h = pyabc.History(f"sqlite:///{out / DB}", _id=abc_id, create=False)
    pops = h.get_all_populations()
    pops = pops[pops["t"] >= 0]
    return len(pops), (float(pops["epsilon"].iloc[-1]) if len(pops) else math.inf)


def run_abc(
    out: Path,
    model: ParticleModel,
    fs: Sequence[Factor],
    targets: Sequence[Target],
    *,
    population: int,
    generations: int,
    min_epsilon: float,
    jobs: int,
    run: dict | None,
    req: Mapping[str, Any],
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Run (or continue) the ABC-SMC in ``out`` until it holds ``generations`` generations or
    epsilon <= ``min_epsilon``. ``run``: the stored run to continue (:func:`out_state`), None
    for a new one (``request.json`` and ``run.json`` are written first). Returns ``run``:
    ``{"run_id", "abc_id", "generations", "epsilon", "evaluations"}``, also in ``run.json``."""
    import pyabc
    from tqdm import tqdm

    quiet_pyabc()
    out.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{out / DB}"
    np.random.seed(seed % 2**32)  # noqa: NPY002 (pyabc draws from numpy's global generator)

    def smc(first: bool) -> Any:
        # A fresh ABCSMC per generation: pyabc caches the sample it calibrates epsilon on, so
        # one object run twice would keep the first epsilon. Generation 0 accepts the whole
        # prior sample (epsilon inf: no extra calibration sample); later generations start at
        # the weighted median distance of the stored last generation, as one long run does.
        eps0 = math.inf if first else "from_sample"
        return pyabc.ABCSMC(
            model,
            prior(fs),
            TargetDistance(targets),
            population_size=population,
            sampler=_sampler(jobs),
            eps=pyabc.MedianEpsilon(initial_epsilon=eps0),
        )

    if run is None:
        write_text(out / REQUEST, json.dumps(req, indent=1) + "\n")
        run = {"run_id": new_run_id(req), "abc_id": None}
        h = smc(True).new(db, {})
        run["abc_id"] = int(h.id)
        write_text(out / RUN, json.dumps(run, indent=1) + "\n")
    done, eps = generations_done(out, int(run["abc_id"]))
    bar = tqdm(
        total=generations,
        initial=min(done, generations),
        unit="gen",
        desc="ABC-SMC",
        disable=not progress,
    )
    try:
        while done < generations and eps > min_epsilon:
            t0 = time.perf_counter()
            abc = smc(done == 0)
            abc.load(db, int(run["abc_id"]), {})
            h = abc.run(max_nr_populations=1, minimum_epsilon=min_epsilon)
            done, eps = generations_done(out, int(run["abc_id"]))
            last = h.get_all_populations().iloc[-1]
            bar.set_postfix(
                eps=f"{eps:.3g}",
                accept=f"{last['particles'] / last['samples']:.2f}",
                s=f"{time.perf_counter() - t0:.1f}",
            )
            bar.update(1)
    finally:
        bar.close()
    h = pyabc.History(db, _id=int(run["abc_id"]), create=False)
    run.update(generations=int(done), epsilon=float(eps), evaluations=int(h.total_nr_simulations))
    write_text(out / RUN, json.dumps(run, indent=1) + "\n")
    return run


# ------------------------------------------------------------------------------ outputs
def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float | Sequence[float]) -> np.ndarray:
    """Quantiles ``q`` of values ``x`` with weights ``w`` (the weighted empirical CDF at the
    midpoints of the weights, linearly interpolated; equal weights give the Hazen quantile)."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    order = np.argsort(x)
    x, w = x[order], w[order] / w.sum()
    cdf = np.cumsum(w) - 0.5 * w
    return np.interp(np.atleast_1d(q), cdf, x)


def last_population(out: Path, abc_id: int, fs: Sequence[Factor]) -> pd.DataFrame:
    """The last generation: one row per particle: ``particle, weight, distance``, the sampled
    values (``sampled:<key>``), the config values (``<key>``) and the readouts
    (``readout:<target id>``)."""
    import pyabc

    h = pyabc.History(f"sqlite:///{out / DB}", _id=abc_id, create=False)
    if h.max_t < 0:
        raise CalibrationError(f"{out / DB}: no complete generation yet")
    pop = h.get_population(h.max_t)
    rows = []
    for i, p in enumerate(pop.particles):
        row: dict[str, Any] = {
            "particle": i,
            "weight": float(p.weight),
            "distance": float(p.distance),
        }
        row.update({f"sampled:{f.key}": float(p.parameter[f.key]) for f in fs})
        row.update(config_values(fs, p.parameter))
        row.update({f"readout:{k}": float(v) for k, v in (p.sum_stat or {}).items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["weight"] /= table["weight"].sum()
    table.insert(1, "generation", int(h.max_t))
    return table


def summary(
    post: pd.DataFrame, fs: Sequence[Factor], truth: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Per parameter: the prior's range and scale, the weighted median and 2.5/97.5%
    quantiles, the 95% interval's width as a fraction of the prior's (in the sampled space),
    and the true value where known (the toy)."""
    rows = []
    w = post["weight"].to_numpy(float)
    for f in fs:
        q = weighted_quantile(post[f.key].to_numpy(float), w, QUANTILES)
        s = weighted_quantile(post[f"sampled:{f.key}"].to_numpy(float), w, [0.025, 0.975])
        row = {
            "parameter": f.key,
            "prior_lo": f.lo,
            "prior_hi": f.hi,
            "scale": "log-uniform" if f.log else "uniform",
            "median": q[1],
            "q2.5": q[0],
            "q97.5": q[2],
            "ci_width_of_prior": (s[1] - s[0]) / (f.bounds[1] - f.bounds[0]),
        }
        if truth is not None:
            row["true"] = truth.get(f.key, math.nan)
            row["true_in_ci"] = bool(q[0] <= row["true"] <= q[2])
        rows.append(row)
    return pd.DataFrame(rows)


def draws(post: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``min(n, particles)`` particles drawn by weight, without replacement, seeded."""
    n = int(min(n, len(post))) if n > 0 else 0
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(post), size=n, replace=False, p=post["weight"].to_numpy(float))
    return post.iloc[np.sort(idx)]


def _simulate_many(
    simulator: Callable, values: list[dict], jobs: int, progress: bool
) -> list[dict]:
    from tqdm import tqdm

    def safe(v: dict) -> dict:
        try:
            return simulator(v)
        except Exception:
            return {}

    if jobs <= 1 or len(values) <= 1:
        return [safe(v) for v in tqdm(values, desc="predictive", unit="sim", disable=not progress)]
    import multiprocessing as mp

    global _PREDICT  # the forked workers inherit it (the simulator need not pickle)
    _PREDICT = safe
    with mp.get_context("fork").Pool(min(jobs, len(values))) as pool:
        it = pool.imap(_predict_one, values)
        return list(
            tqdm(it, total=len(values), desc="predictive", unit="sim", disable=not progress)
        )


_PREDICT: Callable | None = None


def _predict_one(values: dict) -> dict:
    assert _PREDICT is not None
    return _PREDICT(values)


def predictive(
    simulator: Callable,
    post: pd.DataFrame,
    fs: Sequence[Factor],
    targets: Sequence[Target],
    skipped: Mapping[str, str],
    *,
    n: int = 20,
    jobs: int = 1,
    seed: int = 0,
    progress: bool = True,
    draws_path: Path | None = None,
) -> pd.DataFrame:
    """Posterior-predictive bands: simulate at up to ``n`` posterior draws; per target the
    2.5/50/97.5% quantiles of its readout, its band, and the verdict of the median (within
    band or not). Targets in ``skipped`` are listed with why. ``draws_path``: also write each
    draw (particle, parameter values, readouts) there."""
    sel = draws(post, n, seed)
    values = [{f.key: float(r[f.key]) for f in fs} for _, r in sel.iterrows()]
    sims = _simulate_many(simulator, values, jobs, progress) if len(values) else []
    if draws_path is not None:  # every draw's values and readouts, for an audit
        ids = [t.id for t in targets if t.id not in skipped]
        table = pd.DataFrame(
            [{"particle": int(p), **v, **{f"readout:{i}": s.get(i, math.nan) for i in ids}}
             for p, v, s in zip(sel["particle"], values, sims, strict=True)]
        )  # fmt: skip
        write_csv(draws_path, table)
    rows = []
    for t in targets:
        lo, hi = t.band
        row: dict[str, Any] = {
            "id": t.id,
            "role": t.role,
            "kind": t.kind,
            "readout": t.readout,
            "arm": t.arm,
            "window_days": t.window_text(),
            "unit": t.unit,
            "band_lo": lo,
            "band_hi": hi,
        }
        if t.id in skipped:
            row.update(
                {
                    "n_draws": 0,
                    "q2.5": math.nan,
                    "q50": math.nan,
                    "q97.5": math.nan,
                    "fraction_within": math.nan,
                    "verdict": f"not computed: {skipped[t.id]}",
                }
            )
            rows.append(row)
            continue
        ys = np.array([float(s.get(t.id, math.nan)) for s in sims], dtype=float)
        ok = ys[~np.isnan(ys)]  # +inf is a value (a ratio over 0: "more than any"), NaN is not
        method = "linear" if np.isfinite(ok).all() else "inverted_cdf"  # no inf - inf
        q = np.quantile(ok, QUANTILES, method=method) if len(ok) else np.full(3, math.nan)
        within = [verdict(t, y) == "within band" for y in ok]
        row.update(
            {
                "n_draws": len(ok),
                "q2.5": q[0],
                "q50": q[1],
                "q97.5": q[2],
                "fraction_within": float(np.mean(within)) if len(ok) else math.nan,
                "verdict": verdict(t, q[1]) if len(ok) else "no value",
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def predictive_chart(
    pred: pd.DataFrame, path: Path, prior: Mapping[str, tuple[float, float]] | None = None
) -> Path:
    """One row per computed target: its band (grey), the posterior-predictive 95% range (bar)
    and median (dot), and, when given, the prior's 95% range over a design (light bar); the x
    axis is log10 of readout over the band's reference (its geometric centre, or the limit of a
    censored band), so targets in different units share it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = pred[pred["n_draws"] > 0].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.36 * max(len(rows), 1)))
    for i, r in rows.iterrows():
        lo, hi = float(r["band_lo"]), float(r["band_hi"])
        if r["kind"] == "censored_upper":
            ref, blo, bhi = hi, -3.0, 0.0
        elif r["kind"] == "censored_lower":
            ref, blo, bhi = lo, 0.0, 3.0
        else:
            ref = math.sqrt(lo * hi)
            blo, bhi = math.log10(lo / ref), math.log10(hi / ref)
        y = len(rows) - 1 - i
        ax.barh(y, bhi - blo, left=blo, height=0.6, color="0.85", zorder=1)

        def lg(v: float, ref: float = ref) -> float:
            return math.log10(max(v, 1e-30) / ref)

        if prior is not None and r["id"] in prior:
            p_lo, p_hi = prior[r["id"]]
            ax.plot([lg(p_lo), lg(p_hi)], [y + 0.22, y + 0.22], color="C1", lw=2, alpha=0.5,
                    solid_capstyle="butt", zorder=2)  # fmt: skip
        color = "C2" if r["verdict"] == "within band" else "C3"
        ax.plot([lg(r["q2.5"]), lg(r["q97.5"])], [y, y], color=color, lw=2.5, zorder=3)
        ax.plot(lg(r["q50"]), y, "o", color=color, ms=5, zorder=4)
    labels = [f"{r['id']} ({r['role'][0]})" for _, r in rows.iterrows()]
    ax.set_yticks(range(len(rows)), labels[::-1], fontsize=7)
    ax.axvline(0, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("log10(readout / band reference)", fontsize=8)
    ax.set_xlim(-3.5, 3.5)
    ax.tick_params(labelsize=7)
    extra = "; orange: prior predictive (the design)" if prior else ""
    ax.set_title(
        "grey: target band; bar, dot: posterior-predictive 95% range, median\n"
        f"(green: median in band){extra}; c: calibrate, h: hold-out",
        fontsize=7,
    )
    fig.tight_layout()
    return write_figure(path, fig)


def corner(
    post: pd.DataFrame, fs: Sequence[Factor], path: Path, truth: Mapping[str, float] | None = None
) -> Path:
    """Pairwise scatter (point size by weight) and weighted histograms of the last generation,
    in the sampled space over the prior's range; true values (the toy) marked in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(fs)
    size = 2.2 * k + 0.6
    fig, axes = plt.subplots(k, k, figsize=(size, size), squeeze=False, constrained_layout=True)
    w = post["weight"].to_numpy(float)
    cols = [post[f"sampled:{f.key}"].to_numpy(float) for f in fs]
    label = [f"log10 {f.key}" if f.log else f.key for f in fs]
    true = [
        None
        if truth is None or f.key not in truth
        else (math.log10(truth[f.key]) if f.log else truth[f.key])
        for f in fs
    ]
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                lo, hi = float(cols[i].min()), float(cols[i].max())
                span = max(hi - lo, 1e-3 * (fs[i].bounds[1] - fs[i].bounds[0]))
                ax.hist(cols[i], bins=25, range=(lo, lo + span), weights=w, color="C0")
                if true[i] is not None:
                    ax.axvline(true[i], color="red", lw=1.2)
                ax.set_yticks([])
            else:
                ax.scatter(cols[j], cols[i], s=4 + 40 * w / w.max(), alpha=0.5, color="C0", lw=0)
                ax.set_xlim(fs[j].bounds)
                ax.set_ylim(fs[i].bounds)
                if true[i] is not None and true[j] is not None:
                    ax.plot(true[j], true[i], "x", color="red", ms=8, mew=2)
                ax.set_ylabel(label[i] if j == 0 else "", fontsize=7)
            ax.set_xlim(fs[j].bounds)
            ax.set_xlabel(label[j] if i == k - 1 else "", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle(
        f"posterior, generation {int(post['generation'].iloc[0])} ({len(post)} particles)",
        fontsize=9,
    )
    return write_figure(path, fig)


def calibrated_yaml(
    summ: pd.DataFrame, run: Mapping[str, Any], model: str, overrides: Sequence[str]
) -> str:
    """``calibrated.yaml``: the posterior medians as config overrides, with where they came
    from (``source: calibrated (posterior median, run <id>)``)."""
    import yaml

    values = {r.parameter: float(f"{r.median:.6g}") for r in summ.itertuples()}
    doc = {
        "source": f"calibrated (posterior median, run {run['run_id']})",
        "run_id": run["run_id"],
        "model": model,
        "generations": int(run.get("generations", 0)),
        "epsilon": float(run.get("epsilon", math.nan)),
        "values": values,
        "overrides": [f"{k}={v:g}" for k, v in values.items()],
        "intervals_95": {
            r["parameter"]: [float(f"{r['q2.5']:.6g}"), float(f"{r['q97.5']:.6g}")]
            for _, r in summ.iterrows()
        },
        "run_overrides": list(overrides),
    }
    use = (
        "(the toy's parameters are not config keys)"
        if model == "toy"
        else "apply with\n#   abm-run " + " ".join(doc["overrides"])
    )
    head = f"# abm-calibrate: posterior medians (and 95% intervals) of the last generation; {use}\n"
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
