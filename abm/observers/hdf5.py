"""HDF5 snapshots (schema v1): the observer that turns model snapshots into ``run.h5``.

Data flow: model.snapshot() (host copies) -> :class:`SnapshotObserver` -> :class:`RunWriter`
-> ``run.h5`` (+ ``run.xdmf`` sidecar for ParaView) -> :func:`abm.replay.load_run`.

The schema (``oa-abm/1``: root attrs, datasets, cell columns, how integer codes are named) is
spelled out in :mod:`abm.schema`, whose names this writer and :mod:`abm.replay` share.

Format: the HDF5 1.10 file format (:data:`abm.schema.H5_LIBVER`), whatever the HDF5 of the
writing h5py, so that HDF5 1.10-1.14 readers (VTK, ParaView) open it.

Crash safety: every dataset is created up front, then the file switches to SWMR mode
(single writer, multiple readers). From then on the file on disk stays consistent after every
``flush()``: a run killed with SIGKILL leaves every flushed frame readable (readers open it with
``swmr=True`` while it is flagged open for writing, which :func:`abm.replay.load_run` does).
Within a frame the cell table is written first and ``/time_min`` last, so a frame counts only
once all of its parts are there. Closing the file (:meth:`RunWriter.close`, called by
:meth:`SnapshotObserver.finalize` whatever the run's status) clears its open-for-writing flags,
so that any reader opens it plainly afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from abm.observers.base import TIME_EPS_MIN, Observer, Status
from abm.observers.xdmf import XdmfSidecar
from abm.replay.run import open_h5
from abm.schema import (
    CELL_COLUMNS,
    CELL_DTYPES,
    CELLS,
    CODES_ATTR,
    COMPARTMENT,
    FIELDS,
    H5_LIBVER,
    METRICS,
    NAMES_ATTR,
    OFFSETS,
    RUN_FILE,
    SCHEMA,
    TIME,
    UNITS_ATTR,
    XDMF_FILE,
)

log = logging.getLogger(__name__)

CELL_CHUNK_ROWS = 16384
METRIC_CHUNK_ROWS = 4096
_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def write_mapping(obj: h5py.HLObject, mapping: Mapping[int, str]) -> None:
    """Store an integer-code -> name mapping as the attrs ``codes`` and ``names``."""
    codes = sorted(int(c) for c in mapping)
    obj.attrs[CODES_ATTR] = np.asarray(codes, dtype=np.int64)
    obj.attrs[NAMES_ATTR] = np.asarray([str(mapping[c]) for c in codes], dtype=h5py.string_dtype())


class RunWriter:
    """Append-only writer of one ``run.h5``; create with :meth:`create`, reopen with :meth:`open`.

    ``create`` leaves the file in normal mode so that frames from an earlier file can be copied
    in; call :meth:`start_swmr` before the run proper (``create(..., swmr=True)`` does it).
    """

    def __init__(self, f: h5py.File) -> None:
        self.f = f
        self.time = f[TIME]
        self.fields = {name: f[FIELDS][name] for name in f[FIELDS]}
        self.cells = {name: f[CELLS][name] for name in CELL_COLUMNS}
        self.offsets = f[OFFSETS]
        self.metrics = {name: f[METRICS][name] for name in f[METRICS]}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        static: Mapping[str, Any],
        metric_names: Sequence[str],
        *,
        swmr: bool = True,
    ) -> RunWriter:
        """Create ``path`` (replacing it) with every dataset of schema v1, zero frames long.

        ``static`` is ``model.static_info()``; ``metric_names`` the DataCollector's columns.
        """
        shape = tuple(int(n) for n in static["shape"])
        ndim = len(shape)
        f = h5py.File(path, "w", libver=H5_LIBVER)
        try:
            a = f.attrs
            a["schema"] = SCHEMA
            a["config_yaml"] = str(static["config_yaml"])
            a["seed"] = int(static["seed"])
            a["backend"] = str(static["backend"])
            a["abm_version"] = str(static["abm_version"])
            a["dx_um"] = float(static["dx_um"])
            a["dt_min"] = float(static["dt_min"])
            a["ndim"] = ndim
            a["shape"] = np.asarray(shape, dtype=np.int64)

            t = f.create_dataset(
                TIME, (0,), maxshape=(None,), dtype=np.float64, chunks=(METRIC_CHUNK_ROWS,)
            )
            t.attrs[UNITS_ATTR] = "min"
            g = f.create_group(FIELDS, track_order=True)
            for name, units in static["field_units"].items():
                ds = g.create_dataset(
                    name,
                    (0, *shape),
                    maxshape=(None, *shape),
                    dtype=np.float32,
                    chunks=(1, *shape),
                    **_COMPRESSION,
                )
                ds.attrs[UNITS_ATTR] = str(units)
            comp = np.asarray(static["compartment"], dtype=np.int8)
            if comp.shape != shape:
                raise ValueError(f"compartment shape {comp.shape} != lattice shape {shape}")
            ds = f.create_dataset(COMPARTMENT, data=comp, chunks=shape, **_COMPRESSION)
            write_mapping(ds, static["compartment_names"])
            cells = f.create_group(CELLS)
            f.create_dataset(
                OFFSETS, data=np.zeros(1, np.int64), maxshape=(None,), chunks=(METRIC_CHUNK_ROWS,)
            )
            for name in CELL_COLUMNS:
                tail = (ndim,) if name == "pos" else ()
                ds = cells.create_dataset(
                    name,
                    (0, *tail),
                    maxshape=(None, *tail),
                    dtype=CELL_DTYPES[name],
                    chunks=(CELL_CHUNK_ROWS, *tail),
                    **_COMPRESSION,
                )
            write_mapping(cells["type"], static["cell_types"])
            write_mapping(cells["phenotype"], static["phenotypes"])
            cells["pos"].attrs[UNITS_ATTR] = "voxel index along each lattice axis"
            m = f.create_group(METRICS, track_order=True)
            for name in metric_names:
                m.create_dataset(
                    name, (0,), maxshape=(None,), dtype=np.float64, chunks=(METRIC_CHUNK_ROWS,)
                )
            writer = cls(f)
        except BaseException:
            f.close()
            raise
        if swmr:
            writer.start_swmr()
        return writer

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunWriter:
        """Reopen a cleanly closed ``run.h5`` for appending (in SWMR mode)."""
        writer = cls(h5py.File(path, "r+", libver=H5_LIBVER))
        writer.start_swmr()
        return writer

    def start_swmr(self) -> None:
        self.f.swmr_mode = True

    # -- appending ----------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return int(self.time.shape[0])

    @property
    def n_metric_rows(self) -> int:
        return int(self.metrics[TIME].shape[0]) if TIME in self.metrics else 0

    def append_frame(
        self, time_min: float, fields: Mapping[str, np.ndarray], cells: Mapping[str, np.ndarray]
    ) -> None:
        """Append one frame: ``fields`` {name: (*shape)}, ``cells`` {column: (N, ...)}."""
        missing = set(self.fields) - set(fields)
        if missing:
            raise KeyError(f"snapshot lacks fields {sorted(missing)}")
        k = self.n_frames
        n = int(np.shape(cells["id"])[0])
        start = int(self.offsets[-1])
        for name, ds in self.cells.items():
            col = np.asarray(cells[name], dtype=ds.dtype)
            if col.shape[0] != n:
                raise ValueError(f"cell column {name!r} has {col.shape[0]} rows, id has {n}")
            ds.resize(start + n, axis=0)
            if n:
                ds[start : start + n] = col
        self.offsets.resize(k + 2, axis=0)
        self.offsets[k + 1] = start + n
        for name, ds in self.fields.items():
            ds.resize(k + 1, axis=0)
            ds[k] = np.asarray(fields[name], dtype=np.float32)
        self.time.resize(k + 1, axis=0)
        self.time[k] = float(time_min)

    def append_metrics(self, columns: Mapping[str, Sequence[float]], start: int = 0) -> int:
        """Append rows ``start:`` of ``columns`` ({name: list}); returns the new row count."""
        stop = len(columns[TIME])
        if stop <= start:
            return self.n_metric_rows
        n0 = self.n_metric_rows
        for name, ds in self.metrics.items():
            rows = np.asarray(columns[name][start:stop], dtype=np.float64)
            ds.resize(n0 + rows.shape[0], axis=0)
            ds[n0:] = rows
        return self.n_metric_rows

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        """Close the file: this clears its open-for-writing (SWMR) flags in the superblock."""
        if self.f.id.valid:
            self.f.close()


def copy_frames(src: h5py.File, dst: RunWriter, keep: np.ndarray) -> None:
    """Copy the frames ``keep`` (indices, ascending) of an open schema-v1 file into ``dst``."""
    offsets = src[OFFSETS][...]
    names = list(dst.fields)
    for k in keep:
        a, b = int(offsets[k]), int(offsets[k + 1])
        cells = {c: src[CELLS][c][a:b] for c in CELL_COLUMNS}
        fields = {name: src[FIELDS][name][k] for name in names}
        dst.append_frame(float(src[TIME][k]), fields, cells)


class SnapshotObserver(Observer):
    """Writes a frame to ``run.h5`` every ``every_min`` minutes, and the new metric rows.

    A fresh run writes its t=0 frame at :meth:`initialize`. A resumed run (``resume_from`` =
    the old ``run.h5``, possibly this very file) first rebuilds the file from the old one: the
    frames up to the checkpoint time are copied to a temporary file which then atomically
    replaces ``run.h5``, so a bad resume never damages the old file, and frames written after
    the checkpoint (by a run that was killed later) are dropped.
    """

    name = "hdf5"

    def __init__(
        self,
        run_dir: str | os.PathLike,
        every_min: float,
        resume_from: str | os.PathLike | None = None,
        xdmf: bool = True,
    ) -> None:
        super().__init__(every_min)
        self.path = Path(run_dir) / RUN_FILE
        self.xdmf_path = Path(run_dir) / XDMF_FILE if xdmf else None
        self.xdmf: XdmfSidecar | None = None
        self._xdmf_frames = -1  # frames in run.xdmf; -1: not written yet (then written whole)
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self.writer: RunWriter | None = None
        self._rows = 0  # metric rows already in the file
        self._final_time: float | None = None

    def initialize(self, model: Any) -> None:
        super().initialize(model)
        static = model.static_info()
        history = model.datacollector.model_vars
        self._static = static
        if self.resume_from is None:
            self.writer = RunWriter.create(self.path, static, list(history))
            self._write_frame(model)
        else:
            self._rebuild(model, static, list(history))
            self._rows = self.writer.append_metrics(history)
            self._after_write()

    def _rebuild(self, model: Any, static: Mapping[str, Any], metric_names: list[str]) -> None:
        t_c = float(model.time_min)
        tmp = self.path.with_name(self.path.name + ".resume-tmp")
        with open_h5(self.resume_from) as src:
            offsets_len = src[OFFSETS].shape[0] - 1
            n = min(
                src[TIME].shape[0],
                offsets_len,
                *(ds.shape[0] for ds in src[FIELDS].values()),
            )
            times = src[TIME][:n]
            before = times < t_c - TIME_EPS_MIN
            at = (np.abs(times - t_c) < TIME_EPS_MIN) & self.schedule.on_schedule(t_c)
            keep = np.flatnonzero(before | at)
            writer = RunWriter.create(tmp, static, metric_names, swmr=False)
            try:
                copy_frames(src, writer, keep)
            finally:
                writer.close()
        os.replace(tmp, self.path)
        self.writer = RunWriter.open(self.path)
        log.info("resumed %s at t=%.0f min: kept %d of %d frames", self.path, t_c, keep.size, n)

    def _write_frame(self, model: Any) -> None:
        snap = model.snapshot()
        self.writer.append_frame(snap["time_min"], snap["fields"], snap["cells"])
        self._rows = self.writer.append_metrics(model.datacollector.model_vars, self._rows)
        self._after_write()

    def _after_write(self) -> None:
        self.writer.flush()
        self._update_xdmf()

    def _update_xdmf(self) -> None:
        """Append the frames that ``run.xdmf`` lacks (after ``run.h5`` holds them, flushed)."""
        w = self.writer
        n = w.n_frames
        if self.xdmf_path is None or self._xdmf_frames == n:
            return
        if self.xdmf is None:
            self.xdmf = XdmfSidecar(self.xdmf_path, self.path.name, self._static, list(w.fields))
        sidecar = self.xdmf
        if self._xdmf_frames < 0:
            sidecar.rewrite(w.time[...], w.offsets[...], room=True)
        else:
            k0 = self._xdmf_frames
            times = w.time[k0:n]
            offsets = w.offsets[k0 : n + 1]
            for i, k in enumerate(range(k0, n)):
                if not sidecar.append(k, times[i], offsets[i], offsets[i + 1]):
                    sidecar.rewrite(w.time[...], w.offsets[...], room=True)  # amortized O(1)
                    break
        self._xdmf_frames = n

    def handle(self, model: Any) -> None:
        self._write_frame(model)

    def finalize(self, model: Any, status: Status) -> None:
        """The end frame (a finished run), the last metric rows, ``run.xdmf`` written whole
        (without room), and, whatever the status and whatever fails before, ``run.h5`` closed:
        that clears its open-for-writing flags, so every HDF5 reader opens it afterwards."""
        if self.writer is None:
            return
        try:
            w = self.writer
            if status == "done" and w.n_frames:
                last = float(w.time[-1])
                if abs(last - model.time_min) > TIME_EPS_MIN:
                    self._write_frame(model)  # the end state, also off the cadence
            self._rows = w.append_metrics(model.datacollector.model_vars, self._rows)
            self._after_write()
            if self.xdmf is not None:
                self.xdmf.rewrite(w.time[...], w.offsets[...])
        finally:
            self.writer.close()
