"""Scheduled interventions: a capped MSC bolus says so (requested and placed counts)."""

from __future__ import annotations

import logging

import abm
from abm.model import JointModel


def test_a_bolus_larger_than_the_free_fluid_is_capped_with_a_warning(small, caplog):
    # the small lattice has 30 fluid rows x 40 = 1,200 fluid voxels: fill them all, then ask again
    cfg = abm.compose([*small, "therapy=msc", "therapy.min_cells=1200", "therapy.dose=1"])
    model = JointModel(cfg)
    caplog.set_level(logging.WARNING, logger="abm.events")
    assert model.inject_msc() == 1200
    assert not [r for r in caplog.records if r.name == "abm.events"]
    assert model.inject_msc() == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "abm.events"]
    assert len(lines) == 1
    assert "asks for 1200 MSCs but only 0 fluid voxels are free: placing 0" in lines[0]
    assert model.cells["msc"].n == 1200
