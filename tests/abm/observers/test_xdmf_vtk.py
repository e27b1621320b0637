"""run.xdmf and run.h5 through an older reader: VTK 9 (vtkXdmfReader, its bundled HDF5 1.14).

VTK is what ParaView reads with; its HDF5 is older than the one recent h5py wheels write with
(HDF5 2.0), which is the point: every time step, every field and every cell (position at its
voxel's centre, id, type, phenotype, state) must read back equal to what h5py reads. Skipped
where VTK is not installed (``pip install vtk``: the ``dev`` extra has it).
"""

from __future__ import annotations

import ctypes
import glob
import os

import h5py
import numpy as np
import pytest

from abm.runner import simulate
from tests.abm.fake_model import FakeModel, fake_config

vtk = pytest.importorskip(
    "vtk", reason="VTK is not installed (pip install vtk): no older-reader check of run.xdmf"
)
from vtk.util.numpy_support import vtk_to_numpy  # noqa: E402


@pytest.fixture(scope="module", params=["2d", "3d"])
def run_dir(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"vtk{request.param}")
    shape = [12, 8] if request.param == "2d" else [6, 5, 4]
    cfg = fake_config(**{"lattice.shape": shape, "lattice.dx_um": 12.5, "sim.days": 0.3})
    simulate(cfg, out, model_cls=FakeModel)
    return out


def _blocks(reader, t):
    """The datasets of the frame at time ``t``, by block name."""
    reader.UpdateTimeStep(t)
    out = reader.GetOutputDataObject(0)
    blocks = {}
    for i in range(out.GetNumberOfBlocks()):
        name = out.GetMetaData(i).Get(vtk.vtkCompositeDataSet.NAME())
        blocks[name] = out.GetBlock(i)
    return blocks


def test_vtk_reads_every_frame_field_and_cell(run_dir):
    reader = vtk.vtkXdmfReader()
    reader.SetFileName(str(run_dir / "run.xdmf"))
    reader.UpdateInformation()
    steps = reader.GetOutputInformation(0).Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    with h5py.File(run_dir / "run.h5", "r") as f:
        times = f["time_min"][...]
        np.testing.assert_array_equal(steps, times)
        shape = tuple(int(n) for n in f.attrs["shape"])
        ndim, dx = len(shape), float(f.attrs["dx_um"])
        offsets = f["cells/offsets"][...]
        fields = list(f["fields"])
        assert len(times) == 9 and offsets[-1] > 0
        for k, t in enumerate(times):
            blocks = _blocks(reader, t)
            image = blocks["lattice"]
            # XDMF's Z Y X is the array's axes 0 1 (2): VTK's x runs along the last array axis
            assert image.GetDimensions() == tuple(n + 1 for n in shape[::-1]) + (2,) * (3 - ndim)
            assert image.GetOrigin() == (0.0, 0.0, 0.0)
            assert image.GetSpacing() == (dx, dx, dx)
            data = image.GetCellData()
            assert [data.GetArrayName(i) for i in range(data.GetNumberOfArrays())] == fields
            for name in fields:
                np.testing.assert_array_equal(
                    vtk_to_numpy(data.GetArray(name)), f["fields"][name][k].ravel(), err_msg=name
                )
            a, b = int(offsets[k]), int(offsets[k + 1])
            cells = blocks["cells"]
            assert cells.GetNumberOfPoints() == cells.GetNumberOfCells() == b - a
            pos = f["cells/pos"][a:b]
            xyz = vtk_to_numpy(cells.GetPoints().GetData())
            expected = np.full((b - a, 3), 0.5 * dx)  # a 2D lattice: the slab's mid-plane
            expected[:, :ndim] = (pos[:, ::-1] + 0.5) * dx
            np.testing.assert_allclose(xyz, expected, rtol=1e-12)
            for i in range(b - a):  # each point sits at the centre of its voxel of the grid
                ijk, pcoords = [0, 0, 0], [0.0, 0.0, 0.0]
                assert image.ComputeStructuredCoordinates(xyz[i], ijk, pcoords)
                assert ijk[:ndim] == pos[i, ::-1].tolist()
                np.testing.assert_allclose(pcoords, 0.5)
            points = cells.GetPointData()
            for col in ("id", "type", "phenotype", "state"):
                np.testing.assert_array_equal(
                    vtk_to_numpy(points.GetArray(col)), f["cells"][col][a:b], err_msg=col
                )


# -- the HDF5 files themselves, through VTK's HDF5 (1.14) -------------------------------------
def _vtk_hdf5():
    """VTK's bundled HDF5 library (its symbols carry the prefix ``vtkhdf5_``), or skip."""
    import vtkmodules

    folder = os.path.dirname(vtkmodules.__file__)
    found = sorted(glob.glob(os.path.join(folder, "libvtkhdf5.so*")))
    found += sorted(glob.glob(os.path.join(folder, "libvtkhdf5*.dylib")))
    if not found:
        pytest.skip("VTK's HDF5 library is not a separate shared library here")
    lib = ctypes.CDLL(found[0])
    hid, herr = ctypes.c_int64, ctypes.c_int
    sigs = {
        "H5open": ([], herr),
        "H5get_libversion": ([ctypes.POINTER(ctypes.c_uint)] * 3, herr),
        "H5Fopen": ([ctypes.c_char_p, ctypes.c_uint, hid], hid),
        "H5Fclose": ([hid], herr),
        "H5Dopen2": ([hid, ctypes.c_char_p, hid], hid),
        "H5Dclose": ([hid], herr),
        "H5Dget_type": ([hid], hid),
        "H5Tget_size": ([hid], ctypes.c_size_t),
        "H5Tclose": ([hid], herr),
        "H5Dget_space": ([hid], hid),
        "H5Sget_simple_extent_npoints": ([hid], ctypes.c_int64),
        "H5Sclose": ([hid], herr),
        "H5Dread": ([hid, hid, hid, hid, hid, ctypes.c_void_p], herr),
    }
    fns = {}
    for name, (args, res) in sigs.items():
        fn = getattr(lib, "vtkhdf5_" + name)
        fn.argtypes, fn.restype = args, res
        fns[name] = fn
    fns["H5open"]()
    return fns


def _read_with_vtk_hdf5(path):
    """{dataset: raw bytes} of every dataset of ``path``, read by VTK's HDF5 (None: unreadable)."""
    h5 = _vtk_hdf5()
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    out = {}
    fid = h5["H5Fopen"](os.fsencode(path), 0, 0)  # H5F_ACC_RDONLY, H5P_DEFAULT
    assert fid >= 0, f"HDF5 1.14 cannot open {path}"
    try:
        for name in names:
            did = h5["H5Dopen2"](fid, name.encode(), 0)
            if did < 0:
                out[name] = None
                continue
            tid, sid = h5["H5Dget_type"](did), h5["H5Dget_space"](did)
            buf = ctypes.create_string_buffer(
                max(1, h5["H5Tget_size"](tid) * h5["H5Sget_simple_extent_npoints"](sid))
            )
            ok = h5["H5Dread"](did, tid, 0, 0, 0, buf) >= 0  # H5S_ALL, H5S_ALL, H5P_DEFAULT
            out[name] = buf.raw if ok else None
            h5["H5Tclose"](tid), h5["H5Sclose"](sid), h5["H5Dclose"](did)
    finally:
        h5["H5Fclose"](fid)
    return out


def test_hdf5_1_14_reads_every_dataset_of_the_run_files(run_dir):
    h5 = _vtk_hdf5()
    v = [ctypes.c_uint() for _ in range(3)]
    h5["H5get_libversion"](*v)
    if (v[0].value, v[1].value) >= (2, 0):
        pytest.skip("VTK's HDF5 is not older than 2.0: no older-reader check")
    unreadable = []
    for file in ("run.h5", "checkpoint.h5"):
        raw = _read_with_vtk_hdf5(run_dir / file)
        with h5py.File(run_dir / file, "r") as f:
            for name, data in raw.items():
                if data is None:
                    unreadable.append(f"{file}:/{name}")
                    continue
                ds = f[name]
                if ds.dtype.kind in "biuf":  # fixed-size numbers: the same bytes
                    assert data[: ds.nbytes] == np.ascontiguousarray(ds[()]).tobytes(), name
    assert unreadable == []
