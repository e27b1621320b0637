"""The Hydra callback of ``abm-run -m``: a table and a summary line of the sweep's jobs.

Data flow: Hydra calls :class:`SweepStatus` in the parent process of a multirun, whatever the
launcher (jobs in this process, in joblib's worker processes or on Slurm nodes).
``on_multirun_start`` forgets the records of an earlier sweep into the same folder;
``on_multirun_end`` reads the files the jobs wrote (``<sweep>/.jobs/<num>.json`` and each job
folder's ``status.json``, :mod:`abm.sweep.status`), never in-process state, and writes
``<sweep>/sweep_status.csv`` (one row per job folder: ``job, status, wall_s, error,
overrides, in_this_run``), prints ``N jobs: a complete, b skipped, c failed (...)`` and keeps
the count of failed jobs for ``abm-run`` (:func:`failed_jobs`), which then exits with 1.

A job's status in the table: ``complete`` (ran to its end now), ``skipped`` (complete before,
with the same config), ``failed`` (its one-line error), ``unfinished`` (it stopped without
writing an end: killed, or its node lost) or ``missing``; folders of earlier sweeps into the
same folder that this one did not ask for keep their state (``in_this_run`` false) and are not
counted.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from abm.sweep.status import (
    clear_job_records,
    is_job_folder,
    job_state,
    read_job_records,
    read_status,
)

log = logging.getLogger(__name__)

STATUS_CSV = "sweep_status.csv"
COLUMNS = ("job", "status", "wall_s", "error", "overrides", "in_this_run")
_LISTED = 3  # failed jobs named in the summary line

# The outcome of the last multirun in this process: (failed jobs, summary line), or None.
_LAST: tuple[int, str] | None = None


def reset() -> None:
    """Forget the outcome of an earlier multirun in this process."""
    global _LAST
    _LAST = None


def failed_jobs() -> tuple[int, str] | None:
    """(number of failed jobs, the summary line) of the last multirun; None when none ended."""
    return _LAST


def _sweep_dir(config: DictConfig) -> Path:
    return Path(os.path.abspath(str(config.hydra.sweep.dir)))


def _row(job: Path, sweep_dir: Path, record: dict[str, Any] | None) -> dict[str, Any]:
    status = read_status(job) or {}
    overrides = (record or {}).get("overrides") or status.get("overrides") or []
    row = {
        "job": job.relative_to(sweep_dir).as_posix(),
        "status": job_state(job),
        "wall_s": status.get("wall_s"),
        "error": status.get("error"),
        "overrides": " ".join(str(o) for o in overrides),
        "in_this_run": record is not None,
    }
    if record is None:
        return row
    outcome = record.get("outcome")
    if outcome == "refused":  # it wrote no status.json: the folder is another job's, or locked
        row.update(status="failed", error=record.get("error"), wall_s=None)
    elif outcome == "skipped" and row["status"] == "complete":
        row["status"] = "skipped"
    elif row["status"] == "running":  # the job of this sweep is over; someone else writes now
        row.update(status="failed", error=record.get("error") or "another process writes the "
                   "folder now")  # fmt: skip
    elif row["status"] == "unfinished":
        row["error"] = (
            row["error"]
            or record.get("error")
            or ("stopped without writing its end (killed, time limit or node lost?)")
        )
    elif row["status"] == "missing":
        row["error"] = row["error"] or "the job left no files"
    if row["error"]:
        row["error"] = " ".join(str(row["error"]).split())
    return row


def sweep_table(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per job folder of ``sweep_dir`` (the jobs of the last sweep first, in order)."""
    sweep_dir = Path(sweep_dir)
    rows, seen = [], set()
    for record in read_job_records(sweep_dir):
        job = sweep_dir / str(record.get("job", ""))
        if job == sweep_dir or job in seen:
            continue
        seen.add(job)
        rows.append(_row(job, sweep_dir, record))
    folders = sweep_dir.iterdir() if sweep_dir.is_dir() else []
    others = sorted(p for p in folders if p not in seen and p.is_dir() and is_job_folder(p))
    rows.extend(_row(job, sweep_dir, None) for job in others)
    return rows


def summary_line(rows: list[dict[str, Any]], csv_path: Path) -> tuple[int, str]:
    """(failed jobs, ``N jobs: a complete, b skipped, c failed (...)``) of this run's rows."""
    mine = [r for r in rows if r["in_this_run"]] or rows
    complete = sum(r["status"] == "complete" for r in mine)
    skipped = sum(r["status"] == "skipped" for r in mine)
    bad = [r for r in mine if r["status"] not in ("complete", "skipped")]
    line = f"{len(mine)} jobs: {complete} complete, {skipped} skipped, {len(bad)} failed"
    if bad:
        named = "; ".join(f"{r['job']}: {r['status']}: {r['error']}" for r in bad[:_LISTED])
        more = f"; and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        line += f" ({named}{more})"
    others = len(rows) - len(mine)
    if others and any(r["in_this_run"] for r in rows):
        line += f"; {others} other job folders of earlier sweeps"
    return len(bad), f"{line}; table: {csv_path}"


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    os.replace(tmp, path)


class SweepStatus(Callback):
    """``hydra.callbacks.sweep_status`` in conf/config.yaml (see the module doc)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        reset()
        clear_job_records(_sweep_dir(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _LAST
        sweep_dir = _sweep_dir(config)
        rows = sweep_table(sweep_dir)
        path = sweep_dir / STATUS_CSV
        try:
            write_table(rows, path)
        except OSError as exc:
            log.error("%s: cannot write the sweep table (%s)", path, exc.strerror or exc)
        failed, line = summary_line(rows, path)
        print(line, flush=True)
        _LAST = (failed, line)
