"""Benchmarks: one implicit LOD step, float32, 8 fields, layered per-voxel D like the joint.

Run for real with ``pytest tests/benchmarks --benchmark-enable -p no:randomly``; in CI
(``--benchmark-disable``) each runs once as a plain test. No wall-clock assertion here.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels.diffusion import make_stepper

F = 8
# per-field D (µm²/min) in 4 layers along axis 0: bone-side cartilage, cartilage, fluid, synovium
LAYERS = np.array([[30.0, 60.0, 1500.0, 300.0]]) * np.linspace(0.5, 2.0, F)[:, None]
DECAY = np.linspace(0.001, 0.05, F)


def _problem(shape):
    n0 = shape[0]
    which = np.minimum(np.arange(n0) * LAYERS.shape[1] // n0, LAYERS.shape[1] - 1)
    D = LAYERS[:, which].reshape((F, n0) + (1,) * (len(shape) - 1))
    D = np.ascontiguousarray(np.broadcast_to(D, (F, *shape)))  # full per-voxel array
    decay = DECAY.reshape((F,) + (1,) * len(shape))
    u = np.random.default_rng(0).random((F, *shape)).astype(np.float32)
    return D, decay, u


def _bench(benchmark, xp, shape, sync=lambda: None, scale=1.0, cells=None):
    """One step per round; ``scale`` multiplies the initial field (small values: partial sums
    that underflow); ``cells`` = "dense" or "sparse": sources and uptakes at 5% of the voxels
    (unique, sorted), passed as full (F, *shape) arrays or as (F, N) values with ``at=``."""
    D, decay, u = _problem(shape)
    u = u * np.float32(scale)
    step = make_stepper(shape, 10.0, 2.0, xp.asarray(D), xp.asarray(decay), xp=xp)
    kw = {}
    if cells is not None:
        V = int(np.prod(shape))
        rng = np.random.default_rng(1)
        at = np.sort(rng.choice(V, V // 20, replace=False))
        s_at = rng.random((F, at.size), dtype=np.float32)
        k_at = (0.01 * rng.random((F, at.size))).astype(np.float32)
        if cells == "sparse":
            kw = {"source": xp.asarray(s_at), "uptake": xp.asarray(k_at), "at": xp.asarray(at)}
        else:
            src = np.zeros((F, V), np.float32)
            upt = np.zeros((F, V), np.float32)
            src[:, at] = s_at
            upt[:, at] = k_at
            kw = {
                "source": xp.asarray(src.reshape(u.shape)),
                "uptake": xp.asarray(upt.reshape(u.shape)),
            }
    state = {"u": xp.asarray(u)}

    def one():
        state["u"] = step(state["u"], **kw)
        sync()

    benchmark.extra_info["voxel_field_updates"] = int(u.size)
    benchmark(one)
    out = state["u"]
    assert out.shape == u.shape
    assert float(out.min()) >= 0.0


@pytest.mark.parametrize("shape", [(512, 512), (128, 128, 128)], ids=["2d-512", "3d-128"])
def test_bench_lod_step_numpy(benchmark, shape):
    _bench(benchmark, np, shape)


@pytest.mark.parametrize("shape", [(512, 512), (128, 128, 128)], ids=["2d-512", "3d-128"])
def test_bench_lod_step_small_values_numpy(benchmark, shape):
    """Fields of magnitude 1e-20: as fast as above where flush-to-zero is on (issue 9)."""
    _bench(benchmark, np, shape, scale=1e-20)


@pytest.mark.parametrize("cells", ["dense", "sparse"])
@pytest.mark.parametrize("shape", [(512, 512), (128, 128, 128)], ids=["2d-512", "3d-128"])
def test_bench_lod_step_cells_numpy(benchmark, shape, cells):
    """Sources and uptakes at 5% of the voxels: full arrays vs the sparse form (``at=``)."""
    _bench(benchmark, np, shape, cells=cells)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(512, 512), (128, 128, 128)], ids=["2d-512", "3d-128"])
def test_bench_lod_step_cupy(benchmark, shape):
    import cupy as cp  # only with a GPU

    _bench(benchmark, cp, shape, sync=cp.cuda.Device().synchronize)
