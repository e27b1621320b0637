"""Launchers and experiment configs of ``abm-run -m``: joblib (worker processes, reused), the
submitit local executor (the cluster path on one machine), the Slurm config (composed and
instantiated, never submitted), a missing plugin, and every conf/experiment sweep."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from importlib.resources import files

import pandas as pd
import pytest
import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from abm.backend import cuda_device_count
from abm.cli.run import _precheck_sweep, sweep_jobs
from abm.config import compose
from abm.lock import LOCK_FILE
from abm.replay import load_run
from abm.runner import simulate
from abm.sweep.status import read_status
from tests.abm.sweep.test_jobs import SMALL

NEW_EXPERIMENTS = ("dose_response", "knockout_panel", "injection_timing", "comparators", "seeds")


def abm_run(*args, timeout=240):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "abm", *args], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def statuses(sweep) -> dict[str, str]:
    with open(sweep / "sweep_status.csv", newline="") as fh:
        return {row["job"]: row["status"] for row in csv.DictReader(fh)}


def test_joblib_jobs_run_in_a_reused_worker_and_each_starts_fresh(tmp_path):
    sweep = tmp_path / "sweep"
    res = abm_run("-m", *SMALL, "seed=0,1", f"hydra.sweep.dir={sweep}", "hydra/launcher=joblib",
                  "hydra.launcher.n_jobs=1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Joblib.Parallel(n_jobs=1,backend=loky" in res.stdout
    assert statuses(sweep) == {"seed=0": "complete", "seed=1": "complete"}
    first, second = (read_status(sweep / f"seed={s}") for s in (0, 1))
    assert first["pid"] == second["pid"] != os.getpid()  # one worker process ran both jobs
    for seed in (0, 1):
        job = sweep / f"seed={seed}"
        log = (job / "run.log").read_text()
        assert log.count("run folder ") == 1 and f"run folder {job}\n" in log  # its own log only
        assert not (job / LOCK_FILE).exists()
        ref = tmp_path / f"ref{seed}"
        simulate(compose([*SMALL, f"seed={seed}"]), ref)  # a fresh process's run of the job
        with load_run(job) as a, load_run(ref) as b:
            pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
    # the report of this sweep: one swept column (seed); the constant overrides are not columns
    from abm.cli.sweep_report import main as sweep_report
    from abm.model import metric_names

    sweep_report([str(sweep)])
    final = pd.read_csv(sweep / "sweep_final.csv")
    assert [c for c in final.columns if c not in metric_names()] == ["job", "seed"]
    assert sorted(final["seed"]) == [0, 1] and (sweep / "sweep_report.html").is_file()


def test_submitit_local_launcher_runs_a_job(tmp_path):
    sweep = tmp_path / "sweep"
    res = abm_run("-m", *SMALL, "seed=3", f"hydra.sweep.dir={sweep}", "hydra/launcher=local")
    assert res.returncode == 0, res.stderr
    assert "Submitit 'local' sweep output dir" in res.stdout
    assert "1 jobs: 1 complete, 0 skipped, 0 failed" in res.stdout
    status = read_status(sweep / "default")
    assert status["status"] == "complete" and status["pid"] != os.getpid()
    assert status["overrides"][-1] == "seed=3"
    assert (sweep / ".submitit").is_dir() and (sweep / "default" / "metrics.csv").is_file()


def _launcher(*overrides):
    with initialize_config_module(config_module="abm.conf", version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(("backend", "gpus"), [("cupy", 1), ("numpy", None), ("auto", None)])
def test_slurm_config_asks_for_a_gpu_only_with_cupy(backend, gpus):
    cfg = _launcher("hydra/launcher=slurm", f"backend={backend}")
    node = cfg.hydra.launcher
    assert node._target_.endswith("submitit_launcher.SlurmLauncher")
    assert node.gpus_per_node == gpus
    assert (node.partition, node.timeout_min, node.mem_gb) == (None, 240, 8)
    assert (node.cpus_per_task, node.array_parallelism, node.max_num_timeout) == (1, 64, 3)
    launcher = instantiate(node)  # as Hydra builds it: nothing is submitted
    assert launcher.params["gpus_per_node"] == gpus and launcher.params["timeout_min"] == 240
    local = _launcher("hydra/launcher=local", f"backend={backend}").hydra.launcher
    assert local._target_.endswith("submitit_launcher.LocalLauncher")
    assert local.gpus_per_node == gpus


def test_slurm_sweep_is_checked_without_this_machines_gpu():
    jobs = ["backend=cupy", "seed=0,1", *SMALL[:2], "sim.spinup_days=0"]
    _precheck_sweep([*jobs, "hydra/launcher=slurm"])  # the nodes have the GPUs: no refusal here
    if cuda_device_count() == 0:
        with pytest.raises(SystemExit) as exc:
            _precheck_sweep([*jobs, "hydra/launcher=joblib"])  # jobs on this machine: refused
        assert exc.value.code == 2
    with pytest.raises(SystemExit):  # a bad value is still refused
        _precheck_sweep([*jobs, "therapy.dose=-1", "hydra/launcher=slurm"])


# abm-run with a launcher plugin missing (as in an install without the extra)
HIDE = """
import sys
sys.modules[sys.argv[2]] = None
from abm.cli.run import main
sys.argv[1:] = sys.argv[3:]
main()
"""


@pytest.mark.parametrize(
    ("launcher", "module", "fix"),
    [
        ("slurm", "hydra_plugins.hydra_submitit_launcher", 'pip install -e ".[cluster]"'),
        ("local", "submitit", 'pip install -e ".[cluster]"'),
        ("joblib", "hydra_plugins.hydra_joblib_launcher", "pip install -e ."),
    ],
)
def test_missing_launcher_plugin_is_one_line_naming_the_install(tmp_path, launcher, module, fix):
    res = subprocess.run(
        [sys.executable, "-c", HIDE, "-", module, "-m", "seed=0,1", f"hydra/launcher={launcher}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"abm-run: error: hydra/launcher={launcher} needs the ")
    assert lines[0].endswith(fix)
    assert not (tmp_path / "sweep").exists()


# -- experiment configs ----------------------------------------------------------------------


def _experiment(name: str) -> tuple[str, dict]:
    text = (files("abm.conf") / "experiment" / f"{name}.yaml").read_text(encoding="utf-8")
    return text, yaml.safe_load(text)


@pytest.mark.parametrize("name", NEW_EXPERIMENTS)
def test_experiment_composes_every_job_of_its_sweep(name):
    text, data = _experiment(name)
    assert text.startswith("# @package _global_\n")
    assert f"abm-run -m +experiment={name}" in text  # the header says how to run it
    params = data["hydra"]["sweeper"]["params"]
    assert params
    jobs = sweep_jobs([f"+experiment={name}"])
    (claimed,) = {int(n) for n in re.findall(r"^# (\d+) jobs", text, re.M)}
    assert len(jobs) == claimed  # the header's job count is the sweep's
    swept = {key.lstrip("+") for key in params}
    seen: dict[str, set] = {key: set() for key in swept}
    for job in jobs:
        cfg = compose(job)
        assert cfg.scenario.name == "oa"
        for item in job:
            key, _, value = item.partition("=")
            if key.lstrip("+") in swept:
                seen[key.lstrip("+")].add(value)
    for key, values in seen.items():  # every value of every swept key in some job
        assert len(values) == len(sweep_jobs([f"{key}={params.get(key, params.get('+' + key))}"]))


def test_knockout_panel_sweeps_lists_and_comparators_sweep_arms():
    ko = {tuple(compose(j).therapy.knockouts) for j in sweep_jobs(["+experiment=knockout_panel"])}
    assert ko == {(), ("pge2",), ("tsg6",), ("ido",), ("tgfb",), ("il1ra",)}
    arms = {
        (c.therapy.name, c.therapy.prelicensed)
        for c in (compose(j) for j in sweep_jobs(["+experiment=comparators"]))
    }
    assert arms == {("none", False), ("msc", False), ("msc", True)}
    doses = {compose(j).therapy.dose for j in sweep_jobs(["+experiment=dose_response"])}
    assert doses == {1e6, 3e6, 1e7, 3e7, 1e8}


def test_dose_response_experiment_runs_with_a_smaller_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    res = abm_run("-m", "+experiment=dose_response", *SMALL[:2], "sim.spinup_days=0",
                  "sim.days=0.02", "output.summary_png=false", "therapy.dose=1e6,1e7", "seed=0",
                  f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    jobs = ["therapy.dose=1000000.0", "therapy.dose=10000000.0"]
    assert statuses(sweep) == dict.fromkeys(jobs, "complete")
    for job, dose in zip(jobs, (1e6, 1e7), strict=True):
        saved = OmegaConf.load(sweep / job / ".hydra" / "config.yaml")
        assert saved.therapy.dose == dose and saved.therapy.min_cells == 1  # the experiment's
        assert saved.sim.days == 0.02 and saved.seed == 0
        assert "+experiment=dose_response" in read_status(sweep / job)["overrides"]
