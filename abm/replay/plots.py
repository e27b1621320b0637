"""Summary figure: the metrics of a run over time, in one PNG.

Data flow: ``run.h5`` -> :func:`abm.replay.load_run` -> ``Run.metrics`` -> :func:`summary_figure`
-> ``summary.png`` (written by ``abm-run`` into its run folder, and by ``abm-replay --summary``).
Three panels: synovial-fluid cytokines, cell phenotype fractions, cartilage matrix. Metrics a
run lacks are skipped; the MSC injection day is marked when the run had MSCs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from abm.replay.run import Run
from abm.units import MIN_PER_DAY

CYTOKINES = (("il1b", "IL-1β"), ("tnf", "TNF-α"), ("ifng", "IFN-γ"), ("il6", "IL-6"),
             ("il17", "IL-17"), ("il10", "IL-10"), ("tgfb", "TGF-β"), ("pge2", "PGE2"),
             ("tsg6", "TSG-6"), ("il1ra", "IL-1Ra"), ("ccl2", "CCL2"))  # fmt: skip
# (label, numerator, denominator columns): fractions of a population in one phenotype
FRACTIONS = (
    ("macrophage M1", "macrophage_m1", ("macrophage_m0", "macrophage_m1", "macrophage_m2")),
    ("macrophage M2", "macrophage_m2", ("macrophage_m0", "macrophage_m1", "macrophage_m2")),
    ("T cell Th17", "tcell_th17", ("tcell_naive", "tcell_th1", "tcell_th17", "tcell_treg")),
    ("T cell Treg", "tcell_treg", ("tcell_naive", "tcell_th1", "tcell_th17", "tcell_treg")),
    ("FLS activated", "fls_activated", ("fls_total",)),
    ("chondrocyte catabolic", "chondrocyte_catabolic", ("chondrocyte_alive",)),
    ("MSC licensed", "msc_licensed", ("msc_alive",)),
)
MATRIX = (("aggrecan", "cartilage_agg"), ("collagen II", "cartilage_col2"))


def injection_day(run: Run) -> float | None:
    """Day of the MSC injection, or None when the run had no MSC therapy."""
    cfg = run.config
    therapy = cfg.get("therapy") if hasattr(cfg, "get") else None
    if not therapy or not float(therapy.get("dose", 0) or 0) > 0:
        return None
    return float(therapy.get("day", 0.0))


def fraction(metrics: pd.DataFrame, num: str, den: Sequence[str]) -> np.ndarray | None:
    """``metrics[num] / sum(metrics[den])`` (NaN where the population is empty)."""
    if num not in metrics or not all(c in metrics for c in den):
        return None
    total = metrics[list(den)].sum(axis=1).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, metrics[num].to_numpy(dtype=float) / total, np.nan)


def plot_cytokines(ax: Axes, metrics: pd.DataFrame, days: np.ndarray) -> None:
    ax.set_prop_cycle(color=matplotlib.colormaps["tab20"].colors)  # 11 cytokines, distinct
    for name, label in CYTOKINES:
        col = f"{name}_fluid"
        if col in metrics and np.nanmax(metrics[col].to_numpy(dtype=float), initial=0) > 0:
            ax.plot(days, metrics[col], label=label)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylabel("fluid conc. (ng/mL)")
    ax.set_title("cytokines in synovial fluid", fontsize="medium")


def plot_fractions(ax: Axes, metrics: pd.DataFrame, days: np.ndarray) -> None:
    for label, num, den in FRACTIONS:
        values = fraction(metrics, num, den)
        if values is not None and np.isfinite(values).any():
            ax.plot(days, values, label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction")
    ax.set_title("phenotypes", fontsize="medium")


def plot_matrix(ax: Axes, metrics: pd.DataFrame, days: np.ndarray) -> None:
    for label, col in MATRIX:
        if col in metrics:
            ax.plot(days, metrics[col], label=label)
    ax.set_ylabel("mean content (healthy = 1)")
    ax.set_title("cartilage matrix", fontsize="medium")


PANELS = (plot_cytokines, plot_fractions, plot_matrix)


def summary_figure(run: Run, path: str | os.PathLike | None = None, dpi: int = 110) -> Figure:
    """The three-panel metrics figure of ``run``; saved to ``path`` when given."""
    metrics = run.metrics
    days = metrics["time_min"].to_numpy(dtype=float) / MIN_PER_DAY
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, len(PANELS), sharex=True)
    inject = injection_day(run)
    for ax, panel in zip(axes, PANELS, strict=True):
        panel(ax, metrics, days)
        if inject is not None and days.size and inject <= days[-1]:
            ax.axvline(inject, color="0.5", ls="--", lw=0.8)
        ax.set_xlabel("time (days)")
        if ax.lines:
            ax.legend(fontsize="x-small", ncols=2, loc="best")
    title = Path(run.path).parent.name or str(run.path)
    if inject is not None:
        title += f"  (MSC injection at day {inject:g}, dashed)"
    fig.suptitle(title, fontsize="medium")
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig
