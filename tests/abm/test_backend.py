"""Backend selection: numpy always, cupy only with a usable CUDA device, auto falls back."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from abm.backend import cuda_device_count, get_backend, synchronize, to_numpy
from abm.errors import BackendError


def test_numpy_backend():
    b = get_backend("numpy")
    assert b.name == "numpy" and b.xp is np and not b.is_gpu
    a = b.asarray([1.0, 2.0], dtype=np.float32)
    assert to_numpy(a) is a
    synchronize(b.xp)  # a no-op on numpy


def test_unknown_backend_is_one_line():
    with pytest.raises(BackendError, match="not one of numpy, cupy, auto"):
        get_backend("jax")


@pytest.mark.skipif(cuda_device_count() > 0, reason="a CUDA device is present")
def test_cupy_without_gpu_is_one_clear_line():
    with pytest.raises(BackendError) as exc:
        get_backend("cupy")
    assert "\n" not in str(exc.value) and "CUDA" in str(exc.value)


@pytest.mark.skipif(cuda_device_count() > 0, reason="a CUDA device is present")
def test_auto_falls_back_to_numpy_with_a_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="abm.backend"):
        b = get_backend("auto")
    assert b.name == "numpy"
    assert "no usable CUDA device" in caplog.text


@pytest.mark.gpu
def test_cupy_round_trip():
    b = get_backend("cupy")
    a = b.asarray(np.arange(5.0))
    b.synchronize()
    np.testing.assert_array_equal(b.to_numpy(a), np.arange(5.0))
