"""abm-bench in subprocesses: tiny sizes write bench.json + bench.png and print the table;
an unknown or unusable backend stops with one line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from abm.backend import cuda_device_count


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
    png = tmp_path / "bench.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["what", "case", "backend"]
    assert sum(line.startswith(("lattice", "cells")) for line in lines) == 4


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
