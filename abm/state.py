"""The model's checkpoint state as one dataclass (observers stage of the data flow):
everything a run needs to continue bit-identically, as host arrays.

``ModelState.to_arrays()`` gives the flat ``name -> array`` dict that ``checkpoint.h5`` stores
(keys ``u``, ``agg``, ``col2``, ``steps``, ``time_min``, ``seed``, ``next_id``, ``step0``,
``injected``, ``depleted``, the other flags, ``cells/<type>/<column>``, ``metrics/<name>``);
``from_arrays`` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class Flags:
    """Run-level switches and scalars that change during a run (the interventions already
    applied; the disease drive and its fragment pool, abm/drive.py; the apoptotic-MSC pool,
    abm/space.py)."""

    injected: bool = False
    depleted: bool = False
    drive: float = 0.0
    fragments: float = 0.0
    apoptotic_msc: float = 0.0


@dataclass
class ModelState:
    """Host copy of a model's full state."""

    u: np.ndarray
    agg: np.ndarray
    col2: np.ndarray
    steps: int
    time_min: float
    seed: int
    next_id: int
    flags: Flags
    cells: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    # steps taken before time 0 (a run branched from a spin-up, abm/spinup.py): time_min is
    # (steps - step0) * dt while the random draws stay keyed by the absolute step
    step0: int = 0

    def to_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "u": self.u, "agg": self.agg, "col2": self.col2,
            "steps": np.asarray(self.steps), "time_min": np.asarray(self.time_min),
            "seed": np.asarray(self.seed), "next_id": np.asarray(self.next_id),
            "step0": np.asarray(self.step0),
        }  # fmt: skip
        for f in fields(Flags):
            out[f.name] = np.asarray(getattr(self.flags, f.name))
        for kind, cols in self.cells.items():
            for col, arr in cols.items():
                out[f"cells/{kind}/{col}"] = arr
        for name, values in self.metrics.items():
            out[f"metrics/{name}"] = np.asarray(values, dtype=np.float64)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ModelState:
        cells: dict[str, dict[str, np.ndarray]] = {}
        metrics: dict[str, list[float]] = {}
        for key, value in arrays.items():
            if key.startswith("cells/"):
                _, kind, col = key.split("/", 2)
                cells.setdefault(kind, {})[col] = value
            elif key.startswith("metrics/"):
                metrics[key.split("/", 1)[1]] = [float(v) for v in value]
        flags = Flags(**{f.name: type(f.default)(arrays[f.name]) for f in fields(Flags)})
        return cls(u=arrays["u"], agg=arrays["agg"], col2=arrays["col2"],
                   steps=int(arrays["steps"]), time_min=float(arrays["time_min"]),
                   seed=int(arrays["seed"]), next_id=int(arrays["next_id"]), flags=flags,
                   cells=cells, metrics=metrics,
                   step0=int(arrays.get("step0", 0)))  # fmt: skip
