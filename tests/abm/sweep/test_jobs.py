"""Sweep jobs that survive failures and resume: status.json, the job folder's state and name,
and ``abm-run -m`` run again over a sweep with failed, killed, stopped and foreign jobs.

Failures are made for real in the job processes: a ``sitecustomize`` on ``PYTHONPATH`` (read by
every Python process of the sweep, joblib's workers included) makes ``JointModel.step`` of one
seed raise, or kill its own process, at a given step."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from abm.config import compose
from abm.lock import LOCK_FILE, acquire
from abm.observers.checkpoint import read_checkpoint
from abm.replay import load_run
from abm.runner import simulate
from abm.sweep.status import (
    MAX_DIRNAME,
    config_sha,
    job_dirname,
    job_state,
    read_status,
    write_status,
)

SMALL = [
    "lattice.shape=[60,40]",
    "lattice.dx_um=25",
    "sim.days=0.025",
    "output.summary_png=false",
    "sim.spinup_days=0",
]

# JointModel.step of seed S fails at step N: ABM_TEST_FAIL="S:N:raise" (RuntimeError) or
# "S:N:kill" (SIGKILL of its own process: a node lost, the OOM killer).
SITECUSTOMIZE = """
import os

_spec = os.environ.get("ABM_TEST_FAIL")
if _spec:
    import signal

    import abm.model

    _seed, _at, _how = _spec.split(":")
    _step = abm.model.JointModel.step

    def step(self):
        if int(self.cfg.seed) == int(_seed) and self.steps >= int(_at):
            if _how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure at step {self.steps}")
        return _step(self)

    abm.model.JointModel.step = step
"""


@pytest.fixture
def failing(tmp_path):
    """env for abm_run: JointModel.step fails as ``spec`` says (see SITECUSTOMIZE)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def env(spec: str) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
        return {"PYTHONPATH": path, "ABM_TEST_FAIL": spec}

    return env


def abm_run(*args, env=None, timeout=240):
    env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "abm", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def job_name(seed: int) -> str:
    """The folder of the job ``seed=S`` of a sweep over seeds (named by what the sweep varies)."""
    return f"seed={seed}"


def table(sweep: Path) -> dict[str, dict[str, str]]:
    with open(sweep / "sweep_status.csv", newline="") as fh:
        return {row["job"]: row for row in csv.DictReader(fh)}


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """(mtime_ns, bytes) of every file below ``folder`` but the log (a log is appended to)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix != ".log"
    }


def reference(tmp_path: Path, overrides: list[str]) -> Path:
    """The same run, uninterrupted, in a folder of its own."""
    out = tmp_path / ("ref-" + "-".join(o.replace("/", "_") for o in overrides)[-80:])
    simulate(compose(overrides), out)
    return out


def assert_same_run(a: Path, b: Path) -> None:
    with load_run(a) as x, load_run(b) as y:
        np.testing.assert_array_equal(x.time_min, y.time_min)
        pd.testing.assert_frame_equal(x.metrics, y.metrics, check_exact=True)
        for name in x.field_names:
            np.testing.assert_array_equal(x.field(name, -1), y.field(name, -1))
        pd.testing.assert_frame_equal(x.cells(-1), y.cells(-1))


def last_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and "Traceback" not in stderr, stderr
    return lines[-1]


# -- status.json, job_state, config_sha, the folder name ---------------------------------------


def test_status_round_trip_is_atomic_and_complete(tmp_path):
    written = write_status(tmp_path, status="running", overrides=["seed=1"], config_sha="ab")
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left
    data = read_status(tmp_path)
    assert data == written and json.loads((tmp_path / "status.json").read_text()) == written
    assert data["status"] == "running" and data["overrides"] == ["seed=1"]
    assert data["pid"] == os.getpid() and data["host"] == socket.gethostname()
    assert data["design"] == {} and data["error"] is None and data["wall_s"] is None
    with pytest.raises(ValueError, match="unknown field"):
        write_status(tmp_path, status="failed", eror="typo")
    with pytest.raises(ValueError, match="status must be one of"):
        write_status(tmp_path, status="done")
    (tmp_path / "status.json").write_text("{not json")
    assert read_status(tmp_path) is None


def test_job_state_of_every_kind_of_folder(tmp_path):
    assert job_state(tmp_path / "nothing") == "missing"
    job = tmp_path / "job"
    job.mkdir()
    assert job_state(job) == "missing"
    (job / "run.h5").write_bytes(b"a run without a status")
    assert job_state(job) == "unfinished"
    write_status(job, status="running")
    assert job_state(job) == "unfinished"  # no live writer holds the lock
    with acquire(job):
        assert job_state(job) == "running"
        write_status(job, status="failed", error="x")
        assert job_state(job) == "running"  # a new attempt is under way
    assert job_state(job) == "failed"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (job / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                             "started": "earlier"}))  # fmt: skip
    write_status(job, status="running")
    assert job_state(job) == "unfinished"  # killed: its lock is stale
    write_status(job, status="complete")
    assert job_state(job) == "complete"


def test_config_sha_ignores_hydra_progress_and_resume_only():
    a = compose(SMALL)
    assert config_sha(a) == config_sha(compose(SMALL))
    assert config_sha(a) == config_sha(compose([*SMALL, "output.progress=true"]))
    plain = OmegaConf.to_container(a)
    assert config_sha(a) == config_sha({**plain, "resume": "x/run.h5", "hydra": {"a": 1}})
    assert config_sha(a) != config_sha(compose([*SMALL, "seed=1"]))
    assert config_sha(a) != config_sha(compose([*SMALL, "output.snapshot_every_min=10"]))
    assert len(config_sha(a)) == 64


def test_job_folder_names_are_safe_bounded_and_stable():
    assert job_dirname("") == "default"
    assert job_dirname("seed=1,therapy.knockouts=[pge2]") == "seed=1,therapy.knockouts=[pge2]"
    name = job_dirname("design.file=/data/d.csv,seed=1")
    assert "/" not in name and name.startswith("design.file=_data_d.csv,seed=1-")
    assert name == job_dirname("design.file=/data/d.csv,seed=1")  # the same every time
    assert name != job_dirname("design.file=_data_d.csv,seed=1")  # never two jobs in one folder
    long = ",".join(f"biology.macrophage.k{i}={i}.5" for i in range(20))
    assert len(job_dirname(long)) == MAX_DIRNAME and job_dirname(long) != job_dirname(long + "1")
    assert not job_dirname("..").startswith(".")


def test_status_records_the_values_of_a_design_row(tmp_path):
    from abm.cli.sweep_job import _design_values
    from abm.sweep.design import write_design

    design = write_design(tmp_path / "d.csv", {"therapy.dose": [1e6, 2e6], "seed": [4, 5]})
    cfg = compose([*SMALL, f"design.file={design}", "design.row=1"])
    assert _design_values(cfg) == {"therapy.dose": 2e6, "seed": 5}
    assert _design_values(compose(SMALL)) == {}


# -- abm-run -m: failures, re-runs, resumes ------------------------------------------------------


def test_failed_job_is_reported_and_a_rerun_redoes_only_it(tmp_path, failing):
    sweep = tmp_path / "sweep"
    args = ["-m", *SMALL, "seed=0,1", f"hydra.sweep.dir={sweep}", "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2"]  # fmt: skip
    res = abm_run(*args, env=failing("1:5:raise"))
    assert res.returncode == 1, res.stderr
    assert last_line(res.stderr).startswith(
        "abm-run: error: 2 jobs: 1 complete, 0 skipped, 1 failed ("
        f"{job_name(1)}: failed: RuntimeError: injected failure at step 5); table: "
    )
    rows = table(sweep)
    assert rows[job_name(0)]["status"] == "complete"
    bad = rows[job_name(1)]
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: injected failure at step 5"
    assert bad["overrides"].endswith("seed=1") and bad["in_this_run"] == "True"
    status = read_status(sweep / job_name(1))
    assert status["status"] == "failed" and status["exit_code"] == 1
    assert status["error"] == bad["error"] and status["wall_s"] > 0
    assert read_status(sweep / job_name(0))["status"] == "complete"
    done = snapshot(sweep / job_name(0))
    assert "run.h5" in done and "status.json" in done and ".hydra/config.yaml" in done

    res = abm_run(*args)  # the same sweep again, nothing fails now
    assert res.returncode == 0, res.stderr
    assert "2 jobs: 1 complete, 1 skipped, 0 failed; table: " in res.stdout
    assert snapshot(sweep / job_name(0)) == done  # skipped: not a byte, not a time changed
    log = (sweep / job_name(0) / "run.log").read_text()
    assert log.count("skipped: already complete") == 1
    rows = table(sweep)
    assert rows[job_name(0)]["status"] == "skipped" and rows[job_name(1)]["status"] == "complete"
    assert read_status(sweep / job_name(1))["status"] == "complete"
    assert not list((sweep / job_name(1)).glob(".previous-*"))  # continued, not started again
    assert_same_run(sweep / job_name(1), reference(tmp_path, [*SMALL, "seed=1"]))


def test_killed_job_is_unfinished_and_continues_from_its_checkpoint(tmp_path, failing):
    sweep = tmp_path / "sweep"
    often = ["output.snapshot_every_min=10", "output.checkpoint_every_min=10"]
    args = ["-m", *SMALL, *often, "seed=0,1", f"hydra.sweep.dir={sweep}"]
    res = abm_run(*args, env=failing("1:12:kill"))  # the basic launcher: the sweep dies too
    assert res.returncode == -signal.SIGKILL
    first, killed = sweep / job_name(0), sweep / job_name(1)
    assert job_state(first) == "complete"
    assert read_status(killed)["status"] == "running" and (killed / LOCK_FILE).exists()
    assert job_state(killed) == "unfinished"
    assert read_checkpoint(killed / "checkpoint.h5").time_min == 20.0  # steps of 2 min

    res = abm_run(*args)
    assert res.returncode == 0, res.stderr
    assert "2 jobs: 1 complete, 1 skipped, 0 failed" in res.stdout
    log = (killed / "run.log").read_text()
    assert "took over a stale lock" in log and "continuing the earlier attempt" in log
    assert "resuming from" in log and "at day 0.0138889" in log
    assert job_state(killed) == "complete" and not (killed / LOCK_FILE).exists()
    assert not list(killed.glob(".previous-*"))
    assert_same_run(killed, reference(tmp_path, [*SMALL, *often, "seed=1"]))


def test_unfinished_job_without_checkpoint_starts_again_keeping_the_old_files(tmp_path, failing):
    sweep = tmp_path / "sweep"
    args = ["-m", *SMALL, "seed=0", f"hydra.sweep.dir={sweep}"]
    res = abm_run(*args, env=failing("0:5:kill"))
    assert res.returncode == -signal.SIGKILL
    job = sweep / "default"  # a sweep that varies nothing: its one job's folder
    (job / "checkpoint.h5").unlink()  # as if killed before its first checkpoint
    old = {name: (job / name).read_bytes() for name in ("run.h5", "metrics.csv", "status.json")}

    res = abm_run(*args)
    assert res.returncode == 0, res.stderr
    (aside,) = job.glob(".previous-*")
    assert {name: (aside / name).read_bytes() for name in old} == old  # kept, not deleted
    assert (aside / ".hydra" / "config.yaml").is_file()
    assert "moved the files of an earlier attempt into" in (job / "run.log").read_text()
    assert read_status(job)["status"] == "complete"
    assert_same_run(job, reference(tmp_path, [*SMALL, "seed=0"]))


def test_folder_of_a_different_complete_job_is_refused_and_left_alone(tmp_path):
    sweep = tmp_path / "sweep"
    same_folder = [f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=job"]
    res = abm_run("-m", *SMALL, "seed=0", *same_folder)
    assert res.returncode == 0, res.stderr
    before = snapshot(sweep / "job")
    res = abm_run("-m", *SMALL, "seed=1", *same_folder)  # another job, the same folder
    assert res.returncode == 1
    line = last_line(res.stderr)
    assert line.startswith(
        "abm-run: error: 1 jobs: 0 complete, 0 skipped, 1 failed (job: "
        f"failed: {sweep / 'job'}: holds a different job (complete, config_sha "
    )
    assert "nothing in it was touched" in line
    assert snapshot(sweep / "job") == before  # status.json, .hydra/, run files: untouched
    row = table(sweep)["job"]
    assert row["status"] == "failed" and "holds a different job" in row["error"]
    assert row["overrides"].endswith("seed=1")


def test_sigterm_stops_the_sweep_and_the_same_command_continues_it(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*SMALL[:2], "sim.spinup_days=0", "sim.days=0.2", "output.summary_png=false", "seed=0",
            "output.snapshot_every_min=10", "output.checkpoint_every_min=20",
            f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=job"]  # fmt: skip
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, "-m", "abm", "-m", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    job = sweep / "job"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with h5py.File(job / "run.h5", "r", swmr=True) as f:
                    if f["time_min"].shape[0] >= 4:
                        break
            except (OSError, KeyError):
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job did not write 4 frames in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, stderr
    assert last_line(stderr).startswith("abm-run: error: stopped by SIGTERM")
    status = read_status(job)
    assert status["status"] == "failed" and status["exit_code"] == 143
    said = f"stopped by SIGTERM; the frames and metrics up to here are in {job}; run the same"
    assert status["error"].startswith(f"{said} abm-run -m command again")
    assert not (job / LOCK_FILE).exists()

    res = abm_run("-m", *args)
    assert res.returncode == 0, res.stderr
    assert "continuing the earlier attempt" in (job / "run.log").read_text()
    assert_same_run(job, reference(tmp_path, [a for a in args if not a.startswith("hydra.")]))
