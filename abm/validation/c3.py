"""C3: MSCs suppress effector T-cell proliferation, more with more MSCs (60-98% in mixed
lymphocyte reactions, Di Nicola 2002).

Data flow: cached runs ``oa`` and ``dose 1e6/1e7/1e8`` (runs.py) and the T-cell rule alone
(rules.py) -> effector counts, suppression factors, rule division cuts -> rows + figure
``c3_tcell_suppression.png`` (report.py).
"""

from __future__ import annotations

import itertools

import numpy as np
from matplotlib.figure import Figure

from abm.validation import rules
from abm.validation.plotting import COLORS, figure, styled
from abm.validation.runs import Runs, series, window
from abm.validation.verdicts import Row, row

DOSE_ARMS = ("oa", "dose 1e6", "dose 1e7", "dose 1e8")
RULE_MULTIPLES = (0.3, 1.0, 3.0)  # rule rows: PGE2 = KYN = TGF-β = m x own K


def _effectors(runs: Runs, arm: str, d0: float, d1: float) -> np.ndarray:
    """Th1 + Th17 per seed, mean over days [d0, d1]."""
    return window(runs[arm], "tcell_th1", d0, d1) + window(runs[arm], "tcell_th17", d0, d1)


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """Effector counts and suppression factor vs dose (last 3 days); the rule's division cut."""
    e0, e1 = runs.end_window
    inj = runs.injection_day
    rule = rules.tcell_suppression(rules.rule_config())
    rows: list[Row] = []
    fig, axes = figure(1, 3, (13, 3.6))
    effs, sups = [], []
    for arm in DOSE_ARMS:
        t, th1 = series(runs[arm], "tcell_th1")
        _, th17 = series(runs[arm], "tcell_th17")
        axes[0].plot(t, th1 + th17, color=COLORS[arm], label=arm)
        axes[1].plot(*series(runs[arm], "teff_supp_mean", extra=True), color=COLORS[arm],
                     label=arm)  # fmt: skip
        eff = _effectors(runs, arm, e0, e1).mean()
        sup = window(runs[arm], "teff_supp_mean", e0, e1, extra=True).mean()
        nmsc = window(runs[arm], "msc_alive", inj + 0.1, inj + 0.2).mean()
        effs.append(eff)
        sups.append(sup)
        rows += [
            row("C3", f"Th1+Th17 count, mean days {e0:g}-{e1:g}", arm, eff, "falls with dose", "",
                "cells"),
            row("C3", f"effector suppression factor (1 = none), mean days {e0:g}-{e1:g}", arm,
                sup, "falls with dose", ""),
            row("C3", "MSCs in patch just after injection", arm, nmsc, "", "", "cells"),
        ]  # fmt: skip
    mono_eff = all(b <= a for a, b in itertools.pairwise(effs))
    mono_sup = all(b <= a for a, b in itertools.pairwise(sups))
    red = 1 - effs[-1] / max(effs[0], 1e-9)
    rows += [
        row("C3", "Th1+Th17 monotone non-increasing with dose (oa, 1e6, 1e7, 1e8)", "dose arms",
            float(mono_eff), "1", "met" if mono_eff else "not met"),
        row("C3", "suppression factor monotone with dose", "dose arms", float(mono_sup), "1",
            "met" if mono_sup else "not met"),
        row("C3", "Th1+Th17 reduction at 1e8 vs oa", "dose 1e8", red, "0.60-0.98 (MLR)",
            "met" if 0.6 <= red <= 0.98 else ("partly" if red > 0.1 else "not met")),
    ]  # fmt: skip
    rate = rule.set_index("mediator_x_K")["divisions_per_cell_day"]
    for mult in RULE_MULTIPLES:
        cut = 1 - rate[mult] / rate[0.0]
        rows.append(
            row("C3", f"rule: effector division cut at PGE2 = KYN = TGF-β = {mult:g} x own K",
                "tcell rule", cut, "0.60-0.98 (MLR)", "met" if 0.6 <= cut <= 0.98 else "outside")
        )  # fmt: skip
    axes[0].set_title("effector T cells (Th1 + Th17)")
    axes[0].set_xlabel("day")
    axes[0].set_ylabel("cells in patch")
    axes[0].legend(fontsize=7)
    axes[1].set_title("effector suppression factor (log)")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("day")
    axes[1].set_ylabel("mean (1-H(KYN))(1-H(PGE2))(1-H(TGFb))")
    ax = axes[2]
    ax.semilogx(rule.mediator_x_K.replace(0, 0.03), rule.divisions_per_cell_day / rate[0.0], "o-")
    ax.set_xlabel("PGE2 = KYN = TGF-β level / own K (0 plotted at 0.03)")
    ax.set_ylabel("division rate / unsuppressed")
    ax.set_title("rule: T-cell proliferation vs mediators")
    fig.suptitle(
        f"C3 MSC dose vs effector T cells (oa, MSC at day {inj:g}; {len(runs.seeds)} seed(s))"
    )
    fig.tight_layout()
    return rows, fig
