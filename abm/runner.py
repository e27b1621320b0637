"""Runs from a config: a fresh model or one rebuilt from a checkpoint, its observers, the loop.

Data flow: config -> :func:`prepare` (a fresh model, or one rebuilt from a checkpoint) ->
:func:`abm.loop.run` (model.step() + observers on their schedules) -> files in the run folder
-> :class:`abm.loop.RunStats`. :func:`simulate` is what ``abm-run`` calls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from abm.errors import ResumeError
from abm.loop import RunStats, run
from abm.observers import build_observers
from abm.observers.checkpoint import checkpoint_path, read_checkpoint, resume_config
from abm.schema import RUN_FILE
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)


@dataclass
class Start:
    """A model ready to run: its (possibly resumed) config and where it resumes from."""

    cfg: DictConfig
    model: Any
    resume_from: Path | None


def resolve_resume(cfg: DictConfig, overrides: Iterable[str]) -> tuple[DictConfig, Any]:
    """For ``cfg.resume`` set: (the resumed config, the checkpoint); else (cfg, None).

    Raises :class:`ResumeError` (one line) when the run file or checkpoint is unusable, an
    override other than ``sim.days``/``output.*`` changes the config, or ``sim.days`` ends
    before the checkpoint.
    """
    resume = cfg.get("resume")
    if not resume:
        return cfg, None
    run_h5 = Path(str(resume))
    if run_h5.is_dir():
        run_h5 = run_h5 / RUN_FILE
    if not run_h5.is_file():
        raise ResumeError(f"resume={resume}: no such run file")
    ckpt = read_checkpoint(checkpoint_path(run_h5))
    new_cfg = resume_config(ckpt.config, cfg, overrides)
    until_min = float(new_cfg.sim.days) * MIN_PER_DAY
    if until_min + 1e-6 < ckpt.time_min:
        raise ResumeError(
            f"sim.days={new_cfg.sim.days}: ends before the checkpoint at day "
            f"{ckpt.time_min / MIN_PER_DAY:g} (ask for a longer run)"
        )
    return new_cfg, ckpt


def prepare(cfg: DictConfig, overrides: Iterable[str] = (), model_cls: Any = None) -> Start:
    """Build the model for ``cfg``: fresh, or from the checkpoint of ``cfg.resume``."""
    if model_cls is None:
        from abm.model import JointModel as model_cls  # lazy: heavy import
    cfg, ckpt = resolve_resume(cfg, overrides)
    if ckpt is None:
        return Start(cfg, model_cls(cfg), None)
    model = model_cls.from_state(cfg, ckpt.state)
    log.info("resuming from %s at day %g", ckpt.path, ckpt.time_min / MIN_PER_DAY)
    return Start(cfg, model, ckpt.path.parent / RUN_FILE)


def simulate(
    cfg: DictConfig,
    run_dir: str | os.PathLike,
    overrides: Iterable[str] = (),
    model_cls: Any = None,
) -> tuple[Start, RunStats]:
    """Prepare the model of ``cfg`` and run it to ``sim.days`` with the standard observers."""
    start = prepare(cfg, overrides, model_cls)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    observers = build_observers(start.cfg, run_dir, start.resume_from)
    stats = run(start.model, observers, float(start.cfg.sim.days) * MIN_PER_DAY)
    return start, stats
