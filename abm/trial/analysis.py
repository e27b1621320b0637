"""Virtual trial, analysis stage: plausibility, paired outcomes, responders, rates, predictors.

Data flow: the job folders of ``OUT/runs/baseline`` and ``OUT/runs/arms`` (read with
:func:`abm.sweep.collect.collect_jobs` and :func:`abm.sweep.launch.job_readouts`) and the maps
``OUT/baseline_map.csv`` / ``OUT/arms_map.csv`` (design row -> patient, arm, seed) ->
:func:`baseline_table` (each patient's untreated SF IL-6, IL-1β, TNF in pg/mL and the
plausibility verdict) and :func:`arm_outcomes` (per patient x arm x seed: the readouts at the
responder day, daily mean, and their change against the same patient and seed untreated) ->
:func:`patient_outcomes` (per patient x arm: the seed means of the paired changes and the
responder verdict of :func:`classify`) -> :func:`responder_rates` (Wilson intervals),
:func:`predictors` (PRCC with bootstrap intervals, :mod:`abm.sweep.sensitivity`),
:func:`effusion_table` (responders against synovial-fluid volume) -> :mod:`abm.trial.report`.

The numerical rules (:func:`relative_change`, :func:`classify`, :func:`wilson_interval`) are
pure functions on numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.trial.population import PG_PER_NG, TrialSpec

TOL = 1e-9  # slack of the responder thresholds (a change of exactly -20% is a response)


# -- pure rules ---------------------------------------------------------------------------
def relative_change(treated: Any, untreated: Any) -> np.ndarray:
    """(treated - untreated) / untreated, elementwise; NaN where the untreated value is 0 or
    either value is not finite (no relative change exists)."""
    t = np.asarray(treated, dtype=float)
    u = np.asarray(untreated, dtype=float)
    ok = np.isfinite(t) & np.isfinite(u) & (u != 0)
    out = np.full(np.broadcast(t, u).shape, np.nan)
    np.divide(t - u, u, out=out, where=ok)
    return out


def classify(pain_rel_change: Any, synovitis_change: Any, pain_max_rel_change: float = -0.2,
             synovitis_max_abs_change: float = 0.0, tol: float = TOL) -> np.ndarray:  # fmt: skip
    """Responder (True) where the pain readout's relative change is <= ``pain_max_rel_change``
    (-0.2: down by 20% or more) AND the synovitis readout's absolute change is <=
    ``synovitis_max_abs_change`` (0: not worse); both with ``tol`` slack so that a change of
    exactly the threshold counts. NaN in either change (e.g. an untreated pain of 0) is a
    non-responder."""
    p = np.asarray(pain_rel_change, dtype=float)
    s = np.asarray(synovitis_change, dtype=float)
    with np.errstate(invalid="ignore"):
        return (p <= pain_max_rel_change + tol) & (s <= synovitis_max_abs_change + tol)


def wilson_interval(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n at confidence ``conf``; (nan, nan) for
    n = 0."""
    from scipy.stats import norm

    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k}, n={n}")
    z = float(norm.ppf(0.5 + conf / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval always holds p (at k = 0 or n rounding can put an edge a hair past it)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def plausible(values_pg_ml: Any, low_pg_ml: float, high_pg_ml: float,
              tolerance_log10: float) -> np.ndarray:  # fmt: skip
    """Within ``tolerance_log10`` decades beyond [low, high] (pg/mL): low / 10**tol <= value
    <= high * 10**tol (with a relative slack of 1e-9). NaN is not plausible."""
    v = np.asarray(values_pg_ml, dtype=float)
    f = 10.0**tolerance_log10
    with np.errstate(invalid="ignore"):
        return (v >= low_pg_ml / f * (1 - 1e-9)) & (v <= high_pg_ml * f * (1 + 1e-9))


# -- reading the runs -----------------------------------------------------------------------
def design_jobs(runs: Path, design: Path, n: int) -> dict[int, pd.Series]:
    """{design row: its job (a :func:`abm.sweep.collect.collect_jobs` row)} for the jobs of
    ``runs`` that applied a row of ``design`` (a complete job wins over another attempt)."""
    from abm.sweep.design import design_jobs as jobs_of_design

    return jobs_of_design(runs, design, n)[0]


def snap_day(day: float, dt_min: float) -> float:
    """``day`` on the run's step grid (a run of ``sim.days = day`` ends at the nearest whole
    step: :func:`abm.config.n_steps`), so that a readout at the end of a run finds its row."""
    from abm.units import MIN_PER_DAY

    return round(day * MIN_PER_DAY / dt_min) * dt_min / MIN_PER_DAY


def row_readouts(by_row: dict[int, pd.Series], metrics: Sequence[str], day: float,
                 window_days: float, dt_min: float | None = None) -> pd.DataFrame:  # fmt: skip
    """Wide table ``row`` + one column per metric: the complete jobs' readouts at ``day``
    (snapped to the step grid of ``dt_min`` minutes when given; mean over (day - window,
    day]; NaN where the run has no row there)."""
    from abm.sweep.launch import job_readouts

    done = [j for j in by_row.values() if j["status"] == "complete"]
    cols = ["row", *metrics]
    if not done:
        return pd.DataFrame(columns=cols)
    jobs = pd.DataFrame(done)
    if dt_min:
        day = snap_day(day, dt_min)
    long = job_readouts(jobs, list(metrics), [day], window_days)
    if not len(long):
        return pd.DataFrame(columns=cols)
    wide = long.pivot_table(index="job", columns="metric", values="value", dropna=False)
    row_of = {j["job"]: r for r, j in by_row.items()}
    wide.insert(0, "row", [row_of[j] for j in wide.index])
    for m in metrics:
        if m not in wide.columns:
            wide[m] = np.nan
    return wide.reset_index(drop=True)[cols]


# -- baseline and plausibility ---------------------------------------------------------------
def baseline_table(spec: TrialSpec, population: pd.DataFrame, bmap: pd.DataFrame,
                   values: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Per patient: the features, the median over seeds of each plausibility readout at the
    end of the baseline (pg/mL, ``<metric>_pg_ml``), whether each lies in its band
    (``<metric>_ok``) and ``accepted`` (every enforced readout in its band, a baseline for
    every seed), with ``reason`` for a rejection."""
    merged = bmap.merge(values, on="row", how="left")
    table = population.copy()
    metrics = [r.metric for r in spec.readouts]
    for r in spec.readouts:
        pg = merged.groupby("patient")[r.metric].median() * PG_PER_NG
        table[f"{r.metric}_pg_ml"] = table["patient"].map(pg).astype(float)
    finite = np.isfinite(values[metrics].to_numpy(float)).all(axis=1)
    done = set(values.loc[finite, "row"].astype(int))
    have = bmap.groupby("patient")["row"].apply(lambda rows: set(rows) <= done)
    complete = table["patient"].map(have).fillna(False).astype(bool)
    accepted = complete.to_numpy().copy()
    reasons: list[list[str]] = [[] if c else ["no complete baseline"] for c in complete]
    for r in spec.readouts:
        lo, hi = r.band(spec.tolerance_log10)
        ok = plausible(table[f"{r.metric}_pg_ml"], r.cohort_low_pg_ml, r.cohort_high_pg_ml,
                       spec.tolerance_log10)  # fmt: skip
        table[f"{r.metric}_ok"] = ok
        if r.enforce:
            for i in np.flatnonzero(~ok & complete.to_numpy()):
                v = table[f"{r.metric}_pg_ml"].iloc[i]
                reasons[i].append(f"{r.metric} {v:.3g} pg/mL outside [{lo:.3g}, {hi:.3g}]")
            accepted &= ok
    table["accepted"] = accepted
    table["reason"] = ["; ".join(x) for x in reasons]
    return table


# -- arms: paired outcomes ------------------------------------------------------------------
def arm_outcomes(spec: TrialSpec, amap: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Per patient x treated arm x seed: the responder readouts of the arm and of the same
    patient and seed untreated (``*_control``), the pain index's relative change and the
    synovitis score's absolute change; then each declared benefit's readout, its control and
    its change (``Benefit.column``: relative or absolute)."""
    rs = spec.responder
    pain, syn = rs.pain_metric, rs.synovitis_metric
    metrics = [pain, syn, *(b.metric for b in spec.benefits)]
    merged = amap.merge(values, on="row", how="left")
    for m in metrics:
        if m not in merged.columns:
            merged[m] = np.nan
    ctrl = merged[merged["arm"] == spec.control_arm][["patient", "seed", *metrics]]
    ctrl = ctrl.rename(columns={m: f"{m}_control" for m in metrics})
    treated = merged[merged["arm"] != spec.control_arm]
    out = treated.merge(ctrl, on=["patient", "seed"], how="left")
    out["pain_rel_change"] = relative_change(out[pain], out[f"{pain}_control"])
    out["synovitis_change"] = out[syn] - out[f"{syn}_control"]
    cols = ["patient", "arm", "seed", "row", pain, f"{pain}_control", "pain_rel_change", syn,
            f"{syn}_control", "synovitis_change"]  # fmt: skip
    for b in spec.benefits:
        t, c = out[b.metric].to_numpy(float), out[f"{b.metric}_control"].to_numpy(float)
        out[b.column] = relative_change(t, c) if b.change == "relative" else t - c
        cols += [b.metric, f"{b.metric}_control", b.column]
    return out[cols].sort_values(["arm", "patient", "seed"], kind="stable").reset_index(drop=True)


def patient_outcomes(
    spec: TrialSpec, outcomes: pd.DataFrame, accepted: Sequence[int]
) -> pd.DataFrame:
    """Per accepted patient x treated arm: ``n_seeds`` with both runs, the seed means of the
    paired changes (NaN if any seed lacks one: no verdict from part of the seeds), and
    ``responder`` (:func:`classify` on the means; False without a verdict) with
    ``classified`` saying whether a verdict exists; then the seed mean of each declared
    benefit's change (NaN unless every seed has it)."""
    rs = spec.responder
    extra = [b.column for b in spec.benefits]
    rows = []
    for arm in spec.treated_arms:
        for p in accepted:
            o = outcomes[(outcomes["arm"] == arm.name) & (outcomes["patient"] == p)]
            n_ok = int(
                (np.isfinite(o["pain_rel_change"]) & np.isfinite(o["synovitis_change"])).sum()
            )
            full = n_ok == spec.seeds and len(o) == spec.seeds
            pain = float(o["pain_rel_change"].mean()) if full else math.nan
            syn = float(o["synovitis_change"].mean()) if full else math.nan
            row = {"patient": int(p), "arm": arm.name, "n_seeds": n_ok,
                   "pain_rel_change": pain, "synovitis_change": syn}  # fmt: skip
            for c in extra:
                v = o[c].to_numpy(float)
                whole = len(o) == spec.seeds and np.isfinite(v).all()
                row[c] = float(v.mean()) if whole else math.nan
            rows.append(row)
    table = pd.DataFrame(rows, columns=["patient", "arm", "n_seeds", "pain_rel_change",
                                        "synovitis_change", *extra])  # fmt: skip
    for c in ("pain_rel_change", "synovitis_change", *extra):
        table[c] = table[c].astype(float)
    table["n_seeds"] = table["n_seeds"].astype(int)
    pain, syn = table["pain_rel_change"].to_numpy(), table["synovitis_change"].to_numpy()
    table["classified"] = np.isfinite(pain) & np.isfinite(syn)
    table["responder"] = classify(table["pain_rel_change"], table["synovitis_change"],
                                  rs.pain_max_rel_change, rs.synovitis_max_abs_change)  # fmt: skip
    first = ["patient", "arm", "n_seeds", "pain_rel_change", "synovitis_change", "classified",
             "responder"]  # fmt: skip
    return table[[*first, *extra]]


def responder_rates(spec: TrialSpec, patients: pd.DataFrame) -> pd.DataFrame:
    """Per treated arm: patients with a verdict ``n``, ``responders``, ``rate`` and its Wilson
    interval, ``unclassified`` patients, the median pain change (%) and the dose."""
    rows = []
    for arm in spec.treated_arms:
        t = patients[patients["arm"] == arm.name]
        c = t[t["classified"]]
        n, k = len(c), int(c["responder"].sum())
        lo, hi = wilson_interval(k, n, spec.confidence)
        rows.append({"arm": arm.name, "label": arm.label, "therapy": arm.therapy,
                     "dose": arm.dose if arm.therapy == "msc" and arm.dose_per_ml is None
                     else math.nan,
                     "prelicensed": arm.prelicensed, "n": n, "responders": k,
                     "rate": k / n if n else math.nan, "ci_low": lo, "ci_high": hi,
                     "unclassified": len(t) - n,
                     "median_pain_change_pct": _median_pct(c)})  # fmt: skip
    return pd.DataFrame(rows)


def _median_pct(t: pd.DataFrame) -> float:
    """Median pain change of the rows of ``t`` in percent (NaN for none)."""
    return 100 * float(t["pain_rel_change"].median()) if len(t) else math.nan


# -- continuous benefits --------------------------------------------------------------------
def outcome_columns(spec: TrialSpec) -> list[tuple[str, str, bool]]:
    """The patient-table columns analysed as outcomes, in order: (column, readout, lower is
    better): the pain change first, then every declared benefit."""
    return [("pain_rel_change", spec.responder.pain_metric, True),
            *((b.column, b.metric, b.better == "lower") for b in spec.benefits)]  # fmt: skip


def benefit_summary(spec: TrialSpec, patients: pd.DataFrame) -> pd.DataFrame:
    """Per treated arm and outcome (:func:`outcome_columns`): the patients with a value ``n``,
    the mean of their changes with a bootstrap percentile interval over patients
    (``bootstrap_resamples``, ``confidence``), the median and range, and ``n_benefit`` /
    ``n_harm``: patients whose change has the sign of a benefit / of a harm."""
    rng = np.random.default_rng(spec.sample_seed)
    alpha = (1 - spec.confidence) / 2
    rows = []
    for arm in spec.treated_arms:
        t = patients[patients["arm"] == arm.name]
        for col, metric, lower in outcome_columns(spec):
            v = t[col].to_numpy(float) if col in t.columns else np.array([])
            v = v[np.isfinite(v)]
            n = len(v)
            lo = hi = math.nan
            if n >= 2:
                means = v[rng.integers(0, n, size=(spec.bootstrap_resamples, n))].mean(axis=1)
                lo, hi = (float(q) for q in np.quantile(means, [alpha, 1 - alpha]))
            good = v < 0 if lower else v > 0
            bad = v > 0 if lower else v < 0
            rows.append({"arm": arm.name, "outcome": col, "readout": metric,
                         "better": "lower" if lower else "higher", "n": n,
                         "mean": float(v.mean()) if n else math.nan, "ci_low": lo,
                         "ci_high": hi, "median": float(np.median(v)) if n else math.nan,
                         "min": float(v.min()) if n else math.nan,
                         "max": float(v.max()) if n else math.nan,
                         "n_benefit": int(good.sum()), "n_harm": int(bad.sum())})  # fmt: skip
    return pd.DataFrame(rows)


# -- predictors of response ------------------------------------------------------------------
def predictors(spec: TrialSpec, population: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Per outcome (:func:`outcome_columns`: the pain change, then each declared benefit),
    treated arm and feature: the partial rank correlation (PRCC) of the feature with the
    patient's change, with a bootstrap percentile interval and its p-value, over the patients
    with a value (the pain change: with a verdict); where there are fewer than k + 3 of them
    for k varying features (PRCC undefined), the Spearman rank correlation instead (``method``
    says which)."""
    from scipy.stats import spearmanr

    from abm.sweep.sensitivity import prcc_bootstrap, prcc_pvalue

    keys = [f.key for f in spec.features]
    rows = []
    for col, _, _ in outcome_columns(spec):
        for arm in spec.treated_arms:
            t = patients[patients["arm"] == arm.name]
            if col == "pain_rel_change":
                t = t[t["classified"]]
            if col in t.columns:
                t = t[np.isfinite(t[col].to_numpy(float))]
            data = t.merge(population[["patient", *keys]], on="patient", how="left")
            y = data[col].to_numpy(float) if col in data.columns else np.array([])
            varying = [k for k in keys if len(data) and np.ptp(data[k].to_numpy(float)) > 0]
            n, k = len(y), len(varying)
            if n < 3 or not varying or np.ptp(y) == 0:
                for key in keys:
                    rows.append(_pred_row(col, arm.name, key, "none", n, *[math.nan] * 4))
                continue
            x = data[varying].to_numpy(float)
            if n >= k + 3:
                r, lo, hi = prcc_bootstrap(x, y, resamples=spec.bootstrap_resamples,
                                           conf=spec.confidence, seed=spec.sample_seed)  # fmt: skip
                p = prcc_pvalue(r, n, k)
                method = "PRCC"
            else:
                r, lo, hi, p = _spearman_bootstrap(x, y, spec.bootstrap_resamples,
                                                   spec.confidence, spec.sample_seed,
                                                   spearmanr)  # fmt: skip
                method = "Spearman"
            for key in keys:
                if key in varying:
                    j = varying.index(key)
                    rows.append(_pred_row(col, arm.name, key, method, n, r[j], lo[j], hi[j], p[j]))
                else:
                    rows.append(_pred_row(col, arm.name, key, "constant", n, *[math.nan] * 4))
    return pd.DataFrame(rows)


def _pred_row(outcome: str, arm: str, key: str, method: str, n: int, r: float, lo: float,
              hi: float, p: float) -> dict[str, Any]:  # fmt: skip
    return {"outcome": outcome, "arm": arm, "feature": key, "method": method, "n": n,
            "value": float(r), "ci_low": float(lo), "ci_high": float(hi),
            "p_value": float(p)}  # fmt: skip


def _spearman_bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, conf: float, seed: int,
                        spearmanr: Any) -> tuple[np.ndarray, ...]:  # fmt: skip
    from abm.sweep.sensitivity import bootstrap

    def rho(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        out = np.full(xx.shape[1], np.nan)
        for j in range(xx.shape[1]):
            if np.ptp(xx[:, j]) > 0 and np.ptp(yy) > 0:
                out[j] = spearmanr(xx[:, j], yy).statistic
        return out

    value, lo, hi = bootstrap(rho, x, y, resamples=resamples, conf=conf, seed=seed)
    p = np.array([spearmanr(x[:, j], y).pvalue if np.ptp(x[:, j]) > 0 else np.nan
                  for j in range(x.shape[1])])  # fmt: skip
    return value, lo, hi, p


# -- effusion dilution -------------------------------------------------------------------------
def effusion_table(
    spec: TrialSpec, population: pd.DataFrame, patients: pd.DataFrame
) -> pd.DataFrame:
    """The effusion-dilution test: for the fixed-dose arm and the arm dosed per mL of synovial
    fluid, the responders among patients with synovial fluid at or below the median volume of
    the accepted patients and above it (Wilson intervals), and the Spearman correlation of the
    volume with the pain change (%)."""
    from scipy.stats import spearmanr

    key = "patient.sf_volume_ml"
    arms = [a for a in (spec.effusion_arm, spec.effusion_scaled_arm) if a]
    if key not in population.columns or not arms:
        return pd.DataFrame()
    rows = []
    for arm in arms:
        t = patients[(patients["arm"] == arm) & patients["classified"]]
        d = t.merge(population[["patient", key]], on="patient", how="left")
        if not len(d):
            continue
        med = float(np.median(d[key]))
        rho = math.nan
        if len(d) >= 3 and np.ptp(d[key]) > 0 and np.ptp(d["pain_rel_change"]) > 0:
            rho = float(spearmanr(d[key], d["pain_rel_change"]).statistic)
        for name, sel in ((f"<= {med:.3g} mL", d[key] <= med), (f"> {med:.3g} mL", d[key] > med)):
            g = d[sel]
            n, k = len(g), int(g["responder"].sum())
            lo, hi = wilson_interval(k, n, spec.confidence)
            rows.append({"arm": arm, "sf_volume": name, "n": n, "responders": k,
                         "rate": k / n if n else math.nan, "ci_low": lo, "ci_high": hi,
                         "median_pain_change_pct": _median_pct(g),
                         "spearman_volume_vs_pain_change": rho})  # fmt: skip
    return pd.DataFrame(rows)


# -- figures --------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    tmp.replace(path)
    return path


def waterfall_figure(spec: TrialSpec, patients: pd.DataFrame, path: Path) -> Path | None:
    """Per treated arm: each patient's pain change (%), sorted, coloured by responder (None
    without a classified patient)."""
    if not patients["classified"].any():
        return None
    plt = _plt()
    arms = spec.treated_arms
    ncol = min(3, len(arms))
    nrow = math.ceil(len(arms) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False,
                             sharey=True)  # fmt: skip
    thr = 100 * spec.responder.pain_max_rel_change
    for ax, arm in zip(axes.flat, arms, strict=False):
        t = patients[(patients["arm"] == arm.name) & patients["classified"]]
        t = t.sort_values("pain_rel_change", ascending=False)
        colors = np.where(t["responder"], "tab:green", "tab:gray")
        ax.bar(np.arange(len(t)), 100 * t["pain_rel_change"], color=colors)
        ax.axhline(thr, color="tab:red", lw=0.8, ls="--")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"{arm.name} ({int(t['responder'].sum())}/{len(t)} responders)", fontsize=9)
        ax.set_xlabel("patient (sorted)")
        ax.set_xticks([])
    y = 100 * patients.loc[patients["classified"], "pain_rel_change"].to_numpy(float)
    axes[0, 0].set_ylim(min(1.25 * thr, *(1.1 * y)), max(5.0, *(1.1 * y)))  # shared y
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{spec.responder.pain_metric} change vs untreated (%)")
    for ax in list(axes.flat)[len(arms) :]:
        ax.axis("off")
    fig.suptitle(f"Waterfall at day {spec.responder.day:g} (green: responder; dashed: {thr:g}%)",
                 fontsize=10)  # fmt: skip
    return _save(fig, path)


def dose_figure(rates: pd.DataFrame, path: Path) -> Path | None:
    """Responder rate (Wilson interval) against the MSC dose of the fixed-dose arms: naive
    MSCs as a line, primed ones as points (the other arms are in the rates table)."""
    dosed = rates[np.isfinite(rates["dose"].astype(float)) & (rates["n"] > 0)]
    if not len(dosed):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    primed = dosed["prelicensed"].astype(bool)
    for sel, style, label in ((~primed, "-o", "naive MSC"), (primed, "s", "IFN-γ primed MSC")):
        f = dosed[sel].sort_values("dose")
        if len(f):
            err = np.clip(np.vstack([f["rate"] - f["ci_low"], f["ci_high"] - f["rate"]]), 0, 1)
            ax.errorbar(f["dose"], f["rate"], yerr=np.nan_to_num(err), fmt=style, capsize=3,
                        label=label)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("MSC dose (cells per knee)")
    ax.set_ylabel("responder rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Responder rate vs dose (95% Wilson interval)", fontsize=10)
    return _save(fig, path)


def _outcome_label(col: str, metric: str) -> str:
    return f"{metric} change (%)" if col.endswith("_rel_change") else f"{metric} change"


def outcome_scale(col: str) -> float:
    """Relative changes are shown in percent, absolute ones as they are."""
    return 100.0 if col.endswith("_rel_change") else 1.0


def _predictor_bars(ax: Any, d: pd.DataFrame, feats: list[str], legend: bool) -> None:
    arms = list(dict.fromkeys(d["arm"]))
    h = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        a = d[d["arm"] == arm].set_index("feature").reindex(feats)
        ypos = np.arange(len(feats)) + i * h
        err = np.vstack([a["value"] - a["ci_low"], a["ci_high"] - a["value"]])
        ax.barh(ypos, a["value"], height=h, xerr=np.nan_to_num(np.abs(err)), capsize=2,
                label=f"{arm} ({', '.join(a['method'].dropna().unique())})")  # fmt: skip
    ax.set_yticks(np.arange(len(feats)) + 0.4 - h / 2)
    ax.set_yticklabels(feats, fontsize=8)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlim(-1.05, 1.05)
    if legend:
        ax.legend(fontsize=7, loc="best")


def predictors_figure(pred: pd.DataFrame, path: Path,
                      outcome: str = "pain_rel_change") -> Path | None:  # fmt: skip
    """Correlation of each feature with ``outcome`` (the pain change) per arm, with its
    interval."""
    d = pred[np.isfinite(pred["value"])]
    if "outcome" in d.columns:
        d = d[d["outcome"] == outcome]
    if not len(d):
        return None
    plt = _plt()
    feats = list(dict.fromkeys(d["feature"]))
    arms = list(dict.fromkeys(d["arm"]))
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(feats) * max(1, len(arms) / 3) + 1.2))
    _predictor_bars(ax, d, feats, legend=True)
    ax.set_xlabel("rank correlation with the pain change (negative: more relief)")
    return _save(fig, path)


def benefit_predictors_figure(spec: TrialSpec, pred: pd.DataFrame, path: Path) -> Path | None:
    """One panel per declared benefit: each feature's rank correlation with the patient's
    change in that readout, per arm, with its interval (None without a finite value)."""
    cols = outcome_columns(spec)[1:]
    d = pred[np.isfinite(pred["value"]) & pred["outcome"].isin([c for c, _, _ in cols])]
    if not len(d):
        return None
    plt = _plt()
    feats = list(dict.fromkeys(d["feature"]))
    arms = list(dict.fromkeys(d["arm"]))
    ncol = min(2, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    height = 0.45 * len(feats) * max(1, len(arms) / 3) + 1.2
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.5 * ncol, height * nrow), squeeze=False,
                             sharey=True)  # fmt: skip
    for i, (ax, (col, metric, lower)) in enumerate(zip(axes.flat, cols, strict=False)):
        sub = d[d["outcome"] == col]
        if len(sub):
            _predictor_bars(ax, sub, feats, legend=i == 0)
        sign = "negative" if lower else "positive"
        ax.set_title(f"{metric} ({sign}: more benefit)", fontsize=9)
        ax.set_xlabel("rank correlation with the change")
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    return _save(fig, path)


def benefits_figure(spec: TrialSpec, patients: pd.DataFrame, summary: pd.DataFrame,
                    path: Path) -> Path | None:  # fmt: skip
    """One panel per outcome (the pain change and each benefit): every patient's change per
    treated arm (dots) with the arm's mean and its bootstrap interval (bar)."""
    cols = outcome_columns(spec)
    if not len(patients) or not len(summary):
        return None
    plt = _plt()
    arms = [a.name for a in spec.treated_arms]
    ncol = min(3, len(cols))
    nrow = math.ceil(len(cols) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
    jitter = np.random.default_rng(0)
    for ax, (col, metric, lower) in zip(axes.flat, cols, strict=False):
        k = outcome_scale(col)
        for i, arm in enumerate(arms):
            v = patients.loc[patients["arm"] == arm, col].to_numpy(float) if col in patients else []
            v = np.asarray(v)[np.isfinite(v)]
            ax.scatter(i + jitter.uniform(-0.15, 0.15, len(v)), k * v, s=12, color="tab:gray",
                       alpha=0.8, zorder=2)  # fmt: skip
            r = summary[(summary["arm"] == arm) & (summary["outcome"] == col)]
            if len(r) and np.isfinite(r["mean"].iloc[0]):
                m, lo, hi = (k * float(r[c].iloc[0]) for c in ("mean", "ci_low", "ci_high"))
                yerr = [[max(0.0, m - lo)], [max(0.0, hi - m)]] if np.isfinite(lo) else None
                ax.errorbar(i + 0.3, m, yerr=yerr, fmt="D", color="tab:blue", capsize=3,
                            zorder=3)  # fmt: skip
        ax.axhline(0, color="black", lw=0.6)
        if col == "pain_rel_change":
            ax.axhline(100 * spec.responder.pain_max_rel_change, color="tab:red", lw=0.8, ls="--")
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(arms, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(_outcome_label(col, metric), fontsize=8)
        ax.set_title(f"{metric} ({'lower' if lower else 'higher'} is better)", fontsize=9)
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    conf = f"{100 * spec.confidence:g}%"
    fig.suptitle(f"Change vs the same patient untreated at day {spec.responder.day:g}: patients "
                 f"(dots), mean and {conf} bootstrap interval (diamond)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return _save(fig, path)


def effusion_figure(spec: TrialSpec, population: pd.DataFrame, patients: pd.DataFrame,
                    path: Path) -> Path | None:  # fmt: skip
    """Pain change (%) against synovial-fluid volume: fixed dose vs dose per mL."""
    key = "patient.sf_volume_ml"
    arms = [a for a in (spec.effusion_arm, spec.effusion_scaled_arm) if a]
    if key not in population.columns or not arms:
        return None
    shown = patients[patients["arm"].isin(arms) & patients["classified"]]
    if not len(shown):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for arm, marker in zip(arms, ("o", "s"), strict=False):
        t = shown[shown["arm"] == arm]
        d = t.merge(population[["patient", key]], on="patient", how="left")
        ax.scatter(d[key], 100 * d["pain_rel_change"], marker=marker,
                   c=np.where(d["responder"], "tab:green", "tab:gray"), label=arm,
                   edgecolors="black", linewidths=0.4)  # fmt: skip
    ax.axhline(100 * spec.responder.pain_max_rel_change, color="tab:red", lw=0.8, ls="--")
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks([t for t in (1, 2, 5, 10, 20, 50) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]])
    ax.set_xlabel("synovial fluid volume (mL)")
    ax.set_ylabel("pain change vs untreated (%)")
    ax.legend(fontsize=8)
    ax.set_title("Effusion dilution: fixed dose (o) vs dose per mL (s)", fontsize=10)
    return _save(fig, path)
