"""abm-sweep-report MULTIRUN_DIR: one tidy table and plots over a Hydra multirun.

Data flow: a multirun folder (jobs 0/, 1/, ... each with ``metrics.csv`` and
``.hydra/overrides.yaml``, written by ``abm-run -m ...``) -> ``sweep_final.csv`` (one row per
job: its overrides as columns + the last row of its metrics) and ``sweep_timeseries.csv``
(long format: job, overrides, time_day, metric, value; every 6 simulated hours) -> PNG plots of
key readouts against each swept key (seeds pooled: mean with min-max bars). Reads files only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from abm.schema import METRICS_FILE
from abm.units import MIN_PER_DAY

KEY_METRICS = ("il1b_fluid", "tnf_fluid", "il6_fluid", "macrophage_m1", "macrophage_m2",
               "tcell_treg", "msc_alive", "cartilage_agg")  # fmt: skip
EVERY_MIN = 360.0


def _fail(message: str) -> None:
    print(f"abm-sweep-report: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def collect(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(final table, long time series, swept keys) of the jobs under ``sweep_dir``."""
    finals, series = [], []
    keys: list[str] = []
    jobs = sorted((p for p in sweep_dir.iterdir() if (p / METRICS_FILE).is_file()),
                  key=lambda p: (len(p.name), p.name))  # fmt: skip
    if not jobs:
        _fail(f"{sweep_dir}: no job folders with a {METRICS_FILE} (is this an abm-run -m folder?)")
    for job in jobs:
        ov_file = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(ov_file.read_text()) if ov_file.is_file() else []
        params = {}
        for item in overrides or []:
            key, _, value = str(item).partition("=")
            params[key.lstrip("+~")] = value
            if key.lstrip("+~") not in keys:
                keys.append(key.lstrip("+~"))
        metrics = pd.read_csv(job / METRICS_FILE)
        finals.append({"job": job.name, **params, **metrics.iloc[-1].to_dict()})
        keep = metrics[(metrics["time_min"] % EVERY_MIN) < 1e-6]
        long = keep.melt(id_vars="time_min", var_name="metric", value_name="value")
        long.insert(0, "time_day", long.pop("time_min") / MIN_PER_DAY)
        for k, v in reversed(list(params.items())):
            long.insert(0, k, v)
        long.insert(0, "job", job.name)
        series.append(long)
    return pd.DataFrame(finals), pd.concat(series, ignore_index=True), keys


def plot(final: pd.DataFrame, series: pd.DataFrame, keys: list[str], out: Path) -> list[Path]:
    """One PNG per swept key (final readouts) and one of the time courses by the first key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    swept = [k for k in keys if k != "seed" and final[k].nunique() > 1] or keys[:1]
    for key in swept:
        fig, axes = plt.subplots(2, 4, figsize=(14, 6), constrained_layout=True)
        groups = final.groupby(key, sort=False)
        for ax, metric in zip(axes.flat, KEY_METRICS, strict=True):
            stats = groups[metric].agg(["mean", "min", "max"])
            x = range(len(stats))
            err = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
            ax.errorbar(x, stats["mean"], yerr=err, fmt="o", capsize=4)
            ax.set_xticks(list(x), [str(i) for i in stats.index], rotation=30)
            ax.set_title(metric, fontsize=9)
            ax.set_xlabel(key, fontsize=8)
        fig.suptitle(f"final readouts by {key} (mean, min-max over the other keys and seeds)")
        path = out / f"sweep_{key.replace('/', '_').replace('.', '_')}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    if swept and swept[0] in series:
        key = swept[0]
        fig, axes = plt.subplots(2, 4, figsize=(14, 6), constrained_layout=True)
        for ax, metric in zip(axes.flat, KEY_METRICS, strict=True):
            sub = series[series["metric"] == metric]
            for value, grp in sub.groupby(key, sort=False):
                mean = grp.groupby("time_day")["value"].mean()
                ax.plot(mean.index, mean.to_numpy(), label=f"{key}={value}")
            ax.set_title(metric, fontsize=9)
            ax.set_xlabel("time (days)", fontsize=8)
        axes.flat[0].legend(fontsize=7)
        path = out / "sweep_timecourses.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    """Console script ``abm-sweep-report``."""
    ap = argparse.ArgumentParser(prog="abm-sweep-report", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="a Hydra multirun folder (abm-run -m ...)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: sweep_dir)")
    args = ap.parse_args(argv)
    if not args.sweep_dir.is_dir():
        _fail(f"{args.sweep_dir}: no such folder")
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    final, series, keys = collect(args.sweep_dir)
    final.to_csv(out / "sweep_final.csv", index=False)
    series.to_csv(out / "sweep_timeseries.csv", index=False)
    pngs = plot(final, series, keys, out)
    print(f"{len(final)} jobs, swept: {', '.join(keys) or '-'}")
    for path in (out / "sweep_final.csv", out / "sweep_timeseries.csv", *pngs):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
