"""The sweep report: tables, PNG plots and one self-contained HTML page over a sweep folder.

Data flow: :func:`abm.sweep.collect.collect_jobs` (jobs, states, parameters) ->
:func:`gather` (:class:`SweepData`: the varying parameters, the final metrics row of every
complete job, readouts every 6 simulated hours (sweeps shorter than 5 days: 20 steps), and
their mean and 95% t-interval over the jobs that share every swept value but the seed) ->
:func:`write_tables` (``sweep_jobs.csv``, ``sweep_final.csv``, ``sweep_summary.csv``,
``sweep_timeseries.csv``), :func:`write_pngs` (``sweep_<key>.png``, ``sweep_timecourses.png``)
and :func:`write_html` (``sweep_report.html``: plotly with plotly.js embedded, no network
needed). Reads files only.

Groups: the jobs whose swept values (other than ``seed``) are all equal are one parameter
set; its readouts are summarized as n, mean, sd and the two-sided 95% Student-t interval
(mean ± t(0.975, n-1)·sd/√n; no interval for n = 1). Parameters that are the same in every job
are constants (listed, not shown as columns).
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.replay.html import PAGE_STYLE, figure_div, html_table, plotly_head
from abm.sweep.collect import (
    collect_jobs,
    load_metrics,
    override_keys,
    readouts,
    varying_keys,
)
from abm.units import MIN_PER_DAY

KEY_METRICS = (
    "il1b_fluid",
    "tnf_fluid",
    "il6_fluid",
    "macrophage_m1",
    "macrophage_m2",
    "tcell_treg",
    "msc_alive",
    "cartilage_agg",
)
EVERY_DAYS = 360.0 / MIN_PER_DAY  # time courses: one readout every 6 simulated hours ...
SHORT_RUN_DAYS = 5.0  # ... except in sweeps shorter than this: COURSE_POINTS steps
COURSE_POINTS = 20
LEVEL = 0.95
SEED = "seed"
MAX_TRACES = 10  # more parameter sets than this: plots pool them (and say so)
MAX_CATEGORIES = 25  # more distinct values of a key than this: its plot shows the jobs as points
NOT_COMPLETE = ("failed", "unfinished", "running", "missing")
STAT_COLUMNS = ("n", "mean", "sd", "ci_low", "ci_high")


# -- statistics ------------------------------------------------------------------------------
@cache
def t_quantile(level: float, df: int) -> float:
    """The t with P(|T| < t) = ``level`` for Student's t with ``df`` degrees of freedom
    (e.g. 12.706 for 95% and df = 1): ``scipy.stats.t``."""
    from scipy.stats import t

    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(t.ppf(0.5 + level / 2, df))


def summarize(table: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """n, mean, sd, ci_low, ci_high of ``value`` per group of ``by`` (NaN values left out; the
    interval is the two-sided 95% t-interval, NaN for n < 2)."""
    data = table[[*by, value]]
    if by:
        grouped = data.groupby(by, sort=True, dropna=False)[value]
        stats = grouped.agg(["count", "mean", "std"]).reset_index()
    else:
        v = data[value]
        stats = pd.DataFrame({"count": [v.count()], "mean": [v.mean()], "std": [v.std()]})
    stats = stats.rename(columns={"count": "n", "std": "sd"})
    n = stats["n"].to_numpy(dtype=int)
    t = np.array([t_quantile(LEVEL, int(k) - 1) if k >= 2 else np.nan for k in n])
    with np.errstate(invalid="ignore", divide="ignore"):
        half = t * stats["sd"].to_numpy(dtype=float) / np.sqrt(np.maximum(n, 1))
    stats["ci_low"] = stats["mean"] - half
    stats["ci_high"] = stats["mean"] + half
    stats.loc[n < 2, "sd"] = np.nan
    return stats


# -- data ------------------------------------------------------------------------------------
@dataclass
class SweepData:
    """Everything a report shows (see :func:`gather`)."""

    sweep_dir: Path
    jobs: pd.DataFrame  # every job: job, status, error, wall_s, path, overrides
    keys: list[str]  # the varying override keys (seed included)
    constants: dict[str, Any]  # overrides equal in every job
    groups: list[str]  # the varying keys other than seed: one parameter set per combination
    metrics: list[str]  # the readouts shown in plots
    final: pd.DataFrame  # one row per complete job: job, keys, last metrics row
    summary: pd.DataFrame  # per parameter set and metric: n, mean, sd, ci_low, ci_high
    series: pd.DataFrame  # long: job, keys, time_day, metric, value (every 6 h)
    series_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # groups, time, metric

    @property
    def complete(self) -> pd.DataFrame:
        return self.jobs[self.jobs["status"] == "complete"]

    @property
    def not_complete(self) -> pd.DataFrame:
        return self.jobs[self.jobs["status"] != "complete"]

    def counts(self) -> dict[str, int]:
        c = self.jobs["status"].value_counts()
        return {s: int(c.get(s, 0)) for s in ("complete", *NOT_COMPLETE) if c.get(s, 0)}


def course_step(last_day: float) -> float:
    """Days between time-course readouts: 6 h, or 1/20 of a sweep shorter than 5 days (whole
    minutes)."""
    if last_day >= SHORT_RUN_DAYS or last_day <= 0:
        return EVERY_DAYS
    return max(1.0, round(last_day * MIN_PER_DAY / COURSE_POINTS)) / MIN_PER_DAY


def _sortable(values: pd.Series) -> list[Any]:
    uniq = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def gather(sweep_dir: str | os.PathLike, metrics: list[str] | None = None) -> SweepData:
    """Collect the sweep folder into a :class:`SweepData` (reads each ``metrics.csv`` once)."""
    root = Path(sweep_dir)
    jobs = collect_jobs(root)
    keys = varying_keys(jobs)
    constants = {}
    for key in override_keys(jobs):
        values = jobs[key].dropna()
        if key not in keys and len(values) and values.map(repr).nunique() == 1:
            constants[key] = values.iloc[0]
    groups = [k for k in keys if k != SEED]
    tables: dict[str, pd.DataFrame] = {}
    finals = []
    for _, job in jobs[jobs["status"] == "complete"].iterrows():
        table = load_metrics(job["path"])
        if table is None or not len(table):
            jobs.loc[jobs["job"] == job["job"], ["status", "error"]] = [
                "unfinished",
                "complete in status.json, but metrics.csv is missing or empty",
            ]
            continue
        tables[job["job"]] = table
        finals.append({"job": job["job"], **{k: job[k] for k in keys}, **table.iloc[-1].to_dict()})
    columns = ["job", *keys]
    final = pd.DataFrame(finals) if finals else pd.DataFrame(columns=columns)
    present = [c for c in final.columns if c not in columns]
    shown = list(metrics) if metrics else [m for m in KEY_METRICS if m in present]
    if finals and not shown:
        shown = [c for c in present if c != "time_min"][:8]
    done = jobs[jobs["job"].isin(list(tables))]
    last_day = max((t["time_min"].iloc[-1] / MIN_PER_DAY for t in tables.values()), default=0.0)
    grid = np.round(np.arange(0.0, last_day + 1e-9, course_step(last_day)), 9)
    series = readouts(done, None, grid, tables=tables).dropna(subset=["value"])
    series = series.merge(jobs[["job", *keys]], on="job", how="left")
    series = series[["job", *keys, "time_day", "metric", "value"]]
    data = SweepData(root, jobs, keys, constants, groups, shown, final, pd.DataFrame(), series)
    if finals:
        long = final.melt(
            id_vars=columns,
            value_vars=[c for c in present if c != "time_min"],
            var_name="metric",
            value_name="value",
        )
        data.summary = summarize(long, [*groups, "metric"])
        sub = series[series["metric"].isin(shown)]
        data.series_summary = summarize(sub, [*groups, "time_day", "metric"])
    else:
        data.summary = pd.DataFrame(columns=[*groups, "metric", *STAT_COLUMNS])
        data.series_summary = pd.DataFrame(columns=[*groups, "time_day", "metric", *STAT_COLUMNS])
    return data


# -- tables ----------------------------------------------------------------------------------
TABLES = ("sweep_jobs.csv", "sweep_final.csv", "sweep_summary.csv", "sweep_timeseries.csv")


def write_tables(data: SweepData, out: Path) -> list[Path]:
    """``sweep_jobs.csv`` (every job: state, error, wall time, swept values), ``sweep_final.csv``
    (complete jobs: swept values + last metrics row), ``sweep_summary.csv`` (per parameter set
    and metric: n, mean, sd, ci_low, ci_high of the final values) and ``sweep_timeseries.csv``
    (long: job, swept values, time_day, metric, value; every :func:`course_step`)."""
    jobs = data.jobs[["job", "status", "error", "wall_s", *data.keys]]
    frames = (jobs, data.final, data.summary, data.series)
    paths = []
    for name, frame in zip(TABLES, frames, strict=True):
        path = out / name
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


# -- plot helpers ------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _label(keys: list[str], values: tuple[Any, ...]) -> str:
    text = ", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, values, strict=True))
    return text or "mean, 95% CI"


@dataclass
class Panel:
    """One readout against one swept key: per trace, x positions, mean, interval, n."""

    key: str | None
    categories: list[Any]
    traces: list[dict[str, Any]]
    points: pd.DataFrame  # the jobs: x position, value
    note: str


def key_panels(data: SweepData, key: str | None, metric: str) -> Panel:
    """Readout ``metric`` against swept ``key`` (None: all jobs pooled, seeds only).

    One trace per combination of the other swept keys (mean and 95% t-interval over the
    seeds); more than :data:`MAX_TRACES` combinations are pooled into one trace; more than
    :data:`MAX_CATEGORIES` values of ``key`` are shown as the jobs' points only.
    """
    final = data.final
    if key is None:
        x = pd.Series(["all jobs"] * len(final), index=final.index)
        categories: list[Any] = ["all jobs"]
    else:
        x = final[key]
        categories = _sortable(x)
    pos = {c: i for i, c in enumerate(categories)}
    points = pd.DataFrame({"x": x.map(pos), "value": final[metric], "job": final["job"]})
    others = [k for k in data.groups if k != key]
    note = ""
    if len(categories) > MAX_CATEGORIES:
        points["x"] = x
        return Panel(key, categories, [], points, f"{len(categories)} values: one point per job")
    combos = final[others].drop_duplicates() if others else pd.DataFrame(index=[0])
    if len(combos) > MAX_TRACES:
        note = f"pooled over {len(combos)} combinations of {', '.join(others)} and the seeds"
        others = []
    table = final.assign(_x=x.map(pos))
    traces = []
    grouped = table.groupby(others, sort=True, dropna=False) if others else [((), table)]
    for combo, sub in grouped:
        combo = combo if isinstance(combo, tuple) else (combo,)
        stats = summarize(sub.rename(columns={metric: "_v"}), ["_x"], "_v").sort_values("_x")
        traces.append(
            {
                "label": _label(others, combo),
                "x": stats["_x"].to_numpy(),
                **{c: stats[c].to_numpy() for c in STAT_COLUMNS},
            }
        )
    return Panel(key, categories, traces, points, note)


def _n_text(n: np.ndarray) -> str:
    uniq = sorted({int(k) for k in n})
    if not uniq:
        return ""
    return f"n = {uniq[0]}" if len(uniq) == 1 else f"n = {uniq[0]}-{uniq[-1]}"


def plot_keys(data: SweepData) -> list[str | None]:
    """The keys readouts are plotted against: each swept key but seed (None: seeds only)."""
    return list(data.groups) or [None]


def _course_groups(data: SweepData) -> tuple[list[str], pd.DataFrame, str]:
    """(keys, time-course summary, note) for the time-course plots: per parameter set, or
    pooled over all jobs when there are more than :data:`MAX_TRACES` sets."""
    sets = data.final[data.groups].drop_duplicates() if data.groups else pd.DataFrame(index=[0])
    if len(sets) <= MAX_TRACES:
        return data.groups, data.series_summary, ""
    sub = data.series[data.series["metric"].isin(data.metrics)]
    note = f"{len(sets)} parameter sets: mean and 95% interval over all complete jobs"
    return [], summarize(sub, ["time_day", "metric"]), note


# -- PNG ---------------------------------------------------------------------------------------
def write_pngs(data: SweepData, out: Path) -> list[Path]:
    """``sweep_<key>.png`` per swept key (``sweep_seed.png`` when only seeds vary): final
    readouts, mean and 95% t-interval bars (n in each panel), and ``sweep_timecourses.png``:
    mean ± interval band per parameter set."""
    if data.final.empty or not data.metrics:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ncols = min(4, len(data.metrics))
    nrows = math.ceil(len(data.metrics) / ncols)
    size = (3.5 * ncols, 3.0 * nrows)
    for key in plot_keys(data):
        fig, axes = plt.subplots(nrows, ncols, figsize=size, constrained_layout=True, squeeze=False)
        note = ""
        for ax, metric in zip(axes.flat, data.metrics, strict=False):
            panel = key_panels(data, key, metric)
            note = panel.note or note
            ax.plot(panel.points["x"], panel.points["value"], ".", color="0.6", ms=4, zorder=1)
            ns = []
            for i, tr in enumerate(panel.traces):
                shift = (i - (len(panel.traces) - 1) / 2) * 0.08
                err = np.vstack([tr["mean"] - tr["ci_low"], tr["ci_high"] - tr["mean"]])
                ax.errorbar(
                    tr["x"] + shift,
                    tr["mean"],
                    yerr=np.nan_to_num(err),
                    fmt="o",
                    capsize=4,
                    label=tr["label"],
                    zorder=2,
                )
                ns.extend(tr["n"])
            if panel.traces:
                labels = [_fmt(c) for c in panel.categories]
                ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
            ax.set_title(f"{metric} ({_n_text(np.array(ns))})", fontsize=9)
            ax.set_xlabel(key or "", fontsize=8)
        for ax in list(axes.flat)[len(data.metrics) :]:
            ax.axis("off")
        if len(axes.flat[0].get_legend_handles_labels()[0]) > 1:
            axes.flat[0].legend(fontsize=6)
        what = f"by {key}" if key else "over seeds"
        fig.suptitle(
            f"final readouts {what}: mean and 95% t-interval over seeds (grey: jobs)"
            + (f"; {note}" if note else ""),
            fontsize=10,
        )
        name = (key or SEED).replace("/", "_").replace(".", "_")
        path = out / f"sweep_{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    keys, course, note = _course_groups(data)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes.flat, data.metrics, strict=False):
        sub = course[course["metric"] == metric]
        grouped = sub.groupby(keys, sort=True, dropna=False) if keys else [((), sub)]
        for combo, grp in grouped:
            combo = combo if isinstance(combo, tuple) else (combo,)
            grp = grp.sort_values("time_day")
            line = ax.plot(grp["time_day"], grp["mean"], label=_label(keys, combo))[0]
            ax.fill_between(
                grp["time_day"],
                grp["ci_low"],
                grp["ci_high"],
                alpha=0.2,
                color=line.get_color(),
                lw=0,
            )
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("time (days)", fontsize=8)
    for ax in list(axes.flat)[len(data.metrics) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(
        "time courses: mean and 95% t-interval band over seeds" + (f" ({note})" if note else ""),
        fontsize=10,
    )
    path = out / "sweep_timecourses.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written


# -- HTML --------------------------------------------------------------------------------------
def _readout_figure(data: SweepData, key: str | None) -> tuple[Any, str]:
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    ncols = min(4, len(data.metrics))
    nrows = math.ceil(len(data.metrics) / ncols)
    panels = [key_panels(data, key, m) for m in data.metrics]
    titles = []
    for metric, panel in zip(data.metrics, panels, strict=True):
        ns = np.concatenate([tr["n"] for tr in panel.traces]) if panel.traces else np.array([])
        titles.append(f"{metric} ({_n_text(ns)})" if len(ns) else metric)
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=titles,
        horizontal_spacing=0.06,
        vertical_spacing=0.16,
    )
    colors = qualitative.Plotly
    note = ""
    for i, panel in enumerate(panels):
        r, c = i // ncols + 1, i % ncols + 1
        note = panel.note or note
        pts = panel.points
        categorical = bool(panel.traces)
        px = [_fmt(panel.categories[int(k)]) for k in pts["x"]] if categorical else pts["x"]
        fig.add_trace(
            go.Scatter(
                x=px,
                y=pts["value"],
                mode="markers",
                name="jobs",
                legendgroup="jobs",
                showlegend=i == 0,
                text=pts["job"],
                marker={"color": "rgba(120,120,120,0.45)", "size": 6},
                hovertemplate="%{text}<br>%{y:.4g}<extra>job</extra>",
            ),
            row=r,
            col=c,
        )
        for j, tr in enumerate(panel.traces):
            err_hi = np.nan_to_num(tr["ci_high"] - tr["mean"])
            err_lo = np.nan_to_num(tr["mean"] - tr["ci_low"])
            hover = [
                f"n={int(n)}, mean {m:.4g}" + (f", 95% CI [{lo:.4g}, {hi:.4g}]" if n > 1 else "")
                for n, m, lo, hi in zip(
                    tr["n"], tr["mean"], tr["ci_low"], tr["ci_high"], strict=True
                )
            ]
            fig.add_trace(
                go.Scatter(
                    x=[_fmt(panel.categories[int(k)]) for k in tr["x"]],
                    y=tr["mean"],
                    mode="markers+lines",
                    name=tr["label"],
                    legendgroup=tr["label"],
                    showlegend=i == 0,
                    marker={"color": colors[j % len(colors)], "size": 9},
                    line={"width": 1},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": err_hi,
                        "arrayminus": err_lo,
                        "thickness": 1.5,
                        "width": 5,
                    },
                    text=hover,
                    hovertemplate="%{x}: %{text}<extra>%{fullData.name}</extra>",
                ),
                row=r,
                col=c,
            )
        if categorical:
            fig.update_xaxes(
                type="category",
                categoryorder="array",
                categoryarray=[_fmt(v) for v in panel.categories],
                row=r,
                col=c,
            )
        fig.update_xaxes(title_text=key or "", title_font_size=10, row=r, col=c)
    return fig, note


def _course_figure(data: SweepData) -> tuple[Any, str]:
    import plotly.graph_objects as go
    from plotly.colors import hex_to_rgb, qualitative
    from plotly.subplots import make_subplots

    ncols = min(4, len(data.metrics))
    nrows = math.ceil(len(data.metrics) / ncols)
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=list(data.metrics),
        horizontal_spacing=0.06,
        vertical_spacing=0.16,
    )
    keys, course, note = _course_groups(data)
    colors = qualitative.Plotly
    for i, metric in enumerate(data.metrics):
        r, c = i // ncols + 1, i % ncols + 1
        sub = course[course["metric"] == metric]
        grouped = sub.groupby(keys, sort=True, dropna=False) if keys else [((), sub)]
        for j, (combo, grp) in enumerate(grouped):
            combo = combo if isinstance(combo, tuple) else (combo,)
            grp = grp.sort_values("time_day")
            label = _label(keys, combo)
            color = colors[j % len(colors)]
            rgb = hex_to_rgb(color)
            band = grp.dropna(subset=["ci_low", "ci_high"])
            if len(band):
                xs = np.concatenate([band["time_day"], band["time_day"][::-1]])
                ys = np.concatenate([band["ci_high"], band["ci_low"][::-1]])
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        fill="toself",
                        mode="lines",
                        line={"width": 0},
                        hoverinfo="skip",
                        fillcolor=f"rgba({rgb[0]},{rgb[1]},{rgb[2]},0.2)",
                        legendgroup=label,
                        showlegend=False,
                    ),
                    row=r,
                    col=c,
                )
            fig.add_trace(
                go.Scatter(
                    x=grp["time_day"],
                    y=grp["mean"],
                    mode="lines",
                    name=label,
                    legendgroup=label,
                    showlegend=i == 0,
                    line={"color": color},
                    customdata=np.stack([grp["n"], grp["ci_low"], grp["ci_high"]], axis=1),
                    hovertemplate="day %{x:.2f}: %{y:.4g} (n=%{customdata[0]},"
                    " 95% CI %{customdata[1]:.4g} to %{customdata[2]:.4g})"
                    "<extra>%{fullData.name}</extra>",
                ),
                row=r,
                col=c,
            )
        fig.update_xaxes(title_text="time (days)", title_font_size=10, row=r, col=c)
    return fig, note


def n_plots(data: SweepData) -> int:
    """How many plotly graphs :func:`write_html` puts on the page."""
    if data.final.empty or not data.metrics:
        return 0
    return len(plot_keys(data)) + 1


def write_html(data: SweepData, path: Path) -> Path:
    """``sweep_report.html``: one page, plotly.js embedded (opens from a file, offline)."""
    counts = data.counts()
    total = len(data.jobs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Sweep report: {html.escape(data.sweep_dir.name)}</title>",
        f"<style>{PAGE_STYLE}</style>",
        plotly_head(),
        "</head><body>",
        f"<h1>Sweep report: {html.escape(str(data.sweep_dir))}</h1>",
        f'<p class="note">written {datetime.now().isoformat(timespec="seconds")} by '
        "abm-sweep-report</p>",
        "<p><b>"
        + html.escape(f"{total} jobs: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        + "</b></p>",
        "<p>Swept: "
        + (
            html.escape(", ".join(f"{k} ({data.jobs[k].nunique()} values)" for k in data.keys))
            or "nothing (a single parameter set)"
        )
        + "</p>",
    ]
    if data.constants:
        const = ", ".join(f"{k}={_fmt(v)}" for k, v in data.constants.items())
        parts.append(f'<p class="note">The same in every job: {html.escape(const)}</p>')
    bad = data.not_complete
    if len(data.complete) == 0:
        parts.append(
            '<p class="warn"><b>No job completed</b>: there are no readouts to show. '
            "The jobs and their errors are listed below.</p>"
        )
    elif len(bad):
        parts.append(
            f'<p class="warn">{len(bad)} of {total} jobs did not complete; they are '
            'left out of the readouts (see <a href="#failed">below</a>).</p>'
        )
    plots = n_plots(data)
    if plots:
        parts.append("<h2>Final readouts</h2>")
        parts.append(
            '<p class="note">Each point: the mean over the seeds of one parameter set '
            "with its 95% Student-t interval (n = number of seeds; no bar for n = 1); "
            "grey: the individual jobs. Values are the last metrics row of each "
            "job.</p>"
        )
        nrows = math.ceil(len(data.metrics) / min(4, len(data.metrics)))
        for i, key in enumerate(plot_keys(data)):
            fig, note = _readout_figure(data, key)
            title = f"final readouts by {key}" if key else "final readouts over the seeds"
            fig.update_layout(title_text=title + (f" ({note})" if note else ""))
            parts.append(figure_div(fig, f"readouts-{i}", 280 * nrows + 120))
        parts.append("<h2>Time courses</h2>")
        fig, note = _course_figure(data)
        fig.update_layout(
            title_text="mean and 95% t-interval band over seeds" + (f" ({note})" if note else "")
        )
        parts.append(figure_div(fig, "timecourses", 280 * nrows + 120))
    parts.append('<h2 id="failed">Jobs that did not complete</h2>')
    if len(bad):
        cols = ["job", "status", "error", "wall_s", *data.keys]
        parts.append(html_table(bad[cols], row_class="status"))
    else:
        parts.append("<p>None: every job completed.</p>")
    parts.append("<h2>All jobs</h2>")
    cols = ["job", "status", "wall_s", *data.keys]
    table = html_table(data.jobs[cols], row_class="status")
    opened = " open" if total <= 60 else ""
    parts.append(f"<details{opened}><summary>{total} jobs</summary>{table}</details>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
