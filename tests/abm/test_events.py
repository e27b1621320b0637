"""Scheduled interventions: a capped MSC bolus says so (requested and placed counts); which
therapies wait for their day (the IL-1Ra bolus: tests/abm/test_fluid.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import abm
from abm.events import nothing_to_inject
from abm.model import JointModel


def test_a_bolus_larger_than_the_free_fluid_is_capped_with_a_warning(small, caplog):
    # the small lattice has 5 fluid rows x 40 = 200 fluid voxels: fill them all, then ask again
    cfg = abm.compose([*small, "therapy=msc", "therapy.min_cells=200", "therapy.dose=1"])
    model = JointModel(cfg)
    caplog.set_level(logging.WARNING, logger="abm.events")
    assert model.inject_msc() == 200
    assert not [r for r in caplog.records if r.name == "abm.events"]
    assert model.inject_msc() == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "abm.events"]
    assert len(lines) == 1
    assert "asks for 200 MSCs but only 0 fluid voxels are free: placing 0" in lines[0]
    assert model.cells["msc"].n == 200


def test_only_a_therapy_with_something_to_inject_waits_for_its_day():
    th = lambda **kw: SimpleNamespace(**{"name": "msc", "dose": 0.0, "dose_mg": 0.0, **kw})  # noqa: E731
    assert not nothing_to_inject(th(dose=1e7))
    assert nothing_to_inject(th(dose=0.0))
    assert not nothing_to_inject(th(name="il1ra_bolus", dose_mg=150.0))
    assert nothing_to_inject(th(name="il1ra_bolus", dose=1e7))  # MSC dose ignored: no MSCs
    assert nothing_to_inject(th(name="none", dose=1e7))
