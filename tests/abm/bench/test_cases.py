"""Benchmark cases come from the composed config: the cell cases scale the scenario's
densities to their target count, the lattice cases carry the model's own transport."""

from __future__ import annotations

import numpy as np
import pytest

import abm
from abm.bench.cases import (
    CELL_CASES,
    LATTICE_CASES,
    CellCase,
    build_model,
    cell_densities,
    expected_cells,
    lattice_problem,
    model_overrides,
)
from abm.bench.timing import n_cells
from abm.errors import BenchError

SMALL_2D = CELL_CASES["small"]["2d-small"]


@pytest.mark.parametrize("scenario", ["oa", "healthy"])
def test_densities_are_the_scenarios_scaled_to_the_target(scenario):
    cfg = abm.compose([f"scenario={scenario}", *SMALL_2D.overrides])
    densities, scale = cell_densities(SMALL_2D, scenario)
    for key, value in densities.items():
        assert value == pytest.approx(min(1.0, scale * float(cfg.scenario[key])))
    assert expected_cells(cfg, densities) == pytest.approx(SMALL_2D.target_cells, rel=1e-6)
    overrides = model_overrides(SMALL_2D, scenario)
    assert overrides[0] == f"scenario={scenario}"
    assert {f"scenario.{k}={v:.6g}" for k, v in densities.items()} <= set(overrides)


def test_changing_the_scenario_changes_the_case():
    oa, healthy = cell_densities(SMALL_2D, "oa"), cell_densities(SMALL_2D, "healthy")
    assert oa[0] != healthy[0] and oa[1] != healthy[1]
    assert model_overrides(SMALL_2D, "oa") != model_overrides(SMALL_2D, "healthy")


def test_a_case_without_target_keeps_the_composed_densities():
    case = CellCase("as-is", (*SMALL_2D.overrides, "scenario.mac_density=0.125"))
    densities, scale = cell_densities(case)
    assert scale == 1.0 and densities["mac_density"] == 0.125
    assert model_overrides(case) == ("scenario=oa", *case.overrides)


def test_an_unreachable_target_is_one_line():
    with pytest.raises(BenchError, match=r"2d-small.*at most"):
        cell_densities(CellCase("2d-small", SMALL_2D.overrides, 10**6))


@pytest.mark.parametrize("name", list(CELL_CASES["small"]))
def test_small_cases_hold_about_their_target(name):
    case = CELL_CASES["small"][name]
    model, _ = build_model(model_overrides(case), "numpy")
    assert 0.8 * case.target_cells < n_cells(model) < 1.2 * case.target_cells


def test_lattice_problem_is_the_models_transport():
    case = LATTICE_CASES["small"]["2d-128"]
    prob = lattice_problem(case)
    model, _ = build_model(case.overrides, "numpy")
    D, decay = model.tissue.transport(model.bio)
    assert prob.shape == (128, 128) == tuple(model.shape)
    assert (prob.dx_um, prob.dt_min) == (model.tissue.dx_um, model.dt_min)
    np.testing.assert_array_equal(prob.D, np.asarray(D, dtype=np.float32))
    np.testing.assert_array_equal(prob.decay, np.asarray(decay, dtype=np.float32))
    assert prob.n_fields == D.shape[0] and prob.initial().shape == D.shape
    assert len(np.unique(prob.D[0])) >= 3  # the layering: bone wall, tissue, fluid
