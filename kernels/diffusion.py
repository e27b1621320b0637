"""Reaction-diffusion on the voxel lattice: implicit LOD (and explicit FTCS) stepper factories.

Data flow: the tissue/model builds per-voxel diffusivity and decay for every field
(``abm.tissue``) -> :func:`make_stepper` precomputes every factor once -> the step loop calls
``u = step(u, source, uptake)`` once per time step, with source/uptake rebuilt from the cells
as full arrays, or ``u = step(u, source, uptake, at=voxels)`` with their values at the
(unique) voxels that hold cells only (the sparse form: work proportional to the cells).

Units: dx in µm, dt in min, diffusivity D in µm²/min, decay and uptake in 1/min, source in
concentration/min. Arrays are ``(F, *shape)``: F stacked fields over a 1-3 D lattice.

Scheme (``method="lod"``), per step of length dt (decay applied exactly once per step):

1. reaction, pointwise and implicit: ``u* = (u + dt*source) / (1 + dt*uptake/q)`` with
   ``q = 1 + dt*decay`` of the voxel. Uptake changes every step (cells move), so it is not
   folded into the tridiagonal matrices; this keeps every factor precomputed and the step
   non-negative for any dt. Where a voxel has neither source nor uptake, ``u* = u``: the
   sparse form (``at=``) touches only the voxels that hold cells.
2. diffusion by locally one-dimensional (LOD) backward Euler, one axis after the other (as
   BioFVM does): along axis k solve ``(1 - dt*L_k) u_new = u``, where ``L_k`` is the
   finite-volume Laplacian along k with face coefficient = harmonic mean of the two voxels' D
   (so D = 0 makes a wall) and no flux through the outer boundary; the LAST axis (the last one
   longer than 1 voxel) solves ``(1 + dt*decay - dt*L_k) u_new = u`` instead, i.e. decay is
   implicit there, in the same precomputed matrices. The matrices are symmetric M-matrices
   with unit column sums (without decay): diffusion conserves mass to round-off, never creates
   negative values, and is unconditionally stable. Time error is first order.

   Exact balances at any dt (float round-off only): a uniform field with uniform source S,
   uptake U and decay lambda steps as ``u' = (u + dt*S) / (1 + dt*(U + lambda))`` (the last
   solve divides a uniform field by q, which cancels the 1/q in the reaction), so it settles
   at exactly S/(U + lambda); the total amount obeys
   ``sum(u') = sum(u*) - dt * sum(decay * u')`` (unit column sums of the diffusion solves), so
   a steady point source of rate S holds exactly S/lambda (times the voxel volume) for uniform
   decay, and in general the decay of the returned field balances the sources exactly.
   (Splitting decay as ``decay*dt/ndim`` over the axes, as before, was off by O(dt^2): a
   uniform field settled at S/(U + ((1 + dt*lambda/ndim)^ndim - 1)/dt) instead.)

How each axis is solved (all exact direct solves, equal to float round-off):

* class path: the joint is layered, so along an axis the lines (one per field and
  perpendicular position) fall into a few classes with identical coefficients (decay
  included on the last axis), found at build time (at most ``max_classes`` per axis). Each
  class gets a precomputed solve applied with BLAS matmul, lines as rows (``u @ M^T``, last
  axis) or as columns (``M @ u``, other axes), so no transposes:

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

Subnormal numbers (the same speed on every CPU): on an Intel Xeon a BLAS matmul ran up to
300x slower when its operands held subnormal numbers and 5-25x slower when its partial sums
underflowed (a field of magnitude 1e-10 times the far, tiny entries of a long line's inverse).
So (a) no precomputed factor holds a subnormal number: entries below the dtype's smallest
normal number are set to 0 at build time; (b) on NumPy the step runs with the CPU's
flush-to-zero and denormals-are-zero modes on (x86 MXCSR, AArch64 FPCR; set and restored per
step and per worker thread, see :class:`_FlushToZero`), so no operation makes or reads a
subnormal number and fields never hold one; (c) where that mode cannot be set, the output of
the last axis is flushed in software instead (|u| below the smallest normal number -> 0,
piece by piece while it is in cache; 5-10% of a step), which keeps fields out of the
subnormal range but not partial sums. Only values below 1.2e-38 (float32) or 2.2e-308
(float64) are affected.

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
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

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


class _FlushToZero:
    """Scoped hardware flush-to-zero + denormals-are-zero for the calling thread.

    x86 (MXCSR bits FTZ 0x8000 and DAZ 0x0040) and AArch64 (FPCR bit FZ, 1 << 24), set and
    restored through the C library's ``fegetenv``/``fesetenv`` (ctypes) on the platforms whose
    ``fenv_t`` layout is listed below. Verified once (the bits stick, a subnormal product
    becomes 0, rounding is unchanged, and restoring brings subnormals back); if anything
    differs, or on other platforms, ``available`` is False and the stepper falls back to
    flushing its outputs in software. Why: without it a BLAS matmul whose partial sums
    underflow (a field of magnitude 1e-10 times the small far entries of a line's inverse) ran
    5-25x slower on an Intel Xeon, even with no subnormal number in any operand.
    """

    # (system, machine): (sizeof fenv_t, offset of the control word, struct code, bits)
    LAYOUTS: ClassVar[dict[tuple[str, str], tuple[int, int, str, int]]] = {
        ("Linux", "x86_64"): (32, 28, "I", 0x8040),  # glibc: x87 env, then __mxcsr
        ("Linux", "aarch64"): (8, 0, "I", 1 << 24),  # glibc: __fpcr, __fpsr
        ("Darwin", "x86_64"): (16, 4, "I", 0x8040),  # __control, __status, __mxcsr
        ("Darwin", "arm64"): (16, 8, "Q", 1 << 24),  # __fpsr, __fpcr
    }

    def __init__(self):
        self.available = False
        self._local = threading.local()
        try:
            self._setup()
        except Exception:  # pragma: no cover - any platform surprise: software fallback
            self.available = False

    def _setup(self):
        import ctypes
        import platform
        import struct

        layout = self.LAYOUTS.get((platform.system(), platform.machine()))
        if layout is None:
            return
        size, off, code, bits = layout
        lib = ctypes.CDLL(None)  # the interpreter's own symbols (it links the C math library)
        if not hasattr(lib, "fesetenv"):
            import ctypes.util

            name = ctypes.util.find_library("m")
            if name is None:
                return
            lib = ctypes.CDLL(name)
        for fn in (lib.fegetenv, lib.fesetenv):
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = ctypes.c_int
        self._lib, self._ct, self._struct = lib, ctypes, struct
        self._size, self._off, self._code, self._bits = size, off, code, bits
        sub = np.array([np.finfo(np.float32).tiny / 4], np.float32)
        saved = self._get()
        try:
            new = self._set_bits(saved)
            ok = self._field(self._get()) == self._field(new)
            ok = ok and float((sub * np.float32(1.0))[0]) == 0.0
            one = np.array([1.0])
            ok = ok and (one + 2.0**-53)[0] == 1.0 and (one + 3 * 2.0**-53)[0] == 1 + 2.0**-51
        finally:
            self._put(saved)
        ok = ok and self._field(self._get()) == self._field(saved)
        self.available = bool(ok and float((sub * np.float32(1.0))[0]) > 0.0)

    def _get(self):
        buf = self._ct.create_string_buffer(self._size)
        if self._lib.fegetenv(buf) != 0:
            raise OSError("fegetenv failed")
        return buf

    def _put(self, buf):
        if self._lib.fesetenv(buf) != 0:
            raise OSError("fesetenv failed")

    def _field(self, buf):
        return self._struct.unpack_from(self._code, buf.raw, self._off)[0]

    def _set_bits(self, saved):
        new = self._ct.create_string_buffer(saved.raw, self._size)
        self._struct.pack_into(self._code, new, self._off, self._field(saved) | self._bits)
        self._put(new)
        return new

    @contextlib.contextmanager
    def __call__(self):
        """Flush-to-zero on this thread inside the block (re-entrant; a no-op if not
        available); the previous floating-point environment is restored on exit."""
        depth = getattr(self._local, "depth", 0)
        if not self.available or depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        saved = self._get()
        self._set_bits(saved)
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            self._put(saved)


_FTZ = _FlushToZero()


def _in_ftz(task):
    """Run ``task()`` with flush-to-zero on this (pool) thread."""
    with _FTZ():
        task()


_FLUSH = object()  # op marker of the class path: flush an output piece's subnormal values
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


def _flush(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` (float64) with every entry that is subnormal (or 0) in ``dtype`` set to 0."""
    return np.where(np.abs(a) < np.finfo(dtype).tiny, 0.0, a)


def _class_factors(r: np.ndarray, b: np.ndarray, nblocks: int, dtype: np.dtype):
    """Dense solve data for one class (faces r (n-1,), diagonal b (n,)), float64, with every
    entry below the smallest normal number of ``dtype`` set to 0 (:func:`_flush`).

    nblocks == 1: the dense inverse (n, n). Else (ends, R, blocks): ``ends`` the 2*nblocks
    block-end indices, ``R`` (2*nblocks, n) the rows of the inverse at the ends, and blocks a
    list of (s, e, H) with H (m, m) mapping [x_s, rhs_{s+1..e-1}, x_e] to x_{s..e}.
    """
    n = b.shape[0]
    if nblocks == 1:
        return _flush(_thomas_host(r, b, np.eye(n)), dtype)
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
        blocks.append((s, e, _flush(H, dtype)))
    E = np.zeros((n, len(ends)))
    E[ends, np.arange(len(ends))] = 1.0
    R = _thomas_host(r, b, E).T  # symmetric matrix: columns of the inverse = rows
    return np.asarray(ends), _flush(R, dtype), blocks


# ----------------------------------------------------------------------------------------------
# the stepper


def _as_dtype(xp, u, dtype):
    return u if u.dtype == dtype else astype(xp, u, dtype)


def _densify(xp, values, at, F, shape, dtype):
    """(F, *shape) array holding ``values`` (broadcastable to (F, N)) at the unique flat voxel
    indices ``at`` (N,) and 0 elsewhere. NumPy/CuPy: one scatter; other array-API namespaces
    (no scatter): each voxel's position in the sorted ``at`` by searchsorted, then one take."""
    V = math.prod(shape)
    N = at.shape[0]
    vals = xp.broadcast_to(xp.asarray(values, dtype=dtype), (F, N))
    if is_numpy(xp) or is_cupy(xp):
        out = xp.zeros((F, V), dtype=dtype)
        out[:, at] = vals
        return xp.reshape(out, (F, *shape))
    if N == 0:
        return xp.zeros((F, *shape), dtype=dtype)
    order = xp.argsort(at)
    srt = xp.take(at, order)
    vox = xp.arange(V, dtype=at.dtype)
    j = xp.searchsorted(srt, vox)
    j = xp.where(j < N, j, xp.zeros_like(j))
    hit = xp.take(srt, j) == vox
    pos = xp.where(hit, xp.take(order, j) + 1, xp.zeros_like(j))
    padded = xp.concat([xp.zeros((F, 1), dtype=dtype), vals], axis=1)
    return xp.reshape(xp.take(padded, pos, axis=1), (F, *shape))


class _LOD:
    """Implicit LOD stepper; see the module docstring. Call as ``step(u, source, uptake)`` or
    ``step(u, source, uptake, at=voxels)`` (the sparse form)."""

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
        # decay is implicit in the solve of the last axis longer than one voxel (see the module
        # docstring); the reaction step divides uptake by q = 1 + dt*decay to match
        longer = [k for k, n in enumerate(shape) if n > 1]
        self.decay_axis = longer[-1] if longer else self.ndim - 1
        dtqi = self.dt / (1.0 + self.dt * lamc)  # dt/q, compact (F or 1, c_1..c_d)
        self.dtqi_host = dtqi
        self.dtqi = xp.asarray(dtqi, dtype=dtype)
        self._dtqi_rows: dict[int, list] = {}  # chunks of the dense reaction, per F
        # keep fields out of the subnormal range (CPU speed): in hardware where possible,
        # else by flushing the output of the decay axis in software (5-10% of a step)
        self.flush = self.is_numpy and not _FTZ.available
        self.tiny = float(np.finfo(np_dtype).tiny)
        self.axes = []
        for k, n in enumerate(shape):
            Dk = np.broadcast_to(Dc, (*Dc.shape[: k + 1], n, *Dc.shape[k + 2 :]))
            r = _faces(Dk, k + 1) * (self.dt / dx**2)
            left, right = _pad_faces(r, k + 1)
            b = 1.0 + left + right
            if k == self.decay_axis:
                b = b + lamc * self.dt
            r = np.broadcast_to(r, (*b.shape[: k + 1], n - 1, *b.shape[k + 2 :]))
            self.axes.append(self._plan_axis(k, n, r, b, max_classes, line_solver))
        self._buffers: dict[int, Any] = {}

    # -- build -------------------------------------------------------------------------------

    def _plan_axis(self, k, n, r, b, max_classes, line_solver):
        xp, dt_ = self.xp, self.dtype
        if n == 1:
            # a single voxel: only the decay factor 1/b (none off the decay axis)
            if np.all(b == 1.0):
                return {"kind": "identity"}
            return {"kind": "scale", "inv": xp.asarray(_flush(1.0 / b, self.np_dtype), dtype=dt_)}
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
                fac = _class_factors(rl[i], bl[i], nblocks, self.np_dtype)
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
            a_ = _flush(a_, self.np_dtype).astype(self.np_dtype)
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
        """(three (F, *shape) buffers, one slab-sized scratch, flush scratch or None) per F."""
        if F not in self._buffers:
            xp = self.xp
            full = (F, *self.shape)
            bufs = [xp.empty(full, dtype=self.dtype) for _ in range(3)] if self.fast else []
            tmp = fl = None
            if self.fast:
                slab = F * math.prod(self.shape) // min(self.shape)
                tmp = xp.empty(slab, dtype=self.dtype)
                if self.flush:  # |x| and its mask, one slab of the Thomas path's last axis
                    fl = (xp.empty(slab, dtype=self.dtype), xp.empty(slab, dtype=bool))
            self._buffers[F] = (bufs, tmp, fl)
        return self._buffers[F]

    def _flush_inplace(self, y, scratch, mask):
        """Set the entries of ``y`` with ``|y| <`` the smallest normal number to 0 (NumPy;
        ``scratch``/``mask``: float/bool arrays with at least ``y.size`` entries)."""
        s = scratch[: y.size].reshape(y.shape)
        m = mask[: y.size].reshape(y.shape)
        np.abs(y, out=s)
        np.less(s, self.tiny, out=m)
        np.copyto(y, 0.0, where=m)

    # -- step --------------------------------------------------------------------------------

    def __call__(self, u, source=None, uptake=None, *, at=None):
        """One step of dt: u (F, *shape) concentration.

        Dense form (``at=None``): source (F, *shape) or broadcastable, concentration/min;
        uptake (F, *shape) or broadcastable, 1/min (None: absent). Sparse form: ``at`` (N,)
        integer array of UNIQUE flat voxel indices (C order over shape; not checked), source
        and uptake (F, N) or broadcastable to it, their values at those voxels (0 elsewhere);
        only those voxels get a reaction step, with the same result as the dense form.
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
        if at is not None and source is None and uptake is None:
            at = None
        if at is not None:
            at = xp.asarray(at)
        if not self.fast:
            if at is not None:
                source, uptake = (
                    None if a is None else _densify(xp, a, at, F, self.shape, self.dtype)
                    for a in (source, uptake)
                )
            return self._step_generic(u, source, uptake)
        if self.is_numpy:
            with _blas_limit_one(), _FTZ():
                return self._step_fast(u, source, uptake, at)
        return self._step_fast(u, source, uptake, at)

    def _step_fast(self, u, source, uptake, at):
        """NumPy/CuPy step with preallocated buffers and out= (see __call__)."""
        xp = self.xp
        bufs, tmp, fl = self._bufs(u.shape[0])
        src = u  # u may be overwritten only if it is one of our buffers
        if at is not None:
            if not any(u is bf for bf in bufs):
                src = bufs[0]
                src[...] = u
            self._react_at(src, at, source, uptake)
        elif source is not None or uptake is not None:
            dst, den = [bf for bf in bufs if bf is not u][:2]
            self._react_dense(u, source, uptake, dst, den)
            src = dst
        for k, ax in enumerate(self.axes):
            free = [bf for bf in bufs if bf is not src]  # always two
            kind = ax["kind"]
            if kind == "identity":
                continue
            if kind == "scale":
                xp.multiply(src, ax["inv"], out=free[0])
                src = free[0]
                if fl is not None and k == self.decay_axis:  # a single-voxel lattice
                    self._flush_inplace(src, free[1].reshape(-1), np.empty(src.size, bool))
            elif kind == "class":
                if ax["nblocks"] > 1 and not any(src is bf for bf in bufs):
                    free[1][...] = src  # the block solve writes end values into its input
                    src = free[1]
                owned = any(src is bf for bf in bufs)
                self._class_sweep(ax, k, src, free[0], cache=owned)
                src = free[0]
            else:
                src = self._thomas_sweep(ax, k, src, free[0], free[1], tmp, fl)
        if not any(src is bf for bf in bufs):  # every axis an identity and no reaction
            bufs[0][...] = src
            src = bufs[0]
        return src

    def _react_dense(self, u, source, uptake, dst, den):
        """dst = reaction step of u (module docstring) over the whole lattice (den: scratch).

        NumPy with full C-contiguous source/uptake: in cache-sized chunks of rows (F*n0 rows
        of prod(shape[1:]) values), so main-memory traffic is read u, source, uptake, write
        dst; dt/q comes as one value per row (decay varies along axis 0 only, as in the
        layered joint) or, for other decay layouts, as a full (F*n0, ...) array."""
        full = u.shape
        arrays = (u, source, uptake, dst, den)
        if not (
            self.is_numpy
            and all(
                isinstance(a, np.ndarray) and a.shape == full and a.flags.c_contiguous
                for a in arrays
                if a is not None
            )
        ):
            self._react(u, source, uptake, dst, den, self.dtqi)
            return
        R = full[0] * full[1]
        C = math.prod(full[2:])
        ur, sr, kr, dr, tr = (None if a is None else a.reshape(R, C) for a in arrays)
        chunks = self._react_chunks(full[0])
        parts = max(1, min(self.threads, u.size // _MIN_PARALLEL))
        tasks = []
        n = len(chunks)
        for g in range(parts):

            def task(mine=chunks[g * n // parts : (g + 1) * n // parts]):
                for c, dq in mine:
                    self._react(
                        ur[c],
                        None if sr is None else sr[c],
                        None if kr is None else kr[c],
                        dr[c],
                        tr[c],
                        dq,
                    )

            tasks.append(task)
        self._parallel(tasks)

    def _react_chunks(self, F):
        """The chunks of the chunked reaction, as (row slice, dt/q) pairs over the F*n0 rows:
        about ``_CHUNK`` values each, none crossing a change of dt/q, so dt/q is one scalar
        per chunk (decay constant along axes 1.., as in the layered joint), else the chunk's
        slice of a full (F*n0, rest) array (a broadcast operand would make NumPy allocate)."""
        if F not in self._dtqi_rows:
            d = self.dtqi_host
            n0 = self.shape[0]
            R = F * n0
            C = math.prod(self.shape[1:])
            per = max(1, _CHUNK // C)
            out = []
            if all(c == 1 for c in d.shape[2:]):
                rows = np.broadcast_to(d, (F, n0, *d.shape[2:])).reshape(R).astype(self.np_dtype)
                cuts = np.flatnonzero(rows[1:] != rows[:-1]) + 1
                for r0, r1 in itertools.pairwise([0, *cuts.tolist(), R]):
                    for c0 in range(r0, r1, per):
                        out.append((slice(c0, min(c0 + per, r1)), rows[r0]))
            else:
                full = np.broadcast_to(d, (F, *self.shape)).reshape(R, C)
                full = np.ascontiguousarray(full, dtype=self.np_dtype)
                for c0 in range(0, R, per):
                    c = slice(c0, min(c0 + per, R))
                    out.append((c, full[c]))
            self._dtqi_rows[F] = out
        return self._dtqi_rows[F]

    def _react(self, u, source, uptake, dst, den, dtqi):
        """dst = (u + dt*source) / (1 + uptake*dt/q), out= only (den: scratch)."""
        xp, dt = self.xp, self.dt
        if source is not None:
            xp.multiply(source, dt, out=dst)
            xp.add(dst, u, out=dst)
            u = dst
        if uptake is not None:
            xp.multiply(uptake, dtqi, out=den)
            xp.add(den, 1.0, out=den)
            xp.divide(u, den, out=dst)

    def _react_at(self, u, at, source, uptake):
        """The reaction step at the voxels ``at`` only, in place in ``u`` (a stepper buffer):
        the same operations, in the same order, as :meth:`_react` (so the same results)."""
        xp = self.xp
        F = u.shape[0]
        u2 = xp.reshape(u, (F, -1))
        g = u2[:, at]  # (F, N), a new array
        if source is not None:
            t = xp.empty(g.shape, dtype=self.dtype)
            xp.multiply(source, self.dt, out=t)
            xp.add(t, g, out=t)
            g = t
        if uptake is not None:
            den = xp.empty(g.shape, dtype=self.dtype)
            xp.multiply(uptake, self._dtqi_at(at), out=den)
            xp.add(den, 1.0, out=den)
            xp.divide(g, den, out=g)
        u2[:, at] = g

    def _dtqi_at(self, at):
        """dt/q at the flat voxel indices ``at``: (F or 1, N), or (F or 1, 1) if uniform."""
        xp = self.xp
        d = self.dtqi
        cshape = tuple(d.shape[1:])
        if all(c == 1 for c in cshape):
            return xp.reshape(d, (d.shape[0], 1))
        cidx = None
        cstride = 1
        for k in range(self.ndim - 1, -1, -1):
            if cshape[k] > 1:
                coord = at // math.prod(self.shape[k + 1 :])
                if k > 0:
                    coord = coord % self.shape[k]
                cidx = coord * cstride if cidx is None else cidx + coord * cstride
            cstride *= cshape[k]
        return xp.reshape(d, (d.shape[0], -1))[:, cidx]

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
            elif idx is _FLUSH:  # a: output piece, out: float scratch, b: bool mask
                self._flush_inplace(a, out, b)
            else:
                out[idx] = a

    def _class_ops(self, ax, k, src, dst):
        """Build the op lists for one axis from ``src`` into ``dst``, one list per thread:
        tuples (a, b, out, None) for ``matmul(a, b, out=out)``, (t, None, x, idx) for
        ``x[idx] = t`` and, on the decay (last) axis on NumPy, (y, mask, scratch, _FLUSH) to
        flush the subnormal values of each output piece while it is in cache.

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
        flush = self.flush and k == self.decay_axis
        nthreads = max(1, min(self.threads, len(pieces), src.size // _MIN_PARALLEL))
        groups = []
        for g in range(nthreads):
            mine = pieces[g * len(pieces) // nthreads : (g + 1) * len(pieces) // nthreads]
            groups.append(self._piece_ops(mine, Q == 1, blocked, flush))
        return groups

    def _piece_ops(self, pieces, rows, blocked, flush):
        """Op list for one thread; ``rows``: lines are rows of x (x @ M^T), else columns;
        ``flush``: end each piece with flushing its output's subnormal values."""
        ops = []
        tsize = 0
        if blocked:
            for x, _, fc in pieces:
                tsize = max(tsize, x.size // x.shape[-1 if rows else -2] * fc["ends"].size)
        tbuf = self.xp.empty(tsize, dtype=self.dtype) if blocked else None
        if flush:
            fsize = max((y.size for _, y, _ in pieces), default=0)
            fbuf, mbuf = np.empty(fsize, dtype=self.dtype), np.empty(fsize, dtype=bool)
        for x, y, fc in pieces:
            self._piece_solve(ops, x, y, fc, rows, blocked, tbuf)
            if flush:
                ops.append((y, mbuf, fbuf, _FLUSH))
        return ops

    @staticmethod
    def _piece_solve(ops, x, y, fc, rows, blocked, tbuf):
        """Append the ops that solve the lines of one piece x into y (see _class_ops)."""
        if not blocked:
            ops.append((x, fc["HT"], y, None) if rows else (fc["H"], x, y, None))
            return
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
                return
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
                return
            for s_, e_, H, _ in fc["blocks"]:
                ops.append((H, x[..., s_ : e_ + 1, :], y[..., s_ : e_ + 1, :], None))

    def _parallel(self, tasks):
        """Run zero-argument callables, the first on this thread, the rest on the pool."""
        if len(tasks) == 1:
            tasks[0]()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="lod")
        futures = [self._pool.submit(_in_ftz, t) for t in tasks[1:]]
        tasks[0]()
        for fut in futures:
            fut.result()

    def _field_parts(self, F, slab):
        """Split F fields among threads when a slab (one row operation) is big enough."""
        parts = max(1, min(self.threads, F, slab // _MIN_SLAB))
        return [(g * F // parts, (g + 1) * F // parts) for g in range(parts)]

    def _thomas_sweep(self, ax, k, src, work, out, tmp, fl=None):
        """General path along axis k (fields shared among threads); returns the result array.

        The last axis of a 2-3 D lattice is first copied to (n, F, ...) order in ``work`` so
        that every Thomas row operation touches contiguous memory, then copied into ``out``.
        On the decay axis, ``fl`` (float and bool slab scratch) flushes subnormal results
        slab by slab as the backward sweep writes them.
        """
        xp = self.xp
        F = src.shape[0]
        per = src.size // (F * self.shape[k])  # values of one field in one slab
        inv, e, f = ax["fac"]
        tasks = []
        if not (self.flush and k == self.decay_axis):
            fl = None
        for f0, f1 in self._field_parts(F, F * per):
            tp = tmp[f0 * per : f1 * per]
            fp = None if fl is None else tuple(a[f0 * per : f1 * per] for a in fl)
            if ax["transpose"]:
                fs = (slice(None), slice(f0, f1))
                w = work.reshape((self.shape[k], *src.shape[:-1]))[fs]
                cf = [c[fs] if c.shape[1] > 1 else c for c in (inv, e, f)]

                def task(w=w, cf=cf, tp=tp, fp=fp, f0=f0, f1=f1):
                    w[...] = xp.moveaxis(src[f0:f1], k + 1, 0)
                    self._thomas_inplace(w, w, *cf, 0, tp, fp)
                    out[f0:f1] = xp.moveaxis(w, 0, k + 1)
            else:
                cf = [c[f0:f1] if c.shape[0] > 1 else c for c in (inv, e, f)]

                def task(cf=cf, tp=tp, fp=fp, f0=f0, f1=f1):
                    self._thomas_inplace(src[f0:f1], work[f0:f1], *cf, k + 1, tp, fp)

            tasks.append(task)
        self._parallel(tasks)
        return out if ax["transpose"] else work

    def _thomas_inplace(self, src, dst, inv, e, f, axis, tmp, fl=None):
        """Thomas along ``axis`` from src into dst (may be the same array), out= everywhere;
        ``fl``: flush each result slab's subnormal values (see _flush_inplace)."""
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
        if fl is not None:
            self._flush_inplace(dst[(*pre, n - 1)], *fl)
        for i in range(n - 2, -1, -1):
            di = dst[(*pre, i)]
            xp.multiply(dst[(*pre, i + 1)], at(f, i), out=t)
            xp.add(di, t, out=di)
            if fl is not None:
                self._flush_inplace(di, *fl)

    # -- generic array-API path (allocating) -----------------------------------------------

    def _step_generic(self, u, source, uptake):
        dt = self.dt
        if source is not None:
            u = u + dt * source
        if uptake is not None:
            u = u / (1.0 + uptake * self.dtqi)
        for k, ax in enumerate(self.axes):
            kind = ax["kind"]
            if kind == "identity":
                continue
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

    def __call__(self, u, source=None, uptake=None, *, at=None):
        """One explicit step: same arguments, units and shapes as the LOD step (``at``: the
        sparse form, expanded to full arrays here); allocates."""
        xp = self.xp
        dt = self.dt
        u = _as_dtype(xp, u, self.dtype)
        if at is not None:
            source, uptake = (
                None if a is None else _densify(xp, a, at, u.shape[0], self.shape, self.dtype)
                for a in (source, uptake)
            )
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
    """Build ``step(u, source=None, uptake=None, *, at=None) -> u_next`` for one step of dt.

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
    concentration/min and uptake (F, *shape) in 1/min (either may be None; both broadcast)
    and returns u_next (F, *shape). Sparse form, for sources and uptakes at a few voxels:
    ``step(u, source, uptake, at=idx)`` with ``idx`` an (N,) integer array of UNIQUE flat voxel
    indices (C order over shape, as ``kernels.exchange`` uses; uniqueness is not checked) and
    source/uptake (F, N) (or broadcastable to it) holding their values there; it equals the
    dense form with zeros elsewhere (the same operations on the same values), but its reaction
    step touches only those N voxels (no full pass; decay needs none, see the module
    docstring). On NumPy/CuPy the result lives in a buffer owned by the stepper: it is
    overwritten by later calls (write ``u = step(u, ...)``; copy it to keep it). An input u that
    the stepper returned earlier may be overwritten (the sparse form updates it in place);
    other inputs are never modified.
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
