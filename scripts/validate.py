"""Check the calibration targets C1-C7 of MODEL.md section 7; write figures + a results CSV.

Usage:
    python scripts/validate.py                 # run every arm, write docs/figures/*.png + CSV
    python scripts/validate.py --replot        # redo figures/CSV from the cached runs
    python scripts/validate.py --parameters    # regenerate docs/parameters.md from conf/*.yaml
Options: --days 14 --long-days 40 --seeds 0 1 --shape 193 64 --jobs 2 --cache build/validate
         --only ARM ... (run only these arms; "oa long" is the long run)

The model arms run through ``abm.compose([...])`` + ``abm.JointModel(cfg).run(days=...)`` on a
narrow 2D lattice (default ``lattice.shape=[193,64]``: every compartment of the default 2D
lattice, a quarter of its width). Per-rule checks (C2 survival, C3/C7 dose responses) step the
rule modules with clamped fields, as tests/abm/cells/test_rules.py does.
Results: docs/figures/validation_results.csv (one row per check) and docs/figures/c*.png.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
FIG = ROOT / "docs" / "figures"

from compare_scenarios import ARMS as BASE_ARMS  # noqa: E402

ARMS = {
    "healthy": BASE_ARMS["healthy"],
    "oa": BASE_ARMS["oa"],
    "oa+msc": BASE_ARMS["oa+msc"],
    "oa+msc primed": BASE_ARMS["oa+msc primed"],
    "oa+msc pge2 KO": BASE_ARMS["oa+msc pge2 KO"],
    # C3 dose arms: min_cells=1 so that the patch gets dose * V_fluid_sim / V_sf cells exactly
    "dose 1e6": ["scenario=oa", "therapy=msc", "therapy.dose=1e6", "therapy.min_cells=1"],
    "dose 1e7": ["scenario=oa", "therapy=msc", "therapy.dose=1e7", "therapy.min_cells=1"],
    "dose 1e8": ["scenario=oa", "therapy=msc", "therapy.dose=1e8", "therapy.min_cells=1"],
    # C6 at a dose that does not saturate the naive-MSC effect (2 MSCs in the patch)
    "dose 1e6 primed": [
        "scenario=oa",
        "therapy=msc",
        "therapy.dose=1e6",
        "therapy.min_cells=1",
        "therapy.prelicensed=true",
    ],
}
COLORS = {
    "healthy": "tab:green",
    "oa": "tab:red",
    "oa+msc": "tab:blue",
    "oa+msc primed": "tab:purple",
    "oa+msc pge2 KO": "tab:orange",
    "dose 1e6": "#9ecae1",
    "dose 1e7": "#4292c6",
    "dose 1e8": "#08306b",
    "dose 1e6 primed": "#bc80bd",
}
CHUNK_DAYS = 0.25  # extras (per-cell means not in the metrics table) every 6 h


# ---------------------------------------------------------------------------------- model runs
def _extras(m) -> dict[str, float]:
    """Per-cell means the metrics table lacks: T-cell suppression factor, macrophage p, MSC L."""
    from abm.backend import to_numpy
    from abm.cells.population import MACROPHAGE, MSC, TCELL, TH1, TH17

    tc = m.pops[TCELL]
    sub = to_numpy(tc["subset"])
    st = to_numpy(tc["state"])
    eff = (sub == TH1) | (sub == TH17)
    p = to_numpy(m.pops[MACROPHAGE]["state"])
    L = to_numpy(m.pops[MSC]["state"])
    return {
        "time_min": m.time_min,
        "teff_supp_mean": float(st[eff].mean()) if eff.any() else math.nan,
        "tcell_supp_mean": float(st.mean()) if st.size else math.nan,
        "mac_p_mean": float(p.mean()) if p.size else math.nan,
        "msc_L_mean": float(L.mean()) if L.size else math.nan,
    }


def run_arm(job: tuple[str, list[str], int, float, list[int], str]) -> tuple[str, int, float]:
    """Run one arm/seed; write hourly metrics + 6-hourly extras CSVs into the cache dir."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import abm

    name, overrides, seed, days, shape, cache = job
    t0 = time.time()
    cfg = abm.compose(
        [
            *overrides,
            f"seed={seed}",
            f"sim.days={days}",
            f"lattice.shape=[{shape[0]},{shape[1]}]",
            "output.progress=false",
        ]
    )
    from omegaconf import OmegaConf

    (Path(cache) / f"{_tag(name, seed, days)}_config.yaml").write_text(OmegaConf.to_yaml(cfg))
    m = abm.JointModel(cfg)
    extras = [_extras(m)]
    n_chunks = round(days / CHUNK_DAYS)
    for _ in range(n_chunks):
        m.run(days=CHUNK_DAYS)
        extras.append(_extras(m))
    met = m.metrics
    met = met[(met["time_min"] % 60.0) < 1e-6].reset_index(drop=True)
    tag = _tag(name, seed, days)
    met.to_csv(Path(cache) / f"{tag}.csv", index=False)
    pd.DataFrame(extras).to_csv(Path(cache) / f"{tag}_extra.csv", index=False)
    return name, seed, time.time() - t0


def _tag(name: str, seed: int, days: float) -> str:
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}_s{seed}_d{days:g}"


def load(
    cache: Path, name: str, seeds: list[int], days: float
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    out = []
    for s in seeds:
        tag = _tag(name, s, days)
        out.append((pd.read_csv(cache / f"{tag}.csv"), pd.read_csv(cache / f"{tag}_extra.csv")))
    return out


def window(runs, key: str, d0: float, d1: float, extra: bool = False) -> np.ndarray:
    """Per-seed mean of ``key`` over days [d0, d1]."""
    vals = []
    for met, ext in runs:
        df = ext if extra else met
        t = df["time_min"] / 1440.0
        vals.append(float(df.loc[(t >= d0) & (t <= d1), key].mean()))
    return np.asarray(vals)


def series(runs, key: str, extra: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of ``key`` against time (days)."""
    dfs = [(ext if extra else met) for met, ext in runs]
    n = min(len(d) for d in dfs)
    t = dfs[0]["time_min"].to_numpy()[:n] / 1440.0
    y = np.mean([d[key].to_numpy()[:n] for d in dfs], axis=0)
    return t, y


# ---------------------------------------------------------------------------------- rule checks
def _rule_ctx(cfg, step: int, dt: float):
    from abm.cells.base import Ctx

    return Ctx(np, 0, step, dt, cfg.biology, cfg.scenario, frozenset())


def _clamp(cfg, n: int, **levels):
    from abm.cells.base import Sense
    from abm.config import FIELD_NAMES

    values = np.zeros((len(FIELD_NAMES), n), dtype=np.float32)
    for k, v in levels.items():
        values[FIELD_NAMES.index(k)] = v
    return Sense(np, values, FIELD_NAMES, cfg.biology)


def msc_survival_rule(cfg, n: int = 10000, days: int = 180) -> pd.DataFrame:
    """C2: MSC loss by the rule (abm.cells.msc.update), hour steps, no fields."""
    from abm.cells import msc
    from abm.cells.population import MSC, Population
    from kernels.random import uniform

    p = Population(np, MSC)
    ids = np.arange(n, dtype=np.int64)
    persistent = uniform(np, 0, 0, 44, ids) < cfg.biology.msc.persistent_fraction
    p.append(id=ids, voxel=ids, persistent=persistent)
    s = _clamp(cfg, n)
    rows = [(0.0, 1.0)]
    for k in range(1, 24 * days + 1):
        death, _ = msc.update(p, s, _rule_ctx(cfg, k, 60.0))
        p.keep(~death)
        s.keep(~death)
        if k % 24 == 0:
            rows.append((k / 24, p.n / n))
    return pd.DataFrame(rows, columns=["day", "fraction_alive"])


def chondrocyte_dose_response(cfg, levels, days: float = 3.0, n: int = 200) -> pd.DataFrame:
    """C7: chondrocyte catabolic drive c after ``days`` at clamped IL-1b (ng/mL), no TNF/TGF-b;
    PROT secretion (molecules/cell/s) and relative aggrecan synthesis drive of the rule."""
    from abm.cells import chondrocyte
    from abm.cells.population import CHONDROCYTE, Population

    rows = []
    dt = 2.0
    for lvl in levels:
        p = Population(np, CHONDROCYTE)
        p.append(id=np.arange(n), voxel=np.arange(n), state=np.zeros(n), alive=np.ones(n, bool))
        s = _clamp(cfg, n, IL1b=lvl)
        agg = np.ones(n, np.float32)  # matrix intact: no apoptosis
        for k in range(1, round(days * 1440 / dt) + 1):
            chondrocyte.update(p, s, _rule_ctx(cfg, k, dt), agg)
        c = float(p["state"].mean())
        sec = chondrocyte.secretion(p, s, _rule_ctx(cfg, 0, dt))
        rows.append(
            {
                "il1b_ng_ml": lvl,
                "c_mean": c,
                "prot_molec_cell_s": float(np.mean(sec["PROT"])),
                "catabolic_fraction": float((p["state"] > chondrocyte.CATABOLIC).mean()),
                "agg_synthesis_drive": float(
                    np.mean(chondrocyte.synthesis(p, s, _rule_ctx(cfg, 0, dt)))
                ),
            }
        )
    return pd.DataFrame(rows)


def tcell_suppression_rule(cfg, n: int = 2000) -> pd.DataFrame:
    """C3 (rule level): effector T-cell division probability per day vs MSC mediator levels
    (IL-1b clamped at 0.01 ng/mL so that proliferation is on)."""
    from abm.cells import tcell
    from abm.cells.population import TCELL, TH1, Population

    rows = []
    base = {"IL1b": 0.01}
    K = {f: float(cfg.biology.fields[f].K) for f in ("PGE2", "KYN", "TGFb")}
    for mult in (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
        lv = {f: mult * K[f] for f in K}
        p = Population(np, TCELL)
        p.append(
            id=np.arange(n), voxel=np.arange(n), subset=np.full(n, TH1, np.int8), state=np.ones(n)
        )
        s = _clamp(cfg, n, **base, **lv)
        divs = 0
        steps = 720
        for k in range(1, steps + 1):
            _, div = tcell.update(p, s, _rule_ctx(cfg, k, 2.0))
            divs += int(div.sum())
        rows.append(
            {
                "mediator_x_K": mult,
                "divisions_per_cell_day": divs / n / (steps * 2 / 1440),
                "suppression_factor": float(p["state"].mean()),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- analysis
def analyse(args, cache: Path) -> pd.DataFrame:
    import matplotlib

    import abm

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "figure.dpi": 100})
    D, seeds = args.days, args.seeds
    runs = {a: load(cache, a, seeds, D) for a in ARMS}
    long_runs = load(cache, "oa", [seeds[0]], args.long_days)
    res: list[dict] = []

    def add(target, check, arm, value, expected, verdict, unit=""):
        res.append(
            {
                "target": target,
                "check": check,
                "arm": arm,
                "value": value,
                "unit": unit,
                "expected": expected,
                "verdict": verdict,
            }
        )

    q0, q1 = D / 2, D  # quasi-steady window: second half of the run
    e0, e1 = D - 3, D  # end window for therapy comparisons (last 3 days)

    # ---- C1
    c1 = {
        "il6_fluid": (0.45, 2.7, "IL-6"),
        "il1b_fluid": (0.001, 0.002, "IL-1β"),
        "tnf_fluid": (0.0015, 0.006, "TNF"),
        "ccl2_fluid": (0.05, 0.2, "CCL2"),
    }
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.3))
    for ax, (key, (lo, hi, label)) in zip(axes, c1.items(), strict=False):
        for arm in ("healthy", "oa"):
            t, y = series(runs[arm], key)
            ax.plot(t, y, color=COLORS[arm], label=arm)
        t, y = series(long_runs, key)
        ax.plot(t, y, color=COLORS["oa"], ls="--", lw=0.8, label=f"oa, {args.long_days:g} d run")
        ax.axhspan(lo, hi, color="0.85", label="target (Sohn 2012)")
        ax.set_yscale("log")
        ax.set_ylim(lo / 1000, hi * 30)
        ax.set_xlabel("day")
        ax.set_ylabel(f"{label} in synovial fluid (ng/mL)")
        ax.set_title(label)
        ax.axvspan(q0, q1, color="y", alpha=0.08)
        oa = window(runs["oa"], key, q0, q1)
        he = window(runs["healthy"], key, q0, q1)
        ratio = oa.mean() / max(he.mean(), 1e-30)
        ok = lo <= oa.mean() <= hi
        near = lo / 3 <= oa.mean() <= hi * 3
        add(
            "C1",
            f"{label} fluid, mean days {q0:g}-{q1:g}",
            "oa",
            oa.mean(),
            f"{lo:g}-{hi:g}",
            "met" if ok else ("partly" if near else "not met"),
            "ng/mL",
        )
        add(
            "C1",
            f"{label} fluid, mean days {q0:g}-{q1:g}",
            "healthy",
            he.mean(),
            "several-fold below oa",
            "",
            "ng/mL",
        )
        add(
            "C1",
            f"{label} fluid oa/healthy ratio",
            "oa/healthy",
            ratio,
            ">= 3",
            "met" if ratio >= 3 else ("partly" if ratio >= 1.5 else "not met"),
        )
        drift = window(runs["oa"], key, D - 2, D).mean() / max(
            window(runs["oa"], key, q0, q0 + 2).mean(), 1e-30
        )
        add(
            "C1",
            f"{label} fluid drift (last 2 d / days {q0:g}-{q0 + 2:g})",
            "oa",
            drift,
            "≈ 1 (quasi-steady)",
            "met" if 0.9 <= drift <= 1.1 else "not met",
        )
        L = args.long_days
        long_drift = window(long_runs, key, L - 5, L).mean() / max(
            window(long_runs, key, L - 10, L - 5).mean(), 1e-30
        )
        add(
            "C1",
            f"{label} fluid drift, oa long run (days {L - 5:g}-{L:g} / {L - 10:g}-{L - 5:g})",
            "oa long",
            long_drift,
            "≈ 1 (quasi-steady)",
            "met" if 0.9 <= long_drift <= 1.1 else "not met",
        )
        lv = window(long_runs, key, L - 10, L).mean()
        add(
            "C1",
            f"{label} fluid, oa long run, mean days {L - 10:g}-{L:g}",
            "oa long",
            lv,
            f"{lo:g}-{hi:g}",
            "met" if lo <= lv <= hi else ("partly" if lo / 3 <= lv <= hi * 3 else "not met"),
            "ng/mL",
        )
    # cell populations behind the fluid levels: do they plateau?
    ax = axes[4]
    for key, ls in (("fls_total", "-"), ("macrophage_m1", ":"), ("tcell_treg", "-.")):
        for arm in ("healthy", "oa"):
            t, y = series(runs[arm], key)
            ax.plot(t, y, color=COLORS[arm], ls=ls, label=f"{arm} {key}")
        t, y = series(long_runs, key)
        ax.plot(t, y, color=COLORS["oa"], ls=ls, lw=0.8, alpha=0.6)
        for arm, rr, day in (
            ("healthy", runs["healthy"], D),
            ("oa", runs["oa"], D),
            ("oa long", long_runs, args.long_days),
        ):
            v0 = window(rr, key, 0, 0).mean()
            v1 = window(rr, key, day - 1, day).mean()
            add(
                "C1",
                f"{key}: day 0 -> mean of last day (day {day:g})",
                arm,
                v1,
                f"day 0: {v0:.4g}",
                "",
                "cells",
            )
    ax.set_yscale("log")
    ax.set_xlabel("day")
    ax.set_ylabel("cells in patch")
    ax.set_title("cells: FLS, M1, Treg")
    ax.legend(fontsize=6, loc="lower right")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"C1 synovial fluid cytokines, mean of {len(seeds)} seed(s) (shaded band: target; "
        f"yellow: averaging window; thin dashed: oa {args.long_days:g}-day run, seed {seeds[0]})"
    )
    fig.tight_layout()
    fig.savefig(FIG / "c1_fluid_cytokines.png")
    plt.close(fig)

    # ---- C2
    cfg = abm.compose(["scenario=oa", "therapy=msc"])
    surv = msc_survival_rule(cfg)
    m = cfg.biology.msc
    d = surv["day"].to_numpy()
    analytic = m.persistent_fraction + (1 - m.persistent_fraction) * 0.5 ** (d / m.half_life_days)
    f30 = float(surv.loc[surv.day == 30, "fraction_alive"].iloc[0])
    f180 = float(surv.loc[surv.day == 180, "fraction_alive"].iloc[0])
    add(
        "C2",
        "MSC fraction alive at day 30 (rule, 10,000 cells)",
        "msc rule",
        f30,
        "≈ 0.15",
        "met" if 0.12 <= f30 <= 0.19 else "not met",
    )
    add(
        "C2",
        "MSC fraction alive at day 180 (rule, 10,000 cells)",
        "msc rule",
        f180,
        "≈ 0.015",
        "met" if 0.010 <= f180 <= 0.021 else "not met",
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax = axes[0]
    ax.semilogy(d, surv["fraction_alive"], label="rule (abm.cells.msc.update), 10,000 cells")
    ax.semilogy(d, analytic, "k--", lw=0.8, label="f_p + (1 - f_p) 2^(-t/11 d)")
    ax.plot([30, 180], [0.15, 0.015], "rs", label="Toupet 2013: 15% d30, 1.5% 6 mo")
    ax.set_xlabel("days after injection")
    ax.set_ylabel("fraction of injected MSCs alive")
    ax.set_title("C2 MSC persistence: the rule")
    ax.legend(fontsize=7)
    ax = axes[1]
    inj = float(cfg.therapy.day)
    for arm in ("oa+msc", "dose 1e8"):
        for k, (met, _) in enumerate(runs[arm]):
            t = met["time_min"].to_numpy() / 1440.0
            n = met["msc_alive"].to_numpy()
            sel = t > inj
            if not sel.any():
                continue
            n0 = n[sel][0]
            ax.plot(
                t[sel] - inj,
                n[sel] / n0,
                color=COLORS[arm],
                alpha=0.8,
                label=f"{arm} (n0={n0:.0f})" if k == 0 else None,
            )
            frac = n[sel][-1] / n0
            add(
                "C2",
                f"MSC fraction alive {t[sel][-1] - inj:.1f} d after injection (model run)",
                f"{arm} seed {seeds[k]}",
                frac,
                f"{analytic[round(t[sel][-1] - inj)]:.2f} (rule, expected)",
                "",
            )
    tt = np.linspace(0, D - inj, 50)
    ax.plot(
        tt,
        m.persistent_fraction + (1 - m.persistent_fraction) * 0.5 ** (tt / m.half_life_days),
        "k--",
        lw=0.8,
        label="expected",
    )
    ax.set_xlabel("days after injection")
    ax.set_ylabel("MSCs alive / MSCs injected")
    ax.set_title("C2 in full model runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG / "c2_msc_persistence.png")
    plt.close(fig)

    # ---- C3
    rule = tcell_suppression_rule(cfg)
    dose_arms = ["oa", "dose 1e6", "dose 1e7", "dose 1e8"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    eff0 = None
    for arm in dose_arms:
        met_runs = runs[arm]
        t, th1 = series(met_runs, "tcell_th1")
        _, th17 = series(met_runs, "tcell_th17")
        axes[0].plot(t, th1 + th17, color=COLORS.get(arm), label=arm)
        te, supp = series(met_runs, "teff_supp_mean", extra=True)
        axes[1].plot(te, supp, color=COLORS.get(arm), label=arm)
        eff = window(met_runs, "tcell_th1", e0, e1) + window(met_runs, "tcell_th17", e0, e1)
        sup = window(met_runs, "teff_supp_mean", e0, e1, extra=True)
        nmsc = window(met_runs, "msc_alive", inj + 0.1, inj + 0.2)
        if arm == "oa":
            eff0 = eff.mean()
        add(
            "C3",
            f"Th1+Th17 count, mean days {e0:g}-{e1:g}",
            arm,
            eff.mean(),
            "falls with dose",
            "",
            "cells",
        )
        add(
            "C3",
            f"effector suppression factor (1 = none), mean days {e0:g}-{e1:g}",
            arm,
            sup.mean(),
            "falls with dose",
            "",
        )
        add("C3", "MSCs in patch just after injection", arm, nmsc.mean(), "", "", "cells")
    effs = [
        np.mean(window(runs[a], "tcell_th1", e0, e1) + window(runs[a], "tcell_th17", e0, e1))
        for a in dose_arms
    ]
    sups = [np.mean(window(runs[a], "teff_supp_mean", e0, e1, extra=True)) for a in dose_arms]
    mono_eff = all(b <= a for a, b in itertools.pairwise(effs))
    mono_sup = all(b <= a for a, b in itertools.pairwise(sups))
    red = 1 - effs[-1] / max(eff0, 1e-9)
    add(
        "C3",
        "Th1+Th17 monotone non-increasing with dose (oa, 1e6, 1e7, 1e8)",
        "dose arms",
        float(mono_eff),
        "1",
        "met" if mono_eff else "not met",
    )
    add(
        "C3",
        "suppression factor monotone with dose",
        "dose arms",
        float(mono_sup),
        "1",
        "met" if mono_sup else "not met",
    )
    add(
        "C3",
        "Th1+Th17 reduction at 1e8 vs oa",
        "dose 1e8",
        red,
        "0.60-0.98 (MLR)",
        "met" if 0.6 <= red <= 0.98 else ("partly" if red > 0.1 else "not met"),
    )
    r_0 = rule.loc[rule.mediator_x_K == 0.0, "divisions_per_cell_day"].iloc[0]
    for mult in (0.3, 1.0, 3.0):
        r_m = rule.loc[rule.mediator_x_K == mult, "divisions_per_cell_day"].iloc[0]
        cut = 1 - r_m / r_0
        add(
            "C3",
            f"rule: effector division cut at PGE2 = KYN = TGF-β = {mult:g} x own K",
            "tcell rule",
            cut,
            "0.60-0.98 (MLR)",
            "met" if 0.6 <= cut <= 0.98 else "outside",
        )
    axes[0].set_title("effector T cells (Th1 + Th17)")
    axes[0].set_xlabel("day")
    axes[0].set_ylabel("cells in patch")
    axes[0].legend(fontsize=7)
    axes[1].set_title("effector suppression factor (log)")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("day")
    axes[1].set_ylabel("mean (1-H(KYN))(1-H(PGE2))(1-H(TGFb))")
    ax = axes[2]
    ax.semilogx(rule.mediator_x_K.replace(0, 0.03), rule.divisions_per_cell_day / r_0, "o-")
    ax.set_xlabel("PGE2 = KYN = TGF-β level / own K (0 plotted at 0.03)")
    ax.set_ylabel("division rate / unsuppressed")
    ax.set_title("rule: T-cell proliferation vs mediators")
    fig.suptitle(f"C3 MSC dose vs effector T cells (oa, MSC at day {inj:g}; {len(seeds)} seed(s))")
    fig.tight_layout()
    fig.savefig(FIG / "c3_tcell_suppression.png")
    plt.close(fig)

    # ---- C4
    c4arms = ["oa", "oa+msc", "oa+msc pge2 KO"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for arm in c4arms:
        for ax, key, ex in (
            (axes[0], "il10_synovium", False),
            (axes[1], "macrophage_m2", False),
            (axes[2], "mac_p_mean", True),
        ):
            t, y = series(runs[arm], key, extra=ex)
            ax.plot(t, y, color=COLORS[arm], label=arm)
    vals = {}
    for key, ex in (
        ("il10_synovium", False),
        ("macrophage_m2", False),
        ("mac_p_mean", True),
        ("pge2_synovium", False),
    ):
        for arm in c4arms:
            v = window(runs[arm], key, e0, e1, extra=ex).mean()
            vals[(key, arm)] = v
            add("C4", f"{key}, mean days {e0:g}-{e1:g}", arm, v, "", "")
    for key in ("il10_synovium", "macrophage_m2"):
        up = vals[(key, "oa+msc")] - vals[(key, "oa")]
        ko = vals[(key, "oa+msc pge2 KO")] - vals[(key, "oa")]
        raised = up > 0.1 * max(abs(vals[(key, "oa")]), 1e-9)
        abolished = raised and ko < 0.25 * up
        add(
            "C4",
            f"{key}: MSC raises it (oa+msc - oa)",
            "oa+msc",
            up,
            "> 0 (clearly)",
            "met" if raised else "not met",
        )
        add(
            "C4",
            f"{key}: PGE2 KO keeps <25% of the rise",
            "pge2 KO",
            ko / up if up else math.nan,
            "< 0.25",
            "met" if abolished else "not met",
        )
    for ax, yl in zip(
        axes,
        ("IL-10 in synovium (ng/mL)", "M2 macrophages (cells)", "mean macrophage polarization p"),
        strict=True,
    ):
        ax.set_xlabel("day")
        ax.set_ylabel(yl)
    axes[0].legend(fontsize=7)
    fig.suptitle("C4 MSCs, macrophage IL-10 and the PGE2 knockout")
    fig.tight_layout()
    fig.savefig(FIG / "c4_il10_pge2.png")
    plt.close(fig)

    # ---- C5 and C6
    def frac(arm, num, den):
        n = sum(window(runs[arm], k, e0, e1) for k in num)
        dd = sum(window(runs[arm], k, e0, e1) for k in den)
        return float(np.mean(n / np.maximum(dd, 1e-9)))

    mac = ["macrophage_m1", "macrophage_m0", "macrophage_m2"]
    tcs = ["tcell_naive", "tcell_th1", "tcell_th17", "tcell_treg"]
    readouts = {
        "M1 fraction of macrophages": (lambda a: frac(a, ["macrophage_m1"], mac), "lower"),
        "M2 fraction of macrophages": (lambda a: frac(a, ["macrophage_m2"], mac), "higher"),
        "Treg fraction of T cells": (lambda a: frac(a, ["tcell_treg"], tcs), "higher"),
        "IL-1β fluid (ng/mL)": (lambda a: window(runs[a], "il1b_fluid", e0, e1).mean(), "lower"),
        "TNF fluid (ng/mL)": (lambda a: window(runs[a], "tnf_fluid", e0, e1).mean(), "lower"),
        "AGG loss at end (1 - AGG)": (lambda a: 1 - runs_end(runs[a], "cartilage_agg"), "lower"),
        "fraction of FLS activated": (lambda a: frac(a, ["fls_activated"], ["fls_total"]), "lower"),
        "lining thickness (µm)": (
            lambda a: window(runs[a], "lining_thickness_um", e0, e1).mean(),
            "lower",
        ),
    }
    for target, a_ref, a_new in (
        ("C5", "oa", "oa+msc"),
        ("C6", "oa+msc", "oa+msc primed"),
        ("C6", "dose 1e6", "dose 1e6 primed"),
    ):
        for label, (fn, want) in readouts.items():
            r, v = fn(a_ref), fn(a_new)
            better = v < r if want == "lower" else v > r
            rel = (v - r) / r if r else math.nan
            clear = abs(rel) >= 0.05 if r else abs(v) > 0.01
            add(
                target,
                f"{label}: {a_new} vs {a_ref} (want {want})",
                f"{a_new} | {a_ref}",
                v,
                f"{want} than {r:.4g}",
                ("met" if clear else "marginal (<5%)") if better else "not met",
                f"rel. change {rel:+.1%}",
            )
    for arm in ("oa+msc", "dose 1e6", "oa+msc primed"):
        for k, (met, _) in enumerate(runs[arm]):
            t = met["time_min"].to_numpy() / 1440.0
            alive = met["msc_alive"].to_numpy()
            lic = met["msc_licensed"].to_numpy() / np.maximum(alive, 1)
            i = np.flatnonzero((t > inj) & (alive > 0) & (lic >= 0.5))
            add(
                "C6",
                "days from injection until half the MSCs are licensed (L > 0.5; empty: never)",
                f"{arm} seed {seeds[k]}",
                float(t[i[0]] - inj) if i.size else math.nan,
                "naive: days, not hours",
                "",
                "days",
            )
    for target, arms_, name in (
        ("C5", ["oa", "oa+msc"], "c5_therapy.png"),
        ("C6", ["oa", "oa+msc", "oa+msc primed", "dose 1e6", "dose 1e6 primed"], "c6_primed.png"),
    ):
        keys = [
            ("macrophage_m1", "M1 macrophages (cells)"),
            ("macrophage_m2", "M2 macrophages (cells)"),
            ("tcell_treg", "Treg (cells)"),
            ("il1b_fluid", "IL-1β fluid (ng/mL)"),
            ("tnf_fluid", "TNF fluid (ng/mL)"),
            ("cartilage_agg", "mean aggrecan AGG (healthy = 1)"),
        ]
        if target == "C6":
            keys[2] = ("msc_licensed", "licensed MSCs (cells)")
        fig, axes = plt.subplots(2, 3, figsize=(12, 6))
        for ax, (key, yl) in zip(axes.ravel(), keys, strict=True):
            for arm in arms_:
                t, y = series(runs[arm], key)
                ax.plot(t, y, color=COLORS[arm], label=arm)
            ax.set_xlabel("day")
            ax.set_ylabel(yl)
            ax.axvline(inj, color="0.6", ls=":", lw=0.8)
        axes[0, 0].legend(fontsize=7)
        title = (
            "C5 MSC therapy in oa (MSCs injected day 1, dotted)"
            if target == "C5"
            else "C6 IFN-γ-primed vs naive MSCs (oa, day 1; 20 MSCs: oa+msc, 2 MSCs: dose 1e6)"
        )
        fig.suptitle(f"{title}; mean of {len(seeds)} seed(s)")
        fig.tight_layout()
        fig.savefig(FIG / name)
        plt.close(fig)

    # ---- C7
    levels = [0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5]
    dr = chondrocyte_dose_response(cfg, levels)
    mono = bool(np.all(np.diff(dr.c_mean) >= -1e-6)) and dr.c_mean.iloc[-1] > dr.c_mean.iloc[0]
    for _, r in dr.iterrows():
        add(
            "C7",
            f"rule: chondrocyte c after 3 d at IL-1β {r.il1b_ng_ml:g} ng/mL",
            "chondrocyte rule",
            r.c_mean,
            "rises with IL-1β",
            "",
            f"PROT {r.prot_molec_cell_s:.3g} molec/cell/s",
        )
    add(
        "C7",
        "rule: c monotone in IL-1β dose",
        "chondrocyte rule",
        float(mono),
        "1",
        "met" if mono else "not met",
    )
    long = load(cache, "oa", [seeds[0]], args.long_days)[0][0]
    t = long["time_min"].to_numpy() / 1440.0
    agg, col = long["cartilage_agg"].to_numpy(), long["cartilage_col2"].to_numpy()

    def first(y, thr):
        i = np.flatnonzero(y <= thr)
        return float(t[i[0]]) if i.size else math.nan

    t_agg10, t_col10 = first(agg, 0.9), first(col, 0.9)
    _t_agg50, t_col01 = first(agg, 0.5), first(col, 0.99)
    add(
        "C7", f"oa {args.long_days:g} d: day AGG falls below 0.9", "oa long", t_agg10, "", "", "day"
    )
    add(
        "C7",
        f"oa {args.long_days:g} d: day COL2 falls below 0.99",
        "oa long",
        t_col01,
        "",
        "",
        "day",
    )
    add(
        "C7",
        f"oa {args.long_days:g} d: day COL2 falls below 0.9",
        "oa long",
        t_col10,
        "",
        "",
        "day",
    )
    add(
        "C7",
        f"oa {args.long_days:g} d: AGG, COL2 at end",
        "oa long",
        float(agg[-1]),
        f"COL2 = {col[-1]:.3f}",
        "",
        "",
    )
    precedes = (not math.isnan(t_agg10)) and (math.isnan(t_col01) or t_agg10 < t_col01)
    add(
        "C7",
        "aggrecan loss precedes collagen loss",
        "oa long",
        float(precedes),
        "1",
        ("met" if not math.isnan(t_col01) else "partly (no collagen loss yet)")
        if precedes
        else "not met",
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ax = axes[0]
    x = dr.il1b_ng_ml.replace(0, 1e-4)
    ax.semilogx(x, dr.c_mean, "o-", label="mean catabolic drive c")
    ax.semilogx(x, dr.catabolic_fraction, "s--", label="fraction catabolic (c > 0.5)")
    ax.semilogx(x, dr.agg_synthesis_drive / 2, "^:", label="aggrecan synthesis drive / 2")
    ax.axvspan(0.001, 0.002, color="0.85", label="OA synovial fluid IL-1β")
    ax.set_xlabel("clamped IL-1β (ng/mL; 0 plotted at 1e-4)")
    ax.set_ylabel("after 3 days (dimensionless)")
    ax.set_title("chondrocyte rule, dose response (mechanical drive of oa)")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(t, agg, label="aggrecan (AGG)")
    ax.plot(t, col, label="collagen II (COL2)")
    ax.plot(
        t,
        long["chondrocyte_catabolic"] / np.maximum(long["chondrocyte_alive"], 1),
        label="fraction of chondrocytes catabolic",
        lw=0.8,
    )
    ax.set_xlabel("day")
    ax.set_ylabel("cartilage mean (healthy = 1)")
    ax.set_title(f"oa, no therapy, {args.long_days:g} days (seed {seeds[0]})")
    ax.legend(fontsize=7)
    fig.suptitle("C7 IL-1β-driven catabolism; aggrecan loss before collagen loss")
    fig.tight_layout()
    fig.savefig(FIG / "c7_catabolism_matrix.png")
    plt.close(fig)

    table = pd.DataFrame(res)
    table.to_csv(FIG / "validation_results.csv", index=False, float_format="%.5g")
    return table


def runs_end(runs, key: str) -> float:
    return float(np.mean([met[key].iloc[-1] for met, _ in runs]))


# ---------------------------------------------------------------------------------- parameters.md
UNIT_WORDS = [
    "µm²/min",
    "µm/min",
    "1/min",
    "µm",
    "mL",
    "min",
    "days",
    "day",
    "cells per knee",
    "voxels",
    "molecules/cell/s",
    "ng/mL",
    "µM",
    "kDa",
    "dimensionless",
    "fraction",
]
UNITS = {  # explicit units by dotted key (fnmatch patterns), before any guess from comments
    "biology.fields.*.D_*": "µm²/min",
    "biology.fields.*.decay": "1/min",
    "biology.fields.*.mw_kda": "kDa",
    "biology.hill_n": "1",
    "biology.*.secretion.*": "molecules/cell/s",
    "biology.*.secretion.*.*": "molecules/cell/s",
    "biology.*.uptake.*": "1/min",
    "biology.*.speed_um_min": "µm/min",
    "biology.*.chemotaxis": "1",
    "biology.*_rate": "1/min",
    "biology.*.*_rate": "1/min",
    "biology.matrix.*_synthesis": "1/min",
    "biology.matrix.*_degradation": "1/min per ng/mL PROT",
    "biology.matrix.agg_threshold": "1 (AGG)",
    "biology.msc.half_life_days": "days",
    "biology.msc.persistent_fraction": "1",
    "biology.msc.pge2_base": "1",
    "biology.fls.basal_activity": "1",
    "biology.fls.basal_proliferation": "1",
    "biology.fls.capacity": "FLS/voxel (synovium)",
    "biology.macrophage.capacity": "macrophages/voxel (synovium)",
    "biology.fls.msc_damping": "1",
    "biology.fls.msc_contact_um": "µm",
    "biology.chondrocyte.density": "cells/voxel",
    "biology.chondrocyte.tgfb_recovery": "1/min",
    "biology.fluid_clearance": "1/min",
    "scenario.*_density": "fraction of voxels",
    "scenario.*_recruit_rate": "1/min per vessel",
    "scenario.inflammatory_drive": "1",
    "scenario.mechanical_drive": "1/min",
    "scenario.tcell_subsets": "fractions",
    "scenario.mac_p0": "1",
    "scenario.fls_a0": "1",
    "scenario.chondrocyte_c0": "1",
    "scenario.agg0": "1",
    "scenario.col20": "1",
    "therapy.dose": "cells per knee",
    "therapy.day": "day",
    "therapy.min_cells": "cells",
    "therapy.sf_volume_ml": "mL",
    "therapy.prelicensed": "bool",
    "therapy.knockouts": "list",
    "lattice.*_um": "µm",
    "lattice.shape": "voxels",
    "lattice.vessel_density": "fraction of sublining voxels",
    "sim.days": "days",
    "sim.dt_min": "min",
    "output.*_min": "min",
    "seed": "-",
    "perturb.deplete_day": "day",
    "perturb.deplete_macrophages": "bool",
}
TAG_RE = re.compile(r"\[(S|R|D|calibrated|assumed)(?=[\]:;, ])")


def yaml_comments(path: Path) -> dict[str, str]:
    """Dotted key -> trailing comment of its line (block keys and one-line flow mappings)."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(\s*)([A-Za-z_][\w]*)\s*:(.*)$", line)
        if not m:
            continue
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        comment = ""
        if "#" in rest:
            comment = rest.split("#", 1)[1].strip()
        out[dotted] = comment
        if rest.split("#", 1)[0].strip() == "":
            stack.append((indent, key))
    return out


def _unit(dotted: str, comment: str, parent_comment: str) -> str:
    import fnmatch

    for pat, u in UNITS.items():
        if fnmatch.fnmatch(dotted, pat):
            return u
    for text in (comment, parent_comment):
        for w in UNIT_WORDS:
            if text.startswith(w):
                return w
    return "-"


def _cell(text: str) -> str:
    """Escape a comment for a Markdown table cell."""
    return text.replace("|", "\\|")


def _tag_of(comment: str) -> str:
    tags = TAG_RE.findall(comment)
    return ", ".join(dict.fromkeys(f"[{t}]" if len(t) == 1 else t for t in tags)) or "-"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def parameters_md() -> str:
    import yaml

    conf = ROOT / "conf"
    sections: list[tuple[str, Path, str]] = [
        ("Top level, sim, perturb (conf/config.yaml)", conf / "config.yaml", ""),
        ("Lattice: 2d (conf/lattice/2d.yaml)", conf / "lattice" / "2d.yaml", "lattice"),
        ("Lattice: 3d (conf/lattice/3d.yaml)", conf / "lattice" / "3d.yaml", "lattice"),
        ("Output (conf/output/default.yaml)", conf / "output" / "default.yaml", "output"),
        ("Therapy: msc (conf/therapy/msc.yaml)", conf / "therapy" / "msc.yaml", "therapy"),
        ("Therapy: none (conf/therapy/none.yaml)", conf / "therapy" / "none.yaml", "therapy"),
    ]
    lines = [
        "# Parameters",
        "",
        "Generated from `conf/**/*.yaml` by `python scripts/validate.py --parameters`; do not edit",
        "by hand (edit the YAML and its comments, then regenerate). *Source / note* is the YAML",
        "comment on the line; *tag* is the provenance tag found in it: **[S]** read in the named",
        "source, **[R]** recalled/unverified, **[D]** derived, **calibrated** (set to meet the",
        "targets of MODEL.md section 7, see docs/validation.md), **assumed** (no source; a",
        "plausible value). A dash means the line carries no tag: the value is then covered by the",
        "section comment above it or is a pure setting. Units come from the schema and comments.",
        "",
        _git_line(),
        "",
        "## Secretion unit conversion",
        "",
        "Cells secrete in molecules/cell/s (the unit of MODEL.md section 3b). `JointModel."
        "_secretion_conversion` (abm/model.py) turns a rate r into a source in the cell's own",
        "voxel (volume V = dx³ = 1e-9 mL at dx = 10 µm; a 2D lattice is a slab one voxel thick):",
        "",
        "- ng/mL fields:",
        "  `S [ng/mL/min] = r · 60 / N_A · MW[kDa] · 1e3 [g/mol] · 1e9 [ng/g] / V[mL]`",
        "  = r · 60 · MW · 1e12 / (6.022e23 · V).",
        "  At dx = 10 µm: **S = r · 0.0996 · MW[kDa]** ng/mL/min,",
        "  e.g. 1 molecule/cell/s of IL-1β (17 kDa) = 1.69 ng/mL/min in its voxel.",
        "- KYN (µM): `S [µM/min] = r · 60 / N_A / (V[mL] · 1e-3 [L/mL]) · 1e6`",
        "  = **r · 9.96e-5** µM/min at dx = 10 µm (MW is not used).",
        "",
        "Secretion is written as a source (conc/min) and uptake as a first-order rate (1/min) into",
        "the voxel of the cell (scatter-add), then the solver spreads it (docs/ODD.md, 7.10).",
        "",
    ]
    # biology: one table per section
    bio_path = conf / "biology" / "default.yaml"
    bio = yaml.safe_load(bio_path.read_text(encoding="utf-8"))
    com = {f"biology.{k}": v for k, v in yaml_comments(bio_path).items()}
    lines += ["## Biology (conf/biology/default.yaml)", ""]
    lines += [
        "### Diffusing fields",
        "",
        "| field | D fluid (µm²/min) | D synovium (µm²/min) | D cartilage (µm²/min) "
        "| decay (1/min) | K (Hill) | MW (kDa) | units | source / note | tag |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f, p in bio["fields"].items():
        c = com.get(f"biology.fields.{f}", "")
        lines.append(
            f"| {f} | {_fmt(p['D_fluid'])} | {_fmt(p['D_synovium'])} "
            f"| {_fmt(p['D_cartilage'])} | {_fmt(p['decay'])} | {_fmt(p['K'])} {p['units']} "
            f"| {_fmt(p['mw_kda'])} | {p['units']} | {_cell(c)} | {_tag_of(c)} |"
        )
    lines += [""]
    lines += _table(
        "Shared biology", {k: v for k, v in bio.items() if not isinstance(v, dict)}, "biology", com
    )
    for sec, sub in bio.items():
        if isinstance(sub, dict) and sec != "fields":
            title = {
                "fls": "Fibroblast-like synoviocytes (fls)",
                "tcell": "T cells (tcell)",
                "msc": "MSCs (msc)",
                "matrix": "Matrix (matrix)",
                "macrophage": "Macrophages (macrophage)",
                "chondrocyte": "Chondrocytes (chondrocyte)",
            }.get(sec, sec)
            lines += _table(title, sub, f"biology.{sec}", com)
    # scenarios side by side
    sc_files = sorted((conf / "scenario").glob("*.yaml"))
    scs = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sc_files}
    coms = {p.stem: yaml_comments(p) for p in sc_files}
    names = list(scs)
    lines += [
        "## Scenarios (conf/scenario/*.yaml)",
        "",
        "| name | unit | "
        + " | ".join(names)
        + " | source / note (first file with a comment) | tag |",
        "|---" * (len(names) + 4) + "|",
    ]
    for key in scs[names[0]]:
        if key == "name":
            continue
        c = next((coms[n].get(key, "") for n in ("oa", *names) if coms[n].get(key)), "")
        tags = (
            ", ".join(
                dict.fromkeys(t for n in names if (t := _tag_of(coms[n].get(key, ""))) != "-")
            )
            or "-"
        )
        vals = " | ".join(_fmt(scs[n].get(key)) for n in names)
        lines.append(
            f"| {key} | {_unit('scenario.' + key, c, '')} | {vals} | {_cell(c)} | {tags} |"
        )
    lines += [""]
    for title, path, prefix in sections:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cm = yaml_comments(path)
        if prefix:
            cm = {f"{prefix}.{k}": v for k, v in cm.items()}
        data = {k: v for k, v in data.items() if k != "defaults"}
        lines += _table(title, data, prefix, cm)
    return "\n".join(lines) + "\n"


def _table(title: str, data: dict, prefix: str, com: dict[str, str]) -> list[str]:
    rows = []

    def walk(d: dict, path: str, parent_comment: str) -> None:
        for k, v in d.items():
            dotted = f"{path}.{k}" if path else k
            c = com.get(dotted, "")
            if isinstance(v, dict):
                if (
                    all(not isinstance(x, dict) for x in v.values())
                    and len(v) <= 3
                    and dotted.count(".") >= 3
                ):
                    rows.append(
                        (dotted, _fmt(v), _unit(dotted, c, parent_comment), c or parent_comment)
                    )
                else:
                    walk(v, dotted, c or parent_comment)
            else:
                rows.append(
                    (
                        dotted,
                        _fmt(v),
                        _unit(dotted, c, parent_comment),
                        c or (f"(block) {parent_comment}" if parent_comment else ""),
                    )
                )

    walk(data, prefix, "")
    out = [
        f"### {title}" if prefix.startswith("biology") else f"## {title}",
        "",
        "| name | value | unit | source / note | tag |",
        "|---|---|---|---|---|",
    ]
    for dotted, v, u, c in rows:
        out.append(f"| `{dotted}` | {_cell(v)} | {u} | {_cell(c)} | {_tag_of(c)} |")
    return [*out, ""]


def _git_line() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "conf"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "Generated from the working tree."
    return f"Generated from commit {rev}" + (" with uncommitted conf/ changes." if dirty else ".")


# ---------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parameters", action="store_true", help="write docs/parameters.md and exit")
    ap.add_argument("--replot", action="store_true", help="only analyse the cached runs")
    ap.add_argument("--days", type=float, default=14.0, help="days of the short arms")
    ap.add_argument("--long-days", type=float, default=40.0, help="days of the long oa run (C7)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])  # long run: first seed
    ap.add_argument("--shape", type=int, nargs=2, default=[193, 64])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default=str(ROOT / "build" / "validate"))
    ap.add_argument("--only", nargs="+", default=None, help="run only these arms ('oa long')")
    args = ap.parse_args()
    if args.parameters:
        out = ROOT / "docs" / "parameters.md"
        out.write_text(parameters_md(), encoding="utf-8")
        print(f"wrote {out}")
        return
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    FIG.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not args.replot:
        only = set(args.only or [*ARMS, "oa long"])
        jobs = [("oa", ARMS["oa"], args.seeds[0], args.long_days, args.shape, str(cache))]
        jobs = jobs if "oa long" in only else []
        jobs += [
            (a, ov, s, args.days, args.shape, str(cache))
            for a, ov in ARMS.items()
            for s in args.seeds
            if a in only
        ]
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            for name, seed, sec in ex.map(run_arm, jobs):
                print(f"{name:16s} seed {seed}: {sec:6.0f} s", flush=True)
    table = analyse(args, cache)
    with pd.option_context(
        "display.width", 250, "display.max_rows", 500, "display.max_colwidth", 80
    ):
        print(table.to_string(index=False))
    print(f"total {time.time() - t0:.0f} s; results in {FIG / 'validation_results.csv'}")


if __name__ == "__main__":
    main()
