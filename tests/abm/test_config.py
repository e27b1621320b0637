"""Config composition and validation: defaults, groups, one-line errors naming the key."""

from __future__ import annotations

import logging

import pytest

import abm
from abm.config import MAX_STEPS, ConfigError, compartment_rows, estimate_bytes


def test_defaults_compose_to_the_demo():
    cfg = abm.compose()
    assert cfg.scenario.name == "oa"
    assert cfg.therapy.name == "msc"
    assert cfg.backend.name == "numpy"
    assert list(cfg.lattice.shape) == [148, 256]
    rows = compartment_rows(cfg.lattice)
    assert rows == {"bone": 10, "cartilage": 50, "fluid": 5, "lining": 3, "sublining": 80}


def test_groups_and_overrides():
    cfg = abm.compose(["scenario=healthy", "therapy=none", "lattice=3d", "therapy.dose=5e7"])
    assert cfg.scenario.name == "healthy" and cfg.therapy.dose == 5e7
    assert len(cfg.lattice.shape) == 3


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("therapy.dose=-1", "therapy.dose"),
        ("therapy.knockouts=[pge2,foo]", "therapy.knockouts"),
        ("lattice.shape=[200000,200000]", "lattice.shape"),
        ("lattice.shape=[60,40]", "lattice.shape"),
        ("biology.macrophage.death_rate=-0.1", "biology.macrophage.death_rate"),
        ("scenario=nope", "scenario"),
        ("sim.days=0", "sim.days"),
        ("backend=cupy", "backend"),
        ("lattice.dtype=float16", "lattice.dtype"),
        ("nosuchkey=1", "nosuchkey"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError) as exc:
        abm.compose([override])
    msg = str(exc.value)
    assert "\n" not in msg
    assert key in msg


def test_memory_estimate_names_the_estimate():
    with pytest.raises(ConfigError, match=r"GiB"):
        abm.compose(["lattice.shape=[200000,200000]"])
    small = abm.compose(["lattice.shape=[193,64]"])
    assert 0 < estimate_bytes(small) < estimate_bytes(abm.compose())


def test_validated_config_is_read_only():
    cfg = abm.compose()
    with pytest.raises(Exception):  # noqa: B017 - omegaconf ReadonlyConfigError
        cfg.seed = 3


def one_line_error(overrides):
    with pytest.raises(ConfigError) as exc:
        abm.compose(overrides)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        (["seed=-1"], "seed", "[0, 2**64)"),
        ([f"seed={2**64}"], "seed", "[0, 2**64)"),
        (["sim.days=inf"], "sim.days", "finite"),
        (["lattice.fluid_um=nan"], "lattice.fluid_um", "finite"),
        (["lattice.fluid_um=inf"], "lattice.fluid_um", "finite"),
        (["lattice.bone_um=nan"], "lattice.bone_um", "finite"),
        (["lattice.dx_um=inf"], "lattice.dx_um", "finite"),
        (["sim.dt_min=inf"], "sim.dt_min", "[0.01, 60]"),
        (["sim.dt_min=1e9"], "sim.dt_min", "[0.01, 60]"),
        (["sim.dt_min=1e-9"], "sim.dt_min", "[0.01, 60]"),
        (["sim.days=1e4", "sim.dt_min=0.5"], "sim.dt_min", "28,800,000 steps"),
        (["sim.days=1e9"], "sim.days", "steps"),
        (["sim.days=0.0001"], "sim.days", "0 steps"),
        (["sim.dt_min=0.01", "sim.days=1"], "sim.spinup_days", "8,640,000 steps"),
        (["sim.spinup_days=-1"], "sim.spinup_days", ">= 0"),
        (["sim.spinup_days=inf"], "sim.spinup_days", "finite"),
        (["therapy.day=inf"], "therapy.day", "therapy=none"),
        (["perturb.deplete_day=inf"], "perturb.deplete_day", "deplete_macrophages=false"),
        (["patient.sf_volume_ml=inf"], "patient.sf_volume_ml", "finite"),
        # 5 fluid rows x 256 = 1,280 fluid voxels; A_patch = 256 x 10 µm x 10 µm = 2.56e-4 cm²:
        # at most 1280 · 150 cm² / (0.5 · 2.56e-4 cm²) = 1.5e9 per knee
        (["therapy.dose=1e300"], "therapy.dose", "at most 1.5e+09"),
        (["therapy.dose=2e9", "therapy.adherence=0.75"], "therapy.dose", "at most 1e+09"),
        (["therapy.min_cells=1000000"], "therapy.min_cells", "1,280 fluid voxels"),
        (["therapy.min_cells=1281"], "therapy.min_cells", "at most 1280"),
    ],
)
def test_absurd_values_stop_with_one_line_naming_the_key(overrides, key, words):
    msg = one_line_error(overrides)
    assert msg.startswith(f"{key}: ") and words in msg, msg


def test_a_wrong_type_still_names_key_type_and_value():
    assert one_line_error(["seed=abc"]) == "seed: expected an integer, got 'abc'"


@pytest.mark.parametrize(
    "overrides",
    [
        [f"seed={2**64 - 1}"],
        ["sim.dt_min=60", "sim.days=7"],
        ["sim.dt_min=0.01", "sim.days=1", "sim.spinup_days=0"],
        ["sim.days=0.001"],  # 1.44 min: one step of 2 min
        [f"sim.days={MAX_STEPS * 2 / 1440}"],
        ["therapy.dose=1.5e9"],  # one MSC agent per fluid voxel (the default lattice)
        ["therapy.min_cells=1280"],
        ["therapy.dose=1e300", "therapy.adherence=0"],  # nothing reaches the synovium
        ["therapy=none", "therapy.dose=0", "therapy.day=1e6"],
    ],
)
def test_values_at_the_limits_are_valid(overrides):
    abm.compose(overrides)


def test_an_injection_after_the_end_of_the_run_is_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="abm.config")
    cfg = abm.compose(["therapy.day=30", "sim.days=7"])
    assert cfg.therapy.day == 30
    lines = [r.getMessage() for r in caplog.records if r.name == "abm.config"]
    assert lines == [
        "therapy.day=30 is after the end of the run (sim.days=7): no MSCs will be injected"
    ]
    caplog.clear()
    abm.compose(["therapy.day=30", "sim.days=7"], warn=False)  # a pre-check says nothing
    abm.compose(["therapy=none", "therapy.day=30", "sim.days=7"])  # nothing to inject
    abm.compose(["therapy.day=7", "sim.days=7"])  # injected at the last step
    assert not [r for r in caplog.records if r.name == "abm.config"]
    abm.compose(["perturb.deplete_macrophages=true", "perturb.deplete_day=9", "sim.days=7"])
    lines = [r.getMessage() for r in caplog.records if r.name == "abm.config"]
    assert lines == ["perturb.deplete_day=9 is after the end of the run (sim.days=7): "
                     "macrophages will not be depleted"]  # fmt: skip


def test_design_row_without_design_file_is_one_line():
    with pytest.raises(ConfigError, match=r"^design\.row=3: given without design\.file"):
        abm.compose(["design.row=3"])
