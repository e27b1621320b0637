"""C2: MSC persistence, 15% of the injected MSCs alive at day 30 and 1.5% at 6 months
(Toupet 2013).

Data flow: the MSC loss rule alone (rules.py, 10,000 cells, 180 days) and the cached runs
``oa+msc`` and ``dose 1e8`` (runs.py) -> fractions alive -> rows + figure
``c2_msc_persistence.png`` (report.py).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from abm.units import MIN_PER_DAY
from abm.validation import rules
from abm.validation.plotting import COLORS, figure, styled
from abm.validation.runs import Runs
from abm.validation.verdicts import Row, row

RUN_ARMS = ("oa+msc", "dose 1e8")


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """The rule at days 30 and 180 against Toupet 2013; the full runs against the rule."""
    cfg = rules.rule_config()
    surv = rules.msc_survival(cfg)
    d = surv["day"].to_numpy()
    expected = rules.msc_survival_expected(cfg, d)
    f30 = float(surv.loc[surv.day == 30, "fraction_alive"].iloc[0])
    f180 = float(surv.loc[surv.day == 180, "fraction_alive"].iloc[0])
    rows = [
        row("C2", "MSC fraction alive at day 30 (rule, 10,000 cells)", "msc rule", f30, "≈ 0.15",
            "met" if 0.12 <= f30 <= 0.19 else "not met"),
        row("C2", "MSC fraction alive at day 180 (rule, 10,000 cells)", "msc rule", f180,
            "≈ 0.015", "met" if 0.010 <= f180 <= 0.021 else "not met"),
    ]  # fmt: skip
    fig, axes = figure(1, 2, (10, 3.6))
    ax = axes[0]
    ax.semilogy(d, surv["fraction_alive"], label="rule (abm.cells.msc.MSC.update), 10,000 cells")
    ax.semilogy(d, expected, "k--", lw=0.8, label="f_p + (1 - f_p) 2^(-t/11 d)")
    ax.plot([30, 180], [0.15, 0.015], "rs", label="Toupet 2013: 15% d30, 1.5% 6 mo")
    ax.set_xlabel("days after injection")
    ax.set_ylabel("fraction of injected MSCs alive")
    ax.set_title("C2 MSC persistence: the rule")
    ax.legend(fontsize=7)
    ax = axes[1]
    inj = runs.injection_day
    for arm in RUN_ARMS:
        for k, run in enumerate(runs[arm]):
            t = run.metrics["time_min"].to_numpy() / MIN_PER_DAY
            n = run.metrics["msc_alive"].to_numpy()
            sel = t > inj
            if not sel.any():
                continue
            n0 = n[sel][0]
            ax.plot(t[sel] - inj, n[sel] / n0, color=COLORS[arm], alpha=0.8,
                    label=f"{arm} (n0={n0:.0f})" if k == 0 else None)  # fmt: skip
            after = t[sel][-1] - inj
            rows.append(
                row("C2", f"MSC fraction alive {after:.1f} d after injection (model run)",
                    f"{arm} seed {run.seed}", n[sel][-1] / n0 if n0 else math.nan,
                    f"{expected[round(after)]:.2f} (rule, expected)", "")
            )  # fmt: skip
    tt = np.linspace(0, runs.days - inj, 50)
    ax.plot(tt, rules.msc_survival_expected(cfg, tt), "k--", lw=0.8, label="expected")
    ax.set_xlabel("days after injection")
    ax.set_ylabel("MSCs alive / MSCs injected")
    ax.set_title("C2 in full model runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return rows, fig
