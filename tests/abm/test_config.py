"""Config composition and validation: defaults, groups, one-line errors naming the key."""

from __future__ import annotations

import pytest

import abm
from abm.config import ConfigError, compartment_rows, estimate_bytes


def test_defaults_compose_to_the_demo():
    cfg = abm.compose()
    assert cfg.scenario.name == "oa"
    assert cfg.therapy.name == "msc"
    assert cfg.backend.name == "numpy"
    assert list(cfg.lattice.shape) == [193, 256]
    rows = compartment_rows(cfg.lattice)
    assert rows == {"bone": 10, "cartilage": 50, "fluid": 50, "lining": 3, "sublining": 80}


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
