"""kernels.diffusion: exact balances at any dt, and the sparse (``at=``) form of the step.

Decay is applied once per step, implicitly: in the solve of the last axis, with the reaction
step dividing uptake by q = 1 + dt*decay (module docstring of kernels.diffusion). These tests
check the analytic consequences to float64 round-off; each fails for the earlier scheme that
split decay as decay*dt/ndim over the axes (off by O(dt^2), e.g. a uniform field settled at
S/(U + lambda + dt*U*lambda) in 1D instead of S/(U + lambda)).
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels.diffusion import make_stepper
from kernels.xp import to_numpy

SHAPES = {1: (7,), 2: (5, 6), 3: (4, 5, 3)}
DX = 10.0  # µm; voxel volume V = DX**3 µm³


def _layered_D(F, shape):
    """Per-field D (µm²/min) in layers along axis 0, with a D = 0 wall in field 1."""
    D = np.empty((F, *shape))
    n0 = shape[0]
    for f in range(F):
        D[f, : n0 // 2] = 300.0 * (f + 1)
        D[f, n0 // 2 :] = 40.0
    if F > 1 and n0 > 2:
        D[1, n0 // 2] = 0.0
    return D


# --------------------------------------------------------------------------------------------
# uniform source, uptake and decay: u -> S/(U + lambda) exactly


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dt", [0.1, 1.0, 10.0])
def test_uniform_steady_state_is_exactly_S_over_U_plus_lambda(nd, dt):
    shape = SHAPES[nd]
    F = 2
    S = np.array([4.0, 0.7]).reshape((F,) + (1,) * nd)
    U = np.array([0.3, 0.05]).reshape(S.shape)
    lam = np.array([0.2, 0.011]).reshape(S.shape)
    exact = S / (U + lam)
    step = make_stepper(shape, DX, dt, _layered_D(F, shape), lam, dtype="float64")
    src = np.broadcast_to(S, (F, *shape))
    upt = np.broadcast_to(U, (F, *shape))
    # the exact value is a fixed point of one step ...
    u = np.broadcast_to(exact, (F, *shape)).copy()
    out = step(u, src, upt)
    one_step = 16 * np.finfo(np.float64).eps  # a few ulp per axis solve
    np.testing.assert_allclose(out, np.broadcast_to(exact, out.shape), rtol=one_step, atol=0)
    # ... and one step of a uniform field is the implicit step of its ODE, exactly
    u0 = np.full((F, *shape), 2.5)
    out = step(u0, src, upt)
    ode = (2.5 + dt * S) / (1 + dt * (U + lam))
    np.testing.assert_allclose(out, np.broadcast_to(ode, out.shape), rtol=one_step, atol=0)
    # ... so that a run from 0 settles there (the slowest field contracts by 1/(1+dt*0.061)
    # per step, which also amplifies the round-off of one step by 1/(dt*0.061))
    n = int(np.ceil(np.log(1e16) / np.log1p(dt * 0.061)))
    u = np.zeros((F, *shape))
    for _ in range(n):
        u = step(u, src, upt)
    rtol = one_step * (1 + 1 / (dt * 0.061))
    np.testing.assert_allclose(u, np.broadcast_to(exact, u.shape), rtol=rtol, atol=0)


@pytest.mark.parametrize("line_solver", ["auto", "dense", "thomas"])
def test_uniform_steady_state_exact_on_every_solve_path_float32(line_solver):
    # long lines (SPIKE blocks on "auto"); float32: exact to a few ulp
    shape, dt = (6, 200), 2.0
    S, U, lam = 3.0, 0.1, 0.02
    step = make_stepper(shape, DX, dt, _layered_D(1, shape), lam, line_solver=line_solver)
    u = np.full((1, *shape), S / (U + lam), dtype=np.float32)
    src = np.full_like(u, S)
    upt = np.full_like(u, U)
    for _ in range(20):
        u = step(u, src, upt)
    np.testing.assert_allclose(u, S / (U + lam), rtol=8 * np.finfo(np.float32).eps)


# --------------------------------------------------------------------------------------------
# point source: total = S*V/lambda exactly; the decay of the returned field balances sources


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dt", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("sparse", [False, True])
def test_steady_point_source_total_is_exactly_S_V_over_lambda(nd, dt, sparse):
    shape = SHAPES[nd]
    lam, S = 0.5, 3.0  # 1/min, conc/min in the source voxel
    V = DX**3  # µm³: amount = concentration * V
    step = make_stepper(shape, DX, dt, _layered_D(1, shape), lam, dtype="float64")
    c = tuple(n // 2 for n in shape)
    flat_c = np.ravel_multi_index(c, shape)
    src = np.zeros((1, *shape))
    src[(0, *c)] = S

    def one(u):
        if sparse:
            return step(u, np.array([[S]]), at=np.array([flat_c]))
        return step(u, src)

    # every step: total' = (total + dt*S) / (1 + dt*lambda), from any state
    rng = np.random.default_rng(1)
    u = rng.random((1, *shape))
    for _ in range(3):
        m = u.sum()
        u = one(u).copy()
        assert np.isclose(u.sum(), (m + dt * S) / (1 + dt * lam), rtol=1e-14, atol=0)
    # steady state (contraction 1/(1 + dt*lambda) per step)
    u = np.zeros((1, *shape))
    for _ in range(int(np.ceil(np.log(1e17) / np.log1p(dt * lam)))):
        u = one(u)
    assert np.isclose(V * u.sum(), S * V / lam, rtol=1e-13, atol=0)
    assert u.min() >= 0.0


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("layout", ["layered", "per_voxel"])
def test_decay_of_returned_field_balances_sources_exactly(nd, layout, rng):
    # per-voxel decay (the fluid clears faster): sum(u') + dt*sum(decay*u') = sum(u) + dt*S
    shape = SHAPES[nd]
    F, dt = 2, 3.0
    if layout == "layered":
        lam = np.where(np.arange(shape[0]) < shape[0] // 2, 0.01, 0.2)
        lam = np.broadcast_to(lam.reshape((1, -1) + (1,) * (nd - 1)), (F, *shape))
    else:
        lam = 0.3 * rng.random((F, *shape))
    step = make_stepper(shape, DX, dt, _layered_D(F, shape), lam, dtype="float64")
    u = rng.random((F, *shape))
    src = rng.random((F, *shape))
    out = step(u, src)
    axes = tuple(range(1, nd + 1))
    lhs = out.sum(axis=axes) + dt * (lam * out).sum(axis=axes)
    rhs = u.sum(axis=axes) + dt * src.sum(axis=axes)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-14, atol=0)


def test_no_decay_diffusion_conserves_mass_and_source_adds_exactly(rng):
    shape, dt = (9, 12, 5), 4.0
    step = make_stepper(shape, DX, dt, _layered_D(2, shape), 0.0, dtype="float64")
    u = rng.random((2, *shape))
    src = rng.random((2, *shape))
    out = step(u, src)
    np.testing.assert_allclose(
        out.sum(axis=(1, 2, 3)), (u + dt * src).sum(axis=(1, 2, 3)), rtol=1e-14
    )


# --------------------------------------------------------------------------------------------
# sparse form: step(u, source, uptake, at=voxels) == dense form with zeros elsewhere


def _sparse_problem(shape, F, dtype, rng, decay):
    V = int(np.prod(shape))
    N = max(1, V // 20)  # ~5% of voxels hold a cell
    at = rng.choice(V, size=N, replace=False)
    s_at = (rng.random((F, N)) * 5.0).astype(dtype)
    k_at = (rng.random((F, N)) * 0.5).astype(dtype)
    src = np.zeros((F, V), dtype)
    upt = np.zeros((F, V), dtype)
    src[:, at] = s_at
    upt[:, at] = k_at
    n0 = shape[0]
    if decay == "layered":  # varies along axis 0, as the fluid's clearance does
        lam = np.where(np.arange(n0) < n0 // 2, 0.003, 0.05)
        lam = lam.reshape((1, n0) + (1,) * (len(shape) - 1))
        lam = lam * np.linspace(1.0, 2.0, F).reshape((F,) + (1,) * len(shape))
    elif decay == "per_voxel":
        lam = 0.05 * rng.random((F, *shape))
    else:
        lam = np.linspace(0.0, 0.02, F).reshape((F,) + (1,) * len(shape))
    return at, s_at, k_at, src.reshape(F, *shape), upt.reshape(F, *shape), lam


@pytest.mark.parametrize("shape", [(300,), (40, 33), (9, 179), (180, 12), (6, 130, 20), (5, 7, 6)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("decay", ["uniform", "layered", "per_voxel"])
@pytest.mark.parametrize("line_solver", ["auto", "thomas"])
def test_sparse_form_equals_dense_form(shape, dtype, decay, line_solver, rng):
    F = 3
    at, s_at, k_at, src, upt, lam = _sparse_problem(shape, F, dtype, rng, decay)
    D = _layered_D(F, shape)
    dense = make_stepper(shape, DX, 2.0, D, lam, dtype=dtype, line_solver=line_solver)
    sparse = make_stepper(shape, DX, 2.0, D, lam, dtype=dtype, line_solver=line_solver)
    u0 = rng.random((F, *shape)).astype(dtype)
    keep = u0.copy()
    ud, us = u0, u0
    for i in range(4):
        kw = [{"source": s_at, "uptake": k_at}, {"source": s_at}, {"uptake": k_at}][i % 3]
        kwd = {k: {"source": src, "uptake": upt}[k] for k in kw}
        ud = dense(ud, **kwd)
        us = sparse(us, **kw, at=at)
        # the same operations in the same order: equal, not only close
        np.testing.assert_array_equal(us, ud)
    assert np.array_equal(u0, keep)  # the caller's array is never modified


def test_sparse_form_with_broadcast_values_and_threads(rng, monkeypatch):
    from kernels import diffusion

    monkeypatch.setattr(diffusion, "_MIN_PARALLEL", 1)
    shape, F = (64, 90), 2
    at, _, _, _, _, lam = _sparse_problem(shape, F, "float32", rng, "layered")
    D = _layered_D(F, shape)
    s_small = np.array([[1.5], [0.25]], np.float32)  # (F, 1): the same rate at every voxel
    k_small = np.array([[0.2], [0.0]], np.float32)
    src = np.zeros((F, int(np.prod(shape))), np.float32)
    upt = np.zeros_like(src)
    src[:, at] = s_small
    upt[:, at] = k_small
    u0 = rng.random((F, *shape)).astype(np.float32)
    ref = make_stepper(shape, DX, 2.0, D, lam)(u0, src.reshape(F, *shape), upt.reshape(F, *shape))
    for threads in (1, 2):
        step = make_stepper(shape, DX, 2.0, D, lam, threads=threads)
        got = step(u0, s_small, k_small, at=at)
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("method", ["lod", "explicit"])
def test_sparse_form_on_array_api_strict_equals_numpy(method, rng):
    xps = pytest.importorskip("array_api_strict")
    shape, F = (6, 7), 2
    at, s_at, k_at, src, upt, lam = _sparse_problem(shape, F, "float64", rng, "layered")
    D = _layered_D(F, shape)
    dt = 2.0 if method == "lod" else 0.04
    kw = {"method": method, "dtype": "float64"}
    u0 = rng.random((F, *shape))
    ref = make_stepper(shape, DX, dt, D, lam, **kw)(u0, src, upt)
    ref_sparse = make_stepper(shape, DX, dt, D, lam, **kw)(u0, s_at, k_at, at=at)
    np.testing.assert_array_equal(ref_sparse, ref)
    step = make_stepper(shape, DX, dt, xps.asarray(D), xps.asarray(lam), xp=xps, **kw)
    got = step(xps.asarray(u0), xps.asarray(s_at), xps.asarray(k_at), at=xps.asarray(at))
    np.testing.assert_allclose(to_numpy(got), ref, rtol=1e-13, atol=1e-15)


def test_sparse_form_matches_numpy_on_backend(backend, rng):
    """numpy always; cupy (gpu marker) must agree with numpy to float32 round-off."""
    shape, F = (20, 170, 6), 2
    at, s_at, k_at, _, _, lam = _sparse_problem(shape, F, "float32", rng, "layered")
    D = _layered_D(F, shape)
    u0 = rng.random((F, *shape)).astype(np.float32)
    ref = make_stepper(shape, DX, 2.0, D, lam)(u0, s_at, k_at, at=at)
    xp = backend.xp
    step = make_stepper(shape, DX, 2.0, xp.asarray(D), xp.asarray(lam), xp=xp)
    got = step(xp.asarray(u0), xp.asarray(s_at), xp.asarray(k_at), at=xp.asarray(at))
    np.testing.assert_allclose(backend.to_numpy(got), ref, rtol=2e-5, atol=2e-6)
