"""Collect a sweep folder: one row per job (state + parameters) and readouts of its metrics.

Data flow: ``<sweep>/<job>/`` folders written by ``abm-run -m`` (``.hydra/overrides.yaml``,
``status.json``, ``metrics.csv``; ``<sweep>/multirun.yaml``) -> :func:`collect_jobs` (a
DataFrame: ``job``, ``status``, ``error``, ``wall_s``, ``path``, then one column per override
key) -> :func:`varying_keys` (the parameters that differ between jobs) and :func:`readouts`
(metric values of the complete jobs at given days, long format). Reads files only; the
consumers are ``abm-sweep-report`` (:mod:`abm.sweep.report`) and the other sweep tools.

A job's state comes from its ``status.json`` (:mod:`abm.sweep.status` when present): complete,
failed, running (a live writer holds the folder's lock) or unfinished (stopped without an end:
killed, or its node lost). A job folder written before status files existed counts as complete
when its ``metrics.csv`` reaches the job's ``sim.days`` (or, lacking its config, has any row).
Jobs of ``multirun.yaml``'s sweep (basic sweeper) that never made a folder are added with
state ``missing``.

Override values are parsed to numbers where every job's value of that key is a number; the
``+``/``~`` prefixes are stripped from the keys. A job that applied a design row
(``design.file=PATH design.row=I``) gets that row's values as columns named by their keys (from
its ``status.json``, else from the design file), and those columns, not ``design.row``, are its
swept parameters.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from abm.lock import writer_alive
from abm.schema import METRICS_FILE, STATUS_FILE
from abm.sweep.status import is_job_folder, job_dirname, job_state, read_status
from abm.units import MIN_PER_DAY

BASE_COLUMNS = ("job", "status", "error", "wall_s", "path")
STATES = ("complete", "failed", "running", "unfinished", "missing")
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
CONFIG_FILE = Path(".hydra") / "config.yaml"
MULTIRUN_FILE = "multirun.yaml"
DESIGN_FILE_KEY = "design.file"
DESIGN_ROW_KEY = "design.row"
TIME_COLUMN = "time_min"
MAX_DEPTH = 4  # job folders are looked for this many levels below the sweep folder
_EPS_DAY = 1e-6  # days: a metric row at day + this still counts as "at day"


# -- job state -------------------------------------------------------------------------------
def _legacy_state(job: Path) -> tuple[str, str | None]:
    """State of a job folder without ``status.json`` (written before status files existed)."""
    if writer_alive(job):
        return "running", None
    metrics = job / METRICS_FILE
    if not metrics.is_file():
        return "unfinished", "no status.json and no metrics.csv"
    try:
        times = pd.read_csv(metrics, usecols=[TIME_COLUMN])[TIME_COLUMN].to_numpy(dtype=float)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        return "unfinished", f"metrics.csv unreadable ({_first_line(exc)})"
    if times.size == 0:
        return "unfinished", "metrics.csv holds no row"
    days = _config_days(job)
    if days is not None and times[-1] / MIN_PER_DAY < days - 1e-3:
        reached = times[-1] / MIN_PER_DAY
        return "unfinished", f"stopped at day {reached:.4g} of {days:g} (no status.json)"
    return "complete", None


def _config_days(job: Path) -> float | None:
    try:
        cfg = yaml.safe_load((job / CONFIG_FILE).read_text(encoding="utf-8"))
        return float(cfg["sim"]["days"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None


def job_status(job: str | os.PathLike) -> dict[str, Any]:
    """``{"status", "error", "wall_s", "design"}`` of one job folder (see the module doc): the
    state of :func:`abm.sweep.status.job_state`, ``unfinished`` for a damaged ``status.json``,
    and for a folder without one the rule of :func:`_legacy_state`."""
    job = Path(job)
    if not (job / STATUS_FILE).is_file():
        state, error = _legacy_state(job)
        return {"status": state, "error": error, "wall_s": None, "design": {}}
    data = read_status(job)
    if data is None:
        return {"status": "unfinished", "error": f"{STATUS_FILE} unreadable or not a JSON object",
                "wall_s": None, "design": {}}  # fmt: skip
    state = job_state(job)
    error = data.get("error")
    if state not in ("complete", "failed", "running", "unfinished"):
        error = error or f"{STATUS_FILE} holds no known status ({data.get('status')!r})"
        state = "unfinished"
    if state == "unfinished" and not error:
        error = "stopped without writing its end (killed, time limit or node lost?)"
    wall = data.get("wall_s")
    try:
        wall = None if wall is None else float(wall)
    except (TypeError, ValueError):
        wall = None
    design = data.get("design")
    return {
        "status": state,
        "error": None if error is None else str(error).strip().splitlines()[0],
        "wall_s": wall,
        "design": dict(design) if isinstance(design, dict) else {},
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# -- job folders and overrides ---------------------------------------------------------------
def job_folders(sweep_dir: str | os.PathLike) -> list[Path]:
    """Job folders below ``sweep_dir`` (not descending into a job), in natural order."""
    root = Path(sweep_dir)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if child.name.startswith("."):
                continue
            if is_job_folder(child):
                found.append(child)
            elif depth < MAX_DEPTH:
                walk(child, depth + 1)

    walk(root, 1)
    return sorted(found, key=lambda p: _natural(p.relative_to(root).as_posix()))


def _natural(name: str) -> list[Any]:
    """Sort key: digit runs compare as numbers (job 2 before job 10)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def read_overrides(job: str | os.PathLike) -> list[str]:
    """The job's task overrides (``.hydra/overrides.yaml``), or those in its ``status.json``."""
    job = Path(job)
    path = job / OVERRIDES_FILE
    if path.is_file():
        try:
            items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
            return [str(i) for i in items]
        except (OSError, yaml.YAMLError):
            pass
    raw = read_status(job) or {}
    items = raw.get("overrides") or []
    return [str(i) for i in items] if isinstance(items, list) else []


def split_override(item: str) -> tuple[str, str]:
    """``"+therapy.dose=1e6"`` -> ``("therapy.dose", "1e6")`` (prefixes ``+``, ``++``, ``~``
    stripped; a deletion ``~key`` has the value ``""``)."""
    key, _, value = str(item).partition("=")
    return key.strip().lstrip("+~"), value.strip()


def parse_number(value: Any) -> Any:
    """``value`` as an int or float when it is written as a number, else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", text, re.I):
        return float(text)
    return value


def _numeric_column(values: pd.Series) -> pd.Series:
    """The column as numbers when every present value is a number, else as strings."""
    present = values.dropna()
    parsed = present.map(parse_number)
    if len(parsed) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in parsed
    ):
        out = pd.to_numeric(values.map(parse_number), errors="coerce")
        if all(isinstance(v, (int, np.integer)) for v in parsed) and not values.isna().any():
            out = out.astype("int64")
        return out
    return values.map(
        lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    )


def _design_values(job: Path, sweep_dir: Path, params: dict[str, str]) -> dict[str, Any]:
    """The values the job's design row applied, read from the design file (status.json first)."""
    file, row = params.get(DESIGN_FILE_KEY), params.get(DESIGN_ROW_KEY)
    if not file or file == "null" or row in (None, "", "null"):
        return {}
    given = Path(file.strip("'\""))
    candidates = (
        [given]
        if given.is_absolute()
        else [Path.cwd() / given, sweep_dir / given, sweep_dir.parent / given, job / given]
    )
    candidates.append(sweep_dir / given.name)
    for path in candidates:
        if path.is_file():
            try:
                table = pd.read_csv(path)
                match = table[table["row"] == int(float(row))]
            except (OSError, ValueError, KeyError, pd.errors.ParserError):
                continue
            if len(match):
                values = match.iloc[0].drop(labels=["row"]).to_dict()
                return {str(k): _plain(v) for k, v in values.items()}
    return {}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- multirun.yaml: jobs that never started ------------------------------------------------------
def _planned_jobs(sweep_dir: Path) -> list[list[str]]:
    """The override lists of every job of the sweep (basic sweeper), or [] when unknown."""
    path = sweep_dir / MULTIRUN_FILE
    if not path.is_file():
        return []
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        hydra = cfg.get("hydra") or {}
        sweeper = hydra.get("sweeper") or {}
        target = str(sweeper.get("_target_", "BasicSweeper"))
        if not target.endswith("BasicSweeper"):
            return []
        args = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        args += [str(a) for a in (hydra.get("overrides") or {}).get("task") or []]
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(args)
        batches = BasicSweeper.split_arguments(parsed, None)
        return [list(job) for batch in batches for job in batch]
    except Exception:  # optional: a sweep we cannot expand adds no "missing" jobs
        return []


def _identity(overrides: Iterable[str]) -> frozenset[tuple[str, Any]]:
    """What makes two override lists the same job: keys with their values, numbers as floats
    (Hydra writes a swept ``1e6`` as ``1000000.0``)."""
    out = set()
    for item in overrides:
        key, value = split_override(item)
        parsed = parse_number(value)
        out.add((key, float(parsed) if isinstance(parsed, (int, float)) else value))
    return frozenset(out)


def _override_dirname(overrides: Iterable[str]) -> str:
    """The folder name Hydra + ``abm-run`` give a job of these overrides (sorted, joined)."""
    text = ",".join(sorted(str(o) for o in overrides))
    return job_dirname(text)


# -- public API --------------------------------------------------------------------------------
def collect_jobs(sweep_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per job of the sweep folder (see the module doc for the columns).

    ``attrs["override_keys"]`` lists the override columns (in order of first appearance) and
    ``attrs["design_keys"]`` those that came from a design row.
    """
    root = Path(sweep_dir)
    rows: list[dict[str, Any]] = []
    keys: list[str] = []
    design_keys: list[str] = []
    seen: set[frozenset[tuple[str, Any]]] = set()

    def add_key(key: str, into: list[str]) -> None:
        if key not in into:
            into.append(key)

    for job in job_folders(root):
        overrides = read_overrides(job)
        seen.add(_identity(overrides))
        state = job_status(job)
        params: dict[str, Any] = {}
        for item in overrides:
            key, value = split_override(item)
            if key:
                params[key] = value
                add_key(key, keys)
        design = state["design"] or _design_values(job, root, params)
        for key, value in design.items():
            params[key] = value
            add_key(key, keys)
            add_key(key, design_keys)
        rows.append(
            {
                "job": job.relative_to(root).as_posix(),
                "status": state["status"],
                "error": state["error"],
                "wall_s": state["wall_s"],
                "path": str(job),
                **params,
            }
        )
    for overrides in _planned_jobs(root):
        if _identity(overrides) in seen:
            continue
        name = _override_dirname(overrides)
        params = dict(split_override(o) for o in overrides)
        for key in params:
            add_key(key, keys)
        rows.append(
            {
                "job": name,
                "status": "missing",
                "error": "never started (no job folder)",
                "wall_s": None,
                "path": str(root / name),
                **params,
            }
        )
    table = pd.DataFrame(rows, columns=[*BASE_COLUMNS, *keys])
    for key in keys:
        table[key] = _numeric_column(table[key].astype(object))
    table["wall_s"] = pd.to_numeric(table["wall_s"], errors="coerce")
    table.attrs["override_keys"] = list(keys)
    table.attrs["design_keys"] = list(design_keys)
    return table


def override_keys(jobs: pd.DataFrame) -> list[str]:
    """The override columns of a :func:`collect_jobs` table."""
    keys = jobs.attrs.get("override_keys")
    if keys is None:
        keys = [c for c in jobs.columns if c not in BASE_COLUMNS]
    return [k for k in keys if k in jobs.columns]


def varying_keys(jobs: pd.DataFrame) -> list[str]:
    """Override columns whose values differ between the jobs (``seed`` included, constants
    excluded). ``design.file`` is never one; ``design.row`` is not when the design's own
    columns are known (they are the swept parameters then)."""
    design_cols = [k for k in jobs.attrs.get("design_keys", []) if k in jobs.columns]
    out = []
    for key in override_keys(jobs):
        if key == DESIGN_FILE_KEY or (key == DESIGN_ROW_KEY and design_cols):
            continue
        column = jobs[key].astype(object).where(jobs[key].notna(), "\0missing")
        if column.map(repr).nunique() > 1:
            out.append(key)
    return out


def load_metrics(job_path: str | os.PathLike) -> pd.DataFrame | None:
    """The job's ``metrics.csv`` (``time_min`` first), or None when absent or unreadable."""
    path = Path(job_path) / METRICS_FILE
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    return table if TIME_COLUMN in table.columns else None


def readouts(
    jobs: pd.DataFrame,
    metrics: Sequence[str] | str | None,
    days: Sequence[float] | float,
    window_days: float = 0.0,
    *,
    tables: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Long table ``job, time_day, metric, value`` of the complete jobs at ``days``.

    ``window_days`` 0: the value of the last metrics row at or before the day; > 0: the mean
    over the rows in (day - window, day]. A day after a job's last row (the run stopped
    earlier) or with no row in its window gives NaN. ``metrics`` None: every metric column.
    ``tables``: metrics already read, by job name (skips reading ``metrics.csv``).
    """
    if window_days < 0 or not math.isfinite(window_days):
        raise ValueError(f"window_days must be a finite number >= 0, got {window_days}")
    day_arr = np.atleast_1d(np.asarray(days, dtype=float))
    names = [metrics] if isinstance(metrics, str) else None if metrics is None else list(metrics)
    parts = []
    for _, job in jobs[jobs["status"] == "complete"].iterrows():
        table = (tables or {}).get(job["job"])
        if table is None:
            table = load_metrics(job["path"])
        if table is None or not len(table):
            continue
        cols = [c for c in (names or table.columns) if c != TIME_COLUMN and c in table.columns]
        t = table[TIME_COLUMN].to_numpy(dtype=float) / MIN_PER_DAY
        values = table[cols].to_numpy(dtype=float)
        hi = np.searchsorted(t, day_arr + _EPS_DAY, side="right")  # rows [.., hi) are <= day
        if window_days == 0:
            got = values[np.maximum(hi - 1, 0)]
            got[hi == 0] = np.nan
        else:
            lo = np.searchsorted(t, day_arr - window_days + _EPS_DAY, side="right")
            finite = np.isfinite(values)
            csum = np.vstack([np.zeros(len(cols)), np.cumsum(np.where(finite, values, 0), 0)])
            ccnt = np.vstack([np.zeros(len(cols)), np.cumsum(finite, 0)])
            count = ccnt[hi] - ccnt[lo]
            with np.errstate(invalid="ignore", divide="ignore"):
                got = np.where(count > 0, (csum[hi] - csum[lo]) / count, np.nan)
        got[day_arr > t[-1] + _EPS_DAY] = np.nan
        parts.append(
            pd.DataFrame(
                {
                    "job": job["job"],
                    "time_day": np.repeat(day_arr, len(cols)),
                    "metric": np.tile(np.asarray(cols, dtype=object), len(day_arr)),
                    "value": got.reshape(-1),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "job": pd.Series(dtype=object),
                "time_day": pd.Series(dtype=float),
                "metric": pd.Series(dtype=object),
                "value": pd.Series(dtype=float),
            }
        )
    return pd.concat(parts, ignore_index=True)
