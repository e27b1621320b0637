"""A sixth cell type, declared in this test module alone, runs in the model: the model, the
config and the observers need no change (registry, typed parameters, metric catalogue)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import abm
from abm.cells import phenotype_codes, register, registry, type_codes, unregister
from abm.cells.base import CellType, Fate, Seeding, StepContext, draws, event_prob
from abm.errors import ConfigError
from abm.metrics import Metric
from abm.params import FRACTION, param, table


@draws
class Draw(enum.IntEnum):
    DEATH = 90
    MOVE = 91
    DIR = 92
    INIT_PLACE = 89


@dataclass(frozen=True)
class Params:
    density: float = param(0.05, "cells per synovium voxel", "assumed", bounds=FRACTION)
    death_rate: float = param(1e-4, "1/min", "assumed")
    speed_um_min: float = param(10.0, "µm/min", "assumed")
    secretion: dict[str, float] = table({"IL1b": 0.01}, "molecules/cell/s", "assumed")
    uptake: dict[str, float] = table({"IL10": 0.01}, "1/min", "assumed")


class Neutrophil(CellType):
    """Toy neutrophils: seeded in the sublining, walk, secrete IL-1b, die."""

    name = "neutrophil"
    title = "Neutrophils (toy)"
    Params = Params
    phenotypes = ("neutrophil",)
    habitat = ("sublining",)

    def seeding(self, scenario: Any) -> list[Seeding]:
        return [Seeding(Draw.INIT_PLACE, "sublining", self.p.density)]

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        death = ctx.uniform(Draw.DEATH, pop["id"]) < event_prob(ctx.xp, self.p.death_rate, ctx.dt)
        return Fate(death=death)

    def motility(self, ctx: StepContext, pop: Any) -> Any:
        return ctx.world.walk(ctx, pop, speed_um_min=self.p.speed_um_min, chemotaxis=0.0,
                              mobile=None, draw=(Draw.MOVE, Draw.DIR))  # fmt: skip

    def secretion(self, ctx: StepContext, pop: Any) -> dict[str, Any]:
        return {f: r * ctx.xp.ones(pop.n) for f, r in self.p.secretion.items()}

    def metrics(self) -> list[Metric]:
        return [Metric("neutrophil_total", "cells", "toy neutrophils",
                       lambda m: m.cells[self.name].n)]  # fmt: skip


@pytest.fixture
def sixth():
    register(Neutrophil)
    try:
        yield Neutrophil
    finally:
        unregister("neutrophil")


def test_a_sixth_type_runs_in_the_model_untouched(sixth, small):
    assert [t.name for t in registry()][-1] == "neutrophil"
    cfg = abm.compose([*small, "biology.neutrophil.density=0.1", "therapy.day=0"])
    assert cfg.biology.neutrophil.death_rate == 1e-4
    m = abm.JointModel(cfg)
    n0 = m.cells["neutrophil"].n
    assert n0 > 0
    comp = m.tissue.compartment.ravel()
    m.run(days=0.2)
    pop = m.cells["neutrophil"]
    assert 0 < pop.n < n0  # some died
    assert set(np.unique(comp[pop["voxel"]]).tolist()) == {4}  # sublining only
    voxels = m.cells.concat("voxel")
    assert np.unique(voxels).size == voxels.size  # exclusion holds across all six types
    assert list(m.metrics.columns)[-5:] == ["neutrophil_total", "cartilage_agg", "cartilage_col2",
                                            "synovitis_score", "pain_index"]  # fmt: skip
    assert m.metrics["neutrophil_total"].iloc[-1] == pop.n
    snap = m.snapshot()["cells"]
    code = type_codes()
    assert code[5] == "neutrophil" and (snap["type"] == 5).sum() == pop.n
    assert phenotype_codes()[int(snap["phenotype"][snap["type"] == 5][0])] == "neutrophil"
    # its IL-1b reaches the field, and its state survives a checkpoint round trip
    assert float(m.fields["IL1b"].max()) > 0
    b = type(m).from_state(m.cfg, m.get_state())
    np.testing.assert_array_equal(b.cells["neutrophil"]["voxel"], pop["voxel"])


def test_its_parameters_are_typed_like_the_others(sixth):
    expected = r"^biology\.neutrophil\.density: expected a number in \[0, 1\]"
    with pytest.raises(ConfigError, match=expected):
        abm.compose(["biology.neutrophil.density=abc"])


def test_without_it_the_five_types_are_back():
    assert [t.name for t in registry()] == ["macrophage", "tcell", "fls", "chondrocyte", "msc"]
    assert "neutrophil" not in abm.compose([]).biology
