"""Launching sweeps: ``abm-run -m`` as a subprocess (the run stage, seen from a front end).

:func:`run_sweep` is how ``abm-replicates`` and ``abm-sensitivity`` run their jobs, so they
use the same launchers as any sweep (basic, ``hydra/launcher=joblib``,
``hydra/launcher=slurm``) and resume like one: a job folder that finished with the same
config is skipped when the sweep runs again, so re-running a command re-runs only the
unfinished jobs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SweepValues = Sequence[Any] | str


def format_value(value: Any) -> str:
    """One value as Hydra override text (floats with every digit, booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalars
        return format_value(value.item())
    return quote(str(value))


def quote(text: str) -> str:
    """``text`` as a Hydra override value, quoted when it holds characters Hydra's grammar
    reads otherwise (spaces, commas, brackets, ``=``, ...)."""
    if re.fullmatch(r"[\w/.\-+:@]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sweep_overrides(sweep: Mapping[str, SweepValues]) -> list[str]:
    """``key=v1,v2,...`` for each swept key: a list of values, or a Hydra sweep string as it
    is (``range(0,20)``, ``choice(a,b)``, ``1,2,3``)."""
    out = []
    for key, values in sweep.items():
        if isinstance(values, str):
            text = values
        else:
            values = list(values)
            if not values:
                raise ValueError(f"sweep over {key}: no values")
            text = ",".join(format_value(v) for v in values)
        out.append(f"{key}={text}")
    return out


def sweep_command(sweep_dir: str | Path, overrides: Sequence[str],
                  sweep: Mapping[str, SweepValues],
                  launcher: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """The ``python -m abm -m ...`` command line of :func:`run_sweep`."""
    folder = quote(str(Path(sweep_dir).absolute()))
    return [sys.executable, "-m", "abm", "-m", *overrides, *sweep_overrides(sweep),
            f"hydra.sweep.dir={folder}", *launcher]  # fmt: skip


def run_sweep(sweep_dir: str | Path, overrides: Sequence[str],
              sweep: Mapping[str, SweepValues], launcher: Sequence[str] = (),
              quiet: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    """Run ``abm-run -m <overrides> <key=v1,v2,...> hydra.sweep.dir=<sweep_dir> <launcher>``
    and wait for it.

    ``sweep``: key -> list of values, or a Hydra sweep string (``range(0,20)``);
    ``launcher``: extra Hydra overrides, e.g. ``["hydra/launcher=joblib",
    "hydra.launcher.n_jobs=2"]``. The output streams to this process's stdout/stderr, or
    with ``quiet`` is captured (text) in the returned ``CompletedProcess``. The exit code is
    not checked: read the jobs' ``status.json`` (:mod:`abm.sweep.collect`) for what ran.
    """
    cmd = sweep_command(sweep_dir, overrides, sweep, launcher)
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    if quiet:
        return subprocess.run(cmd, capture_output=True, text=True, check=False)
    return subprocess.run(cmd, check=False)


def split_overrides(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(config overrides, Hydra overrides ``hydra.*``/``hydra/...``) of a command's
    ``KEY=VALUE`` arguments: only the first are composed and checked before a sweep."""
    config, hydra = [], []
    for a in args:
        (hydra if a.lstrip("+~").startswith(("hydra.", "hydra/")) else config).append(a)
    return config, hydra


# -- reading the jobs back ------------------------------------------------------------------
def derived_readouts() -> dict[str, tuple[str, ...]]:
    """Readouts computed from metric columns (``treg_fraction``: Treg / all T cells, as in
    :data:`abm.validation.equivalence.READOUTS`): name -> (numerator, *the rest of the total)."""
    from abm.validation.equivalence import READOUTS

    return {name: parts for name, (_, parts) in READOUTS.items() if parts}


def known_readouts() -> list[str]:
    """Every metric column of ``metrics.csv`` and the derived readouts."""
    from abm.model import metric_names

    return [m for m in metric_names() if m != "time_min"] + list(derived_readouts())


def job_readouts(jobs: Any, metrics: Sequence[str], days: Sequence[float],
                 window_days: float = 0.0) -> Any:  # fmt: skip
    """Long table ``job, day, metric, value`` of the complete jobs of a
    :func:`abm.sweep.collect.collect_jobs` table at ``days`` (``window_days`` > 0: the mean
    over (day - window, day]); derived readouts (:func:`derived_readouts`) are computed per
    metrics row first, so a window averages the fraction itself."""
    from abm.sweep.collect import load_metrics, readouts
    from abm.validation.equivalence import fraction

    derived = {m: p for m, p in derived_readouts().items() if m in metrics}
    tables = {}
    for job in jobs[jobs["status"] == "complete"].itertuples():
        table = load_metrics(job.path)
        if table is None:
            continue
        for name, parts in derived.items():
            table[name] = fraction(table, parts)
        tables[job.job] = table
    out = readouts(jobs, list(metrics), list(days), window_days, tables=tables)
    return out.rename(columns={"time_day": "day"})
