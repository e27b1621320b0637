"""The abm-calibrate command: the toy end to end on two worker processes (outputs, the
calibrated overrides with the run id, continuing with more generations, refusing another
request), one-line errors with exit code 2 before any simulation, and a smoke run of the joint
model on a tiny lattice (2 particles, 1 generation)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from abm.calibrate import abc
from abm.cli.calibrate import main

TINY = ["lattice.shape=[60,40]", "lattice.dx_um=25", "sim.days=0.05", "sim.spinup_days=0"]
RATE = "biology.macrophage.activation_rate"


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr()


def test_toy_end_to_end_and_continue(tmp_path, capsys):
    out = tmp_path / "toy"
    argv = [
        "--model",
        "toy",
        "--out",
        str(out),
        "--population",
        "40",
        "--generations",
        "3",
        "--jobs",
        "2",
        "--predictive",
        "5",
        "--quiet",
    ]
    main(argv)
    said = capsys.readouterr().out
    assert "one evaluation took" in said and "targets held out" in said
    for name in (*abc.OUTPUTS, abc.DB, abc.REQUEST, abc.RUN):
        assert (out / name).is_file(), name
    run = json.loads((out / abc.RUN).read_text())
    assert run["generations"] == 3
    cal = yaml.safe_load((out / abc.CALIBRATED).read_text())
    assert cal["run_id"] == run["run_id"]
    assert cal["source"] == f"calibrated (posterior median, run {run['run_id']})"
    summ = pd.read_csv(out / abc.SUMMARY).set_index("parameter")
    assert cal["values"]["toy.decay"] == pytest.approx(summ.loc["toy.decay", "median"], rel=1e-5)
    post = pd.read_csv(out / abc.POSTERIOR)
    assert len(post) == 40 and post["generation"].eq(2).all()
    assert post["weight"].sum() == pytest.approx(1.0)
    pred = pd.read_csv(out / abc.PREDICTIVE)
    assert set(pred["id"]) == {"steady_level", "half_time", "quiet_level", "level_day5"}
    assert (pred["n_draws"] == 5).all()
    each = pd.read_csv(out / abc.PREDICTIVE_DRAWS)
    assert len(each) == 5 and set(each["particle"]) <= set(post["particle"])
    med = each["readout:half_time"].median()
    assert med == pytest.approx(pred.set_index("id").loc["half_time", "q50"])

    main([*argv[:7], "4", *argv[8:]])  # the same request, one generation more
    said = capsys.readouterr().out
    assert f"continuing run {run['run_id']}" in said and "(3 generation(s) stored" in said
    run2 = json.loads((out / abc.RUN).read_text())
    assert run2["run_id"] == run["run_id"] and run2["generations"] == 4
    assert pd.read_csv(out / abc.POSTERIOR)["generation"].eq(3).all()

    code, cap = run_main([*argv[:4], "--population", "41", *argv[6:]], capsys)
    assert code == 2 and "holds another calibration (it differs in: population)" in cap.err
    assert cap.err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--model", "toy", "--population", "1"], "--population 1: need >= 2"),
        (["--model", "toy", "--generations", "0"], "--generations 0"),
        (["--model", "toy", "--jobs", "0"], "--jobs 0"),
        (["--model", "toy", "--min-epsilon", "-1"], "--min-epsilon"),
        (["--model", "toy", "sim.days=3"], "overrides are for --model joint"),
        (["--model", "toy", "--param", RATE], "the toy's parameters are"),
        (["--model", "toy", "--range", "toy.decay=2:1"], "need 0 < LO < HI"),
        (["--model", "toy", "--range", "toy.decay"], "expected KEY=LO:HI"),
        (["--model", "joint", *TINY], "--param: give the parameters"),
        (["--model", "joint", "--param", "biology.nope", *TINY], "biology.nope"),
        (["--model", "joint", "--param", RATE, "scenario=healthy"], "scenario is set by"),
        (["--model", "joint", "--param", RATE, "lattice.dx_um=abc"], "lattice.dx_um"),
        (["--model", "joint", "--param", RATE, "--targets", "/nonexistent.csv"], "no such file"),
        (
            ["--model", "joint", "--param", RATE, "--range", "biology.fls.capacity=0.1:0.2"],
            "not one of the --param keys",
        ),
        (["--model", "nope"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_any_work(tmp_path, capsys, extra, words):
    out = tmp_path / "cal"
    code, cap = run_main(["--out", str(out), *extra], capsys)
    assert code == 2
    assert cap.err.startswith("abm-calibrate: error: ") and cap.err.count("\n") == 1
    assert words in cap.err
    assert not out.exists()


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    code, cap = run_main(["--model", "toy", "--out", str(f)], capsys)
    assert code == 2 and "is a file" in cap.err


def test_joint_smoke(tmp_path, capsys):
    """The joint model wired in: C1 readouts computed from both untreated arms, the targets it
    cannot compute listed and skipped, every output written (2 particles, 1 generation)."""
    out = tmp_path / "joint"
    main(
        [
            "--model",
            "joint",
            "--out",
            str(out),
            "--param",
            RATE,
            "--population",
            "2",
            "--generations",
            "1",
            "--jobs",
            "1",
            "--predictive",
            "2",
            "--quiet",
            *TINY,
        ]
    )
    said = capsys.readouterr().out
    assert "skipped (not computed by this model)" in said and "C3_mlr" in said
    used = pd.read_csv(out / abc.TARGETS_USED).set_index("id")
    assert used.loc["C1a_il6", "used"] == "distance"
    assert used.loc["C1c_il6_ratio", "used"] == "distance"
    assert used.loc["C6_primed", "used"].startswith("skipped")
    assert used.loc["C2_msc_day30", "used"].startswith("skipped")
    post = pd.read_csv(out / abc.POSTERIOR)
    assert len(post) == 2 and post[RATE].between(0.0008, 0.08).all()
    for col in ("readout:C1a_il6", "readout:C1b_tnf_healthy", "readout:C1c_il6_ratio"):
        assert (post[col] > 0).all(), col
    # the ratio is the OA level over the healthy one (same particle, same seed)
    pred = pd.read_csv(out / abc.PREDICTIVE).set_index("id")
    assert pred.loc["C1a_il6", "n_draws"] == 2
    assert pred.loc["C3_mlr", "verdict"].startswith("not computed")
    # the therapy arms (hold-outs) are computed for the predictive check only
    assert pred.loc["C6_primed", "n_draws"] == 2
    assert not pred.loc["C6_primed", "verdict"].startswith("not computed")
    cal = yaml.safe_load((out / abc.CALIBRATED).read_text())
    assert list(cal["values"]) == [RATE] and cal["overrides"][0].startswith(f"{RATE}=")


def test_help(capsys):
    code, cap = run_main(["--help"], capsys)
    assert code == 0
    assert "usage: abm-calibrate" in cap.out and "--generations" in cap.out


def test_assays_flag_is_for_the_joint_model(capsys, tmp_path):
    code, cap = run_main(["--model", "toy", "--assays", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--assays is for --model joint" in cap.err
    assert not (tmp_path / "o").exists()
