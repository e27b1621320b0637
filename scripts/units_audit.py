"""Units audit of biology v2 (report stage: run folders -> docs/figures/v2/units_audit.png).

    python scripts/units_audit.py RUN [RUN ...] --out docs/figures/v2

For each untreated run (its checkpoint.h5, the model rebuilt from it) and each cytokine:

1. the whole-knee synovial-fluid balance, analytic: at a steady state the fluid loses
   C · V_sf · (decay + clearance) per minute, so the net flux into the fluid per synovial cell of
   the knee is J = C · V_sf · (λ + k) / N_knee, with N_knee = the patch's synovial cells x
   A_syn / A_patch; a physiological check (the review's [calc]: 1e-4 to 1e-2 molecules/s per
   synovial cell for TNF and IL-1β in OA);
2. the model's own per-cell secretion (mean over the synovial cells of the rates the rules set,
   molecules/cell/s), and the fraction of it that reaches the fluid (J / secretion);
3. the SF concentration the model holds next to the published OA medians (Sohn 2012; Westacott
   1990) on a log scale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from abm.config import patch_area_cm2
from abm.model import JointModel
from abm.observers.checkpoint import read_checkpoint
from abm.params import FIELD_NAMES
from abm.units import AVOGADRO, S_PER_MIN

FIELDS = ("IL1b", "TNF", "IL6", "CCL2", "PGE2", "IL10")
SYNOVIAL = ("fls", "macrophage", "tcell")
# OA synovial-fluid medians (pg/mL) from two cohorts; the review's band: >= 0.5 log10 around them
STUDIES = {"IL1b": (1.14, 28.0), "TNF": (2.92, 50.0), "IL6": (975.0, None), "CCL2": (108.0, None)}
NEED = {"IL1b": (1e-4, 1e-2), "TNF": (1e-4, 1e-2)}  # molecules/s per synovial cell [calc]


def audit(run: Path) -> pd.DataFrame:
    ck = read_checkpoint(run / "checkpoint.h5")
    cfg = ck.config
    m = JointModel.from_state(cfg, ck.state)
    ctx = m._context()
    from abm.cells.base import Sense
    from kernels.exchange import gather

    for t, pop in zip(m.types, m.cells, strict=True):
        ctx.sense[pop.name] = Sense(m.xp, gather(m.u, pop["voxel"]), FIELD_NAMES, m.bio,
                                    K=getattr(t.p, "K", None))  # fmt: skip
    per_type = {}
    for t, pop in zip(m.types, m.cells, strict=True):
        if pop.n:
            per_type[t.name] = (pop.n, {f: float(np.sum(r)) for f, r in
                                        t.secretion(ctx, pop).items()})  # fmt: skip
    n_syn = sum(per_type.get(k, (0, {}))[0] for k in SYNOVIAL)
    area = patch_area_cm2(cfg.lattice)
    n_knee = n_syn * float(cfg.patient.synovial_area_cm2) / area
    v_ml = float(cfg.patient.sf_volume_ml)
    rows = []
    for f in FIELDS:
        p = m.bio.fields[f]
        c = float(m.fluid.level(m.u)[FIELD_NAMES.index(f)])  # ng/mL
        loss = float(p.decay) + float(m.bio.fluid_clearance)  # 1/min
        ng_per_min = c * v_ml * loss
        molecules_s = ng_per_min * 1e-9 / (float(p.mw_kda) * 1e3) * AVOGADRO / S_PER_MIN
        secreted = sum(d[1].get(f, 0.0) for k, d in per_type.items() if k in SYNOVIAL)
        rows.append({"run": run.name, "field": f, "sf_ng_ml": c, "sf_pg_ml": 1e3 * c,
                     "knee_cells": n_knee, "flux_per_cell_s": molecules_s / n_knee,
                     "secretion_per_cell_s": secreted / n_syn if n_syn else float("nan"),
                     "fraction_reaching_sf": (molecules_s / n_knee) / (secreted / n_syn)
                     if secreted else float("nan")})  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=Path("docs/figures/v2"))
    a = ap.parse_args(argv)
    table = pd.concat([audit(r) for r in a.runs], ignore_index=True)
    a.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(a.out / "units_audit.csv", index=False)
    g = table.groupby("field", sort=False).median(numeric_only=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    x = np.arange(len(g))
    ax1.scatter(x - 0.1, g["secretion_per_cell_s"], marker="o", label="model: mean secretion")
    ax1.scatter(x + 0.1, g["flux_per_cell_s"], marker="s",
                label="model: net flux into SF (C·V·(λ+k)/N_knee)")  # fmt: skip
    for i, f in enumerate(g.index):
        if f in NEED:
            lo, hi = NEED[f]
            ax1.plot(
                [i, i],
                [lo, hi],
                color="grey",
                lw=8,
                alpha=0.3,
                label="whole-knee balance needs (review [calc])" if i == 0 else None,
            )
    ax1.axhspan(1, 100, color="tab:red", alpha=0.08,
                label="acutely stimulated cells (v1 design)")  # fmt: skip
    ax1.set_yscale("log")
    ax1.set_xticks(x, g.index)
    ax1.set_ylabel("molecules / synovial cell / s")
    ax1.legend(fontsize=7)
    ax1.set_title("per-cell rates: secretion and the flux the SF balance implies", fontsize=10)
    for i, f in enumerate(g.index):
        ax2.scatter([i], [g.loc[f, "sf_pg_ml"]], color="tab:blue",
                    label="model (untreated, end of run)" if i == 0 else None)  # fmt: skip
        for j, v in enumerate(STUDIES.get(f, ())):
            if v is None:
                continue
            ax2.scatter([i + 0.15], [v], marker="x", color=["black", "tab:grey"][j],
                        label=["Sohn 2012 median", "Westacott 1990"][j]
                        if i == 0 or (f == "IL1b" and j == 1) else None)  # fmt: skip
            ax2.plot([i + 0.15, i + 0.15], [v / 10**0.5, v * 10**0.5], color="black", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_xticks(x, g.index)
    ax2.set_ylabel("synovial fluid (pg/mL)")
    ax2.set_title("SF levels: model vs OA cohorts (±0.5 log10)", fontsize=10)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out / "units_audit.png", dpi=110)
    print(g.round(6).to_string())
    print(f"wrote {a.out / 'units_audit.png'}, units_audit.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
