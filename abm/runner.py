"""The one step loop: advance the model, hand its state to the observers that are due.

Data flow: config -> :func:`prepare` (a fresh model, or one rebuilt from a checkpoint) ->
:func:`run` (model.step() + observers on their schedules) -> files in the run folder. The loop
owns the timing: solver time (each step, synchronized on a GPU) against each observer's time,
reported in :class:`RunStats`. Observers see host copies only, made when they fire.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from abm.errors import ResumeError
from abm.observers import Observer, Status, build_observers
from abm.observers.checkpoint import checkpoint_path, read_checkpoint, resume_config
from abm.schema import RUN_FILE
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    """What :func:`run` did: steps, simulated span (min) and wall-clock split (s)."""

    status: Status
    steps: int
    start_min: float
    end_min: float
    wall_s: float
    solver_s: float
    observer_s: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_fraction(self) -> float:
        """Share of the wall time spent in observers (snapshots, checkpoints, ...)."""
        return sum(self.observer_s.values()) / self.wall_s if self.wall_s > 0 else 0.0

    def table(self) -> str:
        """A small text table of the timings."""
        rows = [
            ("steps", f"{self.steps}"),
            (
                "simulated",
                f"{self.start_min / MIN_PER_DAY:.3f} -> {self.end_min / MIN_PER_DAY:.3f} days",
            ),
            ("wall", f"{self.wall_s:.2f} s"),
            ("solver", f"{self.solver_s:.2f} s ({_pct(self.solver_s, self.wall_s)})"),
        ]
        rows += [
            (f"observer {name}", f"{s:.2f} s ({_pct(s, self.wall_s)})")
            for name, s in self.observer_s.items()
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "-"


def run(model: Any, observers: Sequence[Observer], until_min: float) -> RunStats:
    """Step ``model`` until ``until_min`` (simulated minutes), calling observers when due.

    Observers are initialized before the first step and finalized at the end, also when a step
    raises (status ``failed``) or the user interrupts (``interrupted``); the error propagates.
    """
    t_start = time.perf_counter()
    observer_s = {obs.name: 0.0 for obs in observers}
    start_min = float(model.time_min)
    start_steps = int(model.steps)
    n_steps = max(0, round((until_min - start_min) / float(model.dt_min)))
    solver_s = 0.0
    sync = model.backend.synchronize

    def call(obs: Observer, method: str, *args: Any) -> None:
        t0 = time.perf_counter()
        getattr(obs, method)(model, *args)
        observer_s[obs.name] += time.perf_counter() - t0

    status: Status = "failed"
    try:
        for obs in observers:
            call(obs, "initialize")
        for _ in range(n_steps):
            t0 = time.perf_counter()
            model.step()
            sync()
            solver_s += time.perf_counter() - t0
            now = float(model.time_min)
            for obs in observers:
                if obs.schedule.due(now):
                    call(obs, "handle")
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        for obs in observers:
            try:
                call(obs, "finalize", status)
            except Exception:
                if status == "done":
                    raise
                log.exception("observer %s failed while finalizing a %s run", obs.name, status)
    return RunStats(
        status,
        int(model.steps) - start_steps,
        start_min,
        float(model.time_min),
        time.perf_counter() - t_start,
        solver_s,
        observer_s,
    )


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
