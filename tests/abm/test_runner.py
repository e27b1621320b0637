"""The step loop: schedules, observer order, timing, finalize on failure, failed writes as one
line, and SIGTERM/SIGINT handled after the write under way."""

from __future__ import annotations

import errno
import json
import logging
import re
import signal
import threading
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from abm.errors import Interrupted, OutputError, RunFolderError
from abm.lock import LOCK_FILE
from abm.loop import run
from abm.observers import Observer, Schedule
from abm.observers.checkpoint import read_checkpoint
from abm.observers.hdf5 import RunWriter
from abm.runner import simulate
from tests.abm.fake_model import FakeModel, SimulationError, fake_config


class Log(Observer):
    def __init__(self, name, every_min, events):
        super().__init__(every_min)
        self.name = name
        self.events = events

    def initialize(self, model):
        super().initialize(model)
        self.events.append((self.name, "init", model.time_min))

    def handle(self, model):
        self.events.append((self.name, "handle", model.time_min))

    def finalize(self, model, status):
        self.events.append((self.name, status, model.time_min))


def test_schedule_aligns_to_multiples():
    s = Schedule(60.0)
    s.start(30.0)
    fired = [t for t in range(40, 200, 10) if s.due(float(t))]
    assert fired == [60, 120, 180]
    assert s.on_schedule(120.0) and not s.on_schedule(130.0)
    every = Schedule(None)
    assert every.due(1.0) and every.due(2.0)
    with pytest.raises(ValueError, match="> 0"):
        Schedule(0)


def test_run_calls_observers_on_their_schedules():
    events = []
    model = FakeModel(fake_config())
    stats = run(model, [Log("a", 30.0, events), Log("b", None, events)], 60.0)
    a = [(kind, t) for name, kind, t in events if name == "a"]
    assert a == [("init", 0.0), ("handle", 30.0), ("handle", 60.0), ("done", 60.0)]
    assert sum(1 for name, kind, _ in events if name == "b" and kind == "handle") == 6
    assert stats.status == "done" and stats.steps == 6 and model.steps == 6
    assert set(stats.observer_s) == {"a", "b"}
    assert 0 <= stats.overhead_fraction <= 1
    assert "solver" in stats.table()


def test_run_finalizes_failed_and_interrupted(monkeypatch):
    events = []
    monkeypatch.setattr(FakeModel, "fail_at_step", 3)
    with pytest.raises(SimulationError):
        run(FakeModel(fake_config()), [Log("a", None, events)], 100.0)
    assert events[-1][:2] == ("a", "failed")  # mid-step: mesa counted step 3 already

    class Interrupt(Log):
        def handle(self, model):
            raise KeyboardInterrupt

    events.clear()
    monkeypatch.setattr(FakeModel, "fail_at_step", None)
    with pytest.raises(KeyboardInterrupt):
        run(FakeModel(fake_config()), [Interrupt("i", None, events)], 100.0)
    assert events[-1] == ("i", "interrupted", 10.0)


class Failing(Log):
    def __init__(self, name, events, fail_in, exc):
        super().__init__(name, None, events)
        self.fail_in, self.exc = fail_in, exc
        self.path = f"/somewhere/{name}.h5"

    def initialize(self, model):
        super().initialize(model)
        if self.fail_in == "initialize":
            raise self.exc

    def handle(self, model):
        super().handle(model)
        if self.fail_in == "handle" and model.time_min >= 30:
            raise self.exc


def test_only_started_observers_are_finalized():
    events = []
    observers = [
        Log("a", None, events),
        Failing("b", events, "initialize", ValueError("bad")),
        Log("c", None, events),
    ]
    with pytest.raises(ValueError, match="bad"):
        run(FakeModel(fake_config()), observers, 100.0)
    finals = [(name, kind) for name, kind, _ in events if kind not in ("init", "handle")]
    assert finals == [("a", "failed"), ("b", "failed")]  # c never started: never finalized


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError(
            "Unable to synchronously write data (file write failed: time = now, filename = "
            "'x.h5', file descriptor = 5, errno = 28, error message = 'No space left on device')"
        ),
    ],
    ids=["oserror", "h5py"],
)
def test_failed_write_is_one_line_output_error(exc):
    events = []
    with pytest.raises(OutputError) as err:
        run(FakeModel(fake_config()), [Failing("w", events, "handle", exc)], 100.0)
    assert str(err.value) == (
        "/somewhere/w.h5: cannot write at day 0.0208: no space left on device (disk full)"
    )
    assert err.value.errno == errno.ENOSPC
    assert events[-1][:2] == ("w", "failed")


def test_other_runtime_errors_of_observers_pass_through():
    with pytest.raises(RuntimeError, match="a bug"):
        run(FakeModel(fake_config()), [Failing("w", [], "handle", RuntimeError("a bug"))], 100.0)


def test_finalize_errors_of_a_failed_run_are_one_line(caplog):
    class BadFinal(Log):
        def finalize(self, model, status):
            super().finalize(model, status)
            raise OSError(errno.ENOSPC, "No space left on device")

    events = []
    observers = [BadFinal("x", None, events), Failing("y", events, "handle", KeyError("k"))]
    with caplog.at_level(logging.DEBUG, logger="abm.loop"), pytest.raises(KeyError):
        run(FakeModel(fake_config()), observers, 100.0)
    assert [e[:2] for e in events if e[1] == "failed"] == [("x", "failed"), ("y", "failed")]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "observer x did not finish" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()


def to_main(sig: int) -> None:
    """Send ``sig`` to this process's main thread: its handler runs before the next statement.
    (``os.kill`` to the process lets the kernel pick any thread: with a helper thread alive,
    e.g. tqdm's monitor left by an earlier test, two signals sent back to back could both be
    pending and be handled in signal-number order, SIGINT before SIGTERM.)"""
    signal.pthread_kill(threading.main_thread().ident, sig)


def received(sig: int) -> None:
    """Wait (at most 5 s) until the run's handler holds ``sig`` as its pending signal: the
    second signal must come after the first has been handled, whatever thread the kernel
    or the interpreter handled it on (CPython runs pending handlers in signal-number order,
    SIGINT before SIGTERM, when both are pending at once)."""
    from abm.loop import _Signals

    for _ in range(5000):
        if _Signals.pending == sig:
            return
        time.sleep(0.001)  # handlers run here
    raise AssertionError(f"signal {sig} was not received by the run's handler")


def test_a_second_signal_during_a_write_stops_at_once():
    class Writer(Log):
        def handle(self, model):
            if model.time_min == 30.0:
                to_main(signal.SIGTERM)  # waits for the write...
                received(signal.SIGTERM)
                to_main(signal.SIGINT)  # ...unless the user insists
            super().handle(model)

    events = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as err:
        run(FakeModel(fake_config()), [Writer("w", None, events)], 100.0)
    assert err.value.signum == signal.SIGINT and err.value.exit_code == 130
    assert ("w", "handle", 30.0) not in events
    assert events[-1] == ("w", "interrupted", 30.0)  # and still finalized
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_one_sigterm_mid_write_lets_the_frame_finish():
    class Writer(Log):
        def handle(self, model):
            if model.time_min == 30.0:
                to_main(signal.SIGTERM)
            super().handle(model)

    events = []
    model = FakeModel(fake_config())
    with pytest.raises(Interrupted):
        run(model, [Writer("w", None, events)], 100.0)
    assert ("w", "handle", 30.0) in events  # finished before the run stopped
    assert events[-1] == ("w", "interrupted", 30.0) and model.steps == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_mid_step_stops_before_the_next_write():
    class Stopped(FakeModel):
        def step(self):
            if self.steps == 4:
                to_main(signal.SIGTERM)
            super().step()

    events = []
    model = Stopped(fake_config())
    with pytest.raises(Interrupted) as err:
        run(model, [Log("w", None, events)], 100.0)
    assert err.value.exit_code == 143
    assert [t for _, kind, t in events if kind == "handle"] == [10.0, 20.0, 30.0]
    assert events[-1][:2] == ("w", "interrupted")


# -- simulate(): the run folder -----------------------------------------------------------------


def _assert_closed_and_readable(run_dir, n_frames):
    """run.h5 opens with plain h5py (closed, not flagged open) and every frame reads."""
    with h5py.File(run_dir / "run.h5", "r") as f:
        assert f["time_min"].shape == (n_frames,)
        for k in range(n_frames):
            assert np.isfinite(f["fields/IL1b"][k]).all()
        offsets = f["cells/offsets"][...]
        assert offsets.shape == (n_frames + 1,) and f["cells/id"].shape[0] == offsets[-1]
    csv = pd.read_csv(run_dir / "metrics.csv")
    assert not csv.isna().any().any()
    assert not list(run_dir.glob("*tmp")) and not (run_dir / LOCK_FILE).exists()


def test_disk_full_mid_run_is_one_line_and_keeps_the_frames(tmp_path, monkeypatch):
    calls = []
    append = RunWriter.append_frame

    def full(self, *args, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return append(self, *args, **kw)

    monkeypatch.setattr(RunWriter, "append_frame", full)
    with pytest.raises(OutputError) as err:
        simulate(fake_config(), tmp_path, model_cls=FakeModel)
    assert str(err.value) == (
        f"{tmp_path / 'run.h5'}: cannot write at day 0.125: no space left on device (disk full)"
    )
    _assert_closed_and_readable(tmp_path, 3)  # t = 0, 60, 120
    assert read_checkpoint(tmp_path / "checkpoint.h5").time_min == 120.0


def test_too_little_space_stops_before_any_write(tmp_path, monkeypatch):
    import shutil

    real = shutil.disk_usage
    room = {"free": None}

    def usage(path):
        u = real(path)
        return u if room["free"] is None else u._replace(free=room["free"])

    class Filling(FakeModel):
        def step(self):
            super().step()
            if self.steps == 13:  # after the frames at 0, 60, 120 min: none at 180
                room["free"] = 3 << 20

    monkeypatch.setattr(shutil, "disk_usage", usage)
    with pytest.raises(OutputError) as err:
        simulate(fake_config(), tmp_path, model_cls=Filling)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}: cannot write at day 0.125: no space left on device")
    assert re.search(r": the next frame needs about \d+\.\d MB, 3\.1 MB are free$", msg), msg
    _assert_closed_and_readable(tmp_path, 3)


def test_simulate_refuses_a_folder_with_a_run_or_a_live_writer(tmp_path):
    simulate(fake_config(), tmp_path / "a", model_cls=FakeModel)
    before = (tmp_path / "a" / "run.h5").read_bytes()
    with pytest.raises(RunFolderError, match=r"a: already holds a run.h5 \(continue it with"):
        simulate(fake_config(), tmp_path / "a", model_cls=FakeModel)
    assert (tmp_path / "a" / "run.h5").read_bytes() == before
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / LOCK_FILE).write_text(
        json.dumps({"pid": 1, "host": "node-elsewhere", "started": "2024-01-01T00:00:00+00:00"})
    )
    with pytest.raises(RunFolderError, match=r"b: another run is writing here \(pid 1 on host"):
        simulate(fake_config(), tmp_path / "b", model_cls=FakeModel)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [LOCK_FILE]
