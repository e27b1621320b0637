"""Benchmarks: one whole model step (all five cell types, MSCs injected at t = 0, lattice
solver, metrics) at ~1e4 cells (2D) and ~1e5 cells (3D 128^3), on each backend.

The cases are abm-bench's (``abm.bench.cases.CELL_CASES``, densities scaled from the composed
OA scenario). Run for real with ``pytest tests/benchmarks/test_bench_model.py
--benchmark-enable``; in CI (``--benchmark-disable``) each runs once as a plain test. No
wall-clock assertion here.
"""

from __future__ import annotations

import math

import pytest

from abm.bench.cases import CELL_CASES, build_model, model_overrides
from abm.bench.timing import n_cells, populations


@pytest.mark.parametrize("case", ["2d-1e4", "3d-1e5"])
def test_bench_model_step(benchmark, backend, case):
    spec = CELL_CASES["full"][case]
    model, _ = build_model(model_overrides(spec), backend.name)
    model.step()  # warm-up; MSCs are injected at its end (therapy.day=0)
    assert next(p.n for p in populations(model) if p.name == "msc") > 0
    cells = n_cells(model)
    assert 0.5 * spec.target_cells < cells < 2 * spec.target_cells
    start = int(model.steps)

    def one():
        model.step()
        backend.synchronize()

    benchmark.extra_info.update(cells=cells, voxels=int(model.n_voxels), backend=backend.name)
    benchmark(one)
    assert int(model.steps) > start
    assert math.isfinite(model.metrics["il1b_fluid"].iloc[-1])
