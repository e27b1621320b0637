"""The assays with the real rules (abm.assays.run): MLR suppression rises with the MSC ratio
and is 0 without MSCs, the PGE2 knockout removes the PGE2-dependent part of the macrophage
IL-10 rise, same seed -> same numbers, the protocol checks, the calibration arms. Small
protocols (fewer agents, hours not days) keep the file fast."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from abm.assays.calibration import assay_arms, compute, why_not
from abm.assays.protocol import AssayError, Condition, load_protocol
from abm.assays.run import readout_columns, run_assay


def small(name: str, **changes):
    p = load_protocol(name)
    return dataclasses.replace(p, target_agents=120, msc_agents=20, **changes)


@pytest.fixture(scope="module")
def mlr():
    conds = (
        Condition("0", 0.0),
        Condition("0 again", 0.0, placement="transwell"),
        Condition("1:300", 1 / 300),
        Condition("1:100", 0.01),
        Condition("1:30", 1 / 30),
        Condition("1:1", 1.0),
    )
    p = small("coculture_tcell", conditions=conds, arms={})
    return run_assay(p, seed=5, days=1.0).table.set_index("condition")


def test_mlr_suppression_rises_with_the_msc_ratio(mlr):
    s = mlr["effector_proliferation_suppression_pct"]
    assert s["0"] == 0.0 and s["0 again"] == 0.0  # no MSCs: the same dish, no suppression
    assert mlr.loc["0", "effector_divisions_per_cell"] > 0  # IL-1β turns proliferation on
    assert 0 < s["1:300"] < s["1:100"] < s["1:30"] <= s["1:1"] <= 100.0
    f = mlr["suppression_factor_mean"]  # the rule's own factor falls with the ratio too
    assert f["0"] == pytest.approx(1.0) and f["1:300"] > f["1:100"] > f["1:30"] > f["1:1"]
    pge2 = mlr["floor_PGE2_pg_ml"]
    assert pge2["0"] == 0 and pge2["1:300"] < pge2["1:100"] < pge2["1:30"] < pge2["1:1"]


def test_same_seed_same_numbers_and_another_seed_differs():
    p = small("coculture_tcell", conditions=(Condition("0", 0.0), Condition("1:10", 0.1)))
    a = run_assay(p, seed=11, days=0.5).table
    b = run_assay(p, seed=11, days=0.5).table
    c = run_assay(p, seed=12, days=0.5).table
    num = a.select_dtypes("number").columns
    np.testing.assert_array_equal(a[num].to_numpy(), b[num].to_numpy())
    assert not np.allclose(a["effector_divisions_per_cell"], c["effector_divisions_per_cell"])


def test_pge2_knockout_removes_the_pge2_part_of_the_il10_rise():
    """Macrophages made PGE2-sensitive (K 0.01 ng/mL): MSCs raise IL-10 and lower p; the PGE2
    knockout keeps < 25% of the rise, and equals WT MSCs with PGE2-blind macrophages (the
    knockout acts through PGE2 and nothing else)."""
    conds = (
        Condition("none", 0.0),
        Condition("msc", 1.0),
        Condition("ko", 1.0, knockouts=("pge2",), pair="msc"),
    )
    p = small("coculture_macrophage", conditions=conds, drive=0.3, arms={})
    sens = run_assay(p, ["biology.macrophage.K.PGE2=0.01"], seed=2, days=0.5).table
    t = sens.set_index("condition")
    rise = t.loc["msc", "medium_IL10_pg_ml"] - t.loc["none", "medium_IL10_pg_ml"]
    assert rise > 0.1  # pg/mL
    assert t.loc["msc", "p_mean"] < t.loc["none", "p_mean"] - 0.2
    kept = t.loc["ko", "il10_rise_kept_fraction"]
    assert -0.05 < kept < 0.25  # Nemeth 2009: the knockout abolishes the rise
    assert t.loc["ko", "floor_PGE2_pg_ml"] == 0.0
    blind = run_assay(p, ["biology.macrophage.K.PGE2=1e12"], seed=2, days=0.5, conditions=["msc"])
    b = blind.table.set_index("condition")
    assert b.loc["msc", "floor_PGE2_pg_ml"] > 0  # made, but not sensed
    assert b.loc["msc", "p_mean"] == pytest.approx(t.loc["ko", "p_mean"], rel=1e-4, abs=1e-6)
    assert b.loc["msc", "medium_IL10_pg_ml"] == pytest.approx(
        t.loc["ko", "medium_IL10_pg_ml"], rel=1e-4, abs=1e-6
    )


def test_protocols_load_and_declare_their_readouts():
    for name in (
        "coculture_tcell",
        "coculture_macrophage",
        "coculture_fls",
        "coculture_chondrocyte",
    ):
        p = load_protocol(name)
        cols = readout_columns(p)
        assert p.reference in [c.label for c in p.conditions]
        assert all(c.startswith(("medium_", "floor_")) for c in cols[: 2 * len(p.medium)])
    assert assay_arms()["mlr_msc"] == ("coculture_tcell", "1:10")
    assert assay_arms()["macrophage_msc_pge2_ko"][0] == "coculture_macrophage"


def _drop(d, key):
    d.pop(key)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d.update(days=-1), "days: -1: must be > 0"),
        (lambda d: d.update(nonsense=1), "nonsense: unknown key"),
        (lambda d: d["target"].update(type="bone"), "target.type: 'bone'; valid: tcell"),
        (lambda d: d.update(stimulus={"IL99": 1}), "stimulus.IL99: unknown key"),
        (lambda d: d.update(reference="1:100"), "reference: '1:100': must be the label of"),
        (lambda d: _drop(d, "well"), "well: missing (required)"),
        (lambda d: d["conditions"][1].update(knockouts=["cox"]), "unknown knockout 'cox'"),
        (lambda d: d["msc"].update(insert_um=1e5), "msc.insert_um: 100000 µm: must lie below"),
        (lambda d: d["arms"].update(x="1:7"), "arms.x: '1:7' is not a condition label"),
    ],
)
def test_bad_protocol_is_one_line_naming_the_key(tmp_path, change, says):
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(load_protocol("coculture_tcell").path))
    change(raw)
    bad = tmp_path / "bad.yaml"
    OmegaConf.save(OmegaConf.create(raw), bad)
    with pytest.raises(AssayError) as exc:
        load_protocol(str(bad))
    msg = str(exc.value)
    assert says in msg and "\n" not in msg and "bad.yaml" in msg


def test_unknown_assay_and_condition():
    with pytest.raises(AssayError, match="unknown assay 'mlr'; valid: coculture_chondrocyte"):
        load_protocol("mlr")
    with pytest.raises(AssayError, match="no condition '1:2'"):
        run_assay("coculture_tcell", conditions=["1:2"], days=0.01)


def test_calibration_computes_the_c4_arms_and_says_why_not():
    assert why_not(("macrophage_msc", "macrophage"), "macrophage_il10", "fold", True) is None
    assert why_not(("mlr_msc",), "effector_proliferation_suppression_pct", "%", False) is None
    assert "in %" in why_not(("mlr_msc",), "effector_proliferation_suppression_pct", "pg/mL", False)
    assert "not a readout" in why_not(("mlr_msc",), "nope", "%", False)
    assert "not conditions of one assay" in why_not(("mlr_msc", "oa"), "x", "1", True)
    got = compute(
        [
            ("rise", ("macrophage_msc", "macrophage"), "macrophage_il10", "fold"),
            ("ko", ("macrophage_msc_pge2_ko",), "il10_rise_kept_fraction", "fraction"),
        ],
        # K 0.01 ng/mL: where the Nemeth pattern appears; a = 0.008 (hand-set): the pattern at
        # the calibrated a is a finding (docs/validation.md), not what this test checks
        {"biology.macrophage.K.PGE2": 0.01, "biology.macrophage.activation_rate": 0.008},
        ["sim.dt_min=2.0"],
        seed=4,
    )
    num, den = got["rise"]
    assert num > den >= 0  # MSCs raise IL-10
    assert math.isfinite(got["ko"][0]) and got["ko"][0] < 1.0


def test_joint_simulator_lists_assay_targets_only_with_assays_on():
    from abm.calibrate.joint import JointSimulator
    from abm.calibrate.targets import load_targets

    ts = [t for t in load_targets() if t.id in ("C3_mlr", "C4_pge2_ko", "Mf_transwell_prot")]
    assert len(ts) == 3
    off = JointSimulator(ts, ["sim.spinup_days=0"])
    assert off.targets == [] and all("assays on" in off.why_not(t) for t in ts)
    on = JointSimulator(ts, ["sim.spinup_days=0"], assays=True)
    assert [t.id for t in on.targets] == [t.id for t in ts] and on.arms == []
