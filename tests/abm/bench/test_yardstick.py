"""The yardstick is a correct solver: it agrees with ``make_stepper`` on uniform D, conserves
mass without decay, decays a uniform field exactly, and its factors solve the LOD matrix."""

from __future__ import annotations

import numpy as np
import pytest

from abm.bench.yardstick import ReferenceLOD, thomas_factors
from kernels.diffusion import make_stepper

SHAPES = [(17,), (24, 19), (12, 9, 14)]


@pytest.mark.parametrize("shape", SHAPES, ids=["1d", "2d", "3d"])
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-12), ("float32", 1e-5)])
def test_matches_make_stepper_with_uniform_D(shape, dtype, rtol, rng):
    F, D, decay = 3, 800.0, 0.02
    u = rng.random((F, *shape)).astype(dtype)
    ours = make_stepper(
        shape, 10.0, 2.0, np.full((F, *shape), D), np.full((F, *shape), decay), dtype=dtype
    )
    ref = ReferenceLOD(shape, 10.0, 2.0, D, decay, dtype=dtype)
    a, b = u.copy(), u.copy()
    for _ in range(3):
        a, b = ours(a), ref.step(b)
    assert b.dtype == np.dtype(dtype) and b.shape == u.shape
    np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * float(np.abs(a).max()))


@pytest.mark.parametrize("shape", SHAPES, ids=["1d", "2d", "3d"])
def test_conserves_mass_and_stays_non_negative(shape, rng):
    u = rng.random((2, *shape))
    u[u < 0.7] = 0.0  # sharp fronts
    ref = ReferenceLOD(shape, 10.0, 2.0, 1500.0, 0.0, dtype="float64")
    v = u
    for _ in range(20):
        v = ref.step(v)
    np.testing.assert_allclose(
        v.sum(axis=tuple(range(1, v.ndim))), u.sum(axis=tuple(range(1, u.ndim))), rtol=1e-12
    )
    assert v.min() >= 0.0
    assert v.std() < u.std()  # it spreads


def test_uniform_field_only_decays_exactly_once_per_step(rng):
    shape, decay, dt = (8, 6, 5), 0.05, 2.0
    ref = ReferenceLOD(shape, 10.0, dt, 500.0, decay, dtype="float64")
    v = ref.step(np.full((1, *shape), 2.0))
    np.testing.assert_allclose(v, 2.0 / (1.0 + decay * dt), rtol=1e-13)


def test_input_is_not_modified(rng):
    u = rng.random((2, 10, 11)).astype(np.float32)
    before = u.copy()
    ReferenceLOD(u.shape[1:], 10.0, 2.0, 1000.0, 0.01).step(u)
    np.testing.assert_array_equal(u, before)


@pytest.mark.parametrize("n", [1, 2, 9])
def test_thomas_factors_solve_the_axis_matrix(n, rng):
    r, lam = 3.7, 0.02
    A = np.diag(np.full(n, 1 + 2 * r + lam)) - r * (np.eye(n, k=1) + np.eye(n, k=-1))
    A[0, 0] -= r
    A[-1, -1] -= r
    d = rng.random(n)
    m, e = thomas_factors(n, r, lam)
    y = np.empty(n)
    for i in range(n):
        y[i] = (d[i] + (r * y[i - 1] if i else 0.0)) * m[i]
    for i in range(n - 2, -1, -1):
        y[i] += e[i] * y[i + 1]
    np.testing.assert_allclose(y, np.linalg.solve(A, d), rtol=1e-12)
