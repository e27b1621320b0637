"""Populations: one struct of arrays per cell type, living on the backend, and the container of
all of them with a Mesa-3-like vocabulary (``select``, ``agg``, ``groupby``).

Data flow: model build -> :class:`Populations` (one :class:`Population` per registered type,
columns ``id``, ``voxel``, ``age``, ``state`` and the type's own) -> the rules read and update
columns with whole-array operations -> observers get host copies through
:meth:`Population.to_host`. There is no Python loop over cells anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

NAIVE, TH1, TH17, TREG = range(4)  # T-cell subset codes (column ``subset``)


class Population:
    """Struct of arrays of one cell type: ``pop["state"]`` is a backend array of length ``n``."""

    def __init__(self, xp: Any, celltype: Any) -> None:
        self.xp = xp
        self.type = celltype
        self.spec = celltype.all_columns()
        self.cols: dict[str, Any] = {k: xp.zeros(0, dtype=d) for k, d in self.spec.items()}

    @property
    def name(self) -> str:
        return self.type.name

    @property
    def kind(self) -> int:
        """Run-file type code."""
        return self.type.code

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

    def select(self, mask: Any) -> dict[str, Any]:
        """The columns of the cells where ``mask`` is True (a new dict; the population is kept)."""
        return {k: v[mask] for k, v in self.cols.items()}

    def agg(self, column: str, func: Callable[[Any], Any]) -> Any:
        """``func`` applied to one column (e.g. ``pop.agg("state", xp.mean)``), on the backend."""
        return func(self.cols[column])

    def groupby(self, column: str, values: Any, func: Callable[[Any], Any]) -> list[Any]:
        """``func(mask)`` for each value of an integer ``column`` (e.g. counts per T-cell subset:
        ``pop.groupby("subset", range(4), xp.sum)``)."""
        col = self.cols[column]
        return [func(col == v) for v in values]

    def to_host(self) -> dict[str, np.ndarray]:
        """Host copies of every column."""
        from abm.backend import to_numpy

        return {k: np.array(to_numpy(v)) for k, v in self.cols.items()}

    def load(self, cols: dict[str, np.ndarray]) -> None:
        """Replace every column with host arrays ``cols`` (from :meth:`to_host`)."""
        self.cols = {k: self.xp.asarray(cols[k], dtype=d) for k, d in self.spec.items()}


class Populations:
    """Every cell type's :class:`Population`, in registry order: iterate for the populations,
    ``cells["msc"]`` for one, ``cells.n`` for all cells, ``cells.concat("voxel")`` for one
    column over every type (the order the step uses when it scatters or moves)."""

    def __init__(self, xp: Any, types: list[Any]) -> None:
        self.xp = xp
        self.types = list(types)
        self._pops = {t.name: Population(xp, t) for t in self.types}

    def __iter__(self) -> Iterator[Population]:
        return iter(self._pops.values())

    def __getitem__(self, name: str) -> Population:
        return self._pops[name]

    def __contains__(self, name: str) -> bool:
        return name in self._pops

    def __len__(self) -> int:
        return len(self._pops)

    @property
    def n(self) -> int:
        """Cells of every type."""
        return sum(p.n for p in self)

    def concat(self, column: str) -> Any:
        """One column of every population, concatenated in registry order."""
        return self.xp.concatenate([p[column] for p in self])

    def split(self, values: Any) -> Iterator[tuple[Population, Any]]:
        """Pairs (population, its slice of ``values``) for an array laid out as :meth:`concat`."""
        start = 0
        for p in self:
            stop = start + p.n
            yield p, values[start:stop]
            start = stop

    def select(self, predicate: Callable[[Population], bool]) -> list[Population]:
        """The populations for which ``predicate`` is true."""
        return [p for p in self if predicate(p)]

    def agg(self, column: str, func: Callable[[Any], Any]) -> Any:
        """``func`` over one column of every type at once."""
        return func(self.concat(column))
