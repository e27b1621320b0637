"""Philox4x32-10 counter-based RNG: known answers, backend identity, statistics, stream layout."""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest

from kernels.random import MAX_DRAWS, _box_muller, normal, philox4x32, random_bits, uniform
from kernels.xp import to_numpy

# Random123 kat_vectors, philox4x32 10 rounds: (counter words, key words, expected output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF,) * 2,
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("xp", [np, xps], ids=["numpy", "array_api_strict"])
@pytest.mark.parametrize(("ctr", "key", "expected"), KAT)
def test_philox_known_answers(xp, ctr, key, expected):
    c = tuple(xp.asarray([w], dtype=xp.uint32) for w in ctr)
    out = philox4x32(xp, c, key)
    assert all(o.dtype == xp.uint32 for o in out)
    assert tuple(int(to_numpy(o)[0]) for o in out) == expected
    # key given as uint32 arrays gives the same answer
    k = tuple(xp.asarray([w], dtype=xp.uint32) for w in key)
    assert tuple(int(to_numpy(o)[0]) for o in philox4x32(xp, c, k)) == expected


def test_philox_rounds_matter():
    c = tuple(np.zeros(1, np.uint32) for _ in range(4))
    assert philox4x32(np, c, (0, 0), rounds=7)[0][0] != 0x6627E8D5


def test_philox_broadcasts():
    ctr0 = np.arange(6, dtype=np.uint32).reshape(2, 3)
    out = philox4x32(np, (ctr0, 0, 0, np.uint32(0)), (1, 2))
    assert all(o.shape == (2, 3) for o in out)
    single = philox4x32(np, (np.array([4], np.uint32), 0, 0, 0), (1, 2))
    assert [int(o[1, 1]) for o in out] == [int(s[0]) for s in single]


@pytest.fixture
def ids():
    rng = np.random.default_rng(7)
    return np.concatenate(
        [np.arange(100, dtype=np.int64), rng.integers(0, 2**62, 200, dtype=np.int64)]
    )


def test_numpy_and_array_api_strict_identical(ids):
    for fn in (uniform, normal):
        for n in (1, 3, 8):
            a = fn(np, 42, 17, 5, ids, n)
            b = fn(xps, 42, 17, 5, xps.asarray(ids), n)
            assert b.dtype == xps.float32
            np.testing.assert_array_equal(a, to_numpy(b))
    bits = random_bits(np, 2**40 + 3, 2**32 - 1, 2**16 - 1, ids, 5)
    np.testing.assert_array_equal(
        bits, to_numpy(random_bits(xps, 2**40 + 3, 2**32 - 1, 2**16 - 1, xps.asarray(ids), 5))
    )


def test_cupy_identical_to_numpy(backend, ids):
    xp = backend.xp
    for fn in (uniform, normal):
        a = fn(np, 9, 123, 4, ids, 5)
        b = backend.to_numpy(fn(xp, 9, 123, 4, xp.asarray(ids), 5))
        if fn is uniform:
            np.testing.assert_array_equal(a, b)
        else:  # transcendental functions: libm may differ by an ulp
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_shapes_and_dtypes(ids):
    assert uniform(np, 1, 0, 0, ids).shape == (ids.size,)
    assert uniform(np, 1, 0, 0, ids, n=7).shape == (7, ids.size)
    assert uniform(np, 1, 0, 0, ids).dtype == np.float32
    assert normal(np, 1, 0, 0, ids).shape == (ids.size,)
    assert normal(np, 1, 0, 0, ids, n=3).shape == (3, ids.size)
    assert normal(np, 1, 0, 0, ids, n=3).dtype == np.float32
    assert random_bits(np, 1, 0, 0, ids, 5).dtype == np.uint32
    assert uniform(np, 1, 0, 0, np.zeros(0, np.int64)).shape == (0,)


def test_uniform_range_and_moments():
    n = 400_000
    u = uniform(np, 2024, 3, 1, np.arange(n, dtype=np.int64)).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    # 24-bit grid: every value is an exact multiple of 2**-24
    assert np.all(u * 2**24 == np.floor(u * 2**24))
    # mean 1/2 (sd 1/sqrt(12 n)), variance 1/12 (sd sqrt(1/180 n)); 5 sigma tolerances
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)
    # histogram: chi-square over 64 bins within mean + 5 sd (dof 63, sd sqrt(126))
    counts = np.bincount((u * 64).astype(int), minlength=64)
    chi2 = ((counts - n / 64) ** 2 / (n / 64)).sum()
    assert chi2 < 63 + 5 * np.sqrt(2 * 63)
    # lag-1 correlation across draw index for one cell set
    v = uniform(np, 2024, 3, 1, np.arange(n // 4, dtype=np.int64), n=4).astype(np.float64)
    r = np.corrcoef(v[0], v[1])[0, 1]
    assert abs(r) < 5 / np.sqrt(n // 4)


def test_normal_moments():
    n = 400_000
    z = normal(np, 5, 0, 2, np.arange(n // 2, dtype=np.int64), n=2).astype(np.float64).ravel()
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    # kurtosis 3 (sd of sample kurtosis ~ sqrt(24/n))
    assert abs(np.mean(z**4) / z.var() ** 2 - 3) < 5 * np.sqrt(24 / n)
    # tail fraction beyond 2 sigma: 0.0455
    p = np.mean(np.abs(z) > 2)
    assert abs(p - 0.0455) < 5 * np.sqrt(0.0455 * 0.9545 / n)


def test_normal_never_infinite_at_u_zero():
    # u = 0 would give log(0); we use log(1 - u) so the largest |z| is bounded by sqrt(2*24 ln 2)
    zmax = np.sqrt(2 * 24 * np.log(2))
    z = normal(np, 0, 0, 0, np.arange(200_000, dtype=np.int64), n=2)
    assert np.all(np.isfinite(z))
    assert np.abs(z).max() <= zmax + 1e-5
    # the extreme uniforms themselves: all-zero and all-one bits
    bits = np.array([[0, 0xFFFFFFFF], [0, 0]], np.uint32)  # columns (u0, u1): (0, 0), (1-2**-24, 0)
    z = _box_muller(np, bits)
    np.testing.assert_allclose(z[:, 0], [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(z[:, 1], [zmax, 0.0], rtol=1e-6, atol=1e-6)


def test_layout_matches_documentation():
    """Counter/key layout from the module docstring, word by word."""
    seed, step, purpose = 0x1234_5678_9ABC_DEF0, 0xDEAD_BEEF, 0xBEEF
    ids = np.array([0, 5, 2**40 + 7, 2**62 - 1], np.int64)
    n = 4 * 3
    for kind, fn in ((0, uniform), (1, None)):
        bits = random_bits(np, seed, step, purpose, ids, n, kind=kind)
        for b in range(3):
            ctr = (
                (ids & 0xFFFFFFFF).astype(np.uint32),
                ((ids >> 32) | (kind << 30)).astype(np.uint32),
                np.uint32(step),
                np.uint32((purpose << 16) | b),
            )
            words = philox4x32(np, ctr, (seed & 0xFFFFFFFF, seed >> 32))
            for w in range(4):
                np.testing.assert_array_equal(bits[4 * b + w], words[w])
        if fn is not None:
            np.testing.assert_array_equal(
                fn(np, seed, step, purpose, ids, n), (bits >> 8).astype(np.float32) * 2**-24
            )


def test_last_block_does_not_alias_next_purpose():
    ids = np.arange(3, dtype=np.int64)
    last = random_bits(np, 1, 1, 0, ids, MAX_DRAWS)
    nxt = random_bits(np, 1, 1, 1, ids, 4)
    for j in range(0, MAX_DRAWS, 4 * 2**10):  # a sample of blocks incl. the middle one
        assert not np.array_equal(last[j : j + 4], nxt)
    assert not np.array_equal(last[-4:], nxt)


def test_reproducible(ids):
    np.testing.assert_array_equal(uniform(np, 3, 4, 5, ids, 3), uniform(np, 3, 4, 5, ids, 3))
    np.testing.assert_array_equal(normal(np, 3, 4, 5, ids, 3), normal(np, 3, 4, 5, ids, 3))


@pytest.mark.parametrize(
    "other",
    [
        (4, 4, 5),  # seed
        (3, 5, 5),  # step
        (3, 4, 6),  # purpose
        (3 + 2**32, 4, 5),  # seed high word
        (3, 4 + 2**16, 5),  # step high bits do not alias purpose
    ],
)
def test_streams_differ(ids, other):
    a = random_bits(np, 3, 4, 5, ids, 8)
    b = random_bits(np, *other, ids, 8)
    # independent 32-bit streams: essentially no equal words
    assert np.mean(a == b) < 1e-3
    ua, ub = uniform(np, 3, 4, 5, ids, 8).ravel(), uniform(np, *other, ids, 8).ravel()
    assert abs(np.corrcoef(ua, ub)[0, 1]) < 5 / np.sqrt(ua.size)


def test_ids_and_draws_differ():
    ids = np.arange(50_000, dtype=np.int64)
    bits = random_bits(np, 1, 1, 1, ids, 8)
    # all 400k words distinct up to birthday collisions (expected ~ n^2 / 2^33 ~ 19)
    assert bits.size - np.unique(bits).size < 60
    # ids that differ only in their high word get different streams
    hi = ids + 2**32
    assert np.mean(random_bits(np, 1, 1, 1, hi, 4) == bits[:4]) < 1e-3


def test_uniform_and_normal_streams_independent(ids):
    u = uniform(np, 3, 4, 5, np.arange(100_000, dtype=np.int64)).astype(np.float64)
    z = normal(np, 3, 4, 5, np.arange(100_000, dtype=np.int64)).astype(np.float64)
    assert abs(np.corrcoef(u, z)[0, 1]) < 5 / np.sqrt(u.size)
    assert abs(np.corrcoef(u, np.abs(z))[0, 1]) < 5 / np.sqrt(u.size)


def test_permutation_invariance_and_subsets(ids):
    perm = np.random.default_rng(1).permutation(ids.size)
    for fn in (uniform, normal):
        full = fn(np, 11, 22, 33, ids, 3)
        np.testing.assert_array_equal(fn(np, 11, 22, 33, ids[perm], 3), full[:, perm])
        np.testing.assert_array_equal(fn(np, 11, 22, 33, ids[5:9], 3), full[:, 5:9])


def test_prefix_stable_in_n(ids):
    for fn in (uniform, normal):
        many = fn(np, 1, 2, 3, ids, 9)
        np.testing.assert_array_equal(fn(np, 1, 2, 3, ids, 4), many[:4])
        np.testing.assert_array_equal(fn(np, 1, 2, 3, ids, 1), many[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 2**64},
        {"step": -1},
        {"step": 2**32},
        {"purpose": 2**16},
        {"n": 0},
        {"n": MAX_DRAWS + 1},
    ],
)
def test_out_of_range_arguments_raise(kwargs):
    args = {"seed": 0, "step": 0, "purpose": 0, "n": 1} | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        uniform(np, args["seed"], args["step"], args["purpose"], np.arange(3), args["n"])
