"""C3, C4, C6 and C7 on biology v2: the mechanism targets, checked on the spin-up protocol
(report stage: sweep folders and the rule harness -> docs/figures/v2/mechanisms.csv + .png).

    python scripts/mechanism_checks.py --course multirun/therapy_course \\
        --pge2-ko multirun/pge2_ko --primed multirun/primed --out docs/figures/v2

Every joint comparison is paired by seed: the arms of one seed branch from the same cached
60-day untreated spin-up (docs/protocol.md), so a seed's difference carries its noise, and the
mean difference gets a 95% Student-t interval over seeds. The rule-level rows step one cell
type alone with clamped fields (abm.validation.rules, the same rule code and parameters).

- C3 (Di Nicola 2002: MSCs cut effector T-cell proliferation by 60-98% in mixed lymphocyte
  reactions, more with more MSCs): the T-cell rule's division cut at PGE2 = KYN = TGF-β =
  0.3, 1, 3 x their K; in the joint, Th1 + Th17 per dose against the same seed untreated,
  and the MSC : T-cell ratio the joint reaches (an MLR uses 1:1 to 1:10).
- C4 (Nemeth 2009: MSCs raise macrophage IL-10 through PGE2; without PGE2 the rise is gone):
  1e8 MSCs and 1e8 PGE2-knockout MSCs, each against the same seed untreated; verdict met
  when the MSC rise is resolved and the knockout keeps < 25% of it.
- C6 (Maumus 2016: IFN-γ-primed MSCs protect more than naive ones): primed minus naive at
  the same dose (1e7, 1e8), same seed.
- C7 (Fan 2005: IL-1β drives chondrocyte catabolism dose-dependently; Karsdal 2008:
  aggrecan is lost before collagen): the chondrocyte rule's catabolic drive against clamped
  IL-1β; in the untreated joint over 180 days, aggrecan and collagen II loss per seed.
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
from therapy_figures import BENEFIT, complete, daily, paired_rows, t_interval

DAYS = (2, 7, 30, 90)
MLR = (0.60, 0.98)  # C3: fraction of effector proliferation suppressed in MLRs (Di Nicola 2002)
KO_KEEPS = 0.25  # C4: the knockout keeps less than this share of the MSC-induced rise
C4_METRICS = ["il10_synovium", "il10_fluid", "macrophage_m2", "macrophage_p_mean"]


def by_seed(sweep: Path, **match: float) -> dict[int, pd.DataFrame]:
    """Daily tables of the complete jobs of ``sweep`` whose columns equal ``match``, by seed
    (a derived column ``tcell_effector`` = Th1 + Th17 added)."""
    jobs = complete(sweep)
    for key, value in match.items():
        if key in jobs:
            jobs = jobs[jobs[key].astype(float) == value]
    out = {}
    for _, r in jobs.iterrows():
        d = daily(Path(r["path"]))
        d["tcell_effector"] = d["tcell_th1"] + d["tcell_th17"]
        out[int(r["seed"])] = d
    return out


def agent_weight(sweep: Path, dose: float) -> float:
    """MSCs one agent stands for at ``dose`` (abm.config.msc_dose of the sweep's job config)."""
    from omegaconf import OmegaConf

    from abm.config import msc_dose

    jobs = complete(sweep)
    r = jobs[jobs["therapy.dose"].astype(float) == dose].iloc[0]
    n, N = msc_dose(OmegaConf.load(Path(r["path"]) / ".hydra" / "config.yaml"))
    return N / n


def row(target: str, check: str, arm: str, day: float | str, value: float, lo: float = np.nan,
        hi: float = np.nan, n: int = 0, expected: str = "", verdict: str = "") -> dict:  # fmt: skip
    return {"target": target, "check": check, "arm": arm, "day": day, "value": value,
            "ci95_lo": lo, "ci95_hi": hi, "n_seeds": n, "expected": expected,
            "verdict": verdict}  # fmt: skip


def resolved(lo: float, hi: float) -> bool:
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))


# ------------------------------------------------------------------------------------- C3
def c3(course: Path) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    import abm
    from abm.validation import rules

    cfg = abm.compose(["scenario=oa", "therapy=msc"])
    rule = rules.tcell_suppression(cfg, multiples=(0.0, 0.3, 1.0, 3.0))
    rate = rule.set_index("mediator_x_K")["divisions_per_cell_day"]
    rows = []
    for mult in (0.3, 1.0, 3.0):
        cut = 1 - rate[mult] / rate[0.0]
        rows.append(row("C3", f"rule: effector division cut at PGE2 = KYN = TGF-β = {mult:g} x K",
                        "tcell rule", "", cut, expected=f"{MLR[0]:g}-{MLR[1]:g} (MLR)",
                        verdict="in range" if MLR[0] <= cut <= MLR[1] else "outside"))  # fmt: skip
    base = by_seed(course, **{"therapy.dose": 0.0})
    joint = []
    for dose in (1e6, 1e7, 1e8):
        runs = by_seed(course, **{"therapy.dose": dose})
        for day in (7, 30, 90):
            seeds = [s for s in sorted(runs) if s in base and day in runs[s].index]
            diffs = np.array([runs[s].loc[day, "tcell_effector"]
                              / base[s].loc[day, "tcell_effector"] - 1 for s in seeds])  # fmt: skip
            mean, lo, hi = t_interval(diffs)
            joint.append({"dose": dose, "day": day, "rel_change": mean, "lo": lo, "hi": hi,
                          "n": diffs.size,
                          "untreated_effectors": np.mean([base[s].loc[day, "tcell_effector"]
                                                          for s in seeds])})  # fmt: skip
        w = agent_weight(course, dose)
        ratio = np.mean([w * runs[s].loc[2, "msc_alive"] / (runs[s].loc[2, "tcell_effector"]
                         + runs[s].loc[2, "tcell_naive"] + runs[s].loc[2, "tcell_treg"])
                         for s in runs])  # fmt: skip
        rows.append(row("C3", "MSCs (cells the agents stand for) : T cells in the patch",
                        f"{dose:.0e} MSCs", 2, float(ratio), n=len(runs),
                        expected="MLR 1:1-1:10 (0.1-1)"))  # fmt: skip
    j = pd.DataFrame(joint)
    for r in j.itertuples():
        rows.append(row("C3", "Th1 + Th17, relative change vs untreated (same seed)",
                        f"{r.dose:.0e} MSCs", r.day, r.rel_change, r.lo, r.hi, r.n,
                        "falls, more with dose",
                        "reduced" if r.hi < 0 else
                        ("raised" if r.lo > 0 else "not resolved")))  # fmt: skip
    for day in (7, 30):
        means = j[j.day == day].sort_values("dose")["rel_change"].to_numpy()
        mono = bool(np.all(np.diff(means) <= 0))
        rows.append(row("C3", "effector change monotone in dose (1e6, 1e7, 1e8; seed means)",
                        "dose arms", day, float(mono), expected="1",
                        verdict="met" if mono else "not met"))  # fmt: skip
    return rows, rule, j


# ------------------------------------------------------------------------------------- C4
def c4(course: Path, ko: Path) -> tuple[list[dict], pd.DataFrame]:
    base = by_seed(course, **{"therapy.dose": 0.0})
    msc = by_seed(course, **{"therapy.dose": 1e8})
    kos = by_seed(ko)
    rows = paired_rows(base, msc, DAYS, C4_METRICS, arm="1e8 MSCs")
    rows += paired_rows(base, kos, DAYS, C4_METRICS, arm="1e8 PGE2-KO MSCs")
    table = pd.DataFrame(rows)
    rows = []
    for r in table.itertuples():
        rows.append(row("C4", f"{r.metric}: treated minus untreated", r.arm, r.day,
                        r.treated_minus_untreated, r.ci95_lo, r.ci95_hi, r.n_seeds))  # fmt: skip
    for day in DAYS:
        for metric in C4_METRICS:
            sel = table[(table.day == day) & (table.metric == metric)].set_index("arm")
            if len(sel) < 2:
                continue
            up = sel.loc["1e8 MSCs"]
            kept = (
                sel.loc["1e8 PGE2-KO MSCs", "treated_minus_untreated"] / up.treated_minus_untreated
            )
            # M2 count and IL-10 must rise; polarisation p must fall (toward M2)
            sign = -1.0 if metric == "macrophage_p_mean" else 1.0
            rise = resolved(up.ci95_lo, up.ci95_hi) and sign * up.treated_minus_untreated > 0
            verdict = ("met" if rise and kept < KO_KEEPS else
                       "not met (MSC change not resolved)" if not rise else
                       "not met (knockout keeps the change)")  # fmt: skip
            rows.append(row("C4", f"{metric}: share of the MSC change the PGE2 knockout keeps",
                            "KO / MSC", day, float(kept), n=int(up.n_seeds),
                            expected=f"< {KO_KEEPS:g} with a resolved MSC change",
                            verdict=verdict))  # fmt: skip
    return rows, table


# ------------------------------------------------------------------------------------- C6
def c6(course: Path, primed: Path) -> tuple[list[dict], pd.DataFrame]:
    rows, tables = [], []
    for dose in (1e7, 1e8):
        naive = by_seed(course, **{"therapy.dose": dose})
        pr = by_seed(primed, **{"therapy.dose": dose})
        t = pd.DataFrame(paired_rows(naive, pr, DAYS, BENEFIT, dose=dose))
        tables.append(t)
        for r in t.itertuples():
            sign = 1.0 if r.metric == "cartilage_agg" else -1.0  # lower is better, but matrix
            better = resolved(r.ci95_lo, r.ci95_hi) and sign * r.treated_minus_untreated > 0
            worse = resolved(r.ci95_lo, r.ci95_hi) and sign * r.treated_minus_untreated < 0
            rows.append(row("C6", f"{r.metric}: primed minus naive", f"{dose:.0e} MSCs", r.day,
                            r.treated_minus_untreated, r.ci95_lo, r.ci95_hi, r.n_seeds,
                            "primed better", "primed better" if better else
                            ("primed worse" if worse else "not resolved")))  # fmt: skip
    return rows, pd.concat(tables, ignore_index=True)


# ------------------------------------------------------------------------------------- C7
def c7(course: Path) -> tuple[list[dict], pd.DataFrame, dict[int, pd.DataFrame]]:
    import abm
    from abm.validation import rules

    cfg = abm.compose(["scenario=oa", "therapy=msc"])
    dr = rules.chondrocyte_dose_response(cfg)
    c = dr.c_mean.to_numpy()
    mono = bool(np.all(np.diff(c) >= -1e-9) and c[-1] > c[0])
    rows = [row("C7", "rule: catabolic drive c after 3 d, monotone in clamped IL-1β",
                "chondrocyte rule", "", float(mono), expected="1",
                verdict="met" if mono else "not met")]  # fmt: skip
    base = by_seed(course, **{"therapy.dose": 0.0})
    last = min(int(d.index.max()) for d in base.values())
    agg = np.array([1 - d.loc[last, "cartilage_agg"] / d.loc[1, "cartilage_agg"]
                    for d in base.values()])  # fmt: skip
    col = np.array([1 - d.loc[last, "cartilage_col2"] / d.loc[1, "cartilage_col2"]
                    for d in base.values()])  # fmt: skip
    for name, x in (("aggrecan", agg), ("collagen II", col)):
        m, lo, hi = t_interval(x)
        rows.append(row("C7", f"untreated: {name} lost, days 1-{last}", "untreated", last, m, lo,
                        hi, x.size, "aggrecan first (Karsdal 2008)"))  # fmt: skip
    m, lo, hi = t_interval(agg - col)
    rows.append(row("C7", "aggrecan loss minus collagen II loss (same seed)", "untreated", last, m,
                    lo, hi, agg.size, "> 0", "met" if lo > 0 else "not met"))  # fmt: skip
    return rows, dr, base


def relative_errorbar(ax: plt.Axes, t: pd.DataFrame, color: str, label: str) -> None:
    """Paired differences of ``t`` (paired_rows) against day, in % of the reference's mean,
    with their 95% intervals."""
    ref = t.untreated_mean.abs()
    rel = 100 * t.treated_minus_untreated / ref
    lo, hi = 100 * t.ci95_lo / ref, 100 * t.ci95_hi / ref
    ax.errorbar(t.day, rel, yerr=[rel - lo, hi - rel], marker="o", capsize=3, color=color,
                label=label)  # fmt: skip


def figure(c3r: pd.DataFrame, c3j: pd.DataFrame, c4t: pd.DataFrame, c6t: pd.DataFrame,
           dr: pd.DataFrame, base: dict[int, pd.DataFrame], path: Path) -> None:  # fmt: skip
    fig, ax = plt.subplots(2, 3, figsize=(16, 9))
    a = ax[0, 0]
    a.semilogx(c3r.mediator_x_K.replace(0, 0.03), c3r.divisions_per_cell_day
               / c3r.divisions_per_cell_day.iloc[0], "o-")  # fmt: skip
    a.axhspan(1 - MLR[1], 1 - MLR[0], color="0.85", label="MLR: 60-98% suppressed")
    a.set_xlabel("PGE2 = KYN = TGF-β / own K (0 at 0.03)")
    a.set_ylabel("effector division rate / unsuppressed")
    a.set_title("C3 rule: T-cell proliferation vs MSC mediators")
    a.legend(fontsize=8)
    a = ax[0, 1]
    for day, color in ((7, "tab:blue"), (30, "tab:orange"), (90, "tab:red")):
        t = c3j[c3j.day == day].sort_values("dose")
        a.errorbar(t.dose, 100 * t.rel_change, yerr=[100 * (t.rel_change - t.lo),
                   100 * (t.hi - t.rel_change)], marker="o", capsize=3, color=color,
                   label=f"day {day}")  # fmt: skip
    a.axhline(0, color="grey", lw=0.5)
    a.axhspan(-100 * MLR[1], -100 * MLR[0], color="0.9", label="MLR range")
    a.set_xscale("log")
    a.set_xlabel("MSC dose per knee")
    a.set_ylabel("Th1 + Th17 change vs same seed untreated (%)")
    a.set_title("C3 in the joint (mean, 95% CI)")
    a.legend(fontsize=8)
    a = ax[0, 2]
    for arm, color in (("1e8 MSCs", "tab:green"), ("1e8 PGE2-KO MSCs", "tab:purple")):
        relative_errorbar(a, c4t[(c4t.arm == arm) & (c4t.metric == "il10_synovium")], color, arm)
    a.axhline(0, color="grey", lw=0.5)
    a.set_xscale("log")
    a.set_xlabel("day")
    a.set_ylabel("synovial IL-10 vs same seed untreated (%)")
    a.set_title("C4 IL-10 with and without MSC PGE2")
    a.legend(fontsize=8)
    a = ax[1, 0]
    for (dose, metric), color in (((1e7, "tnf_fluid"), "tab:blue"), ((1e8, "tnf_fluid"), "tab:red"),
                                  ((1e8, "il6_fluid"), "tab:orange"),
                                  ((1e8, "synovitis_score"), "tab:green"),
                                  ((1e8, "pge2_fluid"), "tab:brown")):  # fmt: skip
        relative_errorbar(a, c6t[(c6t.dose == dose) & (c6t.metric == metric)], color,
                          f"{metric}, {dose:.0e}")  # fmt: skip
    a.axhline(0, color="grey", lw=0.5)
    a.set_xscale("log")
    a.set_xlabel("day")
    a.set_ylabel("primed minus naive, % of naive")
    a.set_title("C6 IFN-γ-primed vs naive MSCs (same seed)")
    a.legend(fontsize=7)
    a = ax[1, 1]
    a.semilogx(dr.il1b_ng_ml.replace(0, 1e-4), dr.c_mean, "o-", label="catabolic drive c")
    a.semilogx(dr.il1b_ng_ml.replace(0, 1e-4), dr.agg_synthesis_drive / 2, "^:",
               label="aggrecan synthesis drive / 2")  # fmt: skip
    a.axvline(0.0005, color="grey", ls=":", label="model OA SF IL-1β (0.5 pg/mL)")
    a.set_xlabel("clamped IL-1β (ng/mL; 0 at 1e-4)")
    a.set_title("C7 rule: chondrocyte response after 3 days")
    a.legend(fontsize=8)
    a = ax[1, 2]
    for s, d in sorted(base.items()):
        a.plot(d.index, 100 * (1 - d.cartilage_agg / d.cartilage_agg.loc[1]), color="tab:blue",
               lw=0.8, label="aggrecan" if s == min(base) else None)  # fmt: skip
        a.plot(d.index, 100 * (1 - d.cartilage_col2 / d.cartilage_col2.loc[1]), color="tab:red",
               lw=0.8, label="collagen II" if s == min(base) else None)  # fmt: skip
    a.set_xlabel("day after spin-up")
    a.set_ylabel("% lost since day 1 (untreated; one line a seed)")
    a.set_title("C7 matrix loss in the untreated joint")
    a.legend(fontsize=8)
    fig.suptitle("Mechanism targets on biology v2 (joint arms paired by seed, 95% t-intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--course", type=Path, required=True, help="therapy_course sweep")
    ap.add_argument("--pge2-ko", type=Path, required=True, help="1e8 PGE2-knockout sweep")
    ap.add_argument("--primed", type=Path, required=True, help="primed 1e7/1e8 sweep")
    ap.add_argument("--out", type=Path, default=Path("docs/figures/v2"))
    a = ap.parse_args(argv)
    r3, rule, joint = c3(a.course)
    r4, t4 = c4(a.course, a.pge2_ko)
    r6, t6 = c6(a.course, a.primed)
    r7, dr, base = c7(a.course)
    table = pd.DataFrame(r3 + r4 + r6 + r7)
    a.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(a.out / "mechanisms.csv", index=False)
    figure(rule, joint, t4, t6, dr, base, a.out / "mechanisms.png")
    with pd.option_context("display.width", 250, "display.max_rows", 400,
                           "display.max_colwidth", 70):  # fmt: skip
        print(table.round(4).to_string(index=False))
    print(f"wrote {a.out / 'mechanisms.csv'}, mechanisms.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
