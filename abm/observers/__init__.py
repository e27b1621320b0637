"""Observers: what the step loop hands the model's state to, each on its own schedule.

Data flow: :mod:`abm.runner` -> observers -> files in the run folder (``run.h5`` + ``run.xdmf``,
``metrics.csv``, ``checkpoint.h5``; their names live in :mod:`abm.schema`) and the progress bar.
:func:`build_observers` makes the set an ``abm-run`` uses from the ``output.*`` config keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from abm.observers.base import Observer, Schedule, Status
from abm.observers.checkpoint import CheckpointObserver, checkpoint_path
from abm.observers.hdf5 import SnapshotObserver
from abm.observers.metrics import MetricsCSVObserver
from abm.observers.progress import ProgressObserver
from abm.schema import CHECKPOINT_FILE
from abm.units import MIN_PER_DAY

__all__ = [
    "CheckpointObserver",
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
        SnapshotObserver(run_dir, snap_min, resume_from, xdmf=bool(output_option(cfg, "xdmf"))),
        MetricsCSVObserver(run_dir, snap_min),
        CheckpointObserver(
            run_dir, float(output_option(cfg, "checkpoint_every_min")), initial=not same_folder
        ),
    ]
