"""The memory guard's estimate against the measured peak memory of a real abm-run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import abm
from abm.config import estimate_bytes

# abm-run (python -m abm) in a subprocess that reports its own peak resident memory at exit.
# VmHWM is the peak of this process's own address space; ru_maxrss is not enough on Linux: a
# child started with vfork + exec inherits the parent's high-water mark (here: pytest's, which
# grows with the suite), so it is only the fallback where /proc is missing.
PEAK_RSS = """
import resource, runpy, sys
sys.argv = ["abm-run", *sys.argv[1:]]
try:
    runpy.run_module("abm", run_name="__main__")
finally:
    try:
        with open("/proc/self/status") as f:
            kib = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("maxrss_kib", kib, file=sys.stderr)
"""


def peak_rss_bytes(overrides: list[str], run_dir) -> int:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    res = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    line = [x for x in res.stderr.splitlines() if x.startswith("maxrss_kib")][-1]
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize(
    "overrides",
    [
        ["lattice.shape=[512,512]", "sim.spinup_days=0"],  # 2D: the solver's build is the peak
        pytest.param(
            ["lattice=3d", "lattice.shape=[128,64,64]", "sim.spinup_days=0"], marks=pytest.mark.slow
        ),
    ],
)
def test_the_estimate_bounds_the_measured_peak(overrides, tmp_path):
    overrides = [*overrides, "sim.days=0.01"]  # 7 steps of 2 min, a snapshot, a checkpoint
    estimate = estimate_bytes(abm.compose(overrides))
    measured = peak_rss_bytes(overrides, tmp_path / "run")
    assert measured <= estimate <= 2 * measured, (estimate / 2**20, measured / 2**20)
