"""Shared fixtures: the ``backend`` fixture and the ``gpu`` marker's skip rule."""

from __future__ import annotations

import numpy as np
import pytest

from abm.backend import cuda_device_count, get_backend


def _gpu_available() -> bool:
    return cuda_device_count() > 0


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="no usable CUDA device (cupy.cuda.runtime.getDeviceCount()==0)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _spinup_cache(tmp_path_factory):
    """The spin-up cache of every test (and of the abm-run processes tests start) lives in a
    temporary folder, never in the user's ~/.cache/oa-abm."""
    import os

    folder = tmp_path_factory.mktemp("spinup-cache")
    old = os.environ.get("ABM_CACHE_DIR")
    os.environ["ABM_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("ABM_CACHE_DIR", None)
    else:
        os.environ["ABM_CACHE_DIR"] = old


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """Each backend in turn: numpy always, cupy only where a CUDA device answers."""
    return get_backend(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# A small joint patch for model tests: 5 bone + 30 cartilage + 5 fluid + 3 lining + 32 sublining
# rows, 40 voxels wide (seconds per simulated week at dt = 10 min).
SMALL = [
    "lattice.shape=[75,40]",
    "lattice.bone_um=50",
    "lattice.cartilage_um=300",
    "lattice.fluid_um=50",
    "lattice.vessel_density=0.02",
    "sim.dt_min=10",
    "sim.spinup_days=0",  # model tests start at time 0 (the spin-up has its own tests)
]


@pytest.fixture
def small():
    """Overrides for a small, fast lattice (list of Hydra overrides)."""
    return list(SMALL)


@pytest.fixture(autouse=True)
def _default_stop_handlers():
    """Every test starts with Python's default SIGINT/SIGTERM handlers: a handler left behind by
    a library or an earlier test would make the run's own handlers stand aside (abm.loop
    installs them only over the defaults) and tests of signal handling depend on test order."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
