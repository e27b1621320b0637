"""Cell <-> field exchange: gather concentrations at cells, scatter-add secretion/uptake.

Data flow: fields ``u`` (F, *shape) --gather--> per-cell concentrations (F, N) --cell rules-->
per-cell secretion/uptake rates (F, N) --scatter_add--> source/uptake grids (F, *shape) -->
``kernels.diffusion`` stepper. Cells are addressed by flat spatial voxel indices (C order over
``shape``), the same int64 positions used by ``kernels.moves``.

``scatter_add`` (and the 1-D ``scatter_max``/``scatter_min`` used by ``kernels.moves`` to pick
winners per voxel) are the one place with a NumPy/CuPy branch: the array API has no scatter
reductions, and ``a[idx] += w`` silently drops repeated indices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kernels.xp import array_namespace, is_cupy, is_numpy

__all__ = ["gather", "scatter_add", "scatter_max", "scatter_min"]


def gather(u: Any, idx: Any) -> Any:
    """Field values at voxels: ``out[f, j] = u[f].ravel()[idx[j]]``.

    Parameters
    ----------
    u : array (F, *shape), any dtype, on numpy, cupy or array-api-strict. A single field
        must be passed with its field axis, e.g. ``u[None]``.
    idx : int64 array (N,): flat spatial voxel indices, C order over ``shape``,
        0 <= idx < prod(shape); repeats allowed.

    Returns
    -------
    array (F, N) with ``u``'s dtype (a new array; ``u`` is not modified). ``u`` and ``idx``
    must live in the same namespace (TypeError otherwise).
    """
    xp = array_namespace(u, idx)
    nvox = math.prod(u.shape[1:])
    return xp.take(xp.reshape(u, (u.shape[0], nvox)), idx, axis=1)


def _check_numpy_or_cupy(xp: Any, what: str) -> None:
    """TypeError unless ``xp`` is numpy or cupy (the array API has no scatter reductions)."""
    if not (is_numpy(xp) or is_cupy(xp)):
        name = getattr(xp, "__name__", "") or repr(xp)
        raise TypeError(f"{what} supports numpy and cupy only, got {name}")


def scatter_add(xp: Any, target: Any, idx: Any, values: Any) -> None:
    """Accumulate per-cell values into a voxel grid, in place.

    ``target[f].flat[idx[j]] += values[f, j]`` for every j; repeated indices accumulate (every
    contribution counts).

    Parameters
    ----------
    xp : numpy or cupy (the namespace of ``target``).
    target : C-contiguous array (F, *shape) (when ``values`` is (F, N)) or (*shape) (when
        ``values`` is (N,)); float32 or float64. Modified in place.
    idx : int64 array (N,): flat spatial voxel indices (C order over ``shape``), repeats allowed.
    values : array (F, N) or (N,); cast to ``target.dtype`` before accumulating. Units are
        whatever ``target`` holds (e.g. ng/mL/min for a source-rate grid).

    Returns
    -------
    None. Accumulation order within a voxel is unspecified (floating-point sums may differ in
    the last bits between backends).

    NumPy: one 1-D ``np.add.at`` per field (measured faster than ``np.add.at`` on the (F, V)
    view, per-field ``np.bincount`` or sort + ``reduceat`` for N = 1e4-1e6, V = 2.6e5-2e6,
    F = 13; it allocates no V-sized temporaries). CuPy: ``cupyx.scatter_add`` (atomic adds).
    """
    _check_numpy_or_cupy(xp, "scatter_add")
    if values.ndim == 1:
        nfields, grid_shape = 1, tuple(target.shape)
    elif values.ndim == 2:
        nfields, grid_shape = values.shape[0], tuple(target.shape[1:])
        if target.ndim < 2 or target.shape[0] != nfields:
            raise ValueError(
                f"values (F, N) = {tuple(values.shape)} needs target (F, *shape) with the same F, "
                f"got target shape {tuple(target.shape)}"
            )
    else:
        raise ValueError(f"values must be (N,) or (F, N), got shape {tuple(values.shape)}")
    if values.shape[-1] != idx.shape[0]:
        raise ValueError(
            f"values has {values.shape[-1]} cells but idx has {idx.shape[0]} (they must match)"
        )
    if not target.flags.c_contiguous:
        raise ValueError("scatter_add needs a C-contiguous target (it writes through a view)")
    nvox = math.prod(grid_shape)
    flat = target.reshape(nfields, nvox)  # a view: writes land in target
    vals = xp.reshape(values, (nfields, values.shape[-1])).astype(target.dtype, copy=False)
    if is_cupy(xp):
        import cupyx  # lazy: only on the GPU branch

        cupyx.scatter_add(flat, (slice(None), idx), vals)
    else:
        for f in range(nfields):  # loop over fields (~13), never over cells
            np.add.at(flat[f], idx, vals[f])


def _scatter_reduce(xp: Any, op: str, target: Any, idx: Any, values: Any) -> None:
    _check_numpy_or_cupy(xp, f"scatter_{op}")
    if target.ndim != 1 or idx.ndim != 1 or values.shape != idx.shape:
        raise ValueError(
            f"scatter_{op} needs 1-D target, idx and values of idx's shape, got "
            f"{tuple(target.shape)}, {tuple(idx.shape)}, {tuple(values.shape)}"
        )
    if is_cupy(xp):
        import cupyx  # lazy: only on the GPU branch

        getattr(cupyx, f"scatter_{op}")(target, idx, values)
    else:
        getattr(np, f"{op}imum").at(target, idx, values)


def scatter_max(xp: Any, target: Any, idx: Any, values: Any) -> None:
    """In place ``target[idx[j]] = max(target[idx[j]], values[j])`` for every j (repeats reduce).

    target : 1-D numpy/cupy array (V,) (float32/float64/int32/int64); idx : int64 (N,) indices
    into target; values : (N,) of target's dtype. Exact, so independent of the order of j.
    """
    _scatter_reduce(xp, "max", target, idx, values)


def scatter_min(xp: Any, target: Any, idx: Any, values: Any) -> None:
    """In place ``target[idx[j]] = min(target[idx[j]], values[j])``; see :func:`scatter_max`."""
    _scatter_reduce(xp, "min", target, idx, values)
