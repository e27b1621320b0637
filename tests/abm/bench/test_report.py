"""Reports from result rows: speedups vs numpy, the printed tables, bench.json and bench.png."""

from __future__ import annotations

import json

from abm.bench import report


def _row(what, backend, median_s, **extra):
    row = {
        "what": what,
        "case": "c1",
        "backend": backend,
        "median_s": median_s,
        "throughput": 1.0 / median_s,
        "unit": "M/s",
        "voxel_field_updates": 10**6,
    }
    return {**row, **extra}


def _rows():
    ref = {"median_s": 0.5, "throughput": 2.0, "times_s": [0.5]}
    cells = {"n_cells": 1e3, "solver_fraction": 0.25, "phase_median_s": {"sense": 0.01}}
    return [
        _row("lattice", "numpy", 1.0),
        _row("lattice", "cupy", 0.1),
        _row("cells", "numpy", 0.2, **cells),
        _row("ratio", "numpy", 0.25, fields=8, reference=ref, ratio_vs_reference=2.0),
    ]


def test_speedups_vs_numpy():
    rows = _rows()
    speedups = report.add_speedups(rows)
    assert len(speedups) == 1 and speedups[0]["ratio"] == 10.0
    assert rows[1]["speedup_vs_numpy"] == 10.0 and "speedup_vs_numpy" not in rows[0]


def test_text_has_the_table_phases_and_ratios():
    rows = _rows()
    report.add_speedups(rows)
    text = report.format_text(rows)
    lines = text.splitlines()
    assert lines[0].split() == [
        "what",
        "case",
        "backend",
        "size",
        "ms/step",
        "throughput",
        "unit",
        "solver",
        "speedup",
        "yardstick",
    ]
    assert "x10.00" in lines[3] and "25%" in lines[4] and lines[5].rstrip().endswith("x2.00")
    assert "phase medians (ms)" in lines
    assert lines[-1].endswith("-> x2.00") and "yardstick 2 M/s" in lines[-1]


def test_write_json_and_png(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "machine_info", lambda backends: {"gpu": None})  # no cupy here
    rows = _rows()
    settings = {"backends": ["numpy", "cupy"], "what": ("lattice",), "sizes": "small", "repeats": 1}
    doc = report.make_report(rows, report.now(), ["--sizes", "small"], settings)
    json_path, png_path = report.write(doc, tmp_path / "out")
    back = json.loads(json_path.read_text())
    assert back["schema"] == report.SCHEMA == "oa-abm-bench/1"
    assert back["settings"]["what"] == ["lattice"] and back["settings"]["statistic"] == "median"
    assert back["speedups"] and back["argv"] == ["--sizes", "small"]
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
