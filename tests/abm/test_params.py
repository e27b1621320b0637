"""Typed biology parameters: declarations, one-line errors for bad values, the generated docs."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

import abm
from abm.errors import ConfigError
from abm.params import default_biology, load_biology, parameter_rows, parameters_md

ROOT = Path(__file__).resolve().parents[2]


def error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as exc:
        abm.compose(list(overrides))
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_a_value_of_the_wrong_type_names_key_type_unit_and_range():
    msg = error("biology.macrophage.activation_rate=abc")
    assert msg.startswith("biology.macrophage.activation_rate: expected a number >= 0")
    assert "1/min" in msg and "plausible 0.0008 to 0.08" in msg and "'abc'" in msg


def test_out_of_bounds_values_stop_with_the_declared_range():
    msg = error("biology.msc.persistent_fraction=1.5")
    assert msg.startswith("biology.msc.persistent_fraction: expected a number in [0, 1]")
    assert "got 1.5" in msg
    assert error("biology.fields.TNF.K=0").startswith("biology.fields.TNF.K: expected a number")
    assert "got nan" in error("biology.tcell.secretion.th17.IL17=nan")
    assert "got -1.0" in error("biology.matrix.agg_synthesis=-1")


def test_unknown_table_names_and_unknown_keys_are_refused():
    assert "unknown name; valid: IL1b" in error("+biology.fls.secretion.IL99=1")
    assert "biology.macrophage.nope" in error("biology.macrophage.nope=1")
    assert "'ng/mL' or 'µM'" in error("biology.fields.IL6.units=mg")


def test_other_config_keys_of_the_wrong_type_name_the_expected_type():
    assert error("seed=abc") == "seed: expected an integer, got 'abc'"
    msg = error("therapy.prelicensed=maybe")
    assert msg == "therapy.prelicensed: expected true or false, got 'maybe'"


def test_overrides_reach_the_frozen_biology():
    cfg = abm.compose(["biology.macrophage.death_rate=4e-5", "biology.fields.IL1b.K=0.01"])
    bio = load_biology(cfg.biology)
    assert bio.macrophage.death_rate == 4e-5 and bio.fields["IL1b"].K == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        bio.macrophage.death_rate = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        bio.hill_n = 2.0


def test_every_parameter_is_declared_with_unit_source_and_a_range_holding_its_value():
    rows = parameter_rows()
    assert len(rows) > 80
    keys = [d.key for d in rows]
    assert len(keys) == len(set(keys))
    for d in rows:
        assert d.source, d.key
        if d.key.endswith(".units"):
            continue
        assert d.unit, d.key
        lo, hi = d.bounds
        assert lo <= d.value <= hi, d.key
        p_lo, p_hi = d.plausible
        assert lo <= p_lo <= d.value <= p_hi, d.key
        assert math.isfinite(p_hi), d.key


def test_composed_defaults_equal_the_declarations():
    composed = load_biology(abm.compose([]).biology)
    declared = default_biology()
    assert [(d.key, d.value) for d in parameter_rows(composed)] == [
        (d.key, d.value) for d in parameter_rows(declared)
    ]


def test_docs_parameters_md_is_generated_from_the_declarations():
    on_disk = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    assert on_disk == parameters_md(), "regenerate: python -m abm.params > docs/parameters.md"
    out = subprocess.run([sys.executable, "-m", "abm.params"], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    assert out.stdout == on_disk


def test_a_table_entry_can_keep_its_own_plausible_range():
    """A calibrated table entry keeps the prior it was calibrated in (FLS IL-6: hand-set 0.35
    ÷/× 10); the table's other entries keep value ÷/× 10."""
    rows = {d.key: d for d in parameter_rows()}
    il6, ccl2 = rows["biology.fls.secretion.IL6"], rows["biology.fls.secretion.CCL2"]
    assert il6.plausible == (0.035, 3.5) and il6.plausible[0] < il6.value < il6.plausible[1]
    assert ccl2.plausible == pytest.approx((ccl2.value / 10, ccl2.value * 10))
