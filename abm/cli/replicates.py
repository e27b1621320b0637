"""abm-replicates: how many runs per parameter set? (consistency analysis, Alden et al. 2013)

Data flow: a pool of runs that differ only in their seed (``abm-run -m seed=range(0,POOL)``
through :func:`abm.sweep.launch.run_sweep`, jobs under ``OUT/runs``) -> readouts of the complete
runs at ``--days`` -> :func:`abm.sweep.replicates.consistency` (Vargha-Delaney A between
subsets of n runs, for each n) -> ``OUT/replicates.csv``, ``OUT/replicates.png`` and the
recommended n, printed. Running the same command again runs only the unfinished jobs (a larger
``--pool`` adds seeds); ``--no-run`` analyses what is there.

    abm-replicates --out replicates/oa --n 1 5 10 20 50 --subsets 20 --days 7 sim.days=7
    abm-replicates --out rep --pool 40 --launcher hydra/launcher=joblib hydra.launcher.n_jobs=8

Bad input is one line ``abm-replicates: error: ...`` with exit code 2, before any run; too few
complete runs to analyse is one line with exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.cli.common import (
    EXIT_FAILED,
    OneLineParser,
    add_sweep_arguments,
    check_common,
    fail,
    parse_args,
)

PROG = "abm-replicates"


def parser() -> argparse.ArgumentParser:
    from abm.sweep.replicates import DEFAULT_METRICS, DEFAULT_NS, DEFAULT_SUBSETS

    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides of every run (as abm-run), e.g. sim.days=28 "
                        "therapy=none; hydra.* ones go to Hydra")  # fmt: skip
    p.add_argument("--out", required=True, help="the sweep folder (jobs under OUT/runs)")
    p.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS), metavar="N",
                   help="sample sizes to test (default: %(default)s)")  # fmt: skip
    p.add_argument("--subsets", type=int, default=DEFAULT_SUBSETS,
                   help="subsets drawn per sample size (default: %(default)s)")  # fmt: skip
    p.add_argument("--pool", type=int, default=None,
                   help="runs in the pool (default: subsets x the largest n, so subsets are "
                        "disjoint; fewer: subsets overlap)")  # fmt: skip
    p.add_argument("--draw-seed", type=int, default=0,
                   help="seed of the subset draws (default 0)")  # fmt: skip
    add_sweep_arguments(p, DEFAULT_METRICS, window_help="(default 0: the value at the day)")
    return p


def _parsed(overrides: Sequence[str]) -> dict[str, Any] | None:
    """{key: value} of Hydra overrides as Hydra reads them (``false`` and ``False`` alike)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return None
    return {o.get_key_element(): o.value() for o in parsed}


def pool_jobs(jobs: Any, overrides: Sequence[str], pool: int) -> Any:
    """The jobs of a :func:`abm.sweep.collect.collect_jobs` table that belong to this pool:
    ``seed`` in 0..pool-1 and the same config overrides (a job folder of the same ``--out``
    run with other overrides is not one of them; one line says how many were left aside)."""
    from abm.sweep.collect import read_overrides, split_override

    want = _parsed(overrides)
    seeds = np.asarray(pd.to_numeric(jobs["seed"], errors="coerce"), dtype=float)
    jobs = jobs[(seeds >= 0) & (seeds < pool)]

    def same(row: Any) -> bool:
        if row["status"] == "missing":  # planned by this sweep, never started
            return True
        given = [o for o in read_overrides(row["path"]) if split_override(o)[0] != "seed"]
        return _parsed(given) == want

    keep = jobs.apply(same, axis=1).astype(bool) if len(jobs) else jobs["status"].astype(bool)
    if (~keep).any():
        print(f"note: {int((~keep).sum())} job folder(s) in the sweep folder ran with other "
              "overrides and are left out")  # fmt: skip
    return jobs[keep]


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``abm-replicates``."""
    from abm.sweep import replicates as rep
    from abm.sweep.launch import job_readouts, run_sweep

    args = parse_args(parser(), argv)
    ns = sorted(set(args.n))
    if min(ns) < 1:
        fail(PROG, f"--n {min(ns)}: sample sizes must be >= 1")
    if args.subsets < 2:
        fail(PROG, f"--subsets {args.subsets}: must be >= 2 (subset 1 is compared with the rest)")
    disjoint = rep.needed_pool(ns, args.subsets)
    pool = disjoint if args.pool is None else args.pool
    if pool < max(ns):
        fail(PROG, f"--pool {pool}: must hold at least the largest n ({max(ns)})")
    overrides, hydra, _, days, metrics = check_common(PROG, args, ("seed", "design"))
    out = Path(args.out)
    runs = out / "runs"
    if pool < disjoint:
        print(f"note: a pool of {pool} runs is smaller than subsets x largest n = {disjoint}: "
              "subsets are drawn independently and overlap (they share runs, which makes "
              "them look more alike than independent subsets would)")  # fmt: skip
    if not args.no_run:
        print(f"{PROG}: {pool} runs (seed=range(0,{pool})) in {runs}", flush=True)
        proc = run_sweep(runs, overrides, {"seed": f"range(0,{pool})"}, hydra, quiet=args.quiet)
        if proc.returncode != 0:
            print(f"{PROG}: the sweep exited with code {proc.returncode}; analysing the complete "
                  "runs", file=sys.stderr)  # fmt: skip
    from abm.sweep.collect import collect_jobs

    jobs = collect_jobs(runs) if runs.is_dir() else None
    if jobs is None or not len(jobs) or "seed" not in jobs.columns:
        fail(PROG, f"{runs}: no runs of a seed sweep there", EXIT_FAILED)
    jobs = pool_jobs(jobs, overrides, pool)
    done = jobs[jobs["status"] == "complete"]
    failed = jobs[jobs["status"] != "complete"]
    if len(failed):
        shown = ", ".join(f"{j} ({s})" for j, s in zip(failed["job"][:5], failed["status"][:5],
                                                         strict=True))  # fmt: skip
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        print(f"note: {len(failed)} of the pool's runs are not complete and are left out: "
              f"{shown}{more}; run the same command again to retry them")  # fmt: skip
    values = job_readouts(done, metrics, days, args.window).dropna(subset=["value"])
    n_runs = values["job"].nunique() if len(values) else 0
    if n_runs < max(ns):
        fail(PROG, f"{n_runs} complete runs with readouts at day(s) "
                   f"{', '.join(f'{d:g}' for d in days)}, fewer than the largest n "
                   f"({max(ns)}); run the same command again to finish the pool",
             EXIT_FAILED)  # fmt: skip
    if n_runs < pool:
        print(f"note: {n_runs} of {pool} runs available; subsets drawn from those")
    summary, every = rep.consistency(values, ns, args.subsets, seed=args.draw_seed)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "replicates.csv", index=False)
    rep.figure(summary, every, out / "replicates.png")
    print(rep.report(summary))
    overlap = summary.attrs["overlap"]
    if overlap:
        print(f"note: subsets overlap at n = {', '.join(str(n) for n in overlap)} (a pool of "
              f"{n_runs} runs holds fewer than {args.subsets} x n)")  # fmt: skip
    print(
        f"wrote {out / 'replicates.csv'} and {out / 'replicates.png'} ({n_runs} runs, "
        f"{args.subsets} subsets per n)"
    )


if __name__ == "__main__":
    main()
