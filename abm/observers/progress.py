"""Progress bar: a tqdm bar over simulated days, updated every step.

Data flow: runner -> :class:`ProgressObserver` -> stderr. Shown when ``output.progress`` is
true, or when it is null (the default) and stderr is a terminal; never touches model state.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

from abm.observers.base import Observer, Status
from abm.units import MIN_PER_DAY


class ProgressObserver(Observer):
    name = "progress"

    def __init__(self, until_min: float, enabled: bool | None = None,
                 desc: str = "abm-run") -> None:  # fmt: skip
        super().__init__(None)
        self.desc = desc
        self.until_min = float(until_min)
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.bar: tqdm | None = None
        self._shown_min = 0.0

    def initialize(self, model: Any) -> None:
        super().initialize(model)
        self._shown_min = float(model.time_min)
        self.bar = tqdm(
            total=round(self.until_min / MIN_PER_DAY, 3),
            initial=round(self._shown_min / MIN_PER_DAY, 3),
            unit="day",
            desc=self.desc,
            disable=not self.enabled,
            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} days [{elapsed}<{remaining}]",
        )

    def handle(self, model: Any) -> None:
        now = float(model.time_min)
        self.bar.update((now - self._shown_min) / MIN_PER_DAY)
        self._shown_min = now

    def finalize(self, model: Any, status: Status) -> None:
        if self.bar is not None:
            self.bar.close()
