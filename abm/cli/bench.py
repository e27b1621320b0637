"""abm-bench: CPU vs GPU benchmark table (bench.json + bench.png + a printed table).

Data flow: command line -> :mod:`abm.bench` (cases composed like a run, timed on each backend,
medians of repeats) -> ``bench.json`` (schema ``oa-abm-bench/1``), ``bench.png`` and tables on
stdout. A backend that is unknown or unusable here stops before any work with one line on
stderr and exit code 2.

    abm-bench                                   # numpy (+ cupy if a CUDA device answers)
    abm-bench --backends numpy cupy --what lattice cells --sizes full --repeats 5 --out DIR
    abm-bench --what ratio                      # our LOD solver vs the NumPy yardstick
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from abm.bench import report
from abm.bench.cases import SIZES
from abm.bench.machine import check_backends, default_backends
from abm.bench.suite import WHAT, run_benchmarks
from abm.errors import BenchError

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abm-bench",
        description="CPU vs GPU benchmark table. Writes bench.json and bench.png into --out "
        "and prints a table of medians.",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        metavar="NAME",
        help="numpy and/or cupy (default: numpy, plus cupy if a CUDA device answers)",
    )
    p.add_argument(
        "--what",
        nargs="+",
        choices=WHAT,
        default=["lattice", "cells"],
        help="lattice: the model's lattice solver alone (M voxel-field updates/s); "
        "cells: whole model steps, split by phase (M cell-steps/s); ratio: the solver "
        "on 8 fields vs a plain NumPy LOD yardstick, same run. Default: lattice cells",
    )
    p.add_argument(
        "--sizes",
        choices=SIZES,
        default="full",
        help="small: tiny cases (seconds); full (default): 2D 512^2 / 3D 128^3 "
        "lattices and ~1e4-1e6 cells",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed steps per case (median)")
    p.add_argument("--out", default="outputs/bench", help="folder for bench.json, bench.png")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``abm-bench``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        if args.repeats < 1:
            raise BenchError(f"--repeats must be >= 1 (got {args.repeats})")
        backends = check_backends(args.backends) if args.backends else default_backends()
    except BenchError as exc:
        print(f"abm-bench: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    started = report.now()
    results = run_benchmarks(backends, args.what, args.sizes, args.repeats, progress=_progress)
    settings = dict(backends=backends, what=args.what, sizes=args.sizes, repeats=args.repeats)
    doc = report.make_report(results, started, sys.argv[1:] if argv is None else argv, settings)
    json_path, png_path = report.write(doc, args.out)
    print(report.format_text(results))
    print(f"(medians of {args.repeats} repeats; wrote {json_path} and {png_path})")


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
