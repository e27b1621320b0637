"""kernels.diffusion: no subnormal numbers in factors or fields (the same speed on every CPU).

A BLAS matmul with subnormal operands, or whose partial sums underflow, ran up to 300x slower
on an Intel Xeon (issue 9). The stepper flushes its precomputed factors at build time and
keeps fields out of the subnormal range: with hardware flush-to-zero during the step where the
platform allows it (``diffusion._FTZ``), else by flushing the last axis's output in software.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels import diffusion
from kernels.diffusion import _thomas_host, make_stepper


def _subnormal_count(a) -> int:
    a = np.asarray(a)
    tiny = np.finfo(a.dtype).tiny
    return int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))


def _factor_arrays(step):
    """Every precomputed array of an LOD stepper (class, Thomas and scale axes)."""
    for ax in step.axes:
        if ax["kind"] == "scale":
            yield ax["inv"]
        elif ax["kind"] == "thomas":
            yield from ax["fac"]
        elif ax["kind"] == "class":
            for fc in ax["factors"]:
                for key in ("H", "HT", "R", "RT", "Hs", "HTs"):
                    if key in fc:
                        yield fc[key]
                for _, _, H, HT in fc.get("blocks", []):
                    yield H
                    yield HT


def _joint_like(shape, F, low):
    """Layered D as in the joint (bone wall, cartilage, fluid, synovium) plus slow fields:
    D = ``low`` µm²/min gives r = D*dt/dx² << 1, whose inverses fall below any dtype's
    smallest normal number within a few hundred voxels."""
    n0 = shape[0]
    layers = np.array([0.0, 600.0, 1500.0, 300.0])
    which = np.minimum(np.arange(n0) * 4 // n0, 3)
    D = np.empty((F, *shape))
    for f in range(F):
        prof = layers[which] * (f + 1) if f < F - 1 else np.full(n0, low)
        D[f] = prof.reshape((n0,) + (1,) * (len(shape) - 1))
    lam = np.linspace(0.001, 0.05, F).reshape((F,) + (1,) * len(shape))
    return D, lam


@pytest.mark.parametrize(
    ("shape", "dtype", "low"),
    [
        ((512,), "float32", 30.0),
        ((512, 40), "float32", 30.0),
        ((40, 512), "float32", 30.0),
        ((64, 8, 512), "float32", 30.0),
        ((512, 512), "float32", 30.0),
        ((600, 12), "float64", 1.0),
        ((12, 600), "float64", 1.0),
        ((512,), "float64", 1.0),
    ],
)
@pytest.mark.parametrize("line_solver", ["auto", "dense", "thomas"])
def test_no_factor_holds_a_subnormal_number(shape, dtype, low, line_solver):
    F = 3
    D, lam = _joint_like(shape, F, low)
    step = make_stepper(shape, 10.0, 2.0, D, lam, dtype=dtype, line_solver=line_solver)
    arrays = list(_factor_arrays(step))
    assert arrays
    assert all(np.asarray(a).dtype == np.dtype(dtype) for a in arrays)
    assert sum(_subnormal_count(a) for a in arrays) == 0
    # control: the exact inverse of the slow field's long line does hold subnormal numbers
    n = max(shape)
    r = np.full(n - 1, low * 2.0 / 100.0)
    b = 1.0 + np.concatenate([[0.0], r]) + np.concatenate([r, [0.0]])
    assert _subnormal_count(_thomas_host(r, b, np.eye(n)).astype(dtype)) > 0


def _seeded(shape, F, dtype, rng):
    """A field with subnormal values in a quarter of the voxels, normal values elsewhere."""
    tiny = np.finfo(dtype).tiny
    u = rng.random((F, *shape)).astype(dtype)
    sub = rng.random(u.shape) < 0.25
    u[sub] = (tiny * rng.random(int(sub.sum())) * 0.9).astype(dtype)
    u[:, : shape[0] // 3] = 0  # plus a region of zeros far from everything
    assert _subnormal_count(u) > 0
    return u


@pytest.mark.parametrize("mode", ["hardware", "software"])
@pytest.mark.parametrize("shape", [(300,), (64, 200), (180, 24), (8, 10, 130)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("line_solver", ["auto", "thomas"])
def test_field_seeded_with_subnormals_comes_out_without_any(
    mode, shape, dtype, line_solver, rng, monkeypatch
):
    if mode == "hardware" and not diffusion._FTZ.available:
        pytest.skip("no hardware flush-to-zero on this platform")
    if mode == "software":
        monkeypatch.setattr(diffusion._FTZ, "available", False)
    F = 2
    D, lam = _joint_like(shape, F, 30.0)
    step = make_stepper(shape, 10.0, 2.0, D, lam, dtype=dtype, line_solver=line_solver)
    assert step.flush == (mode == "software")
    u = _seeded(shape, F, dtype, rng)
    src = np.zeros_like(u)
    src[(slice(None), -1) + (0,) * (len(shape) - 1)] = 1.0
    for kw in ({}, {"source": src}, {"source": src, "uptake": 0.1 * src}):
        out = step(u, **kw)
        assert _subnormal_count(out) == 0
        assert out.min() >= 0.0


def test_without_either_guard_subnormals_do_come_out(rng, monkeypatch):
    # control for the test above: with neither hardware nor software flushing, a field that
    # decays far from a source does reach the subnormal range
    monkeypatch.setattr(diffusion._FTZ, "available", False)
    shape = (300,)
    D, lam = _joint_like(shape, 1, 30.0)
    step = make_stepper(shape, 10.0, 2.0, D[-1:], lam[-1:], dtype="float32")
    step.flush = False
    u = np.zeros((1, *shape), np.float32)
    u[0, -1] = 1.0
    assert _subnormal_count(step(u)) > 0


def test_flush_to_zero_is_scoped_to_the_step():
    sub = np.array([np.finfo(np.float32).tiny / 4], np.float32)
    step = make_stepper((16, 16), 10.0, 2.0, 100.0, 0.01)
    step(np.ones((1, 16, 16), np.float32))
    assert (sub * np.float32(1.0))[0] > 0  # subnormal arithmetic is back after the step
    with diffusion._FTZ():
        inside = (sub * np.float32(1.0))[0]
    assert (sub * np.float32(1.0))[0] > 0
    if diffusion._FTZ.available:
        assert inside == 0.0


def test_threads_keep_fields_free_of_subnormals(rng, monkeypatch):
    monkeypatch.setattr(diffusion, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(diffusion, "_MIN_SLAB", 1)
    shape = (40, 300)
    D, lam = _joint_like(shape, 3, 30.0)
    u = _seeded(shape, 3, "float32", rng)
    out = []
    for threads in (1, 2):
        step = make_stepper(shape, 10.0, 2.0, D, lam, threads=threads)
        out.append(step(u).copy())
        assert _subnormal_count(out[-1]) == 0
    np.testing.assert_array_equal(out[0], out[1])
