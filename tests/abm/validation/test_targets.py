"""Each target check on the tiny cached validation: rows in the table's format, a figure; the
command line's --replot writes the table."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from abm.validation import cli, report
from abm.validation.verdicts import COLUMNS, VERDICTS


@pytest.mark.parametrize("target", list(report.TARGETS))
def test_check_gives_rows_and_a_figure(tiny_runs, target):
    check, _ = report.TARGETS[target]
    rows, fig = check(tiny_runs)
    assert rows
    for r in rows:
        assert tuple(r) == COLUMNS
        assert r["target"] == target
        assert r["verdict"] in VERDICTS
        assert math.isfinite(r["value"]) or r["verdict"] == "n/a", r
        assert isinstance(r["check"], str) and r["check"]
    assert isinstance(fig, Figure)
    assert fig.axes


def test_the_tiny_runs_cover_every_window(tiny_runs):
    """The short windows of C3-C6 hold rows: their verdicts are graded, not n/a."""
    rows, _ = report.TARGETS["C5"][0](tiny_runs)
    assert all(r["verdict"] != "n/a" for r in rows)


def test_replot_writes_the_table_and_figures(tiny_runs, tmp_path, capsys):
    out = tmp_path / "figures"
    argv = ["--replot", "--cache", str(tiny_runs.cache), "--out", str(out),
            "--days", str(tiny_runs.days), "--long-days", str(tiny_runs.long_days),
            "--seeds", *map(str, tiny_runs.seeds)]  # fmt: skip
    assert cli.main(argv) == 0
    table = pd.read_csv(out / report.CSV_NAME, keep_default_na=False)
    assert tuple(table.columns) == COLUMNS
    assert list(dict.fromkeys(table.target)) == list(report.TARGETS)
    assert set(table.verdict) <= VERDICTS
    assert {p.name for p in out.glob("*.png")} == {name for _, name in report.TARGETS.values()}
    assert "results in" in capsys.readouterr().out


def test_replot_without_cached_runs_says_what_is_missing(tmp_path, capsys):
    assert cli.main(["--replot", "--cache", str(tmp_path), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no cached run of arm 'healthy'" in err and "--replot" in err
