"""Checkpoint and resume: a resumed run's files equal an uninterrupted run's, bit for bit."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from abm.errors import ResumeError
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
