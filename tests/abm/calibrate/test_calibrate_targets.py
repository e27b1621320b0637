"""The calibration targets table (abm.calibrate.targets): the shipped table loads and holds
the corrected targets, bands are computed as documented, and every kind of bad cell is one
line naming the file, the row id and the column."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from abm.calibrate.targets import (
    COLUMNS,
    KINDS,
    TargetsError,
    default_targets_path,
    load_targets,
    parse_window,
)

GOOD = {
    "id": "x1",
    "readout": "il6_fluid",
    "arm": "oa",
    "window_days": "1:30",
    "kind": "level",
    "value": "100",
    "lower": "",
    "upper": "",
    "unit": "pg/mL",
    "log10_tolerance": "0.5",
    "species": "human",
    "source": "a source",
    "role": "calibrate",
    "note": "",
}


def write(path: Path, rows: list[dict], columns=COLUMNS) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def test_shipped_table_loads_with_the_corrected_targets():
    ts = {t.id: t for t in load_targets()}
    assert default_targets_path().name == "targets.csv"
    # C1 as restated for biology v2 (docs/validation.md)
    assert ts["C1a_il6"].value == 975 and ts["C1a_il6"].tol == 0.5
    assert ts["C1a_il1b"].core == (1.14, 28.0)
    assert ts["C1a_tnf"].core == (2.92, 50.0)
    assert ts["C1a_ccl2"].value == 108
    lo, hi = ts["C1a_tnf"].band
    assert lo == pytest.approx(2.92 / 10**0.5) and hi == pytest.approx(50 * 10**0.5)
    for tid in ("C1b_tnf_healthy", "C1b_il1b_healthy"):
        assert ts[tid].kind == "censored_upper" and ts[tid].value == 1.0
    assert ts["C1c_il6_ratio"].is_ratio and ts["C1c_il6_ratio"].core == (3.0, 100.0)
    # MSC retention is an input, never fitted; >= 3 hold-outs
    assert {ts["C2_msc_day30"].role, ts["C2_msc_day180"].role} == {"input"}
    held = {t.id for t in ts.values() if t.role == "hold_out"}
    assert {"C4_il10_rise", "C6_primed", "N_il1ra_bolus", "T_late_injection"} <= held
    assert {t.kind for t in ts.values()} == set(KINDS)
    for t in ts.values():  # every value has a unit and a source (or says assumed)
        assert t.unit and t.source and t.species


def test_bands_of_each_kind(tmp_path):
    rows = [
        {**GOOD, "id": "lev"},
        {
            **GOOD,
            "id": "int",
            "kind": "interval",
            "value": "",
            "lower": "2",
            "upper": "50",
            "log10_tolerance": "1",
        },
        {
            **GOOD,
            "id": "rat",
            "kind": "ratio",
            "arm": "oa/healthy",
            "value": "",
            "lower": "3",
            "upper": "100",
            "log10_tolerance": "0.1",
        },
        {**GOOD, "id": "cu", "kind": "censored_upper", "value": "1"},
        {**GOOD, "id": "cl", "kind": "censored_lower", "value": "1"},
        {
            **GOOD,
            "id": "q",
            "kind": "qualitative",
            "value": "",
            "log10_tolerance": "",
            "window_days": "7",
        },
    ]
    ts = {t.id: t for t in load_targets(write(tmp_path / "t.csv", rows))}
    assert ts["lev"].band == pytest.approx((100 / 10**0.5, 100 * 10**0.5))
    assert ts["int"].band == pytest.approx((0.2, 500.0))
    assert ts["rat"].arms == ("oa", "healthy")
    assert ts["cu"].band == (0.0, 1.0)
    assert ts["cl"].band == (1.0, math.inf)
    assert ts["q"].value == 1.0 and ts["q"].window == (7.0, 7.0)
    assert ts["lev"].window == (1.0, 30.0)


def test_parse_window():
    assert parse_window("") is None
    assert parse_window("1:30") == (1.0, 30.0)
    assert parse_window("42") == (42.0, 42.0)
    for bad in ("30:1", "a", "-1:2", "1:inf"):
        with pytest.raises(ValueError):
            parse_window(bad)


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        ({"kind": "levels"}, "kind", "one of level"),
        ({"role": "fit"}, "role", "calibrate"),
        ({"value": "abc"}, "value", "expected a number"),
        ({"value": "-3"}, "value", "> 0"),
        ({"source": ""}, "source", "assumed"),
        ({"unit": ""}, "unit", "empty"),
        ({"log10_tolerance": "0"}, "log10_tolerance", "> 0"),
        ({"kind": "interval", "value": "", "lower": "50", "upper": "2"}, "lower", "lower <= upper"),
        ({"kind": "interval", "value": "", "lower": "5", "upper": ""}, "upper", "both"),
        ({"kind": "ratio"}, "arm", "two arms"),
        ({"window_days": "5:1"}, "window_days", "A:B"),
        ({"kind": "qualitative", "value": "0.5"}, "value", "qualitative"),
        ({"id": "a b"}, "id", "letters"),
    ],
)
def test_bad_cells_are_one_line_naming_file_row_column(tmp_path, change, column, words):
    path = write(tmp_path / "bad.csv", [{**GOOD, "id": "ok1"}, {**GOOD, "id": "row7", **change}])
    with pytest.raises(TargetsError) as err:
        load_targets(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and f"column {column}:" in msg and words in msg
    rid = change.get("id", "row7")
    assert f"row {rid}" in msg or "line 3" in msg


def test_table_level_errors(tmp_path):
    with pytest.raises(TargetsError, match="no such file"):
        load_targets(tmp_path / "none.csv")
    path = write(tmp_path / "cols.csv", [GOOD], [c for c in COLUMNS if c != "role"])
    with pytest.raises(TargetsError, match=r"missing column.*role"):
        load_targets(path)
    path = write(tmp_path / "dup.csv", [GOOD, GOOD])
    with pytest.raises(TargetsError, match="row x1: column id: 'x1' given twice"):
        load_targets(path)
