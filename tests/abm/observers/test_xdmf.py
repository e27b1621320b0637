"""The XDMF sidecar: valid XML after every frame, references into run.h5, appended in O(1).

The check with a real XDMF reader (VTK) is in test_xdmf_vtk.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import h5py
import numpy as np

from abm.loop import run
from abm.observers import Observer, build_observers
from abm.observers.xdmf import CELL_ATTRIBUTES, MIN_ROOM, TAIL, XdmfSidecar
from abm.runner import simulate
from tests.abm.fake_model import FakeModel, fake_config


def _whole_text(run_dir) -> str:
    """The sidecar written whole from what run.h5 holds."""
    with h5py.File(run_dir / "run.h5", "r", swmr=True) as f:
        static = {"shape": f.attrs["shape"], "dx_um": f.attrs["dx_um"]}
        sidecar = XdmfSidecar(run_dir / "unused.xdmf", "run.h5", static, list(f["fields"]))
        return sidecar.text(f["time_min"][...], f["cells/offsets"][...])


def test_xdmf_references_existing_datasets(tmp_path):
    simulate(fake_config(), tmp_path, model_cls=FakeModel)
    root = ET.parse(tmp_path / "run.xdmf").getroot()
    series = root.findall("./Domain/Grid")
    assert [(g.get("Name"), g.get("CollectionType")) for g in series] == [
        ("lattice", "Temporal"),
        ("cells", "Temporal"),
    ]
    frames, cell_frames = (g.findall("Grid") for g in series)
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert len(frames) == f["time_min"].shape[0]
        times = [float(g.find("Time").get("Value")) for g in frames]
        assert times == list(f["time_min"][:])
        offsets = f["cells/offsets"][:]
        with_cells = np.flatnonzero(np.diff(offsets) > 0)
        assert [g.get("Name") for g in cell_frames] == [f"cells{k}" for k in with_cells]
        assert [float(g.find("Time").get("Value")) for g in cell_frames] == [
            times[k] for k in with_cells
        ]
        for frame in frames:
            assert [a.get("Name") for a in frame.findall("Attribute")] == list(f["fields"])
        for frame in cell_frames:
            names = [a.get("Name") for a in frame.findall("Attribute")]
            assert names == list(CELL_ATTRIBUTES) == ["id", "type", "phenotype", "state"]
        n_refs = len(frames) * len(f["fields"]) + len(cell_frames) * (3 + len(CELL_ATTRIBUTES))
        for item in root.iter("DataItem"):
            if item.get("Format") != "HDF":
                continue
            fname, path = item.text.split(":", 1)
            assert fname == "run.h5"
            dims = tuple(int(n) for n in item.get("Dimensions").split())
            # the extent when the frame was written: same rank, never past the dataset's end
            shape = f[path].shape
            assert len(dims) == len(shape) and dims[1:] == shape[1:], path
            assert dims[0] <= shape[0], path
            n_refs -= 1
        assert n_refs == 0


def test_finalize_writes_it_whole_without_room(tmp_path):
    simulate(fake_config(**{"sim.days": 0.3}), tmp_path, model_cls=FakeModel)  # off-cadence end
    text = (tmp_path / "run.xdmf").read_text(encoding="utf-8")
    assert text == _whole_text(tmp_path)
    assert text.count("<Time ") == 2 * 9  # lattice and cells of 9 frames
    assert "    " not in text


class XdmfChecker(Observer):
    """Runs after the snapshot observer: run.xdmf parses, and but for blanks it is the file
    written whole from what run.h5 holds."""

    name = "xdmf-check"

    def __init__(self, every_min, run_dir, damage_at=None):
        super().__init__(every_min)
        self.run_dir = run_dir
        self.damage_at = damage_at
        self.checked = 0

    def _check(self):
        ET.parse(self.run_dir / "run.xdmf")
        text = (self.run_dir / "run.xdmf").read_text(encoding="utf-8")
        assert text.split() == _whole_text(self.run_dir).split()
        self.checked += 1
        if self.checked == self.damage_at:  # e.g. another program cut the file short
            p = self.run_dir / "run.xdmf"
            p.write_bytes(p.read_bytes()[: -len(TAIL) - 5])

    def initialize(self, model):
        super().initialize(model)
        self._check()

    def handle(self, model):
        self._check()


def test_valid_after_every_frame_and_repaired_when_damaged(tmp_path):
    cfg = fake_config()
    checker = XdmfChecker(60.0, tmp_path, damage_at=3)
    run(FakeModel(cfg), [*build_observers(cfg, tmp_path), checker], 360.0)
    assert checker.checked == 7
    assert (tmp_path / "run.xdmf").read_text(encoding="utf-8") == _whole_text(tmp_path)


def test_append_in_place_and_refuse_what_it_did_not_write(tmp_path):
    static = {"shape": (4, 3), "dx_um": 10.0}
    path = tmp_path / "run.xdmf"
    sidecar = XdmfSidecar(path, "run.h5", static, ["A"])
    assert not sidecar.append(0, 0.0, 0, 2)  # no file written yet
    sidecar.rewrite(np.zeros(0), np.zeros(1, np.int64), room=True)
    size = path.stat().st_size
    assert size > MIN_ROOM
    times, offsets = [0.0], [0, 2]
    for k in range(1, 40):  # frame 1 has no cells
        times.append(60.0 * k)
        offsets.append(offsets[-1] + (k > 1) * 3)
    for k, t in enumerate(times):
        assert sidecar.append(k, t, offsets[k], offsets[k + 1])
        ET.parse(path)  # a complete document after every frame
    # the lattice frames went into the room: only the cell frames made the file longer
    cell_text = "".join(sidecar.cells_frame(k, t, *offsets[k : k + 2]) for k, t in enumerate(times))
    assert path.stat().st_size - size == len(cell_text.encode("utf-8"))
    whole = sidecar.text(times, offsets)
    assert path.read_text(encoding="utf-8").split() == whole.split()
    sidecar.rewrite(times, offsets)  # whole, no room: an append must not write
    assert path.read_text(encoding="utf-8") == whole
    assert not sidecar.append(40, 2400.0, offsets[-1], offsets[-1])
    sidecar.rewrite(times, offsets, room=True)
    path.write_text(whole, encoding="utf-8")  # changed behind its back
    assert not sidecar.append(40, 2400.0, offsets[-1], offsets[-1])
    assert path.read_text(encoding="utf-8") == whole  # left alone


def test_cell_positions_are_voxel_centres_in_float(tmp_path):
    """Positions are int32: the XDMF function must see them as floats (XDMF does integer math
    on an integer input, so ``($0 + 0.5) * dx`` would drop the half voxel)."""
    sidecar = XdmfSidecar(tmp_path / "run.xdmf", "run.h5", {"shape": (4, 3), "dx_um": 12.5}, [])
    grid = ET.fromstring(sidecar.cells_frame(0, 0.0, 0, 2))
    fns = grid.findall("./Geometry/DataItem")
    assert [fn.get("Function") for fn in fns] == [
        "($0 + 0.5) * 12.5",
        "($0 + 0.5) * 12.5",
        "$0 * 0 + 6.25",
    ]
    for fn in fns:
        hdf = fn.find(".//DataItem[@Format='HDF']")
        assert hdf.text == "run.h5:/cells/pos"
        assert (hdf.get("NumberType"), hdf.get("Precision")) == ("Float", "8")
