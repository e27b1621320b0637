"""abm.sweep.collect on sweep folders built by hand: job states, parameters, readouts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from abm import lock
from abm.sweep.collect import collect_jobs, readouts, varying_keys

METRICS = ("time_min", "il1b_fluid", "cartilage_agg")


def make_job(
    root: Path,
    name: str,
    overrides: list[str],
    *,
    status: str | None = "complete",
    error: str | None = None,
    wall_s: float | None = 1.0,
    design: dict | None = None,
    times: list[float] | None = None,
    values: dict[str, list[float]] | None = None,
    metric_names: tuple[str, ...] = METRICS,
    days: float | None = None,
) -> Path:
    """A job folder as ``abm-run -m`` writes it: ``.hydra/overrides.yaml``, ``status.json``
    (``status`` None: none, as before status files existed), ``metrics.csv`` (``times`` None:
    none) and, with ``days``, ``.hydra/config.yaml`` holding ``sim.days``."""
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    if days is not None:
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"sim": {"days": days}}))
    if status is not None:
        record = {
            "status": status,
            "overrides": list(overrides),
            "error": error,
            "wall_s": wall_s,
            "design": design or {},
            "host": "h",
            "pid": 1,
        }
        (job / "status.json").write_text(json.dumps(record))
    if times is not None:
        cols = {m: np.arange(len(times), dtype=float) for m in metric_names}
        cols["time_min"] = np.asarray(times, dtype=float)
        cols.update(
            {k: np.asarray(v[: len(times)], dtype=float) for k, v in (values or {}).items()}
        )
        pd.DataFrame(cols)[list(metric_names)].to_csv(job / "metrics.csv", index=False)
    return job


def test_states_parameters_and_varying_keys(tmp_path):
    t = [0.0, 720.0, 1440.0]
    make_job(
        tmp_path, "seed=0,therapy.dose=1e6", ["therapy.dose=1e6", "seed=0", "sim.days=1"], times=t
    )
    make_job(
        tmp_path, "seed=1,therapy.dose=1e6", ["therapy.dose=1e6", "seed=1", "sim.days=1"], times=t
    )
    make_job(
        tmp_path,
        "seed=0,therapy.dose=1e7",
        ["therapy.dose=1e7", "seed=0", "sim.days=1"],
        status="failed",
        error="SimulationError: IL1b negative\nsecond line",
        times=t[:2],
    )
    make_job(
        tmp_path,
        "seed=1,therapy.dose=1e7",
        ["therapy.dose=1e7", "seed=1", "sim.days=1"],
        status="running",
        wall_s=None,
        times=t[:1],
    )
    (tmp_path / ".jobs").mkdir()  # hidden folders are never jobs
    (tmp_path / "notes").mkdir()  # nor folders without job files
    jobs = collect_jobs(tmp_path)
    assert list(jobs.columns) == [
        "job",
        "status",
        "error",
        "wall_s",
        "path",
        "therapy.dose",
        "seed",
        "sim.days",
    ]
    assert len(jobs) == 4
    by = jobs.set_index("job")
    assert by.loc["seed=0,therapy.dose=1e6", "status"] == "complete"
    assert by.loc["seed=0,therapy.dose=1e7", "status"] == "failed"
    assert by.loc["seed=0,therapy.dose=1e7", "error"] == "SimulationError: IL1b negative"
    # "running" in status.json but nobody holds the folder's lock: killed, node lost
    assert by.loc["seed=1,therapy.dose=1e7", "status"] == "unfinished"
    assert "stopped" in by.loc["seed=1,therapy.dose=1e7", "error"]
    assert jobs["therapy.dose"].dtype == float and set(jobs["therapy.dose"]) == {1e6, 1e7}
    assert jobs["seed"].dtype == np.int64
    assert by.loc["seed=0,therapy.dose=1e6", "wall_s"] == 1.0
    assert varying_keys(jobs) == ["therapy.dose", "seed"]  # sim.days is the same everywhere
    assert varying_keys(jobs[jobs["seed"] == 0]) == ["therapy.dose"]


def test_a_live_writer_is_running(tmp_path):
    job = make_job(tmp_path, "seed=0", ["seed=0"], status="running", times=[0.0])
    with lock.acquire(job):
        assert collect_jobs(tmp_path)["status"].tolist() == ["running"]
    assert collect_jobs(tmp_path)["status"].tolist() == ["unfinished"]


def test_prefixes_strings_and_damaged_status(tmp_path):
    make_job(
        tmp_path,
        "a",
        ["+experiment=validation_oa", "~therapy", "scenario=oa", "seed=0"],
        times=[0.0],
    )
    make_job(
        tmp_path,
        "b",
        ["+experiment=validation_oa", "~therapy", "scenario=oa_mild", "seed=0.5"],
        times=[0.0],
    )
    make_job(tmp_path, "c", ["scenario=oa", "seed=x"], times=[0.0])
    (tmp_path / "c" / "status.json").write_text("{not json")
    jobs = collect_jobs(tmp_path)
    assert {"experiment", "therapy", "scenario", "seed"} <= set(jobs.columns)
    assert jobs["seed"].tolist() == ["0", "0.5", "x"]  # not all numbers: left as written
    assert jobs.set_index("job").loc["c", "status"] == "unfinished"
    assert varying_keys(jobs) == ["experiment", "therapy", "scenario", "seed"]


def test_design_rows_become_columns(tmp_path):
    design = tmp_path / "design.csv"
    pd.DataFrame(
        {
            "row": [0, 1, 2],
            "therapy.dose": [1e6, 1e7, 1e8],
            "biology.msc.half_life_days": [2.0, 2.0, 4.0],
        }
    ).to_csv(design, index=False)
    sweep = tmp_path / "sweep"
    for row in range(3):
        over = [f"design.file={design}", f"design.row={row}", "seed=0"]
        if row < 2:  # the job recorded the values it applied
            values = pd.read_csv(design).iloc[row].drop("row").to_dict()
            make_job(sweep, f"row{row}", over, design=values, times=[0.0])
        else:  # no design in status.json: read from the design file
            make_job(sweep, f"row{row}", over, times=[0.0])
    jobs = collect_jobs(sweep)
    assert jobs["therapy.dose"].tolist() == [1e6, 1e7, 1e8]
    assert jobs["biology.msc.half_life_days"].tolist() == [2.0, 2.0, 4.0]
    assert jobs["design.row"].tolist() == [0, 1, 2]
    assert jobs.attrs["design_keys"] == ["therapy.dose", "biology.msc.half_life_days"]
    assert varying_keys(jobs) == ["therapy.dose", "biology.msc.half_life_days"]


def test_folders_without_status_json(tmp_path):
    """Sweeps written before status files: complete when metrics.csv reaches sim.days."""
    make_job(tmp_path, "0", ["seed=0"], status=None, times=[0.0, 720.0, 1440.0], days=1.0)
    make_job(tmp_path, "1", ["seed=1"], status=None, times=[0.0, 720.0], days=1.0)
    make_job(tmp_path, "2", ["seed=2"], status=None, times=None)
    make_job(tmp_path, "10", ["seed=10"], status=None, times=[0.0])  # no config: has rows
    jobs = collect_jobs(tmp_path)
    assert jobs["job"].tolist() == ["0", "1", "2", "10"]  # natural order
    assert jobs["status"].tolist() == ["complete", "unfinished", "unfinished", "complete"]
    assert "stopped at day 0.5 of 1" in jobs["error"][1]


def test_missing_jobs_from_multirun_yaml(tmp_path):
    (tmp_path / "multirun.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "sweeper": {
                        "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                        "max_batch_size": None,
                        "params": None,
                    },
                    "overrides": {"task": ["seed=0,1", "therapy.dose=1e6,1e7", "sim.days=1"]},
                }
            }
        )
    )
    make_job(tmp_path, "first", ["seed=0", "therapy.dose=1e6", "sim.days=1"], times=[0.0])
    make_job(tmp_path, "second", ["seed=1", "therapy.dose=1e7", "sim.days=1"], times=[0.0])
    jobs = collect_jobs(tmp_path)
    assert len(jobs) == 4
    missing = jobs[jobs["status"] == "missing"]
    assert sorted(zip(missing["seed"], missing["therapy.dose"], strict=True)) == [
        (0, 1e7),
        (1, 1e6),
    ]
    # named as abm-run names job folders: the sorted overrides, as Hydra writes them
    assert set(missing["job"]) == {
        "seed=0,sim.days=1,therapy.dose=10000000.0",
        "seed=1,sim.days=1,therapy.dose=1000000.0",
    }
    assert varying_keys(jobs) == ["seed", "therapy.dose"]


def test_readouts_at_days_and_windows(tmp_path):
    t = [0.0, 360.0, 720.0, 1080.0, 1440.0]  # days 0, .25, .5, .75, 1
    make_job(tmp_path, "a", ["seed=0"], times=t, values={"il1b_fluid": [0, 1, 2, 3, 4]})
    make_job(tmp_path, "b", ["seed=1"], times=t[:3], values={"il1b_fluid": [10, 20, 30]})
    make_job(tmp_path, "c", ["seed=2"], status="failed", times=t)
    jobs = collect_jobs(tmp_path)
    long = readouts(jobs, ["il1b_fluid"], [0.0, 0.3, 0.5, 1.0])
    assert list(long.columns) == ["job", "time_day", "metric", "value"]
    assert set(long["job"]) == {"a", "b"}  # complete jobs only
    got = long.set_index(["job", "time_day"])["value"]
    assert got[("a", 0.3)] == 1.0  # the last row at or before the day
    assert got[("a", 0.5)] == 2.0 and got[("a", 1.0)] == 4.0
    assert got[("b", 0.5)] == 30.0
    assert math.isnan(got[("b", 1.0)])  # b stopped at day 0.5
    win = readouts(jobs, "il1b_fluid", [1.0], window_days=0.5).set_index("job")["value"]
    assert win["a"] == pytest.approx((3 + 4) / 2)  # rows in (0.5, 1]
    assert math.isnan(win["b"])
    every = readouts(jobs, None, 0.5)
    assert set(every["metric"]) == {"il1b_fluid", "cartilage_agg"}
    with pytest.raises(ValueError, match="window_days"):
        readouts(jobs, None, [1.0], window_days=-1)


def test_empty_folder(tmp_path):
    jobs = collect_jobs(tmp_path)
    assert jobs.empty and list(jobs.columns) == ["job", "status", "error", "wall_s", "path"]
    assert varying_keys(jobs) == []
    assert readouts(jobs, None, [1.0]).empty
