"""gather / scatter_add against plain Python loops, with repeated indices, 1-3D, f32/f64."""

from __future__ import annotations

import itertools

import array_api_strict as xps
import numpy as np
import pytest

from kernels.exchange import gather, scatter_add

SHAPES = [(17,), (6, 9), (4, 5, 7)]
DTYPES = [np.float32, np.float64]


def _case(rng, shape, dtype, nfields=3, ncells=60):
    nvox = int(np.prod(shape))
    idx = rng.integers(0, nvox, ncells).astype(np.int64)
    idx[:10] = idx[0]  # make sure repeats exist
    u = rng.standard_normal((nfields, *shape)).astype(dtype)
    values = rng.standard_normal((nfields, ncells)).astype(dtype)
    return u, idx, values


def _loop_gather(u, idx):
    out = np.empty((u.shape[0], idx.size), u.dtype)
    for f in range(u.shape[0]):
        for j, i in enumerate(idx):
            out[f, j] = u[f][np.unravel_index(i, u.shape[1:])]
    return out


def _loop_scatter(target, idx, values):
    out = target.astype(np.float64)
    for f in range(values.shape[0]):
        for j, i in enumerate(idx):
            out[f][np.unravel_index(i, target.shape[1:])] += values[f, j]
    return out


@pytest.mark.parametrize(("shape", "dtype"), list(itertools.product(SHAPES, DTYPES)))
def test_gather_matches_loop(rng, shape, dtype):
    u, idx, _ = _case(rng, shape, dtype)
    out = gather(u, idx)
    assert out.shape == (u.shape[0], idx.size) and out.dtype == dtype
    np.testing.assert_array_equal(out, _loop_gather(u, idx))


@pytest.mark.parametrize("shape", SHAPES)
def test_gather_array_api_strict(rng, shape):
    u, idx, _ = _case(rng, shape, np.float32)
    out = gather(xps.asarray(u), xps.asarray(idx))
    assert isinstance(out, type(xps.asarray(1.0)))
    np.testing.assert_array_equal(np.from_dlpack(out), _loop_gather(u, idx))


@pytest.mark.parametrize(("shape", "dtype"), list(itertools.product(SHAPES, DTYPES)))
def test_scatter_add_matches_loop(rng, shape, dtype):
    u, idx, values = _case(rng, shape, dtype)
    expected = _loop_scatter(u, idx, values)
    target = u.copy()
    assert scatter_add(np, target, idx, values) is None
    assert target.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(target, expected, rtol=tol, atol=tol)
    # the repeated voxel got every contribution, not just the last one
    i0 = np.unravel_index(idx[0], shape)
    contrib = values[:, idx == idx[0]].astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(target[(slice(None), *i0)], u[(slice(None), *i0)] + contrib, tol)


@pytest.mark.parametrize("shape", SHAPES)
def test_scatter_add_single_field(rng, shape):
    u, idx, values = _case(rng, shape, np.float64, nfields=1)
    target = u[0].copy()
    scatter_add(np, target, idx, values[0])
    np.testing.assert_allclose(target, _loop_scatter(u, idx, values)[0], rtol=1e-12)


def test_scatter_add_casts_values_and_empty(rng):
    target = np.zeros((2, 4, 4), np.float32)
    scatter_add(np, target, np.array([5, 5], np.int64), np.ones((2, 2), np.float64))
    assert target.dtype == np.float32 and target[:, 1, 1].tolist() == [2.0, 2.0]
    assert target.sum() == 4.0
    scatter_add(np, target, np.zeros(0, np.int64), np.zeros((2, 0), np.float32))
    assert target.sum() == 4.0


def test_scatter_add_rejects_bad_input():
    target = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="same F"):
        scatter_add(np, target, np.array([1]), np.ones((3, 1)))
    with pytest.raises(ValueError, match="must match"):
        scatter_add(np, target, np.array([1, 2]), np.ones((2, 1)))
    with pytest.raises(ValueError, match="C-contiguous"):
        scatter_add(np, np.zeros((4, 4, 2)).transpose(2, 0, 1), np.array([1]), np.ones((2, 1)))
    with pytest.raises(TypeError, match="numpy and cupy"):
        scatter_add(xps, xps.zeros((2, 3)), xps.asarray([1]), xps.ones((2, 1)))


def test_backend_roundtrip(backend, rng):
    xp = backend.xp
    u, idx, values = _case(rng, (5, 6, 7), np.float32)
    np.testing.assert_array_equal(
        backend.to_numpy(gather(xp.asarray(u), xp.asarray(idx))), _loop_gather(u, idx)
    )
    target = xp.asarray(u.copy())
    scatter_add(xp, target, xp.asarray(idx), xp.asarray(values))
    np.testing.assert_allclose(
        backend.to_numpy(target), _loop_scatter(u, idx, values), rtol=1e-5, atol=1e-5
    )
