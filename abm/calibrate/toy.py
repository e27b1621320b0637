"""The toy model of ``abm-calibrate --model toy``: two parameters with a known answer.

Data flow: parameter values ``{toy.production, toy.decay}`` -> :class:`ToySimulator` (a
one-compartment cytokine: constant production P (pg/mL/day) and first-order decay d (1/day),
dC/dt = P - d C, C(0) = 0; its readouts with a little multiplicative noise from a seeded rng)
-> ``{target id: value}`` -> the distance (:mod:`abm.calibrate.distance`). The targets
(:func:`toy_targets`) are pseudo-data: the same readouts simulated once at :data:`TRUE` with
their own seed, so a calibration that works puts :data:`TRUE` inside the posterior's 95%
credible interval.

Readouts (closed form, then noise ``10**N(0, NOISE_LOG10)``):

- ``steady_level`` = P / d (pg/mL): a level target;
- ``half_time`` = ln 2 / d (days, the approach to steady state): a level target;
- ``quiet_level`` = 1e-3 P / d (pg/mL, a quiet arm making 1000-fold less): censored below a
  detection limit of 5 pg/mL (true value 2 pg/mL: met near the truth, a bound elsewhere);
- ``level_day5`` = P / d (1 - exp(-5 d)) (pg/mL at day 5): held out (posterior-predictive only).

P / d and ln 2 / d identify both parameters; the steady level alone would leave a ridge.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np

from abm.calibrate.targets import Target

TRUE = {"toy.production": 200.0, "toy.decay": 0.1}  # pg/mL/day, 1/day
PRIOR = {"toy.production": (1.0, 1e4), "toy.decay": (1e-3, 10.0)}  # log-uniform (> a decade)
UNITS = {"toy.production": "pg/mL/day", "toy.decay": "1/day"}
NOISE_LOG10 = 0.01  # SD of the readouts' multiplicative noise, decades
TOLERANCE_LOG10 = 0.1  # the pseudo-targets' tolerance, decades (10x the noise)
TARGET_SEED = 20121  # seed of the pseudo-data
DETECTION_PG_ML = 5.0  # the quiet arm's "detection limit"
SOURCE = "toy: pseudo-data from the known true values (abm/calibrate/toy.py)"


def readouts(production: float, decay: float, rng: np.random.Generator | None) -> dict:
    """The toy's readouts for ``production`` (pg/mL/day) and ``decay`` (1/day), with noise
    from ``rng`` (None: exact)."""
    ss = production / decay
    exact = {
        "steady_level": ss,
        "half_time": math.log(2.0) / decay,
        "quiet_level": 1e-3 * ss,
        "level_day5": ss * (1.0 - math.exp(-5.0 * decay)),
    }
    if rng is None:
        return exact
    noise = 10.0 ** rng.normal(0.0, NOISE_LOG10, size=len(exact))
    return {k: v * f for (k, v), f in zip(exact.items(), noise, strict=True)}


def _seed(values: Mapping[str, float], base: int) -> int:
    """A seed from the parameter values (each particle its own noise, reproducibly)."""
    text = f"{base}|" + "|".join(f"{k}={float(v)!r}" for k, v in sorted(values.items()))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def toy_targets() -> list[Target]:
    """The pseudo-targets: the readouts at :data:`TRUE` with noise (seed TARGET_SEED)."""
    sim = readouts(TRUE["toy.production"], TRUE["toy.decay"], np.random.default_rng(TARGET_SEED))

    def level(tid: str, unit: str, role: str, note: str) -> Target:
        return Target(
            id=tid,
            readout=tid,
            arm="toy",
            window=None,
            kind="level",
            value=float(f"{sim[tid]:.6g}"),
            lower=math.nan,
            upper=math.nan,
            unit=unit,
            tol=TOLERANCE_LOG10,
            species="toy",
            source=SOURCE,
            role=role,
            note=note,
        )

    return [
        level("steady_level", "pg/mL", "calibrate", "P / d"),
        level("half_time", "day", "calibrate", "ln 2 / d"),
        Target(
            id="quiet_level",
            readout="quiet_level",
            arm="toy",
            window=None,
            kind="censored_upper",
            value=DETECTION_PG_ML,
            lower=math.nan,
            upper=math.nan,
            unit="pg/mL",
            tol=TOLERANCE_LOG10,
            species="toy",
            source=SOURCE,
            role="calibrate",
            note="1e-3 P / d, below a detection limit",
        ),
        level("level_day5", "pg/mL", "hold_out", "P / d (1 - exp(-5 d))"),
    ]


class ToySimulator:
    """``simulator(values)`` -> the toy's readouts of ``targets`` keyed by target id (those
    it computes: :meth:`why_not` is None); ``seed`` is mixed into every particle's noise."""

    name = "toy"

    def __init__(self, targets: Sequence[Target], seed: int = 0) -> None:
        self.targets = [t for t in targets if self.why_not(t) is None]
        self.seed = int(seed)

    @staticmethod
    def why_not(target: Target) -> str | None:
        """None when the toy computes ``target``'s readout, else why not."""
        if target.readout not in readouts(1.0, 1.0, None):
            return f"readout {target.readout!r} is not a toy readout"
        return None

    def __call__(self, values: Mapping[str, float]) -> dict[str, float]:
        rng = np.random.default_rng(_seed(values, self.seed))
        sim = readouts(float(values["toy.production"]), float(values["toy.decay"]), rng)
        return {t.id: float(sim[t.readout]) for t in self.targets}
