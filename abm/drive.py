"""The disease drive on macrophages and FLS (tissue stage of the data flow).

Placeholder (issue: biology v2): the drive is the scenario's ``inflammatory_drive`` times the
patient's ``severity``, updated once per step into ``model.world.drive``.
"""

from __future__ import annotations

from typing import Any


class Drive:
    """The drive of one model (``model.drive``); ``value`` is what the rules read as
    ``ctx.world.drive``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.value = self.baseline()

    def baseline(self) -> float:
        cfg = self.model.cfg
        return float(cfg.scenario.inflammatory_drive) * float(cfg.patient.severity)

    def update(self, ctx: Any, model: Any) -> None:
        """Once per step, after the matrix update."""
        self.value = self.baseline()
