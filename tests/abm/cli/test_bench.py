"""abm-bench in subprocesses: tiny sizes write bench.json + bench.png and print the tables
(with the phases of a model step; the solver against the yardstick with ``--what ratio``); an
unknown or unusable backend stops with one line and exit code 2."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest

from abm.backend import cuda_device_count
from abm.model import PHASES


def abm_bench(*args, timeout=180):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "abm.cli.bench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_small_run_writes_json_png_and_table(tmp_path):
    res = abm_bench(
        "--backends", "numpy", "--sizes", "small", "--repeats", "1", "--out", str(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["schema"] == "oa-abm-bench/1"
    assert {"machine", "settings", "results", "speedups", "started"} <= set(report)
    machine = report["machine"]
    for key in ("cpu_model", "cpu_count", "numpy", "threadpools", "gpu"):
        assert key in machine
    assert report["settings"]["backends"] == ["numpy"]
    cases = {(r["what"], r["case"]) for r in report["results"]}
    assert cases == {
        ("lattice", "2d-128"),
        ("lattice", "3d-32"),
        ("cells", "2d-small"),
        ("cells", "3d-small"),
    }
    for r in report["results"]:
        assert r["backend"] == "numpy"
        assert len(r["times_s"]) == 1 and r["median_s"] > 0 and r["throughput"] > 0
        if r["what"] == "cells":
            assert r["n_cells"] > 0 and 0 < r["solver_s"] < r["median_s"]
            assert set(r["cells_by_type"]) == {"macrophage", "tcell", "fls", "chondrocyte", "msc"}
            assert r["cells_by_type"]["msc"] > 0  # injected at t = 0, before the timed step
            assert tuple(r["phase_median_s"]) == PHASES
            assert r["phase_median_s"]["transport"] == r["solver_s"]
            assert {k.split("=")[0] for k in r["overrides"]} >= {"scenario", "scenario.mac_density"}
    png = tmp_path / "bench.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["what", "case", "backend"]
    assert sum(line.startswith(("lattice", "cells")) for line in lines) == 4
    assert "phase medians (ms)" in lines


def test_ratio_against_the_yardstick(tmp_path):
    res = abm_bench("--what", "ratio", "--sizes", "small", "--repeats", "1", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    rows = report["results"]
    assert {(r["what"], r["case"]) for r in rows} == {("ratio", "2d-128"), ("ratio", "3d-32")}
    for r in rows:
        assert r["fields"] == 8 and r["reference"]["median_s"] > 0
        pairs = [a / b for a, b in zip(r["reference"]["times_s"], r["times_s"], strict=True)]
        assert r["ratio_vs_reference"] == pytest.approx(statistics.median(pairs))
    assert sum("yardstick" in line and "-> x" in line for line in res.stdout.splitlines()) == 2


def test_lattice_only(tmp_path):
    res = abm_bench(
        "--what", "lattice", "--sizes", "small", "--repeats", "1", "--out", str(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {r["what"] for r in report["results"]} == {"lattice"}


@pytest.mark.parametrize(
    "args",
    [
        ("--backends", "bogus"),
        pytest.param(
            ("--backends", "numpy", "cupy"),
            marks=pytest.mark.skipif(cuda_device_count() > 0, reason="a CUDA device answers"),
        ),
        ("--repeats", "0"),
    ],
    ids=["unknown", "cupy-without-gpu", "repeats-0"],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args):
    out = tmp_path / "never"
    res = abm_bench(*args, "--out", str(out), timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm-bench: error:"), res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()
