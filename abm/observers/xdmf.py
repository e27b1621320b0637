"""XDMF sidecar: lets ParaView/VTK open ``run.h5`` (fields over time, cells as points).

Data flow: :class:`abm.observers.hdf5.SnapshotObserver` -> :class:`XdmfSidecar` (one frame
appended after each frame of ``run.h5``) -> ``run.xdmf`` (plain XML that only points into
``run.h5``; it holds no data itself) -> ParaView / ``vtkXdmfReader``.

Two temporal collections, so that a reader shows two blocks with fixed names at every time:

- ``lattice``: per frame a cell-centred ``3DCoRectMesh`` in µm, origin 0, spacing ``dx_um``
  (voxel ``i`` spans ``[i dx, (i + 1) dx]``; a 2D lattice becomes a slab one voxel thick); each
  field is a cell attribute, a HyperSlab of ``/fields/NAME``.
- ``cells``: per frame with cells a Polyvertex grid with one point per cell at the centre of its
  voxel, ``(pos + 0.5) dx_um`` (the slab's mid-plane in 2D), and the point attributes ``id``,
  ``type``, ``phenotype``, ``state``: HyperSlabs of the frame's rows of ``/cells/*``.
  ``/cells/pos`` is declared ``Float`` so that HDF5 converts it to float64 before the XDMF
  function scales it (XDMF evaluates a function in its input's number type: on the int32 column
  the ``0.5`` would truncate to 0).

XDMF orders axes slowest first (Z Y X), so array axis ``ndim - 1`` is X.

Written incrementally, O(1) per frame: the text of frame ``k`` depends only on ``k``, its time and
its rows of the cell table (each HDF reference declares the dataset's extent as it was when that
frame was written; readers need only its rank, and read the frame's hyperslab). While a run
writes, the ``lattice`` collection is followed by blank room: a frame's cell grid is appended by
rewriting the closing tail of the file, its lattice grid is written into the room, and only when
the room is used up is the file rewritten whole, with room as large as what it holds (so the
total work stays linear in the frames). The file is a complete document after each of these
writes (a run killed between frames leaves a valid sidecar). :meth:`SnapshotObserver.finalize`
writes it whole once more without the room.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from abm.schema import CELL_COLUMNS, CELLS, FIELDS

HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Xdmf Version="3.0">\n'
    "<Domain>\n"
    '<Grid Name="lattice" GridType="Collection" CollectionType="Temporal">\n'
)
MIDDLE = '</Grid>\n<Grid Name="cells" GridType="Collection" CollectionType="Temporal">\n'
TAIL = "</Grid>\n</Domain>\n</Xdmf>\n"
MIN_ROOM = 1 << 16  # bytes of blank room after the lattice collection, at least

# XDMF number type and precision of each cell column: (NumberType, Precision)
_CELL_NUMBER = {
    "id": ("Int", 8),
    "type": ("Char", 1),
    "phenotype": ("Char", 1),
    "state": ("Float", 4),
}
CELL_ATTRIBUTES = tuple(c for c in CELL_COLUMNS if c != "pos")  # point attributes of the cells


def _dims(dims: Any) -> str:
    return " ".join(str(int(n)) for n in dims)


def _hyperslab(
    h5ref: str,
    full: Sequence[int],
    start: Sequence[int],
    count: Sequence[int],
    out_dims: Sequence[int],
    number: tuple[str, int] = ("Float", 4),
) -> str:
    """A HyperSlab DataItem selecting ``count`` elements from ``start`` of dataset ``h5ref``."""
    sel = " ".join(_dims(row) for row in (start, [1] * len(full), count))
    return (
        f'<DataItem ItemType="HyperSlab" Type="HyperSlab" Dimensions="{_dims(out_dims)}">'
        f'<DataItem Dimensions="3 {len(full)}" Format="XML" NumberType="Int">{sel}</DataItem>'
        f'<DataItem Dimensions="{_dims(full)}" Format="HDF" NumberType="{number[0]}" '
        f'Precision="{number[1]}">{h5ref}</DataItem></DataItem>'
    )


class XdmfSidecar:
    """The ``run.xdmf`` of one ``run.h5``: :meth:`rewrite` it whole, or :meth:`append` a frame.

    ``static`` needs ``shape`` and ``dx_um``; ``field_names`` are the fields in file order;
    ``h5_name`` is the name of the HDF5 file beside ``path`` (references are relative to it).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        h5_name: str,
        static: Mapping[str, Any],
        field_names: Sequence[str],
    ) -> None:
        self.path = Path(path)
        self.h5_name = str(h5_name)
        self.shape = tuple(int(n) for n in static["shape"])
        self.dx = float(static["dx_um"])
        self.field_names = list(field_names)
        # where the blank room is, and the file's size, as this object last wrote them
        self._room_at = self._room = self._size = -1

    # -- text ---------------------------------------------------------------------------------
    def lattice_frame(self, k: int, time_min: float) -> str:
        """The lattice grid of frame ``k`` at ``time_min`` (min): every field."""
        shape, ndim, dx, k = self.shape, len(self.shape), self.dx, int(k)
        cells3 = (1, *shape) if ndim == 2 else shape  # XDMF cell dims, Z Y X
        out = [
            f'<Grid Name="frame{k}" GridType="Uniform"><Time Value="{float(time_min)!r}"/>',
            f'<Topology TopologyType="3DCoRectMesh" Dimensions="{_dims(n + 1 for n in cells3)}"/>',
            '<Geometry GeometryType="ORIGIN_DXDYDZ">'
            '<DataItem Dimensions="3" Format="XML">0 0 0</DataItem>'
            f'<DataItem Dimensions="3" Format="XML">{dx!r} {dx!r} {dx!r}</DataItem></Geometry>\n',
        ]
        for name in self.field_names:
            slab = _hyperslab(
                f"{self.h5_name}:/{FIELDS}/{name}",
                (k + 1, *shape),
                (k, *[0] * ndim),
                (1, *shape),
                cells3,
            )
            out.append(
                f'<Attribute Name={quoteattr(name)} AttributeType="Scalar" Center="Cell">'
                f"{slab}</Attribute>\n"
            )
        out.append("</Grid>\n")
        return "".join(out)

    def cells_frame(self, k: int, time_min: float, a: int, b: int) -> str:
        """The cell grid of frame ``k``, whose cells are rows ``a:b`` of the table ("" if none)."""
        ndim, dx, h5, k, a, b = len(self.shape), self.dx, self.h5_name, int(k), int(a), int(b)
        n = b - a
        if n <= 0:
            return ""
        out = [
            f'<Grid Name="cells{k}" GridType="Uniform"><Time Value="{float(time_min)!r}"/>',
            f'<Topology TopologyType="Polyvertex" NumberOfElements="{n}" NodesPerElement="1"/>',
            '<Geometry GeometryType="X_Y_Z">',
        ]
        # X is the last array axis; a 2D lattice has no Z column: sit in the slab's middle.
        for axis in (ndim - 1, ndim - 2, ndim - 3):
            scale = f"($0 + 0.5) * {dx!r}" if axis >= 0 else f"$0 * 0 + {0.5 * dx!r}"
            slab = _hyperslab(
                f"{h5}:/{CELLS}/pos",
                (b, ndim),
                (a, max(axis, 0)),
                (n, 1),
                (n,),
                number=("Float", 8),  # HDF5 converts the int32 column to float64
            )
            out.append(
                f'<DataItem ItemType="Function" Function="{scale}" Dimensions="{n}">'
                f"{slab}</DataItem>"
            )
        out.append("</Geometry>\n")
        for col in CELL_ATTRIBUTES:
            slab = _hyperslab(f"{h5}:/{CELLS}/{col}", (b,), (a,), (n,), (n,), _CELL_NUMBER[col])
            out.append(
                f'<Attribute Name="{col}" AttributeType="Scalar" Center="Node">{slab}</Attribute>\n'
            )
        out.append("</Grid>\n")
        return "".join(out)

    def _parts(self, times: np.ndarray, offsets: np.ndarray) -> tuple[str, str]:
        times = np.asarray(times, dtype=float).tolist()
        offsets = np.asarray(offsets, dtype=np.int64).tolist()
        lattice = "".join(self.lattice_frame(k, t) for k, t in enumerate(times))
        cells = "".join(
            self.cells_frame(k, t, offsets[k], offsets[k + 1]) for k, t in enumerate(times)
        )
        return lattice, cells

    def text(self, times: np.ndarray, offsets: np.ndarray) -> str:
        """The whole document for the frames ``times`` (T,), ``offsets`` (T+1,); no room."""
        lattice, cells = self._parts(times, offsets)
        return HEAD + lattice + MIDDLE + cells + TAIL

    # -- writing ------------------------------------------------------------------------------
    def rewrite(self, times: np.ndarray, offsets: np.ndarray, room: bool = False) -> None:
        """Write the whole file for ``times`` (T,) and ``/cells/offsets`` (T+1,), atomically.

        ``room``: leave blank room after the lattice collection for the frames to come (as much
        as it holds, at least :data:`MIN_ROOM` bytes). Written to a temporary name and renamed:
        readers never see half of it.
        """
        lattice, cells = self._parts(times, offsets)
        head = (HEAD + lattice).encode("utf-8")
        blank = max(MIN_ROOM, len(head)) if room else 0
        data = head + b" " * blank + (MIDDLE + cells + TAIL).encode("utf-8")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.path)
        self._room_at, self._room, self._size = len(head), blank, len(data)

    def append(self, k: int, time_min: float, a: int, b: int) -> bool:
        """Append frame ``k`` (cells: rows ``a:b``) in place, O(1).

        Returns False, writing nothing, when it cannot: no room left, or the file is not as
        this object last wrote it (missing, changed, written whole without room). The caller
        then :meth:`rewrite` s it whole, with room.
        """
        lattice = self.lattice_frame(k, time_min).encode("utf-8")
        cells = self.cells_frame(k, time_min, a, b).encode("utf-8")
        tail, middle = TAIL.encode("utf-8"), MIDDLE.encode("utf-8")
        if self._room < len(lattice):
            return False
        try:
            with open(self.path, "r+b") as fh:
                end = fh.seek(0, os.SEEK_END)
                if end != self._size:
                    return False
                fh.seek(self._room_at + self._room)
                if fh.read(len(middle)) != middle:
                    return False
                fh.seek(end - len(tail))
                if fh.read(len(tail)) != tail:
                    return False
                if cells:  # first the cells, then the lattice: valid after either write
                    fh.seek(end - len(tail))
                    fh.write(cells + tail)
                    fh.flush()
                    self._size = end + len(cells)
                fh.seek(self._room_at)
                fh.write(lattice)
        except FileNotFoundError:
            return False
        self._room_at += len(lattice)
        self._room -= len(lattice)
        return True


def write_xdmf(
    path: str | os.PathLike,
    h5_name: str,
    static: Mapping[str, Any],
    field_names: Sequence[str],
    times: np.ndarray,
    offsets: np.ndarray,
) -> None:
    """Write ``path`` whole (no room), describing the frames ``times`` (T,) of ``h5_name``.

    ``offsets`` is ``/cells/offsets`` (T+1,).
    """
    XdmfSidecar(path, h5_name, static, field_names).rewrite(times, offsets)
