"""abm-sensitivity: global sensitivity analysis of the model's readouts (Morris, Sobol, PRCC).

Data flow: ``--param`` keys and their ranges (declared plausible ranges, or ``--range``) ->
a design from SALib's samplers (:mod:`abm.sweep.sensitivity`), written to ``OUT/design.csv``
(config values; ``OUT/sample.csv`` holds the sampler's own values, ``OUT/request.json`` what
was asked) -> ``abm-run -m design.file=OUT/design.csv design.row=range(0,N)`` through
:func:`abm.sweep.launch.run_sweep` (jobs under ``OUT/runs``, any launcher) -> readouts of the
jobs at ``--days`` -> indices per readout and day: ``OUT/indices.csv`` (method, metric, day,
parameter, index, value, ci_low, ci_high), ``OUT/indices_<metric>_day<d>.png`` and a ranked
table, printed.

    abm-sensitivity --method morris --param biology.macrophage.activation_rate \\
        --param biology.fields.IL1b.decay --param biology.msc.licensing_rate \\
        --trajectories 10 --metrics il1b_fluid macrophage_m1 --days 7 --out sa/morris sim.days=7

Running the same command again reuses the design and runs only the unfinished jobs; a
different request aimed at the same ``--out`` is refused unless ``--force-new`` (the old
design and runs are then moved to ``OUT/previous-<time>/``). Morris and Sobol need every row of
the design: failed rows are named and the analysis stops (run the command again to retry
them); PRCC leaves them out and says so. Bad input is one line ``abm-sensitivity: error: ...``
with exit code 2 before any run; rows missing for the analysis, one line with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

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

PROG = "abm-sensitivity"
DESIGN, SAMPLE, REQUEST, INDICES = "design.csv", "sample.csv", "request.json", "indices.csv"
DEFAULT_METRICS = ("il1b_fluid", "tnf_fluid", "macrophage_m1", "macrophage_m2", "cartilage_agg")


def parser() -> argparse.ArgumentParser:
    from abm.sweep.sensitivity import DEFAULT_SIZE, METHODS

    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides of every run (as abm-run), e.g. sim.days=14 "
                        "therapy=none; hydra.* ones go to Hydra")  # fmt: skip
    p.add_argument("--method", required=True, choices=METHODS,
                   help="morris (screening, r (k+1) runs), sobol (variance-based, N (k+2) "
                        "runs), prcc (monotone effects, N runs)")  # fmt: skip
    p.add_argument("--param", action="append", required=True, metavar="KEY",
                   help="a parameter to vary (dotted key, e.g. "
                        "biology.macrophage.activation_rate); repeat for each")  # fmt: skip
    p.add_argument("--range", action="append", default=[], metavar="KEY=LO:HI",
                   help="a range other than the declared plausible one")  # fmt: skip
    p.add_argument("--trajectories", type=int, default=None, metavar="R",
                   help=f"Morris trajectories (default {DEFAULT_SIZE['morris']})")  # fmt: skip
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help=f"Sobol base samples (default {DEFAULT_SIZE['sobol']}, a power of 2) "
                        f"or PRCC runs (default {DEFAULT_SIZE['prcc']})")  # fmt: skip
    p.add_argument("--levels", type=int, default=4, help="Morris grid levels (default 4)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--resamples", type=int, default=1000,
                   help="bootstrap resamples for the intervals (default 1000)")  # fmt: skip
    p.add_argument("--force-new", action="store_true",
                   help="OUT holds another design: move it to OUT/previous-<time>/ and start "
                        "afresh")  # fmt: skip
    p.add_argument("--out", required=True, help="the analysis folder (jobs under OUT/runs)")
    add_sweep_arguments(p, DEFAULT_METRICS, window_help="(default 0)")
    return p


def _size(args: argparse.Namespace, k: int) -> int:
    from abm.sweep.sensitivity import DEFAULT_SIZE

    if args.method == "morris":
        if args.samples is not None:
            fail(PROG, "--samples is for sobol and prcc; Morris takes --trajectories")
        size = DEFAULT_SIZE["morris"] if args.trajectories is None else args.trajectories
        if size < 2:
            fail(PROG, f"--trajectories {size}: need >= 2 (sigma and the confidence need 2)")
        if args.levels < 2 or args.levels % 2:
            fail(PROG, f"--levels {args.levels}: need an even number >= 2 (4 is usual)")
        return size
    if args.trajectories is not None:
        fail(PROG, f"--trajectories is for morris; {args.method} takes --samples")
    size = DEFAULT_SIZE[args.method] if args.samples is None else args.samples
    least = 2 if args.method == "sobol" else k + 3
    if size < least:
        fail(PROG, f"--samples {size}: {args.method} with {k} parameters needs >= {least}")
    if args.method == "sobol" and size & (size - 1):
        print(f"note: --samples {size} is not a power of 2; Sobol' sequences converge as "
              "documented only at powers of 2 (e.g. 64, 128, 256)")  # fmt: skip
    return size


def _design_state(out: Path, req: dict, force_new: bool) -> bool:
    """True when OUT already holds this request's design (reuse it); False when a new one is
    to be written. Refuses (one line) another request's design unless ``force_new``, which
    moves it aside first."""
    from abm.sweep.outdir import move_aside, request_diff

    path = out / REQUEST
    held = [p for p in (out / DESIGN, out / SAMPLE, path, out / "runs") if p.exists()]
    if not held:
        return False
    diff = ["(no request.json)"]
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            diff = request_diff(old, req)
        except (OSError, ValueError):
            diff = ["(request.json unreadable)"]
        if not diff and (out / DESIGN).is_file() and (out / SAMPLE).is_file():
            return True
    if not force_new:
        fail(PROG, f"--out {out} holds another design (it differs in: {', '.join(diff)}); "
                   "give another --out, or --force-new to move it to "
                   f"{out}/previous-<time>/ and start afresh")  # fmt: skip
    aside = move_aside(out, [*held, *out.glob("indices*")])
    print(f"moved the previous design and runs to {aside}")
    return False


def _write_design(out: Path, fs: list, x: np.ndarray, req: dict) -> None:
    from abm.sweep.design import write_design
    from abm.sweep.outdir import write_text
    from abm.sweep.sensitivity import design_table

    out.mkdir(parents=True, exist_ok=True)
    write_design(out / SAMPLE, pd.DataFrame(x, columns=[f.key for f in fs]))
    write_design(out / DESIGN, design_table(fs, x))
    write_text(out / REQUEST, json.dumps(req, indent=1) + "\n")  # last: marks it finished


def _rows_status(runs: Path, design: Path, n: int) -> tuple[dict[int, pd.Series], pd.DataFrame]:
    """({row: its job's collect_jobs row} for the jobs of this design, the jobs table)."""
    from abm.sweep.design import design_jobs

    return design_jobs(runs, design, n)


def _say_rows(rows: Sequence[int], limit: int = 12) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``abm-sensitivity``."""
    from abm.errors import ConfigError
    from abm.sweep import sensitivity as sa
    from abm.sweep.launch import job_readouts, quote, run_sweep

    args = parse_args(parser(), argv)
    keys = list(args.param)
    try:
        ranges = dict(sa.parse_range(r) for r in args.range)
    except ValueError as exc:
        fail(PROG, str(exc))
    overrides, hydra, cfg, days, metrics = check_common(PROG, args, ("design", *keys))
    try:
        fs = sa.factors(keys, ranges, cfg)
    except ConfigError as exc:
        fail(PROG, str(exc))
    size = _size(args, len(fs))
    out = Path(args.out).absolute()
    design = out / DESIGN
    req = sa.request(args.method, fs, size, args.sample_seed, args.levels, overrides)

    reuse = _design_state(out, req, args.force_new)
    if reuse:
        x = pd.read_csv(out / SAMPLE).drop(columns=["row"])[keys].to_numpy(dtype=float)
        print(f"{PROG}: reusing the design in {design} ({len(x)} rows)")
    else:
        x = sa.sample(args.method, fs, size, seed=args.sample_seed, levels=args.levels)
        _write_design(out, fs, x, req)
        print(f"{PROG}: wrote the design {design} ({len(x)} rows)")
    n = len(x)  # = sa.runs_needed(method, k, size)
    what = {"morris": f"{size} trajectories x ({len(fs)} + 1)",
            "sobol": f"{size} samples x ({len(fs)} + 2)", "prcc": f"{size} samples"}  # fmt: skip
    print(f"{args.method}: {n} runs ({what[args.method]}); parameters:")
    for f in fs:
        print(f"  {f.describe()}")

    runs = out / "runs"
    if not args.no_run:
        ov = [*overrides, f"design.file={quote(str(design))}"]
        proc = run_sweep(runs, ov, {"design.row": f"range(0,{n})"}, hydra, quiet=args.quiet)
        if proc.returncode != 0:
            print(f"{PROG}: the sweep exited with code {proc.returncode}", file=sys.stderr)

    by_row, _ = _rows_status(runs, design, n)
    done = pd.DataFrame([j for r, j in sorted(by_row.items()) if j["status"] == "complete"])
    values = job_readouts(done, metrics, days, args.window) if len(done) else None
    row_of = {j["job"]: r for r, j in by_row.items()}
    results = []
    for metric in metrics:
        for day in days:
            y = np.full(n, np.nan)
            if values is not None:
                v = values[(values["metric"] == metric) & np.isclose(values["day"], day)]
                for job, value in zip(v["job"], v["value"], strict=True):
                    y[row_of[job]] = value
            bad = [int(r) for r in np.flatnonzero(~np.isfinite(y))]
            if bad and args.method != "prcc":
                why = _why(bad, by_row)
                fail(PROG, f"rows {_say_rows(bad)} of {n} have no {metric} at day {day:g} "
                           f"({why}); {args.method} needs every row: run the same command "
                           "again to retry them", EXIT_FAILED)  # fmt: skip
            keep = np.isfinite(y)
            if bad:
                if keep.sum() < len(fs) + 3:
                    fail(PROG, f"only {int(keep.sum())} of {n} rows have {metric} at day "
                               f"{day:g}; PRCC needs >= {len(fs) + 3}: run the same command "
                               "again to retry the others", EXIT_FAILED)  # fmt: skip
                print(f"note: PRCC of {metric} at day {day:g} leaves out rows "
                      f"{_say_rows(bad)} ({_why(bad, by_row)}): {int(keep.sum())} of {n} "
                      "rows used")  # fmt: skip
            if np.ptp(y[keep]) == 0:
                print(f"note: {metric} at day {day:g} is the same in every run: "
                      f"{'every mu* is 0' if args.method == 'morris' else 'no index'}")  # fmt: skip
            idx = sa.analyse(args.method, fs, x[keep], y[keep], seed=args.sample_seed,
                             levels=args.levels, resamples=args.resamples)  # fmt: skip
            idx.insert(0, "day", day)
            idx.insert(0, "metric", metric)
            idx.insert(0, "method", args.method)
            results.append(idx)
    indices = pd.concat(results, ignore_index=True)[list(sa.INDEX_COLUMNS)]
    indices.to_csv(out / INDICES, index=False)
    charts = [sa.chart(indices, args.method, m, d, out / sa.chart_name(m, d))
              for m in metrics for d in days]  # fmt: skip
    print(sa.table(indices))
    print(f"wrote {out / INDICES} and {len(charts)} chart(s) {out}/indices_*.png")


def _why(rows: Sequence[int], by_row: dict) -> str:
    """What happened to design rows ``rows``: counts of their jobs' states (no job: not run)."""
    states: dict[str, int] = {}
    for r in rows:
        job = by_row.get(r)
        state = "not run" if job is None else str(job["status"])
        if job is not None and state == "complete":
            state = "no readout there"
        states[state] = states.get(state, 0) + 1
    first = next((by_row[r] for r in rows if r in by_row and by_row[r]["status"] == "failed"),
                 None)  # fmt: skip
    text = ", ".join(f"{c} {s}" for s, c in states.items())
    if first is not None and isinstance(first.get("error"), str):
        text += f"; e.g. {first['job']}: {first['error']}"
    return text


if __name__ == "__main__":
    main()
