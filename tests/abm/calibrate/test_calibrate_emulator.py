"""Emulator-assisted calibration (abm.calibrate.emulator, ``abm-calibrate --emulator N``): the
design grows by prefixes and resumes without re-simulating; a failed point is recorded, not
fatal; a design of another request is refused; the screen keeps a parameter that matters and
drops one that does not; the Gaussian-process emulator's leave-one-out intervals cover a known
function; the toy calibrated through its emulator recovers the true values, and the command
refuses a changed request before simulating anything."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm.calibrate import emulator as em
from abm.calibrate import toy
from abm.calibrate.targets import Target
from abm.cli.calibrate import main
from abm.sweep.sensitivity import Factor

FS = [Factor("a", 0.1, 10.0, True), Factor("b", 0.0, 1.0, False)]


def target(tid: str, role: str = "calibrate") -> Target:
    return Target(id=tid, readout=tid, arm="toy", window=None, kind="level", value=1.0,
                  lower=math.nan, upper=math.nan, unit="1", tol=0.1, species="",
                  source="test", role=role)  # fmt: skip


class Counting:
    """y = a**2 (b irrelevant) and z = 10**b (a irrelevant), with 2% noise; counts calls; raises
    when a > 9.5 and fail is set."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, values):
        self.calls += 1
        if self.fail and values["a"] > 9.5:
            raise RuntimeError("blew up\nsecond line")
        rng = np.random.default_rng(int(1e6 * values["b"]) + int(1e3 * values["a"]))
        return {"y": values["a"] ** 2 * (1 + 0.02 * rng.standard_normal()),
                "z": 10 ** values["b"] * (1 + 0.02 * rng.standard_normal())}  # fmt: skip


TARGETS = [target("y"), target("z", "hold_out")]


def req(seed: int = 0) -> dict:
    return em.design_request("test", FS, TARGETS, ["x=1"], seed)


def test_design_prefixes_are_designs():
    x = em.design_points(FS, 16, seed=3)
    assert np.array_equal(em.design_points(FS, 10, seed=3), x[:10])
    assert not np.array_equal(em.design_points(FS, 10, seed=4), x[:10])
    assert x[:, 0].min() >= -1 and x[:, 0].max() <= 1  # log10 of 0.1..10
    assert x[:, 1].min() >= 0 and x[:, 1].max() <= 1
    # space filling: every half of each axis holds half of the 16 points (a Sobol property)
    assert (x[:, 0] < 0).sum() == 8 and (x[:, 1] < 0.5).sum() == 8


def test_design_resumes_grows_and_records_failures(tmp_path):
    sim = Counting(fail=True)
    t6 = em.run_design(sim, FS, TARGETS, req(), tmp_path, 6, progress=False)
    assert sim.calls == 6 and list(t6["point"]) == list(range(6))
    t10 = em.run_design(sim, FS, TARGETS, req(), tmp_path, 10, progress=False)
    assert sim.calls == 10 and list(t10["point"]) == list(range(10))
    pd.testing.assert_frame_equal(t10.iloc[:6], t6)
    again = em.run_design(sim, FS, TARGETS, req(), tmp_path, 8, progress=False)
    assert sim.calls == 10 and len(again) == 8  # nothing re-simulated
    x = em.design_points(FS, 10)
    assert np.allclose(t10["a"], 10 ** x[:, 0]) and np.allclose(t10["sampled:a"], x[:, 0])
    bad = t10[t10["a"] > 9.5]
    good = t10[t10["a"] <= 9.5]
    if len(bad):
        assert (bad["error"] == "blew up").all() and bad["readout:y"].isna().all()
    assert good["error"].isna().all()
    assert np.allclose(good["readout:y"], good["a"] ** 2, rtol=0.1)


def test_design_of_another_request_is_refused(tmp_path):
    em.run_design(Counting(), FS, TARGETS, req(), tmp_path, 3, progress=False)
    with pytest.raises(em.DesignError, match="differs in: seed"):
        em.design_state(tmp_path, req(seed=1))


def test_design_with_workers_matches_one_process(tmp_path):
    one = em.run_design(Counting(), FS, TARGETS, req(), tmp_path / "1", 8, progress=False)
    two = em.run_design(Counting(), FS, TARGETS, req(), tmp_path / "2", 8, jobs=2, progress=False)
    cols = [c for c in one.columns if c != "seconds"]
    pd.testing.assert_frame_equal(one[cols], two[cols])


def test_screen_keeps_what_matters_and_drops_the_rest(tmp_path):
    table = em.run_design(Counting(), FS, TARGETS, req(), tmp_path, 32, progress=False)
    scr = em.screen(table, FS, TARGETS, resamples=200).set_index(["target", "parameter"])
    assert scr.loc[("y", "a"), "influential"] and scr.loc[("y", "a"), "prcc"] > 0.9
    assert not scr.loc[("y", "b"), "influential"]
    assert scr.loc[("z", "b"), "influential"] and not scr.loc[("z", "a"), "influential"]
    # only calibrate targets choose: z (a hold-out) does not bring b in
    assert [f.key for f in em.influential(scr.reset_index(), FS)] == ["a"]
    text = em.screen_text(scr.reset_index(), FS)
    assert "a: max |PRCC| +" in text and "-> kept" in text and "b: " in text
    assert "fixed at its config value" in text


def test_emulator_loo_covers_a_known_function(tmp_path):
    table = em.run_design(Counting(), FS, TARGETS, req(), tmp_path, 24, progress=False)
    emu = em.Emulator(table, FS[:1], TARGETS)  # y on a only; z's b-dependence becomes noise
    diag = emu.diagnostics(TARGETS).set_index("target")
    assert diag.loc["y", "loo_rmse_log10"] < 0.05  # log10(a^2) is smooth in log10 a
    assert diag.loc["y", "loo_r2"] > 0.98 and diag.loc["y", "loo_within_95"] >= 0.8
    # z depends only on b, which the emulator does not see: it must say so with its noise
    assert diag.loc["z", "loo_r2"] < 0.5 and diag.loc["z", "noise_sd_log10"] > 0.1
    mu, sd = emu.predict("y", np.array([[0.5]]))  # a = 10**0.5: log10 y = 1
    assert mu[0] == pytest.approx(1.0, abs=0.05) and sd[0] < 0.05
    model = em.EmulatedModel(emu, ["y", "z"], seed=0)
    first = model({"a": 0.5, "b": 0.3})
    assert first == model({"a": 0.5, "b": 0.3})  # one draw per particle
    assert math.log10(first["y"]) == pytest.approx(1.0, abs=0.2)
    em.screen_chart(em.screen(table, FS, TARGETS, resamples=50), tmp_path / "s.png")
    em.emulator_chart(emu, TARGETS, tmp_path / "e.png")
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "e.png").stat().st_size > 1000


def test_toy_through_its_emulator_recovers_the_truth(tmp_path, capsys):
    out = tmp_path / "toy"
    argv = ["--model", "toy", "--out", str(out), "--emulator", "24", "--population", "150",
            "--generations", "6", "--jobs", "1", "--predictive", "4", "--quiet"]  # fmt: skip
    main(argv)
    said = capsys.readouterr().out
    assert "design: 24 points (0 failed)" in said and "emulators (log10 readouts" in said
    for name in (em.DESIGN, em.SCREEN, em.EMULATOR, em.SCREEN_PNG, em.EMULATOR_PNG):
        assert (out / em.DESIGN_DIR / name).is_file(), name
    summ = pd.read_csv(out / "posterior_summary.csv").set_index("parameter")
    assert summ["true_in_ci"].all(), summ
    assert (summ["ci_width_of_prior"] < 0.4).all()
    for key, true in toy.TRUE.items():  # the median within a factor 2 of the truth
        assert abs(math.log10(summ.loc[key, "median"] / true)) < math.log10(2)
    # a changed request is refused before any design point is simulated
    with pytest.raises(SystemExit) as exc:
        main([*argv[:5], "32", *argv[6:]])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "differs in: emulator" in err and err.count("\n") == 1
    assert len(pd.read_csv(out / em.DESIGN_DIR / em.DESIGN)) == 24


def test_log_readouts_clip_three_decades_beyond_the_band():
    t = target("y")  # level 1, tolerance 0.1: band 10**-0.1 .. 10**0.1
    table = pd.DataFrame({"readout:y": [0.0, -1.0, 1.0, 100.0, 1e9, math.inf, math.nan]})
    got = em.log_readouts(table, t)
    assert got[:5] == pytest.approx([-3.1, -3.1, 0.0, 2.0, 3.1])
    assert got[5] == pytest.approx(3.1) and math.isnan(got[6])


def test_too_small_a_design_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--model", "toy", "--out", str(tmp_path / "t"), "--emulator", "4", "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--emulator 4: need 0 (off) or a design of >= 8" in err
    with pytest.raises(SystemExit) as exc:
        main(["--model", "joint", "--out", str(tmp_path / "j"), "--emulator", "9", "--quiet",
              *(f"--param=biology.macrophage.{k}" for k in ("activation_rate",
                "resolution_rate", "capacity", "secretion.TNF", "secretion.IL1b",
                "secretion.IL6", "secretion.CCL2")), "sim.days=0.01"])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "needs at least 10 design points" in err
    assert err.count("\n") == 1 and not (tmp_path / "j" / "design").exists()


def test_a_row_cut_off_by_a_kill_is_simulated_again(tmp_path):
    sim = Counting()
    em.run_design(sim, FS, TARGETS, req(), tmp_path, 4, progress=False)
    path = tmp_path / em.DESIGN
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # point 3 half written
    table = em.run_design(sim, FS, TARGETS, req(), tmp_path, 4, progress=False)
    assert sim.calls == 5 and list(table["point"]) == [0, 1, 2, 3]
    assert table["readout:y"].notna().all()
