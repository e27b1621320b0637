"""Observers: what the step loop hands the model's state to, each on its own schedule.

Data flow: :mod:`abm.runner` -> observers -> files in the run folder (``run.h5`` + ``run.xdmf``,
``metrics.csv``, ``checkpoint.h5``; their names live in :mod:`abm.schema`) and the progress bar.
:func:`build_observers` makes the set an ``abm-run`` uses from the ``output.*`` config keys.

A full disk must not catch HDF5 half-way through a write (it then cannot close the file, which
stays flagged open, and the process may crash on exit): :class:`DiskSpaceObserver` stops the run
first, with every file whole and closed, when the next frame might not fit; the checkpoint
checks its own size before writing (:func:`abm.observers.checkpoint.check_free_space`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from abm.observers.base import Observer, Schedule, Status
from abm.observers.checkpoint import CheckpointObserver, check_free_space, checkpoint_path
from abm.observers.hdf5 import SnapshotObserver
from abm.observers.metrics import MetricsCSVObserver
from abm.observers.progress import ProgressObserver
from abm.schema import CHECKPOINT_FILE, RUN_FILE, XDMF_FILE
from abm.units import MIN_PER_DAY

__all__ = [
    "CheckpointObserver",
    "DiskSpaceObserver",
    "MetricsCSVObserver",
    "Observer",
    "ProgressObserver",
    "Schedule",
    "SnapshotObserver",
    "Status",
    "build_observers",
]

# Defaults of the output.* keys, used where a config lacks one.
OUTPUT_DEFAULTS = {
    "snapshot_every_min": 360.0,
    "checkpoint_every_min": MIN_PER_DAY,
    "progress": None,
    "xdmf": True,
}


class DiskSpaceObserver(Observer):
    """Before each round of writes: is there room on the run folder's disk for the next frame?

    Fires on the snapshot cadence, just ahead of the writers (``every_min=None``: every step).
    The room a frame takes is measured (the largest growth of ``run.h5`` from one check to the
    next; until it first grows, the size of the uncompressed fields), and the next round needs
    twice that, plus a rewritten ``run.xdmf`` and a margin (4 MiB: ``metrics.csv`` rows, HDF5
    chunks of metric rows, ...). When the disk has less, raises ``OSError(ENOSPC)`` naming the
    numbers (the loop makes it an :class:`~abm.errors.OutputError`): the run stops with its
    files whole and closed.
    """

    name = "space"
    MARGIN_BYTES = 4 << 20

    def __init__(self, run_dir: str | os.PathLike, every_min: float | None = None) -> None:
        super().__init__(every_min)
        self.path = Path(run_dir)
        self._last: int | None = None
        self._guess = 0
        self.frame_bytes = 0

    def initialize(self, model: Any) -> None:
        super().initialize(model)
        info = model.static_info()
        n = math.prod(int(k) for k in info["shape"])
        self._guess = 4 * n * len(info["field_units"])  # float32 fields, before compression
        self._last = None
        self.frame_bytes = 0

    def handle(self, model: Any) -> None:
        size = _size(self.path / RUN_FILE)
        if self._last is not None and size > self._last:
            self.frame_bytes = max(self.frame_bytes, size - self._last)
        self._last = size
        frame = self.frame_bytes or self._guess  # measured once the file has grown
        need = 2 * frame + _size(self.path / XDMF_FILE) + self.MARGIN_BYTES
        check_free_space(self.path, need, "the next frame")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def output_option(cfg: Any, key: str) -> Any:
    """``cfg.output.<key>``, or its default when the config does not have it."""
    value = OmegaConf.select(cfg, f"output.{key}", default=None)
    return OUTPUT_DEFAULTS[key] if value is None else value


def build_observers(
    cfg: Any, run_dir: str | os.PathLike, resume_from: str | os.PathLike | None = None
) -> list[Observer]:
    """The observers of a run in ``run_dir``, in firing order.

    ``resume_from`` is the ``run.h5`` of the run being continued (None for a fresh run).
    Order matters: the snapshot is flushed before the checkpoint of the same time is taken,
    so a checkpoint never points past the last frame on disk.
    """
    run_dir = Path(run_dir)
    until_min = float(cfg.sim.days) * MIN_PER_DAY
    snap_min = float(output_option(cfg, "snapshot_every_min"))
    same_folder = (
        resume_from is not None
        and checkpoint_path(resume_from).resolve() == (run_dir / CHECKPOINT_FILE).resolve()
    )
    return [
        ProgressObserver(until_min, output_option(cfg, "progress")),
        DiskSpaceObserver(run_dir, snap_min),
        SnapshotObserver(run_dir, snap_min, resume_from, xdmf=bool(output_option(cfg, "xdmf"))),
        MetricsCSVObserver(run_dir, snap_min),
        CheckpointObserver(
            run_dir, float(output_option(cfg, "checkpoint_every_min")), initial=not same_folder
        ),
    ]
