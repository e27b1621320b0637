"""abm-assay (abm.assays.cli): one-line errors with exit code 2 before any work, and a short
run writing OUT/<name>.csv, _timecourse.csv and .png."""

from __future__ import annotations

import pandas as pd
import pytest

from abm.assays.cli import main


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["mlr"], "unknown assay 'mlr'; valid: coculture_chondrocyte"),
        (["coculture_tcell", "biology.nope=1"], "biology.nope"),
        (["coculture_tcell", "--days", "0"], "--days 0: must be > 0"),
        (["coculture_tcell", "--seed", "-1"], "--seed -1: must be >= 0"),
        (["nothere.yaml"], "nothere.yaml: no such protocol file"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, says):
    code, cap = run_main([*argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm-assay: error: ") and says in lines[0]
    assert not (tmp_path / "o").exists()


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    code, cap = run_main(["coculture_tcell", "--out", str(f)], capsys)
    assert code == 2 and "is a file" in cap.err


def test_short_run_writes_table_timecourse_and_figure(tmp_path, capsys):
    out = tmp_path / "assays"
    main(["coculture_macrophage", "--out", str(out), "--days", "0.05", "--quiet", "--seed", "3",
          "biology.msc.secretion.PGE2=6000"])  # fmt: skip
    said = capsys.readouterr().out
    assert "coculture_macrophage:" in said and "msc PGE2 KO" in said
    t = pd.read_csv(out / "coculture_macrophage.csv")
    assert list(t["condition"]) == ["none", "msc", "msc PGE2 KO", "msc transwell"]
    assert (t["seed"] == 3).all() and t["days"].iloc[0] == pytest.approx(0.05, abs=1e-3)
    ko = t.set_index("condition").loc["msc PGE2 KO"]
    assert ko["medium_PGE2_pg_ml"] == 0 and t.loc[1, "medium_PGE2_pg_ml"] > 0
    tc = pd.read_csv(out / "coculture_macrophage_timecourse.csv")
    assert set(tc["condition"]) == set(t["condition"]) and tc["time_h"].max() == pytest.approx(1.2)
    assert (out / "coculture_macrophage.png").stat().st_size > 1000
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
