"""Reaction-diffusion on the voxel lattice: implicit LOD (and explicit FTCS) stepper factories.

Data flow: the tissue/model builds per-voxel diffusivity and decay for every field
(``abm.tissue``) -> :func:`make_stepper` precomputes every factor once -> the step loop calls
``u = step(u, source, uptake)`` once per time step, with source/uptake rebuilt from the cells.

Units: dx in µm, dt in min, diffusivity D in µm²/min, decay and uptake in 1/min, source in
concentration/min. Arrays are ``(F, *shape)``: F stacked fields over a 1-3 D lattice.

Scheme (``method="lod"``), per step of length dt:

1. reaction, pointwise and implicit: ``u* = (u + dt*source) / (1 + dt*uptake)``. Uptake
   changes every step (cells move), so it is not folded into the tridiagonal matrices; this
   keeps every factor precomputed and the step non-negative for any dt.
2. diffusion + decay by locally one-dimensional (LOD) backward Euler, one axis after the other
   (as BioFVM does): along axis k solve ``(1 + dt*decay/ndim - dt*L_k) u_new = u``, where
   ``L_k`` is the finite-volume Laplacian along k with face coefficient = harmonic mean of the
   two voxels' D (so D = 0 makes a wall) and no flux through the outer boundary. Decay is
   split as ``decay*dt/ndim`` per axis. The matrices are symmetric M-matrices with unit column
   sums (without decay): the step conserves mass to round-off, never creates negative values,
   and is unconditionally stable. Time error is first order (backward Euler + splitting).

How each axis is solved (all exact direct solves, equal to float round-off):

* class path: the joint is layered, so along an axis the lines (one per field and
  perpendicular position) fall into a few classes with identical coefficients (decay
  included), found at build time (at most ``max_classes`` per axis). Each class gets a
  precomputed solve applied with BLAS matmul, lines as rows (``u @ M^T``, last axis) or as
  columns (``M @ u``, other axes), so no transposes:

  - lines shorter than 96 (and always on CuPy): the dense inverse, 2n flops/voxel, one read
    and one write of the array;
  - longer lines, NumPy: a SPIKE-like block form with p ~ sqrt(n/2) blocks of m voxels. The
    exact solution at the 2p block ends is one matmul with the precomputed rows of the
    inverse; it is written into the ends of the input; then every block is one matmul with
    the precomputed m x m matrix mapping [left end, interior rhs, right end] to the block
    solution (all blocks in one batched matmul when they are equal). 4p + 2m flops/voxel
    (n=128: 64 instead of 256; n=512: 128 instead of 1024). Done in chunks of ~64K values,
    so main-memory traffic is still one read and one write per axis.
* general path (more classes, e.g. arbitrary per-voxel D): Thomas algorithm with per-voxel
  factors precomputed once, vectorized over all lines and fields (5 ufunc passes per value;
  the last axis is transposed to contiguous slabs and back).

All factors are products and sums of non-negative numbers (M-matrix inverses), so results
are non-negative. In float32 the total mass drifts by about one ulp per step (small terms
added to larger partial sums round away); float64 conserves it to ~1e-13.

Threads (NumPy): BLAS runs single-threaded during a step (threadpoolctl, if installed):
OpenBLAS's own threads slowed the step 5-30x whenever another process held one of the two
cores. With ``threads > 1`` the chunks, fields or reaction blocks of large sweeps are shared
among Python threads instead (NumPy releases the GIL); the default is one thread.

``method="explicit"`` (FTCS: forward Euler diffusion and decay after the same pointwise
reaction step) is kept for comparison; it refuses an unstable dt with a ValueError that names
the largest stable dt ``1 / max_voxel(sum_faces D_face/dx² + decay)``.

Factors are computed on the host in float64 and moved to ``xp`` once. NumPy and CuPy use
preallocated buffers and ``out=`` (no allocation per step); any other array-API namespace
(e.g. ``array_api_strict``) runs the same algorithms with allocating operations.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from kernels.xp import astype, is_cupy, is_numpy, to_numpy

__all__ = ["make_stepper", "max_stable_dt"]

Stepper = Callable[..., Any]


# ----------------------------------------------------------------------------------------------
# host helpers (float64)


def _as_field_array(a: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """Left-pad ``a`` with unit dims to ``ndim + 1`` dims ((F, *shape) layout)."""
    if a.ndim > ndim + 1:
        raise ValueError(f"{name} has {a.ndim} dims; expected at most {ndim + 1} (F, *shape)")
    return a.reshape((1,) * (ndim + 1 - a.ndim) + a.shape)


def _collapse(a: np.ndarray) -> np.ndarray:
    """Shrink every axis along which ``a`` is constant to length 1 (a view-free copy)."""
    for ax in range(a.ndim):
        if a.shape[ax] > 1:
            first = np.take(a, [0], axis=ax)
            if np.array_equal(a, np.broadcast_to(first, a.shape)):
                a = first
    return a


def _faces(D: np.ndarray, axis: int) -> np.ndarray:
    """Harmonic mean of neighbouring D along ``axis`` (n-1 faces); 0 where either D is 0."""
    n = D.shape[axis]
    d1 = np.take(D, range(n - 1), axis=axis)
    d2 = np.take(D, range(1, n), axis=axis)
    s = d1 + d2
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(s > 0, 2.0 * d1 * d2 / np.where(s > 0, s, 1.0), 0.0)
    return h


def _pad_faces(r: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Face coefficients to the left and right of each voxel (0 at the outer boundary)."""
    shp = list(r.shape)
    shp[axis] = 1
    z = np.zeros(shp)
    return np.concatenate([z, r], axis=axis), np.concatenate([r, z], axis=axis)


def _thomas_host(r: np.ndarray, b: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the symmetric tridiagonal system (diag b, off-diagonals -r) for rhs (n, m)."""
    n = b.shape[0]
    x = np.array(rhs, dtype=np.float64)
    cp = np.empty(n)
    den = b[0]
    cp[0] = -r[0] / den if n > 1 else 0.0
    x[0] /= den
    for i in range(1, n):
        den = b[i] + r[i - 1] * cp[i - 1]
        cp[i] = -r[i] / den if i < n - 1 else 0.0
        x[i] = (x[i] + r[i - 1] * x[i - 1]) / den
    for i in range(n - 2, -1, -1):
        x[i] -= cp[i] * x[i + 1]
    return x


def max_stable_dt(shape: Sequence[int], dx: float, diffusivity: Any, decay: Any) -> float:
    """Largest dt (min) for which explicit FTCS on ``shape`` stays stable and non-negative.

    ``1 / max over voxels of (sum over its faces of D_face/dx² + decay)``; inf if all zero.
    D in µm²/min, decay in 1/min, both broadcastable to (F, *shape); dx in µm.
    """
    nd = len(shape)
    D = _as_field_array(to_numpy(diffusivity, np.float64), nd, "diffusivity")
    lam = _as_field_array(to_numpy(decay, np.float64), nd, "decay")
    cs = np.broadcast_shapes(D.shape, lam.shape)
    Dc = _collapse(np.broadcast_to(D, cs))
    rate = _collapse(np.broadcast_to(lam, cs))
    for k, n in enumerate(shape):
        if n > 1:
            full = list(Dc.shape)
            full[k + 1] = n
            left, right = _pad_faces(_faces(np.broadcast_to(Dc, full), k + 1) / dx**2, k + 1)
            rate = rate + left + right
    worst = float(np.max(rate)) if rate.size else 0.0
    return math.inf if worst <= 0 else 1.0 / worst


# ----------------------------------------------------------------------------------------------
# class detection and tiling


def _line_classes(
    bl: np.ndarray, rl: np.ndarray, max_classes: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Group identical coefficient lines: diagonals ``bl`` (L, n) and faces ``rl`` (L, n-1).

    Returns (class id per line, index of one representative line per class), or None if there
    are more than ``max_classes`` distinct lines. A random projection finds the candidates
    cheaply; the grouping is then verified exactly (collisions fall back to np.unique).
    """
    L, n = bl.shape
    if L == 0 or max_classes <= 0:
        return None
    w = np.random.default_rng(0).standard_normal(2 * n - 1)
    h = bl @ w[:n] + rl @ w[n:]
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    if first.size > max_classes:
        return None
    inverse = inverse.reshape(-1)
    if not (np.array_equal(bl, bl[first[inverse]]) and np.array_equal(rl, rl[first[inverse]])):
        rows = np.concatenate([bl, rl], axis=1)
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        if first.size > max_classes:
            return None
        inverse = inverse.reshape(-1)
    return inverse, first


def _tiles(cmap: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Cover the (P, Q) class map with rectangles (p0, p1, q0, q1, cls) of one class each."""
    P, Q = cmap.shape
    if P == 0:
        return []
    same_as_prev = np.concatenate([[False], np.all(cmap[1:] == cmap[:-1], axis=1)])
    group_starts = np.flatnonzero(~same_as_prev)
    group_ends = np.append(group_starts[1:], P)
    out = []
    for p0, p1 in zip(group_starts, group_ends, strict=True):
        row = cmap[p0]
        cuts = np.flatnonzero(row[1:] != row[:-1]) + 1
        qs = np.concatenate([[0], cuts, [Q]])
        for q0, q1 in itertools.pairwise(qs):
            out.append((int(p0), int(p1), int(q0), int(q1), int(row[q0])))
    return out


def _round_keeping_column_sums(M: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round M to ``dtype`` and nudge each column's largest entry so that the rounded column
    sum stays as close as possible to the exact one (column sums are what the step does to
    total mass; without this, rounding biases mass by up to ~1 ulp per step)."""
    Mr = M.astype(dtype).astype(np.float64)
    err = M.sum(axis=0) - Mr.sum(axis=0)
    j = np.arange(M.shape[1])
    i = np.argmax(np.abs(M), axis=0)
    Mr[i, j] = (Mr[i, j] + err).astype(dtype)
    return Mr


try:  # optional: lets the class path run BLAS single-threaded and split the work itself
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover
    ThreadpoolController = None
_CONTROLLER: list = []


def _blas_limit_one():
    """Context manager limiting BLAS to one thread (a no-op without threadpoolctl)."""
    if ThreadpoolController is None:  # pragma: no cover
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


_MIN_PARALLEL = 1 << 18  # values per thread per class-path sweep worth a thread hand-off
_MIN_SLAB = 1 << 15  # values per Thomas row operation worth splitting among threads
_CHUNK = 1 << 16  # values per chunk of the SPIKE class path (fits in L2 with its output)
_SPIKE_MIN_LINE = 96  # shorter lines use the dense inverse; longer ones SPIKE blocks (NumPy)


def _n_blocks(n: int) -> int:
    """Number of SPIKE blocks for a line of n voxels (1 = dense inverse).

    About sqrt(n/2) blocks minimise the flops per voxel (4 per block for the end values + 2
    per block row); a divisor of n nearby is preferred (equal blocks: one batched matmul).
    """
    if n < _SPIKE_MIN_LINE:
        return 1
    best = math.sqrt(n / 2)
    near = [p for p in range(max(2, round(best / 1.5)), round(best * 1.5) + 1) if n % p == 0]
    if near:
        return min(near, key=lambda p: abs(math.log(p / best)))
    return max(2, round(best))


def _class_factors(r: np.ndarray, b: np.ndarray, nblocks: int):
    """Dense solve data for one class (faces r (n-1,), diagonal b (n,)), float64.

    nblocks == 1: the dense inverse (n, n). Else (ends, R, blocks): ``ends`` the 2*nblocks
    block-end indices, ``R`` (2*nblocks, n) the rows of the inverse at the ends, and blocks a
    list of (s, e, H) with H (m, m) mapping [x_s, rhs_{s+1..e-1}, x_e] to x_{s..e}.
    """
    n = b.shape[0]
    if nblocks == 1:
        return _thomas_host(r, b, np.eye(n))
    edges = np.linspace(0, n, nblocks + 1).round().astype(int)
    ends = []
    blocks = []
    for s, e1 in itertools.pairwise(edges):
        e = int(e1) - 1
        s = int(s)
        ends += [s, e]
        m = e - s + 1
        H = np.zeros((m, m))
        H[0, 0] = 1.0
        H[-1, -1] = 1.0
        if m > 2:
            G = _thomas_host(r[s + 1 : e - 1], b[s + 1 : e], np.eye(m - 2))
            H[1:-1, 0] = r[s] * G[:, 0]
            H[1:-1, 1:-1] = G
            H[1:-1, -1] = r[e - 1] * G[:, -1]
        blocks.append((s, e, H))
    E = np.zeros((n, len(ends)))
    E[ends, np.arange(len(ends))] = 1.0
    R = _thomas_host(r, b, E).T  # symmetric matrix: columns of the inverse = rows
    return np.asarray(ends), R, blocks


# ----------------------------------------------------------------------------------------------
# the stepper


def _as_dtype(xp, u, dtype):
    return u if u.dtype == dtype else astype(xp, u, dtype)


class _LOD:
    """Implicit LOD stepper; see the module docstring. Call as ``step(u, source, uptake)``."""

    def __init__(
        self, shape, dx, dt, D, lam, xp, dtype, np_dtype, max_classes, line_solver, threads
    ):
        self.np_dtype = np_dtype
        self.is_numpy = is_numpy(xp)
        self.threads = max(1, int(threads)) if self.is_numpy else 1
        self._pool = None
        self.shape = shape
        self.ndim = len(shape)
        self.dt = float(dt)
        self.xp = xp
        self.dtype = dtype
        self.fast = self.is_numpy or is_cupy(xp)  # preallocated buffers and out=
        self.F0 = max(D.shape[0], lam.shape[0])
        # compact coefficients: axes along which D and decay are both constant have length 1
        Dc = _collapse(np.broadcast_to(D, np.broadcast_shapes(D.shape, lam.shape)))
        lamc = _collapse(np.broadcast_to(lam, np.broadcast_shapes(D.shape, lam.shape)))
        cs = np.broadcast_shapes(Dc.shape, lamc.shape)
        Dc = np.broadcast_to(Dc, cs)
        lamc = np.broadcast_to(lamc, cs)
        self.axes = []
        for k, n in enumerate(shape):
            full = list(cs)
            full[k + 1] = n
            Dk = np.broadcast_to(Dc, full)
            r = _faces(Dk, k + 1) * (self.dt / dx**2)
            left, right = _pad_faces(r, k + 1)
            b = 1.0 + np.broadcast_to(lamc, full) * (self.dt / self.ndim) + left + right
            self.axes.append(self._plan_axis(k, n, r, b, max_classes, line_solver))
        self._buffers: dict[int, Any] = {}

    # -- build -------------------------------------------------------------------------------

    def _plan_axis(self, k, n, r, b, max_classes, line_solver):
        xp, dt_ = self.xp, self.dtype
        if n == 1:
            # a single voxel: only the decay factor 1/b
            return {"kind": "scale", "inv": xp.asarray(1.0 / b, dtype=dt_)}
        # lines: move axis k+1 last -> (L, n) diagonals and (L, n-1) faces
        bl = np.moveaxis(b, k + 1, -1)
        rl = np.moveaxis(r, k + 1, -1)
        lines_shape = bl.shape[:-1]
        bl = bl.reshape(-1, n)
        rl = rl.reshape(-1, n - 1)
        found = None if line_solver == "thomas" else _line_classes(bl, rl, max_classes)
        if found is not None:
            cls, reps = found
            nblocks = _n_blocks(n) if (self.is_numpy and line_solver != "dense") else 1
            factors = []
            for i in reps:
                fac = _class_factors(rl[i], bl[i], nblocks)
                if nblocks == 1:
                    fac = _round_keeping_column_sums(fac, self.np_dtype)
                    factors.append(
                        {
                            "H": xp.asarray(fac, dtype=dt_),
                            "HT": xp.asarray(np.ascontiguousarray(fac.T), dtype=dt_),
                        }
                    )
                else:
                    ends, R, blocks = fac
                    factors.append(
                        {
                            "ends": ends,
                            "R": xp.asarray(R, dtype=dt_),
                            "RT": xp.asarray(np.ascontiguousarray(R.T), dtype=dt_),
                            "blocks": [
                                (s, e, xp.asarray(H, dtype=dt_), xp.asarray(H.T.copy(), dtype=dt_))
                                for s, e, H in blocks
                            ],
                        }
                    )
                    if n % nblocks == 0:  # equal blocks: one batched matmul for all of them
                        Hs = np.stack([H for _, _, H in blocks])
                        factors[-1]["Hs"] = xp.asarray(Hs, dtype=dt_)
                        factors[-1]["HTs"] = xp.asarray(Hs.transpose(0, 2, 1).copy(), dtype=dt_)
            return {
                "kind": "class",
                "cmap": cls.reshape(lines_shape),
                "factors": factors,
                "nblocks": nblocks,
                "tiles": {},
                "progs": {},
            }
        # general per-voxel Thomas factors: forward d'_i = d_i*inv_i + e_i*d'_{i-1},
        # backward x_i = d'_i + f_i*x_{i+1} (all factors >= 0). Computed with the sweep axis
        # first (contiguous slabs), float64.
        bT = np.ascontiguousarray(np.moveaxis(b, k + 1, 0))
        rT = np.ascontiguousarray(np.moveaxis(r, k + 1, 0))
        inv = np.empty_like(bT)
        e = np.zeros_like(bT)
        f = np.zeros_like(bT)
        inv[0] = 1.0 / bT[0]
        for i in range(1, n):
            np.multiply(rT[i - 1], inv[i - 1], out=f[i - 1])
            inv[i] = 1.0 / (bT[i] - rT[i - 1] * f[i - 1])
            np.multiply(rT[i - 1], inv[i], out=e[i])
        fac = []
        transpose = self.fast and k == self.ndim - 1 and self.ndim > 1
        for a_ in (inv, e, f):
            a_ = a_.astype(self.np_dtype)
            if not transpose:  # else stored sweep axis first, matching the transposed buffer
                a_ = np.ascontiguousarray(np.moveaxis(a_, 0, k + 1))
            fac.append(xp.asarray(a_, dtype=dt_))
        return {"kind": "thomas", "fac": fac, "transpose": transpose}

    def _tiles_for(self, ax, k, F):
        if F not in ax["tiles"]:
            cmap = ax["cmap"]
            full = (F, *self.shape[:k], *self.shape[k + 1 :])
            cm = np.broadcast_to(cmap, full)
            P = F * math.prod(self.shape[:k])
            ax["tiles"][F] = _tiles(np.ascontiguousarray(cm).reshape(P, -1))
        return ax["tiles"][F]

    def _bufs(self, F):
        if F not in self._buffers:
            xp = self.xp
            full = (F, *self.shape)
            bufs = [xp.empty(full, dtype=self.dtype) for _ in range(3)] if self.fast else []
            tmp = None
            if self.fast:
                tmp = xp.empty(F * math.prod(self.shape) // min(self.shape), dtype=self.dtype)
            self._buffers[F] = (bufs, tmp)
        return self._buffers[F]

    # -- step --------------------------------------------------------------------------------

    def __call__(self, u, source=None, uptake=None):
        """One step of dt: u (F, *shape) concentration; source (F, *shape) or broadcastable,
        concentration/min; uptake (F, *shape) or broadcastable, 1/min (None: absent).
        Returns u_next (F, *shape); on NumPy/CuPy a stepper-owned buffer (see make_stepper).
        """
        xp = self.xp
        u = _as_dtype(xp, u, self.dtype)
        F = u.shape[0]
        if tuple(u.shape[1:]) != self.shape or (self.F0 > 1 and F != self.F0):
            raise ValueError(
                f"u has shape {tuple(u.shape)}; expected ({self.F0 if self.F0 > 1 else 'F'}, "
                f"{', '.join(map(str, self.shape))})"
            )
        if not self.fast:
            return self._step_generic(u, source, uptake)
        if self.is_numpy:
            with _blas_limit_one():
                return self._step_fast(u, source, uptake)
        return self._step_fast(u, source, uptake)

    def _step_fast(self, u, source, uptake):
        """NumPy/CuPy step with preallocated buffers and out= (see __call__)."""
        xp = self.xp
        bufs, tmp = self._bufs(u.shape[0])
        src = u  # u may be overwritten only if it is one of our buffers
        if source is not None or uptake is not None:
            dst, den = [bf for bf in bufs if bf is not u][:2]
            flat = [self._flat(a, u.shape) for a in (u, source, uptake, dst, den)]
            if self.is_numpy and all(
                f is not None
                for f, a in zip(flat, (u, source, uptake, dst, den), strict=True)
                if a is not None
            ):
                # in cache-sized chunks: main-memory traffic read u, source, uptake, write dst
                uf, sf, kf, df, tf = flat
                size = uf.size
                step_ = _CHUNK
                parts = max(1, min(self.threads, size // _MIN_PARALLEL))
                tasks = []
                for g in range(parts):
                    a0 = (size * g // parts) // step_ * step_
                    a1 = size if g == parts - 1 else (size * (g + 1) // parts) // step_ * step_

                    def task(a0=a0, a1=a1):
                        for c0 in range(a0, a1, step_):
                            c = slice(c0, min(c0 + step_, a1))
                            self._react(
                                uf[c],
                                None if sf is None else sf[c],
                                None if kf is None else kf[c],
                                df[c],
                                tf[c],
                            )

                    tasks.append(task)
                self._parallel(tasks)
            else:
                self._react(u, source, uptake, dst, den)
            src = dst
        for k, ax in enumerate(self.axes):
            free = [bf for bf in bufs if bf is not src]  # always two
            kind = ax["kind"]
            if kind == "scale":
                xp.multiply(src, ax["inv"], out=free[0])
                src = free[0]
            elif kind == "class":
                if ax["nblocks"] > 1 and not any(src is bf for bf in bufs):
                    free[1][...] = src  # the block solve writes end values into its input
                    src = free[1]
                owned = any(src is bf for bf in bufs)
                self._class_sweep(ax, k, src, free[0], cache=owned)
                src = free[0]
            else:
                src = self._thomas_sweep(ax, k, src, free[0], free[1], tmp)
        return src

    @staticmethod
    def _flat(a, shape):
        """1-D view of a C-contiguous NumPy array of exactly ``shape``, else None."""
        if isinstance(a, np.ndarray) and a.shape == shape and a.flags.c_contiguous:
            return a.reshape(-1)
        return None

    def _react(self, u, source, uptake, dst, den):
        """dst = (u + dt*source) / (1 + dt*uptake), out= only (den: scratch)."""
        xp, dt = self.xp, self.dt
        if source is not None:
            xp.multiply(source, dt, out=dst)
            xp.add(dst, u, out=dst)
            u = dst
        if uptake is not None:
            xp.multiply(uptake, dt, out=den)
            xp.add(den, 1.0, out=den)
            xp.divide(u, den, out=dst)

    def _class_sweep(self, ax, k, src, dst, cache=True):
        """One axis by the class path: run the (cached) list of matmul / end-value writes."""
        key = (src.shape[0], id(src), id(dst))
        groups = ax["progs"].get(key) if cache else None
        if groups is None:
            groups = self._class_ops(ax, k, src, dst)
            if cache:
                ax["progs"][key] = groups
        self._parallel([lambda g=g: self._run_ops(g) for g in groups])

    def _run_ops(self, ops):
        mm = self.xp.matmul
        for a, b, out, idx in ops:
            if idx is None:
                mm(a, b, out=out)
            else:
                out[idx] = a

    def _class_ops(self, ax, k, src, dst):
        """Build the op lists for one axis from ``src`` into ``dst``, one list per thread:
        tuples (a, b, out, None) for ``matmul(a, b, out=out)`` and (t, None, x, idx) for
        ``x[idx] = t``.

        Lines are processed in chunks of about ``_CHUNK`` values, so that for long lines
        (SPIKE blocks) the end-value gemm, the writes and the block gemms reuse the chunk from
        cache, and so that the chunks can be shared among threads.
        """
        F = src.shape[0]
        n = self.shape[k]
        P = F * math.prod(self.shape[:k])
        Q = math.prod(self.shape[k + 1 :])
        blocked = ax["nblocks"] > 1
        chunk = _CHUNK if blocked else 4 * _CHUNK
        facs = ax["factors"]
        s3 = src.reshape(P, n, Q)
        d3 = dst.reshape(P, n, Q)
        pieces = []
        for p0, p1, q0, q1, c in self._tiles_for(ax, k, F):
            fc = facs[c]
            pieces_xy = []
            if Q == 1:
                r = max(1, chunk // n)
                for a in range(p0, p1, r):
                    b = min(a + r, p1)
                    pieces_xy.append((s3[a:b, :, 0], d3[a:b, :, 0]))
            elif n * (q1 - q0) >= chunk:
                w = max(1, chunk // n)
                for pp in range(p0, p1):
                    for a in range(q0, q1, w):
                        b = min(a + w, q1)
                        pieces_xy.append((s3[pp, :, a:b], d3[pp, :, a:b]))
            else:
                pb = max(1, chunk // (n * (q1 - q0)))
                for a in range(p0, p1, pb):
                    b = min(a + pb, p1)
                    if b - a == 1:
                        pieces_xy.append((s3[a, :, q0:q1], d3[a, :, q0:q1]))
                    else:
                        pieces_xy.append((s3[a:b, :, q0:q1], d3[a:b, :, q0:q1]))
            pieces += [(x, y, fc) for x, y in pieces_xy]
        nthreads = max(1, min(self.threads, len(pieces), src.size // _MIN_PARALLEL))
        groups = []
        for g in range(nthreads):
            mine = pieces[g * len(pieces) // nthreads : (g + 1) * len(pieces) // nthreads]
            groups.append(self._piece_ops(mine, Q == 1, blocked))
        return groups

    def _piece_ops(self, pieces, rows, blocked):
        """Op list for one thread; ``rows``: lines are rows of x (x @ M^T), else columns."""
        ops = []
        tsize = 0
        if blocked:
            for x, _, fc in pieces:
                tsize = max(tsize, x.size // x.shape[-1 if rows else -2] * fc["ends"].size)
        tbuf = self.xp.empty(tsize, dtype=self.dtype) if blocked else None
        for x, y, fc in pieces:
            if not blocked:
                ops.append((x, fc["HT"], y, None) if rows else (fc["H"], x, y, None))
                continue
            ends = fc["ends"]
            nb = len(fc["blocks"])
            if rows:
                r_ = x.shape[0]
                t = tbuf[: r_ * ends.size].reshape(r_, ends.size)
                ops.append((x, fc["RT"], t, None))
                ops.append((t, None, x, (slice(None), ends)))
                if "HTs" in fc:  # (p, rows, m) strided views of the blocks
                    xs = x.reshape(r_, nb, -1).transpose(1, 0, 2)
                    ys = y.reshape(r_, nb, -1).transpose(1, 0, 2)
                    ops.append((xs, fc["HTs"], ys, None))
                    continue
                for s_, e_, _, HT in fc["blocks"]:
                    ops.append((x[:, s_ : e_ + 1], HT, y[:, s_ : e_ + 1], None))
            else:
                tshape = (*x.shape[:-2], ends.size, x.shape[-1])
                t = tbuf[: math.prod(tshape)].reshape(tshape)
                ops.append((fc["R"], x, t, None))
                ops.append((t, None, x, (..., ends, slice(None))))
                if "Hs" in fc and x.ndim == 2:  # (p, m, w) views of the blocks
                    w_ = x.shape[1]
                    xs = x.reshape(nb, -1, w_)
                    ys = y.reshape(nb, -1, w_)
                    ops.append((fc["Hs"], xs, ys, None))
                    continue
                for s_, e_, H, _ in fc["blocks"]:
                    ops.append((H, x[..., s_ : e_ + 1, :], y[..., s_ : e_ + 1, :], None))
        return ops

    def _parallel(self, tasks):
        """Run zero-argument callables, the first on this thread, the rest on the pool."""
        if len(tasks) == 1:
            tasks[0]()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="lod")
        futures = [self._pool.submit(t) for t in tasks[1:]]
        tasks[0]()
        for fut in futures:
            fut.result()

    def _field_parts(self, F, slab):
        """Split F fields among threads when a slab (one row operation) is big enough."""
        parts = max(1, min(self.threads, F, slab // _MIN_SLAB))
        return [(g * F // parts, (g + 1) * F // parts) for g in range(parts)]

    def _thomas_sweep(self, ax, k, src, work, out, tmp):
        """General path along axis k (fields shared among threads); returns the result array.

        The last axis of a 2-3 D lattice is first copied to (n, F, ...) order in ``work`` so
        that every Thomas row operation touches contiguous memory, then copied into ``out``.
        """
        xp = self.xp
        F = src.shape[0]
        per = src.size // (F * self.shape[k])  # values of one field in one slab
        inv, e, f = ax["fac"]
        tasks = []
        for f0, f1 in self._field_parts(F, F * per):
            tp = tmp[f0 * per : f1 * per]
            if ax["transpose"]:
                fs = (slice(None), slice(f0, f1))
                w = work.reshape((self.shape[k], *src.shape[:-1]))[fs]
                cf = [c[fs] if c.shape[1] > 1 else c for c in (inv, e, f)]

                def task(w=w, cf=cf, tp=tp, f0=f0, f1=f1):
                    w[...] = xp.moveaxis(src[f0:f1], k + 1, 0)
                    self._thomas_inplace(w, w, *cf, 0, tp)
                    out[f0:f1] = xp.moveaxis(w, 0, k + 1)
            else:
                cf = [c[f0:f1] if c.shape[0] > 1 else c for c in (inv, e, f)]

                def task(cf=cf, tp=tp, f0=f0, f1=f1):
                    self._thomas_inplace(src[f0:f1], work[f0:f1], *cf, k + 1, tp)

            tasks.append(task)
        self._parallel(tasks)
        return out if ax["transpose"] else work

    def _thomas_inplace(self, src, dst, inv, e, f, axis, tmp):
        """Thomas along ``axis`` from src into dst (may be the same array), out= everywhere."""
        xp = self.xp
        n = src.shape[axis]
        pre = (slice(None),) * axis

        def at(a, i):
            return a[(*pre, i, ...)]

        sl0 = dst[(*pre, 0)]
        t = tmp[: sl0.size].reshape(sl0.shape)
        xp.multiply(src[(*pre, 0)], at(inv, 0), out=sl0)
        for i in range(1, n):
            di = dst[(*pre, i)]
            xp.multiply(dst[(*pre, i - 1)], at(e, i), out=t)
            xp.multiply(src[(*pre, i)], at(inv, i), out=di)
            xp.add(di, t, out=di)
        for i in range(n - 2, -1, -1):
            di = dst[(*pre, i)]
            xp.multiply(dst[(*pre, i + 1)], at(f, i), out=t)
            xp.add(di, t, out=di)

    # -- generic array-API path (allocating) -----------------------------------------------

    def _step_generic(self, u, source, uptake):
        dt = self.dt
        if source is not None:
            u = u + dt * source
        if uptake is not None:
            u = u / (1.0 + dt * uptake)
        for k, ax in enumerate(self.axes):
            kind = ax["kind"]
            if kind == "scale":
                u = u * ax["inv"]
            elif kind == "class":
                u = self._class_generic(ax, k, u)
            else:
                u = self._thomas_generic(ax, k, u)
        return u

    def _class_generic(self, ax, k, u):
        xp = self.xp
        F = u.shape[0]
        n = self.shape[k]
        P = F * math.prod(self.shape[:k])
        Q = math.prod(self.shape[k + 1 :])
        x3 = xp.reshape(u, (P, n, Q))
        y3 = xp.zeros((P, n, Q), dtype=self.dtype)
        for p0, p1, q0, q1, c in self._tiles_for(ax, k, F):
            y3[p0:p1, :, q0:q1] = xp.matmul(ax["factors"][c]["H"], x3[p0:p1, :, q0:q1])
        return xp.reshape(y3, u.shape)

    def _thomas_generic(self, ax, k, u):
        xp = self.xp
        inv, e, f = ax["fac"]
        n = self.shape[k]
        pre = (slice(None),) * (k + 1)

        def at(a, i):
            return a[(*pre, i, ...)]

        out = xp.zeros(u.shape, dtype=self.dtype)
        prev = u[(*pre, 0, ...)] * at(inv, 0)
        out[(*pre, 0, ...)] = prev
        for i in range(1, n):
            prev = u[(*pre, i, ...)] * at(inv, i) + at(e, i) * prev
            out[(*pre, i, ...)] = prev
        for i in range(n - 2, -1, -1):
            prev = out[(*pre, i, ...)] + at(f, i) * prev
            out[(*pre, i, ...)] = prev
        return out


class _Explicit:
    """Explicit FTCS stepper (comparison only): reaction as in LOD, then forward Euler."""

    def __init__(self, shape, dx, dt, D, lam, xp, dtype):
        self.shape = shape
        self.dt = float(dt)
        self.xp = xp
        self.dtype = dtype
        cs = np.broadcast_shapes(D.shape, lam.shape)
        Dc = _collapse(np.broadcast_to(D, cs))
        self.faces = []
        for k, n in enumerate(shape):
            if n == 1:
                self.faces.append(None)
                continue
            full = list(Dc.shape)
            full[k + 1] = n
            r = _faces(np.broadcast_to(Dc, full), k + 1) * (self.dt / dx**2)
            self.faces.append(xp.asarray(r, dtype=dtype))
        self.keep = xp.asarray(1.0 - self.dt * _collapse(np.broadcast_to(lam, cs)), dtype=dtype)

    def __call__(self, u, source=None, uptake=None):
        """One explicit step: same arguments, units and shapes as the LOD step; allocates."""
        xp = self.xp
        dt = self.dt
        u = _as_dtype(xp, u, self.dtype)
        if source is not None:
            u = u + dt * source
        if uptake is not None:
            u = u / (1.0 + dt * uptake)
        out = u * self.keep
        for k, r in enumerate(self.faces):
            if r is None:
                continue
            a = k + 1
            pre = (slice(None),) * a
            flux = r * (u[(*pre, slice(1, None), ...)] - u[(*pre, slice(None, -1), ...)])
            out[(*pre, slice(None, -1), ...)] = out[(*pre, slice(None, -1), ...)] + flux
            out[(*pre, slice(1, None), ...)] = out[(*pre, slice(1, None), ...)] - flux
        return out


def make_stepper(
    shape: Sequence[int],
    dx: float,
    dt: float,
    diffusivity: Any,
    decay: Any,
    *,
    method: str = "lod",
    xp: Any = np,
    dtype: Any = "float32",
    max_classes: int = 64,
    line_solver: str = "auto",
    threads: int | None = None,
) -> Stepper:
    """Build ``step(u, source=None, uptake=None) -> u_next`` for one time step of length dt.

    Parameters
    ----------
    shape : spatial lattice shape, 1-3 dims (voxels).
    dx : voxel edge (µm).  dt : time step (min).
    diffusivity : D (µm²/min), broadcastable to (F, *shape); per voxel allowed. The face
        coefficient between two voxels is the harmonic mean of their D (D = 0 is a wall).
    decay : first-order decay rate (1/min), broadcastable to (F, *shape).
    method : ``"lod"`` (implicit, unconditionally stable) or ``"explicit"`` (FTCS; raises
        ValueError naming the largest stable dt if dt is too large).
    xp : array namespace (numpy, cupy, or any array-API namespace such as array_api_strict).
    dtype : ``"float32"`` (default) or ``"float64"``.
    max_classes : LOD only: largest number of distinct coefficient lines per axis solved by the
        class (dense matmul) path; more falls back to per-voxel Thomas. 0 forces Thomas.
    line_solver : LOD only: ``"auto"``; ``"dense"`` (class path, dense inverse only) or
        ``"thomas"`` (always the general path), for testing.
    threads : LOD on NumPy only: CPU threads per step (default 1). During a step BLAS runs
        single-threaded (threadpoolctl); with threads > 1 large sweeps share their chunks
        (class path), fields (general path) or reaction blocks among Python threads. Results
        do not depend on the thread count. Worth it only on otherwise idle cores: each
        hand-off waits for a scheduler slot when other processes keep the cores busy.

    The returned ``step`` takes u (F, *shape) in concentration units, source (F, *shape) in
    concentration/min and uptake (F, *shape) in 1/min (either may be None) and returns
    u_next (F, *shape). On NumPy/CuPy the result lives in a buffer owned by the stepper: it is
    overwritten by later calls (write ``u = step(u, ...)``; copy it to keep it). An input u that
    the stepper returned earlier may be overwritten; other inputs are never modified.
    """
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    if not 1 <= nd <= 3 or min(shape) < 1:
        raise ValueError(f"shape must have 1-3 positive dims, got {shape}")
    if not dx > 0 or not dt > 0:
        raise ValueError(f"dx and dt must be > 0 (got dx={dx}, dt={dt})")
    dtype_np = np.dtype(dtype)
    if dtype_np not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    xdtype = getattr(xp, dtype_np.name)
    D = _as_field_array(to_numpy(diffusivity, np.float64), nd, "diffusivity")
    lam = _as_field_array(to_numpy(decay, np.float64), nd, "decay")
    try:
        full = np.broadcast_shapes(D.shape, lam.shape, (1, *shape))
    except ValueError:
        raise ValueError(
            f"diffusivity {D.shape} and decay {lam.shape} do not broadcast to (F, {shape})"
        ) from None
    if tuple(full[1:]) != shape:
        raise ValueError(f"diffusivity/decay broadcast to {full}, not (F, *{shape})")
    if np.any(D < 0) or np.any(lam < 0) or not (np.all(np.isfinite(D)) and np.isfinite(lam).all()):
        raise ValueError("diffusivity and decay must be finite and >= 0")
    if method == "lod":
        if line_solver not in ("auto", "dense", "thomas"):
            raise ValueError(f"line_solver must be auto, dense or thomas, got {line_solver!r}")
        if threads is None:
            threads = 1
        return _LOD(shape, dx, dt, D, lam, xp, xdtype, dtype_np, max_classes, line_solver, threads)
    if method == "explicit":
        dt_max = max_stable_dt(shape, dx, D, lam)
        if dt > dt_max * (1 + 1e-12):
            raise ValueError(
                f"method='explicit' is unstable for dt={dt:g} min; the largest stable dt is "
                f"{dt_max:.6g} min (1/max over voxels of sum(D_face/dx^2) + decay); "
                "use a smaller dt or method='lod'"
            )
        return _Explicit(shape, dx, dt, D, lam, xp, xdtype)
    raise ValueError(f"method must be 'lod' or 'explicit', got {method!r}")
