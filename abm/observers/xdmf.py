"""XDMF sidecar: lets ParaView open ``run.h5`` (fields over time, cells as points).

Data flow: :class:`abm.observers.hdf5.SnapshotObserver` -> :func:`write_xdmf` after each frame
-> ``run.xdmf`` (plain XML that only points into ``run.h5``; it holds no data itself).

One temporal collection with one uniform grid per frame. The lattice is a cell-centred
``3DCoRectMesh`` in µm (a 2D lattice becomes a slab one voxel thick); each field is a cell
attribute given as a HyperSlab of ``/fields/NAME``. The cells of each frame form a Polyvertex
grid whose X, Y, Z come from the frame's rows of ``/cells/pos`` (scaled to voxel centres in µm
by XDMF Functions). XDMF orders axes slowest first (Z Y X), so array axis ``ndim-1`` is X.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abm.schema import CELLS, FIELDS


def _item(parent: ET.Element, dims: Sequence[int], **attrs: str) -> ET.Element:
    return ET.SubElement(parent, "DataItem", Dimensions=" ".join(map(str, dims)), **attrs)


def _hyperslab(
    parent: ET.Element,
    h5ref: str,
    full: Sequence[int],
    start: Sequence[int],
    count: Sequence[int],
    out_dims: Sequence[int],
    number: str = "Float",
) -> None:
    """A HyperSlab DataItem selecting ``count`` elements from ``start`` of dataset ``h5ref``."""
    slab = _item(parent, out_dims, ItemType="HyperSlab", Type="HyperSlab")
    sel = _item(slab, (3, len(full)), Format="XML", NumberType="Int")
    sel.text = " ".join(" ".join(map(str, row)) for row in (start, [1] * len(full), count))
    # float32 fields and int32 positions: 4 bytes each
    _item(slab, full, Format="HDF", NumberType=number, Precision="4").text = h5ref


def write_xdmf(
    path: str | os.PathLike,
    h5_name: str,
    static: Mapping[str, Any],
    field_names: Sequence[str],
    times: np.ndarray,
    offsets: np.ndarray,
) -> None:
    """Write ``path`` describing the frames ``times`` (T,) of the file ``h5_name`` beside it.

    ``static`` needs ``shape``, ``dx_um`` and ``field_units``; ``offsets`` is ``/cells/offsets``
    (T+1,). The file is written to a temporary name and renamed (readers never see half of it).
    """
    shape = tuple(int(n) for n in static["shape"])
    dx = float(static["dx_um"])
    ndim = len(shape)
    cells3 = (1, *shape) if ndim == 2 else shape  # XDMF cell dims, Z Y X
    t_total = len(times)
    n_cells_total = int(offsets[-1]) if len(offsets) else 0

    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain")
    series = ET.SubElement(
        domain, "Grid", Name="lattice", GridType="Collection", CollectionType="Temporal"
    )
    cell_series = ET.SubElement(
        domain, "Grid", Name="cells", GridType="Collection", CollectionType="Temporal"
    )
    for k, t in enumerate(np.asarray(times, dtype=float)):
        grid = ET.SubElement(series, "Grid", Name=f"frame{k}", GridType="Uniform")
        ET.SubElement(grid, "Time", Value=repr(float(t)))
        ET.SubElement(
            grid,
            "Topology",
            TopologyType="3DCoRectMesh",
            Dimensions=" ".join(str(n + 1) for n in cells3),
        )
        geo = ET.SubElement(grid, "Geometry", GeometryType="ORIGIN_DXDYDZ")
        _item(geo, (3,), Format="XML").text = "0 0 0"
        _item(geo, (3,), Format="XML").text = f"{dx} {dx} {dx}"
        for name in field_names:
            att = ET.SubElement(grid, "Attribute", Name=name, AttributeType="Scalar", Center="Cell")
            _hyperslab(
                att,
                f"{h5_name}:/{FIELDS}/{name}",
                (t_total, *shape),
                (k, *[0] * ndim),
                (1, *shape),
                cells3,
            )

        a, b = int(offsets[k]), int(offsets[k + 1])
        n = b - a
        if n == 0:
            continue
        cgrid = ET.SubElement(cell_series, "Grid", Name=f"cells{k}", GridType="Uniform")
        ET.SubElement(cgrid, "Time", Value=repr(float(t)))
        ET.SubElement(
            cgrid,
            "Topology",
            TopologyType="Polyvertex",
            NumberOfElements=str(n),
            NodesPerElement="1",
        )
        cgeo = ET.SubElement(cgrid, "Geometry", GeometryType="X_Y_Z")
        # X is the last array axis; a 2D lattice has no Z column: sit in the slab's middle.
        for axis in (ndim - 1, ndim - 2, ndim - 3):
            col = axis if axis >= 0 else 0
            scale = f"($0 + 0.5) * {dx}" if axis >= 0 else f"$0 * 0 + {0.5 * dx}"
            fn = _item(cgeo, (n,), ItemType="Function", Function=scale)
            _hyperslab(
                fn,
                f"{h5_name}:/{CELLS}/pos",
                (n_cells_total, ndim),
                (a, col),
                (n, 1),
                (n,),
                number="Int",
            )

    tmp = Path(path).with_name(Path(path).name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
