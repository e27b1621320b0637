"""``python -m abm.validation``: run the validation arms, check targets C1-C7, write the report.

Data flow: options -> :func:`~abm.validation.runs.plan` / :func:`~abm.validation.runs.run_jobs`
(unless ``--replot``: the arms' metrics land in the cache) -> :func:`~abm.validation.runs.load_runs`
-> :func:`~abm.validation.report.collect` -> :func:`~abm.validation.report.write`
(``--out``: ``validation_results.csv`` and ``c*.png``). Paths are relative to the current
folder; run it from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import pandas as pd

from abm.validation import report, runs


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m abm.validation",
        description="Run the validation arms (conf/experiment/validation_*.yaml), check the "
        "calibration targets C1-C7 and write docs/figures/validation_results.csv and c*.png.",
    )
    ap.add_argument(
        "--replot", action="store_true", help="run nothing: check and plot the cached runs"
    )
    ap.add_argument("--days", type=float, default=14.0, help="days of the arms (default 14)")
    ap.add_argument(
        "--long-days",
        type=float,
        default=40.0,
        help="days of the long oa run (C1 steadiness, C7; default 40)",
    )
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1],
        help="seeds of the arms; the long run uses the first (default 0 1)",
    )
    ap.add_argument(
        "--shape",
        type=int,
        nargs=2,
        default=[193, 64],
        metavar=("ROWS", "COLS"),
        help="2D lattice (default 193 64: every layer, a quarter of the width)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument(
        "--cache",
        default="build/validate",
        help="folder of the cached runs (default build/validate)",
    )
    ap.add_argument(
        "--out", default="docs/figures", help="folder of the CSV and figures (default docs/figures)"
    )
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="ARM",
        help=f"run only these arms, then check all: {', '.join(runs.ARMS)}, '{runs.LONG}'",
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    t0 = time.perf_counter()
    if not args.replot:
        try:
            jobs = runs.plan(
                args.seeds, args.days, args.long_days, args.shape, args.cache, only=args.only
            )
        except ValueError as exc:
            print(f"--only: {exc}", file=sys.stderr)
            return 2
        for job, sec in runs.run_jobs(jobs, args.jobs):
            print(f"{job.arm:16s} seed {job.seed} {job.days:g} d: {sec:6.0f} s", flush=True)
    try:
        loaded = runs.load_runs(args.cache, args.seeds, args.days, args.long_days)
    except runs.MissingRunError as exc:
        print(exc, file=sys.stderr)
        return 1
    table, figures = report.collect(loaded)
    path = report.write(table, figures, args.out)
    with pd.option_context(
        "display.width", 250, "display.max_rows", 500, "display.max_colwidth", 80
    ):
        print(table.to_string(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s; results in {path}")
    return 0
