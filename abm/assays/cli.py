"""abm-assay: in-silico co-culture assays (a dish, not a joint) with the joint model's rules.

Data flow: ``NAME`` (conf/assays/NAME.yaml, ``all``, or a .yaml path) + ``KEY=VALUE`` config
overrides (``biology.*`` and any other key of abm-run) -> :func:`abm.assays.run.run_assay`
(one dish per condition, paired by seed) -> ``OUT/<name>.csv`` (one row per condition),
``OUT/<name>_timecourse.csv`` and ``OUT/<name>.png`` (written atomically), and one line per
condition printed.

    abm-assay all --out assays/
    abm-assay coculture_tcell --out assays/ biology.fields.PGE2.decay=0.005 --days 3

Bad input (an unknown assay, a bad override, an unwritable --out, a bad --days) is one line
``abm-assay: error: ...`` with exit code 2, before any assay runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from abm.cli.common import OneLineParser, check_out_folder, fail, parse_args

PROG = "abm-assay"
SUMMARY = {
    "tcell": ("effector_proliferation_suppression_pct", "%"),
    "macrophage": ("medium_IL10_pg_ml", "pg/mL IL-10"),
    "fls": ("medium_IL6_pg_ml", "pg/mL IL-6"),
    "chondrocyte": ("medium_PROT_pg_ml", "pg/mL PROT"),
}


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="assay(s): a name in conf/assays, 'all', or a protocol .yaml file",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides (as abm-run), e.g. biology.msc.secretion.PGE2=6000",
    )
    p.add_argument("--out", required=True, help="folder for <name>.csv, _timecourse.csv, .png")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the config's seed)")
    p.add_argument(
        "--days", type=float, default=None, help="assay length in days (default: each protocol's)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    from abm.assays.protocol import available, load_protocol
    from abm.config import compose
    from abm.errors import ConfigError

    args = parse_args(parser(), argv)
    names = available() if "all" in args.names else list(dict.fromkeys(args.names))
    try:
        protocols = [load_protocol(n) for n in names]
    except ConfigError as exc:
        fail(PROG, str(exc))
    for item in args.overrides:
        if "=" not in item:
            fail(PROG, f"{item!r}: expected a config override KEY=VALUE")
    try:
        compose(args.overrides, warn=False)
    except ConfigError as exc:
        fail(PROG, str(exc))
    if args.days is not None and not args.days > 0:
        fail(PROG, f"--days {args.days:g}: must be > 0")
    if args.seed is not None and args.seed < 0:
        fail(PROG, f"--seed {args.seed}: must be >= 0")
    out = Path(args.out)
    check_out_folder(PROG, out)

    from abm.assays.run import run_assay, write_result

    for protocol in protocols:
        result = run_assay(
            protocol, args.overrides, seed=args.seed, days=args.days, progress=not args.quiet
        )
        paths = write_result(result, out)
        col, unit = SUMMARY[protocol.target]
        print(f"{protocol.name}: {protocol.title}")
        for _, row in result.table.iterrows():
            print(f"  {row['condition']:<18} {col} = {row[col]:.4g} {unit}")
        print(f"  -> {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":  # pragma: no cover
    main()
