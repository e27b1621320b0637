"""abm-run in subprocesses: the run folder, clear errors, and a run killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from abm.config import compose
from abm.errors import RunFileError
from abm.model import metric_names
from abm.observers.checkpoint import read_checkpoint
from abm.replay import load_run
from abm.runner import simulate
from abm.units import MIN_PER_DAY

SMALL = ["lattice.shape=[60,40]", "lattice.dx_um=25"]


def abm_run(*args, timeout=180):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "abm", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def test_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    res = abm_run(*SMALL, "sim.days=0.05", "output.snapshot_every_min=36", f"hydra.run.dir={out}")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    for name in ("run.h5", "run.xdmf", "metrics.csv", "checkpoint.h5", "summary.png"):
        assert (out / name).is_file(), name
    assert (out / ".hydra" / "config.yaml").is_file()
    csv = pd.read_csv(out / "metrics.csv")
    assert list(csv.columns) == metric_names()
    assert len(csv) == 37  # t=0 and 36 steps of 2 min
    with load_run(out) as r:
        np.testing.assert_array_equal(r.time_min, [0, 36, 72])
        pd.testing.assert_frame_equal(r.metrics, csv, check_exact=True)
        assert set(r.cells(-1)["type_name"].cat.categories) >= {"macrophage", "fls"}


@pytest.mark.parametrize(
    ("override", "key"),
    [("sim.days=-1", "sim.days"), ("no_such_key=1", "no_such_key"), ("scenario=bogus", "scenario")],
)
def test_bad_override_is_one_line_exit_2(tmp_path, override, key):
    out = tmp_path / "never"
    res = abm_run(override, f"hydra.run.dir={out}", timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm-run: error:"), res.stderr
    assert key in lines[0] and "Traceback" not in res.stderr
    assert not out.exists()


def test_sigkill_leaves_readable_frames_and_resume_matches(tmp_path):
    out = tmp_path / "killed"
    args = [*SMALL, "output.snapshot_every_min=10", "output.checkpoint_every_min=30"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "abm", *args, "sim.days=5", f"hydra.run.dir={out}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        n = 0
        while n < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with load_run(out) as r:
                    n = r.n_frames
            except RunFileError:
                pass  # not created yet
        assert n >= 6, "the run did not write 6 frames in time"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with load_run(out) as r:
        assert r.n_frames >= 6
        np.testing.assert_allclose(np.diff(r.time_min), 10.0)
        for k in range(r.n_frames):
            for name in r.field_names:
                assert np.isfinite(r.field(name, k)).all()
            assert len(r.cells(k)) > 0
        assert len(r.metrics) >= 1 + r.time_min[-1] / 2

    # resume the killed run a little past its checkpoint; compare with an uninterrupted run
    t_c = read_checkpoint(out / "checkpoint.h5").time_min
    days = (t_c + 20.0) / MIN_PER_DAY
    res = abm_run(f"resume={out / 'run.h5'}", f"sim.days={days!r}")
    assert res.returncode == 0, res.stderr
    saved = OmegaConf.load(out / ".hydra" / "config.yaml")
    assert saved.output.snapshot_every_min == 10 and saved.sim.days == days
    whole = tmp_path / "whole"
    simulate(compose([*args, f"sim.days={days!r}"]), whole)
    with load_run(out) as a, load_run(whole) as b:
        np.testing.assert_array_equal(a.time_min, b.time_min)
        pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
        for name in a.field_names:
            np.testing.assert_array_equal(a.field(name, -1), b.field(name, -1))
        pd.testing.assert_frame_equal(a.cells(-1), b.cells(-1))


def test_multirun_sweep_writes_one_folder_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    res = abm_run("-m", *SMALL, "seed=0,1", "sim.days=0.025", "output.summary_png=false",
                  f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    a, b = (pd.read_csv(sweep / job / "metrics.csv") for job in ("0", "1"))
    assert len(a) == len(b) == 19 and not a.equals(b)  # t = 0 and 18 steps of 2 min


def test_multirun_with_one_bad_job_starts_none(tmp_path):
    sweep = tmp_path / "sweep"
    res = abm_run("-m", *SMALL, "therapy.dose=1e7,-1", f"hydra.sweep.dir={sweep}", timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "abm-run: error: therapy.dose: must be a number of cells per knee >= 0, got -1.0"
    ]
    assert not sweep.exists()
