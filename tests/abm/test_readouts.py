"""The clinical readouts (abm/readouts.py): synovitis_score and pain_index against hand-computed
values, from plain numbers and from a model whose fields and cells are set by hand."""

from __future__ import annotations

import numpy as np
import pytest

from abm.config import compose
from abm.metrics import compute_row
from abm.params import default_biology
from abm.readouts import pain, pain_index, subscores, synovitis_parts, synovitis_score
from tests.conftest import SMALL

P = default_biology().readouts


def test_subscores_by_hand():
    # 4.5 layers: 4.5 - 2 = 2.5; FLS 0.07/voxel: (0.07 - 0.04) / 0.04 = 0.75;
    # infiltrate 0.1/voxel: (0.1 - 0.002) / 0.04 = 2.45; 0.2/voxel: 4.95 -> clipped to 3
    parts = [float(x) for x in subscores(np, 4.5, 0.07, 0.1, P)]
    assert parts == pytest.approx([2.5, 0.75, 2.45], abs=1e-12)
    assert float(subscores(np, 4.5, 0.07, 0.2, P)[2]) == 3.0
    # a healthy synovium scores 0 everywhere (nothing below 0)
    assert [float(x) for x in subscores(np, 1.0, 0.01, 0.0, P)] == [0.0, 0.0, 0.0]


def test_pain_by_hand():
    # h(PGE2 = K) = 0.5, h(TNF = 3K) = 0.75, h(IL-6 = K/3) = 0.25, synovitis 7/9;
    # 100 * (0.3*0.5 + 0.2*0.75 + 0.2*0.25 + 0.3*7/9) / (0.3 + 0.2 + 0.2 + 0.3)
    conc = {"PGE2": P.K_pge2, "TNF": 3 * P.K_tnf, "IL6": P.K_il6 / 3}
    expected = 100 * (0.15 + 0.15 + 0.05 + 0.3 * 7 / 9) / 1.0
    assert float(pain(np, conc, 7.0, P)) == pytest.approx(expected, rel=1e-12)
    assert float(pain(np, {"PGE2": 0.0, "TNF": 0.0, "IL6": 0.0}, 0.0, P)) == 0.0
    # saturating: never above 100
    big = {"PGE2": 1e12, "TNF": 1e12, "IL6": 1e12}
    assert float(pain(np, big, 9.0, P)) == pytest.approx(100.0, rel=1e-9)


@pytest.fixture(scope="module")
def model():
    from abm.model import JointModel

    return JointModel(compose([*SMALL, "sim.days=0.1", "therapy=none"], warn=False))


def _place(model, kind, voxels, state=None):
    """Replace the population ``kind`` by cells at ``voxels`` (``state`` column if given)."""
    pop = model.cells[kind]
    host = pop.to_host()
    keep = {c: v[:0] for c, v in host.items()}
    n = len(voxels)
    cols = {}
    for c, v in keep.items():
        cols[c] = np.zeros((n, *v.shape[1:]), dtype=v.dtype)
    cols["id"] = np.arange(10_000, 10_000 + n, dtype=cols["id"].dtype)
    cols["voxel"] = np.asarray(voxels, dtype=cols["voxel"].dtype)
    if state is not None:
        cols["state"] = np.asarray(state, dtype=cols["state"].dtype)
    pop.load(cols)


def test_readouts_of_a_model_set_by_hand(model):
    m = model
    W = m.shape[1]
    lin0, lin1 = m.tissue.rows["lining"]
    sub0, sub1 = m.tissue.rows["sublining"]
    fl0, fl1 = m.tissue.rows["fluid"]
    assert (lin1 - lin0, sub1 - sub0) == (3, 32)  # the SMALL lattice
    # lining: FLS fill the 3 lining rows and 1 sublining row in every column -> 4 layers -> 2
    lining_rows = range(lin0, lin0 + 4)
    fls = [r * W + c for r in lining_rows for c in range(W)]
    # plus 56 FLS deeper in the sublining (not touching the lining layer)
    deep = [r * W + c for r in range(sub0 + 10, sub0 + 12) for c in range(W)][:56]
    _place(m, "fls", fls + deep)
    # macrophages: 30 with p > 0 and 50 with p <= 0, deep in the sublining
    macs = [(sub0 + 20) * W + c for c in range(W)] + [(sub0 + 21) * W + c for c in range(W)]
    _place(m, "macrophage", macs[:80], state=[0.5] * 30 + [-0.4] * 49 + [0.0])
    _place(m, "tcell", [(sub0 + 25) * W + c for c in range(10)])
    u = m.u
    u[...] = 0
    u[m.fidx["PGE2"], fl0:fl1] = 2 * P.K_pge2  # h = 2/3
    u[m.fidx["TNF"], fl0:fl1] = P.K_tnf  # h = 1/2
    u[m.fidx["IL6"], fl0:fl1] = 0.0  # h = 0
    u[m.fidx["TNF"], lin0:] = 1e6  # the synovium's fields do not count
    # by hand: layers = 4 -> lining = 4 - 2 = 2
    # FLS in the sublining rows: 40 (lining layer part) + 56 = 96 of 32 * 40 voxels: 0.075/voxel
    stroma = (0.075 - 0.04) / 0.04  # 0.875
    # infiltrate: 30 macrophages with p > 0 + 10 T cells over 35 * 40 synovium voxels
    rho_inf = 40 / (35 * 40)
    infiltrate = (rho_inf - 0.002) / 0.04  # 0.6643
    parts = [float(x) for x in synovitis_parts(m)]
    assert parts == pytest.approx([2.0, stroma, infiltrate], rel=1e-6)
    score = 2.0 + stroma + infiltrate
    assert float(synovitis_score(m)) == pytest.approx(score, rel=1e-6)
    expected = 100 * (0.3 * 2 / 3 + 0.2 * 0.5 + 0.2 * 0 + 0.3 * score / 9) / 1.0
    assert float(pain_index(m)) == pytest.approx(expected, rel=1e-6)
    # and the metric row carries them (float32 there)
    row, _, _ = compute_row(m, m.metric_catalogue)
    assert row["synovitis_score"] == pytest.approx(score, rel=1e-6)
    assert row["pain_index"] == pytest.approx(expected, rel=1e-6)
    names = [x.name for x in m.metric_catalogue]
    assert names[-2:] == ["synovitis_score", "pain_index"]
    assert names.index("cartilage_col2") < names.index("synovitis_score")
