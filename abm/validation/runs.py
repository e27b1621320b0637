"""Validation runs: the arms, run in parallel processes, cached as CSV, loaded for the checks.

Data flow: conf/experiment/validation_*.yaml (one arm each) -> ``abm.compose`` -> ``JointModel``
stepped in worker processes (:func:`run_jobs`) -> per run, in the cache folder: hourly metrics
(``<tag>.csv``), 6-hourly per-cell means the metrics lack (``<tag>_extra.csv``) and the composed
config (``<tag>_config.yaml``) -> :func:`load_runs` -> :class:`Runs`, read by the target checks
(c1.py ... c7.py) through :func:`window`, :func:`series` and :func:`end`.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.units import MIN_PER_DAY, MIN_PER_HOUR

# arm name (in the CSV and the figures) -> experiment config conf/experiment/<name>.yaml
ARMS = {
    "healthy": "validation_healthy",
    "oa": "validation_oa",
    "oa+msc": "validation_oa_msc",
    "oa+msc primed": "validation_oa_msc_primed",
    "oa+msc pge2 KO": "validation_oa_msc_pge2_ko",
    "dose 1e6": "validation_msc_1e6",
    "dose 1e7": "validation_msc_1e7",
    "dose 1e8": "validation_msc_1e8",
    "dose 1e6 primed": "validation_msc_1e6_primed",
}
LONG = "oa long"  # the long run: arm LONG_ARM, first seed, ``long_days``
LONG_ARM = "oa"
CHUNK_DAYS = 0.25  # extras (per-cell means not in the metrics table) every 6 h
END_DAYS = 3.0  # therapy comparisons (C3-C6) average the last 3 days of the arms


class MissingRunError(FileNotFoundError):
    """A run the checks need is not in the cache (one line: which, and how to make it)."""


# ---------------------------------------------------------------------------------- running
@dataclass(frozen=True)
class Job:
    """One arm, one seed: ``days`` simulated days on a 2D lattice of ``shape`` voxels."""

    arm: str
    seed: int
    days: float
    shape: tuple[int, int]
    cache: str
    overrides: tuple[str, ...] = ()  # extra Hydra overrides (after the arm's)


def tag(arm: str, seed: int, days: float) -> str:
    """File-name stem of one cached run, e.g. ``oa_msc_primed_s0_d14``."""
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', arm)}_s{seed}_d{days:g}"


def plan(
    seeds: Sequence[int],
    days: float,
    long_days: float,
    shape: Sequence[int],
    cache: Path | str,
    only: Iterable[str] | None = None,
    overrides: Sequence[str] = (),
) -> list[Job]:
    """The jobs of a validation: the long run first (it takes longest), then every arm x seed;
    ``only`` keeps the named arms (``"oa long"`` for the long run)."""
    unknown = set(only or ()) - {*ARMS, LONG}
    if unknown:
        raise ValueError(f"unknown arm(s) {sorted(unknown)}; valid: {[*ARMS, LONG]}")
    keep = set(only) if only is not None else {*ARMS, LONG}
    shp = (int(shape[0]), int(shape[1]))
    jobs = []
    if LONG in keep:
        jobs.append(Job(LONG_ARM, seeds[0], long_days, shp, str(cache), tuple(overrides)))
    jobs += [
        Job(arm, s, days, shp, str(cache), tuple(overrides))
        for arm in ARMS
        if arm in keep
        for s in seeds
    ]
    return jobs


def compose_arm(
    arm: str, seed: int, days: float, shape: Sequence[int], overrides: Sequence[str] = ()
) -> Any:
    """The validated config of one arm: its experiment config plus the run settings."""
    import abm

    return abm.compose(
        [
            f"+experiment={ARMS[arm]}",
            f"seed={seed}",
            f"sim.days={days}",
            f"lattice.shape=[{shape[0]},{shape[1]}]",
            "output.progress=false",
            *overrides,
        ]
    )


def _extras(m: Any) -> dict[str, float]:
    """Per-cell means the metrics table lacks: effector and all T-cell suppression factor
    (``state``), macrophage polarization p, MSC licensing L (NaN without cells)."""
    from abm.backend import to_numpy
    from abm.cells.population import TH1, TH17

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if a.size else math.nan

    tc = m.cells["tcell"]
    subset, supp = to_numpy(tc["subset"]), to_numpy(tc["state"])
    return {
        "time_min": m.time_min,
        "teff_supp_mean": mean(supp[(subset == TH1) | (subset == TH17)]),
        "tcell_supp_mean": mean(supp),
        "mac_p_mean": mean(to_numpy(m.cells["macrophage"]["state"])),
        "msc_L_mean": mean(to_numpy(m.cells["msc"]["state"])),
    }


def run_arm(job: Job) -> tuple[Job, float]:
    """Run one job (in a worker process, one BLAS/OpenMP thread); write its three cache files.
    Returns the job and its wall time (s)."""
    from omegaconf import OmegaConf
    from threadpoolctl import threadpool_limits

    import abm

    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        cfg = compose_arm(job.arm, job.seed, job.days, job.shape, job.overrides)
        stem = Path(job.cache) / tag(job.arm, job.seed, job.days)
        stem.with_name(stem.name + "_config.yaml").write_text(OmegaConf.to_yaml(cfg))
        m = abm.JointModel(cfg)
        extras = [_extras(m)]
        for _ in range(round(job.days / CHUNK_DAYS)):
            m.run(days=CHUNK_DAYS)
            extras.append(_extras(m))
    met = m.metrics
    met = met[(met["time_min"] % MIN_PER_HOUR) < 1e-6].reset_index(drop=True)  # hourly rows
    met.to_csv(stem.with_name(stem.name + ".csv"), index=False)
    pd.DataFrame(extras).to_csv(stem.with_name(stem.name + "_extra.csv"), index=False)
    return job, time.perf_counter() - t0


def run_jobs(jobs: Sequence[Job], n_jobs: int = 2) -> Iterator[tuple[Job, float]]:
    """Run ``jobs`` in ``n_jobs`` fresh (spawned) processes; yields (job, seconds) in order."""
    for job in jobs:
        Path(job.cache).mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, n_jobs), mp_context=ctx) as pool:
        yield from pool.map(run_arm, jobs)


# ---------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class SeedRun:
    """One cached run: hourly ``metrics``, 6-hourly ``extras`` (both with ``time_min``) and
    the composed ``config`` it ran with."""

    seed: int
    metrics: pd.DataFrame
    extras: pd.DataFrame
    config: Any


@dataclass(frozen=True)
class Runs:
    """Every cached run of one validation: ``runs["oa"]`` is the list of ``oa`` runs (one per
    seed); ``runs["oa long"]`` the long run. ``days``/``long_days``: their length (days)."""

    arms: dict[str, list[SeedRun]]
    days: float
    long_days: float
    seeds: tuple[int, ...]
    cache: Path | None = field(default=None, compare=False)

    def __getitem__(self, arm: str) -> list[SeedRun]:
        return self.arms[arm]

    @property
    def end_window(self) -> tuple[float, float]:
        """Days [d0, d1] the therapy comparisons average: the last ``END_DAYS`` of the arms."""
        return self.days - END_DAYS, self.days

    @property
    def injection_day(self) -> float:
        """Day of the MSC injection of the therapy arms (from the ``oa+msc`` config)."""
        return float(self.arms["oa+msc"][0].config.therapy.day)


def load_seed(cache: Path, arm: str, seed: int, days: float) -> SeedRun:
    """One cached run, or :class:`MissingRunError` naming what is missing."""
    from omegaconf import OmegaConf

    stem = cache / tag(arm, seed, days)
    files = [stem.with_name(stem.name + s) for s in (".csv", "_extra.csv", "_config.yaml")]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise MissingRunError(
            f"no cached run of arm {arm!r}, seed {seed}, {days:g} days in {cache} (missing "
            f"{', '.join(missing)}): run without --replot (--only selects arms)"
        )
    return SeedRun(seed, pd.read_csv(files[0]), pd.read_csv(files[1]), OmegaConf.load(files[2]))


def load_runs(cache: Path | str, seeds: Sequence[int], days: float, long_days: float) -> Runs:
    """The cached runs of every arm x seed (``days``) and the long run (first seed)."""
    cache = Path(cache)
    arms = {arm: [load_seed(cache, arm, s, days) for s in seeds] for arm in ARMS}
    arms[LONG] = [load_seed(cache, LONG_ARM, seeds[0], long_days)]
    return Runs(arms, float(days), float(long_days), tuple(seeds), cache)


# ---------------------------------------------------------------------------------- readouts
def _table(run: SeedRun, extra: bool) -> pd.DataFrame:
    return run.extras if extra else run.metrics


def window(
    runs: Sequence[SeedRun], key: str, d0: float, d1: float, extra: bool = False
) -> np.ndarray:
    """Per-seed mean of ``key`` over days [d0, d1] (NaN where no row falls inside): (seeds,)."""
    vals = []
    for run in runs:
        df = _table(run, extra)
        t = df["time_min"] / MIN_PER_DAY
        sel = df.loc[(t >= d0) & (t <= d1), key]
        vals.append(float(sel.mean()) if len(sel) else math.nan)
    return np.asarray(vals)


def series(runs: Sequence[SeedRun], key: str, extra: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of ``key`` against time: (t in days, y), both (T,) (shortest run)."""
    dfs = [_table(run, extra) for run in runs]
    n = min(len(d) for d in dfs)
    t = dfs[0]["time_min"].to_numpy()[:n] / MIN_PER_DAY
    y = np.mean([d[key].to_numpy()[:n] for d in dfs], axis=0)
    return t, y


def end(runs: Sequence[SeedRun], key: str) -> float:
    """Mean over seeds of the last value of ``key``."""
    return float(np.mean([run.metrics[key].iloc[-1] for run in runs]))
