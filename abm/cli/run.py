"""abm-run (also ``python -m abm``): run one configured simulation into a Hydra run folder.

Data flow: command line -> Hydra config (``pkg://abm.conf``) -> :func:`abm.runner.simulate`
(model + observers) -> run folder: ``run.h5``, ``run.xdmf``, ``metrics.csv``,
``checkpoint.h5``, ``summary.png``, Hydra's ``.hydra/`` and ``run.log``.

Bad input stops before anything is written: the overrides are composed and validated (and a
``resume=PATH/run.h5`` checked against its checkpoint) before Hydra starts, and any problem is
one line on stderr with exit code 2. ``resume=PATH/run.h5`` runs in the folder of that file.
The run folder's lock (:mod:`abm.lock`) is taken before Hydra writes in it and held to the end:
a folder another live run writes, or that holds another run, is refused the same way.

Exit codes: 0 done; 2 bad input (config, resume, run folder); 1 the simulation failed; 74 a run
file could not be written (disk full, quota, I/O error); 130 SIGINT, 143 SIGTERM (128 + the
signal). Every failure is one line ``abm-run: error: ...`` on stderr, and leaves the frames and
metrics written before it readable and the files closed.

Sweeps (``-m``, Hydra multirun; docs/sweeps.md; one job: abm/cli/sweep_job.py): every job is
validated before any starts; each job folder is named by its overrides (``hydra.sweep.subdir``),
so the same job finds the same folder when the sweep runs again, and holds a ``status.json``
(:mod:`abm.sweep.status`).
A job already complete with the same config is skipped; one complete with another config is
refused (nothing in it is touched); an unfinished or failed one continues from its checkpoint,
or, without one, starts again with the old files moved into ``.previous-<time>/``. A job that
fails writes ``failed`` with its one-line error and exit code, and the sweep goes on; at the
end the callback :mod:`abm.sweep.callbacks` writes ``sweep_status.csv`` and a summary line, and
``abm-run -m`` exits with 1 if any job failed. Ctrl-C or SIGTERM stops the whole sweep (130,
143); running the same command again continues it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

import abm.config  # registers the config schema ("base_config") for Hydra
import abm.sweep.status  # registers the resolvers of conf/ (job folder names)
from abm.errors import Interrupted, RunFolderError
from abm.lock import RunLock
from abm.loop import interrupt_signals
from abm.schema import CHECKPOINT_FILE, RUN_FILE, SUMMARY_FILE

log = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_OUTPUT = 74  # a run file could not be written (sysexits EX_IOERR)
KEY_METRICS = (
    "il1b_fluid", "tnf_fluid", "il10_fluid", "pge2_fluid", "macrophage_m1", "macrophage_m2",
    "fls_activated", "chondrocyte_catabolic", "msc_alive", "msc_licensed",
    "cartilage_agg", "cartilage_col2",
)  # fmt: skip


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    print(f"abm-run: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _override_value(overrides: Sequence[str], key: str) -> str | None:
    """The value the last override of ``key`` gives it (Hydra's quoting undone)."""
    value = None
    for item in overrides:
        if "=" in item and item.split("=", 1)[0].lstrip("+") == key:
            value = item.split("=", 1)[1]
    if value is None or not value.startswith(("'", '"')):
        return value
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([f"{key}={value}"])[0].value()
    except HydraException:
        return value
    return str(parsed)


def _quote(value: str) -> str:
    """``value`` as a Hydra override value (quoted when it holds special characters)."""
    if re.fullmatch(r"[\w/.\-:@]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def precheck(argv: Sequence[str]) -> tuple[list[str], RunLock | None]:
    """Validate the overrides of ``argv`` as abm-run would; returns (argv for Hydra, the lock).

    Exits with one line (code 2) on a bad override, an unusable resume, a run folder that
    cannot be created or written, one another live run writes (its lock: pid, host), a fresh
    run aimed at a folder that already holds a ``run.h5``, or a resume aimed at a folder that
    holds another run. With ``resume=`` and no ``hydra.run.dir``, adds
    ``hydra.run.dir=<folder of run.h5>`` so the run continues where it was; with neither, adds
    Hydra's default ``outputs/DATE/TIME`` (``TIME-1``, ... when a run of the same second has
    it). The returned lock of the run folder is held (release it at the end); None for a
    sweep, ``--help``-like flags, or a folder only Hydra can work out (``${...}``).
    """
    argv = list(argv)
    if any(a in ("-m", "--multirun") for a in argv):
        missing = _missing_launcher(argv)
        if missing:
            _fail(missing)
        args = [a for a in argv if not a.startswith("-")]
        _precheck_sweep(args)
        if not any(a.lstrip("+~").startswith("hydra.output_subdir") for a in argv):
            argv.append("hydra.output_subdir=null")  # each job writes its .hydra/ when it runs
        exclusions = _name_exclusions(args)  # job folders named by what the sweep varies
        if exclusions is not None:
            argv.append(exclusions)
        return argv, None
    if any(a.startswith("-") for a in argv):  # --cfg, --help, ...: Hydra's business
        return argv, None
    from abm.config import compose
    from abm.errors import ConfigError, ResumeError
    from abm.lock import acquire
    from abm.runner import check_run_folder, resolve_resume

    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        cfg = compose(overrides, warn=False)
        cfg, ckpt = resolve_resume(cfg, overrides)
    except (ConfigError, ResumeError) as exc:
        _fail(str(exc))
    run_dir = _override_value(argv, "hydra.run.dir")
    if ckpt is not None and run_dir is None:
        run_dir = str(ckpt.path.parent)
        argv.append(f"hydra.run.dir={_quote(run_dir)}")
    try:
        if run_dir is None:
            if any(a.lstrip("+~").startswith(("hydra.run", "hydra/")) for a in argv):
                return argv, None  # a run folder Hydra works out: simulate() checks it then
            folder, lock = _default_run_dir()
            argv.append(f"hydra.run.dir={_quote(str(folder))}")
            return argv, lock
        if "${" in run_dir:  # an interpolation only Hydra resolves: simulate() checks then
            return argv, None
        if not run_dir.strip():
            _fail("hydra.run.dir is empty: give a folder for the run")
        folder = Path(run_dir)
        resumed = None if ckpt is None else ckpt.path.parent / RUN_FILE
        same = resumed is not None and folder.is_dir() and resumed.parent.samefile(folder)
        lock = acquire(folder, resuming=same, log_takeover=False)
        try:
            check_run_folder(folder, resumed, f"hydra.run.dir={run_dir}")
        except BaseException:
            lock.release()
            raise
    except RunFolderError as exc:
        _fail(str(exc))
    return argv, lock


def _default_run_dir(now: datetime | None = None) -> tuple[Path, RunLock]:
    """Hydra's default run folder ``outputs/DATE/TIME``, taken (locked) here; if another run
    started in the same second holds it, ``TIME-1``, ``TIME-2``, ... (a default never clashes)."""
    from abm.errors import LockError
    from abm.lock import acquire

    now = now or datetime.now()
    base = Path("outputs") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")
    for i in range(1000):
        folder = base if i == 0 else base.with_name(f"{base.name}-{i}")
        try:
            lock = acquire(folder, log_takeover=False)
        except LockError:
            continue
        if not (folder / RUN_FILE).exists():
            return folder, lock
        lock.release()
    raise RunFolderError(f"{base}: 1000 runs started in this second; give hydra.run.dir")


# Launchers (hydra/launcher=NAME) that come from a plugin: the modules they need, and the fix.
_CLUSTER = (
    ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    'the submitit launcher plugin, from the cluster extra: pip install -e ".[cluster]"',
)
LAUNCHER_PLUGINS = {
    "joblib": (("hydra_plugins.hydra_joblib_launcher", "joblib"),
               "the joblib launcher plugin (hydra-joblib-launcher, a dependency of oa-abm): "
               "pip install -e ."),
    "slurm": _CLUSTER, "local": _CLUSTER, "submitit_slurm": _CLUSTER, "submitit_local": _CLUSTER,
}  # fmt: skip


def _missing_launcher(argv: Sequence[str]) -> str | None:
    """One line when the launcher ``hydra/launcher=NAME`` asks for is not installed."""
    import importlib

    name = _override_value(argv, "hydra/launcher")
    if name not in LAUNCHER_PLUGINS:
        return None
    modules, fix = LAUNCHER_PLUGINS[name]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return f"hydra/launcher={name} needs {fix}"
    return None


_NAME_EXCLUDES = "hydra.job.config.override_dirname.exclude_keys"


def _hydra_sweep_config(plain: Sequence[str]) -> tuple[list[str], list[str]]:
    """(``key=values`` of ``hydra.sweeper.params``, ``exclude_keys`` of the job folder names)
    in the config the overrides ``plain`` (no sweeps) compose; ``hydra.sweeper.params`` is e.g.
    an experiment's sweep (the basic sweeper runs it before the command line's). Empty lists
    when the config cannot be read (composing each job reports the problem)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    try:
        if GlobalHydra.instance().is_initialized():
            cfg = hydra_compose("config", overrides=list(plain), return_hydra_config=True)
        else:
            with initialize_config_module(config_module="abm.conf", version_base="1.3"):
                cfg = hydra_compose("config", overrides=list(plain), return_hydra_config=True)
        params = OmegaConf.to_container(cfg.hydra.sweeper.get("params") or {}, resolve=False)
        exclude = OmegaConf.to_container(OmegaConf.select(cfg, _NAME_EXCLUDES) or [])
    except Exception:  # composing each job reports any real problem
        return [], []
    params = [f"{k}={v}" for k, v in params.items()] if isinstance(params, dict) else []
    return params, [str(k) for k in exclude] if isinstance(exclude, list) else []


def _name_exclusions(args: Sequence[str]) -> str | None:
    """The override that leaves the keys with one value for the whole sweep (the command
    line's overrides that sweep nothing) out of the job folder names, besides the config's
    exclusions; None when there are none, or the command line sets the exclusions itself."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a.lstrip("+~").startswith(_NAME_EXCLUDES) for a in args):
        return None
    args = [a for a in args if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    parsed = OverridesParser.create().parse_overrides(args)
    fixed = [ov.key_or_group for ov in parsed if not ov.is_sweep_override()]
    if not fixed:
        return None
    _, exclude = _hydra_sweep_config([ov.input_line for ov in parsed
                                      if not ov.is_sweep_override()])  # fmt: skip
    keys = dict.fromkeys([*(exclude or ["experiment", "design.file"]), *fixed])
    return f"{_NAME_EXCLUDES}=[{','.join(_quote(k) for k in keys)}]"


def sweep_jobs(args: Sequence[str]) -> list[list[str]]:
    """The overrides of every job of ``abm-run -m ARGS`` (Hydra's basic sweeper: the sweep of
    ``hydra.sweeper.params``, then the command line's; a key given twice takes the later)."""
    import itertools

    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    args = [a for a in args if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(args)  # a HydraException for a malformed override
    plain = [ov.input_line for ov in parsed if not ov.is_sweep_override()]
    try:
        everything = parser.parse_overrides([*_hydra_sweep_config(plain)[0], *args])
        return [job for batch in BasicSweeper.split_arguments(everything, None) for job in batch]
    except HydraException:  # sweeps of other sweepers (intervals, ...): check the rest only
        pass
    choices = []
    for ov in parsed:
        if ov.is_sweep_override():
            try:
                values = list(ov.sweep_string_iterator())
            except HydraException:
                continue
            choices.append([f"{ov.get_key_element()}={v}" for v in values])
        else:
            choices.append([ov.input_line])
    return [list(job) for job in itertools.product(*choices)]


# Launchers whose jobs run on other machines: the checks of this machine (a GPU for
# backend=cupy, the memory a run needs) are left to each job, which validates its config again.
REMOTE_LAUNCHERS = ("slurm", "submitit_slurm")


def _precheck_sweep(args: Sequence[str], limit: int = 256) -> None:
    """Validate every job of a ``-m`` sweep (up to ``limit`` jobs) before Hydra starts any."""
    from hydra.errors import HydraException

    from abm.errors import ConfigError

    try:
        jobs = sweep_jobs(args)
    except HydraException as exc:
        _fail(" ".join(str(exc).split()))
    # no GPU or memory check on the submitting machine of a remote sweep: each job checks its own
    remote = _override_value(args, "hydra/launcher") in REMOTE_LAUNCHERS
    for job in jobs[:limit]:
        try:
            abm.config.compose(job, warn=False, machine=not remote)
        except ConfigError as exc:
            _fail(str(exc))


def _summary(start, stats, run_dir: Path) -> str:
    metrics = start.model.metrics
    lines = [f"run folder {run_dir}", stats.table(), "  metric                 start        end"]
    for name in KEY_METRICS:
        if name in metrics:
            col = metrics[name]
            lines.append(f"  {name:<22} {col.iloc[0]:>10.4g} {col.iloc[-1]:>10.4g}")
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            lines.append(f"  {path.name:<22} {path.stat().st_size / 1e6:>10.2f} MB")
    return "\n".join(lines)


def _exit_now(message: str, code: int) -> None:
    """Print the one line and exit at once, skipping the interpreter's teardown.

    After a write failed for want of space, HDF5 keeps a file it could not close, and freeing
    it crashes the process (a segfault in the HDF5 library); so once the lock is released and
    the output flushed, nothing else runs.
    """
    import atexit

    from abm.lock import release_all

    print(f"abm-run: error: {message}", file=sys.stderr)
    release_all()
    atexit._run_exitfuncs()  # logging's flush, multiprocessing's clean-up, ...
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _quiet_unraisable(unraisable: Any) -> None:
    """h5py freeing a file it could not write (a full disk) is known and reported already."""
    from abm.loop import is_io_error

    if unraisable.exc_value is not None and is_io_error(unraisable.exc_value):
        log.debug("ignored while freeing %r: %s", unraisable.object, unraisable.exc_value)
        return
    sys.__unraisablehook__(unraisable)


def _stopped(exc: Interrupted, run_dir: Path | None) -> str:
    where = f"; the frames and metrics up to here are in {run_dir}" if run_dir else ""
    return f"stopped by {exc.signal_name}{where}"


def _finish(start: Any, run_dir: Path, subdir: str | None) -> None:
    """After a run: keep the real config of a resumed run in ``<subdir>/config.yaml`` (Hydra
    saved the command line's) and write ``summary.png``; OSError when a file cannot be written."""
    from abm.replay import load_run
    from abm.replay.plots import summary_figure

    if start.resume_from is not None and subdir:
        (run_dir / subdir).mkdir(parents=True, exist_ok=True)
        OmegaConf.save(start.cfg, run_dir / subdir / "config.yaml")
    if start.cfg.output.get("summary_png", True):
        with load_run(run_dir / RUN_FILE) as run:
            summary_figure(run, run_dir / SUMMARY_FILE)


@hydra.main(version_base="1.3", config_path="pkg://abm.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from abm.config import validate
    from abm.errors import ConfigError, OutputError, ResumeError, RunFolderError, SimulationError
    from abm.runner import simulate

    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        from abm.cli.sweep_job import sweep_job

        sweep_job(cfg, hc)  # never raises but for Ctrl-C / SIGTERM: the other jobs run
        return
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)

    def resume() -> str:
        if (run_dir / CHECKPOINT_FILE).is_file():
            return f"continue with resume={run_dir / RUN_FILE}"
        return "start it again (it stopped before its first checkpoint)"

    try:
        cfg = validate(cfg)
        start, stats = simulate(cfg, run_dir, overrides)
    except (ConfigError, ResumeError, RunFolderError) as exc:
        _fail(str(exc))
    except SimulationError as exc:
        _fail(f"{exc} (frames and metrics up to here are in {run_dir})", EXIT_FAILED)
    except OutputError as exc:
        _exit_now(
            f"{exc}; the frames and metrics written before are readable in {run_dir}; make "
            f"room, then {resume()}",
            EXIT_OUTPUT,
        )
    except Interrupted as exc:
        _fail(f"{_stopped(exc, run_dir)}; {resume()}", exc.exit_code)
    except KeyboardInterrupt:
        _fail(f"interrupted; frames and metrics up to here are in {run_dir}", 130)
    try:
        _finish(start, run_dir, hc.output_subdir)
    except OSError as exc:
        from abm.loop import output_error

        _fail(f"{output_error(exc, exc.filename or run_dir)} (the run is complete)", EXIT_OUTPUT)
    log.info("done\n%s", _summary(start, stats, run_dir))


def main() -> None:
    """Console script ``abm-run``."""
    from abm.cli.sweep_job import UNFREED
    from abm.sweep import callbacks

    logging.raiseExceptions = False  # a full disk must not turn every log line into a traceback
    sys.unraisablehook = _quiet_unraisable
    lock = None
    callbacks.reset()
    try:
        with interrupt_signals():  # SIGTERM like Ctrl-C: files flushed and closed, one line
            argv, lock = precheck(sys.argv[1:])
            sys.argv[1:] = argv
            _hydra_main()
    except Interrupted as exc:
        _fail(_stopped(exc, None if lock is None else lock.folder), exc.exit_code)
    finally:
        if lock is not None:
            lock.release()
    outcome = callbacks.failed_jobs()  # a sweep: its jobs' failures, from their files
    message = outcome[1] if outcome is not None and outcome[0] else None
    if UNFREED:
        _exit_now(message or "a sweep job could not write its files", EXIT_FAILED)
    if message:
        _fail(message, EXIT_FAILED)


if __name__ == "__main__":
    main()
