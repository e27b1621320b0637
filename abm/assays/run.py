"""Run an assay: a protocol (:mod:`abm.assays.protocol`) + the composed config's biology -> one
:class:`~abm.assays.dish.Dish` per condition, stepped for ``days`` -> a tidy table of readouts
(one row per condition), a time course, derived columns against the reference condition, and
a figure. Used by the ``abm-assay`` command (:mod:`abm.assays.cli`) and by the calibration
(:mod:`abm.assays.calibration`).

Readouts at the end of the assay (harvest):
- ``medium_<field>_pg_ml`` (KYN: ``medium_KYN_uM``): the supernatant, mixed (the column's mean
  plus the held stimulus); ``floor_<field>_pg_ml``: what the cells on the floor sense;
- T cells: ``effector_divisions_per_cell`` (Th1 + Th17 divisions over the assay per seeded
  T cell), ``effector_divisions_pulse_per_cell`` (over the last ``pulse_hours``: the
  3H-thymidine pulse), ``effector_fraction``, ``treg_fraction``, ``cells_fold`` (T cells now /
  seeded), ``suppression_factor_mean`` (the rule's (1-H(KYN))(1-H(PGE2))(1-H(TGFb)));
- macrophages: ``p_mean``, ``m1_fraction``, ``m2_fraction``, ``regulatory_mean`` (R);
- FLS: ``activation_mean``, ``activated_fraction``; chondrocytes: ``c_mean``,
  ``catabolic_fraction``; MSCs: ``msc_exposure_mean``, ``msc_licensed_fraction``.

Derived (:func:`derive`), against the reference condition (no MSCs) of the same seed: for each
key readout ``<col>_vs_ref`` (fold), ``<col>_kept_fraction`` for a condition with a ``pair``
((x - ref) / (pair - ref): the part of the pair's effect a knockout keeps), ``<col>_vs_additive``
(x / (ref + MSC monoculture)) for medium readouts where the protocol has an MSC monoculture;
``effector_proliferation_suppression_pct`` = 100 (1 - divisions / reference divisions) (and
``..._pulse_pct``); ``il10_rise_kept_fraction`` (macrophages, = the IL-10 kept fraction).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.assays.dish import FIDX, CultureSpec, Dish
from abm.assays.protocol import AssayError, Condition, Protocol, load_protocol
from abm.params import FIELD_NAMES
from abm.units import MIN_PER_DAY

KEY_READOUTS = {
    "tcell": ("effector_divisions_per_cell",),
    "macrophage": ("medium_IL10_pg_ml", "p_mean", "m2_fraction"),
    "fls": ("medium_IL6_pg_ml", "medium_CCL2_pg_ml", "medium_PROT_pg_ml", "activation_mean"),
    "chondrocyte": (
        "medium_IL6_pg_ml",
        "medium_CCL2_pg_ml",
        "medium_PROT_pg_ml",
        "c_mean",
        "catabolic_fraction",
    ),
}
UNITS_NG = 1e3  # ng/mL -> pg/mL


CELL_READOUTS = {
    "tcell": (
        "effector_divisions_per_cell",
        "effector_divisions_pulse_per_cell",
        "effector_fraction",
        "treg_fraction",
        "cells_fold",
        "suppression_factor_mean",
    ),
    "macrophage": ("p_mean", "m1_fraction", "m2_fraction", "regulatory_mean"),
    "fls": ("activation_mean", "activated_fraction"),
    "chondrocyte": ("c_mean", "catabolic_fraction"),
}
MSC_READOUTS = ("msc_exposure_mean", "msc_licensed_fraction")


def readout_columns(protocol: Protocol) -> list[str]:
    """Every readout column of the protocol's table (raw and derived)."""
    from abm.params import default_biology

    bio = default_biology()
    medium = [medium_column(f, bio)[0] for f in protocol.medium]
    cols = [
        *medium,
        *(c.replace("medium_", "floor_", 1) for c in medium),
        *CELL_READOUTS[protocol.target],
        *MSC_READOUTS,
    ]
    for k in KEY_READOUTS[protocol.target]:
        if k in cols:
            cols += [f"{k}_vs_ref", f"{k}_kept_fraction"]
            if protocol.msc_alone is not None and k.startswith("medium_"):
                cols.append(f"{k}_vs_additive")
    if protocol.target == "tcell":
        cols += [
            "effector_proliferation_suppression_pct",
            "effector_proliferation_suppression_pulse_pct",
        ]
    if protocol.target == "macrophage" and "medium_IL10_pg_ml" in medium:
        cols.append("il10_rise_kept_fraction")
    return cols


def medium_column(field: str, bio: Any) -> tuple[str, float]:
    """(column name, factor from field units) of a medium readout."""
    if bio.fields[field].units == "µM":
        return f"medium_{field}_uM", 1.0
    return f"medium_{field}_pg_ml", UNITS_NG


@dataclass
class AssayResult:
    """One assay's outcome: ``table`` (one row per condition, derived columns included),
    ``timecourse`` (condition x recorded time), the ``protocol``, the ``seed`` and
    ``overrides`` it ran with."""

    protocol: Protocol
    table: pd.DataFrame
    timecourse: pd.DataFrame
    seed: int
    overrides: tuple[str, ...]


def build_dish(cfg: Any, protocol: Protocol, cond: Condition, seed: int) -> Dish:
    """The dish of one condition (target monolayer on the floor; MSCs on the floor or on the
    insert)."""
    specs = []
    if cond.target:
        specs.append(
            CultureSpec(
                protocol.target,
                protocol.target_cells,
                protocol.target_agents,
                0.0,
                1.0 if cond.ratio > 0 and cond.placement == "contact" else 0.0,
                dict(protocol.target_init),
            )
        )
    if cond.ratio > 0:
        height = protocol.insert_um if cond.placement == "transwell" else 0.0
        specs.append(
            CultureSpec("msc", cond.ratio * protocol.target_cells, protocol.msc_agents, height, 0.0)
        )
    return Dish(
        cfg,
        protocol.well,
        specs,
        stimulus=protocol.stimulus,
        drive=protocol.drive,
        mechanical_drive=protocol.mechanical_drive,
        seed=seed,
        knockouts=cond.knockouts,
    )


def cell_readouts(dish: Dish, protocol: Protocol) -> dict[str, float]:
    """The readouts of the cells now (NaN for a type absent from the dish)."""
    from abm.cells.chondrocyte import CATABOLIC
    from abm.cells.fls import ACTIVATED
    from abm.cells.macrophage import M1_THRESHOLD
    from abm.cells.msc import LICENSED
    from abm.cells.population import TH1, TH17, TREG

    out: dict[str, float] = {}
    kind = protocol.target
    c = dish.culture(kind)
    nan = float("nan")

    def mean(x: Any) -> float:
        return float(np.mean(x)) if len(x) else nan

    if kind == "tcell":
        if c is None:
            out.update(dict.fromkeys(CELL_READOUTS["tcell"], nan))
        else:
            div = c.division_counts()
            eff = div[:, TH1] + div[:, TH17] if div.size else np.zeros(0)
            pulse = max(1, round(protocol.pulse_hours * 60.0 / dish.dt))
            per = c.cells_per_agent / protocol.target_cells
            sub = c.h.pop["subset"]
            out.update(
                {
                    "effector_divisions_per_cell": float(eff.sum()) * per,
                    "effector_divisions_pulse_per_cell": float(eff[-pulse:].sum()) * per,
                    "effector_fraction": mean((sub == TH1) | (sub == TH17)),
                    "treg_fraction": mean(sub == TREG),
                    "cells_fold": c.n / c.spec.agents,
                    "suppression_factor_mean": mean(c.h.pop["state"]),
                }
            )
    elif kind == "macrophage":
        p = c.h.pop["state"] if c is not None else np.zeros(0)
        out.update(
            {
                "p_mean": mean(p),
                "m1_fraction": mean(p > M1_THRESHOLD),
                "m2_fraction": mean(p < -M1_THRESHOLD),
                "regulatory_mean": mean(c.h.pop["regulatory"]) if c is not None else nan,
            }
        )
    elif kind == "fls":
        a = c.h.pop["state"] if c is not None else np.zeros(0)
        out.update({"activation_mean": mean(a), "activated_fraction": mean(a > ACTIVATED)})
    elif kind == "chondrocyte":
        st = c.h.pop["state"][c.h.pop["alive"]] if c is not None else np.zeros(0)
        out.update({"c_mean": mean(st), "catabolic_fraction": mean(st > CATABOLIC)})
    m = dish.culture("msc")
    out["msc_exposure_mean"] = mean(m.h.pop["exposure"]) if m is not None else nan
    out["msc_licensed_fraction"] = mean(m.h.pop["state"] > LICENSED) if m is not None else nan
    return out


def medium_readouts(dish: Dish, protocol: Protocol) -> dict[str, float]:
    """``medium_*``: the harvested supernatant (mixed); ``floor_*``: what the cells on the
    floor sense (the floor voxel plus the stimulus)."""
    med, floor = dish.medium(), dish.sensed(0)
    out = {}
    for f in protocol.medium:
        col, k = medium_column(f, dish.bio)
        out[col] = float(med[FIDX[f]]) * k
    for f in protocol.medium:
        col, k = medium_column(f, dish.bio)
        out[col.replace("medium_", "floor_", 1)] = float(floor[FIDX[f]]) * k
    return out


def run_condition(
    cfg: Any,
    protocol: Protocol,
    cond: Condition,
    seed: int,
    days: float,
    tick: Callable[[int], None] | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Step one condition's dish for ``days``: (readout row, time course)."""
    dish = build_dish(cfg, protocol, cond, seed)
    steps = round(days * MIN_PER_DAY / dish.dt)
    every = max(1, round(protocol.record_hours * 60.0 / dish.dt))
    rows: list[dict] = []

    def record(d: Dish) -> None:
        rows.append(
            {
                "condition": cond.label,
                "time_h": d.time_min / 60.0,
                **medium_readouts(d, protocol),
                **cell_readouts(d, protocol),
            }
        )

    record(dish)
    done = 0
    while done < steps:
        n = min(every, steps - done)
        dish.run(n)
        done += n
        record(dish)
        if tick is not None:
            tick(n)
    row = {
        "condition": cond.label,
        "msc_ratio": cond.ratio,
        "placement": cond.placement if cond.ratio > 0 else "none",
        "knockouts": ";".join(cond.knockouts) or "none",
        "target_cells": cond.target,
        "msc_cells_per_well": cond.ratio * protocol.target_cells,
        "days": dish.time_min / MIN_PER_DAY,
        "seed": seed,
        **medium_readouts(dish, protocol),
        **cell_readouts(dish, protocol),
    }
    return row, pd.DataFrame(rows)


def derive(table: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Add the derived columns (see the module docstring) to a readout table."""
    t = table.set_index("condition", drop=False)
    ref_label = protocol.reference
    if ref_label not in t.index:
        return table
    ref = t.loc[ref_label]
    keys = [k for k in KEY_READOUTS[protocol.target] if k in t.columns]
    alone = protocol.msc_alone if protocol.msc_alone in t.index else None
    for k in keys:
        with np.errstate(divide="ignore", invalid="ignore"):
            t[f"{k}_vs_ref"] = t[k] / ref[k]
            kept = np.full(len(t), np.nan)
            for i, label in enumerate(t.index):
                pair = protocol.condition(label).pair
                if pair is not None and pair in t.index:
                    kept[i] = (t.loc[label, k] - ref[k]) / (t.loc[pair, k] - ref[k])
            t[f"{k}_kept_fraction"] = kept
            if alone is not None and k.startswith("medium_"):
                t[f"{k}_vs_additive"] = t[k] / (ref[k] + t.loc[alone, k])
    if protocol.target == "tcell":
        for col, name in (
            ("effector_divisions_per_cell", ""),
            ("effector_divisions_pulse_per_cell", "_pulse"),
        ):
            with np.errstate(divide="ignore", invalid="ignore"):
                t[f"effector_proliferation_suppression{name}_pct"] = 100.0 * (
                    1.0 - t[col] / ref[col]
                )
    if protocol.target == "macrophage" and "medium_IL10_pg_ml_kept_fraction" in t.columns:
        t["il10_rise_kept_fraction"] = t["medium_IL10_pg_ml_kept_fraction"]
    return t.reset_index(drop=True)


def run_assay(
    name: str | Protocol,
    overrides: Sequence[str] = (),
    *,
    seed: int | None = None,
    days: float | None = None,
    conditions: Sequence[str] | None = None,
    progress: bool = False,
) -> AssayResult:
    """Run the assay ``name`` (a shipped name, a .yaml path or a loaded protocol) with the
    config ``overrides`` (biology.* and any other key; ConfigError on a bad one), for the
    protocol's days (or ``days``), every condition (or the labels in ``conditions``: the
    reference is always added). Seed: ``seed`` or the config's; every condition runs the same
    seed (paired)."""
    from abm.config import compose

    protocol = name if isinstance(name, Protocol) else load_protocol(name)
    cfg = compose(list(overrides), warn=False)
    seed = int(cfg.seed if seed is None else seed)
    days = protocol.days if days is None else float(days)
    if not days > 0:
        raise AssayError(f"days {days:g}: must be > 0")
    wanted = [c.label for c in protocol.conditions]
    if conditions is not None:
        for label in conditions:
            if label not in wanted:
                raise AssayError(
                    f"{protocol.name}: no condition {label!r}; valid: {', '.join(wanted)}"
                )
        need = set(conditions) | {protocol.reference}
        need |= {protocol.condition(lb).pair for lb in conditions} - {None}
        wanted = [lb for lb in wanted if lb in need]
    dt = float(cfg.sim.dt_min)
    total = round(days * MIN_PER_DAY / dt) * len(wanted)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=protocol.name, unit="step", leave=False)
    rows, courses = [], []
    try:
        for label in wanted:
            row, course = run_condition(
                cfg,
                protocol,
                protocol.condition(label),
                seed,
                days,
                tick=None if bar is None else bar.update,
            )
            rows.append(row)
            courses.append(course)
    finally:
        if bar is not None:
            bar.close()
    table = derive(pd.DataFrame(rows), protocol)
    table.insert(0, "assay", protocol.name)
    return AssayResult(
        protocol, table, pd.concat(courses, ignore_index=True), seed, tuple(overrides)
    )


# ------------------------------------------------------------------ outputs
def _atomic(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_result(result: AssayResult, out: Path) -> list[Path]:
    """``OUT/<name>.csv`` (readouts), ``OUT/<name>_timecourse.csv``, ``OUT/<name>.png``, each
    written atomically; returns the paths."""
    name = result.protocol.name
    paths = [out / f"{name}.csv", out / f"{name}_timecourse.csv", out / f"{name}.png"]
    _atomic(paths[0], lambda p: result.table.to_csv(p, index=False, float_format="%.6g"))
    _atomic(paths[1], lambda p: result.timecourse.to_csv(p, index=False, float_format="%.6g"))
    _atomic(paths[2], lambda p: plot(result, p))
    return paths


def plot(result: AssayResult, path: str | Path) -> None:
    """Bars of the key readouts per condition, the time course of the first one and, for the
    MLR, suppression against the MSC ratio with the 60-98% band of Di Nicola 2002."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, t = result.protocol, result.table
    keys = [k for k in KEY_READOUTS[p.target] if k in t.columns]
    extra = 2 if p.target == "tcell" else 1
    n = len(keys) + extra
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.6 * nrows), squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    axes = axes[:n]
    labels = list(t["condition"])
    x = np.arange(len(labels))
    for ax, k in zip(axes, keys, strict=False):
        ax.bar(x, t[k].to_numpy(float), color="tab:blue")
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(k, fontsize=8)
    ax = axes[len(keys)]
    tc = result.timecourse
    first = keys[0]
    for label in labels:
        sel = tc[tc["condition"] == label]
        ax.plot(sel["time_h"], sel[first], label=label, lw=1)
    ax.set_xlabel("hours")
    ax.set_title(f"{first} over time", fontsize=8)
    ax.legend(fontsize=6)
    if p.target == "tcell":
        ax = axes[-1]
        col = "effector_proliferation_suppression_pct"
        sel = t[(t["placement"].isin(["contact", "none"])) & (t["knockouts"] == "none")]
        sel = sel.sort_values("msc_ratio")
        r = sel["msc_ratio"].to_numpy(float)
        ok = r > 0
        ax.axhspan(60, 98, color="tab:green", alpha=0.2, label="Di Nicola 2002: 60-98%")
        ax.plot(r[ok], sel[col].to_numpy(float)[ok], "o-", label="model (contact)")
        ax.set_xscale("log")
        ax.set_xlabel("MSC : T cells")
        ax.set_ylabel("suppression of effector divisions, %")
        ax.set_ylim(-5, 105)
        ax.legend(fontsize=6)
    fig.suptitle(f"{p.title} (seed {result.seed})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


__all__ = ["FIELD_NAMES", "AssayResult", "derive", "run_assay", "write_result"]
