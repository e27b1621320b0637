"""abm-sweep-report: tidy tables and plots from a multirun folder (built here by hand)."""

from __future__ import annotations

import pandas as pd
import pytest

from abm.cli.sweep_report import main
from abm.model import metric_names


def fake_sweep(root, doses=(1e6, 1e7), seeds=(0, 1)):
    job = 0
    for dose in doses:
        for seed in seeds:
            d = root / str(job)
            (d / ".hydra").mkdir(parents=True)
            (d / ".hydra" / "overrides.yaml").write_text(f"- therapy.dose={dose}\n- seed={seed}\n")
            t = [0.0, 360.0, 720.0]
            cols = {n: [float(job + k) for k in range(3)] for n in metric_names()}
            cols["time_min"] = t
            cols["cartilage_agg"] = [1.0, 0.9, 0.8 + dose / 1e8]
            pd.DataFrame(cols)[metric_names()].to_csv(d / "metrics.csv", index=False)
            job += 1


def test_tables_and_plots(tmp_path, capsys):
    fake_sweep(tmp_path)
    main([str(tmp_path)])
    final = pd.read_csv(tmp_path / "sweep_final.csv")
    assert len(final) == 4
    assert list(final.columns[:3]) == ["job", "therapy.dose", "seed"]
    assert final.loc[final["therapy.dose"] == 1e7, "cartilage_agg"].iloc[0] == pytest.approx(0.9)
    series = pd.read_csv(tmp_path / "sweep_timeseries.csv")
    assert len(series) == 4 * 3 * (len(metric_names()) - 1)
    assert set(series["time_day"]) == {0.0, 0.25, 0.5}
    assert (tmp_path / "sweep_therapy_dose.png").stat().st_size > 1000
    assert (tmp_path / "sweep_timecourses.png").is_file()
    assert "4 jobs" in capsys.readouterr().out


def test_not_a_sweep_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no job folders" in err[0]
