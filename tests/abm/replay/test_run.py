"""load_run: lazy reads, live files, and one clear error for files it cannot use."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from abm.errors import RunFileError
from abm.observers.hdf5 import RunWriter
from abm.replay import load_run
from abm.runner import simulate
from tests.abm.fake_model import FakeModel, fake_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    simulate(fake_config(), out, model_cls=FakeModel)
    return out


def test_folder_or_file_and_bad_indices(run_dir):
    with load_run(run_dir) as r:
        assert r.n_frames == 7
        with pytest.raises(RunFileError, match=r"no field 'XYZ' \(fields: IL1b, TNF, AGG, COL2\)"):
            r.field("XYZ", 0)
        with pytest.raises(IndexError, match="frame 7 out of range"):
            r.cells(7)
        assert np.array_equal(r.field("AGG", -7), r.field("AGG", 0))


def test_reads_a_file_being_written(tmp_path):
    model = FakeModel(fake_config())
    w = RunWriter.create(
        tmp_path / "run.h5", model.static_info(), list(model.datacollector.model_vars)
    )
    snap = model.snapshot()
    w.append_frame(0.0, snap["fields"], snap["cells"])
    w.flush()
    with load_run(tmp_path / "run.h5") as r:
        assert r.n_frames == 1
        model.step()
        snap = model.snapshot()
        w.append_frame(10.0, snap["fields"], snap["cells"])
        w.flush()
        assert r.refresh() == 2
        np.testing.assert_array_equal(r.field("IL1b", 1), snap["fields"]["IL1b"])
    w.close()


def _one_line(exc_info, path):
    msg = str(exc_info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_and_not_hdf5(tmp_path):
    with pytest.raises(RunFileError) as e:
        load_run(tmp_path / "nope.h5")
    assert "no such file" in _one_line(e, tmp_path / "nope.h5")
    p = tmp_path / "text.h5"
    p.write_text("hello")
    with pytest.raises(RunFileError) as e:
        load_run(p)
    assert "not an HDF5 file" in _one_line(e, p)


def test_truncated_file(run_dir, tmp_path):
    p = tmp_path / "cut.h5"
    data = (run_dir / "run.h5").read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFileError) as e:
        with load_run(p) as r:  # either opening or reading the frames must say so
            for k in range(r.n_frames):
                r.field("IL1b", k)
    assert "corrupt" in _one_line(e, p) or "truncated" in _one_line(e, p)


def test_foreign_and_other_schema(run_dir, tmp_path):
    p = tmp_path / "foreign.h5"
    with h5py.File(p, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(RunFileError) as e:
        load_run(p)
    assert "not an oa-abm run file" in _one_line(e, p)

    q = tmp_path / "v2.h5"
    shutil.copy(run_dir / "run.h5", q)
    with h5py.File(q, "r+") as f:
        f.attrs["schema"] = "oa-abm/2"
    with pytest.raises(RunFileError) as e:
        load_run(q)
    assert "schema 'oa-abm/2' is not supported" in _one_line(e, q)


def test_missing_dataset_and_corrupt_chunk(run_dir, tmp_path):
    p = tmp_path / "holes.h5"
    shutil.copy(run_dir / "run.h5", p)
    with h5py.File(p, "r+") as f:
        del f["cells/offsets"]
    with pytest.raises(RunFileError) as e:
        load_run(p)
    assert "missing /cells/offsets" in _one_line(e, p)

    q = tmp_path / "scrambled.h5"
    shutil.copy(run_dir / "run.h5", q)
    with h5py.File(q, "r") as f:
        offset = f["fields/IL1b"].id.get_chunk_info(3).byte_offset
    with open(q, "r+b") as fh:  # overwrite one compressed chunk with garbage
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    with load_run(q) as r:
        with pytest.raises(RunFileError) as e:
            r.field("IL1b", 3)
    assert "cannot read /fields/IL1b frame 3" in _one_line(e, q)
