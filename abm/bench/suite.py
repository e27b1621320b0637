"""The benchmark suite: each kind of case timed on each backend, one result row per pair.

Data flow: cases (:mod:`abm.bench.cases`) x backends -> synchronized timings
(:mod:`abm.bench.timing`) -> result rows (plain dicts, the ``results`` of bench.json) ->
:mod:`abm.bench.report`. Three kinds (``what``):

- ``lattice``: one step of the model's lattice solver alone (``kernels.diffusion.make_stepper``
  with the model's per-voxel D and decay, all fields, float32); M voxel-field updates/s.
- ``cells``: whole model steps (all five cell types, solver, metrics); M cell-steps/s, with
  the median of every phase of the step (``model.set_phase_timer``).
- ``ratio``: the same solver on 8 fields and the yardstick (:mod:`abm.bench.yardstick`,
  numpy, uniform D), called in turn; ``ratio_vs_reference`` = yardstick time / our time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from abm.backend import get_backend
from abm.bench.cases import (
    CELL_CASES,
    LATTICE_CASES,
    SCENARIO,
    CellCase,
    LatticeCase,
    LatticeProblem,
    build_model,
    cell_densities,
    lattice_problem,
    model_overrides,
)
from abm.bench.timing import (
    median,
    peak_rss_mb,
    populations,
    time_calls,
    time_in_turn,
    time_model_steps,
)
from abm.bench.yardstick import ReferenceLOD
from kernels.diffusion import make_stepper

WHAT = ("lattice", "cells", "ratio")
RATIO_FIELDS = 8  # BioFVM's published solver benchmark steps 8 fields
LATTICE_UNIT = "M voxel-field updates/s"


def _solver(
    prob: LatticeProblem, n_fields: int, backend: str
) -> tuple[Callable[[], None], Callable[[], None], float]:
    """One step of our solver on the first ``n_fields`` fields of ``prob`` on ``backend`` as a
    call, the backend's synchronize, and the time to build the solver (s)."""
    be = get_backend(backend)
    xp = be.xp
    t0 = time.perf_counter()
    D, decay = xp.asarray(prob.D[:n_fields]), xp.asarray(prob.decay[:n_fields])
    step = make_stepper(prob.shape, prob.dx_um, prob.dt_min, D, decay, xp=xp, dtype="float32")
    state = {"u": xp.asarray(prob.initial(n_fields))}
    build_s = time.perf_counter() - t0

    def one() -> None:
        state["u"] = step(state["u"])

    return one, be.synchronize, build_s


def _lattice_row(
    what: str,
    case: LatticeCase,
    prob: LatticeProblem,
    n_fields: int,
    backend: str,
    times: list[float],
    build_s: float,
) -> dict[str, Any]:
    updates = n_fields * prob.D[0].size
    med = median(times)
    return {
        "what": what,
        "case": case.name,
        "backend": backend,
        "shape": list(prob.shape),
        "fields": n_fields,
        "voxel_field_updates": updates,
        "build_s": build_s,
        "times_s": times,
        "median_s": med,
        "throughput": updates / med / 1e6,
        "unit": LATTICE_UNIT,
    }


def bench_lattice(case: LatticeCase, backend: str, repeats: int) -> dict[str, Any]:
    """One step of the model's lattice solver (all fields, float32) on ``backend``."""
    prob = lattice_problem(case)
    one, sync, build_s = _solver(prob, prob.n_fields, backend)
    times = time_calls(one, repeats, sync)
    return _lattice_row("lattice", case, prob, prob.n_fields, backend, times, build_s)


def bench_ratio(case: LatticeCase, backend: str, repeats: int) -> dict[str, Any]:
    """Our solver on :data:`RATIO_FIELDS` of the model's fields on ``backend`` and the
    yardstick (numpy, float32, uniform D = the first field's largest D, its fluid value; decay
    = its smallest), called in turn. ``ratio_vs_reference`` is the median over repeats of
    yardstick time / our time (> 1: ours is faster)."""
    prob = lattice_problem(case)
    n = min(RATIO_FIELDS, prob.n_fields)
    one, sync, build_s = _solver(prob, n, backend)
    D, decay = float(prob.D[0].max()), float(prob.decay[0].min())
    ref = ReferenceLOD(prob.shape, prob.dx_um, prob.dt_min, D, decay, dtype="float32")
    u = prob.initial(n)
    times, ref_times = time_in_turn([(one, sync), (lambda: ref.step(u), lambda: None)], repeats)
    row = _lattice_row("ratio", case, prob, n, backend, times, build_s)
    ref_median = median(ref_times)
    row["reference"] = {
        "what": "plain NumPy LOD (abm.bench.yardstick), uniform D",
        "D_um2_min": D,
        "decay_per_min": decay,
        "times_s": ref_times,
        "median_s": ref_median,
        "throughput": u.size / ref_median / 1e6,
    }
    row["ratio_vs_reference"] = median([r / t for r, t in zip(ref_times, times, strict=True)])
    return row


def bench_cells(
    case: CellCase,
    backend: str,
    repeats: int,
    warmup: int = 1,
    budget_s: float | None = None,
    scenario: str = SCENARIO,
) -> dict[str, Any]:
    """Whole model steps (all five cell types, lattice solver, metrics) for one case."""
    densities, scale = cell_densities(case, scenario)
    overrides = model_overrides(case, scenario)
    model, build_s = build_model(overrides, backend)
    t = time_model_steps(model, repeats, warmup=warmup, budget_s=budget_s)
    cells = median(t.cells)
    step, solver, rules = median(t.step_s), median(t.solver_s), median(t.rules_s)
    out = {
        "what": "cells",
        "case": case.name,
        "backend": backend,
        "overrides": list(overrides),
        "densities": densities,
        "density_scale": scale,
        "shape": list(model.shape),
        "voxels": int(model.n_voxels),
        "n_cells": cells,
        "target_cells": case.target_cells,
        "cells_by_type": {p.name: p.n for p in populations(model)},
        "build_s": build_s,
        "warmup_steps": warmup,
        "timed_steps": len(t.step_s),
        "times_s": t.step_s,
        "solver_times_s": t.solver_s,
        "phase_times_s": t.phase_s,
        "phase_median_s": t.phase_medians(),
        "median_s": step,
        "solver_s": solver,
        "rules_s": rules,
        "solver_fraction": solver / step,
        "steps_per_s": 1.0 / step,
        "cell_steps_per_s": cells / step,
        "rules_cell_steps_per_s": cells / rules,
        "throughput": cells / step / 1e6,
        "unit": "M cell-steps/s",
        "process_peak_rss_mb": peak_rss_mb(),
    }
    del model
    return out


def run_benchmarks(
    backends: Sequence[str],
    what: Sequence[str],
    sizes: str,
    repeats: int,
    progress: Callable[[str], None] = lambda s: None,
) -> list[dict[str, Any]]:
    """Every requested case on every backend, in the order lattice, cells, ratio."""
    results: list[dict[str, Any]] = []
    if "lattice" in what:
        for case in LATTICE_CASES[sizes].values():
            for be in backends:
                progress(f"lattice {case.name} {be}")
                results.append(bench_lattice(case, be, repeats))
    if "cells" in what:
        for case in CELL_CASES[sizes].values():
            for be in backends:
                progress(f"cells {case.name} {be}")
                results.append(bench_cells(case, be, repeats))
    if "ratio" in what:
        for case in LATTICE_CASES[sizes].values():
            for be in backends:
                progress(f"ratio {case.name} {be} vs the yardstick")
                results.append(bench_ratio(case, be, repeats))
    return results
