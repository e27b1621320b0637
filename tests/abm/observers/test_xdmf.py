"""The XDMF sidecar parses as XML and every HDF reference names a dataset of that shape."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import h5py

from abm.runner import simulate
from tests.abm.fake_model import FakeModel, fake_config


def test_xdmf_references_existing_datasets(tmp_path):
    simulate(fake_config(), tmp_path, model_cls=FakeModel)
    root = ET.parse(tmp_path / "run.xdmf").getroot()
    grids = root.findall("./Domain/Grid")
    assert [g.get("Name") for g in grids] == ["lattice", "cells"]
    frames = grids[0].findall("Grid")
    with h5py.File(tmp_path / "run.h5", "r", swmr=True) as f:
        assert len(frames) == f["time_min"].shape[0]
        times = [float(g.find("Time").get("Value")) for g in frames]
        assert times == list(f["time_min"][:])
        assert {a.get("Name") for a in frames[0].findall("Attribute")} == set(f["fields"])
        refs = root.iter("DataItem")
        n_refs = 0
        for item in refs:
            if item.get("Format") != "HDF":
                continue
            fname, path = item.text.split(":", 1)
            assert fname == "run.h5"
            dims = tuple(int(n) for n in item.get("Dimensions").split())
            assert f[path].shape == dims, path
            n_refs += 1
        assert n_refs == len(frames) * (len(f["fields"]) + 3)  # fields + X, Y, Z of the cells
