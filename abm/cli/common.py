"""Shared pieces of the command-line front ends (a leaf of abm.cli: imports no other cli module).

One-line errors (``<prog>: error: <message>``, exit 2), the writable-output check of
abm-replay and abm-sweep-report, and the options and checks that abm-replicates and
abm-sensitivity share (readouts, days, launcher overrides; both run their simulations as a
sweep through :func:`abm.sweep.launch.run_sweep`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def writable_error(out: Path, folder: bool, flag: str = "--out") -> str | None:
    """Why ``out`` cannot be written (a file, or a folder if ``folder``), or None: the nearest
    existing parent must be a folder this process can create a file in."""
    base = (out if folder else out.parent).absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        return f"{flag} {out}: cannot create a folder there: {base} is a file"
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        return f"{flag} {out}: cannot write in {base}: {exc.strerror or exc}"
    return None


def check_out_folder(prog: str, out: Path, writable: bool = True) -> None:
    """Exit with one line (code 2) unless ``out`` is a folder, or can become one (and, with
    ``writable``, this process can create files where it goes)."""
    if out.exists() and not out.is_dir():
        fail(prog, f"--out {out}: is a file; give a folder")
    why = writable_error(out, folder=True) if writable else None
    if why:
        fail(prog, why)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line ``<prog>: error: <message>`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def parse_args(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with the ``KEY=VALUE`` overrides taken out first, so that they may
    follow an option of several values (``--days 7 sim.days=7``); the value of ``--range``
    stays with it. The overrides (``hydra.*`` ones included) end up in ``args.overrides``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides, value_of = [], [], False
    for a in argv:
        if value_of or a.startswith("-") or "=" not in a:
            rest.append(a)
            value_of = a == "--range"
        else:
            overrides.append(a)
    args = p.parse_args(rest)
    args.overrides = [*overrides, *args.overrides]
    return args


def fail(prog: str, message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def add_sweep_arguments(
    p: argparse.ArgumentParser, default_metrics: Sequence[str], window_help: str
) -> None:
    """--metrics, --days, --window, --launcher, --no-run, --quiet (abm-replicates and
    abm-sensitivity)."""
    p.add_argument("--metrics", nargs="+", default=list(default_metrics), metavar="NAME",
                   help="readouts (metrics.csv columns or treg_fraction; default: "
                        "%(default)s)")  # fmt: skip
    p.add_argument("--days", type=float, nargs="+", default=None, metavar="DAY",
                   help="time points (default: the end of the run, sim.days)")  # fmt: skip
    p.add_argument(
        "--window",
        type=float,
        default=0.0,
        metavar="DAYS",
        help=f"average each readout over (day - DAYS, day] {window_help}",
    )
    p.add_argument("--launcher", nargs="*", action="extend", default=[], metavar="OVERRIDE",
                   help="Hydra launcher overrides, e.g. hydra/launcher=joblib "
                        "hydra.launcher.n_jobs=4, or hydra/launcher=slurm")  # fmt: skip
    p.add_argument("--no-run", action="store_true",
                   help="run nothing: analyse the jobs already in OUT/runs")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="do not stream the sweep's output")


def check_common(prog: str, args: argparse.Namespace, reserved: Sequence[str]) -> tuple:
    """Shared checks of abm-replicates and abm-sensitivity: (config overrides, Hydra
    overrides, composed config, days, readouts). Exits with one line on bad input."""
    from abm.config import compose
    from abm.errors import ConfigError
    from abm.sweep.launch import known_readouts, split_overrides

    overrides, hydra = split_overrides([*args.overrides, *args.launcher])
    for item in overrides:
        if "=" not in item:
            fail(prog, f"{item!r}: expected a config override KEY=VALUE")
        key = item.split("=", 1)[0].lstrip("+~")
        if key in reserved or key.startswith(tuple(f"{r}." for r in reserved)):
            fail(prog, f"{item}: {key} is set by {prog} itself")
    for item in hydra:
        if item.split("=", 1)[0] in ("hydra.sweep.dir", "hydra.run.dir"):
            fail(prog, f"{item}: the sweep folder is --out/runs")
    try:
        cfg = compose(overrides, warn=False)
    except ConfigError as exc:
        fail(prog, str(exc))
    sim_days = float(cfg.sim.days)
    days = sorted(set(args.days)) if args.days else [sim_days]
    for day in days:
        if not 0 < day <= sim_days + 1e-9:
            fail(prog, f"--days {day:g}: must lie in (0, sim.days={sim_days:g}]")
    if not args.window >= 0:
        fail(prog, f"--window {args.window:g}: must be >= 0 days")
    known = known_readouts()
    for m in args.metrics:
        if m not in known:
            import difflib

            near = difflib.get_close_matches(m, known, n=3)
            hint = f"did you mean {' or '.join(near)}?" if near else f"valid: {', '.join(known)}"
            fail(prog, f"--metrics {m}: not a readout; {hint}")
    check_out_folder(prog, Path(args.out), writable=False)
    return overrides, hydra, cfg, days, list(dict.fromkeys(args.metrics))
