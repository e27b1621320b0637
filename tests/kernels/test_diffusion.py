"""Tests for kernels.diffusion: analytic solutions, invariants, and path/backend agreement."""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

from kernels import diffusion
from kernels.diffusion import make_stepper, max_stable_dt
from kernels.xp import to_numpy


def _layered(F, shape, values, wall_field=None):
    """D (F, *shape) with len(values[f]) layers along axis 0; optional D=0 wall voxel row."""
    n0 = shape[0]
    D = np.empty((F, *shape))
    for f in range(F):
        edges = np.linspace(0, n0, len(values[f]) + 1).astype(int)
        for v, a, b in zip(values[f], edges[:-1], edges[1:], strict=True):
            D[f, a:b] = v
    if wall_field is not None:
        D[wall_field, n0 // 2] = 0.0
    return D


def _run(step, u, n, source=None, uptake=None):
    for _ in range(n):
        u = step(u, source, uptake)
    return u


# --------------------------------------------------------------------------------------------
# analytic solutions


@pytest.mark.parametrize(
    ("nd", "n", "T", "steps"),
    [
        (1, 201, 50.0, [4, 8, 16, 32, 64]),
        (2, 81, 50.0, [4, 8, 16, 32, 64]),
        (3, 41, 18.0, [4, 8, 16, 32]),
    ],
)
def test_point_source_matches_gaussian_first_order_in_dt(nd, n, T, steps):
    D, dx = 1.0, 1.0
    c = n // 2
    x = (np.arange(n) - c) * dx
    r2 = sum(np.meshgrid(*([x**2] * nd), indexing="ij"))
    gauss = (4 * np.pi * D * T) ** (-nd / 2) * np.exp(-r2 / (4 * D * T)) * dx**nd
    errs = []
    for N in steps:
        step = make_stepper((n,) * nd, dx, T / N, D, 0.0, dtype="float64")
        u = np.zeros((1,) + (n,) * nd)
        u[(0,) + (c,) * nd] = 1.0  # unit mass in one voxel
        u = _run(step, u, N)
        errs.append(np.abs(u[0] - gauss).max() / gauss.max())
    order = np.polyfit(np.log(T / np.array(steps)), np.log(errs), 1)[0]
    assert 0.85 < order < 1.15, (order, errs)
    assert errs[-1] < 0.05
    assert np.all(np.diff(errs) < 0)


def test_steady_state_decay_and_source_is_exponential_1d():
    D, lam, dx, n = 100.0, 0.01, 10.0, 400  # decay length sqrt(D/lam) = 100 µm = 10 voxels
    ell = np.sqrt(D / lam)
    src = np.zeros((1, n))
    src[0, 0] = 5.0
    step = make_stepper((n,), dx, 50.0, D, lam, dtype="float64")
    u = _run(step, np.zeros((1, n)), 200, src)
    assert np.allclose(step(u.copy(), src), u, rtol=1e-10)  # steady
    x = np.arange(n) * dx
    sel = slice(5, 60)  # away from the source voxel and the far wall
    slope = np.polyfit(x[sel], np.log(u[0, sel]), 1)[0]
    assert abs(-1.0 / slope - ell) / ell < 0.01
    # exact discrete balance: decay in the whole domain = what the source puts in
    assert np.isclose(lam * u.sum(), 5.0, rtol=1e-8)


def test_two_layers_flux_continuity_slopes_in_ratio():
    n, dx, D1, D2 = 100, 5.0, 200.0, 50.0
    D = np.where(np.arange(n) < n // 2, D1, D2)[None, :]
    src = np.zeros((1, n))
    src[0, 0] = 1.0  # constant inflow at the left end
    upt = np.zeros((1, n))
    upt[0, -1] = 50.0  # strong sink at the right end
    step = make_stepper((n,), dx, 100.0, D, 0.0, dtype="float64")
    u = _run(step, np.zeros((1, n)), 3000, src, upt)
    assert np.allclose(step(u.copy(), src, upt), u, rtol=1e-9, atol=1e-12)
    x = np.arange(n) * dx
    s1 = np.polyfit(x[5:45], u[0, 5:45], 1)[0]
    s2 = np.polyfit(x[55:95], u[0, 55:95], 1)[0]
    assert s1 < 0 and s2 < 0
    assert np.isclose(s1 / s2, D2 / D1, rtol=1e-6)
    # flux D * slope is the inflow (1 conc/min * dx) everywhere, interface included
    assert np.isclose(-D1 * s1, 1.0 * dx, rtol=1e-6)
    face = 2 * D1 * D2 / (D1 + D2)
    assert np.isclose(face * (u[0, n // 2 - 1] - u[0, n // 2]) / dx, 1.0 * dx, rtol=1e-6)


@pytest.mark.parametrize("line_solver", ["auto", "thomas"])
def test_zero_diffusivity_wall_keeps_each_side_separate(line_solver):
    shape = (40, 30)
    D = np.full((2, *shape), 400.0)
    D[:, 20] = 0.0  # a wall across the lattice
    D[1, :20] = 100.0
    u = np.zeros((2, *shape), dtype=np.float32)
    u[:, 5, 7] = 100.0
    u[1, 30, 3] = 50.0
    step = make_stepper(shape, 10.0, 5.0, D, 0.0, line_solver=line_solver)
    u = _run(step, u, 300)
    left = u[:, :20].sum(axis=(1, 2), dtype=np.float64)
    right = u[:, 21:].sum(axis=(1, 2), dtype=np.float64)
    ulp_per_step = 300 * np.finfo(np.float32).eps  # float32 round-off, <= ~1 ulp per step
    assert np.allclose(left, [100.0, 100.0], rtol=ulp_per_step)
    assert np.allclose(right, [0.0, 50.0], rtol=ulp_per_step)
    assert np.all(u[:, 20] == 0.0) and np.all(u[0, 21:] == 0.0)


# --------------------------------------------------------------------------------------------
# invariants


@pytest.mark.parametrize("line_solver", ["auto", "dense", "thomas"])
def test_mass_conserved_and_nonnegative_over_1000_steps(line_solver, rng):
    shape = (48, 180)  # long axis 1 takes the block (SPIKE) class path
    D = _layered(2, shape, [[50.0, 900.0, 300.0], [5.0, 100.0]], wall_field=1)
    u0 = (rng.random((2, *shape)) ** 4).astype(np.float32)
    step = make_stepper(shape, 10.0, 3.0, D, 0.0, line_solver=line_solver)
    u = u0
    for _ in range(1000):
        u = step(u)
        assert u.min() >= 0.0
    m0 = u0.sum(axis=(1, 2), dtype=np.float64)
    m1 = u.sum(axis=(1, 2), dtype=np.float64)
    # float32 round-off only: at most ~1 ulp of relative drift per step (tiny terms added to
    # larger partial sums round away; float64 conserves to ~1e-13: next test)
    assert np.allclose(m1, m0, rtol=1000 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("line_solver", ["auto", "thomas"])
def test_mass_conserved_exactly_in_float64(line_solver, rng):
    shape = (10, 170, 6)
    D = _layered(2, shape, [[50.0, 900.0], [5.0, 100.0, 0.0]], wall_field=1)
    u0 = rng.random((2, *shape))
    step = make_stepper(shape, 10.0, 3.0, D, 0.0, line_solver=line_solver, dtype="float64")
    u = _run(step, u0, 50)
    assert np.allclose(u.sum(axis=(1, 2, 3)), u0.sum(axis=(1, 2, 3)), rtol=1e-12)
    assert u.min() >= 0.0


def test_uniform_field_decay_and_reaction_in_one_implicit_step():
    # Decay is applied once per step, implicitly together with uptake (issue 9). This test
    # used to expect (u + dt*s) / (1 + dt*k) / (1 + dt*lam/3)**3, the O(dt^2)-biased result of
    # splitting decay as lam*dt/ndim over the three axis solves.
    shape, dt, lam, k, s = (6, 7, 5), 2.0, 0.05, 0.3, 4.0
    step = make_stepper(shape, 10.0, dt, 200.0, lam, dtype="float64")
    u = np.full((1, *shape), 3.0)
    src = np.full_like(u, s)
    upt = np.full_like(u, k)
    out = step(u, src, upt)
    expect = (3.0 + dt * s) / (1 + dt * (k + lam))
    assert np.allclose(out, expect, rtol=1e-12)


def test_broadcast_source_and_uptake_equal_full_arrays(rng):
    shape = (300, 250)  # large enough for the chunked (and threaded) reaction step
    D = _layered(2, shape, [[10.0, 500.0], [3.0]])
    u0 = rng.random((2, *shape)).astype(np.float32)
    s_small = np.array([1.0, 0.5], np.float32).reshape(2, 1, 1)
    k_small = np.array([0.01, 0.2], np.float32).reshape(2, 1, 1)
    full = {"source": np.broadcast_to(s_small, u0.shape).copy()}
    full["uptake"] = np.broadcast_to(k_small, u0.shape).copy()
    for kw_small, kw_full in (
        ({"source": s_small}, {"source": full["source"]}),
        ({"uptake": k_small}, {"uptake": full["uptake"]}),
        ({"source": s_small, "uptake": k_small}, full),
    ):
        a = make_stepper(shape, 10.0, 2.0, D, 0.01)(u0, **kw_small)
        b = make_stepper(shape, 10.0, 2.0, D, 0.01)(u0, **kw_full)
        assert np.array_equal(a, b)


def test_input_not_modified_and_no_allocation_per_step(rng):
    shape = (64, 256)
    D = _layered(3, shape, [[10.0, 500.0], [1.0, 2.0, 3.0], [700.0]])
    step = make_stepper(shape, 10.0, 2.0, D, 0.01)
    u0 = rng.random((3, *shape)).astype(np.float32)
    keep = u0.copy()
    src = rng.random(u0.shape).astype(np.float32)
    upt = rng.random(u0.shape).astype(np.float32)
    u = step(u0, src, upt)
    assert np.array_equal(u0, keep)
    u = step(u, src, upt)
    tracemalloc.start()
    for _ in range(5):
        u = step(u, src, upt)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 16 * 1024 < u.nbytes / 10, peak  # views and scalars only


# --------------------------------------------------------------------------------------------
# explicit FTCS


def test_explicit_and_lod_agree_at_small_dt(rng):
    shape = (24, 20)
    D = _layered(2, shape, [[100.0, 400.0], [50.0, 50.0, 200.0]])
    u0 = rng.random((2, *shape))
    src = rng.random(u0.shape)
    upt = 0.01 * rng.random(u0.shape)
    T = 10.0
    dt_max = max_stable_dt(shape, 10.0, D, 0.02)
    res = {}
    for method, dt in (("explicit", dt_max / 4), ("lod", dt_max / 4), ("lod", T)):
        step = make_stepper(shape, 10.0, dt, D, 0.02, method=method, dtype="float64")
        res[method, dt] = _run(step, u0.copy(), round(T / dt), src, upt)
    small = np.abs(res["explicit", dt_max / 4] - res["lod", dt_max / 4]).max()
    big = np.abs(res["explicit", dt_max / 4] - res["lod", T]).max()
    assert small < 0.02 * np.abs(u0).max()
    assert small < big / 5  # agreement improves as dt falls


def test_explicit_refuses_unstable_dt_naming_largest_stable_dt():
    D, dx = 250.0, 10.0
    dt_max = dx**2 / (2 * 2 * D)  # 0.1 min in 2D, uniform D, no decay
    assert np.isclose(max_stable_dt((8, 8), dx, D, 0.0), dt_max)
    make_stepper((8, 8), dx, dt_max, D, 0.0, method="explicit")  # the limit itself is fine
    with pytest.raises(ValueError, match=re.escape(f"{dt_max:.6g} min")) as err:
        make_stepper((8, 8), dx, 1.01 * dt_max, D, 0.0, method="explicit")
    assert "largest stable dt" in str(err.value)
    make_stepper((8, 8), dx, 50 * dt_max, D, 0.0, method="lod")  # implicit: any dt


# --------------------------------------------------------------------------------------------
# paths and backends agree


def _dense_lod_reference(u, dx, dt, D, lam):
    """Float64 LOD with an explicitly assembled dense matrix per line (np.linalg.solve); the
    decay is implicit in the solve of the last axis (longer than 1) only."""
    nd = u.ndim - 1
    last = max([k for k in range(nd) if u.shape[k + 1] > 1], default=nd - 1)
    D = np.broadcast_to(D, u.shape)
    lam = np.broadcast_to(lam, u.shape)
    for k in range(nd):
        ax = k + 1
        uu = np.moveaxis(u, ax, -1).copy()
        DD = np.moveaxis(D, ax, -1)
        LL = np.moveaxis(lam, ax, -1)
        n = uu.shape[-1]
        for idx in np.ndindex(uu.shape[:-1]):
            d = DD[idx]
            s = d[1:] + d[:-1]
            face = np.where(s > 0, 2 * d[1:] * d[:-1] / np.where(s > 0, s, 1), 0) * dt / dx**2
            A = np.diag(1 + LL[idx] * dt * (k == last))
            A[np.arange(n - 1), np.arange(n - 1)] += face
            A[np.arange(1, n), np.arange(1, n)] += face
            A[np.arange(n - 1), np.arange(1, n)] -= face
            A[np.arange(1, n), np.arange(n - 1)] -= face
            uu[idx] = np.linalg.solve(A, uu[idx])
        u = np.moveaxis(uu, -1, ax)
    return u


@pytest.mark.parametrize("shape", [(13,), (9, 11), (5, 6, 7)])
def test_general_path_equals_dense_direct_solve(shape, rng):
    D = rng.random((2, *shape)) * 500.0
    D[D < 60.0] = 0.0  # scattered walls
    lam = rng.random((2, *shape)) * 0.05
    u0 = rng.random((2, *shape))
    step = make_stepper(shape, 10.0, 3.0, D, lam, line_solver="thomas", dtype="float64")
    ref = _dense_lod_reference(u0, 10.0, 3.0, D, lam)
    assert np.allclose(step(u0), ref, rtol=1e-11, atol=1e-13)


# dense (short lines), SPIKE blocks of unequal (179) and equal (128, 170, 200) size, lines as rows
# (last axis) and as columns, in chunks that are 2-D views or batched 3-D views
CLASS_SHAPES = [(200,), (179, 9), (9, 179), (128, 520), (6, 5, 170), (4, 179, 3), (128, 3, 180)]


@pytest.mark.parametrize("shape", [*CLASS_SHAPES, (8, 9, 10)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_class_path_equals_general_path(shape, dtype, rng):
    F = 3
    D = _layered(F, shape, [[300.0, 1500.0, 20.0], [5.0, 80.0], [1000.0]], wall_field=1)
    lam = np.array([0.01, 0.0, 0.2]).reshape((F,) + (1,) * len(shape))
    u0 = rng.random((F, *shape)).astype(dtype)
    src = rng.random(u0.shape).astype(dtype)
    upt = (0.1 * rng.random(u0.shape)).astype(dtype)
    out = {}
    for solver in ("auto", "dense", "thomas"):
        step = make_stepper(shape, 10.0, 2.0, D, lam, line_solver=solver, dtype=dtype)
        if solver != "thomas":
            assert all(ax["kind"] == "class" for ax in step.axes)
        out[solver] = _run(step, u0, 4, src, upt).copy()
    tol = 2e-5 if dtype == "float32" else 1e-12
    scale = np.abs(out["thomas"]).max()
    assert np.abs(out["auto"] - out["thomas"]).max() < tol * scale
    assert np.abs(out["dense"] - out["thomas"]).max() < tol * scale


@pytest.mark.parametrize("shape", [(300, 40), (40, 300), (6, 130, 20)])
def test_threads_do_not_change_the_result(shape, rng, monkeypatch):
    monkeypatch.setattr(diffusion, "_MIN_PARALLEL", 1)  # split even these small problems
    monkeypatch.setattr(diffusion, "_MIN_SLAB", 1)
    D = _layered(2, shape, [[300.0, 1500.0, 20.0], [5.0, 80.0]], wall_field=1)
    u0 = rng.random((2, *shape)).astype(np.float32)
    for solver in ("auto", "thomas"):
        out = []
        for threads in (1, 2, 3):
            step = make_stepper(shape, 10.0, 2.0, D, 0.01, threads=threads, line_solver=solver)
            out.append(_run(step, u0, 3).copy())
        assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])


def test_too_many_classes_falls_back_to_general_path(rng):
    D = rng.random((1, 12, 14)) * 100.0
    step = make_stepper((12, 14), 10.0, 1.0, D, 0.0, max_classes=4)
    assert [ax["kind"] for ax in step.axes] == ["thomas", "thomas"]


@pytest.mark.parametrize("method", ["lod", "explicit"])
@pytest.mark.parametrize("line_solver", ["auto", "thomas"])
@pytest.mark.parametrize("shape", [(15,), (7, 12), (4, 6, 5)])
def test_array_api_strict_matches_numpy(method, line_solver, shape, rng):
    xps = pytest.importorskip("array_api_strict")
    F = 2
    D = _layered(F, shape, [[30.0, 90.0], [10.0]], wall_field=0)
    lam = np.array([0.02, 0.0]).reshape((F,) + (1,) * len(shape))
    u0 = rng.random((F, *shape))
    src = rng.random(u0.shape)
    upt = 0.1 * rng.random(u0.shape)
    kw = {"method": method, "dtype": "float64"}
    if method == "lod":
        kw["line_solver"] = line_solver
    ref = _run(make_stepper(shape, 10.0, 0.2, D, lam, **kw), u0, 3, src, upt)
    step = make_stepper(shape, 10.0, 0.2, xps.asarray(D), xps.asarray(lam), xp=xps, **kw)
    got = _run(step, xps.asarray(u0), 3, xps.asarray(src), xps.asarray(upt))
    assert isinstance(got, type(xps.asarray(0.0)))
    assert np.allclose(to_numpy(got), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("line_solver", ["auto", "thomas"])
def test_backend_matches_numpy(backend, line_solver, rng):
    """numpy always; cupy (gpu marker) must agree with numpy to float32 round-off."""
    shape = (20, 170, 6)
    D = _layered(2, shape, [[300.0, 1500.0, 20.0], [5.0, 80.0]], wall_field=1)
    u0 = rng.random((2, *shape)).astype(np.float32)
    src = rng.random(u0.shape).astype(np.float32)
    upt = (0.1 * rng.random(u0.shape)).astype(np.float32)
    ref = _run(make_stepper(shape, 10.0, 2.0, D, 0.01, line_solver=line_solver), u0, 3, src, upt)
    xp = backend.xp
    step = make_stepper(shape, 10.0, 2.0, xp.asarray(D), 0.01, xp=xp, line_solver=line_solver)
    got = _run(step, xp.asarray(u0), 3, xp.asarray(src), xp.asarray(upt))
    assert np.allclose(backend.to_numpy(got), ref, rtol=2e-5, atol=2e-6)


# --------------------------------------------------------------------------------------------
# argument checks


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="method"):
        make_stepper((4, 4), 1.0, 1.0, 1.0, 0.0, method="cn")
    with pytest.raises(ValueError, match="1-3"):
        make_stepper((2, 2, 2, 2), 1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="broadcast"):
        make_stepper((4, 4), 1.0, 1.0, np.ones((2, 3, 4)), 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        make_stepper((4,), 1.0, 1.0, -1.0, 0.0)
    step = make_stepper((4, 5), 1.0, 1.0, np.ones((2, 1, 1)), 0.0)
    with pytest.raises(ValueError, match="shape"):
        step(np.zeros((3, 4, 5), np.float32))
