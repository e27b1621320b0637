"""C7: IL-1β drives chondrocyte catabolism dose-dependently (Fan 2005); aggrecan loss precedes
collagen loss (Karsdal 2008).

Data flow: the chondrocyte rule alone at clamped IL-1β (rules.py) and the cached ``oa long``
run (runs.py) -> catabolic drive vs dose, days at which AGG and COL2 first fall below
thresholds -> rows + figure ``c7_catabolism_matrix.png`` (report.py).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from abm.cells.chondrocyte import CATABOLIC
from abm.units import MIN_PER_DAY
from abm.validation import rules
from abm.validation.plotting import figure, styled
from abm.validation.runs import LONG, Runs
from abm.validation.verdicts import Row, row

OA_IL1B_NG_ML = (0.001, 0.002)  # OA synovial-fluid IL-1β (C1 target), shaded


def _first_below(t: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """First time (day) with ``y <= threshold``; NaN if never."""
    i = np.flatnonzero(y <= threshold)
    return float(t[i[0]]) if i.size else math.nan


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """The rule's c after 3 days per IL-1β level and its monotonicity; AGG before COL2 loss."""
    dr = rules.chondrocyte_dose_response(rules.rule_config())
    c = dr.c_mean.to_numpy()
    mono = bool(np.all(np.diff(c) >= -1e-6)) and c[-1] > c[0]
    rows = [
        row("C7", f"rule: chondrocyte c after 3 d at IL-1β {r.il1b_ng_ml:g} ng/mL",
            "chondrocyte rule", r.c_mean, "rises with IL-1β", "",
            f"PROT {r.prot_molec_cell_s:.3g} molec/cell/s")
        for r in dr.itertuples()
    ]  # fmt: skip
    rows.append(row("C7", "rule: c monotone in IL-1β dose", "chondrocyte rule", float(mono), "1",
                    "met" if mono else "not met"))  # fmt: skip
    L = runs.long_days
    long = runs[LONG][0].metrics
    t = long["time_min"].to_numpy() / MIN_PER_DAY
    agg, col = long["cartilage_agg"].to_numpy(), long["cartilage_col2"].to_numpy()
    t_agg10, t_col10 = _first_below(t, agg, 0.9), _first_below(t, col, 0.9)
    t_col01 = _first_below(t, col, 0.99)
    precedes = not math.isnan(t_agg10) and (math.isnan(t_col01) or t_agg10 < t_col01)
    if not precedes:
        verdict = "not met"
    else:
        verdict = "partly (no collagen loss yet)" if math.isnan(t_col01) else "met"
    rows += [
        row("C7", f"oa {L:g} d: day AGG falls below 0.9", LONG, t_agg10, "", "", "day"),
        row("C7", f"oa {L:g} d: day COL2 falls below 0.99", LONG, t_col01, "", "", "day"),
        row("C7", f"oa {L:g} d: day COL2 falls below 0.9", LONG, t_col10, "", "", "day"),
        row("C7", f"oa {L:g} d: AGG, COL2 at end", LONG, float(agg[-1]), f"COL2 = {col[-1]:.3f}",
            "", ""),
        row("C7", "aggrecan loss precedes collagen loss", LONG, float(precedes), "1", verdict),
    ]  # fmt: skip

    fig, axes = figure(1, 2, (11, 3.8))
    ax = axes[0]
    x = dr.il1b_ng_ml.replace(0, 1e-4)
    ax.semilogx(x, dr.c_mean, "o-", label="mean catabolic drive c")
    ax.semilogx(x, dr.catabolic_fraction, "s--", label=f"fraction catabolic (c > {CATABOLIC:g})")
    ax.semilogx(x, dr.agg_synthesis_drive / 2, "^:", label="aggrecan synthesis drive / 2")
    ax.axvspan(*OA_IL1B_NG_ML, color="0.85", label="OA synovial fluid IL-1β")
    ax.set_xlabel("clamped IL-1β (ng/mL; 0 plotted at 1e-4)")
    ax.set_ylabel("after 3 days (dimensionless)")
    ax.set_title("chondrocyte rule, dose response (mechanical drive of oa)")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(t, agg, label="aggrecan (AGG)")
    ax.plot(t, col, label="collagen II (COL2)")
    catabolic = long["chondrocyte_catabolic"] / np.maximum(long["chondrocyte_alive"], 1)
    ax.plot(t, catabolic, label="fraction of chondrocytes catabolic", lw=0.8)
    ax.set_xlabel("day")
    ax.set_ylabel("cartilage mean (healthy = 1)")
    ax.set_title(f"oa, no therapy, {L:g} days (seed {runs.seeds[0]})")
    ax.legend(fontsize=7)
    fig.suptitle("C7 IL-1β-driven catabolism; aggrecan loss before collagen loss")
    fig.tight_layout()
    return rows, fig
