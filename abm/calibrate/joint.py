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

Therapy arms (``therapy=True``; the ``--predictive`` check of ``abm-calibrate``, never the
ABC): ``oa_msc`` (``therapy=msc``, its default dose) and ``oa_msc_primed`` (the same, IFN-γ
primed) run from the particle's spin-up through the spin-up cache (:func:`abm.spinup.start_model`:
the spin-up is simulated once per particle and shared by its therapy arms) for ``sim.days``;
their readout ``<metric>_benefit`` is the untreated ``oa`` arm's metric minus the treated
arm's, averaged over the window (a branched run equals the continuous one bit for bit, so
the pair shares every draw up to the injection). A ratio of two therapy arms (C6: primed over
naive) is the ratio of their benefits; when the denominator's benefit is <= 0 the ratio is
+inf if the numerator's benefit is larger (the first arm protects more), else 0.

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
# Therapy arms (hold-out targets; ``therapy=True``): the OA scenario with these overrides,
# branched from the particle's own spin-up (abm.spinup cache), paired with its ``oa`` arm.
THERAPY_ARMS = {
    "oa_msc": ("therapy=msc",),
    "oa_msc_primed": ("therapy=msc", "therapy.prelicensed=true"),
}
BENEFIT = "_benefit"  # readout <metric>_benefit: untreated minus treated, same seed
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


def benefit_ratio(num: float, den: float) -> float:
    """The ratio of two arms' benefits: ``num / den``; with ``den <= 0`` (the second arm does
    not help) +inf when the first helps more, else 0."""
    if den > 0:
        return num / den
    return math.inf if num > den else 0.0


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
        self,
        targets: Sequence[Target],
        overrides: Sequence[str] = (),
        *,
        assays: bool = False,
        therapy: bool = False,
    ) -> None:
        from abm.config import compose

        self.overrides = list(overrides)
        self.assays = bool(assays)
        self.therapy = bool(therapy)
        base = compose(self.overrides, warn=False)  # ConfigError: bad overrides, said early
        self.spinup_days = float(base.sim.get("spinup_days", 0.0) or 0.0)
        self.days = float(base.sim.days)
        self.seed = int(base.seed)
        self._units = metric_units()
        self.targets = [t for t in targets if self.why_not(t) is None]
        arms = {a for t in self.targets if not self.is_assay(t) for a in t.arms}
        if arms & set(THERAPY_ARMS):
            arms.add("oa")  # the pair of every therapy arm
        self.arms = sorted(arms)

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
        therapy = [a for a in target.arms if a in THERAPY_ARMS]
        if therapy:
            if not self.therapy:
                return (
                    f"therapy arm {therapy[0]!r}: computed only in the predictive check "
                    "(from the spin-up cache; too costly for every particle)"
                )
            if len(therapy) != len(target.arms):
                return "a ratio of a therapy arm and an untreated arm is not wired"
            metric = target.readout.removesuffix(BENEFIT)
            if not target.readout.endswith(BENEFIT) or metric not in self._units:
                return (
                    f"readout {target.readout!r}: a therapy arm's readout is <metric>{BENEFIT} "
                    "(untreated minus treated)"
                )
            if target.kind == "qualitative":
                return "qualitative patterns are not computed by the joint simulator"
            unit = self._units[metric]
            if not target.is_ratio and unit != target.unit and (unit, target.unit) not in CONVERT:
                return f"unit {target.unit!r}: the metric {metric} is in {unit}"
            return None
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

    def therapy_config(self, arm: str, values: Mapping[str, float], seed: int) -> Any:
        """The composed config of a therapy arm: OA, the arm's therapy, the spin-up kept."""
        from abm.config import compose

        params = [f"{k}={float(v):.12g}" for k, v in values.items()]
        return compose(
            [*self.overrides, *params, "scenario=oa", *THERAPY_ARMS[arm], f"seed={seed}"],
            warn=False,
        )

    def run_arm(self, arm: str, values: Mapping[str, float], seed: int) -> Any:
        """The metric history of one arm (a DataFrame, one row per step, ``day`` = days after
        the spin-up)."""
        if arm in THERAPY_ARMS:
            from abm.spinup import start_model

            model = start_model(self.therapy_config(arm, values, seed))
            metrics = model.run(self.days).copy()
            metrics["day"] = metrics["time_min"] / MIN_PER_DAY
            return metrics
        from abm.model import JointModel

        model = JointModel(self.config(arm, values, seed))
        metrics = model.run(self.spinup_days + self.days).copy()
        metrics["day"] = metrics["time_min"] / MIN_PER_DAY - self.spinup_days
        return metrics

    def _benefit(self, runs: Mapping[str, Any], arm: str, target: Target) -> float:
        """Untreated ``oa`` minus ``arm`` of ``target``'s metric, mean over its window."""
        a, b = self.window(target)
        metric = target.readout.removesuffix(BENEFIT)
        vals = []
        for name in ("oa", arm):
            m = runs[name]
            day = m["day"].to_numpy(float)
            series = m[metric].to_numpy(float)
            sel = (day > a + 1e-9) & (day <= b + 1e-9)
            if a == b or not sel.any():
                vals.append(float(np.interp(b, day, series)))
            else:
                vals.append(float(np.mean(series[sel])))
        unit = self._units[metric]
        scale = CONVERT.get((unit, target.unit), 1.0) if not target.is_ratio else 1.0
        return (vals[0] - vals[1]) * scale

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
            if any(a in THERAPY_ARMS for a in t.arms):
                ben = [self._benefit(runs, a, t) for a in t.arms]
                out[t.id] = benefit_ratio(*ben) if t.is_ratio else ben[0]
                continue
            if t.is_ratio:
                num, den = (self._readout(runs[a], t, True) for a in t.arms)
                out[t.id] = num / den if den > 0 else math.inf
            else:
                out[t.id] = self._readout(runs[t.arm], t, False)
        return out
