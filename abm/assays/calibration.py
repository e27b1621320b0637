"""The assays as calibration data: targets whose arms are assay conditions
(conf/calibration/targets.csv, e.g. C3_mlr on arm ``mlr_msc``) -> the assay runs they need
(only their conditions, the reference added) with a particle's parameter values as config
overrides -> ``{target id: value}`` beside the joint model's readouts
(:class:`abm.calibrate.joint.JointSimulator` with ``assays=True``).

Arms come from the protocols' ``arms`` maps (conf/assays/*.yaml: arm -> condition label); a
target's readout is a column of the assay's table (:mod:`abm.assays.run`) or an alias
(``macrophage_il10`` = the harvested medium IL-10). A ratio arm ``A/B`` divides the readouts
of two conditions of the same assay (the caller divides).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from abm.assays.protocol import Protocol, available, load_protocol
from abm.assays.run import readout_columns, run_assay

ALIASES = {"macrophage_il10": "medium_IL10_pg_ml"}


@cache
def assay_arms() -> dict[str, tuple[str, str]]:
    """Calibration arm -> (assay name, condition label), over the shipped protocols."""
    out: dict[str, tuple[str, str]] = {}
    for name in available():
        for arm, label in load_protocol(name).arms.items():
            out[arm] = (name, label)
    return out


def column_unit(col: str) -> str:
    """The unit of a readout column, from its name."""
    if col.endswith("_pct"):
        return "%"
    if col.endswith("_fraction"):
        return "fraction"
    if col.endswith("_pg_ml"):
        return "pg/mL"
    if col.endswith("_uM"):
        return "µM"
    if "_vs_" in col:
        return "fold"
    if col.endswith("_per_cell"):
        return "divisions/cell"
    return "1"


def why_not(arms: Sequence[str], readout: str, unit: str, ratio: bool) -> str | None:
    """None when the assays compute a target with these ``arms`` and ``readout`` (in ``unit``
    unless a ratio), else why not (one phrase)."""
    known = assay_arms()
    names = {known[a][0] for a in arms if a in known}
    if len(names) != 1 or any(a not in known for a in arms):
        return f"arms {'/'.join(arms)}: not conditions of one assay ({', '.join(sorted(known))})"
    name = names.pop()
    col = ALIASES.get(readout, readout)
    if col not in readout_columns(load_protocol(name)):
        return f"readout {readout!r} is not a readout of assay {name}"
    have = column_unit(col)
    if not ratio and have != unit and {have, unit} != {"pg/mL", "ng/mL"}:
        return f"unit {unit!r}: the assay readout {col} is in {have}"
    return None


def _value(table: Any, label: str, col: str, unit: str) -> float:
    row = table.set_index("condition").loc[label]
    v = float(row[col])
    if column_unit(col) == "pg/mL" and unit == "ng/mL":
        v *= 1e-3
    return v


def compute(
    requests: Sequence[tuple[str, Sequence[str], str, str]],
    values: Mapping[str, float],
    overrides: Sequence[str],
    seed: int,
) -> dict[str, list[float]]:
    """``requests``: (target id, arms, readout, unit); runs every assay needed once (only the
    conditions asked for) with ``overrides`` + the particle's ``values`` and ``seed``; returns
    target id -> the readout of each arm (in arm order)."""
    known = assay_arms()
    params = [f"{k}={float(v):.12g}" for k, v in values.items()]
    need: dict[str, set[str]] = {}
    for _, arms, _, _ in requests:
        for a in arms:
            name, label = known[a]
            need.setdefault(name, set()).add(label)
    tables = {}
    for name, labels in need.items():
        protocol: Protocol = load_protocol(name)
        order = [c.label for c in protocol.conditions if c.label in labels]
        tables[name] = run_assay(protocol, [*overrides, *params], seed=seed, conditions=order).table
    out = {}
    for tid, arms, readout, unit in requests:
        col = ALIASES.get(readout, readout)
        out[tid] = [_value(tables[known[a][0]], known[a][1], col, unit) for a in arms]
    return out
