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


def test_plain_open_unless_flagged_open_for_writing(run_dir, tmp_path):
    """A closed file is read plainly; one a writer holds (or left open) in SWMR mode."""
    from abm.replay.run import flagged_open

    with load_run(run_dir) as r:
        assert not r.swmr
    assert not flagged_open(run_dir / "run.h5") and not flagged_open(tmp_path / "missing.h5")
    model = FakeModel(fake_config())
    w = RunWriter.create(
        tmp_path / "run.h5", model.static_info(), list(model.datacollector.model_vars)
    )
    snap = model.snapshot()
    w.append_frame(0.0, snap["fields"], snap["cells"])
    w.flush()
    assert flagged_open(tmp_path / "run.h5")
    with load_run(tmp_path) as r:
        assert r.swmr and r.n_frames == 1
    w.close()
    assert not flagged_open(tmp_path / "run.h5")


_READ_DAMAGED = """
import sys, time
from pathlib import Path
from abm.errors import RunFileError
from abm.replay import load_run
for p in sys.argv[1:]:
    t0 = time.perf_counter()
    for what in ("metrics", "field"):
        try:
            with load_run(p) as r:
                assert r.swmr == ("flagged" in p), p
                r.metrics if what == "metrics" else [r.field("IL1b", k) for k in range(r.n_frames)]
            print("no error", p, what)
        except RunFileError as exc:
            assert "\\n" not in str(exc) and p in str(exc)
            print("RunFileError", what, str(exc))
    print(f"{p}: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
"""


def test_damaged_chunk_index_fails_fast(run_dir, tmp_path):
    """A damaged chunk index gives one RunFileError at once, also through the SWMR reader
    (HDF5 retries a bad checksum with a doubling back-off: 100 times by default, hours)."""
    import os
    import subprocess
    import sys

    from abm.lock import acquire
    from tests.abm.observers.h5format import damage_chunk_index

    closed = tmp_path / "closed.h5"
    shutil.copy(run_dir / "run.h5", closed)
    # a copy of a file a writer holds open in SWMR mode: what a killed run leaves
    model = FakeModel(fake_config())
    w = RunWriter.create(
        tmp_path / "live.h5", model.static_info(), list(model.datacollector.model_vars)
    )
    for k in range(3):
        snap = model.snapshot()
        w.append_frame(60.0 * k, snap["fields"], snap["cells"])
        w.append_metrics(model.datacollector.model_vars, k)
        w.flush()
        model.step()
    killed = tmp_path / "killed" / "flagged.h5"
    killed.parent.mkdir()
    shutil.copy(tmp_path / "live.h5", killed)
    w.close()
    live = tmp_path / "live" / "flagged.h5"  # flagged, and its folder's lock names a live pid
    live.parent.mkdir()
    shutil.copy(killed, live)
    paths = [closed, killed, live]
    for p in paths:
        damage_chunk_index(p, "metrics/time_min")
        damage_chunk_index(p, "fields/IL1b")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with acquire(live.parent):
        out = subprocess.run(
            [sys.executable, "-c", _READ_DAMAGED, *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("RunFileError") for line in lines), lines
    assert sum("cannot read /metrics" in line for line in lines) == 3
    assert sum("cannot read /fields/IL1b frame 0" in line for line in lines) == 3


def test_a_newer_hdf5_format_is_named_as_such():
    from abm.replay.run import _first_line

    exc = KeyError("Unable to synchronously open object (bad version number for layout message)")
    assert "written by a newer HDF5 than this h5py's" in _first_line(exc)
    assert _first_line(OSError("truncated file: eof = 1\nmore")) == "truncated file: eof = 1"
