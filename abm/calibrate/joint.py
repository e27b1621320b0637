"""The joint model as a calibration simulator (``abm-calibrate --model joint``).

Data flow: config overrides + one particle's parameter values -> :func:`abm.config.compose`
per arm (an untreated scenario: ``oa``, ``healthy``, ``oa_mild``; ``therapy=none``) ->
:class:`abm.model.JointModel` run for ``sim.spinup_days + sim.days`` days in memory -> its
metric history (one row per step) -> the targets' readouts over their windows (days after the
spin-up) -> ``{target id: value}`` for the distance (:mod:`abm.calibrate.distance`).

The spin-up is simulated in the same run, not through the spin-up cache (:mod:`abm.spinup`):
every particle has its own biology, so a cache entry would never be reused and thousands of
them would fill the disk. For an untreated arm the two are the same run (docs/protocol.md: a
branched run equals the continuous one bit for bit), so day ``t`` after the spin-up is
simulated day ``sim.spinup_days + t``.

Readouts: any metric column (``metrics.csv``; a fluid/synovium level converted from ng/mL to
the target's pg/mL), ``macrophage_m1_fraction`` (M1 / all macrophages) and
``agg_loss_pct_per_year`` (the aggrecan lost over the window, % of its start, per 365.25
days). A window ``A:B`` is the mean over days (A, B] after the spin-up; a window that reaches
past ``sim.days`` is replaced by the last ``min(B - A, sim.days)`` days (said once by
:meth:`JointSimulator.clipped`). A ratio arm ``A/B`` divides the readouts of two arms.
Targets of other arms (MSC therapy, IL-1Ra, rule-level, explant or mouse experiments) and
qualitative ones are not computed: :meth:`JointSimulator.why_not` says why, the command lists
them and leaves them out.

In-silico assays (``assays=True``): targets whose arms are conditions of an assay
(conf/assays/*.yaml ``arms``: ``mlr_msc`` (C3), ``macrophage``, ``macrophage_msc``,
``macrophage_msc_pge2_ko`` (C4)) are computed from the dish assays of :mod:`abm.assays`
(:mod:`abm.assays.calibration`), with the same overrides, the particle's values and its seed;
each assay runs once per particle, only the conditions the targets need. Without it they are
listed as not computed (an assay adds seconds per particle).

Seeds: every particle runs its own seed, ``seed`` + a hash of its parameter values (so the
posterior includes the model's seed-to-seed noise and a particle's readouts are
reproducible); both arms of a particle share it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from abm.calibrate.targets import Target
from abm.units import MIN_PER_DAY

ARMS = ("oa", "healthy", "oa_mild")  # untreated scenarios (conf/scenario)
DERIVED = {"macrophage_m1_fraction": "fraction", "agg_loss_pct_per_year": "%/year"}
CONVERT = {("ng/mL", "pg/mL"): 1e3, ("pg/mL", "ng/mL"): 1e-3}
RESERVED = ("scenario", "therapy", "design", "resume", "perturb")
DAYS_PER_YEAR = 365.25


def metric_units() -> dict[str, str]:
    """Metric column -> unit, for the registered cell types (as ``metrics.csv``)."""
    from abm.cells import registry
    from abm.metrics import catalogue, units
    from abm.params import default_biology

    bio = default_biology()
    return units(catalogue([t(getattr(bio, t.name)) for t in registry()], bio))


def particle_seed(values: Mapping[str, float], base: int) -> int:
    """``base`` + a hash of the parameter values, in [0, 2**63)."""
    text = "|".join(f"{k}={float(v)!r}" for k, v in sorted(values.items()))
    h = int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "little")
    return (int(base) + h) % 2**63


class JointSimulator:
    """``simulator(values)`` -> the readouts of ``targets`` (those it computes) keyed by
    target id, from untreated runs of the joint model with ``overrides`` + the parameter
    values."""

    name = "joint"

    def __init__(
        self, targets: Sequence[Target], overrides: Sequence[str] = (), *, assays: bool = False
    ) -> None:
        from abm.config import compose

        self.overrides = list(overrides)
        self.assays = bool(assays)
        base = compose(self.overrides, warn=False)  # ConfigError: bad overrides, said early
        self.spinup_days = float(base.sim.get("spinup_days", 0.0) or 0.0)
        self.days = float(base.sim.days)
        self.seed = int(base.seed)
        self._units = metric_units()
        self.targets = [t for t in targets if self.why_not(t) is None]
        self.arms = sorted({a for t in self.targets if not self.is_assay(t) for a in t.arms})

    @staticmethod
    def is_assay(target: Target) -> bool:
        """True when every arm of ``target`` is a condition of an in-silico assay."""
        from abm.assays.calibration import assay_arms

        return all(a in assay_arms() for a in target.arms)

    def why_not(self, target: Target) -> str | None:
        """None when this simulator computes ``target``, else why not (one phrase)."""
        if self.is_assay(target):
            if not self.assays:
                return "an in-silico assay arm (abm.assays): computed only with assays on"
            from abm.assays.calibration import why_not

            return why_not(target.arms, target.readout, target.unit, target.is_ratio)
        bad = [a for a in target.arms if a not in ARMS]
        if bad:
            return (
                f"arm {bad[0]!r} is not an untreated scenario ({', '.join(ARMS)}): therapy, "
                "rule-level, explant and mouse arms are not wired into the joint simulator"
            )
        if target.kind == "qualitative":
            return "qualitative patterns are not computed by the joint simulator"
        r = target.readout
        if r in DERIVED:
            if target.unit != DERIVED[r]:
                return f"unit {target.unit!r}: {r} is in {DERIVED[r]}"
            if r == "agg_loss_pct_per_year" and (
                target.window is None or target.window[0] == target.window[1]
            ):
                return f"{r} needs a window A:B with A < B"
            return None
        unit = self._units.get(r)
        if unit is None:
            return f"readout {r!r} is not a metric of the joint model"
        if target.is_ratio:
            return None  # a ratio of one metric in two arms: the unit cancels
        if unit != target.unit and (unit, target.unit) not in CONVERT:
            return f"unit {target.unit!r}: the metric {r} is in {unit}"
        return None

    def window(self, target: Target) -> tuple[float, float]:
        """``target``'s window in days after the spin-up, clipped to ``sim.days``."""
        if target.window is None:
            return self.days, self.days
        a, b = target.window
        if b <= self.days:
            return a, b
        width = min(b - a, self.days)
        return self.days - width, self.days

    def clipped(self) -> list[str]:
        """One line per target whose window reaches past ``sim.days`` (it is shortened)."""
        out = []
        for t in self.targets:
            if self.is_assay(t):
                continue
            if t.window is not None and self.window(t) != t.window:
                a, b = self.window(t)
                out.append(
                    f"{t.id}: window {t.window_text()} days reaches past sim.days="
                    f"{self.days:g}: using {a:g}:{b:g}"
                )
        return out

    def config(self, arm: str, values: Mapping[str, float], seed: int) -> Any:
        """The composed config of one arm of one particle (spin-up run in the same run)."""
        from abm.config import compose

        params = [f"{k}={float(v):.12g}" for k, v in values.items()]
        return compose(
            [
                *self.overrides,
                *params,
                f"scenario={arm}",
                "therapy=none",
                "sim.spinup_days=0",
                f"sim.days={self.spinup_days + self.days!r}",
                f"seed={seed}",
            ],
            warn=False,
        )

    def run_arm(self, arm: str, values: Mapping[str, float], seed: int) -> Any:
        """The metric history of one arm (a DataFrame, one row per step, ``day`` = days after
        the spin-up)."""
        from abm.model import JointModel

        model = JointModel(self.config(arm, values, seed))
        metrics = model.run(self.spinup_days + self.days).copy()
        metrics["day"] = metrics["time_min"] / MIN_PER_DAY - self.spinup_days
        return metrics

    def _readout(self, metrics: Any, target: Target, ratio: bool) -> float:
        a, b = self.window(target)
        day = metrics["day"].to_numpy(float)
        r = target.readout
        if r == "agg_loss_pct_per_year":
            agg = metrics["cartilage_agg"].to_numpy(float)
            start, end = np.interp(a, day, agg), np.interp(b, day, agg)
            return 100.0 * (start - end) / start * DAYS_PER_YEAR / (b - a)
        if r == "macrophage_m1_fraction":
            tot = metrics[["macrophage_m1", "macrophage_m0", "macrophage_m2"]].sum(axis=1)
            series = (metrics["macrophage_m1"] / tot.where(tot > 0)).to_numpy(float)
        else:
            series = metrics[r].to_numpy(float)
            unit = self._units[r]
            if not ratio and unit != target.unit:
                series = series * CONVERT[(unit, target.unit)]
        sel = (day > a + 1e-9) & (day <= b + 1e-9)
        if a == b or not sel.any():
            return float(series[int(np.argmin(np.abs(day - b)))])
        return float(np.nanmean(series[sel]))

    def __call__(self, values: Mapping[str, float]) -> dict[str, float]:
        seed = particle_seed(values, self.seed)
        runs = {arm: self.run_arm(arm, values, seed) for arm in self.arms}
        out = {}
        assay = [t for t in self.targets if self.is_assay(t)]
        if assay:
            from abm.assays.calibration import compute

            got = compute([(t.id, t.arms, t.readout, t.unit) for t in assay], values,
                          self.overrides, seed)  # fmt: skip
            for t in assay:
                vals = got[t.id]
                if t.is_ratio:
                    out[t.id] = vals[0] / vals[1] if vals[1] > 0 else math.inf
                else:
                    out[t.id] = vals[0]
        for t in self.targets:
            if self.is_assay(t):
                continue
            if t.is_ratio:
                num, den = (self._readout(runs[a], t, True) for a in t.arms)
                out[t.id] = num / den if den > 0 else math.inf
            else:
                out[t.id] = self._readout(runs[t.arm], t, False)
        return out
