"""One job of an ``abm-run -m`` sweep, in its own folder (part of abm-run: see abm/cli/run.py).

Data flow: Hydra's launcher calls abm-run's task function once per job -> :func:`sweep_job`
(the job folder's lock, ``status.json`` via :mod:`abm.sweep.status`, skip / continue / start
again, :func:`abm.runner.simulate`) -> the job folder. A failure is recorded, logged and not
raised, so the other jobs of the sweep run; only Ctrl-C and SIGTERM stop the sweep.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from abm.cli.run import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OUTPUT,
    _finish,
    _stopped,
    _summary,
)
from abm.errors import Interrupted, RunFolderError
from abm.loop import interrupt_signals
from abm.schema import CHECKPOINT_FILE, METRICS_FILE, RUN_FILE, SUMMARY_FILE, XDMF_FILE

log = logging.getLogger("abm.cli.run")  # the sweep's lines read as abm-run's, as before

# -- --------------------------------------------------------------------

# Files that make a job folder hold a run (moved aside, never deleted, when it starts again).
_DATA_FILES = (RUN_FILE, CHECKPOINT_FILE, METRICS_FILE, XDMF_FILE, SUMMARY_FILE)
# OutputErrors of sweep jobs: HDF5 may crash freeing a file it could not write (see _exit_now),
# so their tracebacks (and the files they hold) are kept until the process exits via os._exit.
UNFREED: list[BaseException] = []


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


def sweep_job(cfg: DictConfig, hc: Any) -> None:
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
            UNFREED.append(exc)
        failed(line, code)
    finally:
        if lock is not None:
            lock.release()
