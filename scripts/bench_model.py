"""Model-scale benchmark report: whole-model throughput, default 2D run time, peak RSS.

Data flow: cell cases of ``abm.bench.cases`` (Hydra overrides, densities scaled from the
composed scenario) -> ``abm.JointModel`` steps timed phase by phase through the model's phase
hook (``abm.bench.suite.bench_cells``), optional cProfile of the ~1e5-cell case, and optional
``abm-run`` child processes under ``/usr/bin/time -v`` (wall time, peak RSS) -> a printed
summary and a JSON file. All timings are medians of repeated steps.

    python scripts/bench_model.py                       # 3D ~1e4, ~1e5, ~1e6 cells (numpy)
    python scripts/bench_model.py --profile             # + cProfile of the ~1e5 case
    python scripts/bench_model.py --rss                 # + peak RSS: 2D (1 day) and 3D ~1e5
    python scripts/bench_model.py --default-2d          # + abm-run sim.days=28 therapy=msc

(a) cell-steps/s = cells / median step time, for all five cell types (MSCs injected at t = 0),
    with the step split into the lattice solver (the model's ``transport`` phase) and the rest
    ("rules": sensing, rules, moves, secretion, matrix, metrics), and the median of every
    phase of the step (sense, decide, act, transport, tissue, events, observe);
(b) the default 2D scenario (``abm-run sim.days=28 therapy=msc``: observers and files
    included) as a child process, and a model-only projection from its median step;
(c) peak RSS of child ``abm-run`` processes: the default 2D run and a 3D 128^3 ~1e5-cell run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
from pathlib import Path

from abm.bench.cases import CELL_CASES, MSC_T0, CellCase, build_model, model_overrides
from abm.bench.machine import check_backends, machine_info
from abm.bench.processes import abm_run_measured
from abm.bench.suite import bench_cells
from abm.errors import BenchError

DEFAULT_CASES = ("3d-1e4", "3d-1e5", "3d-1e6")
DEFAULT_2D = CellCase("2d-default", MSC_T0)  # the default lattice and densities
DEFAULT_2D_RUN = ("sim.days=28", "therapy=msc")
STEPS_PER_28_DAYS = 28 * 1440 // 2  # at the default dt_min = 2
RSS_3D_RUN = ("sim.days=0.05", "output.snapshot_every_min=36")  # after the 3d-1e5 overrides
RSS_2D_RUN = ("therapy=msc", "sim.days=1")


def profile_case(case: CellCase, backend: str, steps: int, top: int = 20) -> str:
    """cProfile ``steps`` model steps of ``case`` (after one warm-up step); top by tottime.

    Only the main thread is profiled: the solver's worker threads show up as the waiting
    main thread's time inside ``kernels.diffusion``.
    """
    model, _ = build_model(model_overrides(case), backend)
    model.step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        model.step()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def _fmt_cells(r: dict) -> str:
    phases = ", ".join(f"{name} {1e3 * s:.1f}" for name, s in r["phase_median_s"].items())
    return (
        f"{r['case']:<10} {r['n_cells']:>9.0f} cells  {1e3 * r['median_s']:8.1f} ms/step  "
        f"{r['cell_steps_per_s'] / 1e6:6.3f} M cell-steps/s  solver {1e3 * r['solver_s']:7.1f} ms "
        f"({100 * r['solver_fraction']:.0f}%)  rules {1e3 * r['rules_s']:7.1f} ms "
        f"({r['rules_cell_steps_per_s'] / 1e6:.3f} M cell-steps/s)  "
        f"build {r['build_s']:.1f} s  n={r['timed_steps']}  peak RSS so far "
        f"{r['process_peak_rss_mb']:.0f} MB\n  phases (ms): {phases}"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cases",
        nargs="*",
        default=list(DEFAULT_CASES),
        choices=[*CELL_CASES["full"], *CELL_CASES["small"]],
        help="cell cases of abm.bench.cases (default: 3D ~1e4, ~1e5, ~1e6)",
    )
    p.add_argument("--backend", default="numpy", help="numpy or cupy")
    p.add_argument("--repeats", type=int, default=7, help="timed steps per case (median)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=30.0,
        help="stop timing a case after this many seconds of steps (>= 3 steps)",
    )
    p.add_argument("--profile", action="store_true", help="cProfile the ~1e5-cell case")
    p.add_argument("--profile-steps", type=int, default=5)
    p.add_argument(
        "--rss",
        action="store_true",
        help="peak RSS of abm-run children: 2D default (1 day) and 3D ~1e5 cells",
    )
    p.add_argument(
        "--default-2d",
        action="store_true",
        help="wall time + peak RSS of abm-run sim.days=28 therapy=msc (minutes)",
    )
    p.add_argument("--out", default="outputs/bench/bench_model.json", help="JSON report")
    args = p.parse_args(argv)
    try:
        (backend,) = check_backends([args.backend])
    except BenchError as exc:
        p.exit(2, f"bench_model.py: error: {exc}\n")
    cases = {**CELL_CASES["small"], **CELL_CASES["full"]}
    report: dict = {"machine": machine_info([backend]), "backend": backend, "cells": []}

    print(f"# whole model steps on {backend} (medians of up to {args.repeats} steps)")
    for name in [DEFAULT_2D.name, *args.cases]:
        case = DEFAULT_2D if name == DEFAULT_2D.name else cases[name]
        r = bench_cells(case, backend, args.repeats, budget_s=args.budget_s)
        report["cells"].append(r)
        print(_fmt_cells(r), flush=True)
        if case is DEFAULT_2D:
            proj = r["median_s"] * STEPS_PER_28_DAYS
            report["default_2d_model_only_projection_s"] = proj
            print(
                f"  -> default 2D, 28 days, model steps only: {proj:.0f} s projected "
                f"({STEPS_PER_28_DAYS} steps x median step)"
            )

    if args.profile:
        steps = args.profile_steps
        text = profile_case(cases["3d-1e5"], backend, steps)
        report["profile_3d_1e5"] = text
        print(f"# cProfile, 3d-1e5, {steps} steps (main thread only)\n{text}")

    children = []
    if args.default_2d:
        children.append(("default-2d-28d", DEFAULT_2D_RUN, 3600))
    elif args.rss:
        children.append(("default-2d-1d", RSS_2D_RUN, 900))
    if args.rss:
        children.append(("3d-1e5-rss", (*model_overrides(cases["3d-1e5"]), *RSS_3D_RUN), 900))
    report["children"] = []
    for label, overrides, timeout in children:
        print(f"# abm-run {' '.join(overrides)}", flush=True)
        res = abm_run_measured(overrides, timeout=timeout)
        res["label"] = label
        report["children"].append(res)
        rss = res["peak_rss_mb"]
        print(
            f"  {label}: exit {res['returncode']}, wall {res['wall_s']:.1f} s, peak RSS "
            f"{'?' if rss is None else f'{rss:.0f}'} MB ({res['rss_method']})",
            flush=True,
        )
        if res["returncode"] != 0:
            print(res["stderr_tail"], file=sys.stderr)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
