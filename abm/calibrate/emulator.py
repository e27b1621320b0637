"""Emulator-assisted calibration: a simulated design, a sensitivity screen, Gaussian-process
emulators of the readouts, and ABC-SMC on the emulators (``abm-calibrate --emulator N``).

Data flow: the factors (priors) -> :func:`design_points` (a scrambled Sobol sequence in the
sampled space: any first N rows are a space-filling design, so a design can grow) -> the real
simulator at each point (:func:`run_design`, forked workers, one row appended to
``OUT/design/design.csv`` as each finishes: resumable) -> :func:`screen` (PRCC of each target's
log10 readout on each factor, t-test p-values and bootstrap intervals:
``OUT/design/screen.csv``; a factor is *influential* when for some used target ``p <
SCREEN_P`` and ``|PRCC| >= SCREEN_MIN``) -> :class:`Emulator` (one Gaussian process per
target on log10 readout over the influential factors, scaled to the unit cube; its white-noise
term holds the seed-to-seed noise and the effect of the screened-out factors; leave-one-out
errors in ``OUT/design/emulator.csv``) -> :class:`EmulatedModel`, the model pyabc calls: a
readout *drawn* from the emulator's predictive distribution (mean and standard deviation), so
the posterior carries the emulator's uncertainty -> :func:`abm.calibrate.abc.run_abc` as for
the real model -> the posterior-predictive check re-simulates posterior draws with the
**real** model (:func:`abm.calibrate.abc.predictive`): the emulator is judged by the
simulator, not by itself.

This is history matching's idea (spend the expensive runs on a design, learn where the targets
can be met, then sample) with ABC in place of implausibility cuts: the emulator's variance
enters each particle's readouts, so a region the emulator is unsure of is neither kept nor
cut with false confidence.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.calibrate.targets import Target
from abm.sweep.outdir import request_diff, write_figure, write_text
from abm.sweep.sensitivity import Factor

DESIGN_DIR = "design"
DESIGN, DESIGN_REQUEST = "design.csv", "request.json"
SCREEN, EMULATOR = "screen.csv", "emulator.csv"
SCREEN_PNG, EMULATOR_PNG = "screen.png", "emulator.png"
SCREEN_MIN = 0.2  # |PRCC| below this is not influential, however small its p-value
SCREEN_P = 0.01  # t-test p-value of PRCC below which a parameter is influential on a target
CLIP_DECADES = 3.0  # log readouts are clipped this far beyond the target's band


class DesignError(ValueError):
    """A design folder that cannot be used; the message is one line."""


# ------------------------------------------------------------------------------ the design
def design_points(fs: Sequence[Factor], n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` points (rows x factors, sampled space) of a scrambled Sobol sequence
    over the factors' bounds, seeded: the first ``m < n`` rows of a longer design are the
    design of ``m``."""
    from scipy.stats import qmc

    sob = qmc.Sobol(d=len(fs), scramble=True, seed=seed)
    with warnings.catch_warnings():  # n not a power of 2: balance is slightly worse
        warnings.simplefilter("ignore", UserWarning)
        u = sob.random(int(n))
    lo = np.array([f.bounds[0] for f in fs])
    hi = np.array([f.bounds[1] for f in fs])
    return lo + u * (hi - lo)


def design_request(
    model: str, fs: Sequence[Factor], targets: Sequence[Target], overrides: Sequence[str],
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """What a design is (not its size: a design can grow)."""
    return {
        "model": model,
        "factors": [{k: v for k, v in asdict(f).items() if k != "origin"} for f in fs],
        "targets": sorted(t.id for t in targets),
        "overrides": sorted(overrides),
        "seed": int(seed),
        "sequence": "scipy.stats.qmc.Sobol(scramble=True, seed=seed)",
    }


def design_state(folder: Path, req: Mapping[str, Any]) -> pd.DataFrame | None:
    """The rows already simulated in ``folder`` for ``req`` (None: none yet). Raises
    :class:`DesignError` when the folder holds a design of another request."""
    rpath, dpath = folder / DESIGN_REQUEST, folder / DESIGN
    if not rpath.exists():
        if dpath.exists():
            raise DesignError(f"{dpath} exists without {rpath}: move it away first")
        return None
    try:
        old = json.loads(rpath.read_text())
    except (OSError, ValueError) as exc:
        raise DesignError(f"{rpath}: unreadable ({exc})") from None
    diff = request_diff(old, req)
    if diff:
        raise DesignError(
            f"{folder} holds a design of another request (it differs in: {', '.join(diff)}); "
            "give another --out, or --force-new"
        )
    if not dpath.exists() or dpath.stat().st_size == 0:
        return None
    _drop_partial_line(dpath)
    return pd.read_csv(dpath)


def _drop_partial_line(path: Path) -> None:
    """A process killed while writing a row leaves it unterminated: cut the file back to its
    last complete line (that point is simulated again)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


_SIMULATE: Callable | None = None


def _simulate_row(item: tuple[int, dict]) -> tuple[int, dict, float, str]:
    assert _SIMULATE is not None
    i, values = item
    t0 = time.perf_counter()
    try:
        out, err = _SIMULATE(values), ""
    except Exception as exc:  # one failed point must not stop the design
        out, err = {}, (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return i, out, time.perf_counter() - t0, err


def run_design(
    simulator: Callable[[Mapping[str, float]], dict[str, float]],
    fs: Sequence[Factor],
    targets: Sequence[Target],
    req: Mapping[str, Any],
    folder: Path,
    n: int,
    *,
    jobs: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Simulate the design's first ``n`` points that ``folder`` does not hold yet; each row is
    appended to ``design.csv`` (and flushed) as its simulation ends. Returns the first ``n``
    rows. Columns: ``point``, ``sampled:<key>``, ``<key>`` (config value), ``readout:<id>``,
    ``seconds``, ``error``."""
    from tqdm import tqdm

    from abm.calibrate.abc import config_values

    folder.mkdir(parents=True, exist_ok=True)
    held = design_state(folder, req)
    if held is None:
        write_text(folder / DESIGN_REQUEST, json.dumps(req, indent=2) + "\n")
    done = set() if held is None else set(held["point"].astype(int))
    x = design_points(fs, n, int(req["seed"]))
    todo = [
        (i, config_values(fs, {f.key: x[i, j] for j, f in enumerate(fs)}))
        for i in range(n)
        if i not in done
    ]
    ids = [t.id for t in targets]
    cols = ["point", *(f"sampled:{f.key}" for f in fs), *(f.key for f in fs),
            *(f"readout:{i}" for i in ids), "seconds", "error"]  # fmt: skip
    dpath = folder / DESIGN
    new = not dpath.exists() or dpath.stat().st_size == 0
    if todo:
        with dpath.open("a", newline="") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(cols)
                fh.flush()

            def write(i: int, got: dict, sec: float, err: str) -> None:
                w.writerow([i, *x[i], *(todo_values[i][f.key] for f in fs),
                            *(repr(float(got.get(t, math.nan))) for t in ids),
                            f"{sec:.1f}", err])  # fmt: skip
                fh.flush()

            todo_values = dict(todo)
            bar = tqdm(total=len(todo), desc="design", unit="sim", disable=not progress)
            global _SIMULATE
            _SIMULATE = simulator
            if jobs <= 1 or len(todo) == 1:
                for item in todo:
                    write(*_simulate_row(item))
                    bar.update()
            else:
                import multiprocessing as mp

                with mp.get_context("fork").Pool(min(jobs, len(todo))) as pool:
                    for res in pool.imap_unordered(_simulate_row, todo):
                        write(*res)
                        bar.update()
            bar.close()
    table = pd.read_csv(dpath)
    return table[table["point"] < n].sort_values("point").reset_index(drop=True)


def log_readouts(table: pd.DataFrame, target: Target) -> np.ndarray:
    """log10 of a target's design readouts, clipped to :data:`CLIP_DECADES` beyond its band
    (a readout of 0, or an infinite ratio, is as far off as one 3 decades out: no outlier
    of -inf or -12 bends the fit); NaN stays NaN."""
    y = table[f"readout:{target.id}"].to_numpy(float)
    lo, hi = target.band
    lo_ref = lo if lo > 0 else hi
    hi_ref = hi if math.isfinite(hi) else lo
    floor = math.log10(lo_ref) - CLIP_DECADES
    ceil = math.log10(hi_ref) + CLIP_DECADES
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log10(np.where(y > 0, y, 0.0))  # 0 and below: -inf, clipped to the floor
    return np.where(np.isnan(y), np.nan, np.clip(ly, floor, ceil))


def sampled_matrix(table: pd.DataFrame, fs: Sequence[Factor]) -> np.ndarray:
    """The design's points in the sampled space (rows x factors)."""
    return table[[f"sampled:{f.key}" for f in fs]].to_numpy(float)


# ------------------------------------------------------------------------------ the screen
def screen(
    table: pd.DataFrame, fs: Sequence[Factor], targets: Sequence[Target], *,
    resamples: int = 1000, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """PRCC of each target's log10 readout on each factor over the design, with its t-test
    p-value (n - 2 - (k - 1) degrees of freedom; Marino et al. 2008) and percentile-bootstrap
    95% interval. Rows: target, role, parameter, prcc, p_value, ci_low, ci_high, influential
    (``p < SCREEN_P`` and ``|PRCC| >= SCREEN_MIN``). The decision uses the t test: with a
    design only a few points per parameter larger than the parameter count, bootstrap resamples
    (~63% distinct points) leave the rank regression nearly saturated and their intervals
    span most of [-1, 1]; they are reported, not used."""
    from abm.sweep.sensitivity import prcc_bootstrap, prcc_pvalue

    x = sampled_matrix(table, fs)
    rows = []
    for t in targets:
        y = log_readouts(table, t)
        ok = np.isfinite(y)
        if ok.sum() < len(fs) + 3 or np.ptp(y[ok]) == 0:
            for f in fs:
                rows.append({"target": t.id, "role": t.role, "parameter": f.key,
                             "prcc": math.nan, "p_value": math.nan, "ci_low": math.nan,
                             "ci_high": math.nan, "influential": False})  # fmt: skip
            continue
        r, lo, hi = prcc_bootstrap(x[ok], y[ok], resamples=resamples, seed=seed)
        pv = prcc_pvalue(r, int(ok.sum()), len(fs))
        for j, f in enumerate(fs):
            infl = bool(np.isfinite(r[j]) and abs(r[j]) >= SCREEN_MIN and pv[j] < SCREEN_P)
            rows.append({"target": t.id, "role": t.role, "parameter": f.key, "prcc": r[j],
                         "p_value": pv[j], "ci_low": lo[j], "ci_high": hi[j],
                         "influential": infl})  # fmt: skip
    return pd.DataFrame(rows)


def influential(scr: pd.DataFrame, fs: Sequence[Factor]) -> list[Factor]:
    """The factors influential on at least one ``calibrate`` target, in the factors' order."""
    keys = set(scr.loc[scr["influential"] & (scr["role"] == "calibrate"), "parameter"])
    return [f for f in fs if f.key in keys]


def screen_text(scr: pd.DataFrame, fs: Sequence[Factor]) -> str:
    """Lines for the terminal: each factor's largest |PRCC| over the calibrate targets (with
    its target and interval) and whether it is kept."""
    keep = {f.key for f in influential(scr, fs)}
    lines = [f"screen (PRCC on log10 readouts over the design; kept when p < {SCREEN_P:g} "
             f"(t test) and |PRCC| >= {SCREEN_MIN:g} for a calibrate target):"]  # fmt: skip
    cal = scr[scr["role"] == "calibrate"]
    for f in fs:
        rows = cal[cal["parameter"] == f.key].dropna(subset=["prcc"])
        if rows.empty:
            lines.append(
                f"  {f.key}: no finite PRCC on a calibrate target -> fixed at its config value"
            )
            continue
        r = rows.loc[rows["prcc"].abs().idxmax()]
        verdict = "kept" if f.key in keep else "fixed at its config value"
        lines.append(
            f"  {f.key}: max |PRCC| {r['prcc']:+.2f} (p {r['p_value']:.1g}) on {r['target']} "
            f"-> {verdict}"
        )
    return "\n".join(lines)


def screen_chart(scr: pd.DataFrame, path: Path) -> Path:
    """Heat map of PRCC (targets x parameters); a dot marks an influential pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = scr.pivot(index="target", columns="parameter", values="prcc")
    infl = scr.pivot(index="target", columns="parameter", values="influential")
    order = list(dict.fromkeys(scr["target"]))
    params = list(dict.fromkeys(scr["parameter"]))
    tab, infl = tab.loc[order, params], infl.loc[order, params]
    fig, ax = plt.subplots(figsize=(3.0 + 0.5 * len(params), 2.2 + 0.3 * len(order)))
    im = ax.imshow(tab.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    yy, xx = np.nonzero(infl.to_numpy(bool))
    ax.scatter(xx, yy, s=12, c="k", marker="o")
    ax.set_xticks(range(len(params)), [p.removeprefix("biology.") for p in params],
                  rotation=60, ha="right", fontsize=7)  # fmt: skip
    roles = dict(zip(scr["target"], scr["role"], strict=False))
    ax.set_yticks(range(len(order)), [f"{t} ({roles[t][0]})" for t in order], fontsize=7)
    fig.colorbar(im, ax=ax, label="PRCC (log10 readout)")
    ax.set_title(f"PRCC over the design\ndot: p < {SCREEN_P:g} and |PRCC| >= {SCREEN_MIN:g}\n"
                 "c: calibrate, h: hold-out target", fontsize=7)  # fmt: skip
    fig.tight_layout()
    return write_figure(path, fig)


def emulator_chart(emu: Emulator, targets: Sequence[Target], path: Path) -> Path:
    """Leave-one-out predictions against the simulated design readouts, one panel a target,
    95% intervals as bars, the 1:1 line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [t for t in targets if t.id in emu.gps]
    cols = min(4, max(1, len(ts)))
    rows = max(1, math.ceil(len(ts) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.8 * rows), squeeze=False)
    for ax, t in zip(axes.flat, ts, strict=False):
        y, mu, sd = emu.loo(t.id)
        ax.errorbar(y, mu, yerr=1.96 * sd, fmt="o", ms=3, lw=0.6, alpha=0.8)
        lo, hi = min(y.min(), (mu - 1.96 * sd).min()), max(y.max(), (mu + 1.96 * sd).max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set_title(f"{t.id} ({t.role})", fontsize=8)
        ax.set_xlabel("simulated log10", fontsize=7)
        ax.set_ylabel("emulated (LOO) log10", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(ts) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return write_figure(path, fig)


# ------------------------------------------------------------------------------ the emulator
class Emulator:
    """One Gaussian process per target on its log10 readout over ``fs`` (the influential
    factors), inputs scaled to the unit cube of the factors' sampled bounds. Kernel: constant x
    anisotropic RBF (one length scale per factor) + white noise (seed noise and the
    screened-out factors), hyperparameters by maximum likelihood (scikit-learn, 3 restarts)."""

    def __init__(self, table: pd.DataFrame, fs: Sequence[Factor], targets: Sequence[Target],
                 seed: int = 0) -> None:  # fmt: skip
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        self.fs = list(fs)
        self.lo = np.array([f.bounds[0] for f in self.fs])
        self.span = np.array([f.bounds[1] - f.bounds[0] for f in self.fs])
        x = self.scale(sampled_matrix(table, self.fs))
        self.gps: dict[str, Any] = {}
        self.data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        d = len(self.fs)
        for t in targets:
            y = log_readouts(table, t)
            ok = np.isfinite(y)
            if ok.sum() < d + 3:
                continue
            kernel = ConstantKernel(1.0, (1e-4, 1e3)) * RBF(np.full(d, 0.5), (0.02, 50.0)) + \
                WhiteKernel(0.01, (1e-6, 1.0))  # fmt: skip
            gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=3,
                                          random_state=seed)  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(x[ok], y[ok])
            self.gps[t.id] = gp
            self.data[t.id] = (x[ok], y[ok])

    def scale(self, sampled: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(sampled) - self.lo) / self.span

    def predict(self, tid: str, sampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of log10 readout at points in the sampled space; the
        deviation includes the white-noise term (a new simulation's spread)."""
        return self.gps[tid].predict(self.scale(sampled), return_std=True)

    def loo(self, tid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Leave-one-out (observed, predicted mean, predicted sd) with the fitted kernel held
        fixed (each point left out, the rest refitted without re-optimising)."""
        from sklearn.gaussian_process import GaussianProcessRegressor

        x, y = self.data[tid]
        gp = self.gps[tid]
        mu, sd = np.empty(len(y)), np.empty(len(y))
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            g = GaussianProcessRegressor(gp.kernel_, normalize_y=True, optimizer=None)
            g.fit(x[keep], y[keep])
            m, s = g.predict(x[i : i + 1], return_std=True)
            mu[i], sd[i] = m[0], s[0]
        return y, mu, sd

    def diagnostics(self, targets: Sequence[Target]) -> pd.DataFrame:
        """Per emulated target: design points, leave-one-out RMSE (log10), the readout's own
        spread over the design (log10 sd), R² of the LOO predictions, the fraction of left-out
        points inside their 95% interval, the fitted noise sd and length scales."""
        rows = []
        for t in targets:
            if t.id not in self.gps:
                continue
            y, mu, sd = self.loo(t.id)
            err = y - mu
            k = self.gps[t.id].kernel_
            ls = np.atleast_1d(k.k1.k2.length_scale)
            noise = math.sqrt(k.k2.noise_level) * float(self.gps[t.id]._y_train_std)
            rows.append({
                "target": t.id, "role": t.role, "n": len(y),
                "loo_rmse_log10": float(np.sqrt(np.mean(err**2))),
                "spread_log10": float(np.std(y)),
                "loo_r2": float(1 - np.sum(err**2) / max(np.sum((y - y.mean()) ** 2), 1e-300)),
                "loo_within_95": float(np.mean(np.abs(err) <= 1.96 * sd)),
                "noise_sd_log10": noise,
                **{f"length:{f.key}": float(v) for f, v in zip(self.fs, ls, strict=True)},
            })  # fmt: skip
        return pd.DataFrame(rows)


class EmulatedModel:
    """The model pyabc calls in place of the simulator: each target's readout drawn from the
    emulator's predictive distribution at the particle (normal in log10), so particles carry
    the emulator's uncertainty and the seed noise it learned."""

    def __init__(self, emulator: Emulator, target_ids: Sequence[str], seed: int = 0) -> None:
        self.emulator = emulator
        self.target_ids = [t for t in target_ids if t in emulator.gps]
        self.seed = int(seed)

    def __call__(self, par: Mapping[str, float]) -> dict[str, float]:
        from abm.calibrate.joint import particle_seed

        vals = {f.key: float(par[f.key]) for f in self.emulator.fs}
        rng = np.random.default_rng(particle_seed(vals, self.seed))  # one draw per particle
        x = np.array([[vals[f.key] for f in self.emulator.fs]])
        out = {}
        for tid in self.target_ids:
            mu, sd = self.emulator.predict(tid, x)
            out[tid] = float(10.0 ** rng.normal(mu[0], sd[0]))
        return out
