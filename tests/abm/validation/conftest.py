"""A tiny validation: every arm once, on a small lattice for two days, cached for the session."""

from __future__ import annotations

import pytest

from abm.validation import runs

DAYS, LONG_DAYS, SEEDS, SHAPE = 2.0, 3.0, (0,), (90, 16)
# thin layers (5 bone + 30 cartilage + 30 fluid + 3 lining + 22 sublining rows), 10-min steps,
# MSCs injected at day 0.5 so that every window of the checks holds rows
OVERRIDES = (
    "lattice.bone_um=50",
    "lattice.cartilage_um=300",
    "lattice.fluid_um=300",
    "sim.dt_min=10",
    "therapy.day=0.5",
)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """Cache folder holding every arm (1 seed, 2 days) and the long run (3 days)."""
    cache = tmp_path_factory.mktemp("validate")
    jobs = runs.plan(SEEDS, DAYS, LONG_DAYS, SHAPE, cache, overrides=OVERRIDES)
    for _ in runs.run_jobs(jobs, n_jobs=2):
        pass
    return cache


@pytest.fixture(scope="session")
def tiny_runs(tiny_cache):
    return runs.load_runs(tiny_cache, SEEDS, DAYS, LONG_DAYS)
