"""abm-run in subprocesses: the run folder, clear errors, a run killed with SIGKILL or stopped with
SIGTERM, the run-folder lock, and one line (and the right exit code) for every mistake."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from abm.config import compose
from abm.errors import RunFileError
from abm.lock import LOCK_FILE
from abm.model import metric_names
from abm.observers.checkpoint import read_checkpoint
from abm.replay import load_run
from abm.runner import simulate
from abm.units import MIN_PER_DAY
from tests.abm.fake_model import FakeModel, fake_config
from tests.conftest import SMALL as SMALL_CONFTEST

SMALL = ["lattice.shape=[60,40]", "lattice.dx_um=25", "sim.spinup_days=0"]


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
    # each job's folder is named by the overrides the sweep varies (Hydra's override_dirname;
    # those with one value for every job are in .hydra/overrides.yaml and status.json)
    jobs = ["seed=0", "seed=1"]
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == sorted(
        [*jobs, "multirun.yaml", "sweep_status.csv"]
    )
    a, b = (pd.read_csv(sweep / job / "metrics.csv") for job in jobs)
    assert len(a) == len(b) == 19 and not a.equals(b)  # t = 0 and 18 steps of 2 min
    for job in jobs:
        assert (sweep / job / ".hydra" / "overrides.yaml").is_file()
        assert (sweep / job / "status.json").is_file()


def test_multirun_with_one_bad_job_starts_none(tmp_path):
    sweep = tmp_path / "sweep"
    res = abm_run("-m", *SMALL, "therapy.dose=1e7,-1", f"hydra.sweep.dir={sweep}", timeout=60)
    assert res.returncode == 2
    msg = _one_line(res.stderr)
    assert msg.startswith("therapy.dose: must be a ") and msg.endswith(">= 0, got -1.0"), msg
    assert not sweep.exists()


# -- run folders nobody can clobber, and one line for every mistake -----------------------------

FAST = [*SMALL_CONFTEST, "output.snapshot_every_min=10", "output.summary_png=false"]


def _start(*args):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.Popen(
        [sys.executable, "-m", "abm", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip


def _frames(run_h5) -> int:
    try:
        with h5py.File(run_h5, "r", swmr=True) as f:
            return int(f["time_min"].shape[0])
    except (OSError, KeyError):
        return 0


def _wait_for_frames(proc, out, n, timeout=120):
    deadline = time.monotonic() + timeout
    while _frames(out / "run.h5") < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the run did not write {n} frames in time"
        time.sleep(0.2)


def _one_line(res_stderr: str) -> str:
    lines = res_stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm-run: error: "), res_stderr
    assert "Traceback" not in res_stderr
    return lines[0].removeprefix("abm-run: error: ")


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()


def test_second_run_into_a_live_folder_refuses_and_leaves_it_alone(tmp_path):
    out = tmp_path / "run"
    first = _start(*FAST, "sim.days=20", f"hydra.run.dir={out}")
    try:
        _wait_for_frames(first, out, 3)
        hydra_files = {p.name: p.read_bytes() for p in (out / ".hydra").iterdir()}
        second = abm_run(*FAST, "sim.days=20", f"hydra.run.dir={out}", timeout=60)
        assert second.returncode == 2
        msg = _one_line(second.stderr)
        assert msg.startswith(f"{out}: another run is writing here (pid {first.pid} on host ")
        assert msg.endswith(
            f"wait for it to end or stop it (kill {first.pid}), or choose another folder"
        )
        resumed = abm_run(f"resume={out / 'run.h5'}", "sim.days=30", timeout=60)
        assert resumed.returncode == 2
        assert _one_line(resumed.stderr).startswith(
            f"{out}: the run in this folder is still going (pid {first.pid} on host "
        )
        assert first.poll() is None  # untouched, still running
        assert {p.name: p.read_bytes() for p in (out / ".hydra").iterdir()} == hydra_files
    finally:
        _stop(first)
    csv = pd.read_csv(out / "metrics.csv")  # one writer: one header, time strictly increasing
    assert (np.diff(csv["time_min"]) > 0).all()
    assert _frames(out / "run.h5") >= 3


def test_sigterm_flushes_closes_and_says_so(tmp_path):
    out = tmp_path / "run"
    proc = _start(*FAST, "sim.days=20", f"hydra.run.dir={out}")
    try:
        _wait_for_frames(proc, out, 4)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    assert proc.returncode == 143
    assert _one_line(stderr) == (
        f"stopped by SIGTERM; the frames and metrics up to here are in {out}; continue with "
        f"resume={out / 'run.h5'}"
    )
    assert not (out / LOCK_FILE).exists()
    with h5py.File(out / "run.h5", "r") as f:  # plain h5py: the file was closed
        times = f["time_min"][...]
        assert times.size >= 4
        np.testing.assert_allclose(np.diff(times), 10.0)
        offsets = f["cells/offsets"][...]
        assert offsets.size == times.size + 1 and f["cells/id"].shape[0] == offsets[-1]
        for k in range(times.size):
            for name in f["fields"]:
                assert np.isfinite(f["fields"][name][k]).all()
        assert f["metrics/time_min"][-1] >= times[-1]
    csv = pd.read_csv(out / "metrics.csv")
    assert csv["time_min"].iloc[-1] >= times[-1] and not csv.isna().any().any()


def test_stale_lock_is_taken_over_and_logged(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(
        f'{{"pid": {dead.pid}, "host": "{socket.gethostname()}", "started": "earlier"}}'
    )
    res = abm_run(*FAST, "sim.days=0.02", f"hydra.run.dir={out}")
    assert res.returncode == 0, res.stderr
    line = f"{out}: took over a stale lock (pid {dead.pid} on host"
    assert line in res.stdout and line in (out / "run.log").read_text()
    assert not (out / LOCK_FILE).exists()


def test_resume_into_a_folder_with_another_run_refuses(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(compose([*FAST, "sim.days=0.02"]), a)
    simulate(compose([*FAST, "sim.days=0.02", "seed=1"]), b)
    before = {p.name: p.read_bytes() for p in b.iterdir()}
    res = abm_run(f"resume={a / 'run.h5'}", "sim.days=0.05", f"hydra.run.dir={b}", timeout=60)
    assert res.returncode == 2
    assert _one_line(res.stderr) == (
        f"hydra.run.dir={b}: holds another run ({b / 'run.h5'}); resume={a / 'run.h5'} "
        f"continues in its own folder {a} (leave out hydra.run.dir) or in an empty one"
    )
    assert {p.name: p.read_bytes() for p in b.iterdir()} == before


def test_unwritable_output_folder_is_one_line(tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    res = abm_run(*FAST, f"hydra.run.dir={tmp_path}/file.txt/sub", timeout=60)
    assert res.returncode == 2
    assert _one_line(res.stderr) == (
        f"{tmp_path}/file.txt/sub: cannot create the run folder ({tmp_path}/file.txt is a file, "
        "not a folder); choose a folder you can write"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_output_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = abm_run(*FAST, f"hydra.run.dir={ro}/sub", timeout=60)
    finally:
        ro.chmod(0o700)
    assert res.returncode == 2
    assert "cannot create the run folder (permission denied in" in _one_line(res.stderr)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:3000])


def _foreign(path):
    path.unlink()
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes), not an oa-abm run file"),
        (_foreign, "is not an oa-abm run file (schema attribute None, expected 'oa-abm/1')"),
        (_truncate, "is damaged ("),
    ],
    ids=["empty", "foreign", "damaged"],
)
def test_resume_of_an_unusable_run_file_is_one_line(tmp_path, spoil, problem):
    out = tmp_path / "r"
    simulate(fake_config(), out, model_cls=FakeModel)
    spoil(out / "run.h5")
    res = abm_run(f"resume={out / 'run.h5'}", "sim.days=1", timeout=60)
    assert res.returncode == 2
    msg = _one_line(res.stderr)
    assert msg.startswith(f"resume={out / 'run.h5'}: {out / 'run.h5'} {problem}"), msg


# abm-run with RunWriter.append_frame failing at the 4th frame as on a full disk
DISK_FULL = """
import errno, sys
from abm.observers.hdf5 import RunWriter
append, calls = RunWriter.append_frame, []
def full(self, *args, **kw):
    calls.append(1)
    if len(calls) == 4:
        raise OSError(errno.ENOSPC, "No space left on device")
    return append(self, *args, **kw)
RunWriter.append_frame = full
from abm.cli.run import main
sys.argv[1:] = sys.argv[2:]
main()
"""


def test_disk_full_is_one_line_and_keeps_the_frames(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    res = subprocess.run(
        [sys.executable, "-c", DISK_FULL, "-", *FAST, "sim.days=1", f"hydra.run.dir={out}"],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert res.returncode == 74
    assert _one_line(res.stderr) == (
        f"{out / 'run.h5'}: cannot write at day 0.0208: no space left on device (disk full); "
        f"the frames and metrics written before are readable in {out}; make room, then "
        f"continue with resume={out / 'run.h5'}"
    )
    with h5py.File(out / "run.h5", "r") as f:
        np.testing.assert_array_equal(f["time_min"][...], [0, 10, 20])
        assert all(np.isfinite(f["fields/IL1b"][k]).all() for k in range(3))
    assert not (out / LOCK_FILE).exists() and not list(out.glob("*tmp"))


def test_default_run_folders_of_the_same_second_do_not_clash(tmp_path, monkeypatch):
    from datetime import datetime

    from abm.cli.run import _default_run_dir

    monkeypatch.chdir(tmp_path)
    now = datetime(2024, 5, 6, 7, 8, 9)
    taken = tmp_path / "outputs" / "2024-05-06" / "07-08-09"
    taken.mkdir(parents=True)  # another process is writing it (pid 1 lives on every host)
    (taken / LOCK_FILE).write_text(
        f'{{"pid": 1, "host": "{socket.gethostname()}", "started": "now"}}'
    )
    done = taken.with_name("07-08-09-1")
    done.mkdir()
    (done / "run.h5").write_bytes(b"a finished run")
    folder, lock = _default_run_dir(now)
    try:
        assert folder == taken.relative_to(tmp_path).with_name("07-08-09-2")
        assert (folder / LOCK_FILE).exists()
    finally:
        lock.release()
    assert not folder.exists()  # made for nothing: removed again
