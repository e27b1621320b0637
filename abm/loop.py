"""The one step loop: advance the model, hand its state to the observers that are due.

Data flow: a built model (abm.model) + observers (abm.observers) -> :func:`run` (model.step()
+ observers on their schedules) -> files in the run folder. The loop owns the timing: step time
(synchronized on a GPU) against each observer's time, reported in :class:`RunStats`. Observers
see host copies only, made when they fire. ``JointModel.run`` and :mod:`abm.runner` (which
prepares a model and its observers from a config) both step through here.

Stopping: within :func:`run` (and :func:`interrupt_signals`), SIGINT and SIGTERM raise
:class:`abm.errors.Interrupted` (a KeyboardInterrupt), but never inside an observer's write:
a frame or checkpoint being written is finished first, then every observer is finalized
(flushed and closed), so a run stopped by Ctrl-C, ``kill``, ``timeout``, ``docker stop`` or a
Slurm time limit leaves closed files that any HDF5 reader opens. An observer's failed write
(disk full, ...) becomes :class:`abm.errors.OutputError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abm.errors import Interrupted, OutputError
from abm.observers.base import Observer, Status
from abm.units import MIN_PER_DAY

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Signals:
    """What the stop-signal handler knows: nesting, deferral and whether a stop is under way."""

    depth = 0  # nesting of interrupt_signals()
    deferring = 0  # nesting of _deferred(): a signal now waits until the write is done
    pending: int | None = None  # a signal that arrived while deferring
    stopping = False  # Interrupted was raised (or is pending): later signals are ignored


def _on_signal(signum: int, _frame: Any) -> None:
    st = _Signals
    if st.pending is not None:  # a second signal while a write finishes: stop right now
        st.pending = None
        raise Interrupted(signum)
    if st.stopping:
        return  # the run is already stopping: let it close its files
    st.stopping = True
    if st.deferring:
        st.pending = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def interrupt_signals() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` (outside observer writes; once).

    Installed only in the main thread, and only over the default handlers (a handler the
    application installed is left alone); the previous handlers come back on exit. Nestable.
    """
    st = _Signals
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers run in the main thread only
        return
    if st.depth:
        st.depth += 1
        try:
            yield
        finally:
            st.depth -= 1
        return
    previous = {}
    for sig in STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            previous[sig] = current
            signal.signal(sig, _on_signal)
    st.depth, st.deferring, st.pending, st.stopping = 1, 0, None, False
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        st.depth, st.deferring, st.pending, st.stopping = 0, 0, None, False


@contextlib.contextmanager
def _deferred() -> Iterator[None]:
    """Within: a stop signal waits (raised on exit, unless an exception is under way)."""
    st = _Signals
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    st.deferring += 1
    try:
        yield
    finally:
        st.deferring -= 1
    if not st.deferring and st.pending is not None:
        signum, st.pending = st.pending, None
        raise Interrupted(signum)


_ERRNO_RE = re.compile(r"errno = (\d+)")
_IO_TEXT_RE = re.compile(r"errno = \d+|file (write|read) failed|write failed")
_REASONS = {
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EIO: "input/output error",
}


def _io_cause(exc: BaseException | None) -> BaseException | None:
    """The failed file read/write behind ``exc`` (itself or its context), else None: an
    OSError, or the RuntimeError h5py raises when HDF5 cannot write (``... file write failed
    ... errno = 28 ...``; the errors of closing such a file have it as their context)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError):
            return exc
        if isinstance(exc, RuntimeError) and _IO_TEXT_RE.search(str(exc)):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def is_io_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a failed read or write of a file (see :func:`output_error`)."""
    return isinstance(exc, OSError | RuntimeError) and _io_cause(exc) is not None


def output_error(
    exc: BaseException, path: str | Path, time_min: float | None = None
) -> OutputError:
    """``exc`` (from writing ``path``; see :func:`is_io_error`) as a one-line OutputError."""
    exc = _io_cause(exc) or exc
    code = getattr(exc, "errno", None)
    if code is None:
        m = _ERRNO_RE.search(str(exc))  # h5py: "... errno = 28, error message = ..."
        code = int(m.group(1)) if m else None
    what = _REASONS.get(code or -1)
    detail = getattr(exc, "strerror", None)
    if what is not None and detail and code is not None and detail != os.strerror(code):
        what = f"{what}: {detail}"  # our own check's numbers (abm.observers: free space)
    if what is None:
        text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
        what = text.splitlines()[0]
    where = f" at day {time_min / MIN_PER_DAY:.3g}" if time_min is not None else ""
    err = OutputError(f"{path}: cannot write{where}: {what}")
    err.errno = code  # str(err) stays the one-line message
    return err


def _observer_path(obs: Observer, exc: BaseException) -> str:
    path = getattr(obs, "path", None)
    name = getattr(exc, "filename", None)
    if isinstance(name, str | Path) and str(name):
        return str(name)
    return str(path) if path is not None else f"observer {obs.name}"


@dataclass
class RunStats:
    """What :func:`run` did: steps, simulated span (min) and wall-clock split (s)."""

    status: Status
    steps: int
    start_min: float
    end_min: float
    wall_s: float
    solver_s: float
    observer_s: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_fraction(self) -> float:
        """Share of the wall time spent in observers (snapshots, checkpoints, ...)."""
        return sum(self.observer_s.values()) / self.wall_s if self.wall_s > 0 else 0.0

    def table(self) -> str:
        """A small text table of the timings."""
        rows = [
            ("steps", f"{self.steps}"),
            (
                "simulated",
                f"{self.start_min / MIN_PER_DAY:.3f} -> {self.end_min / MIN_PER_DAY:.3f} days",
            ),
            ("wall", f"{self.wall_s:.2f} s"),
            ("solver", f"{self.solver_s:.2f} s ({_pct(self.solver_s, self.wall_s)})"),
        ]
        rows += [
            (f"observer {name}", f"{s:.2f} s ({_pct(s, self.wall_s)})")
            for name, s in self.observer_s.items()
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "-"


def run(model: Any, observers: Sequence[Observer], until_min: float) -> RunStats:
    """Step ``model`` until ``until_min`` (simulated minutes), calling observers when due.

    Observers are initialized before the first step and finalized at the end, also when a step
    raises (status ``failed``) or a signal stops the run (``interrupted``: SIGINT or SIGTERM,
    see :func:`interrupt_signals`); the error propagates. Only observers whose ``initialize``
    was called are finalized. An observer's ``OSError`` becomes an
    :class:`~abm.errors.OutputError` naming its file. Finalizing a failed run logs an
    observer's error in one line and goes on with the others.
    """
    with interrupt_signals():
        return _run(model, observers, until_min)


def _run(model: Any, observers: Sequence[Observer], until_min: float) -> RunStats:
    t_start = time.perf_counter()
    observer_s = {obs.name: 0.0 for obs in observers}
    start_min = float(model.time_min)
    start_steps = int(model.steps)
    n_steps = max(0, round((until_min - start_min) / float(model.dt_min)))
    solver_s = 0.0
    sync = model.backend.synchronize
    started: list[Observer] = []

    def call(obs: Observer, method: str, *args: Any) -> None:
        t0 = time.perf_counter()
        try:
            getattr(obs, method)(model, *args)
        except OutputError:
            raise
        except (OSError, RuntimeError) as exc:
            if not is_io_error(exc):
                raise
            raise output_error(exc, _observer_path(obs, exc), float(model.time_min)) from exc
        finally:
            observer_s[obs.name] += time.perf_counter() - t0

    status: Status = "failed"
    try:
        for obs in observers:
            started.append(obs)
            call(obs, "initialize")
        for _ in range(n_steps):
            t0 = time.perf_counter()
            model.step()
            sync()
            solver_s += time.perf_counter() - t0
            now = float(model.time_min)
            with _deferred():  # a frame or checkpoint is written whole
                for obs in observers:
                    if obs.schedule.due(now):
                        call(obs, "handle")
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        _finalize(started, status, call)
    return RunStats(
        status,
        int(model.steps) - start_steps,
        start_min,
        float(model.time_min),
        time.perf_counter() - t_start,
        solver_s,
        observer_s,
    )


def _finalize(started: Sequence[Observer], status: Status, call: Any) -> None:
    """Finalize every started observer (no signal in between); re-raise the first error of a
    run that was done, log the others in one line each."""
    first: BaseException | None = None
    with _deferred():
        for obs in started:
            try:
                call(obs, "finalize", status)
            except Exception as exc:
                if status == "done" and first is None:
                    first = exc
                    continue
                log.error("%s run: observer %s did not finish: %s", status, obs.name,
                          _one_line(exc))  # fmt: skip
                log.debug("observer %s failed while finalizing", obs.name, exc_info=True)
    if first is not None:
        raise first


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
