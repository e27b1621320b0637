"""Benchmarks of the per-step cell kernels: scatter_add, resolve_moves, uniform draws.

Run timed with ``pytest tests/benchmarks/test_bench_kernels.py --benchmark-enable``; in CI
(``--benchmark-disable``) each runs once as a plain test and checks a cheap invariant.
Sizes: N = 1e5 and 1e6 cells on a 2-D lattice of V = 1414**2 ~ 2e6 voxels, F = 13 fields.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels.exchange import scatter_add
from kernels.moves import neighbors, resolve_moves
from kernels.random import uniform

SHAPE = (1414, 1414)
NVOX = SHAPE[0] * SHAPE[1]
NFIELDS = 13


@pytest.fixture(scope="module")
def populations():
    rng = np.random.default_rng(0)
    out = {}
    for n in (100_000, 1_000_000):
        cur = rng.choice(NVOX, n, replace=False).astype(np.int64)
        ids = rng.permutation(n).astype(np.int64)
        nb = neighbors(np, SHAPE, cur)
        tgt = nb[rng.integers(0, 4, n), np.arange(n)]
        out[n] = (cur, ids, tgt)
    return out


def _synced(backend, fn):
    def run():
        res = fn()
        backend.synchronize()
        return res

    return run


@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_bench_scatter_add(benchmark, backend, populations, n):
    xp = backend.xp
    cur, _, _ = populations[n]
    idx = xp.asarray(np.concatenate([cur, cur[: n // 10]]))  # 10 % repeated voxels
    values = xp.ones((NFIELDS, idx.shape[0]), dtype=xp.float32)
    target = xp.zeros((NFIELDS, *SHAPE), dtype=xp.float32)
    benchmark(_synced(backend, lambda: scatter_add(xp, target, idx, values)))
    total = float(backend.to_numpy(target[0]).sum())
    assert total > 0 and total % idx.shape[0] == 0  # every contribution landed, each round


@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_bench_resolve_moves(benchmark, backend, populations, n):
    xp = backend.xp
    cur, ids, tgt = (xp.asarray(a) for a in populations[n])
    pri = uniform(xp, 0, 0, 0, ids)
    new = benchmark(_synced(backend, lambda: resolve_moves(xp, NVOX, cur, tgt, pri, ids)))
    new = backend.to_numpy(new)
    assert np.unique(new).size == n


@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_bench_uniform(benchmark, backend, populations, n):
    xp = backend.xp
    ids = xp.asarray(populations[n][1])
    u = benchmark(_synced(backend, lambda: uniform(xp, 1, 2, 3, ids, 4)))
    assert u.shape == (4, n)
