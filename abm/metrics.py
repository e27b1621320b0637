"""The metric catalogue: every column of ``metrics.csv`` / ``/metrics`` with its unit and how it
is computed (observe stage of the data flow).

Order (a contract): ``time_min``; ``<field>_fluid`` and ``<field>_synovium`` for every
diffusing field (mean over the fluid rows, and over the lining + sublining rows); then each
registered cell type's metrics in registry order; then the tissue's (cartilage matrix); then
the clinical readouts (:mod:`abm.readouts`).
:func:`compute_row` evaluates every metric on the backend and brings the row to the host in
one copy, together with the smallest and largest field value (the model's sanity check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from abm.backend import to_numpy
from abm.params import FIELD_NAMES


@dataclass(frozen=True)
class Metric:
    """One metric column: ``compute(model)`` returns a 0-d backend array or a number."""

    name: str
    unit: str
    doc: str
    compute: Callable[[Any], Any]


def _field_metrics(bio: Any) -> list[Metric]:
    out = []
    for f in FIELD_NAMES:
        unit = bio.fields[f].units
        out.append(Metric(f"{f.lower()}_fluid", unit, f"mean {f} in the synovial fluid", None))
        out.append(Metric(f"{f.lower()}_synovium", unit, f"mean {f} in lining + sublining", None))
    return out


def tissue_metrics() -> list[Metric]:
    """Cartilage matrix means (healthy = 1)."""
    return [
        Metric("cartilage_agg", "1 (healthy = 1)", "mean aggrecan over the cartilage",
               lambda m: m.xp.mean(m.matrix.agg_cart())),
        Metric("cartilage_col2", "1 (healthy = 1)", "mean collagen II over the cartilage",
               lambda m: m.xp.mean(m.matrix.col2_cart())),
    ]  # fmt: skip


def catalogue(types: list[Any], bio: Any) -> list[Metric]:
    """Every metric in column order (``time_min`` first)."""
    out = [Metric("time_min", "min", "simulated time", None), *_field_metrics(bio)]
    for t in types:
        out += t.metrics()
    from abm.readouts import readout_metrics  # lazy: abm.readouts imports Metric

    return out + tissue_metrics() + readout_metrics()


def compute_row(model: Any, metrics: list[Metric]) -> tuple[dict[str, float], float, float]:
    """The metric row of ``model`` now, and the smallest and largest field value; one
    device->host copy. Cell counts are exact (float32 holds integers below 2**24)."""
    xp, u = model.xp, model.u
    F = len(FIELD_NAMES)
    means = xp.stack(
        [xp.mean(u[:, a:b].reshape(F, -1), axis=1) for a, b in model.slabs], axis=1
    )  # (F, 2): fluid, synovium
    rest = [m for m in metrics if m.compute is not None]
    values = [xp.asarray(m.compute(model)) for m in rest] + [xp.min(u), xp.max(u)]
    vec = to_numpy(xp.concatenate([means.reshape(-1), xp.stack(values).astype(means.dtype)]))
    vals = [float(v) for v in vec]
    row = {"time_min": float(model.time_min)}
    for i, f in enumerate(FIELD_NAMES):
        row[f"{f.lower()}_fluid"] = vals[2 * i]
        row[f"{f.lower()}_synovium"] = vals[2 * i + 1]
    for m, v in zip(rest, vals[2 * F :], strict=False):
        row[m.name] = v
    return {m.name: row[m.name] for m in metrics}, vals[-2], vals[-1]


def units(metrics: list[Metric]) -> dict[str, str]:
    """Metric name -> unit."""
    return {m.name: m.unit for m in metrics}
