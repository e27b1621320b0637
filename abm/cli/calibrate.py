"""abm-calibrate: ABC-SMC calibration of the model's parameters against the targets table.

Data flow: ``--model toy`` (two parameters with a known answer, pseudo-targets:
:mod:`abm.calibrate.toy`) or ``--model joint`` (the joint model's untreated arms with
``KEY=VALUE`` overrides + ``--param`` keys over their declared plausible ranges or ``--range``:
:mod:`abm.calibrate.joint`; targets from ``--targets``, default ``conf/calibration/targets.csv``)
-> the targets it can compute (the others listed and left out) -> one timed evaluation and a
cost estimate -> ABC-SMC through pyabc (:mod:`abm.calibrate.abc`), its history in
``OUT/history.db`` -> ``OUT/posterior.csv``, ``posterior_summary.csv``, ``predictive.csv``,
``corner.png``, ``calibrated.yaml`` (posterior medians as config overrides, with the run id).

    abm-calibrate --model toy --out cal/toy --population 200 --generations 6
    abm-calibrate --model joint --out cal/joint --param biology.macrophage.activation_rate \\
        --param biology.fls.secretion.IL6 --population 50 --generations 4 --jobs 2 \\
        lattice.shape=[148,64] sim.spinup_days=60 sim.days=30 sim.dt_min=10 sim.field_substeps=5

Running the same command again with the same ``--out`` continues the stored run up to
``--generations`` (more generations: raise it); a different request aimed at the same
``--out`` is refused unless ``--force-new``. Bad input is one line ``abm-calibrate: error:
...`` with exit code 2 before any simulation; a first simulation that fails, exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path

from abm.cli.common import (
    EXIT_FAILED,
    OneLineParser,
    check_out_folder,
    fail,
    parse_args,
)

PROG = "abm-calibrate"
MODELS = ("toy", "joint")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides of every joint-model run (as abm-run), e.g. "
        "lattice.shape=[148,64] sim.spinup_days=60 sim.days=30",
    )
    p.add_argument(
        "--model",
        required=True,
        choices=MODELS,
        help="toy (two parameters, known answer, seconds) or joint (the joint "
        "model's untreated OA and healthy arms)",
    )
    p.add_argument("--out", required=True, help="the calibration folder (history.db, outputs)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY",
        help="a parameter to calibrate (dotted key, e.g. "
        "biology.macrophage.activation_rate); repeat for each. The toy's are "
        "toy.production and toy.decay",
    )
    p.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="KEY=LO:HI",
        help="a prior range other than the declared plausible one (log-uniform when HI/LO > 10)",
    )
    p.add_argument(
        "--targets",
        default=None,
        metavar="FILE",
        help="the targets table (joint; default conf/calibration/targets.csv)",
    )
    p.add_argument(
        "--population",
        type=int,
        default=100,
        metavar="N",
        help="particles per generation (default 100)",
    )
    p.add_argument(
        "--generations",
        type=int,
        default=6,
        metavar="G",
        help="generations OUT should hold when done (default 6); run again with a "
        "larger G to continue",
    )
    p.add_argument(
        "--min-epsilon",
        type=float,
        default=0.0,
        metavar="E",
        help="stop once epsilon <= E (default 0: every calibrate target inside its band)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        metavar="N",
        help="worker processes (pyabc's MulticoreEvalParallelSampler; default 2)",
    )
    p.add_argument(
        "--predictive",
        type=int,
        default=20,
        metavar="N",
        help="posterior draws simulated for predictive.csv (default 20; 0: none)",
    )
    p.add_argument(
        "--assays",
        action="store_true",
        help="joint: also compute the in-silico co-culture targets (C3, C4, Manferdini; "
        "abm.assays; ~5-10 s more per particle)",
    )
    p.add_argument(
        "--emulator",
        type=int,
        default=0,
        metavar="N",
        help="first simulate an N-point design (OUT/design/, resumable, can grow), screen the "
        "parameters (PRCC), fit Gaussian-process emulators of the readouts on the influential "
        "ones and run the ABC on the emulators (the rest fixed at their config values); the "
        "predictive check re-simulates with the real model (default 0: ABC on the model)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the ABC sampler and the toy's noise (default 0; the joint "
        "model's seeds come from the seed override)",
    )
    p.add_argument(
        "--force-new",
        action="store_true",
        help="OUT holds another calibration: move it to OUT/previous-<time>/ and start afresh",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _check_numbers(args: argparse.Namespace) -> None:
    if args.population < 2:
        fail(PROG, f"--population {args.population}: need >= 2 particles")
    if args.generations < 1:
        fail(PROG, f"--generations {args.generations}: need >= 1")
    if args.jobs < 1:
        fail(PROG, f"--jobs {args.jobs}: need >= 1")
    if not (args.min_epsilon >= 0 and math.isfinite(args.min_epsilon)):
        fail(PROG, f"--min-epsilon {args.min_epsilon:g}: need a number >= 0")
    if args.predictive < 0:
        fail(PROG, f"--predictive {args.predictive}: need >= 0")
    if args.seed < 0:
        fail(PROG, f"--seed {args.seed}: need >= 0")
    if args.emulator < 0 or 0 < args.emulator < 8:
        fail(PROG, f"--emulator {args.emulator}: need 0 (off) or a design of >= 8 points")
    out = Path(args.out)
    check_out_folder(PROG, out)


def _toy(args: argparse.Namespace, ranges: dict) -> tuple:
    from abm.calibrate import toy
    from abm.sweep.sensitivity import LOG_SPAN, Factor

    if args.overrides:
        fail(PROG, f"{args.overrides[0]}: KEY=VALUE overrides are for --model joint")
    if args.targets:
        fail(PROG, "--targets is for --model joint (the toy makes its own pseudo-targets)")
    if args.assays:
        fail(PROG, "--assays is for --model joint (the toy has no co-culture assays)")
    for key in [*args.param, *ranges]:
        if key not in toy.PRIOR:
            fail(PROG, f"--param/--range {key}: the toy's parameters are {' and '.join(toy.PRIOR)}")
    fs = []
    for key, (lo, hi) in toy.PRIOR.items():
        origin = "declared"
        if key in ranges:
            (lo, hi), origin = ranges[key], "--range"
            if not (0 < lo < hi and math.isfinite(hi)):
                fail(PROG, f"--range {key}={lo:g}:{hi:g}: need 0 < LO < HI")
        fs.append(Factor(key, float(lo), float(hi), hi / lo > LOG_SPAN, origin))
    targets = toy.toy_targets()
    return fs, targets, toy.ToySimulator(targets, seed=args.seed), dict(toy.TRUE)


def _joint(args: argparse.Namespace, ranges: dict) -> tuple:
    from abm.calibrate.abc import CalibrationError, calibration_factors
    from abm.calibrate.joint import RESERVED, JointSimulator
    from abm.calibrate.targets import TargetsError, load_targets
    from abm.config import compose
    from abm.errors import ConfigError

    for item in args.overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in RESERVED or key.startswith(tuple(f"{r}." for r in RESERVED)):
            fail(
                PROG,
                f"{item}: {key} is set by {PROG} itself (it runs the untreated "
                "scenarios the targets name)",
            )
        if key.startswith("hydra"):
            fail(PROG, f"{item}: no Hydra overrides (abm-calibrate runs the model in-process)")
    if not args.param:
        fail(
            PROG,
            "--param: give the parameters to calibrate, e.g. --param "
            "biology.macrophage.activation_rate (docs/parameters.md lists them)",
        )
    for key in args.param:
        if any(item.split("=", 1)[0].lstrip("+~") == key for item in args.overrides):
            fail(PROG, f"--param {key}: also given as an override; it is calibrated, not set")
    try:
        targets = load_targets(args.targets)
    except TargetsError as exc:
        fail(PROG, str(exc))
    try:
        cfg = compose(args.overrides, warn=False)
        fs = calibration_factors(args.param, ranges, cfg)
        sim = JointSimulator(targets, args.overrides, assays=args.assays)
    except (ConfigError, CalibrationError) as exc:
        fail(PROG, str(exc))
    return fs, targets, sim, None


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``abm-calibrate``."""
    from abm.calibrate import abc
    from abm.sweep.sensitivity import parse_range

    args = parse_args(parser(), argv)
    _check_numbers(args)
    try:
        ranges = dict(parse_range(r) for r in args.range)
    except ValueError as exc:
        fail(PROG, str(exc))
    for key in ranges:
        if args.model == "joint" and key not in args.param:
            fail(PROG, f"--range {key}: not one of the --param keys")
    fs, targets, simulator, truth = (_toy if args.model == "toy" else _joint)(args, ranges)

    skipped = {t.id: why for t in targets if (why := simulator.why_not(t)) is not None}
    used = [t for t in targets if t.role == "calibrate" and t.id not in skipped]
    if not used:
        fail(
            PROG,
            f"none of the calibrate targets can be computed by --model {args.model} "
            f"({len(skipped)} skipped)",
        )
    _say_targets(targets, skipped)
    for line in getattr(simulator, "clipped", list)():
        print(f"note: {line}")
    print(f"parameters ({len(fs)}):")
    for f in fs:
        print(f"  {f.describe()}")

    out = Path(args.out).absolute()
    model = abc.ParticleModel(simulator, fs, [t.id for t in used])
    jobs_abc = args.jobs
    if args.emulator:
        _check_emulated_out(args, out, used, targets, skipped, fs)
        fs, model, extra = _emulate(args, fs, targets, skipped, used, simulator, out)
        jobs_abc = 1  # an emulator call takes milliseconds: forked workers would cost more
    req = abc.request(
        args.model + ("+emulator" if args.emulator else ""),
        fs,
        args.population,
        used,
        args.overrides,
        args.seed,
    )
    if args.emulator:
        req["emulator"] = extra
    try:
        run = abc.out_state(out, req, args.force_new)
    except abc.CalibrationError as exc:
        fail(PROG, str(exc))
    done, eps = (0, math.inf) if run is None else abc.generations_done(out, int(run["abc_id"]))
    out.mkdir(parents=True, exist_ok=True)
    _write_targets(out / abc.TARGETS_USED, targets, skipped)
    if run is not None:
        print(
            f"{PROG}: continuing run {run['run_id']} in {out / abc.DB} ({done} generation(s) "
            f"stored, epsilon {eps:.3g})"
        )

    if done < args.generations and eps > args.min_epsilon:
        if not args.emulator:
            _first_evaluation(simulator, fs, used, args, args.generations - done)
        try:
            with _sigterm_as_interrupt():
                run = abc.run_abc(
                    out,
                    model,
                    fs,
                    used,
                    population=args.population,
                    generations=args.generations,
                    min_epsilon=args.min_epsilon,
                    jobs=jobs_abc,
                    run=run,
                    req=req,
                    seed=args.seed,
                    progress=not args.quiet,
                )
        except KeyboardInterrupt:
            _interrupted(out)
    else:
        print(
            f"{PROG}: {out} already holds {done} generation(s) (epsilon {eps:.3g}); "
            "nothing to run: writing the outputs"
        )
        run.update(generations=done, epsilon=eps)
    stop = (
        "epsilon reached --min-epsilon"
        if run["epsilon"] <= args.min_epsilon
        else f"{run['generations']} generation(s)"
    )
    print(
        f"run {run['run_id']}: {stop}; epsilon {run['epsilon']:.3g}; "
        f"{run.get('evaluations', '?')} evaluations in all"
    )
    if args.model == "joint":  # the predictive check adds the therapy arms (hold-outs)
        from abm.calibrate.joint import JointSimulator

        simulator = JointSimulator(targets, args.overrides, assays=args.assays, therapy=True)
        skipped = {t.id: why for t in targets if (why := simulator.why_not(t)) is not None}
    _outputs(out, run, fs, targets, skipped, simulator, truth, args)


def _check_emulated_out(args, out: Path, used, targets, skipped, fs) -> None:
    """Before the design is simulated: refuse (one line, exit 2) an OUT whose stored
    calibration differs in anything but what the screen decides (the factors)."""
    import json

    from abm.calibrate import abc
    from abm.calibrate import emulator as em
    from abm.sweep.outdir import request_diff

    if args.force_new or not (out / abc.REQUEST).is_file():
        return
    computed = [t for t in targets if t.id not in skipped]
    dreq = em.design_request(args.model, fs, computed, args.overrides, args.seed)
    now = abc.request(args.model + "+emulator", [], args.population, used, args.overrides,
                      args.seed)  # fmt: skip
    now["emulator"] = {"design": int(args.emulator), "design_request": dreq}
    try:
        old = json.loads((out / abc.REQUEST).read_text())
    except (OSError, ValueError):
        old = {}
    old.pop("factors", None)
    now.pop("factors", None)
    if isinstance(old.get("emulator"), dict):
        old["emulator"].pop("screened_out", None)
    diff = request_diff(old, now)
    if diff:
        fail(
            PROG,
            f"--out {out} holds another calibration (it differs in: {', '.join(diff)}); give "
            f"another --out, or --force-new to move it to {out}/previous-<time>/ and start afresh",
        )


def _emulate(args, fs, targets, skipped, used, simulator, out: Path) -> tuple:
    """``--emulator N``: the design (simulated, resumable), the screen and the emulators;
    returns (the influential factors, the emulated model for pyabc, the request's
    ``emulator`` entry). Bad or conflicting input: one line, exit 2."""
    from abm.calibrate import emulator as em
    from abm.sweep.outdir import move_aside, write_csv

    if args.emulator < len(fs) + 3:
        fail(
            PROG,
            f"--emulator {args.emulator}: the screen's PRCC over {len(fs)} parameters needs at "
            f"least {len(fs) + 3} design points (4-5 per parameter fit the emulators well)",
        )
    computed = [t for t in targets if t.id not in skipped]
    dreq = em.design_request(args.model, fs, computed, args.overrides, args.seed)
    folder = out / em.DESIGN_DIR
    try:
        em.design_state(folder, dreq)
    except em.DesignError as exc:
        if not args.force_new:
            fail(PROG, str(exc))
        print(f"moved the previous design to {move_aside(out, [folder])}")
    t0 = time.perf_counter()
    print(f"design: {args.emulator} points of the real model in {folder} ({args.jobs} worker(s))")
    try:
        with _sigterm_as_interrupt():
            table = em.run_design(
                simulator, fs, computed, dreq, folder, args.emulator, jobs=args.jobs,
                progress=not args.quiet,
            )  # fmt: skip
    except KeyboardInterrupt:
        held = em.design_state(folder, dreq)
        fail(
            PROG,
            f"interrupted: {folder / em.DESIGN} holds {0 if held is None else len(held)} "
            f"design point(s); run the same command again to continue",
            130,
        )
    failed = table[table["error"].notna()]
    print(
        f"design: {len(table)} points ({len(failed)} failed), median "
        f"{table['seconds'].median():.1f} s a point; {time.perf_counter() - t0:.0f} s this run"
    )
    scr = em.screen(table, fs, computed, seed=args.seed)
    write_csv(folder / em.SCREEN, scr)
    em.screen_chart(scr, folder / em.SCREEN_PNG)
    infl = em.influential(scr, fs)
    print(em.screen_text(scr, fs))
    if not infl:
        fail(
            PROG,
            f"screen: no --param is influential on a calibrate target over the {len(table)}-point "
            f"design ({folder / em.SCREEN}); grow the design (--emulator) or change --param",
            EXIT_FAILED,
        )
    fixed = [f.key for f in fs if f not in infl]
    emu = em.Emulator(table, infl, computed, seed=args.seed)
    missing = [t.id for t in used if t.id not in emu.gps]
    if missing:
        fail(
            PROG,
            f"emulator: too few finite design readouts for {', '.join(missing)} "
            f"({folder / em.DESIGN}); grow the design",
            EXIT_FAILED,
        )
    diag = emu.diagnostics(computed)
    write_csv(folder / em.EMULATOR, diag)
    em.emulator_chart(emu, computed, folder / em.EMULATOR_PNG)
    print("emulators (log10 readouts; leave-one-out):")
    for _, r in diag.iterrows():
        print(
            f"  {r['target']} ({r['role']}): RMSE {r['loo_rmse_log10']:.3f} vs spread "
            f"{r['spread_log10']:.3f}, R2 {r['loo_r2']:.2f}, {100 * r['loo_within_95']:.0f}% "
            f"inside their 95% interval"
        )
    extra = {"design": int(args.emulator), "design_request": dreq, "screened_out": fixed}
    return infl, em.EmulatedModel(emu, [t.id for t in used], args.seed), extra


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a cluster's time limit, ``scancel``) raises KeyboardInterrupt in this process,
    as Ctrl-C does; forked workers that get it just end."""
    import os
    import signal

    main_pid = os.getpid()

    def stop(signum: int, _frame: object) -> None:
        if os.getpid() != main_pid:  # a forked worker being ended: end quietly
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        raise KeyboardInterrupt(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(out: Path) -> None:
    """Ctrl-C or SIGTERM during the ABC: say what is stored and how to continue (exit 130)."""
    import json

    from abm.calibrate import abc

    stored = "no complete generation"
    try:
        run = json.loads((out / abc.RUN).read_text())
        n, _ = abc.generations_done(out, int(run["abc_id"]))
        stored = f"{n} complete generation(s) of run {run['run_id']}"
    except (OSError, ValueError, KeyError):
        pass
    fail(
        PROG,
        f"interrupted: {out / abc.DB} holds {stored}; run the same command again to "
        "continue (the generation under way is redone)",
        130,
    )


def _say_targets(targets: Sequence, skipped: dict) -> None:
    groups = {
        "in the distance (calibrate)": [],
        "held out (predictive check only)": [],
        "inputs (shown, never fitted)": [],
        "skipped (not computed by this model)": [],
    }
    names = list(groups)
    for t in targets:
        if t.id in skipped:
            groups[names[3]].append(f"{t.id}: {skipped[t.id]}")
        else:
            g = {"calibrate": 0, "hold_out": 1, "input": 2}[t.role]
            groups[names[g]].append(t.describe())
    for name, lines in groups.items():
        if lines:
            print(f"targets {name}: {len(lines)}")
            for line in lines:
                print(f"  {line}")


def _write_targets(path: Path, targets: Sequence, skipped: dict) -> None:
    import pandas as pd

    from abm.sweep.outdir import write_csv

    rows = []
    for t in targets:
        lo, hi = t.band
        rows.append(
            {
                "id": t.id,
                "readout": t.readout,
                "arm": t.arm,
                "window_days": t.window_text(),
                "kind": t.kind,
                "unit": t.unit,
                "band_lo": lo,
                "band_hi": hi,
                "log10_tolerance": t.tol,
                "role": t.role,
                "used": "skipped: " + skipped[t.id]
                if t.id in skipped
                else ("distance" if t.role == "calibrate" else "predictive only"),
                "source": t.source,
            }
        )
    write_csv(path, pd.DataFrame(rows))


def _first_evaluation(simulator, fs, used, args: argparse.Namespace, generations: int) -> None:
    """Time one evaluation at the centre of the prior and print the cost estimate; a failure
    or a non-finite readout is one line, exit 1."""
    from abm.calibrate.abc import config_values
    from abm.calibrate.distance import distance

    centre = config_values(fs, {f.key: 0.5 * (f.bounds[0] + f.bounds[1]) for f in fs})
    t0 = time.perf_counter()
    try:
        y = simulator(centre)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(PROG, f"the first simulation (prior centre {centre}) failed: {msg}", EXIT_FAILED)
    sec = time.perf_counter() - t0
    bad = [t.id for t in used if not math.isfinite(float(y.get(t.id, math.nan)))]
    if bad:
        fail(PROG, f"the first simulation gave no finite value for {', '.join(bad)}", EXIT_FAILED)
    n = generations * args.population
    low = n * sec / args.jobs
    print(
        f"one evaluation took {sec:.2f} s (distance {distance(used, y):.3g} at the prior "
        f"centre); {generations} generation(s) x {args.population} particles = at least {n} "
        f"evaluations, typically 2-10x more as epsilon falls: >= {_hms(low)} to "
        f"~{_hms(10 * low)} on {args.jobs} worker(s)"
    )


def _design_spread(out: Path, targets) -> dict | None:
    """The 2.5-97.5% range of every target's readout over OUT's design (the prior
    predictive), or None without a design."""
    import numpy as np
    import pandas as pd

    from abm.calibrate import emulator as em

    path = out / em.DESIGN_DIR / em.DESIGN
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    spread = {}
    for t in targets:
        col = f"readout:{t.id}"
        if col in table:
            y = table[col].to_numpy(float)
            y = y[np.isfinite(y)]
            if len(y):
                spread[t.id] = tuple(np.quantile(y, [0.025, 0.975]))
    return spread


def _hms(sec: float) -> str:
    if sec < 120:
        return f"{sec:.0f} s"
    if sec < 7200:
        return f"{sec / 60:.0f} min"
    return f"{sec / 3600:.1f} h"


def _outputs(out: Path, run: dict, fs, targets, skipped, simulator, truth, args) -> None:
    from abm.calibrate import abc
    from abm.sweep.outdir import write_csv, write_text

    post = abc.last_population(out, int(run["abc_id"]), fs)
    write_csv(out / abc.POSTERIOR, post)
    summ = abc.summary(post, fs, truth)
    write_csv(out / abc.SUMMARY, summ)
    abc.corner(post, fs, out / abc.CORNER, truth)
    write_text(out / abc.CALIBRATED, abc.calibrated_yaml(summ, run, args.model, args.overrides))
    pred = abc.predictive(
        simulator,
        post,
        fs,
        targets,
        skipped,
        n=args.predictive,
        jobs=args.jobs,
        seed=args.seed,
        progress=not args.quiet,
        draws_path=out / abc.PREDICTIVE_DRAWS,
    )
    write_csv(out / abc.PREDICTIVE, pred)
    abc.predictive_chart(pred, out / abc.PREDICTIVE_PNG, _design_spread(out, targets))
    cols = ["parameter", "median", "q2.5", "q97.5", "ci_width_of_prior"]
    if truth is not None:
        cols += ["true", "true_in_ci"]
    print("posterior (weighted median and 95% interval; width as a fraction of the prior's):")
    print(summ[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    done = pred[pred["n_draws"] > 0]
    if len(done):
        print(f"posterior-predictive check ({args.predictive} draws; median vs band):")
        for _, r in done.iterrows():
            print(
                f"  {r['id']} ({r['role']}): {r['q50']:.3g} [{r['q2.5']:.3g}, "
                f"{r['q97.5']:.3g}] {r['unit']}: {r['verdict']}"
            )
    print(f"wrote {out}/{{{', '.join(abc.OUTPUTS)}}}")


if __name__ == "__main__":
    main()
