"""Checkpoint and resume: a resumed run's files equal an uninterrupted run's, bit for bit; a
resume that cannot go ahead (bad files, another run's folder, a failure half-way) changes
nothing."""

from __future__ import annotations

import errno

import h5py
import numpy as np
import pandas as pd
import pytest

from abm.errors import OutputError, ResumeError, RunFolderError
from abm.observers.checkpoint import read_checkpoint, resume_config, write_checkpoint
from abm.replay import load_run
from abm.runner import simulate
from tests.abm.fake_model import FakeModel, SimulationError, fake_config


def _assert_same_run(a, b):
    with load_run(a) as ra, load_run(b) as rb:
        np.testing.assert_array_equal(ra.time_min, rb.time_min)
        pd.testing.assert_frame_equal(ra.metrics, rb.metrics, check_exact=True)
        for k in range(ra.n_frames):
            for name in ra.field_names:
                np.testing.assert_array_equal(ra.field(name, k), rb.field(name, k))
            pd.testing.assert_frame_equal(ra.cells(k), rb.cells(k))
    csv_a = pd.read_csv(a / "metrics.csv")
    pd.testing.assert_frame_equal(csv_a, pd.read_csv(b / "metrics.csv"), check_exact=True)


@pytest.fixture
def uninterrupted(tmp_path):
    out = tmp_path / "whole"
    simulate(fake_config(**{"sim.days": 0.5}), out, model_cls=FakeModel)
    return out


def test_checkpoint_round_trip(tmp_path):
    model = FakeModel(fake_config())
    for _ in range(7):
        model.step()
    write_checkpoint(tmp_path / "c.h5", model)
    ckpt = read_checkpoint(tmp_path / "c.h5")
    assert ckpt.steps == 7 and ckpt.time_min == 70.0
    state = model.get_state()
    assert ckpt.state.keys() == state.keys()
    for key, value in state.items():
        assert ckpt.state[key].dtype == value.dtype
        np.testing.assert_array_equal(ckpt.state[key], value)
    assert ckpt.config.sim.dt_min == 10.0
    assert not (tmp_path / "c.h5.tmp").exists()


def test_resume_finished_run_to_longer_days(tmp_path, uninterrupted):
    part = tmp_path / "part"
    simulate(fake_config(**{"sim.days": 0.3}), part, model_cls=FakeModel)  # ends off-cadence
    overrides = [f"resume={part / 'run.h5'}", "sim.days=0.5"]
    cfg = fake_config(**{"sim.days": 0.5, "resume": str(part / "run.h5")})
    start, stats = simulate(cfg, part, overrides, model_cls=FakeModel)
    assert stats.start_min == 430.0  # 0.3 days rounded to whole 10-min steps
    assert start.cfg.sim.days == 0.5
    _assert_same_run(part, uninterrupted)


def test_resume_after_crash_drops_frames_past_checkpoint(tmp_path, uninterrupted, monkeypatch):
    crashed = tmp_path / "crashed"
    cfg = fake_config(**{"sim.days": 0.5, "output.checkpoint_every_min": 180.0})
    monkeypatch.setattr(FakeModel, "fail_at_step", 50)
    with pytest.raises(SimulationError):
        simulate(cfg, crashed, model_cls=FakeModel)
    with load_run(crashed) as r:
        assert r.time_min[-1] == 480.0  # frames at 420 and 480 are past the checkpoint at 360
    assert read_checkpoint(crashed / "checkpoint.h5").time_min == 360.0
    monkeypatch.setattr(FakeModel, "fail_at_step", None)
    cfg = fake_config(**{"sim.days": 0.5, "resume": str(crashed / "run.h5")})
    # the checkpoint cadence differs from `uninterrupted`, but it writes nothing compared here
    simulate(cfg, crashed, [f"resume={crashed / 'run.h5'}"], model_cls=FakeModel)
    _assert_same_run(crashed, uninterrupted)


def test_resume_rejects_changed_keys_and_keeps_run_file(tmp_path):
    run_dir = tmp_path / "r"
    simulate(fake_config(), run_dir, model_cls=FakeModel)
    before = (run_dir / "run.h5").read_bytes()
    cfg = fake_config(**{"seed": 8, "resume": str(run_dir / "run.h5")})
    with pytest.raises(ResumeError, match=r"^seed: .*only sim.days and output"):
        simulate(cfg, run_dir, ["seed=8", f"resume={run_dir}/run.h5"], model_cls=FakeModel)
    cfg = fake_config(**{"sim.days": 0.1, "resume": str(run_dir / "run.h5")})
    with pytest.raises(ResumeError, match=r"^sim.days=0.1: ends before the checkpoint"):
        simulate(cfg, run_dir, ["sim.days=0.1"], model_cls=FakeModel)
    assert (run_dir / "run.h5").read_bytes() == before


def test_resume_config_takes_only_overridden_output_keys():
    saved = fake_config(**{"output.snapshot_every_min": 30.0, "lattice.shape": [6, 4]})
    requested = fake_config(**{"sim.days": 2.0, "output.progress": True, "resume": "x/run.h5"})
    cfg = resume_config(saved, requested, ["sim.days=2", "output.progress=true", "seed=7"])
    assert cfg.sim.days == 2.0 and cfg.output.progress is True
    assert cfg.output.snapshot_every_min == 30.0  # not overridden: kept from the checkpoint
    assert list(cfg.lattice.shape) == [6, 4] and cfg.resume == "x/run.h5"


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ResumeError, match="no checkpoint here"):
        read_checkpoint(tmp_path / "checkpoint.h5")
    (tmp_path / "checkpoint.h5").write_bytes(b"not hdf5")
    with pytest.raises(ResumeError, match="unreadable checkpoint"):
        read_checkpoint(tmp_path / "checkpoint.h5")
    with h5py.File(tmp_path / "checkpoint.h5", "w") as f:
        f.attrs["schema"] = "something/else"
    with pytest.raises(ResumeError, match="not an oa-abm checkpoint"):
        read_checkpoint(tmp_path / "checkpoint.h5")


# -- resumes that must not damage anything ------------------------------------------------------


def _files(run_dir):
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def _resume_cfg(run_dir, days=0.5):
    return fake_config(**{"sim.days": days, "resume": str(run_dir / "run.h5")})


def test_failed_resume_leaves_every_file_as_it_was(tmp_path, monkeypatch):
    from abm.observers.hdf5 import RunWriter

    run_dir = tmp_path / "r"
    simulate(fake_config(), run_dir, model_cls=FakeModel)
    before = _files(run_dir)
    append = RunWriter.append_frame
    copied = []

    def fails_midway(self, *args, **kw):  # the rebuild copies 2 frames, then the disk is full
        copied.append(1)
        if len(copied) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return append(self, *args, **kw)

    monkeypatch.setattr(RunWriter, "append_frame", fails_midway)
    with pytest.raises(OutputError, match="no space left on device"):
        simulate(_resume_cfg(run_dir), run_dir, ["sim.days=0.5"], model_cls=FakeModel)
    assert len(copied) == 3
    assert _files(run_dir) == before  # metrics.csv not appended to, run.h5 not replaced
    assert not list(run_dir.glob("*tmp"))


def test_resume_from_a_damaged_checkpoint_changes_nothing(tmp_path):
    run_dir = tmp_path / "r"
    simulate(fake_config(), run_dir, model_cls=FakeModel)
    ckpt = run_dir / "checkpoint.h5"
    ckpt.write_bytes(ckpt.read_bytes()[:2000])
    before = _files(run_dir)
    with pytest.raises(ResumeError, match=r"checkpoint.h5: unreadable checkpoint \("):
        simulate(_resume_cfg(run_dir), run_dir, ["sim.days=0.5"], model_cls=FakeModel)
    assert _files(run_dir) == before


def test_resume_into_a_folder_with_another_run_refuses(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(fake_config(), a, model_cls=FakeModel)
    simulate(fake_config(**{"seed": 3}), b, model_cls=FakeModel)
    before = _files(b)
    with pytest.raises(RunFolderError) as err:
        simulate(_resume_cfg(a), b, [f"resume={a}/run.h5", "sim.days=0.5"], model_cls=FakeModel)
    assert str(err.value) == (
        f"{b}: holds another run ({b / 'run.h5'}); resume={a / 'run.h5'} continues in its own "
        f"folder {a} (leave out hydra.run.dir) or in an empty one"
    )
    assert _files(b) == before  # B's run.h5, metrics and checkpoint byte for byte


def test_resume_into_an_empty_folder_copies_the_run(tmp_path, uninterrupted):
    a, c = tmp_path / "a", tmp_path / "c"
    simulate(fake_config(**{"sim.days": 0.3}), a, model_cls=FakeModel)
    before = _files(a)
    simulate(_resume_cfg(a), c, ["sim.days=0.5"], model_cls=FakeModel)
    _assert_same_run(c, uninterrupted)
    assert _files(a) == before


def _empty(path):
    path.write_bytes(b"")


def _foreign(path):
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)


def _truncated(path):
    path.write_bytes(path.read_bytes()[:3000])


def _not_hdf5(path):
    path.write_text("time,value\n0,1\n")


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (_empty, "is empty (0 bytes), not an oa-abm run file; give the run.h5 of an oa-abm run"),
        (_foreign, "is not an oa-abm run file (schema attribute None, expected 'oa-abm/1'); give"),
        (_truncated, "is damaged ("),
        (_not_hdf5, "is not an HDF5 file; give the run.h5 of an oa-abm run folder"),
    ],
    ids=["empty", "foreign", "damaged", "not-hdf5"],
)
def test_resume_of_an_unusable_run_file_is_one_line(tmp_path, spoil, problem):
    run_dir = tmp_path / "r"
    simulate(fake_config(), run_dir, model_cls=FakeModel)
    spoil(run_dir / "run.h5")
    before = _files(run_dir)
    with pytest.raises(ResumeError) as err:
        simulate(_resume_cfg(run_dir), run_dir, ["sim.days=0.5"], model_cls=FakeModel)
    msg = str(err.value)
    assert msg.startswith(f"resume={run_dir / 'run.h5'}: {run_dir / 'run.h5'} {problem}"), msg
    assert "\n" not in msg
    if spoil is _truncated:
        assert "truncated" in msg and msg.endswith("; it cannot be resumed")
    assert _files(run_dir) == before


def test_checkpoint_that_does_not_fit_is_refused(tmp_path):
    run_dir = tmp_path / "r"
    simulate(fake_config(), run_dir, model_cls=FakeModel)
    other = tmp_path / "other"
    simulate(fake_config(**{"lattice.shape": [10, 8]}), other, model_cls=FakeModel)
    (run_dir / "checkpoint.h5").write_bytes((other / "checkpoint.h5").read_bytes())
    with pytest.raises(ResumeError, match=r"belong to different runs \(lattice \(12, 8\) seed 7"):
        simulate(_resume_cfg(run_dir), run_dir, ["sim.days=0.5"], model_cls=FakeModel)


def test_checkpoint_without_room_keeps_the_last_one(tmp_path, monkeypatch):
    import shutil

    model = FakeModel(fake_config())
    path = write_checkpoint(tmp_path / "c.h5", model)
    before = path.read_bytes()
    for _ in range(3):
        model.step()
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(OSError, match=r"the checkpoint needs about 1.1 MB, 0.0 MB are free") as e:
        write_checkpoint(path, model)
    assert e.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and not (tmp_path / "c.h5.tmp").exists()
