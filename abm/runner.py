"""Runs from a config: a fresh model or one rebuilt from a checkpoint, its observers, the loop.

Data flow: config -> :func:`prepare` (a fresh model, one branched from the cached untreated
spin-up when ``sim.spinup_days > 0`` (:mod:`abm.spinup`), or one rebuilt from a checkpoint) ->
:func:`abm.loop.run` (model.step() + observers on their schedules) -> files in the run folder
-> :class:`abm.loop.RunStats`. :func:`simulate` is what ``abm-run`` calls.

The run folder is written by one process at a time: :func:`simulate` holds its lock
(:mod:`abm.lock`) from before the first check to the end, and refuses a folder it cannot write,
one another live process writes, or one that holds another run. A resume continues the run in
its own folder (or starts a copy in an empty one), never over another run, and never while the
run it resumes is still going.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from abm.errors import ResumeError, RunFolderError
from abm.lock import acquire, live_holder
from abm.loop import RunStats, run
from abm.observers import build_observers
from abm.observers.checkpoint import (
    Checkpoint,
    checkpoint_path,
    read_checkpoint,
    resume_config,
)
from abm.replay.run import open_h5, schema_problem
from abm.schema import (
    CHECKPOINT_FILE,
    FIELDS,
    METRICS_FILE,
    OFFSETS,
    RUN_FILE,
    SCHEMA,
    TIME,
    XDMF_FILE,
)
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)

# Temporary files the observers write beside their targets and rename (left by a killed run or
# a failed start; removed by the next run that holds the folder's lock).
TEMP_FILES = (
    RUN_FILE + ".resume-tmp",
    CHECKPOINT_FILE + ".tmp",
    METRICS_FILE + ".tmp",
    XDMF_FILE + ".tmp",
)


@dataclass
class Start:
    """A model ready to run: its (possibly resumed) config and where it resumes from."""

    cfg: DictConfig
    model: Any
    resume_from: Path | None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def resumed_run_file(cfg: DictConfig) -> Path | None:
    """The ``run.h5`` that ``cfg.resume`` names (a run folder stands for its ``run.h5``)."""
    resume = cfg.get("resume")
    if not resume:
        return None
    run_h5 = Path(str(resume))
    return run_h5 / RUN_FILE if run_h5.is_dir() else run_h5


def check_run_file(run_h5: Path, label: str) -> tuple[tuple[int, ...], int]:
    """Raise :class:`ResumeError` (one line, starting with ``label``) unless ``run_h5`` is an
    oa-abm run file whose frames a resume can copy; returns its (lattice shape, seed)."""
    valid = f"give the {RUN_FILE} of an oa-abm run folder"
    if run_h5.stat().st_size == 0:
        raise ResumeError(f"{label}: {run_h5} is empty (0 bytes), not an oa-abm run file; {valid}")

    def damaged(why: str) -> ResumeError:
        return ResumeError(f"{label}: {run_h5} is damaged ({why}); it cannot be resumed")

    try:
        f = open_h5(run_h5)  # plainly; in SWMR mode if a killed writer left it flagged open
    except OSError as exc:
        text = _first_line(exc)
        if "signature" in text:
            raise ResumeError(f"{label}: {run_h5} is not an HDF5 file; {valid}") from None
        raise damaged(text) from None
    with f:
        kind, what = schema_problem(f) or (None, None)
        if kind == "foreign":
            raise ResumeError(
                f"{label}: {run_h5} is not an oa-abm run file (schema attribute {what!r}, "
                f"expected {SCHEMA!r}); {valid}"
            )
        if kind == "version":
            raise ResumeError(
                f"{label}: {run_h5} has schema {what!r}; this version resumes {SCHEMA!r} only"
            )
        if kind == "missing":
            raise damaged(f"missing {', '.join(what)}")
        try:  # the frames are there to be copied: read the last one's parts
            n = int(f[TIME].shape[0])
            f[TIME][...]
            f[OFFSETS][...]
            if n:
                for ds in f[FIELDS].values():
                    ds[min(n, ds.shape[0]) - 1]
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise damaged(_first_line(exc)) from None
        try:
            return tuple(int(n) for n in f.attrs["shape"]), int(f.attrs["seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise damaged(f"root attributes: {_first_line(exc)}") from None


def resolve_resume(cfg: DictConfig, overrides: Iterable[str]) -> tuple[DictConfig, Any]:
    """For ``cfg.resume`` set: (the resumed config, the checkpoint); else (cfg, None).

    Raises :class:`ResumeError` (one line) when the run file or checkpoint is unusable (missing,
    empty, damaged, not oa-abm's, of different runs), an override other than
    ``sim.days``/``output.*`` changes the config, or ``sim.days`` ends before the checkpoint.
    """
    run_h5 = resumed_run_file(cfg)
    if run_h5 is None:
        return cfg, None
    label = f"resume={cfg.resume}"
    if not run_h5.is_file():
        raise ResumeError(f"{label}: no such run file (give PATH/{RUN_FILE} of a run folder)")
    shape, seed = check_run_file(run_h5, label)
    ckpt = read_checkpoint(checkpoint_path(run_h5))
    saved = ckpt.config
    try:
        want = (tuple(int(n) for n in saved.lattice.shape), int(saved.seed))
    except Exception as exc:
        raise ResumeError(f"{ckpt.path}: unreadable checkpoint ({_first_line(exc)})") from None
    if (shape, seed) != want:
        raise ResumeError(
            f"{label}: {run_h5} and {ckpt.path} belong to different runs (lattice {shape} seed "
            f"{seed} vs lattice {want[0]} seed {want[1]}); resume a {RUN_FILE} beside its own "
            f"{CHECKPOINT_FILE}"
        )
    new_cfg = resume_config(ckpt.config, cfg, overrides)
    until_min = float(new_cfg.sim.days) * MIN_PER_DAY
    if until_min + 1e-6 < ckpt.time_min:
        raise ResumeError(
            f"sim.days={new_cfg.sim.days}: ends before the checkpoint at day "
            f"{ckpt.time_min / MIN_PER_DAY:g} (ask for a longer run)"
        )
    return new_cfg, ckpt


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_run_folder(run_dir: str | os.PathLike, resume_from: Path | None, label: str = "") -> None:
    """Refuse (:class:`RunFolderError`, one line) a run folder that holds another run.

    A fresh run (``resume_from`` None) needs a folder without a ``run.h5``; a resume of
    ``resume_from`` (a ``run.h5``) continues in that run's folder, or in a folder without a
    ``run.h5``, and only when no live process writes the run it resumes. ``label`` names the
    folder in the message (default: its path).
    """
    run_dir = Path(run_dir)
    label = label or str(run_dir)
    existing = run_dir / RUN_FILE
    if resume_from is None:
        if existing.exists():
            raise RunFolderError(
                f"{label}: already holds a {RUN_FILE} (continue it with resume={existing}, or "
                "choose another folder)"
            )
        return
    if existing.exists() and not _same_file(existing, resume_from):
        raise RunFolderError(
            f"{label}: holds another run ({existing}); resume={resume_from} continues in its own "
            f"folder {resume_from.parent} (leave out hydra.run.dir) or in an empty one"
        )
    if not _same_file(resume_from.parent, run_dir):
        holder = live_holder(resume_from.parent)
        if holder is not None:
            raise RunFolderError(
                f"resume={resume_from}: the run is still going ({holder.describe()}); wait for "
                f"it to end, or stop it (kill {holder.pid}) first"
            )


def _build(cfg: DictConfig, ckpt: Checkpoint | None, model_cls: Any) -> Start:
    if model_cls is None:
        from abm.model import JointModel as model_cls  # lazy: heavy import
    if ckpt is None:  # fresh: at time 0, or branched from the cached spin-up (abm.spinup)
        from abm.spinup import start_model

        return Start(cfg, start_model(cfg, model_cls), None)
    try:
        model = model_cls.from_state(cfg, ckpt.state)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ResumeError(
            f"{ckpt.path}: the checkpoint does not fit this model ({type(exc).__name__}: "
            f"{_first_line(exc)}); was it written by another version?"
        ) from None
    log.info("resuming from %s at day %g", ckpt.path, ckpt.time_min / MIN_PER_DAY)
    return Start(cfg, model, ckpt.path.parent / RUN_FILE)


def prepare(cfg: DictConfig, overrides: Iterable[str] = (), model_cls: Any = None) -> Start:
    """Build the model for ``cfg``: fresh, or from the checkpoint of ``cfg.resume``."""
    cfg, ckpt = resolve_resume(cfg, overrides)
    return _build(cfg, ckpt, model_cls)


def remove_temp_files(run_dir: str | os.PathLike) -> None:
    """Remove the observers' temporary files from ``run_dir`` (hold its lock)."""
    for name in TEMP_FILES:
        with contextlib.suppress(OSError):
            (Path(run_dir) / name).unlink()


def simulate(
    cfg: DictConfig,
    run_dir: str | os.PathLike,
    overrides: Iterable[str] = (),
    model_cls: Any = None,
) -> tuple[Start, RunStats]:
    """Prepare the model of ``cfg`` and run it to ``sim.days`` with the standard observers.

    Holds the lock of ``run_dir`` throughout (creating the folder). Bad input raises before
    anything is written (an empty folder it made is removed again): :class:`ResumeError` for an
    unusable ``resume``, :class:`RunFolderError` for a folder that cannot be written, that
    another live process writes, or that holds another run (:func:`check_run_folder`). A write
    that fails mid-run raises :class:`~abm.errors.OutputError` naming the file, a signal
    :class:`~abm.errors.Interrupted`; either way the frames and metrics flushed before stay
    readable, the last checkpoint stays resumable and no temporary file is left.
    """
    run_dir = Path(run_dir)
    resuming = resumed_run_file(cfg)
    same_folder = resuming is not None and _same_file(resuming.parent, run_dir)
    with acquire(run_dir, resuming=same_folder, log_takeover=False) as lock:
        lock.log_takeover()
        cfg, ckpt = resolve_resume(cfg, overrides)
        check_run_folder(run_dir, None if ckpt is None else ckpt.path.parent / RUN_FILE)
        remove_temp_files(run_dir)
        try:
            start = _build(cfg, ckpt, model_cls)
            observers = build_observers(start.cfg, run_dir, start.resume_from)
            stats = run(start.model, observers, float(start.cfg.sim.days) * MIN_PER_DAY)
        except BaseException:
            remove_temp_files(run_dir)
            raise
    return start, stats
