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


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """Each backend in turn: numpy always, cupy only where a CUDA device answers."""
    return get_backend(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
