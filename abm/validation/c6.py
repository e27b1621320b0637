"""C6: IFN-γ-primed MSCs protect more than naive MSCs (Maumus 2016).

Data flow: cached runs ``oa+msc`` vs ``oa+msc primed`` (20 MSCs) and ``dose 1e6`` vs
``dose 1e6 primed`` (2 MSCs, a dose that does not saturate the naive effect) (runs.py) -> the
C5 readouts compared (c5.py) and the days until half the MSCs are licensed -> rows + figure
``c6_primed.png`` (report.py).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from abm.cells.msc import LICENSED
from abm.units import MIN_PER_DAY
from abm.validation.c5 import PANELS, compare, therapy_figure
from abm.validation.plotting import styled
from abm.validation.runs import Runs
from abm.validation.verdicts import Row, row

PAIRS = (("oa+msc", "oa+msc primed"), ("dose 1e6", "dose 1e6 primed"))  # naive, primed
LICENSING_ARMS = ("oa+msc", "dose 1e6", "oa+msc primed")
HALF = 0.5  # fraction of the MSCs alive that are licensed
FIGURE_ARMS = ("oa", "oa+msc", "oa+msc primed", "dose 1e6", "dose 1e6 primed")


def _half_licensed(runs: Runs, arm: str) -> list[Row]:
    """Per seed: days from injection until half the MSCs are licensed (NaN: never)."""
    inj = runs.injection_day
    rows = []
    for run in runs[arm]:
        t = run.metrics["time_min"].to_numpy() / MIN_PER_DAY
        alive = run.metrics["msc_alive"].to_numpy()
        lic = run.metrics["msc_licensed"].to_numpy() / np.maximum(alive, 1)
        i = np.flatnonzero((t > inj) & (alive > 0) & (lic >= HALF))
        rows.append(
            row("C6", f"days from injection until half the MSCs are licensed (L > {LICENSED:g}; "
                "empty: never)", f"{arm} seed {run.seed}",
                float(t[i[0]] - inj) if i.size else math.nan, "naive: days, not hours", "",
                "days")
        )  # fmt: skip
    return rows


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """Primed vs naive at 20 and 2 MSCs on the C5 readouts; licensing times."""
    rows = [r for naive, primed in PAIRS for r in compare(runs, "C6", naive, primed)]
    for arm in LICENSING_ARMS:
        rows += _half_licensed(runs, arm)
    panels = list(PANELS)
    panels[2] = ("msc_licensed", "licensed MSCs (cells)")
    fig = therapy_figure(
        runs,
        FIGURE_ARMS,
        panels,
        f"C6 IFN-γ-primed vs naive MSCs (oa, day {runs.injection_day:g}; "
        f"20 MSCs: oa+msc, 2 MSCs: dose 1e6)",
    )
    return rows, fig
