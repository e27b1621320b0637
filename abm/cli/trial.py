"""abm-trial: a virtual trial - a virtual population, its untreated baselines, a plausibility
filter, every arm for the accepted patients (paired by patient and seed), and a report.

Data flow: ``--config`` (default ``conf/trial/default.yaml``) + ``trial.KEY=VALUE`` ->
:mod:`abm.trial.population` (checked declarations; the population, ``OUT/population.csv``; the
designs ``OUT/baseline.csv`` and ``OUT/arms.csv``, config values only, with ``*_map.csv``: row ->
patient, arm, seed; ``OUT/trial.yaml`` and ``OUT/request.json`` what was asked) -> phase 1:
``abm-run -m design.file=OUT/baseline.csv design.row=range(0,N)`` through
:func:`abm.sweep.launch.run_sweep` (jobs under ``OUT/runs/baseline``: the cached spin-up plus
``trial.baseline_days``) -> the plausibility filter -> phase 2: the accepted patients' rows of
``OUT/arms.csv`` (jobs under ``OUT/runs/arms``, ``trial.followup_days``; they branch from the
same cached spin-ups) -> :mod:`abm.trial.analysis` (tables as CSV, PNG figures) ->
:mod:`abm.trial.report` (``OUT/report.md``, ``OUT/report.html``).

    abm-trial --out trials/pilot                          # the default trial (~1 h on 2 cores)
    abm-trial --out trials/big trial.size=64 --launcher hydra/launcher=slurm \\
        hydra.launcher.partition=NAME                     # on a cluster
    abm-trial --no-run --out trials/pilot                 # analyse again, run nothing

Running the same command again reuses the designs and runs only the unfinished jobs (any
launcher); a different request aimed at the same ``--out`` is refused unless ``--force-new``
(the old files then move to ``OUT/previous-<time>/``); one that differs only in
``trial.analysis`` re-analyses the stored runs. Bad input is one line
``abm-trial: error: ...`` with exit code 2 before any run; failed jobs are listed and leave their
patient-arm without a verdict (exit code 1 at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abm.cli.common import (
    EXIT_FAILED,
    OneLineParser,
    check_out_folder,
    fail,
    parse_args,
    writable_error,
)
from abm.sweep.outdir import write_csv, write_text

PROG = "abm-trial"
REQUEST, SPEC = "request.json", "trial.yaml"
POPULATION = "population.csv"
BASELINE, BASELINE_MAP, ARMS, ARMS_MAP = (
    "baseline.csv",
    "baseline_map.csv",
    "arms.csv",
    "arms_map.csv",
)
DESIGN_FILES = (POPULATION, BASELINE, BASELINE_MAP, ARMS, ARMS_MAP, SPEC, REQUEST)
RESULT_FILES = ("outcomes.csv", "patients.csv", "responder_rates.csv", "predictors.csv",
                "effusion.csv", "report.md", "report.html", "waterfall.png",
                "responder_rate_vs_dose.png", "predictors.png", "effusion.png", "benefits.csv",
                "benefits.png", "predictors_benefits.png")  # fmt: skip


def default_config() -> Path:
    """``conf/trial/default.yaml`` of the installed package (the repository's conf/)."""
    try:
        from importlib.resources import files

        path = Path(str(files("abm.conf") / "trial" / "default.yaml"))
        if path.is_file():
            return path
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "conf" / "trial" / "default.yaml"


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG, description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1]
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="trial.KEY=VALUE changes the trial config (e.g. trial.seeds=2); any other "
                        "is a config override of every run (as abm-run, e.g. lattice.dx_um=10); "
                        "hydra.* ones go to Hydra")  # fmt: skip
    p.add_argument("--config", default=None, metavar="YAML",
                   help=f"the trial declaration (default: {default_config()})")  # fmt: skip
    p.add_argument("--out", required=True, help="the trial folder (jobs under OUT/runs)")
    p.add_argument("--size", type=int, default=None, metavar="N",
                   help="virtual patients (= trial.size; default: the config's)")  # fmt: skip
    p.add_argument("--launcher", nargs="*", action="extend", default=[], metavar="OVERRIDE",
                   help="Hydra launcher overrides, e.g. hydra/launcher=joblib "
                        "hydra.launcher.n_jobs=2, or hydra/launcher=slurm")  # fmt: skip
    p.add_argument("--no-run", action="store_true",
                   help="run nothing: analyse the jobs already in OUT (the trial stored "
                        "there)")  # fmt: skip
    p.add_argument("--force-new", action="store_true",
                   help="OUT holds another trial: move it to OUT/previous-<time>/ and start "
                        "afresh")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="do not stream the sweeps' output")
    return p


# -- checks before any work -------------------------------------------------------------------
def _split(args: argparse.Namespace) -> tuple[list[str], list[str], list[str]]:
    """(trial overrides, run config overrides, Hydra overrides)."""
    from abm.sweep.launch import split_overrides

    trial = [o for o in args.overrides if o.split("=", 1)[0].startswith("trial.")]
    rest = [o for o in args.overrides if o not in trial]
    config, hydra = split_overrides([*rest, *args.launcher])
    for item in config:
        if "=" not in item:
            fail(PROG, f"{item!r}: expected a config override KEY=VALUE")
    for item in hydra:
        if item.split("=", 1)[0] in ("hydra.sweep.dir", "hydra.run.dir"):
            fail(PROG, f"{item}: the sweep folders are OUT/runs/baseline and OUT/runs/arms")
    return trial, config, hydra


def _reserved(spec: Any, overrides: Sequence[str]) -> None:
    from abm.trial.population import ARM_KEYS

    # keys (and their sub-keys) set by the trial itself; the therapy *group* is the arms' too,
    # but only as a key of its own: its other keys (therapy.min_cells) stay free
    mine = {"seed": "trial.seed_base and trial.seeds", "design": "abm-trial",
            "sim.days": "trial.baseline_days and trial.followup_days",
            **{k: "the arms (trial.arms)" for k in ARM_KEYS},
            **{f.key: f"trial.features.{f.name}" for f in spec.features}}  # fmt: skip
    for item in [*spec.run_overrides, *overrides]:
        key = item.split("=", 1)[0].lstrip("+~")
        if key == "therapy" and item not in spec.run_overrides:
            # the trial's own group choice (run_overrides: therapy=msc) is the only one allowed
            fail(PROG, f"{item}: therapy is set by the arms (trial.arms)")
        for k, by in mine.items():
            if key == k or key.startswith(f"{k}."):
                fail(PROG, f"{item}: {key} is set by {by}")


def _compose(spec: Any, overrides: Sequence[str]) -> Any:
    from abm.config import compose
    from abm.errors import ConfigError

    try:
        return compose([*spec.run_overrides, *overrides, f"sim.days={spec.followup_days!r}"],
                       warn=False)  # fmt: skip
    except ConfigError as exc:
        fail(PROG, str(exc))


def _check_metrics(spec: Any) -> None:
    import difflib

    from abm.sweep.launch import known_readouts

    known = known_readouts()
    rs = spec.responder
    named = [(f"trial.plausibility.readouts.{r.metric}", r.metric) for r in spec.readouts]
    named += [("trial.responder.pain_metric", rs.pain_metric),
              ("trial.responder.synovitis_metric", rs.synovitis_metric)]  # fmt: skip
    named += [(f"trial.analysis.benefits.{b.metric}", b.metric) for b in spec.benefits]
    for where, m in named:
        if m not in known:
            near = difflib.get_close_matches(m, known, n=3)
            fail(PROG, f"{where}: {m} is not a readout" +
                 (f"; did you mean {' or '.join(near)}?" if near else ""))  # fmt: skip


def _validate_rows(design: Path, n: int, spec: Any, overrides: Sequence[str], days: float,
                   what: str) -> None:  # fmt: skip
    """Compose every row of ``design`` as its job will (one line naming the row otherwise)."""
    from omegaconf import OmegaConf, open_dict

    from abm.config import compose, validate
    from abm.errors import ConfigError

    try:
        base = compose([*spec.run_overrides, *overrides, f"sim.days={days!r}"], warn=False)
    except ConfigError as exc:
        fail(PROG, f"{what}: {exc}")
    bar = _bar(n, f"checking the {what} rows")
    for row in range(n):
        cfg = OmegaConf.create(OmegaConf.to_container(base))
        with open_dict(cfg):
            cfg.design.file = str(design)
            cfg.design.row = row
        try:
            validate(cfg, warn=False, machine=False)
        except ConfigError as exc:
            bar.close()
            fail(PROG, f"{what} row {row}: {exc}")
        bar.update(1)
    bar.close()


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", leave=False, disable=total < 50 or None)


# -- the request stored in OUT ---------------------------------------------------------------
def _request(spec: Any, overrides: Sequence[str]) -> dict[str, Any]:
    return {"trial": spec.raw["trial"], "overrides": sorted(overrides)}


def _state(out: Path, req: dict[str, Any], force_new: bool) -> bool:
    """True when OUT holds this request (reuse it); False when it is new. Refuses another
    request (one line) unless ``force_new``, which moves it aside first."""
    held = [out / f for f in (*DESIGN_FILES, "runs") if (out / f).exists()]
    if not held:
        return False
    diff = ["(no request.json)"]
    if (out / REQUEST).is_file():
        try:
            old = json.loads((out / REQUEST).read_text())
            # the analysis section changes no run: a new one re-analyses the stored runs
            diff = [d for d in _diff(old, req) if not d.startswith("trial.analysis")]
        except (OSError, ValueError):
            diff = ["(request.json unreadable)"]
        if not diff and all((out / f).is_file() for f in DESIGN_FILES):
            return True
    if not force_new:
        fail(PROG, f"--out {out} holds another trial (it differs in: {', '.join(diff[:6])}); "
                   f"give another --out, or --force-new to move it to {out}/previous-<time>/ "
                   "and start afresh")  # fmt: skip
    from abm.sweep.outdir import move_aside

    aside = move_aside(out, [*held, *(out / f for f in RESULT_FILES)])
    print(f"moved the previous trial to {aside}")
    return False


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys in which two plain mappings differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if old == new else [prefix or "(all)"]


def _write_designs(out: Path, spec: Any, cfg: Any) -> None:
    """The population, designs, maps and the trial as run (not yet the request)."""
    from omegaconf import OmegaConf

    from abm.sweep.design import write_design
    from abm.trial.population import arms_design, baseline_design, sample_population

    out.mkdir(parents=True, exist_ok=True)
    pop = sample_population(spec)
    sf = float(cfg.patient.sf_volume_ml)
    bdesign, bmap = baseline_design(spec, pop, sf)
    adesign, amap = arms_design(spec, pop, sf)
    write_csv(out / POPULATION, pop)
    write_design(out / BASELINE, bdesign)
    write_csv(out / BASELINE_MAP, bmap)
    write_design(out / ARMS, adesign)
    write_csv(out / ARMS_MAP, amap)
    write_text(out / SPEC, OmegaConf.to_yaml(OmegaConf.create(spec.raw)))


def _write_analysis(out: Path, spec: Any, req: dict[str, Any]) -> None:
    """A reused trial keeps this request's analysis section (the rest is equal): ``--no-run``
    later analyses as the last command did."""
    from omegaconf import OmegaConf

    old = json.loads((out / REQUEST).read_text())
    if old != req:
        write_text(out / SPEC, OmegaConf.to_yaml(OmegaConf.create(spec.raw)))
        _write_request(out, req)


def _write_request(out: Path, req: dict[str, Any]) -> None:
    """``OUT/request.json``, last: designs without it are not a finished set."""
    write_text(out / REQUEST, json.dumps(req, indent=1) + "\n")


# -- main ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``abm-trial``."""
    import pandas as pd

    from abm.errors import ConfigError
    from abm.sweep.launch import quote, run_sweep
    from abm.trial.population import TrialError, load_spec, parse_spec

    args = parse_args(parser(), argv)
    trial_ov, overrides, hydra = _split(args)
    out = Path(args.out).absolute()
    check_out_folder(PROG, out, writable=False)
    if args.size is not None and args.size < 1:
        fail(PROG, f"--size {args.size}: need >= 1 virtual patients")

    if args.no_run:
        given = [n for n, v in (("--config", args.config), ("--size", args.size),
                                ("KEY=VALUE", trial_ov or overrides),
                                ("--force-new", args.force_new))
                 if v]  # fmt: skip
        if given:
            fail(PROG, f"--no-run analyses the trial stored in --out; drop {', '.join(given)} "
                       "(a changed trial needs its own runs)")  # fmt: skip
        if not (out / REQUEST).is_file() or not (out / SPEC).is_file():
            fail(PROG, f"--out {out}: holds no trial ({REQUEST} or {SPEC} missing): run "
                       f"{PROG} --out {args.out} first")  # fmt: skip
        try:
            req = json.loads((out / REQUEST).read_text())
            spec = parse_spec({"trial": req["trial"]})
            overrides = list(req["overrides"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            fail(PROG, f"--out {out}: {REQUEST} unreadable ({str(exc).splitlines()[0]})")
        except ConfigError as exc:
            fail(PROG, f"--out {out}: {exc}")
        for f in DESIGN_FILES:
            if not (out / f).is_file():
                fail(PROG, f"--out {out}: {f} missing; run {PROG} without --no-run to write it")
        cfg = _compose(spec, overrides)
    else:
        config = Path(args.config) if args.config else default_config()
        if args.size is not None:
            trial_ov = [*trial_ov, f"trial.size={args.size}"]
        try:
            spec = load_spec(config, trial_ov)
        except TrialError as exc:
            fail(PROG, str(exc))
        _reserved(spec, overrides)
        cfg = _compose(spec, overrides)
        _check_model_keys(spec, cfg)
        _check_metrics(spec)
        err = writable_error(out, folder=True)
        if err:
            fail(PROG, err)
        req = _request(spec, overrides)
        if _state(out, req, args.force_new):
            print(f"{PROG}: reusing the trial in {out}")
            _write_analysis(out, spec, req)
        else:
            created = not out.exists()
            _write_designs(out, spec, cfg)
            nb, na = len(pd.read_csv(out / BASELINE)), len(pd.read_csv(out / ARMS))
            try:
                _validate_rows(out / BASELINE, nb, spec, overrides, spec.baseline_days, "baseline")
                _validate_rows(out / ARMS, na, spec, overrides, spec.followup_days, "arms")
            except SystemExit:  # a row abm-run would refuse: leave nothing behind
                for f in DESIGN_FILES:
                    (out / f).unlink(missing_ok=True)
                if created and not any(out.iterdir()):
                    out.rmdir()
                raise
            _write_request(out, req)
            print(f"{PROG}: wrote the trial to {out}")

    dt_min = float(cfg.sim.dt_min)
    _describe(spec)
    pop = pd.read_csv(out / POPULATION)
    pop = pop[["patient", *(f.key for f in spec.features)]]  # without an earlier verdict
    bmap, amap = pd.read_csv(out / BASELINE_MAP), pd.read_csv(out / ARMS_MAP)
    runs = out / "runs"
    common = [*spec.run_overrides, *overrides]
    failed = False
    t0 = time.monotonic()
    if not args.no_run:
        print(f"\nphase 1/2: {len(bmap)} untreated baseline runs (spin-up + "
              f"{spec.baseline_days:g} days) -> {runs / 'baseline'}", flush=True)  # fmt: skip
        ov = [
            *common,
            f"sim.days={spec.baseline_days!r}",
            f"design.file={quote(str(out / BASELINE))}",
        ]
        proc = run_sweep(runs / "baseline", ov, {"design.row": f"range(0,{len(bmap)})"}, hydra,
                         quiet=args.quiet)  # fmt: skip
        failed |= _sweep_ended(proc, runs / "baseline")
    baseline = _baseline(spec, out, pop, bmap, dt_min)
    accepted = [int(p) for p in baseline.loc[baseline["accepted"], "patient"]]
    print(f"plausibility filter: {len(accepted)} of {len(baseline)} patients accepted"
          + (f" (rejected: {_rejections(baseline)})" if len(accepted) < len(baseline)
             else ""))  # fmt: skip
    rows = [int(r) for r in amap.loc[amap["patient"].isin(accepted), "row"]]
    if not args.no_run and rows:
        print(f"\nphase 2/2: {len(rows)} arm runs ({len(accepted)} patients x {len(spec.arms)} "
              f"arms x {spec.seeds} seed(s), {spec.followup_days:g} days) -> {runs / 'arms'}",
              flush=True)  # fmt: skip
        ov = [*common, f"sim.days={spec.followup_days!r}", f"design.file={quote(str(out / ARMS))}"]
        proc = run_sweep(runs / "arms", ov, {"design.row": rows}, hydra, quiet=args.quiet)
        failed |= _sweep_ended(proc, runs / "arms")
    if not args.no_run:
        print(f"runs took {time.monotonic() - t0:.0f} s")
    missing = _analyse(spec, out, baseline, amap, accepted, dt_min)
    if missing:
        print(f"{PROG}: {missing} arm run(s) of accepted patients did not complete (see "
              f"{runs / 'arms'}/sweep_status.csv); run the same command again to retry them",
              file=sys.stderr)  # fmt: skip
    if failed or missing:
        raise SystemExit(EXIT_FAILED)


def _sweep_ended(proc: Any, folder: Path) -> bool:
    """True (and one line on stderr) when the sweep in ``folder`` exited with an error."""
    if proc.returncode == 0:
        return False
    print(f"{PROG}: the sweep in {folder} exited with code {proc.returncode} (jobs and errors: "
          f"{folder}/sweep_status.csv)", file=sys.stderr)  # fmt: skip
    return True


def _check_model_keys(spec: Any, cfg: Any) -> None:
    from abm.trial.population import TrialError, check_features_against_model

    try:
        check_features_against_model(spec, cfg)
    except TrialError as exc:
        fail(PROG, str(exc))


def _describe(spec: Any) -> None:
    print(f"trial: {spec.size} virtual patients x {spec.seeds} seed(s), {len(spec.arms)} arms "
          f"({', '.join(a.name for a in spec.arms)}); sampler {spec.sampler}, sample_seed "
          f"{spec.sample_seed}")  # fmt: skip
    for f in spec.features:
        print(f"  {f.group:9s} {f.describe()}")
    rs = spec.responder
    print(f"responder: {rs.pain_metric} change <= {100 * rs.pain_max_rel_change:g}% AND "
          f"{rs.synovitis_metric} change <= {rs.synovitis_max_abs_change:g} at day {rs.day:g} "
          f"(mean over {rs.window_days:g} day), vs the same patient and seed "
          "untreated")  # fmt: skip


def _rejections(baseline: Any) -> str:
    r = baseline.loc[~baseline["accepted"], "reason"].astype(str)
    counts: dict[str, int] = {}
    for text in r:
        for part in text.split("; "):
            key = part.split(" ")[0] if part else "?"
            key = "no baseline" if part.startswith("no complete") else f"{key} out of band"
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _baseline(spec: Any, out: Path, pop: Any, bmap: Any, dt_min: float) -> Any:
    from abm.trial.analysis import baseline_table, design_jobs, row_readouts

    by_row = design_jobs(out / "runs" / "baseline", out / BASELINE, len(bmap))
    values = row_readouts(by_row, [r.metric for r in spec.readouts], spec.baseline_days,
                          spec.window_days, dt_min)  # fmt: skip
    table = baseline_table(spec, pop, bmap, values)
    write_csv(out / POPULATION, table)
    return table


def _analyse(spec: Any, out: Path, baseline: Any, amap: Any, accepted: list[int],
             dt_min: float) -> int:  # fmt: skip
    """Tables, figures and the report; returns the number of accepted patients' arm rows
    without a complete run."""
    from abm.trial import analysis as an
    from abm.trial.report import build_report

    rs = spec.responder
    by_row = an.design_jobs(out / "runs" / "arms", out / ARMS, len(amap))
    metrics = [rs.pain_metric, rs.synovitis_metric, *(b.metric for b in spec.benefits)]
    values = an.row_readouts(by_row, metrics, rs.day, rs.window_days, dt_min)
    wanted = amap[amap["patient"].isin(accepted)]
    done = {r for r, j in by_row.items() if j["status"] == "complete"}
    missing = int((~wanted["row"].isin(done)).sum())
    outcomes = an.arm_outcomes(spec, wanted, values)
    patients = an.patient_outcomes(spec, outcomes, accepted)
    rates = an.responder_rates(spec, patients)
    pred = an.predictors(spec, baseline, patients)
    eff = an.effusion_table(spec, baseline, patients)
    ben = an.benefit_summary(spec, patients)
    for name, frame in (("outcomes.csv", outcomes), ("patients.csv", patients),
                        ("responder_rates.csv", rates), ("predictors.csv", pred),
                        ("effusion.csv", eff), ("benefits.csv", ben)):  # fmt: skip
        write_csv(out / name, frame)
    figs: dict[str, Path | None] = {"waterfall": None, "dose": None, "predictors": None,
                                    "benefits": None, "benefit_predictors": None}  # fmt: skip
    if len(patients):
        figs["waterfall"] = an.waterfall_figure(spec, patients, out / "waterfall.png")
    if len(rates):
        figs["dose"] = an.dose_figure(rates, out / "responder_rate_vs_dose.png")
    if len(pred):
        figs["predictors"] = an.predictors_figure(pred, out / "predictors.png")
    figs["effusion"] = an.effusion_figure(spec, baseline, patients, out / "effusion.png")
    if len(ben):
        figs["benefits"] = an.benefits_figure(spec, patients, ben, out / "benefits.png")
    if len(pred) and spec.benefits:
        figs["benefit_predictors"] = an.benefit_predictors_figure(
            spec, pred, out / "predictors_benefits.png"
        )
    md, page = build_report(spec, out, baseline, outcomes, patients, rates, pred, eff, figs,
                            missing, ben)  # fmt: skip
    print("\n" + rates[["arm", "n", "responders", "rate", "ci_low", "ci_high",
                        "median_pain_change_pct"]].to_string(index=False, float_format="%.3g")
          if len(rates) else "no treated arm results")  # fmt: skip
    print(f"wrote {md} and {page}")
    return missing


if __name__ == "__main__":
    main()
