"""Design rows (abm.sweep.design): applied to the config with the schema's checks, every problem
one ConfigError line naming the file, the row and the key."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import OmegaConf

from abm.config import compose
from abm.errors import ConfigError
from abm.sweep.design import apply_design, parse_value, read_design, write_design

SMALL = ["lattice.shape=[60,40]", "lattice.dx_um=25"]
RATE = "biology.macrophage.activation_rate"


@pytest.fixture
def design(tmp_path):
    # seed and min_cells are integer keys; the float column (3.0, 4.0) must still work
    table = pd.DataFrame({RATE: [0.001, 0.002, 0.004], "seed": [1.0, 3.0, 4.0],
                          "therapy.min_cells": [2, 5, 7], "therapy.prelicensed": [
                              True, False, True]})  # fmt: skip
    return write_design(tmp_path / "design.csv", table)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_write_design_puts_row_first_and_floats_read_back_exactly(tmp_path):
    values = [0.1 + 0.2, 1 / 3, 2.5e-7]
    path = write_design(tmp_path / "d.csv", {RATE: values, "row": [9, 9, 9]})
    keys, rows = read_design(path)
    assert keys == [RATE]
    assert [r["row"] for r in rows] == ["0", "1", "2"]  # a given row column is replaced
    assert [parse_value(r[RATE]) for r in rows] == values
    with pytest.raises(ValueError):
        write_design(tmp_path / "e.csv", {})


def test_compose_applies_the_row_with_types(design):
    cfg = compose([*SMALL, f"design.file={design}", "design.row=1"])
    assert cfg.biology.macrophage.activation_rate == pytest.approx(0.002)
    assert cfg.seed == 3 and type(cfg.seed) is int  # a float column for an int key
    assert cfg.therapy.min_cells == 5 and type(cfg.therapy.min_cells) is int
    assert cfg.therapy.prelicensed is False
    assert OmegaConf.is_readonly(cfg)
    again = apply_design(cfg)  # a read-only, already applied config: nothing changes
    assert again.seed == 3
    other = compose([*SMALL, f"design.file={design}", "design.row=2"])
    assert other.seed == 4 and other.therapy.prelicensed is True


@pytest.mark.parametrize("row, needle", [
    (3, "valid: an integer in 0..2"),
    (-1, "valid: an integer in 0..2"),
])  # fmt: skip
def test_row_out_of_range_is_one_line(design, row, needle):
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={design}", f"design.row={row}"])
    text = one_line(exc)
    assert text.startswith("design.row:") and str(design) in text and needle in text


def test_missing_row_and_missing_file(design, tmp_path):
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={design}"])
    assert "design.row: missing" in one_line(exc) and "0..2" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={tmp_path / 'nope.csv'}", "design.row=0"])
    assert "no such file" in one_line(exc) and "nope.csv" in str(exc.value)


@pytest.mark.parametrize("column, value, needle", [
    ("biology.macrophage.activaton_rate", 0.1, "unknown config key; did you mean "
     "biology.macrophage.activation_rate"),
    ("biology.nothing.x", 0.1, "unknown config key"),
    (RATE, "abc", "expected a number >= 0 (1/min; plausible 0.0008 to 0.08), got 'abc'"),
    (RATE, -0.5, "expected a number >= 0"),
    ("seed", 2.5, "seed: expected an integer, got 2.5"),
    ("therapy.min_cells", "many", "expected an integer"),
    ("sim.days", "long", "expected a number"),
    ("design.row", 1, "a design cannot set design.*"),
    ("biology.macrophage", 1, "is a group of keys"),
])  # fmt: skip
def test_bad_column_or_value_is_one_line_naming_file_row_key(tmp_path, column, value, needle):
    path = write_design(tmp_path / "bad.csv", {RATE: [0.001, 0.001], column: [value, value]}
                        if column != RATE else {RATE: [0.001, value]})  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={path}", "design.row=1"])
    text = one_line(exc)
    assert text.startswith(f"design.file={path} row 1: {column}: "), text
    assert needle in text, text


def test_a_file_that_is_not_a_design(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(f"{RATE}\n0.1\n")
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={path}", "design.row=0"])
    assert "no 'row' column" in one_line(exc)
    path.write_text(f"row,{RATE}\n0,0.1\n2,0.2\n")
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={path}", "design.row=0"])
    assert "rows must be 0, 1, 2, ... in order" in one_line(exc)
    path.write_text(f"row,{RATE}\n0,\n")
    with pytest.raises(ConfigError) as exc:
        compose([*SMALL, f"design.file={path}", "design.row=0"])
    assert f"row 0: {RATE}: empty value" in one_line(exc)


def test_abm_run_with_a_bad_row_is_one_line_exit_2(design, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "abm", *SMALL, "sim.days=0.01", f"design.file={design}",
         "design.row=7", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1, res.stderr
    assert err[0].startswith("abm-run: error: design.row: 7 is not a row of design.file=")
    assert not (tmp_path / "run" / "run.h5").exists()
