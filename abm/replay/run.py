"""Reader of run files: ``load_run(path) -> Run``, the entry point of everything in replay.

Data flow: ``run.h5`` (written by the snapshot observer; names in :mod:`abm.schema`) ->
:class:`Run` -> movies, the slider viewer, summary plots, notebooks. Read-only and lazy: opening
reads the small things (attrs, times, compartments); a field frame or a cell table is read when
asked for.

How a file is opened (:func:`open_h5`): a closed file plainly; a file whose superblock says it is
open for writing (a run still writing it, or one killed with SIGKILL) in SWMR read mode, which
reads up to its last flushed frame (:meth:`Run.refresh` picks up frames written since). HDF5
retries a SWMR read that fails its checksum (the writer may be halfway through that block), with
a back-off that doubles each time: by default 100 times, hours on a damaged file. Here it retries
:data:`SWMR_READ_ATTEMPTS` times while the run folder's lock names a live writer
(:func:`abm.lock.writer_alive`), and not at all when none does (nobody writes: a bad checksum is
damage), so a damaged file fails at once either way.

Anything wrong with the file (missing, not HDF5, truncated, not ours, another schema version,
corrupt data) raises :class:`RunFileError` with one line naming the file and the problem.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from abm.errors import RunFileError
from abm.lock import writer_alive
from abm.schema import (
    CELL_COLUMNS,
    CELLS,
    CODES_ATTR,
    COMPARTMENT,
    FIELDS,
    METRICS,
    NAMES_ATTR,
    OFFSETS,
    REQUIRED,
    RUN_FILE,
    SCHEMA,
    SCHEMA_PREFIX,
    TIME,
    UNITS_ATTR,
)

AXIS_NAMES = ("x", "y", "z")

# Metadata read attempts of a SWMR reader while a writer is live: the back-off doubles from
# 1 ns, so 24 attempts wait at most ~34 ms in all before a bad checksum counts as damage.
SWMR_READ_ATTEMPTS = 24
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# File consistency flags of a version-3 superblock (byte 11): 0x01 open for writing, 0x04 open
# for SWMR writing. HDF5 refuses a plain (non-SWMR) open of a file with either flag set.
_OPEN_FOR_WRITING = 0x01 | 0x04


def flagged_open(path: str | os.PathLike) -> bool:
    """Whether the HDF5 file ``path`` is flagged open for writing (by a live or a killed writer).

    Reads the superblock's file-consistency flags; False for a cleanly closed file, a file
    written without them (HDF5 1.8 format) or anything that is no HDF5 file.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return (
        len(head) == 12
        and head[:8] == _SIGNATURE
        and head[8] >= 3
        and bool(head[11] & _OPEN_FOR_WRITING)
    )


@functools.cache
def _set_read_attempts_fn() -> Any:
    """``H5Pset_metadata_read_attempts`` of the HDF5 library h5py uses (h5py lacks it); or None.

    Found through h5py's own extension module, whose dependencies include that library; None
    where the platform's loader does not resolve it so (then HDF5's default applies).
    """
    try:
        fn = ctypes.CDLL(h5py.h5p.__file__).H5Pset_metadata_read_attempts
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def schema_problem(f: h5py.File) -> tuple[str, Any] | None:
    """Why an open HDF5 file is not an oa-abm run file of this schema: ``("foreign", the schema
    attribute)``, ``("version", schema)`` or ``("missing", [required names absent])``; None if
    it is one. The readers (:class:`Run`) and the resume check (abm.runner) word it each their
    own way."""
    schema = f.attrs.get("schema")
    if isinstance(schema, bytes):
        schema = schema.decode("utf-8", "replace")
    if not (isinstance(schema, str) and schema.startswith(SCHEMA_PREFIX)):
        return "foreign", schema
    if schema != SCHEMA:
        return "version", schema
    missing = [name for name in REQUIRED if name not in f]
    return ("missing", missing) if missing else None


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open the run file ``path`` read-only: plainly, or in SWMR mode when it is flagged open.

    Raises what h5py raises (``OSError``) when the file cannot be opened.
    """
    p = Path(path)
    if not flagged_open(p):
        return h5py.File(p, "r")
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fn = _set_read_attempts_fn()
    if fn is not None:
        fn(fapl.id, SWMR_READ_ATTEMPTS if writer_alive(p) else 1)
    name = os.fsencode(p) if os.name != "nt" else str(p).encode("utf-8")
    fid = h5py.h5f.open(name, h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def _read_mapping(obj: h5py.HLObject) -> dict[int, str]:
    codes = obj.attrs.get(CODES_ATTR)
    names = obj.attrs.get(NAMES_ATTR)
    if codes is None or names is None:
        return {}
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return {int(c): n for c, n in zip(codes, names, strict=True)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0]
    if "bad version number" in line:  # a format newer than this HDF5 reads, not damage
        line += (
            f"; written by a newer HDF5 than this h5py's {h5py.version.hdf5_version}: "
            "upgrade h5py to read it"
        )
    return line


def load_run(path: str | os.PathLike) -> Run:
    """Open a run: ``path`` is a ``run.h5`` or a run folder holding one."""
    return Run(path)


class Run:
    """A lazily read run file (schema ``oa-abm/1``). Use as a context manager or ``close()``.

    Attributes: ``time_min`` (T,) float64; ``shape``, ``ndim``, ``dx_um``, ``dt_min``;
    ``field_names``, ``field_units``; ``compartment`` (*shape) int8 and ``compartment_names``,
    ``cell_types``, ``phenotypes`` ({code: name}); ``attrs`` (root attrs); ``config``
    (DictConfig); ``metrics`` (DataFrame, one row per step).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        p = Path(path)
        if p.is_dir():
            p = p / RUN_FILE
        self.path = p
        if not p.exists():
            raise RunFileError(f"{p}: no such file")
        try:
            self._f = open_h5(p)
        except OSError as exc:
            what = "not an HDF5 file" if not h5py.is_hdf5(p) else "cannot be opened"
            raise RunFileError(f"{p}: {what} (truncated or corrupt? {_first_line(exc)})") from None
        try:
            self._check()
            self._load_header()
        except RunFileError:
            self.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            self.close()
            raise RunFileError(f"{p}: corrupt run file ({_first_line(exc)})") from None

    # -- opening ------------------------------------------------------------------------------
    def _check(self) -> None:
        f, p = self._f, self.path
        kind, what = schema_problem(f) or (None, None)
        if kind == "foreign":
            raise RunFileError(
                f"{p}: not an oa-abm run file (no root attribute schema='{SCHEMA_PREFIX}N')"
            )
        if kind == "version":
            raise RunFileError(
                f"{p}: schema {what!r} is not supported (this version of abm reads {SCHEMA!r})"
            )
        if kind == "missing":
            listed = ", ".join("/" + m for m in what)
            raise RunFileError(f"{p}: corrupt run file (missing {listed})")
        if not len(f[FIELDS]):
            raise RunFileError(f"{p}: corrupt run file (/fields holds no field)")

    def _load_header(self) -> None:
        f = self._f
        self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        self.shape = tuple(int(n) for n in f.attrs["shape"])
        self.ndim = len(self.shape)
        self.dx_um = float(f.attrs["dx_um"])
        self.dt_min = float(f.attrs["dt_min"])
        fields = f[FIELDS]
        self.field_names = list(fields)
        self.field_units = {n: str(fields[n].attrs.get(UNITS_ATTR, "")) for n in self.field_names}
        for name in self.field_names:
            if fields[name].shape[1:] != self.shape:
                raise RunFileError(
                    f"{self.path}: corrupt run file (/{FIELDS}/{name} has frame shape "
                    f"{fields[name].shape[1:]}, root attr shape is {self.shape})"
                )
        self.compartment = f[COMPARTMENT][...]
        self.compartment_names = _read_mapping(f[COMPARTMENT])
        self.cell_types = _read_mapping(f[CELLS]["type"])
        self.phenotypes = _read_mapping(f[CELLS]["phenotype"])
        self.refresh()

    @property
    def swmr(self) -> bool:
        """Whether the file was opened in SWMR mode (it was flagged open for writing)."""
        return bool(self._f.swmr_mode)

    def refresh(self) -> int:
        """Re-read the frame count of a file that is still being written; returns ``n_frames``."""
        f = self._f
        with self._reading("frame index"):
            dsets = [f[TIME], f[OFFSETS], *(f[FIELDS][n] for n in self.field_names)]
            for ds in dsets:
                ds.refresh()
            n = min(
                f[TIME].shape[0],
                f[OFFSETS].shape[0] - 1,
                *(f[FIELDS][n].shape[0] for n in self.field_names),
            )
            self.time_min = f[TIME][:n]
            self._offsets = f[OFFSETS][: n + 1]
        self.n_frames = int(n)
        self.__dict__.pop("metrics", None)
        return self.n_frames

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        try:
            yield
        except RunFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise RunFileError(
                f"{self.path}: corrupt run file, cannot read {what} ({_first_line(exc)})"
            ) from None

    # -- lazy access --------------------------------------------------------------------------
    def _frame(self, frame: int) -> int:
        k = int(frame)
        if not -self.n_frames <= k < self.n_frames:
            raise IndexError(
                f"{self.path}: frame {frame} out of range (the file has {self.n_frames} frames)"
            )
        return k % self.n_frames

    def check_field(self, name: str) -> None:
        """Raise :class:`RunFileError` naming the valid choices when ``name`` is not a field."""
        if name not in self.field_names:
            raise RunFileError(
                f"{self.path}: no field {name!r} (fields: {', '.join(self.field_names)})"
            )

    def field(self, name: str, frame: int = -1) -> np.ndarray:
        """Field ``name`` at ``frame`` (negative counts from the end): float32 (*shape)."""
        self.check_field(name)
        k = self._frame(frame)
        with self._reading(f"/{FIELDS}/{name} frame {k}"):
            return self._f[FIELDS][name][k]

    def cells(self, frame: int = -1) -> pd.DataFrame:
        """The cells of ``frame``: one row per cell.

        Columns: ``id``, ``type``, ``type_name``, ``phenotype``, ``phenotype_name``, ``state``
        and the voxel indices ``x``, ``y`` (, ``z``) along lattice axes 0, 1 (, 2).
        """
        k = self._frame(frame)
        a, b = int(self._offsets[k]), int(self._offsets[k + 1])
        g = self._f[CELLS]
        with self._reading(f"/{CELLS} rows {a}:{b} (frame {k})"):
            cols = {c: g[c][a:b] for c in CELL_COLUMNS}
        pos = cols.pop("pos").reshape(b - a, self.ndim)
        df = pd.DataFrame({"id": cols["id"], "type": cols["type"]})
        df["type_name"] = _named(cols["type"], self.cell_types)
        df["phenotype"] = cols["phenotype"]
        df["phenotype_name"] = _named(cols["phenotype"], self.phenotypes)
        df["state"] = cols["state"]
        for axis in range(self.ndim):
            df[AXIS_NAMES[axis]] = pos[:, axis]
        return df

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """All metric rows written so far (one per step), ``time_min`` first."""
        g = self._f[METRICS]
        with self._reading(f"/{METRICS}"):
            for ds in g.values():
                ds.refresh()
            cols = {name: ds[...] for name, ds in g.items()}
        n = min((len(v) for v in cols.values()), default=0)
        return pd.DataFrame({k: v[:n] for k, v in cols.items()})

    @cached_property
    def config(self) -> DictConfig:
        """The run's resolved configuration (root attr ``config_yaml``)."""
        try:
            return OmegaConf.create(str(self.attrs["config_yaml"]))
        except Exception as exc:  # yaml and omegaconf raise a variety of types
            raise RunFileError(f"{self.path}: corrupt config_yaml ({_first_line(exc)})") from None

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        f = getattr(self, "_f", None)
        if f is not None and f.id.valid:
            f.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, frames={self.n_frames}, shape={self.shape})"


def _named(values: np.ndarray, mapping: dict[int, str]) -> pd.Categorical:
    """Integer codes ``values`` as a Categorical of their names (NaN where a code is unnamed)."""
    codes = np.asarray(sorted(mapping), dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    idx = np.searchsorted(codes, values) if codes.size else np.zeros_like(values)
    idx = np.minimum(idx, max(codes.size - 1, 0))
    known = codes.size > 0 and (codes[idx] == values)
    return pd.Categorical.from_codes(np.where(known, idx, -1), [mapping[c] for c in codes])
