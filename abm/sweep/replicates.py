"""How many runs per parameter set? Consistency analysis after Alden et al. 2013 (PLoS Comput
Biol 9: e1002916, "Spartan"), the analysis stage of ``abm-replicates``.

A pool of runs differing only in their seed is run once (:func:`abm.sweep.launch.run_sweep`,
``seed=range(0,POOL)``). For each sample size n, ``subsets`` subsets of n runs are drawn from
the pool; for every readout and time point, the Vargha-Delaney A
(:func:`abm.validation.equivalence.vargha_delaney_a`) of subset 1 against each other subset
measures how far two sets of n runs can disagree by chance alone. A = 0.5: no difference;
Vargha & Delaney's "small" effect begins at 0.56 (and 0.44). The recommended n is the smallest
whose A values all lie within :data:`BAND` for every readout and time point: results from
that many runs per parameter set differ by chance by less than a small effect.

Subsets are disjoint when the pool holds ``subsets x n`` runs; a smaller pool draws each
subset's n runs without replacement within the subset but independently across subsets (the
subsets then overlap, which makes them look more alike than independent ones would: the
output says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from abm.validation.equivalence import READOUTS, vargha_delaney_a

BAND = (0.44, 0.56)  # A within: less than a "small" effect (Vargha & Delaney 2000)
DEFAULT_NS = (1, 5, 10, 20, 50)
DEFAULT_SUBSETS = 20
DEFAULT_METRICS = tuple(READOUTS)  # fluid IL-1b, TNF, IL-6, M1, M2, Treg fraction, aggrecan
COLUMNS = ("n", "metric", "day", "a_min", "a_max", "max_dev", "within")


def needed_pool(ns: Sequence[int], subsets: int) -> int:
    """Runs needed for disjoint subsets at every n: ``subsets x max(ns)``."""
    return int(subsets) * max(int(n) for n in ns)


def draw_subsets(n_runs: int, n: int, subsets: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, bool]:  # fmt: skip
    """(``subsets`` x ``n`` indices into a pool of ``n_runs`` runs, whether they overlap).

    Disjoint when the pool is large enough (``subsets * n <= n_runs``); otherwise each subset
    is drawn without replacement within itself, independently of the others (overlapping).
    """
    if not 1 <= n <= n_runs:
        raise ValueError(f"a subset of {n} runs needs a pool of at least {n}, not {n_runs}")
    if subsets * n <= n_runs:
        return rng.permutation(n_runs)[: subsets * n].reshape(subsets, n), False
    draws = np.stack([rng.choice(n_runs, size=n, replace=False) for _ in range(subsets)])
    return draws, True


def consistency(values: pd.DataFrame, ns: Sequence[int], subsets: int = DEFAULT_SUBSETS, *,
                seed: int = 0, band: tuple[float, float] = BAND
                ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The A spread of every readout and time point at every sample size.

    ``values``: long table with columns ``job``, ``metric``, ``day``, ``value`` (one value per
    run, readout and day; a run lacking any readout is left out). Per n, the same subsets of
    runs are used for every readout. Returns (summary with :data:`COLUMNS`: the smallest and
    largest A, the largest |A - 0.5| and whether every A lies within ``band``, and
    ``attrs`` runs, subsets and overlap (the n whose subsets overlap); the long table of every
    A: n, metric, day, subset, A). Raises ValueError when the pool is smaller than
    the largest n or ``subsets`` < 2.
    """
    if subsets < 2:
        raise ValueError(f"subsets must be >= 2 (subset 1 is compared with the others), not "
                         f"{subsets}")  # fmt: skip
    wide = values.pivot_table(index="job", columns=["metric", "day"], values="value",
                              aggfunc="first").dropna()  # fmt: skip
    order = list(dict.fromkeys(values["metric"]))  # readouts as given, days ascending
    wide = wide[sorted(wide.columns, key=lambda c: (order.index(c[0]), c[1]))]
    matrix = wide.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    lo, hi = band
    rows, every, overlap = [], [], []
    for n in sorted({int(n) for n in ns}):
        draws, overlaps = draw_subsets(len(wide), n, subsets, rng)
        if overlaps:
            overlap.append(n)
        for k, (metric, day) in enumerate(wide.columns):
            col = matrix[:, k]
            first = col[draws[0]]
            a = np.array([vargha_delaney_a(first, col[d]) for d in draws[1:]])
            every += [{"n": n, "metric": metric, "day": float(day), "subset": j + 2, "A": v}
                      for j, v in enumerate(a)]  # fmt: skip
            rows.append({"n": n, "metric": metric, "day": float(day),
                         "a_min": float(a.min()), "a_max": float(a.max()),
                         "max_dev": float(np.abs(a - 0.5).max()),
                         "within": bool(((a >= lo) & (a <= hi)).all())})  # fmt: skip
    summary = pd.DataFrame(rows, columns=list(COLUMNS))
    summary.attrs.update(runs=len(wide), subsets=int(subsets), overlap=overlap)
    return summary, pd.DataFrame(every)


def recommend(summary: pd.DataFrame) -> int | None:
    """The smallest n whose A values lie within the band for every readout and day, or None."""
    ok = summary.groupby("n")["within"].all()
    good = [int(n) for n, v in ok.items() if v]
    return min(good) if good else None


def report(summary: pd.DataFrame, band: tuple[float, float] = BAND) -> str:
    """A printed table (max |A - 0.5| per readout and day, one column per n; ``*`` outside the
    band) and the recommendation."""
    ns = sorted(summary["n"].unique())
    lines = ["max |A - 0.5| over the subsets (* = some A outside "
             f"[{band[0]:g}, {band[1]:g}])", f"{'readout':<24} {'day':>6} "
             + " ".join(f"{'n=' + str(n):>8}" for n in ns)]  # fmt: skip
    for (metric, day), g in summary.groupby(["metric", "day"], sort=False):
        cells = []
        for n in ns:
            r = g[g["n"] == n]
            cells.append(f"{r['max_dev'].iloc[0]:.3f}{' ' if r['within'].iloc[0] else '*'}"
                         if len(r) else "-")  # fmt: skip
        lines.append(f"{metric:<24} {day:>6g} " + " ".join(f"{c:>8}" for c in cells))
    best = recommend(summary)
    if best is None:
        worst = summary[summary["n"] == ns[-1]].sort_values("max_dev").iloc[-1]
        lines.append(f"no n tested keeps every A within [{band[0]:g}, {band[1]:g}]; at n = "
                     f"{ns[-1]} the worst is {worst['metric']} day {worst['day']:g} (A "
                     f"{worst['a_min']:.3f} to {worst['a_max']:.3f}): try larger --n "
                     "(with a pool to match)")  # fmt: skip
    else:
        lines.append(f"recommended: n = {best} runs per parameter set (the smallest n tested "
                     f"whose A values all lie within [{band[0]:g}, {band[1]:g}] for every "
                     "readout and day)")  # fmt: skip
        bad = summary[(summary["n"] > best) & ~summary["within"]]
        if len(bad):
            lines.append(f"note: at larger n some A fall outside again (n = "
                         f"{', '.join(str(n) for n in sorted(bad['n'].unique()))}): the "
                         "subsets are few or overlap; more --subsets or a larger pool "
                         "make this firmer")  # fmt: skip
    return "\n".join(lines)


def figure(summary: pd.DataFrame, every: pd.DataFrame | None, path: str | Path,
           band: tuple[float, float] = BAND) -> Path:  # fmt: skip
    """``replicates.png``: per readout, the A values (points) and their range (bars) against
    n, one colour per day, the band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(summary["metric"]))
    days = sorted(summary["day"].unique())
    ns = sorted(summary["n"].unique())
    cols = min(4, len(metrics))
    nrows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.9 * nrows), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    width = 0.6 / max(1, len(days))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        ax.axhspan(*band, color="0.85", zorder=0, label=f"{band[0]:g}-{band[1]:g}")
        ax.axhline(0.5, color="0.5", lw=0.6, zorder=1)
        for i, day in enumerate(days):
            g = summary[(summary["metric"] == metric) & (summary["day"] == day)]
            x = np.array([ns.index(n) for n in g["n"]]) + (i - (len(days) - 1) / 2) * width
            ax.vlines(x, g["a_min"], g["a_max"], color=f"C{i}", lw=2, label=f"day {day:g}")
            if every is not None and len(every):
                e = every[(every["metric"] == metric) & (every["day"] == day)]
                ex = np.array([ns.index(n) for n in e["n"]]) + (i - (len(days) - 1) / 2) * width
                ax.scatter(ex, e["A"], s=6, color=f"C{i}", alpha=0.5, zorder=3)
        ax.set_xticks(range(len(ns)), [str(n) for n in ns])
        ax.set_ylim(0, 1)
        ax.set_xlabel("runs per subset (n)", fontsize=8)
        ax.set_ylabel("Vargha-Delaney A", fontsize=8)
        ax.set_title(READOUTS.get(metric, (metric,))[0], fontsize=9)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
