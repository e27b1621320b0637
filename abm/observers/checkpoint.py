"""Checkpoints and resume: the full model state in ``checkpoint.h5`` beside ``run.h5``.

Data flow: model.get_state() -> :class:`CheckpointObserver` -> ``checkpoint.h5``;
``abm-run resume=RUN/run.h5`` -> :func:`read_checkpoint` + :func:`resume_config` ->
``JointModel.from_state`` -> the run continues in the same folder.

A checkpoint is written to a temporary name, synced and renamed over the old one, so a crash or a
full disk while writing never leaves a broken checkpoint: there is always the previous one. The
state is a flat ``{key: array}`` dict (keys may contain '/'); fields keep their compute dtype;
the RNG is counter-based, so the step counter and the seed are all the randomness to save.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from omegaconf import DictConfig, OmegaConf

from abm.errors import ResumeError
from abm.observers.base import TIME_EPS_MIN, Observer, Status
from abm.schema import CHECKPOINT_FILE, CHECKPOINT_SCHEMA, H5_LIBVER

log = logging.getLogger(__name__)

# h5py's file-format bounds for checkpoint.h5: the same as run.h5 (abm.schema says why).
LIBVER = H5_LIBVER
TMP_SUFFIX = ".tmp"
CHECKPOINT_OVERHEAD_BYTES = 1 << 20  # HDF5 metadata and attrs on top of the arrays, generously

# What a resumed run may change: how long it runs, and what it writes.
RESUMABLE_KEYS = ("sim.days", "output", "resume")


@dataclass
class Checkpoint:
    path: Path
    config_yaml: str
    time_min: float
    steps: int
    state: dict[str, np.ndarray]

    @property
    def config(self) -> DictConfig:
        return OmegaConf.create(self.config_yaml)


def checkpoint_path(run_h5: str | os.PathLike) -> Path:
    """The checkpoint that belongs to ``run_h5`` (or to the run folder ``run_h5``)."""
    p = Path(run_h5)
    return (p if p.is_dir() else p.parent) / CHECKPOINT_FILE


def write_checkpoint(path: str | os.PathLike, model: Any) -> Path:
    """Write ``model.get_state()`` atomically to ``path``; returns the path.

    The state goes to ``<path>.tmp`` (synced to disk), which then replaces ``path``; when
    writing fails (a full disk, a signal) the temporary file is removed and ``path`` keeps the
    previous checkpoint.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    state = model.get_state()
    need = sum(np.asarray(v).nbytes for v in state.values()) + CHECKPOINT_OVERHEAD_BYTES
    check_free_space(path.parent, need, "the checkpoint")
    try:
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            f.attrs["schema"] = CHECKPOINT_SCHEMA
            f.attrs["config_yaml"] = OmegaConf.to_yaml(model.cfg, resolve=True)
            f.attrs["time_min"] = float(model.time_min)
            f.attrs["steps"] = int(model.steps)
            f.attrs["backend"] = str(model.backend.name)
            g = f.create_group("state")
            for key, value in state.items():
                arr = np.asarray(value)
                g.create_dataset(key, data=arr)
                g[key].attrs["key"] = key  # keys with '/' live in subgroups; keep the flat name
            f.flush()
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def check_free_space(folder: str | os.PathLike, need: int, what: str) -> None:
    """Raise ``OSError(ENOSPC)`` when the disk of ``folder`` has less than ``need`` bytes free.

    Called before HDF5 writes: a write that fails half-way leaves HDF5 holding a file it cannot
    close (its files stay flagged open, and the process may crash on exit); checking first
    stops the run while every file is still whole.
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: let the write itself find out
    if free < need:
        raise OSError(
            errno.ENOSPC, f"{what} needs about {need / 1e6:.1f} MB, {free / 1e6:.1f} MB are free"
        )


def _fsync(path: Path) -> None:
    """Push ``path``'s data to the disk, so that the rename never publishes an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`write_checkpoint` (ResumeError if unusable)."""
    path = Path(path)
    if not path.exists():
        raise ResumeError(f"{path}: no checkpoint here (was the run killed before its first one?)")
    if path.is_file() and path.stat().st_size == 0:
        raise ResumeError(f"{path}: empty checkpoint (0 bytes), nothing to resume from")
    try:
        with h5py.File(path, "r") as f:
            schema = f.attrs.get("schema")
            if isinstance(schema, bytes):
                schema = schema.decode("utf-8", "replace")
            if schema != CHECKPOINT_SCHEMA:
                raise ResumeError(
                    f"{path}: not an oa-abm checkpoint (schema attribute {schema!r}, expected "
                    f"{CHECKPOINT_SCHEMA!r})"
                )
            state: dict[str, np.ndarray] = {}

            def visit(_name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    state[str(obj.attrs["key"])] = obj[()]

            f["state"].visititems(visit)
            ckpt = Checkpoint(
                path,
                str(f.attrs["config_yaml"]),
                float(f.attrs["time_min"]),
                int(f.attrs["steps"]),
                {k: np.asarray(v) for k, v in state.items()},
            )
    except ResumeError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ResumeError(f"{path}: unreadable checkpoint ({_first_line(exc)})") from None
    try:
        ckpt.config  # noqa: B018 - parse the saved config now, not half-way into the resume
    except Exception as exc:
        raise ResumeError(
            f"{path}: unreadable checkpoint (config_yaml: {_first_line(exc)})"
        ) from None
    return ckpt


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _override_key(override: str) -> str | None:
    """The config key an override sets (``+a.b=1`` -> ``a.b``); None for hydra.* and flags."""
    if "=" not in override or override.startswith("-"):
        return None
    key = override.split("=", 1)[0].lstrip("+~")
    if key.startswith("hydra.") or key == "hydra":
        return None
    return key.split("@", 1)[0]


def _allowed(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUMABLE_KEYS)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def resume_config(saved: DictConfig, requested: DictConfig, overrides: Iterable[str]) -> DictConfig:
    """The config of a resumed run: the checkpoint's, with the overrides that may change.

    ``sim.days``, ``output.*`` (and ``resume``) are taken from ``requested`` where the command
    line set them; any other override must agree with the checkpoint, else ResumeError names it.
    """
    cfg = saved.copy()
    OmegaConf.set_struct(cfg, False)
    for override in overrides:
        key = _override_key(override)
        if key is None:
            continue
        new = OmegaConf.select(requested, key, default=None)
        if _allowed(key):
            OmegaConf.update(cfg, key, new, merge=False)
            continue
        old = OmegaConf.select(saved, key, default=None)
        if _plain(old) != _plain(new):
            raise ResumeError(
                f"{key}: a resumed run keeps its configuration; only sim.days and output.* may "
                f"change ({key}={_plain(old)!r} in the checkpoint, {_plain(new)!r} requested)"
            )
    OmegaConf.update(cfg, "resume", OmegaConf.select(requested, "resume"), merge=False)
    return cfg


class CheckpointObserver(Observer):
    """Writes ``checkpoint.h5`` every ``every_min`` minutes, at t=0 and at the end of a run.

    The one at the start makes every run resumable (skipped with ``initial=False``, when a
    resumed run continues beside the very checkpoint it started from). None is written when
    the run failed or was interrupted (the state may be mid-step): the last good one stays.
    """

    name = "checkpoint"

    def __init__(self, run_dir: str | os.PathLike, every_min: float, initial: bool = True) -> None:
        super().__init__(every_min)
        self.path = Path(run_dir) / CHECKPOINT_FILE
        self.initial = initial
        self._last_min: float | None = None

    def initialize(self, model: Any) -> None:
        super().initialize(model)
        if self.initial:
            self.handle(model)

    def handle(self, model: Any) -> None:
        write_checkpoint(self.path, model)
        self._last_min = float(model.time_min)

    def finalize(self, model: Any, status: Status) -> None:
        if status != "done":
            return
        if self._last_min is None or abs(self._last_min - model.time_min) > TIME_EPS_MIN:
            self.handle(model)
