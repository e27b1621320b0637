"""metrics.csv: the DataCollector table, appended on the snapshot cadence and at the end.

Data flow: model.datacollector.model_vars (one row per step) -> :class:`MetricsCSVObserver` ->
``metrics.csv`` (the same table as ``/metrics`` in ``run.h5``). Rows are appended, never
rewritten, so the file costs O(new rows) per write and a killed run keeps its rows up to the last
write. Floats are written with full (round-trip) precision.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from abm.observers.base import Observer, Status
from abm.schema import METRICS_FILE, TIME


class MetricsCSVObserver(Observer):
    """Writes the rows collected since its last write; the whole history at initialize."""

    name = "metrics"

    def __init__(self, run_dir: str | os.PathLike, every_min: float) -> None:
        super().__init__(every_min)
        self.path = Path(run_dir) / METRICS_FILE
        self._rows = 0

    def initialize(self, model: Any) -> None:
        super().initialize(model)
        self._rows = 0
        self._write(model, mode="w")

    def _write(self, model: Any, mode: str = "a") -> None:
        columns = model.datacollector.model_vars
        stop = len(columns[TIME])
        if stop <= self._rows and mode == "a":
            return
        table = pd.DataFrame({name: values[self._rows : stop] for name, values in columns.items()})
        with open(self.path, mode, newline="") as fh:
            table.to_csv(fh, index=False, header=(mode == "w"))
            fh.flush()
        self._rows = stop

    def handle(self, model: Any) -> None:
        self._write(model)

    def finalize(self, model: Any, status: Status) -> None:
        self._write(model)
