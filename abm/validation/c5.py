"""C5: MSC therapy in OA moves macrophages M1 -> M2, raises Tregs, lowers IL-1β and TNF and
slows aggrecan loss (review; ter Huurne 2012). Also the readouts and figure C6 reuses.

Data flow: cached runs ``oa`` and ``oa+msc`` (runs.py) -> eight readouts (last 3 days; AGG at
the end), each compared between two arms -> rows + figure ``c5_therapy.png`` (report.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from abm.validation.plotting import COLORS, figure, styled
from abm.validation.runs import Runs, end, series, window
from abm.validation.verdicts import Row, row

MACROPHAGES = ("macrophage_m1", "macrophage_m0", "macrophage_m2")
TCELLS = ("tcell_naive", "tcell_th1", "tcell_th17", "tcell_treg")
# the figure's panels: metric, y label
PANELS = [
    ("macrophage_m1", "M1 macrophages (cells)"),
    ("macrophage_m2", "M2 macrophages (cells)"),
    ("tcell_treg", "Treg (cells)"),
    ("il1b_fluid", "IL-1β fluid (ng/mL)"),
    ("tnf_fluid", "TNF fluid (ng/mL)"),
    ("cartilage_agg", "mean aggrecan AGG (healthy = 1)"),
]


def _fraction(runs: Runs, arm: str, num: Sequence[str], den: Sequence[str]) -> float:
    """Mean over seeds of sum(num) / sum(den), each a mean over the end window."""
    e0, e1 = runs.end_window
    n = sum(window(runs[arm], k, e0, e1) for k in num)
    d = sum(window(runs[arm], k, e0, e1) for k in den)
    return float(np.mean(n / np.maximum(d, 1e-9)))


def _mean(key: str) -> Callable[[Runs, str], float]:
    def value(runs: Runs, arm: str) -> float:
        return float(window(runs[arm], key, *runs.end_window).mean())

    return value


# label -> (readout(runs, arm), which way is better)
READOUTS: dict[str, tuple[Callable[[Runs, str], float], str]] = {
    "M1 fraction of macrophages": (
        lambda r, a: _fraction(r, a, ["macrophage_m1"], MACROPHAGES), "lower"),
    "M2 fraction of macrophages": (
        lambda r, a: _fraction(r, a, ["macrophage_m2"], MACROPHAGES), "higher"),
    "Treg fraction of T cells": (lambda r, a: _fraction(r, a, ["tcell_treg"], TCELLS), "higher"),
    "IL-1β fluid (ng/mL)": (_mean("il1b_fluid"), "lower"),
    "TNF fluid (ng/mL)": (_mean("tnf_fluid"), "lower"),
    "AGG loss at end (1 - AGG)": (lambda r, a: 1 - end(r[a], "cartilage_agg"), "lower"),
    "fraction of FLS activated": (
        lambda r, a: _fraction(r, a, ["fls_activated"], ["fls_total"]), "lower"),
    "lining thickness (µm)": (_mean("lining_thickness_um"), "lower"),
}  # fmt: skip


def compare(runs: Runs, target: str, ref: str, new: str) -> list[Row]:
    """One row per readout: arm ``new`` vs arm ``ref``; ``met`` if better by >= 5%."""
    rows = []
    for label, (readout, want) in READOUTS.items():
        r, v = readout(runs, ref), readout(runs, new)
        better = v < r if want == "lower" else v > r
        rel = (v - r) / r if r else math.nan
        clear = abs(rel) >= 0.05 if r else abs(v) > 0.01
        rows.append(
            row(target, f"{label}: {new} vs {ref} (want {want})", f"{new} | {ref}", v,
                f"{want} than {r:.4g}", ("met" if clear else "marginal (<5%)") if better
                else "not met", f"rel. change {rel:+.1%}")
        )  # fmt: skip
    return rows


def therapy_figure(
    runs: Runs, arms: Sequence[str], panels: Sequence[tuple[str, str]], title: str
) -> Figure:
    """2 x 3 panels of metrics against time for ``arms``, the injection day dotted."""
    fig, axes = figure(2, 3, (12, 6))
    for ax, (key, label) in zip(axes.ravel(), panels, strict=True):
        for arm in arms:
            ax.plot(*series(runs[arm], key), color=COLORS[arm], label=arm)
        ax.set_xlabel("day")
        ax.set_ylabel(label)
        ax.axvline(runs.injection_day, color="0.6", ls=":", lw=0.8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{title}; mean of {len(runs.seeds)} seed(s)")
    fig.tight_layout()
    return fig


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """``oa+msc`` vs ``oa`` on every readout."""
    fig = therapy_figure(
        runs,
        ["oa", "oa+msc"],
        PANELS,
        f"C5 MSC therapy in oa (MSCs injected day {runs.injection_day:g}, dotted)",
    )
    return compare(runs, "C5", "oa", "oa+msc"), fig
