"""metrics.csv: the DataCollector table, appended on the snapshot cadence and at the end.

Data flow: model.datacollector.model_vars (one row per step) -> :class:`MetricsCSVObserver` ->
``metrics.csv`` (the same table as ``/metrics`` in ``run.h5``). Rows are appended, never
rewritten, so the file costs O(new rows) per write and a killed run keeps its rows up to the last
write. Floats are written with full (round-trip) precision.

The first write (the whole history: one row for a fresh run, the rows up to the checkpoint for a
resumed one) goes to a temporary file that replaces ``metrics.csv`` atomically, so a resume that
fails before it keeps the old file as it was, and one that fails during it, too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from abm.observers.base import Observer, Status
from abm.schema import METRICS_FILE, TIME

TMP_SUFFIX = ".tmp"


class MetricsCSVObserver(Observer):
    """Writes the rows collected since its last write; the whole history at initialize."""

    name = "metrics"

    def __init__(self, run_dir: str | os.PathLike, every_min: float) -> None:
        super().__init__(every_min)
        self.path = Path(run_dir) / METRICS_FILE
        self._rows = 0
        self._started = False

    def initialize(self, model: Any) -> None:
        super().initialize(model)
        self._rows = 0
        tmp = self.path.with_name(self.path.name + TMP_SUFFIX)
        try:
            self._write(model, mode="w", path=tmp)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._started = True

    def _write(self, model: Any, mode: str = "a", path: Path | None = None) -> None:
        """Write the rows since the last write; all of them or none (a failed append, e.g. on
        a full disk, is cut off again, so the file never ends in half a row)."""
        columns = model.datacollector.model_vars
        stop = len(columns[TIME])
        if stop <= self._rows and mode == "a":
            return
        table = pd.DataFrame({name: values[self._rows : stop] for name, values in columns.items()})
        text = table.to_csv(index=False, header=(mode == "w"), lineterminator="\n")
        path = path or self.path
        size = path.stat().st_size if mode == "a" and path.exists() else 0
        try:
            with open(path, mode, newline="") as fh:
                fh.write(text)
        except BaseException:
            if mode == "a":
                with contextlib.suppress(OSError):
                    os.truncate(path, size)
            raise
        self._rows = stop

    def handle(self, model: Any) -> None:
        self._write(model)

    def finalize(self, model: Any, status: Status) -> None:
        if self._started:  # never append to a file this run did not start (a failed resume)
            self._write(model)
