"""C4: MSCs raise macrophage IL-10 through PGE2; a PGE2 knockout abolishes the rise
(Nemeth 2009).

Data flow: cached runs ``oa``, ``oa+msc`` and ``oa+msc pge2 KO`` (runs.py) -> synovial IL-10,
M2 macrophages, mean polarization p, PGE2 (last 3 days) -> rows + figure ``c4_il10_pge2.png``
(report.py).
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from abm.validation.plotting import COLORS, figure, styled
from abm.validation.runs import Runs, series, window
from abm.validation.verdicts import Row, row

ARMS = ("oa", "oa+msc", "oa+msc pge2 KO")
READOUTS = (  # metric, from the extras table?, y label (None: not plotted)
    ("il10_synovium", False, "IL-10 in synovium (ng/mL)"),
    ("macrophage_m2", False, "M2 macrophages (cells)"),
    ("mac_p_mean", True, "mean macrophage polarization p"),
    ("pge2_synovium", False, None),
)
RAISED = ("il10_synovium", "macrophage_m2")  # readouts the MSCs must raise, and the KO not


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """Readouts per arm (last 3 days); rise with MSCs; share of the rise the KO keeps (< 25%)."""
    e0, e1 = runs.end_window
    plotted = [r for r in READOUTS if r[2] is not None]
    fig, axes = figure(1, len(plotted), (13, 3.6))
    for arm in ARMS:
        for ax, (key, extra, _) in zip(axes, plotted, strict=True):
            ax.plot(*series(runs[arm], key, extra=extra), color=COLORS[arm], label=arm)
    rows: list[Row] = []
    vals = {}
    for key, extra, _ in READOUTS:
        for arm in ARMS:
            vals[key, arm] = v = window(runs[arm], key, e0, e1, extra=extra).mean()
            rows.append(row("C4", f"{key}, mean days {e0:g}-{e1:g}", arm, v, "", ""))
    for key in RAISED:
        up = vals[key, "oa+msc"] - vals[key, "oa"]
        ko = vals[key, "oa+msc pge2 KO"] - vals[key, "oa"]
        raised = up > 0.1 * max(abs(vals[key, "oa"]), 1e-9)
        abolished = raised and ko < 0.25 * up
        rows += [
            row("C4", f"{key}: MSC raises it (oa+msc - oa)", "oa+msc", up, "> 0 (clearly)",
                "met" if raised else "not met"),
            row("C4", f"{key}: PGE2 KO keeps <25% of the rise", "pge2 KO",
                ko / up if up else math.nan, "< 0.25", "met" if abolished else "not met"),
        ]  # fmt: skip
    for ax, (_, _, label) in zip(axes, plotted, strict=True):
        ax.set_xlabel("day")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.suptitle("C4 MSCs, macrophage IL-10 and the PGE2 knockout")
    fig.tight_layout()
    return rows, fig
