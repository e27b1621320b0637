"""Observer protocol and schedules: what the step loop (:mod:`abm.runner`) calls, and when.

Data flow: model -> runner -> observers (this protocol) -> files. An observer fires on its own
schedule, either every step or every ``every_min`` simulated minutes aligned to multiples of
``every_min`` (so a resumed run fires at the same times as an uninterrupted one). Only a firing
observer asks the model for host copies of its state.
"""

from __future__ import annotations

import math
from typing import Any, Literal

Status = Literal["done", "failed", "interrupted"]

# Times are sums of dt_min; compare them with a tolerance well below any sensible dt.
TIME_EPS_MIN = 1e-6


class Schedule:
    """When an observer fires: every step (``every_min=None``) or every ``every_min`` minutes."""

    def __init__(self, every_min: float | None = None) -> None:
        if every_min is not None and not every_min > 0:
            raise ValueError(f"an observer interval must be > 0 minutes, got {every_min}")
        self.every_min = every_min
        self._next_min = 0.0

    def start(self, time_min: float) -> None:
        """Arm the schedule at ``time_min``: the next firing is the next multiple after it."""
        self._next_min = self.next_after(time_min)

    def next_after(self, time_min: float) -> float:
        if self.every_min is None:
            return time_min
        k = math.floor(time_min / self.every_min + TIME_EPS_MIN) + 1
        return k * self.every_min

    def on_schedule(self, time_min: float) -> bool:
        """Whether ``time_min`` is one of the firing times (always true for every-step)."""
        if self.every_min is None:
            return True
        k = round(time_min / self.every_min)
        return abs(k * self.every_min - time_min) < TIME_EPS_MIN

    def due(self, time_min: float) -> bool:
        """True (and re-armed) when ``time_min`` reached the next firing time."""
        if self.every_min is None:
            return True
        if time_min + TIME_EPS_MIN < self._next_min:
            return False
        self._next_min = self.next_after(time_min)
        return True


class Observer:
    """Base class: override :meth:`initialize`, :meth:`handle` and :meth:`finalize`.

    ``initialize(model)`` runs once before the first step (the model may be a fresh one at
    t=0 or one rebuilt from a checkpoint), ``handle(model)`` each time the schedule fires
    after a step, ``finalize(model, status)`` once at the end, also when the run failed or was
    interrupted (then the model state may be half-updated: write nothing derived from it).
    """

    name = "observer"

    def __init__(self, every_min: float | None = None) -> None:
        self.schedule = Schedule(every_min)

    def initialize(self, model: Any) -> None:
        self.schedule.start(model.time_min)

    def handle(self, model: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def finalize(self, model: Any, status: Status) -> None:
        return None
