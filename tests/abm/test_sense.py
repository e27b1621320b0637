"""Per-type Hill constants: a cell type's ``Params`` may declare a table ``K`` (field -> Hill
constant); ``Sense.H`` uses it where declared, else the field's K. Checked with a toy type
declared here alone: schema keys, validation, the rule harness and the model's sense phase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

import abm
from abm.cells import register, unregister
from abm.cells.base import CellType, Fate, Sense, StepContext
from abm.cells.harness import RuleHarness
from abm.errors import ConfigError
from abm.params import FIELD_NAMES, load_biology, parameter_rows, table


@dataclass(frozen=True)
class Params:
    K: dict[str, float] = table({"TNF": 0.5, "IL1b": 0.002, "IL1RA": 4.0}, "field units",
                                "assumed (test)")  # fmt: skip


class ToyK(CellType):
    """Toy type with its own Hill constants; remembers what it sensed."""

    name = "toyk"
    title = "Toy (K)"
    Params = Params
    seen: ClassVar[dict[str, float]] = {}

    def update(self, ctx: StepContext, pop: Any) -> Fate:
        s = ctx.sense[self.name]
        ToyK.seen = {f: s.k(f) for f in ("TNF", "IL6", "IL1RA")}
        return Fate()


@pytest.fixture
def toy():
    register(ToyK)
    try:
        yield ToyK
    finally:
        unregister("toyk")


def test_declaring_K_adds_typed_keys_and_validation_refuses_unknown_fields(toy):
    cfg = abm.compose(["+biology.toyk.K.IFNg=0.3"])
    assert dict(cfg.biology.toyk.K) == {"TNF": 0.5, "IL1b": 0.002, "IL1RA": 4.0, "IFNg": 0.3}
    keys = {d.key: d for d in parameter_rows(load_biology(cfg.biology))}
    assert keys["biology.toyk.K.TNF"].value == 0.5 and keys["biology.toyk.K.TNF"].bounds[0] > 0
    with pytest.raises(ConfigError, match=r"^biology\.toyk\.K\.FOO: unknown name; valid: IL1b"):
        abm.compose(["+biology.toyk.K.FOO=1"])
    with pytest.raises(ConfigError, match=r"^biology\.toyk\.K\.TNF: expected a number >= 1e-12"):
        abm.compose(["biology.toyk.K.TNF=0"])


def test_sense_uses_the_types_K_else_the_fields():
    bio = load_biology(abm.compose([]).biology)
    values = np.zeros((len(FIELD_NAMES), 2))
    values[FIELD_NAMES.index("TNF")] = [0.5, 1.5]
    values[FIELD_NAMES.index("IL6")] = [1.0, 3.0]
    values[FIELD_NAMES.index("IL1b")] = [0.004, 0.004]
    values[FIELD_NAMES.index("IL1RA")] = [4.0, 0.0]
    s = Sense(np, values, FIELD_NAMES, bio, K={"TNF": 0.5, "IL1b": 0.002, "IL1RA": 4.0})
    np.testing.assert_allclose(s.H("TNF"), [0.5, 0.75])  # x / (0.5 + x)
    k6 = bio.fields["IL6"].K  # not declared by the type: the field's
    np.testing.assert_allclose(s.H("IL6"), np.array([1.0, 3.0]) / (k6 + np.array([1.0, 3.0])))
    # IL1_eff = IL1b / (1 + IL1RA / K_ra) with the type's K_ra = 4; its H with the type's K(IL1b)
    np.testing.assert_allclose(s["IL1_eff"], [0.002, 0.004])
    np.testing.assert_allclose(s.H("IL1_eff"), [0.5, 0.004 / 0.006])
    plain = Sense(np, values, FIELD_NAMES, bio)
    kt = bio.fields["TNF"].K
    np.testing.assert_allclose(plain.H("TNF"), [0.5 / (kt + 0.5), 1.5 / (kt + 1.5)])


def test_the_harness_and_the_model_pass_the_types_K(toy, small):
    cfg = abm.compose([*small, "biology.toyk.K.TNF=0.25"])
    h = RuleHarness(cfg, "toyk", n=2).clamp(TNF=0.25)
    np.testing.assert_allclose(h.sense.H("TNF"), 0.5)
    m = abm.JointModel(cfg)
    m.step()
    il6 = float(m.bio.fields["IL6"].K)
    assert ToyK.seen == {"TNF": 0.25, "IL6": il6, "IL1RA": 4.0}
