"""C1: synovial-fluid cytokines of the OA joint in their measured ranges (Sohn 2012), several
fold above the healthy joint, and quasi-steady.

Data flow: cached runs ``healthy``, ``oa`` (all seeds) and ``oa long`` (runs.py) -> window
means, drifts and cell counts -> rows + figure ``c1_fluid_cytokines.png`` (report.py).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from abm.validation.plotting import COLORS, figure, styled
from abm.validation.runs import LONG, Runs, series, window
from abm.validation.verdicts import Row, in_range, row, steady

# metric -> (low, high) of the target range in ng/mL, label
TARGETS = {
    "il6_fluid": (0.45, 2.7, "IL-6"),
    "il1b_fluid": (0.001, 0.002, "IL-1β"),
    "tnf_fluid": (0.0015, 0.006, "TNF"),
    "ccl2_fluid": (0.05, 0.2, "CCL2"),
}
CELLS = (("fls_total", "-"), ("macrophage_m1", ":"), ("tcell_treg", "-."))  # metric, line style


def _ratio(a: float, b: float) -> float:
    return a / max(b, 1e-30)


@styled
def check(runs: Runs) -> tuple[list[Row], Figure]:
    """Fluid levels (oa vs target and vs healthy, days D/2-D), their drift (14-day arms and the
    long run) and the FLS, M1 and Treg counts behind them."""
    D, L = runs.days, runs.long_days
    q0, q1 = D / 2, D  # quasi-steady window: second half of the run
    oa, healthy, long = runs["oa"], runs["healthy"], runs[LONG]
    rows: list[Row] = []
    fig, axes = figure(1, 5, (16, 3.3))
    for ax, (key, (lo, hi, label)) in zip(axes, TARGETS.items(), strict=False):
        for arm in ("healthy", "oa"):
            ax.plot(*series(runs[arm], key), color=COLORS[arm], label=arm)
        ax.plot(*series(long, key), color=COLORS["oa"], ls="--", lw=0.8, label=f"oa, {L:g} d run")
        ax.axhspan(lo, hi, color="0.85", label="target (Sohn 2012)")
        ax.set_yscale("log")
        ax.set_ylim(lo / 1000, hi * 30)
        ax.set_xlabel("day")
        ax.set_ylabel(f"{label} in synovial fluid (ng/mL)")
        ax.set_title(label)
        ax.axvspan(q0, q1, color="y", alpha=0.08)
        v_oa = window(oa, key, q0, q1).mean()
        v_he = window(healthy, key, q0, q1).mean()
        ratio = _ratio(v_oa, v_he)
        drift = _ratio(window(oa, key, D - 2, D).mean(), window(oa, key, q0, q0 + 2).mean())
        long_drift = _ratio(
            window(long, key, L - 5, L).mean(), window(long, key, L - 10, L - 5).mean()
        )
        v_long = window(long, key, L - 10, L).mean()
        rows += [
            row("C1", f"{label} fluid, mean days {q0:g}-{q1:g}", "oa", v_oa, f"{lo:g}-{hi:g}",
                in_range(v_oa, lo, hi), "ng/mL"),
            row("C1", f"{label} fluid, mean days {q0:g}-{q1:g}", "healthy", v_he,
                "several-fold below oa", "", "ng/mL"),
            row("C1", f"{label} fluid oa/healthy ratio", "oa/healthy", ratio, ">= 3",
                "met" if ratio >= 3 else ("partly" if ratio >= 1.5 else "not met")),
            row("C1", f"{label} fluid drift (last 2 d / days {q0:g}-{q0 + 2:g})", "oa", drift,
                "≈ 1 (quasi-steady)", steady(drift)),
            row("C1",
                f"{label} fluid drift, oa long run (days {L - 5:g}-{L:g} / {L - 10:g}-{L - 5:g})",
                LONG, long_drift, "≈ 1 (quasi-steady)", steady(long_drift)),
            row("C1", f"{label} fluid, oa long run, mean days {L - 10:g}-{L:g}", LONG, v_long,
                f"{lo:g}-{hi:g}", in_range(v_long, lo, hi), "ng/mL"),
        ]  # fmt: skip
    # the cell populations behind the fluid levels: do they plateau?
    ax = axes[4]
    for key, ls in CELLS:
        for arm in ("healthy", "oa"):
            ax.plot(*series(runs[arm], key), color=COLORS[arm], ls=ls, label=f"{arm} {key}")
        ax.plot(*series(long, key), color=COLORS["oa"], ls=ls, lw=0.8, alpha=0.6)
        for arm, day in (("healthy", D), ("oa", D), (LONG, L)):
            v0 = window(runs[arm], key, 0, 0).mean()
            v1 = window(runs[arm], key, day - 1, day).mean()
            rows.append(row("C1", f"{key}: day 0 -> mean of last day (day {day:g})", arm, v1,
                            f"day 0: {v0:.4g}", "", "cells"))  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("day")
    ax.set_ylabel("cells in patch")
    ax.set_title("cells: FLS, M1, Treg")
    ax.legend(fontsize=6, loc="lower right")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"C1 synovial fluid cytokines, mean of {len(runs.seeds)} seed(s) (shaded band: target; "
        f"yellow: averaging window; thin dashed: oa {L:g}-day run, seed {runs.seeds[0]})"
    )
    fig.tight_layout()
    return rows, fig
