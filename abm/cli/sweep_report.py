"""abm-sweep-report SWEEP_DIR: tables, plots and one HTML page over the jobs of a sweep.

    abm-sweep-report SWEEP_DIR [--out DIR] [--no-html] [--metrics NAME ...]

Data flow: a sweep folder written by ``abm-run -m ...`` (one job folder per parameter set, each
with ``.hydra/overrides.yaml``, ``status.json``, ``metrics.csv``) -> :mod:`abm.sweep.collect`
-> :mod:`abm.sweep.report` -> into ``--out`` (default: the sweep folder):

- ``sweep_jobs.csv``: every job with its state (complete, failed, running, unfinished,
  missing), error line, wall time and swept values;
- ``sweep_final.csv``: one row per complete job: the swept parameters (only those that differ
  between jobs) + the last row of its metrics;
- ``sweep_summary.csv``: per parameter set (the swept values other than ``seed``) and metric:
  n, mean, sd and the 95% Student-t interval (ci_low, ci_high) of the final values over seeds;
- ``sweep_timeseries.csv``: long format (job, swept values, time_day, metric, value), every 6
  simulated hours (sweeps shorter than 5 days: 20 steps over the run);
- ``sweep_<key>.png`` per swept key (``sweep_seed.png`` when only seeds vary) and
  ``sweep_timecourses.png``: means with their intervals;
- ``sweep_report.html`` (unless ``--no-html``): one self-contained page (plotly.js embedded;
  opens offline, from a cluster's file system) with the same plots, interactive, and the jobs.

Jobs that failed, are still running, stopped without an end (unfinished) or never started
(missing) are listed (printed and in the page) and left out of the readouts; they are never
an error. Exit codes: 0 at least one job completed (report written); 1 no job completed (the
report is still written: it lists the jobs and their errors); 2 bad input (no such folder, no
job folder in it, an unknown ``--metrics`` name, an ``--out`` that cannot be written), one
line on stderr before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abm.cli.common import writable_error

MAX_LISTED = 20  # failed jobs printed; the rest are in sweep_jobs.csv and the page


def _fail(message: str, code: int = 2) -> None:
    print(f"abm-sweep-report: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="abm-sweep-report", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="a sweep folder (abm-run -m ...)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: sweep_dir)")
    ap.add_argument("--no-html", action="store_true", help="skip sweep_report.html")
    ap.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        metavar="NAME",
        help="readouts to plot (default: 8 key readouts)",
    )
    return ap


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: is a file; give a folder")
    message = writable_error(out, folder=True)
    if message is not None:
        _fail(message)


def main(argv: list[str] | None = None) -> None:
    """Console script ``abm-sweep-report``."""
    args = parser().parse_args(argv)
    if not args.sweep_dir.is_dir():
        _fail(f"{args.sweep_dir}: no such folder")
    out = args.out or args.sweep_dir
    _check_out(out)

    from abm.sweep.collect import job_folders

    if not job_folders(args.sweep_dir):
        _fail(
            f"{args.sweep_dir}: no job folders (folders with .hydra/overrides.yaml, "
            "status.json or metrics.csv; is this an abm-run -m folder?)"
        )
    from abm.sweep.report import gather, n_plots, write_html, write_pngs, write_tables

    data = gather(args.sweep_dir, args.metrics)
    if args.metrics and not data.final.empty:
        unknown = [m for m in args.metrics if m not in data.final.columns]
        if unknown:
            known = ", ".join(c for c in data.final.columns if c not in ("job", *data.keys))
            _fail(f"--metrics {' '.join(unknown)}: no such metric (metrics: {known})")
    out.mkdir(parents=True, exist_ok=True)
    try:
        written = write_tables(data, out)
        written += write_pngs(data, out)
        if not args.no_html:
            written.append(write_html(data, out / "sweep_report.html"))
    except OSError as exc:
        _fail(f"writing into {out} failed: {exc.strerror or exc}", code=1)

    counts = data.counts()
    states = ", ".join(f"{v} {k}" for k, v in counts.items())
    print(f"{len(data.jobs)} jobs ({states}); swept: {', '.join(data.keys) or '-'}")
    if data.constants:
        print("same in every job: " + ", ".join(f"{k}={v}" for k, v in data.constants.items()))
    bad = data.not_complete
    for _, job in bad.head(MAX_LISTED).iterrows():
        print(f"  {job['status']:<10} {job['job']}: {job['error'] or '-'}")
    if len(bad) > MAX_LISTED:
        print(f"  ... and {len(bad) - MAX_LISTED} more (see sweep_jobs.csv)")
    for path in written:
        extra = f" ({n_plots(data)} plots)" if path.suffix == ".html" else ""
        print(f"wrote {path}{extra}")
    if data.complete.empty:
        print(
            f"abm-sweep-report: no job completed ({states}): the report lists the jobs and "
            "their errors",
            file=sys.stderr,
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
