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

Sweeps (``-m``, Hydra multirun; docs/sweeps.md): every job is validated before any starts;
each job folder is named by its overrides (``hydra.sweep.subdir``), so the same job finds the
same folder when the sweep runs again, and holds a ``status.json`` (:mod:`abm.sweep.status`).
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
import time
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
from abm.schema import CHECKPOINT_FILE, METRICS_FILE, RUN_FILE, SUMMARY_FILE, XDMF_FILE

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
    remote = _override_value(args, "hydra/launcher") in REMOTE_LAUNCHERS
    memory = abm.config.available_bytes
    if remote:  # no GPU or memory check on the submitting machine: each job checks its own
        abm.config.available_bytes = lambda: 2**62
    try:
        for job in jobs[:limit]:
            try:
                abm.config.compose([*job, "backend=numpy"] if remote else job, warn=False)
            except ConfigError as exc:
                _fail(str(exc))
    finally:
        abm.config.available_bytes = memory


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
        _sweep_job(cfg, hc)  # never raises but for Ctrl-C / SIGTERM: the other jobs run
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


# -- sweep jobs (multirun) --------------------------------------------------------------------

# Files that make a job folder hold a run (moved aside, never deleted, when it starts again).
_DATA_FILES = (RUN_FILE, CHECKPOINT_FILE, METRICS_FILE, XDMF_FILE, SUMMARY_FILE)
# OutputErrors of sweep jobs: HDF5 may crash freeing a file it could not write (see _exit_now),
# so their tracebacks (and the files they hold) are kept until the process exits via os._exit.
_UNFREED: list[BaseException] = []


class _Refused(Exception):
    """A sweep job that leaves its folder as it is (another job's run, or another process
    writes it): it writes no status.json, only its record for the sweep's summary."""


def _one(text: str) -> str:
    return " ".join(str(text).split())


def _job_error(exc: BaseException, run_dir: Path) -> tuple[str, int, bool]:
    """(one line, exit code, expected) for a sweep job's exception; not ``expected``: a bug,
    whose traceback goes to the log."""
    from abm.errors import ConfigError, OutputError, ResumeError, SimulationError
    from abm.loop import output_error

    if isinstance(exc, ConfigError | ResumeError | RunFolderError):
        return _one(exc), EXIT_BAD_INPUT, True
    if isinstance(exc, SimulationError):
        return _one(f"{exc} (frames and metrics up to here are in {run_dir})"), EXIT_FAILED, True
    if isinstance(exc, OutputError):
        line = f"{exc}; the frames and metrics written before are readable in {run_dir}"
        return _one(line), EXIT_OUTPUT, True
    if isinstance(exc, OSError):  # summary.png, status.json, .hydra/ after the run
        return _one(output_error(exc, exc.filename or run_dir)), EXIT_OUTPUT, True
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return _one(f"{type(exc).__name__}: {text}"), EXIT_FAILED, False


def _checkpoint_sha(run_dir: Path) -> str | None:
    """config_sha of the run whose checkpoint is in ``run_dir``; None when it cannot be read."""
    import h5py

    from abm.sweep.status import config_sha

    try:
        with h5py.File(run_dir / CHECKPOINT_FILE, "r") as f:
            text = f.attrs["config_yaml"]
        text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        return config_sha(OmegaConf.create(text))
    except Exception:  # unreadable: the resume reports what is wrong
        return None


def _design_values(cfg: DictConfig) -> dict[str, Any]:
    """``{key: value}`` the job's design row applied (``design.file`` / ``design.row``)."""
    design = cfg.get("design")
    if design is None or design.get("file") is None or design.get("row") is None:
        return {}
    try:
        from abm.sweep.design import row_values

        return {k: OmegaConf.select(cfg, k, default=v)
                for k, v in row_values(design.file, int(design.row)).items()}  # fmt: skip
    except Exception:  # validate() applied the row already; this is a record
        return {"file": str(design.file), "row": int(design.row)}


def _move_aside(run_dir: Path) -> Path | None:
    """Move what an earlier attempt left in ``run_dir`` into ``run_dir/.previous-<time>/``
    (kept, never deleted); the lock, the log and earlier ``.previous-*`` stay. None when there
    was nothing to move."""
    from abm.lock import LOCK_FILE, TAKEOVER_FILE

    stay = {LOCK_FILE, TAKEOVER_FILE}
    items = [p for p in run_dir.iterdir()
             if p.name not in stay and not p.name.startswith(".previous-")
             and not (p.is_file() and p.suffix == ".log")]  # fmt: skip
    if not items:
        return None
    base = run_dir / f".previous-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    dest, i = base, 0
    while dest.exists():
        i += 1
        dest = base.with_name(f"{base.name}-{i}")
    dest.mkdir()
    for path in items:
        path.rename(dest / path.name)
    return dest


def _write_hydra_files(hc: Any, raw_yaml: str, run_dir: Path) -> None:
    """The ``.hydra/`` record Hydra writes in a run folder (config, hydra, overrides): in a
    sweep abm-run sets ``hydra.output_subdir=null``, so that a job writes it only when it runs
    (a skipped or refused job's record stays as it was)."""
    from hydra.core.hydra_config import HydraConfig

    if hc.output_subdir is not None:
        return  # Hydra wrote it (hydra.output_subdir given on the command line)
    out = run_dir / ".hydra"
    out.mkdir(exist_ok=True)
    (out / "config.yaml").write_text(raw_yaml, encoding="utf-8")
    (out / "hydra.yaml").write_text(OmegaConf.to_yaml(HydraConfig.instance().cfg),
                                    encoding="utf-8")  # fmt: skip
    (out / "overrides.yaml").write_text(OmegaConf.to_yaml(hc.overrides.task), encoding="utf-8")


def _sweep_job(cfg: DictConfig, hc: Any) -> None:
    """One job of a sweep, in its folder ``hydra.runtime.output_dir`` (see the module doc).

    Holds the folder's lock throughout. Skips a job complete with the same config_sha; refuses
    (no status.json written, nothing touched) a folder complete with another config, holding an
    unfinished run of another config, or locked by a live process; continues an unfinished or
    failed run from its checkpoint; else starts again, the earlier files moved aside. A failure
    is ``failed`` in status.json with its one line and exit code, logged, and not raised; only
    Ctrl-C / SIGTERM (and a SystemExit, e.g. a Slurm requeue) stop the sweep.
    """
    from abm.config import config_warnings, validate
    from abm.errors import ConfigError, ResumeError
    from abm.lock import acquire
    from abm.runner import simulate
    from abm.sweep.status import (
        config_sha,
        now_iso,
        read_status,
        write_job_record,
        write_status,
    )

    t0 = time.monotonic()
    run_dir = Path(hc.runtime.output_dir)
    sweep_dir = Path(os.path.abspath(str(hc.sweep.dir)))
    num = int(hc.job.num) if hc.job.get("num") is not None else os.getpid()
    overrides = [str(o) for o in hc.overrides.task]
    status: dict[str, Any] = {"overrides": overrides, "started": now_iso(), "design": {}}
    raw_yaml = OmegaConf.to_yaml(cfg)  # what Hydra saves as .hydra/config.yaml
    owned = False  # whether the folder is this job's to write (its status.json included)
    lock = None

    def record(outcome: str, error: str | None = None) -> None:
        try:
            write_job_record(sweep_dir, num, job=os.path.relpath(run_dir, sweep_dir),
                             overrides=overrides, outcome=outcome, error=error)  # fmt: skip
        except OSError as exc:
            log.warning("%s: cannot record the job (%s)", sweep_dir, exc.strerror or exc)

    def set_status(state: str, error: str | None = None, code: int | None = None) -> None:
        if state == "running":
            fields = {**status, "status": state}
        else:
            wall = round(time.monotonic() - t0, 3)
            fields = {**status, "status": state, "ended": now_iso(), "wall_s": wall,
                      "error": error, "exit_code": code}  # fmt: skip
        write_status(run_dir, **fields)

    def failed(line: str, code: int) -> None:
        log.error("failed: %s", line)
        if owned:
            try:
                set_status("failed", line, code)
            except OSError as exc:
                log.error("%s: cannot write its status (%s)", run_dir, exc.strerror or exc)
        record("ran" if owned else "refused", line)

    record("started")
    try:
        with interrupt_signals():  # SIGTERM like Ctrl-C (a no-op where abm-run installed it)
            try:
                lock = acquire(run_dir, log_takeover=False)
            except RunFolderError as exc:
                raise _Refused(str(exc)) from None
            lock.log_takeover()
            prev = read_status(run_dir)
            complete = prev is not None and prev["status"] == "complete"
            owned = not complete
            try:
                cfg = validate(cfg, warn=False)  # warnings are for a job that runs
            except ConfigError as exc:
                if complete:
                    line = f"{exc} (the folder holds a complete job: left as it is)"
                    raise _Refused(line) from None
                raise
            sha = config_sha(cfg)
            status.update(config_sha=sha, design=_design_values(cfg))
            if complete:
                if prev["config_sha"] == sha:
                    log.info("skipped: already complete")
                    record("skipped")
                    return
                raise _Refused(
                    f"{run_dir}: holds a different job (complete, config_sha "
                    f"{str(prev['config_sha'])[:12]}, this job's {sha[:12]}); nothing in it was "
                    "touched: run this sweep into another hydra.sweep.dir, or move that folder"
                )
            has_data = any((run_dir / name).exists() for name in _DATA_FILES)
            other = (prev or {}).get("config_sha") or (_checkpoint_sha(run_dir) if has_data
                                                       else None)  # fmt: skip
            if has_data and other is not None and other != sha:
                owned = False
                raise _Refused(
                    f"{run_dir}: holds an unfinished run of a different job (config_sha "
                    f"{other[:12]}, this job's {sha[:12]}); nothing in it was touched: run this "
                    "sweep into another hydra.sweep.dir, or move that folder"
                )
            record("ran")
            for message in config_warnings(cfg):
                log.warning(message)
            start = stats = None
            if (run_dir / RUN_FILE).is_file() and (run_dir / CHECKPOINT_FILE).is_file():
                set_status("running")
                _write_hydra_files(hc, raw_yaml, run_dir)
                resumed = cfg.copy()
                OmegaConf.set_readonly(resumed, False)
                resumed.resume = str(run_dir / RUN_FILE)
                log.info("continuing the earlier attempt in %s from its last checkpoint", run_dir)
                try:
                    start, stats = simulate(resumed, run_dir, overrides)
                except ResumeError as exc:
                    log.warning("cannot continue it (%s): starting it again", _one(exc))
            if start is None:
                aside = _move_aside(run_dir)
                if aside is not None:
                    log.info("moved the files of an earlier attempt into %s", aside)
                set_status("running")
                _write_hydra_files(hc, raw_yaml, run_dir)
                start, stats = simulate(cfg, run_dir, overrides)
            _finish(start, run_dir, ".hydra" if hc.output_subdir is None else hc.output_subdir)
            set_status("complete", code=0)
            log.info("done\n%s", _summary(start, stats, run_dir))
    except _Refused as exc:
        failed(_one(exc), EXIT_BAD_INPUT)
    except Interrupted as exc:
        failed(f"{_stopped(exc, run_dir)}; run the same abm-run -m command again to continue "
               "the sweep", exc.exit_code)  # fmt: skip
        raise
    except KeyboardInterrupt:
        failed(f"interrupted; frames and metrics up to here are in {run_dir}", 130)
        raise
    except SystemExit as exc:  # e.g. submitit requeueing the job at its time limit
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
        failed(f"stopped (exit {exc.code}); frames and metrics up to here are in {run_dir}", code)
        raise
    except Exception as exc:
        from abm.errors import OutputError

        line, code, expected = _job_error(exc, run_dir)
        if not expected:
            log.error("the job raised", exc_info=True)
        if isinstance(exc, OutputError):
            _UNFREED.append(exc)
        failed(line, code)
    finally:
        if lock is not None:
            lock.release()


def main() -> None:
    """Console script ``abm-run``."""
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
    if _UNFREED:
        _exit_now(message or "a sweep job could not write its files", EXIT_FAILED)
    if message:
        _fail(message, EXIT_FAILED)


if __name__ == "__main__":
    main()
