"""Vectorized movement with volume exclusion, and placement of daughter cells.

Data flow: cell rules -> desired target voxels + random priorities (``kernels.random``) ->
``resolve_moves`` / ``place_daughters`` -> new flat voxel positions -> population arrays and
the occupancy grid (updated by the caller) -> ``kernels.exchange`` gathers at the new voxels.

Cells live one per voxel on a lattice of ``shape`` (1-3 dims); a position is a flat int64 voxel
index in C order over ``shape``. Conflicts are settled by (highest priority, then lowest id), so
results never depend on the order in which cells are stored. ``neighbor_offsets`` and
``neighbors`` are plain array-API code; the conflict resolution uses ``scatter_max`` /
``scatter_min`` from ``kernels.exchange`` (numpy or cupy).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kernels.exchange import scatter_max, scatter_min
from kernels.xp import astype

__all__ = ["neighbor_offsets", "neighbors", "place_daughters", "resolve_moves"]

_ID_MAX = 2**63 - 1


def neighbor_offsets(ndim: int) -> np.ndarray:
    """Von Neumann neighbour offsets, numpy int64 (2*ndim, ndim).

    Row order: axis 0 minus, axis 0 plus, axis 1 minus, axis 1 plus, ... i.e. row ``2*d`` is
    ``-e_d`` and row ``2*d + 1`` is ``+e_d``. ``neighbors`` uses the same order.
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    eye = np.eye(ndim, dtype=np.int64)
    return np.stack([s * eye[d] for d in range(ndim) for s in (-1, 1)])


def neighbors(xp: Any, shape: tuple[int, ...], idx: Any) -> Any:
    """Flat indices of the von Neumann neighbours of each voxel, int64 (2*ndim, N).

    ``idx`` : int64 (N,) flat voxel indices (C order over ``shape``). Row ``k`` is the neighbour
    at ``neighbor_offsets(len(shape))[k]``; -1 where that neighbour is outside the lattice.
    Works on numpy, cupy and array-api-strict.
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    neighbor_offsets(ndim)  # validates ndim
    rows = []
    for d in range(ndim):  # loop over axes, not cells
        stride = math.prod(shape[d + 1 :])
        coord = (idx // stride) % shape[d]
        rows.append(xp.where(coord > 0, idx - stride, -1))
        rows.append(xp.where(coord < shape[d] - 1, idx + stride, -1))
    return astype(xp, xp.stack(rows), xp.int64)


def _winners(xp: Any, n_voxels: int, tgt: Any, priority: Any, ids: Any) -> Any:
    """bool (N,): True where cell j has the best (priority, -id) among cells with its target.

    ``tgt`` int64 (N,) is a voxel in [0, n_voxels) or -1 (not competing, never wins).
    """
    slot = xp.where(tgt >= 0, tgt, n_voxels)  # slot n_voxels collects non-competitors
    best = xp.full(n_voxels + 1, -xp.inf, dtype=priority.dtype)
    scatter_max(xp, best, slot, priority)
    top = (tgt >= 0) & (priority == best[slot])
    best_id = xp.full(n_voxels + 1, _ID_MAX, dtype=xp.int64)
    scatter_min(xp, best_id, xp.where(top, slot, n_voxels), ids)
    return top & (ids == best_id[slot])


def resolve_moves(xp: Any, n_voxels: int, cur: Any, target: Any, priority: Any, ids: Any) -> Any:
    """Resolve simultaneous moves with exclusion; returns the new positions, int64 (N,).

    Parameters
    ----------
    xp : numpy or cupy.
    n_voxels : number of lattice voxels V (flat indices are in [0, V)).
    cur : int64 (N,) current voxels, all distinct.
    target : int64 (N,) desired voxel; ``== cur``, -1 (or anything outside [0, V)) means stay.
    priority : float32 (N,) finite random keys (e.g. ``kernels.random.uniform``); higher wins.
    ids : int64 (N,) distinct cell ids; among equal priorities the lowest id wins.

    Rule: a cell moves iff its target held no cell at the start of the step and it has the best
    (priority, then lowest id) among the cells targeting that voxel; all other cells stay. So no
    two cells share a voxel afterwards, and the result is invariant to permuting the inputs.
    Needs O(V) scratch (a float and an int64 grid of V + 1).
    """
    target = xp.where((target < 0) | (target >= n_voxels), cur, target)
    occupied = xp.zeros(n_voxels + 1, dtype=bool)
    occupied[cur] = True
    # target == cur is occupied, so this also drops cells that stay put
    tgt = xp.where(occupied[target], -1, target)
    win = _winners(xp, n_voxels, tgt, priority, ids)
    return xp.where(win, target, cur)


def place_daughters(
    xp: Any,
    shape: tuple[int, ...],
    occupied: Any,
    allowed: Any,
    parent: Any,
    choice: Any,
    priority: Any,
    ids: Any,
) -> Any:
    """Pick a free neighbour voxel for each daughter; returns int64 (M,), -1 where none.

    Parameters
    ----------
    xp : numpy or cupy.
    shape : lattice shape (1-3 dims), V = prod(shape).
    occupied : bool (V,) flat occupancy at the start of the step (not modified).
    allowed : bool (V,) voxels a daughter may occupy (e.g. its compartment), or None for all.
    parent : int64 (M,) flat voxels of the dividing cells (or recruitment sites).
    choice : float (M,) uniform [0, 1): picks uniformly among the parent's free allowed von
        Neumann neighbours (the ``floor(choice * n_free)``-th in ``neighbor_offsets`` order).
    priority : float32 (M,) finite keys; when two parents pick the same voxel the higher
        priority (then the lower id) wins and the other gets -1.
    ids : int64 (M,) distinct ids of the parents.

    The result is invariant to permuting the inputs; the caller marks the returned voxels
    occupied.
    """
    nb = neighbors(xp, shape, parent)  # (K, M)
    inside = nb >= 0
    safe = xp.where(inside, nb, 0)
    free = inside & ~occupied[safe]
    if allowed is not None:
        free = free & allowed[safe]
    n_free = xp.sum(astype(xp, free, xp.int64), axis=0)  # (M,)
    pick = xp.minimum(astype(xp, choice * n_free, xp.int64), xp.maximum(n_free - 1, 0))
    rank = xp.cumsum(astype(xp, free, xp.int64), axis=0) - 1  # rank among free neighbours
    hit = free & (rank == pick[None, :])  # exactly one True per column when n_free > 0
    want = xp.sum(xp.where(hit, nb, 0), axis=0)
    want = xp.where(n_free > 0, want, -1)
    n_voxels = math.prod(int(s) for s in shape)
    win = _winners(xp, n_voxels, want, priority, ids)
    return xp.where(win, want, -1)
