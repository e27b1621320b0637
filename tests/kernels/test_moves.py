"""Movement with exclusion and daughter placement: invariants, order invariance, boundaries."""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.exchange import scatter_max, scatter_min
from kernels.moves import neighbor_offsets, neighbors, place_daughters, resolve_moves
from kernels.random import uniform

SHAPES = [(23,), (7, 9), (4, 5, 6)]


def _loop_neighbors(shape, idx):
    offs = neighbor_offsets(len(shape))
    out = np.full((len(offs), len(idx)), -1, np.int64)
    for j, i in enumerate(idx):
        c = np.array(np.unravel_index(i, shape))
        for k, o in enumerate(offs):
            n = c + o
            if np.all(n >= 0) and np.all(n < shape):
                out[k, j] = np.ravel_multi_index(tuple(n), shape)
    return out


def _population(rng, shape, density):
    nvox = int(np.prod(shape))
    n = max(1, int(density * nvox))
    cur = rng.choice(nvox, n, replace=False).astype(np.int64)
    ids = rng.choice(10 * n, n, replace=False).astype(np.int64)
    return nvox, cur, ids


def _random_targets(rng, shape, cur):
    nb = neighbors(np, shape, cur)
    k = rng.integers(0, nb.shape[0], cur.size)
    tgt = nb[k, np.arange(cur.size)]  # -1 at the boundary: stay
    stay = rng.random(cur.size) < 0.2
    return np.where(stay, cur, tgt)


def test_neighbor_offsets_order():
    np.testing.assert_array_equal(neighbor_offsets(1), [[-1], [1]])
    np.testing.assert_array_equal(
        neighbor_offsets(3),
        [[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]],
    )
    with pytest.raises(ValueError, match="ndim"):
        neighbor_offsets(4)


@pytest.mark.parametrize("shape", SHAPES)
def test_neighbors_match_loop_and_boundaries(rng, shape):
    idx = np.arange(int(np.prod(shape)), dtype=np.int64)  # every voxel, boundaries included
    nb = neighbors(np, shape, idx)
    assert nb.shape == (2 * len(shape), idx.size) and nb.dtype == np.int64
    np.testing.assert_array_equal(nb, _loop_neighbors(shape, idx))
    # corners: voxel 0 has exactly ndim outside neighbours, all on the minus side
    assert np.sum(nb[:, 0] == -1) == len(shape)
    assert np.all(nb[0::2, 0] == -1)
    strict = neighbors(xps, shape, xps.asarray(idx))
    np.testing.assert_array_equal(np.from_dlpack(strict), nb)


def test_scatter_max_min(rng):
    idx = rng.integers(0, 10, 200)
    vals = rng.standard_normal(200)
    hi, lo = np.full(10, -np.inf), np.full(10, np.inf)
    scatter_max(np, hi, idx, vals)
    scatter_min(np, lo, idx, vals)
    for v in range(10):
        sel = vals[idx == v]
        assert hi[v] == (sel.max() if sel.size else -np.inf)
        assert lo[v] == (sel.min() if sel.size else np.inf)


def test_resolve_moves_hand_case():
    # 1D lattice of 6, cells at 0, 1, 4. The cell at 0 wants 1, occupied at the step start:
    # it stays although that cell moves away. The cells at 1 and 4 want free 2 and 3: both move.
    cur = np.array([0, 1, 4], np.int64)
    ids = np.array([10, 11, 12], np.int64)
    new = resolve_moves(np, 6, cur, np.array([1, 2, 3]), np.array([0.9, 0.1, 0.2], np.float32), ids)
    np.testing.assert_array_equal(new, [0, 2, 3])
    # conflict on voxel 2: higher priority wins
    cur = np.array([1, 3], np.int64)
    pri = np.array([0.3, 0.8], np.float32)
    new = resolve_moves(np, 6, cur, np.array([2, 2]), pri, np.array([5, 6]))
    np.testing.assert_array_equal(new, [1, 2])
    # exact tie: lower id wins, whatever the array order
    pri = np.array([0.5, 0.5], np.float32)
    np.testing.assert_array_equal(
        resolve_moves(np, 6, cur, np.array([2, 2]), pri, np.array([9, 4])), [1, 2]
    )
    np.testing.assert_array_equal(
        resolve_moves(np, 6, cur[::-1], np.array([2, 2]), pri, np.array([4, 9])), [2, 1]
    )
    # -1 and out-of-range targets mean stay
    np.testing.assert_array_equal(
        resolve_moves(np, 6, cur, np.array([-1, 99]), pri, np.array([1, 2])), cur
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_many_rounds_exclusion_and_progress(rng, shape):
    nvox, cur, ids = _population(rng, shape, 0.4)
    moved_total = 0
    for step in range(40):
        tgt = _random_targets(rng, shape, cur)
        pri = uniform(np, 1, step, 7, ids)
        occ = np.zeros(nvox, bool)
        occ[cur] = True
        new = resolve_moves(np, nvox, cur, tgt, pri, ids)
        assert new.dtype == np.int64
        assert np.unique(new).size == new.size  # no two cells share a voxel
        moved = new != cur
        assert np.all(new[moved] == tgt[moved])  # a move goes where the cell wanted
        assert not np.any(occ[new[moved]])  # never into a voxel occupied at step start
        # a cell whose free target nobody else wanted always moves
        wanted = (tgt >= 0) & (tgt != cur) & ~occ[np.where(tgt >= 0, tgt, 0)]
        counts = np.bincount(tgt[wanted], minlength=nvox)
        sole = wanted & (counts[np.where(tgt >= 0, tgt, 0)] == 1)
        assert np.all(moved[sole])
        # every contested free voxel gets exactly one mover
        contested = np.unique(tgt[wanted])
        assert np.isin(contested, new[moved]).all()
        moved_total += moved.sum()
        cur = new
    assert moved_total > 0


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from(SHAPES),
    density=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_resolve_moves_properties(shape, density, seed):
    rng = np.random.default_rng(seed)
    nvox, cur, ids = _population(rng, shape, density)
    tgt = _random_targets(rng, shape, cur)
    # coarse priorities force many exact ties
    pri = (rng.integers(0, 3, cur.size) / 4).astype(np.float32)
    new = resolve_moves(np, nvox, cur, tgt, pri, ids)
    assert np.unique(new).size == new.size
    occ = np.zeros(nvox, bool)
    occ[cur] = True
    moved = new != cur
    assert not np.any(occ[new[moved]])
    perm = rng.permutation(cur.size)
    np.testing.assert_array_equal(
        resolve_moves(np, nvox, cur[perm], tgt[perm], pri[perm], ids[perm]), new[perm]
    )


def _check_daughters(shape, occupied, allowed, parent, out):
    nb = neighbors(np, shape, parent)
    placed = out >= 0
    assert out.dtype == np.int64
    assert np.unique(out[placed]).size == placed.sum()  # no two daughters share a voxel
    assert not np.any(occupied[out[placed]])  # only into free voxels
    if allowed is not None:
        assert np.all(allowed[out[placed]])
    assert np.all((nb == out[None, :]).any(axis=0)[placed])  # only into a neighbour


@pytest.mark.parametrize("shape", SHAPES)
def test_place_daughters_rules(rng, shape):
    nvox = int(np.prod(shape))
    occupied = rng.random(nvox) < 0.5
    allowed = rng.random(nvox) < 0.7
    parent = np.flatnonzero(occupied)
    parent = rng.choice(parent, parent.size // 2, replace=False).astype(np.int64)
    ids = rng.choice(10**6, parent.size, replace=False).astype(np.int64)
    choice = uniform(np, 3, 0, 1, ids)
    pri = uniform(np, 3, 0, 2, ids)
    occ_before = occupied.copy()
    for allow in (allowed, None):
        out = place_daughters(np, shape, occupied, allow, parent, choice, pri, ids)
        np.testing.assert_array_equal(occupied, occ_before)  # not modified
        _check_daughters(shape, occupied, allow, parent, out)
        # a parent with free allowed neighbours loses only to a conflict
        nb = neighbors(np, shape, parent)
        safe = np.where(nb >= 0, nb, 0)
        ok = (nb >= 0) & ~occupied[safe] & (allow[safe] if allow is not None else True)
        assert np.all(out[~ok.any(axis=0)] == -1)
        assert (out >= 0).sum() > 0
        perm = rng.permutation(parent.size)
        np.testing.assert_array_equal(
            place_daughters(
                np, shape, occupied, allow, parent[perm], choice[perm], pri[perm], ids[perm]
            ),
            out[perm],
        )


def test_place_daughters_conflict_and_choice():
    shape = (1, 5)
    occupied = np.array([0, 1, 0, 1, 0], bool)  # parents at 1 and 3, both may pick voxel 2
    parent = np.array([1, 3], np.int64)
    ids = np.array([7, 8], np.int64)
    # choice < 1/2 picks the first free neighbour in offset order (axis 1 minus: 0 and 2)
    choice = np.array([0.9, 0.1], np.float32)  # parent 1 -> voxel 2, parent 3 -> voxel 2
    pri = np.array([0.2, 0.6], np.float32)
    out = place_daughters(np, shape, occupied, None, parent, choice, pri, ids)
    np.testing.assert_array_equal(out, [-1, 2])  # higher priority wins, loser gets -1
    choice = np.array([0.1, 0.9], np.float32)  # parent 1 -> 0, parent 3 -> 4
    out = place_daughters(np, shape, occupied, None, parent, choice, pri, ids)
    np.testing.assert_array_equal(out, [0, 4])
    # allowed mask excludes voxel 0: parent 1's only choice is 2
    allowed = np.array([0, 1, 1, 1, 1], bool)
    out = place_daughters(np, shape, occupied, allowed, parent, choice, pri, ids)
    np.testing.assert_array_equal(out, [2, 4])
    # fully surrounded parent gets -1
    out = place_daughters(np, (3,), np.ones(3, bool), None, np.array([1]), [0.5], pri[:1], ids[:1])
    np.testing.assert_array_equal(out, [-1])


def test_place_daughters_choice_is_uniform():
    # K parents on a (3, 3K) lattice, centres (1, 3k+1): disjoint, all 4 neighbours free
    k = 20_000
    shape = (3, 3 * k)
    parent = (1 * 3 * k + 3 * np.arange(k) + 1).astype(np.int64)
    occupied = np.zeros(3 * 3 * k, bool)
    occupied[parent] = True
    ids = np.arange(k, dtype=np.int64)
    choice = uniform(np, 0, 0, 0, ids)
    out = place_daughters(np, shape, occupied, None, parent, choice, choice, ids)
    nb = neighbors(np, shape, parent)
    which = np.argmax(nb == out[None, :], axis=0)  # offset row that was picked
    np.testing.assert_array_equal(which, np.minimum((choice * 4).astype(np.int64), 3))
    counts = np.bincount(which, minlength=4)
    assert np.all(np.abs(counts - k / 4) < 5 * np.sqrt(k * 0.25 * 0.75))


def test_backend_matches_numpy(backend, rng):
    xp = backend.xp
    shape = (20, 30)
    nvox, cur, ids = _population(rng, shape, 0.5)
    tgt = _random_targets(rng, shape, cur)
    pri = uniform(np, 0, 0, 0, ids)
    expected = resolve_moves(np, nvox, cur, tgt, pri, ids)
    got = resolve_moves(
        xp, nvox, xp.asarray(cur), xp.asarray(tgt), xp.asarray(pri), xp.asarray(ids)
    )
    np.testing.assert_array_equal(backend.to_numpy(got), expected)
    occupied = np.zeros(nvox, bool)
    occupied[cur] = True
    allowed = rng.random(nvox) < 0.8
    choice = uniform(np, 0, 0, 1, ids)
    expected = place_daughters(np, shape, occupied, allowed, cur, choice, pri, ids)
    args = (occupied, allowed, cur, choice, pri, ids)
    got = place_daughters(xp, shape, *(xp.asarray(a) for a in args))
    np.testing.assert_array_equal(backend.to_numpy(got), expected)
