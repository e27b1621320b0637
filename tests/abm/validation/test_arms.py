"""The validation arms are Hydra experiment configs (conf/experiment/*.yaml)."""

from __future__ import annotations

from importlib.resources import files

import pytest
from omegaconf import OmegaConf

import abm
from abm.validation import runs
from abm.validation.plotting import COLORS

EXPERIMENTS = sorted(
    p.name.removesuffix(".yaml")
    for p in (files("abm.conf") / "experiment").iterdir()
    if p.name.endswith(".yaml")
)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_config_composes(name):
    assert abm.compose([f"+experiment={name}"]).scenario.name


def test_every_arm_has_its_experiment_config_and_colour():
    assert set(runs.ARMS.values()) <= set(EXPERIMENTS)
    assert set(runs.ARMS) <= set(COLORS)


@pytest.mark.parametrize("arm", list(runs.ARMS))
def test_an_arm_sets_only_scenario_and_therapy(arm):
    cfg = OmegaConf.to_container(runs.compose_arm(arm, 3, 2.0, (193, 16)))
    default = OmegaConf.to_container(
        abm.compose(["seed=3", "sim.days=2.0", "lattice.shape=[193,16]", "output.progress=false"])
    )
    for key in ("scenario", "therapy"):
        cfg.pop(key), default.pop(key)
    assert cfg == default


def test_plan_runs_the_long_arm_first_and_only_what_is_asked(tmp_path):
    jobs = runs.plan([0, 1], 14.0, 40.0, (193, 64), tmp_path)
    assert (jobs[0].arm, jobs[0].seed, jobs[0].days) == (runs.LONG_ARM, 0, 40.0)
    assert len(jobs) == 1 + 2 * len(runs.ARMS)
    only = runs.plan([0], 14.0, 40.0, (193, 64), tmp_path, only=["dose 1e6"])
    assert [(j.arm, j.days) for j in only] == [("dose 1e6", 14.0)]
    with pytest.raises(ValueError, match="unknown arm"):
        runs.plan([0], 14.0, 40.0, (193, 64), tmp_path, only=["dose 1e9"])
