"""kernels.xp: namespace detection, mixed-namespace refusal, host copies."""

from __future__ import annotations

import sys
import types

import array_api_strict as xps
import numpy as np
import pytest

from kernels.xp import array_namespace, astype, is_cupy, is_numpy, to_numpy


def test_is_numpy_and_is_cupy():
    assert is_numpy(np) and not is_cupy(np)
    assert not is_numpy(xps) and not is_cupy(xps)
    assert not is_cupy(None)  # also when cupy was never imported


def test_array_namespace_of_each_kind():
    assert array_namespace(np.zeros(3), np.int64(2)) is np
    assert array_namespace(xps.asarray([1.0]), xps.asarray([2])) is xps
    assert array_namespace() is np
    assert array_namespace(None, 1.5, 3, True) is np  # scalars and None do not vote
    assert array_namespace(None, xps.asarray([1.0]), 2.0) is xps


def test_array_namespace_refuses_mixed_inputs():
    with pytest.raises(TypeError, match=r"different namespaces \(numpy, array_api_strict\)"):
        array_namespace(np.zeros(2), xps.asarray([1.0]))


def test_array_namespace_refuses_numpy_with_cupy(monkeypatch):
    """Stand-in cupy module (no GPU needed): its arrays belong to it, never to NumPy."""
    fake = types.ModuleType("cupy")

    class ndarray:  # mimics cupy.ndarray
        pass

    fake.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert is_cupy(fake) and not is_numpy(fake)
    assert array_namespace(ndarray(), ndarray()) is fake
    with pytest.raises(TypeError, match=r"numpy, cupy"):
        array_namespace(np.zeros(2), ndarray())


def test_astype_and_to_numpy():
    a = np.arange(4, dtype=np.int64)
    assert astype(np, a, np.float32).dtype == np.float32
    s = astype(xps, xps.asarray([1, 2]), xps.float64)
    assert s.dtype == xps.float64
    assert to_numpy(a) is a  # no copy for a NumPy array
    np.testing.assert_array_equal(to_numpy(s), [1.0, 2.0])
    assert to_numpy([1, 2], np.float64).dtype == np.float64
    assert to_numpy(2.5).shape == ()


@pytest.mark.gpu
def test_cupy_is_detected():
    cp = pytest.importorskip("cupy")
    a = cp.arange(3)
    assert is_cupy(cp) and array_namespace(a) is cp
    np.testing.assert_array_equal(to_numpy(a), [0, 1, 2])
    with pytest.raises(TypeError, match="different namespaces"):
        array_namespace(a, np.arange(3))
