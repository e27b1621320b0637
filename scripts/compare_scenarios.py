"""Run scenarios side by side and print (and save) their key readouts at the end.

Usage: python scripts/compare_scenarios.py [--days 14] [--seeds 0 1] [--out compare.csv]
        [--set KEY=VALUE ...] (extra overrides for every run)
Used for calibration (docs/validation.md): C1 fluid levels, C5 therapy effect, C6 priming.
"""

from __future__ import annotations

import argparse

import pandas as pd

import abm

ARMS = {
    "healthy": ["scenario=healthy", "therapy=none"],
    "oa": ["scenario=oa", "therapy=none"],
    "oa_mild": ["scenario=oa_mild", "therapy=none"],
    "oa+msc": ["scenario=oa", "therapy=msc"],
    "oa+msc primed": ["scenario=oa", "therapy=msc", "therapy.prelicensed=true"],
    "oa+msc pge2 KO": ["scenario=oa", "therapy=msc", "therapy.knockouts=[pge2]"],
}
KEYS = ["il6_fluid", "il1b_fluid", "tnf_fluid", "ccl2_fluid", "ifng_fluid", "pge2_synovium",
        "macrophage_m1", "macrophage_m2", "tcell_th1", "tcell_treg", "fls_activated",
        "lining_thickness_um", "chondrocyte_catabolic", "msc_alive", "msc_licensed",
        "cartilage_agg", "cartilage_col2"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--arms", nargs="+", default=list(ARMS))
    ap.add_argument("--set", nargs="*", default=[], help="extra Hydra overrides")
    ap.add_argument("--out", default=None, help="CSV of the final readouts")
    args = ap.parse_args()
    rows = []
    for arm in args.arms:
        for seed in args.seeds:
            cfg = abm.compose([*ARMS[arm], f"seed={seed}", f"sim.days={args.days}", *args.set])
            m = abm.JointModel(cfg)
            last = m.run().iloc[-1]
            rows.append({"arm": arm, "seed": seed, **{k: last[k] for k in KEYS}})
            print(arm, seed, flush=True)
    table = (
        pd.DataFrame(rows).groupby("arm", sort=False).mean(numeric_only=True).drop(columns="seed")
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.precision", 4):
        print(table.T)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
