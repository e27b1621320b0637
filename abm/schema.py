"""Run-file schema v1: the names both sides of the files agree on (a leaf: imports no abm module).

Data flow: :mod:`abm.observers` write the run folder with these names; :mod:`abm.replay` reads it
with the same names, without importing the observers or the model (so replay works on any run
file, old or remote, without building a model).

Run folder: ``run.h5`` (schema below), ``run.xdmf`` (ParaView sidecar pointing into ``run.h5``),
``metrics.csv`` (the ``/metrics`` table), ``checkpoint.h5`` (full state for ``resume=``) and
``summary.png``.

``run.h5`` (schema ``oa-abm/1``): root attrs :data:`ROOT_ATTRS`; ``/time_min`` (T,) float64;
``/fields/<NAME>`` (T, *shape) float32 with attr ``units``; ``/tissue/compartment`` (*shape) int8;
``/cells/offsets`` (T+1,) int64 (frame k's cells are rows ``offsets[k]:offsets[k+1]``) and the
cell table ``/cells/<column>`` for :data:`CELL_COLUMNS` (dtypes :data:`CELL_DTYPES`, ``pos`` is
(N, ndim)); ``/metrics/<name>`` (S,) float64 with ``/metrics/time_min``. Integer codes carry their
names as the attrs ``codes`` (int64 array) and ``names`` (str array).
"""

from __future__ import annotations

import numpy as np

# -- run folder ------------------------------------------------------------------------------
RUN_FILE = "run.h5"
XDMF_FILE = "run.xdmf"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.h5"
SUMMARY_FILE = "summary.png"
STATUS_FILE = "status.json"  # a sweep job's state: running / complete / failed (abm.sweep.status)

# -- run.h5 ----------------------------------------------------------------------------------
SCHEMA = "oa-abm/1"
SCHEMA_PREFIX = "oa-abm/"  # every version of the run-file schema starts with this
ROOT_ATTRS = ("schema", "config_yaml", "seed", "backend", "abm_version", "dx_um", "dt_min",
              "ndim", "shape")  # fmt: skip

TIME = "time_min"  # dataset (T,) float64, min; also the first metric column
FIELDS = "fields"  # group: one dataset (T, *shape) float32 per field
COMPARTMENT = "tissue/compartment"  # (*shape) int8, codes -> compartment names
CELLS = "cells"  # group: the cell table, all frames one after the other
OFFSETS = "cells/offsets"  # (T+1,) int64
METRICS = "metrics"  # group: one dataset (S,) float64 per metric

CELL_COLUMNS = ("id", "type", "pos", "phenotype", "state")
CELL_DTYPES = {
    "id": np.int64,
    "type": np.int8,
    "pos": np.int32,
    "phenotype": np.int8,
    "state": np.float32,
}
REQUIRED = (TIME, FIELDS, COMPARTMENT, OFFSETS, METRICS, *(f"{CELLS}/{c}" for c in CELL_COLUMNS))

UNITS_ATTR = "units"
CODES_ATTR = "codes"
NAMES_ATTR = "names"

# -- HDF5 file format (run.h5 and checkpoint.h5) ----------------------------------------------
# libver bounds every HDF5 file of a run is written with: the HDF5 1.10 format. SWMR needs at
# least it (superblock v3), and every reader from HDF5 1.10 to 1.14 (VTK 9, hence ParaView) opens
# it. The upper bound matters: with "latest", HDF5 2.0 (h5py >= 3.16) writes layout messages of a
# version that HDF5 1.14 rejects ("bad version number for layout message").
H5_LIBVER = ("v110", "v110")

# -- checkpoint.h5 ---------------------------------------------------------------------------
CHECKPOINT_SCHEMA = "oa-abm-checkpoint/1"
