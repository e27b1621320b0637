"""Spin-up: the untreated joint simulated for ``sim.spinup_days`` once, cached, and branched from.

Data flow: validated config with ``sim.spinup_days > 0`` -> :func:`spinup_config` (therapy=none,
no perturbation, sim.days = spinup_days) -> :func:`ensure_entry` (the cache entry of its key:
reused, or computed with :func:`abm.loop.run` and published atomically) -> :func:`branch`
(``JointModel.from_state`` with the run's config; time 0 at the branch, the step counter kept)
-> :func:`abm.runner.simulate` runs it with the observers. With ``sim.spinup_days = 0``
:func:`start_model` builds the model as before (nothing here runs).

Time and randomness: the branched run's ``time_min`` is ``(steps - step0) * dt`` with ``step0``
= the spin-up's steps (saved in the model state, so a resume of the branched run continues
bit-identically); every draw stays keyed by the absolute step, so the run after the branch
equals a continuous run (spin-up days untreated, then the therapy) bit for bit, and never
repeats a spin-up draw. ``therapy.day``, ``perturb.deplete_day`` and the metrics count from the
branch; ``metrics.csv``/``run.h5`` hold the run after the branch only (its first row is the
spin-up's last state at t = 0).

Cache: ``$ABM_CACHE_DIR`` if set, else ``~/.cache/oa-abm/spinup/``; one folder per key (sha256 of
the spin-up inputs: seed, scenario, patient, biology, lattice, backend, sim.dt_min,
sim.field_substeps, sim.spinup_days, the abm version and a hash of the model's source files)
holding ``checkpoint.h5`` (the state at the end of the spin-up, with its metric history),
``spinup_metrics.csv`` (the approach to steady state) and ``spinup.json`` (what it is, the
checkpoint's sha256). An entry is written in a temporary folder and renamed into place
(``os.replace``); processes that need the same key wait on ``<key>.lock`` (``fcntl.flock``)
while one computes it, then reuse it (where locks do not work, each computes it and the first
rename wins; the copies are identical). An entry that fails its checks (missing files, other
key, checkpoint hash) is recomputed with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from abm.errors import ResumeError
from abm.units import MIN_PER_DAY
from abm.version import __version__

log = logging.getLogger(__name__)

CACHE_ENV = "ABM_CACHE_DIR"
DEFAULT_CACHE = Path("~/.cache/oa-abm/spinup")
ENTRY_CHECKPOINT = "checkpoint.h5"
ENTRY_METRICS = "spinup_metrics.csv"
ENTRY_INFO = "spinup.json"
ENTRY_FORMAT = 1
# What the spin-up depends on besides the config: the code that steps the model. The packages
# that only launch, analyse or show runs are left out, so that editing a report does not
# recompute every cached spin-up (the checkpoint writer and the config loader stay in).
_SOURCE_DIRS = ("abm", "kernels")
_NOT_MODEL = frozenset(
    {"assays", "bench", "calibrate", "cli", "replay", "sweep", "trial", "validation"}
)


def cache_dir() -> Path:
    """The spin-up cache folder: ``$ABM_CACHE_DIR``, else ``~/.cache/oa-abm/spinup``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else DEFAULT_CACHE.expanduser()


def spinup_days(cfg: DictConfig) -> float:
    """``sim.spinup_days`` (0 where the config lacks it)."""
    return float(OmegaConf.select(cfg, "sim.spinup_days", default=0.0) or 0.0)


def spinup_config(cfg: DictConfig) -> DictConfig:
    """The config of the untreated spin-up of ``cfg``: therapy=none (defaults), no perturbation,
    ``sim.days = sim.spinup_days``, no spin-up of its own, no resume or design row."""
    from abm.config import DesignConf, PerturbConf, TherapyConf

    days = spinup_days(cfg)
    out = cfg.copy()
    OmegaConf.set_readonly(out, False)
    OmegaConf.set_struct(out, False)
    out.therapy = OmegaConf.structured(TherapyConf(name="none"))
    out.perturb = OmegaConf.structured(PerturbConf())
    out.sim.days = days
    out.sim.spinup_days = 0.0
    out.resume = None
    if "design" in out:
        out.design = OmegaConf.structured(DesignConf())
    return out


@functools.cache
def source_sha() -> str:
    """sha256 of the model's Python sources (abm/ less the packages that only launch, analyse
    or show runs, and kernels/): a spin-up made by other code is never reused, even where the
    version number did not change."""
    return tree_sha(Path(__file__).resolve().parent.parent)


def tree_sha(root: Path) -> str:
    """:func:`source_sha` of the checkout at ``root`` (its ``abm/`` and ``kernels/``)."""
    h = hashlib.sha256()
    for d in _SOURCE_DIRS:
        for path in sorted((root / d).rglob("*.py")):
            rel = path.relative_to(root / d).parts
            if d == "abm" and len(rel) > 1 and rel[0] in _NOT_MODEL:
                continue
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def spinup_inputs(cfg: DictConfig) -> dict[str, Any]:
    """Everything the spin-up of ``cfg`` depends on (the key's contents), as plain data."""

    def plain(key: str) -> Any:
        node = OmegaConf.select(cfg, key, default=None)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

    return {
        "format": ENTRY_FORMAT,
        "abm_version": __version__,
        "source_sha256": source_sha(),
        "seed": int(cfg.seed),
        "spinup_days": spinup_days(cfg),
        "dt_min": float(cfg.sim.dt_min),
        "field_substeps": int(OmegaConf.select(cfg, "sim.field_substeps", default=1)),
        "backend": str(cfg.backend.name),
        **{k: plain(k) for k in ("scenario", "patient", "lattice")},
        # no MSC exists before the branch, so their parameters cannot change the spin-up: arms
        # that vary only biology.msc.* (half-life, secretion) share one entry
        "biology": {k: v for k, v in plain("biology").items() if k != "msc"},
    }


def spinup_key(cfg: DictConfig) -> str:
    """sha256 (hex) of :func:`spinup_inputs`."""
    text = json.dumps(spinup_inputs(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_entry(entry: Path, key: str) -> str | None:
    """Why the cache entry ``entry`` cannot be trusted for ``key``; None when it can."""
    from abm.observers.checkpoint import read_checkpoint

    if not entry.is_dir():
        return "missing"
    try:
        info = json.loads((entry / ENTRY_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{ENTRY_INFO}: {type(exc).__name__}"
    if not isinstance(info, dict) or info.get("key") != key:
        return f"{ENTRY_INFO} describes another key"
    ckpt = entry / ENTRY_CHECKPOINT
    try:
        if _file_sha(ckpt) != info.get("checkpoint_sha256"):
            return f"{ENTRY_CHECKPOINT} does not match its sha256"
        if not (entry / ENTRY_METRICS).is_file():
            return f"{ENTRY_METRICS} missing"
        steps = read_checkpoint(ckpt).steps
    except (OSError, ResumeError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if steps != info.get("steps"):
        return f"{ENTRY_CHECKPOINT} holds {steps} steps, {ENTRY_INFO} says {info.get('steps')}"
    return None


@contextlib.contextmanager
def _key_lock(folder: Path, key: str) -> Iterator[None]:
    """Hold ``<folder>/<key>.lock`` (blocking); a no-op where file locks do not work."""
    try:
        import fcntl

        fd = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("spin-up: waiting for another process computing %s", folder / key)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # no locks on this file system: compute; the first rename wins
        yield
    finally:
        os.close(fd)  # releases the lock


def _compute(cfg: DictConfig, folder: Path, key: str, model_cls: Any) -> Path:
    """Run the spin-up of ``cfg`` into a temporary folder of ``folder``; returns it."""
    from abm.loop import run
    from abm.observers.checkpoint import write_checkpoint
    from abm.observers.progress import ProgressObserver

    scfg = spinup_config(cfg)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:16]}-", dir=folder))
    try:
        t0 = time.perf_counter()
        model = model_cls(scfg)
        until = float(scfg.sim.days) * MIN_PER_DAY
        log.info("spin-up: computing %g untreated days (%d steps of %g min) once; every arm with "
                 "the same scenario, patient, biology, lattice and seed reuses it",
                 float(scfg.sim.days), round(until / model.dt_min), model.dt_min)  # fmt: skip
        bar = ProgressObserver(until, cfg.output.get("progress"), desc="spin-up")
        stats = run(model, [bar], until)
        write_checkpoint(tmp / ENTRY_CHECKPOINT, model)
        model.metrics.to_csv(tmp / ENTRY_METRICS, index=False)
        info = {
            "key": key,
            "days": float(scfg.sim.days),
            "steps": int(model.steps),
            "wall_s": round(time.perf_counter() - t0, 3),
            "solver_s": round(stats.solver_s, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": os.uname().nodename if hasattr(os, "uname") else "",
            "checkpoint_sha256": _file_sha(tmp / ENTRY_CHECKPOINT),
            "inputs": spinup_inputs(cfg),
        }
        (tmp / ENTRY_INFO).write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _publish(tmp: Path, entry: Path, key: str) -> None:
    """Rename ``tmp`` to ``entry``; a damaged entry there is moved away first, a good one
    (another process's, published meanwhile) is kept and ``tmp`` dropped."""
    try:
        os.replace(tmp, entry)
        return
    except OSError:
        pass  # entry exists and is not empty
    if check_entry(entry, key) is None:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    trash = entry.with_name(f".trash-{entry.name}-{os.getpid()}-{time.time_ns()}")
    with contextlib.suppress(OSError):
        os.replace(entry, trash)
    os.replace(tmp, entry)
    shutil.rmtree(trash, ignore_errors=True)


def ensure_entry(cfg: DictConfig, model_cls: Any = None) -> Path:
    """The cache entry of the spin-up of ``cfg`` (``sim.spinup_days > 0``), computed if it is
    missing or damaged; logs one line: ``spin-up: reusing <path>`` or ``spin-up: <days> days ->
    <path> (<seconds> s)``."""
    if model_cls is None:
        from abm.model import JointModel as model_cls  # lazy: heavy import
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = spinup_key(cfg)
    entry = folder / key
    with _key_lock(folder, key):
        why = check_entry(entry, key)
        if why is None:
            log.info("spin-up: reusing %s", entry)
            return entry
        if why != "missing":
            log.warning("spin-up: the cache entry %s is damaged (%s): computing it again",
                        entry, why)  # fmt: skip
        t0 = time.perf_counter()
        tmp = _compute(cfg, folder, key, model_cls)
        _publish(tmp, entry, key)
        log.info("spin-up: %g days -> %s (%.1f s)", spinup_days(cfg), entry,
                 time.perf_counter() - t0)  # fmt: skip
    return entry


def branch(cfg: DictConfig, entry: Path, model_cls: Any = None) -> Any:
    """A model of ``cfg`` that starts (time 0) from the spin-up state in ``entry``.

    The fields, cells, matrix and run-level scalars (drive, pools) are the spin-up's; the step
    counter goes on (``step0`` = the spin-up's steps); the interventions are the run's own (the
    therapy not yet given, no depletion); the metric history is the one row at time 0.
    """
    from abm.events import nothing_to_inject
    from abm.observers.checkpoint import read_checkpoint

    if model_cls is None:
        from abm.model import JointModel as model_cls  # lazy: heavy import
    ckpt = read_checkpoint(entry / ENTRY_CHECKPOINT)
    model = model_cls.from_state(cfg, ckpt.state)
    model.step0 = int(model.steps)
    model.time_min = 0.0
    model.flags.injected = bool(nothing_to_inject(cfg.therapy))
    model.flags.depleted = False
    history = model.datacollector.model_vars
    for name, values in history.items():
        history[name] = [0.0 if name == "time_min" else values[-1]]
    if hasattr(model, "_last") and "time_min" in model._last:
        model._last["time_min"] = 0.0
    return model


def start_model(cfg: DictConfig, model_cls: Any = None) -> Any:
    """The model a fresh run of ``cfg`` starts from: built at time 0 without a spin-up
    (``sim.spinup_days = 0``), else branched from the cached spin-up."""
    if model_cls is None:
        from abm.model import JointModel as model_cls  # lazy: heavy import
    if spinup_days(cfg) <= 0:
        return model_cls(cfg)
    return branch(cfg, ensure_entry(cfg, model_cls), model_cls)
