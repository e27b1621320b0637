"""The one step loop: advance the model, hand its state to the observers that are due.

Data flow: a built model (abm.model) + observers (abm.observers) -> :func:`run` (model.step()
+ observers on their schedules) -> files in the run folder. The loop owns the timing: step time
(synchronized on a GPU) against each observer's time, reported in :class:`RunStats`. Observers
see host copies only, made when they fire. ``JointModel.run`` and :mod:`abm.runner` (which
prepares a model and its observers from a config) both step through here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from abm.observers.base import Observer, Status
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
