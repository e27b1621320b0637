"""A sweep job's state: ``<job>/status.json``, the folder's state, and the job folder's name.

Data flow: each job of ``abm-run -m`` (:mod:`abm.cli.run`) writes its ``status.json`` (running,
then complete or failed) and a record of what it did in ``<sweep>/.jobs/<num>.json``; readers
(:mod:`abm.sweep.callbacks` at the end of the sweep, :mod:`abm.sweep.collect`) call
:func:`read_status` and :func:`job_state`. Reads and writes files only (no model import), so
any stage may use it.

``status.json`` (the contract of :mod:`abm.sweep`): ``status`` (``running``, ``complete`` or
``failed``), ``overrides`` (the job's task overrides), ``config_sha`` (:func:`config_sha`),
``started`` / ``ended`` (ISO 8601 local time), ``wall_s``, ``error`` (one line or null),
``exit_code`` (int or null), ``host``, ``pid`` and ``design`` (``{key: value}`` a design row
applied, or ``{}``). It is written atomically (a temporary file renamed over it).

Job folder states (:func:`job_state`): ``complete``; ``running`` (a live process holds the
folder's lock, :mod:`abm.lock`); ``failed``; ``unfinished`` (``running`` written but no live
writer: killed, time limit, node lost; or a ``run.h5`` without a ``status.json``); ``missing``.

Also the OmegaConf resolvers of ``conf/``, registered on import: ``abm_job_dir`` (a job
folder's name from Hydra's ``override_dirname``, :func:`job_dirname`) and ``abm_gpus`` (GPUs
a cluster job asks for, :func:`gpus_for_backend`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from abm.lock import writer_alive
from abm.schema import METRICS_FILE, RUN_FILE, STATUS_FILE

STATUSES = ("running", "complete", "failed")  # what status.json may say
STATES = ("complete", "running", "failed", "unfinished", "missing")  # what job_state() says
FIELDS = ("status", "overrides", "config_sha", "started", "ended", "wall_s", "error",
          "exit_code", "host", "pid", "design")  # fmt: skip
# Keys left out of config_sha: Hydra's own node, and what may change without changing the run.
SHA_EXCLUDE = ("hydra", "resume", "output.progress")

RECORDS_DIR = ".jobs"  # <sweep>/.jobs/<num>.json: what each job of the last `abm-run -m` did
OUTCOMES = ("started", "ran", "skipped", "refused")

MAX_DIRNAME = 120  # characters of a job folder's name (file systems allow 255 bytes)
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+\-\[\]@]")


def now_iso() -> str:
    """The local time now, ISO 8601 with its UTC offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


# -- config_sha ------------------------------------------------------------------------------
def config_sha(cfg: DictConfig | Mapping[str, Any]) -> str:
    """sha256 (hex) of a job's resolved config, without ``hydra``, ``resume`` and
    ``output.progress``: equal for the same run, whatever the launcher, the host or the time."""
    if isinstance(cfg, DictConfig):
        data = OmegaConf.to_container(cfg, resolve=True)
    else:
        data = json.loads(json.dumps(dict(cfg), default=str))  # a deep copy of plain data
    assert isinstance(data, dict)
    for key in SHA_EXCLUDE:
        *parents, leaf = key.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- status.json -----------------------------------------------------------------------------
def _defaults() -> dict[str, Any]:
    return {
        "status": None, "overrides": [], "config_sha": None, "started": None, "ended": None,
        "wall_s": None, "error": None, "exit_code": None, "host": socket.gethostname(),
        "pid": os.getpid(), "design": {},
    }  # fmt: skip


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_status(job_dir: str | os.PathLike, **fields: Any) -> dict[str, Any]:
    """Write ``<job_dir>/status.json`` atomically; returns what was written.

    ``fields`` are those of the contract (:data:`FIELDS`); ``status`` is required, ``host``
    and ``pid`` default to this process's, the rest to null (``overrides`` ``[]``, ``design``
    ``{}``). Raises ValueError for an unknown field or status, OSError when it cannot write.
    """
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"write_status: unknown field(s) {', '.join(unknown)}; known: "
                         f"{', '.join(FIELDS)}")  # fmt: skip
    if fields.get("status") not in STATUSES:
        raise ValueError(f"write_status: status must be one of {', '.join(STATUSES)}, got "
                         f"{fields.get('status')!r}")  # fmt: skip
    record = {**_defaults(), **fields}
    record["overrides"] = [str(o) for o in record["overrides"] or []]
    record["design"] = dict(record["design"] or {})
    _write_json(Path(job_dir) / STATUS_FILE, record)
    return record


def read_status(job_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``status.json`` of ``job_dir`` as a dict (every contract field present; absent ones
    null); None when there is none, or it is not a JSON object (unreadable, damaged)."""
    path = Path(job_dir) / STATUS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    out = {key: None for key in FIELDS}
    out.update(data)
    out["overrides"] = out["overrides"] or []
    out["design"] = out["design"] or {}
    return out


def is_job_folder(folder: Path) -> bool:
    """Whether ``folder`` is a sweep job's folder: not hidden, and holding a status.json, a
    run.h5, a metrics.csv or Hydra's ``.hydra/overrides.yaml``."""
    return not folder.name.startswith(".") and any(
        (folder / name).is_file()
        for name in (STATUS_FILE, RUN_FILE, METRICS_FILE, Path(".hydra") / "overrides.yaml")
    )


def job_state(job_dir: str | os.PathLike) -> str:
    """``complete``, ``running`` (a live process holds the folder's lock), ``failed``,
    ``unfinished`` (status ``running`` without a live writer, or a ``run.h5`` without a
    ``status.json``) or ``missing`` (neither)."""
    job_dir = Path(job_dir)
    status = read_status(job_dir)
    said = None if status is None else status.get("status")
    if said == "complete":
        return "complete"
    if job_dir.is_dir() and writer_alive(job_dir):
        return "running"
    if status is None:
        return "unfinished" if (job_dir / RUN_FILE).exists() else "missing"
    return "failed" if said == "failed" else "unfinished"


# -- what each job of the last sweep did (read by the sweep's callback) ------------------------
def records_dir(sweep_dir: str | os.PathLike) -> Path:
    return Path(sweep_dir) / RECORDS_DIR


def write_job_record(sweep_dir: str | os.PathLike, num: int, **fields: Any) -> None:
    """Record in ``<sweep>/.jobs/<num>.json`` what job ``num`` of this sweep did: ``job`` (its
    folder, relative to the sweep), ``overrides``, ``outcome`` (:data:`OUTCOMES`: started, ran,
    skipped, refused) and ``error`` (a refused job's one line: it wrote no status.json)."""
    folder = records_dir(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / f"{int(num)}.json", {"num": int(num), **fields})


def read_job_records(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of the jobs of the last sweep into ``sweep_dir``, by job number."""
    out = []
    for path in records_dir(sweep_dir).glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("num"), int):
            out.append(data)
    return sorted(out, key=lambda r: r["num"])


def clear_job_records(sweep_dir: str | os.PathLike) -> None:
    """Forget the records of an earlier sweep into ``sweep_dir`` (a new one starts)."""
    for path in records_dir(sweep_dir).glob("*.json"):
        with contextlib.suppress(OSError):
            path.unlink()


# -- resolvers of conf/ ----------------------------------------------------------------------
def job_dirname(override_dirname: Any) -> str:
    """A job folder's name from Hydra's ``override_dirname`` (``key=value,key=value``, sorted).

    Characters other than letters, digits and ``. _ , = + - [ ] @`` become ``_`` (no ``/``: one
    folder level); a name that had to change, or is longer than :data:`MAX_DIRNAME`
    characters, is cut and ends in ``-`` + 8 hex digits of the sha256 of the original (so two
    jobs never share a folder); no overrides gives ``default``. The same overrides give the
    same name on every run (a re-run finds its jobs).
    """
    text = "" if override_dirname is None else str(override_dirname)
    if not text:
        return "default"
    name = _UNSAFE.sub("_", text)
    if name.startswith("."):
        name = "_" + name[1:]  # not hidden (readers skip hidden folders), never "." or ".."
    if name != text or len(name) > MAX_DIRNAME:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        name = f"{name[: MAX_DIRNAME - 9]}-{digest}"
    return name


def gpus_for_backend(backend: Any) -> int | None:
    """GPUs per node a cluster job asks for: 1 for ``backend=cupy``, else none (null)."""
    return 1 if str(backend) == "cupy" else None


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("abm_job_dir", job_dirname, replace=True)
    OmegaConf.register_new_resolver("abm_gpus", gpus_for_backend, replace=True)


register_resolvers()
