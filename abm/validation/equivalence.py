"""Time-step equivalence: is a long-run setting (e.g. ``sim.dt_min=10``) statistically the same
model as the reference ``sim.dt_min=2``? (validation stage of the data flow)

For each seed, one reference run and one candidate run of the same scenario (overrides alike
but for the candidate's own) are stepped in worker processes to the last day; each main readout
is averaged over the simulated day before each checkpoint day. Per readout and day, the
Vargha-Delaney A of candidate vs reference over the seeds measures the effect size (A = 0.5: the
same; |A - 0.5| < 0.14, i.e. A in (0.36, 0.64), counts as equivalent: the "negligible"/"small"
boundary of Vargha & Delaney 2000). Results: a CSV, a markdown table, a figure.

    python -m abm.validation.equivalence --seeds 8 --days 7 28 90 \\
        --candidate sim.dt_min=10 --candidate sim.dt_min=15
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from abm.units import MIN_PER_DAY

READOUTS = {  # name -> (label, how it is computed from a metrics frame)
    "il1b_fluid": ("IL-1β fluid (ng/mL)", None),
    "tnf_fluid": ("TNF fluid (ng/mL)", None),
    "il6_fluid": ("IL-6 fluid (ng/mL)", None),
    "macrophage_m1": ("M1 macrophages", None),
    "macrophage_m2": ("M2 macrophages", None),
    "treg_fraction": (
        "Treg fraction of T cells",
        ("tcell_treg", "tcell_naive", "tcell_th1", "tcell_th17"),
    ),
    "cartilage_agg": ("aggrecan (healthy = 1)", None),
}
LOW, HIGH = 0.36, 0.64  # A outside (LOW, HIGH): not equivalent


def vargha_delaney_a(x: Sequence[float], y: Sequence[float]) -> float:
    """A = P(X > Y) + 0.5 P(X = Y) for independent draws X from ``x``, Y from ``y``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    greater = (x[:, None] > y[None, :]).sum()
    ties = (x[:, None] == y[None, :]).sum()
    return float((greater + 0.5 * ties) / (x.size * y.size))


def false_alarm_rate(n_ref: int, n_cand: int, draws: int = 20000, seed: int = 0) -> float:
    """P(A outside (LOW, HIGH)) when candidate and reference are the same model: A of two
    samples of sizes ``n_cand`` and ``n_ref`` from one continuous distribution (Monte Carlo
    with a fixed seed: about 0.38 for 8 vs 8 seeds, 0.18 for 16 vs 16, 0.10 for 24 vs 24).
    With 21 readout-days, 8 seeds flag ~8 of them in a model identical to the reference."""
    rng = np.random.default_rng(seed)
    x = rng.random((draws, n_cand))
    y = rng.random((draws, n_ref))
    greater = (x[:, :, None] > y[:, None, :]).sum(axis=(1, 2))
    a = greater / (n_cand * n_ref)
    return float(np.mean((a <= LOW) | (a >= HIGH)))


def fraction(metrics: pd.DataFrame, parts: Sequence[str]) -> pd.Series:
    """Per metrics row: ``parts[0]`` over the sum of ``parts`` (0 where the sum is 0), e.g. the
    Treg fraction of all T cells."""
    total = metrics[list(parts)].sum(axis=1)
    return (metrics[parts[0]] / total.where(total > 0)).fillna(0.0)


def readouts(metrics: pd.DataFrame, days: Sequence[float]) -> dict[tuple[str, float], float]:
    """Each readout averaged over the simulated day before each of ``days``."""
    t = metrics["time_min"].to_numpy() / MIN_PER_DAY
    out = {}
    for day in days:
        win = (t > day - 1.0) & (t <= day + 1e-9)
        frame = metrics[win]
        for name, (_, parts) in READOUTS.items():
            column = frame[name] if parts is None else fraction(frame, parts)
            out[(name, day)] = float(column.mean())
    return out


def _one(job: tuple[str, list[str], int, float]) -> tuple[str, int, pd.DataFrame, float]:
    import abm

    arm, overrides, seed, days = job
    t0 = time.perf_counter()
    cfg = abm.compose([*overrides, f"seed={seed}", f"sim.days={days}"])
    metrics = abm.JointModel(cfg).run()
    return arm, seed, metrics, time.perf_counter() - t0


def run(base: list[str], candidates: Sequence[Sequence[str]], seeds: int,
        days: Sequence[float], jobs: int = 2,
        reference: Sequence[str] | None = ("sim.dt_min=2",),
        seed_offset: int = 0) -> pd.DataFrame:  # fmt: skip
    """Runs the reference (unless ``reference`` is None) and every candidate for every seed;
    one row per (readout, day, arm, seed); a candidate arm is named by its overrides. The
    reference runs seeds 0..seeds-1, the candidates ``seed_offset`` + those (an offset and the
    reference's own overrides as candidate: the test's false-alarm rate, an A/A test)."""
    last = max(days)
    arms = [] if reference is None else [("reference", list(reference), 0)]
    arms += [(" ".join(c), list(c), seed_offset) for c in candidates]
    work = [(arm, [*base, *ov], s + off, last) for s in range(seeds) for arm, ov, off in arms]
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
        for arm, seed, metrics, sec in ex.map(_one, work):
            print(f"{arm:16s} seed {seed}: {sec:6.0f} s", flush=True)
            for (name, day), value in readouts(metrics, days).items():
                rows.append({"readout": name, "day": day, "arm": arm, "seed": seed,
                             "value": value, "wall_s": sec})  # fmt: skip
    return pd.DataFrame(rows)


def stored_reference(path: Path, seeds: int, days: Sequence[float]) -> pd.DataFrame:
    """The reference rows of an earlier ``equivalence_runs.csv`` (seeds 0..seeds-1, ``days``);
    exits with one line if any is missing. Valid only while the reference's code path is
    unchanged (a new option that defaults to the old behaviour), which the caller vouches for."""
    old = pd.read_csv(path)
    ref = old[(old.arm == "reference") & (old.seed < seeds) & old.day.isin(list(days))]
    want = seeds * len(days) * len(READOUTS)
    if len(ref) != want:
        raise SystemExit(
            f"equivalence: error: {path} holds {len(ref)} of the {want} reference rows needed "
            f"({seeds} seeds, days {list(days)}); run the reference"
        )
    return ref.reset_index(drop=True)


def merge(paths: Sequence[Path], reference: Sequence[str]) -> pd.DataFrame:
    """The runs of several ``equivalence_runs.csv`` pooled: an arm named by the reference's own
    overrides joins the reference; a (readout, day, arm, seed) seen twice is kept once."""
    runs = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    runs.loc[runs.arm == " ".join(reference), "arm"] = "reference"
    return runs.drop_duplicates(["readout", "day", "arm", "seed"]).reset_index(drop=True)


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per candidate, readout and day: medians of both arms and the Vargha-Delaney A
    (candidate vs reference), with the verdict."""
    out = []
    for arm in [a for a in runs.arm.unique() if a != "reference"]:
        for (name, day), g in runs.groupby(["readout", "day"], sort=False):
            ref = g[g.arm == "reference"].value.to_numpy()
            cand = g[g.arm == arm].value.to_numpy()
            a = vargha_delaney_a(cand, ref)
            out.append({"candidate": arm, "readout": name, "day": day,
                        "reference_median": float(np.median(ref)),
                        "candidate_median": float(np.median(cand)), "A": a,
                        "equivalent": bool(LOW < a < HIGH), "seeds": int(ref.size)})  # fmt: skip
    return pd.DataFrame(out)


def markdown(tab: pd.DataFrame) -> str:
    lines = ["| candidate | readout | day | reference median | candidate median | A | "
             "within (0.36, 0.64) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in tab.itertuples():
        ok = "yes" if r.equivalent else "**no**"
        lines.append(f"| `{r.candidate}` | {READOUTS[r.readout][0]} | {r.day:g} | "
                     f"{r.reference_median:.4g} | {r.candidate_median:.4g} | {r.A:.2f} | "
                     f"{ok} |")  # fmt: skip
    return "\n".join(lines)


def figure(runs: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = list(READOUTS)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.2))
    for ax, name in zip(axes, names, strict=True):
        g = runs[runs.readout == name]
        days = sorted(g.day.unique())
        arms = ["reference", *[a for a in runs.arm.unique() if a != "reference"]]
        for k, arm in enumerate(arms):
            for i, day in enumerate(days):
                v = g[(g.arm == arm) & (g.day == day)].value
                ax.scatter(np.full(v.size, i + (k - (len(arms) - 1) / 2) * 0.2), v, s=10,
                           color=f"C{k}", label=arm if i == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(days)), [f"d{d:g}" for d in days])
        ax.set_title(READOUTS[name][0], fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8, help="seeds per arm (>= 8 for the table)")
    ap.add_argument("--days", type=float, nargs="+", default=[7.0, 28.0, 90.0])
    ap.add_argument("--candidate", nargs="+", action="append",
                    help="overrides of one candidate arm; repeat for several "
                         "(default: sim.dt_min=10)")  # fmt: skip
    ap.add_argument("--reference", nargs="+", default=["sim.dt_min=2"])
    ap.add_argument("--base", nargs="*", default=["lattice.shape=[193,64]"],
                    help="overrides of both arms (default: the validation lattice)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="candidates run seeds OFFSET.. (with the reference's overrides: an "
                         "A/A test of the criterion's false-alarm rate)")  # fmt: skip
    ap.add_argument("--reference-runs", type=Path, default=None,
                    help="reuse the reference rows of an earlier equivalence_runs.csv (only "
                         "while the reference's code path is unchanged)")  # fmt: skip
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="run nothing: pool the runs of these equivalence_runs.csv files (an "
                         "arm with the reference's overrides counts as the reference)")  # fmt: skip
    ap.add_argument("--out", default="docs/figures", help="folder for the CSV and PNG")
    args = ap.parse_args(argv)
    if args.seeds < 2 or min(args.days) < 1:
        ap.error("--seeds must be >= 2 and every --days >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    candidates = args.candidate or [["sim.dt_min=10"]]
    if args.merge is not None:
        runs = merge(args.merge, args.reference)
    elif args.reference_runs is not None:
        ref = stored_reference(args.reference_runs, args.seeds, args.days)
        new = run(args.base, candidates, args.seeds, args.days, args.jobs, None, args.seed_offset)
        runs = pd.concat([ref, new], ignore_index=True)
    else:
        runs = run(
            args.base,
            candidates,
            args.seeds,
            args.days,
            args.jobs,
            args.reference,
            args.seed_offset,
        )
    runs.to_csv(out / "equivalence_runs.csv", index=False)
    tab = table(runs)
    tab.to_csv(out / "equivalence.csv", index=False)
    figure(runs, out / "equivalence.png")
    print(markdown(tab))
    for arm, g in tab.groupby("candidate", sort=False):
        n_cand = int(runs[runs.arm == arm].seed.nunique())
        rate = false_alarm_rate(int(g.seeds.iloc[0]), n_cand)
        print(f"{arm}: {int((~g.equivalent).sum())} of {len(g)} readout-days outside "
              f"({LOW}, {HIGH}); a model identical to the reference would put {rate:.0%} of "
              f"them there by chance ({int(g.seeds.iloc[0])} vs {n_cand} seeds)")  # fmt: skip
    wall = runs.groupby("arm").wall_s.median()
    print("median wall per run: " + ", ".join(f"{a} {s:.0f} s" for a, s in wall.items()))


if __name__ == "__main__":
    main()
