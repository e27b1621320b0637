"""Populations: one struct of arrays per cell type, living on the backend.

Data flow: model build -> Population (columns ``id``, ``voxel`` and type-specific state) -> the
rule modules read and update columns with whole-array operations -> observers get host copies
through :meth:`Population.to_host`. There is no Python loop over cells anywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MACROPHAGE, TCELL, FLS, CHONDROCYTE, MSC = range(5)
CELL_TYPES = {MACROPHAGE: "macrophage", TCELL: "tcell", FLS: "fls", CHONDROCYTE: "chondrocyte",
              MSC: "msc"}  # fmt: skip

# phenotype codes written to /cells/phenotype (one global table for every type)
PHENOTYPES = {
    0: "M0", 1: "M1", 2: "M2",
    3: "naive", 4: "Th1", 5: "Th17", 6: "Treg",
    7: "FLS_resting", 8: "FLS_activated",
    9: "chondrocyte_homeostatic", 10: "chondrocyte_catabolic", 11: "chondrocyte_apoptotic",
    12: "MSC_naive", 13: "MSC_licensed",
}  # fmt: skip
NAIVE, TH1, TH17, TREG = range(4)  # T-cell subset codes (column ``subset``)

# columns of every type: name -> numpy dtype; ``state`` is the type's main continuous state
# (macrophage p, FLS a, chondrocyte c, MSC L; T cells keep their activation there)
COLUMNS: dict[int, dict[str, Any]] = {
    MACROPHAGE: {"id": np.int64, "voxel": np.int64, "age": np.float32, "state": np.float32},
    TCELL: {"id": np.int64, "voxel": np.int64, "age": np.float32, "state": np.float32,
            "subset": np.int8},
    FLS: {"id": np.int64, "voxel": np.int64, "age": np.float32, "state": np.float32},
    CHONDROCYTE: {"id": np.int64, "voxel": np.int64, "age": np.float32, "state": np.float32,
                  "alive": np.bool_},
    MSC: {"id": np.int64, "voxel": np.int64, "age": np.float32, "state": np.float32,
          "adhered": np.bool_, "persistent": np.bool_},
}  # fmt: skip


class Population:
    """Struct of arrays of one cell type: ``pop["state"]`` is a backend array of length ``n``."""

    def __init__(self, xp: Any, kind: int) -> None:
        self.xp = xp
        self.kind = kind
        self.spec = COLUMNS[kind]
        self.cols: dict[str, Any] = {k: xp.zeros(0, dtype=d) for k, d in self.spec.items()}

    @property
    def name(self) -> str:
        return CELL_TYPES[self.kind]

    @property
    def n(self) -> int:
        return int(self.cols["id"].shape[0])

    def __getitem__(self, key: str) -> Any:
        return self.cols[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.cols[key] = value

    def append(self, **values: Any) -> None:
        """Add cells; columns not given start at zero/False. Values are backend arrays."""
        m = int(values["id"].shape[0])
        if m == 0:
            return
        xp = self.xp
        for key, dtype in self.spec.items():
            new = values.get(key)
            new = xp.zeros(m, dtype=dtype) if new is None else xp.asarray(new).astype(dtype)
            self.cols[key] = xp.concatenate([self.cols[key], new])

    def keep(self, mask: Any) -> None:
        """Drop the cells where ``mask`` is False (order of the rest is kept)."""
        for key in self.cols:
            self.cols[key] = self.cols[key][mask]

    def take(self, order: Any) -> None:
        """Reorder (or subset) every column by the integer index array ``order``."""
        for key in self.cols:
            self.cols[key] = self.cols[key][order]

    def to_host(self) -> dict[str, np.ndarray]:
        """Host copies of every column."""
        from abm.backend import to_numpy

        return {k: np.array(to_numpy(v)) for k, v in self.cols.items()}

    def load(self, cols: dict[str, np.ndarray]) -> None:
        """Replace every column with host arrays ``cols`` (from :meth:`to_host`)."""
        self.cols = {k: self.xp.asarray(cols[k], dtype=d) for k, d in self.spec.items()}
