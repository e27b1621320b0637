"""Round trip: run.h5 written by the snapshot observer reads back identical via load_run."""

from __future__ import annotations

import numpy as np
import pytest

from abm.loop import run
from abm.observers import Observer
from abm.replay import load_run
from abm.runner import simulate
from abm.schema import CELL_DTYPES, REQUIRED, ROOT_ATTRS, SCHEMA
from tests.abm.fake_model import FIELDS, FakeModel, fake_config


class Recorder(Observer):
    """Keeps every snapshot in memory on the same cadence as the HDF5 observer."""

    name = "recorder"

    def __init__(self, every_min):
        super().__init__(every_min)
        self.frames = []

    def initialize(self, model):
        super().initialize(model)
        self.frames.append(model.snapshot())

    def handle(self, model):
        self.frames.append(model.snapshot())


def test_round_trip_fields_cells_metrics(tmp_path):
    cfg = fake_config(**{"sim.days": 0.3})  # 432 min: the last frame is off the 60-min cadence
    from abm.observers import build_observers

    model = FakeModel(cfg)
    rec = Recorder(60.0)
    run(model, [*build_observers(cfg, tmp_path), rec], 432.0)
    rec.frames.append(model.snapshot())  # the end state, written at finalize

    with load_run(tmp_path / "run.h5") as r:
        assert r.n_frames == len(rec.frames) == 9
        np.testing.assert_array_equal(r.time_min, [s["time_min"] for s in rec.frames])
        assert r.field_names == list(FIELDS)
        assert r.shape == (12, 8) and r.ndim == 2
        assert r.field_units["IL1b"] == "ng/mL"
        assert r.attrs["schema"] == SCHEMA and r.attrs["seed"] == 7
        np.testing.assert_array_equal(r.compartment, model.compartment)
        assert r.compartment_names[2] == "fluid"
        for k, snap in enumerate(rec.frames):
            for name in FIELDS:
                f = r.field(name, k)
                assert f.dtype == np.float32
                np.testing.assert_array_equal(f, snap["fields"][name])
            cells = r.cells(k)
            for col in ("id", "type", "phenotype", "state"):
                np.testing.assert_array_equal(cells[col].to_numpy(), snap["cells"][col])
            np.testing.assert_array_equal(cells[["x", "y"]].to_numpy(), snap["cells"]["pos"])
        assert list(r.cells(-1)["type_name"][:3]) == ["macrophage", "fls", "msc"]
        np.testing.assert_array_equal(r.field("TNF", -1), rec.frames[-1]["fields"]["TNF"])
        pd_metrics = model.metrics.reset_index(drop=True)
        assert list(r.metrics.columns) == list(pd_metrics.columns)
        np.testing.assert_array_equal(r.metrics.to_numpy(), pd_metrics.to_numpy())
        assert r.config.sim.days == 0.3


def test_file_layout_chunks_and_compression(tmp_path):
    import h5py

    simulate(fake_config(), tmp_path, model_cls=FakeModel)
    with h5py.File(tmp_path / "run.h5", "r") as f:
        ds = f["fields/IL1b"]
        assert ds.chunks == (1, 12, 8)
        assert ds.compression == "gzip" and ds.compression_opts == 1 and ds.shuffle
        assert ds.maxshape[0] is None
        assert f["cells/offsets"].shape == (f["time_min"].shape[0] + 1,)
        assert f["cells/offsets"][0] == 0
        assert f.attrs["schema"] == SCHEMA == "oa-abm/1"  # the contract, spelled out
        assert set(f.attrs) == set(ROOT_ATTRS)
        assert all(name in f for name in REQUIRED)
        for col, dtype in CELL_DTYPES.items():
            assert f["cells"][col].dtype == dtype
        assert f["cells/pos"].shape[1:] == (2,)
        assert list(f["cells/type"].attrs["names"]) == ["macrophage", "fls", "msc"]


def test_metrics_csv_matches_hdf5(tmp_path):
    import pandas as pd

    simulate(fake_config(), tmp_path, model_cls=FakeModel)
    csv = pd.read_csv(tmp_path / "metrics.csv")
    with load_run(tmp_path) as r:
        pd.testing.assert_frame_equal(csv, r.metrics, check_exact=True)


def test_failed_run_keeps_frames_and_no_end_checkpoint(tmp_path, monkeypatch):
    from tests.abm.fake_model import SimulationError

    monkeypatch.setattr(FakeModel, "fail_at_step", 20)  # after the frames at 0..180 min
    with pytest.raises(SimulationError):
        simulate(fake_config(), tmp_path, model_cls=FakeModel)
    with load_run(tmp_path) as r:
        np.testing.assert_array_equal(r.time_min, [0, 60, 120, 180])
        assert r.metrics["time_min"].iloc[-1] == 190.0
    from abm.observers.checkpoint import read_checkpoint

    assert read_checkpoint(tmp_path / "checkpoint.h5").time_min == 120.0


def test_file_format_is_hdf5_1_10(tmp_path):
    """HDF5 1.10-1.14 readers (VTK, ParaView) open run.h5 whatever HDF5 h5py brings.

    libver="latest" under HDF5 2.0 (h5py 3.16) writes layout messages of version 5, which HDF5
    1.14 rejects ("bad version number for layout message"); the 1.10 format has version 4 at
    most. Superblock 3 is what SWMR needs (and HDF5 1.10+ reads).
    """
    from tests.abm.observers.h5format import LAYOUT, message_versions, superblock

    simulate(fake_config(), tmp_path, model_cls=FakeModel)
    assert superblock(tmp_path / "run.h5") == (3, 0)  # closed: no open-for-writing flags
    versions = message_versions(tmp_path / "run.h5")
    assert versions[LAYOUT] and versions[LAYOUT] <= {3, 4}


class Interrupting(FakeModel):
    """Stands for SIGINT/SIGTERM during a step (the loop turns those into this exception)."""

    def step(self):
        if self.steps == 20:
            raise KeyboardInterrupt
        super().step()


@pytest.mark.parametrize("how", ["failed", "interrupted"])
def test_an_interrupted_run_leaves_the_file_closed(tmp_path, monkeypatch, how):
    """finalize closes run.h5 whatever the status: no open-for-writing flags stay behind, so
    a plain (non-SWMR) reader opens it, as every HDF5 program does."""
    import h5py

    from abm.observers import build_observers
    from tests.abm.fake_model import SimulationError
    from tests.abm.observers.h5format import superblock

    cfg = fake_config()
    if how == "failed":
        monkeypatch.setattr(FakeModel, "fail_at_step", 20)
        model, error = FakeModel(cfg), SimulationError
    else:
        model, error = Interrupting(cfg), KeyboardInterrupt
    with pytest.raises(error):
        run(model, build_observers(cfg, tmp_path), 360.0)
    assert superblock(tmp_path / "run.h5") == (3, 0)
    with h5py.File(tmp_path / "run.h5", "r") as f:
        np.testing.assert_array_equal(f["time_min"][:], [0, 60, 120, 180])
    with load_run(tmp_path) as r:
        assert not r.swmr and r.n_frames == 4
