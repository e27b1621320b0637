"""Counter-based random numbers (Philox4x32-10) written with plain integer array ops.

Data flow: model step loop -> ``uniform``/``normal`` keyed by (seed, step, purpose, cell id) ->
cell rules (division, death, motility, phenotype switches). The same numbers come out on NumPy,
CuPy and array-api-strict, because every operation is exact integer arithmetic (the 32x32 -> 64
bit products are done in uint64, which never overflows) and the uint32 -> float32 conversion
uses only 24 bits (exact).

There is no generator state: a draw is a pure function of its inputs, so results do not depend
on the order in which cells are stored, on how many other cells exist, or on the backend.

Stream layout (one Philox block = 4 uint32 words = 4 draws)::

    key  = (seed & 0xFFFFFFFF, seed >> 32)                       seed in [0, 2**64)
    ctr0 = id & 0xFFFFFFFF                                       id in [0, 2**62)
    ctr1 = (id >> 32) | kind << 30                               kind: 0 uniform, 1 normal
    ctr2 = step                                                  step in [0, 2**32)
    ctr3 = purpose << 16 | block                                 purpose in [0, 2**16),
                                                                 block in [0, 2**16)

Draw ``k`` of a cell is word ``k % 4`` of block ``k // 4``, so up to ``MAX_DRAWS = 2**18`` draws
per (seed, step, purpose, id) and the first ``m`` draws do not depend on ``n``. The map from
(seed, step, purpose, id, kind, k) to (key, counter, word) is injective, so no two draws share a
Philox output. ``normal`` uses kind 1, so ``normal`` and ``uniform`` with the same purpose are
independent streams.
"""

from __future__ import annotations

import math
from typing import Any

from kernels.xp import astype

__all__ = ["MAX_DRAWS", "normal", "philox4x32", "random_bits", "uniform"]

# Philox4x32 constants (Salmon et al. 2011, Random123).
_M0 = 0xD2511F53
_M1 = 0xCD9E8D57
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK32 = 0xFFFFFFFF

MAX_SEED = 2**64
MAX_STEP = 2**32
MAX_PURPOSE = 2**16
MAX_ID = 2**62
MAX_DRAWS = 4 * 2**16


def _as_u64(xp: Any, x: Any) -> Any:
    """uint32-valued word (array or Python int) -> uint64 array holding the same value."""
    if isinstance(x, int):
        return xp.asarray(x & _MASK32, dtype=xp.uint64)
    return astype(xp, x, xp.uint64) & _MASK32


def philox4x32(xp: Any, ctr: tuple, key: tuple, rounds: int = 10) -> tuple:
    """Philox4x32 block function (Random123 ``philox4x32_R``).

    Parameters
    ----------
    xp : array namespace (numpy, cupy, array_api_strict).
    ctr : 4 uint32 arrays (or Python ints), mutually broadcastable: the counter words.
    key : 2 uint32 arrays or Python ints: the key words.
    rounds : number of rounds (10 is the standard, crush-resistant choice).

    Returns
    -------
    Four uint32 arrays of the broadcast shape of ``ctr``/``key``: the output words.
    """
    c0, c1, c2, c3 = (_as_u64(xp, c) for c in ctr)
    # Python-int keys stay Python ints (exact); array keys become uint64 arrays.
    k0, k1 = (k & _MASK32 if isinstance(k, int) else _as_u64(xp, k) for k in key)
    for r in range(rounds):
        if r > 0:  # key schedule: bump between rounds
            k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
        p0 = c0 * _M0  # < 2**64: exact in uint64
        p1 = c2 * _M1
        hi0, lo0 = p0 >> 32, p0 & _MASK32
        hi1, lo1 = p1 >> 32, p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return tuple(astype(xp, c, xp.uint32) for c in (c0, c1, c2, c3))


def _check(seed: int, step: int, purpose: int, n: int) -> None:
    if not 0 <= int(seed) < MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if not 0 <= int(step) < MAX_STEP:
        raise ValueError(f"step must be in [0, 2**32), got {step}")
    if not 0 <= int(purpose) < MAX_PURPOSE:
        raise ValueError(f"purpose must be in [0, 2**16), got {purpose}")
    if not 1 <= int(n) <= MAX_DRAWS:
        raise ValueError(f"n must be in [1, {MAX_DRAWS}], got {n}")


def random_bits(
    xp: Any, seed: int, step: int, purpose: int, ids: Any, n: int = 1, *, kind: int = 0
) -> Any:
    """Raw uint32 draws, shape (n, N): draw ``k`` of cell ``ids[j]`` is ``out[k, j]``.

    ``ids`` is an int64 array (N,) of non-negative ids (< 2**62); ``kind`` (0..3) selects an
    independent family of streams (0 = uniform, 1 = normal). See the module docstring for the
    counter/key layout.
    """
    seed, step, purpose, n = int(seed), int(step), int(purpose), int(n)
    _check(seed, step, purpose, n)
    if not 0 <= kind < 4:
        raise ValueError(f"kind must be in [0, 4), got {kind}")
    ids = xp.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D (N,), got shape {tuple(ids.shape)}")
    nblocks = (n + 3) // 4
    ctr0 = astype(xp, ids & _MASK32, xp.uint64)
    ctr1 = astype(xp, ids >> 32, xp.uint64) | (kind << 30)
    blocks = xp.arange(nblocks, dtype=xp.uint64)
    ctr3 = xp.reshape((purpose << 16) | blocks, (nblocks, 1))  # (nblocks, 1)
    key = (seed & _MASK32, (seed >> 32) & _MASK32)
    words = philox4x32(xp, (ctr0, ctr1, step, ctr3), key)  # 4 x (nblocks, N)
    out = xp.stack(words, axis=1)  # (nblocks, 4, N)
    out = xp.reshape(out, (nblocks * 4, ids.shape[0]))
    return out[:n, ...]


def uniform(xp: Any, seed: int, step: int, purpose: int, ids: Any, n: int = 1) -> Any:
    """Uniform float32 draws in [0, 1), one independent stream per (seed, step, purpose, id).

    Parameters
    ----------
    seed : run seed, 0 <= seed < 2**64.
    step : time-step index, 0 <= step < 2**32.
    purpose : small integer naming what the draw is for (division, death, ...), < 2**16.
    ids : int64 array (N,) of cell ids, 0 <= id < 2**62.
    n : draws per cell (<= 2**18).

    Returns
    -------
    float32 array (N,) if ``n == 1`` else (n, N); values are multiples of 2**-24 in [0, 1),
    bitwise identical on every backend.
    """
    bits = random_bits(xp, seed, step, purpose, ids, n, kind=0)
    u = astype(xp, bits >> 8, xp.float32) * (2.0**-24)
    return u[0, ...] if n == 1 else u


def normal(xp: Any, seed: int, step: int, purpose: int, ids: Any, n: int = 1) -> Any:
    """Standard normal float32 draws (Box-Muller), shape (N,) if ``n == 1`` else (n, N).

    Same arguments as :func:`uniform`; the stream is independent of ``uniform`` with the same
    purpose. Normal ``2j`` and ``2j+1`` come from the uniform pair (``2j``, ``2j+1``) of the
    normal stream as ``r cos(t)`` and ``r sin(t)`` with ``r = sqrt(-2 log(1 - u0))`` (never
    log 0) and ``t = 2 pi u1``; computed in float64 and rounded to float32, so backends agree
    up to libm rounding (at most 1 ulp in float32, almost always exactly).
    """
    m = (n + 1) // 2
    bits = random_bits(xp, seed, step, purpose, ids, 2 * m, kind=1)
    z = _box_muller(xp, bits)[:n, ...]
    return z[0, ...] if n == 1 else z


def _box_muller(xp: Any, bits: Any) -> Any:
    """uint32 (2m, N) -> float32 (2m, N) standard normals; rows (2j, 2j+1) form a pair."""
    u = astype(xp, bits >> 8, xp.float64) * (2.0**-24)  # in [0, 1)
    m = u.shape[0] // 2
    u = xp.reshape(u, (m, 2, u.shape[-1]))
    r = xp.sqrt(-2.0 * xp.log(1.0 - u[:, 0, ...]))  # 1 - u in (0, 1]: finite
    t = (2.0 * math.pi) * u[:, 1, ...]
    z = xp.stack((r * xp.cos(t), r * xp.sin(t)), axis=1)  # (m, 2, N)
    return astype(xp, xp.reshape(z, (2 * m, z.shape[-1])), xp.float32)
