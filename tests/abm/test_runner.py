"""The step loop: schedules, observer order, timing, and finalize on failure."""

from __future__ import annotations

import pytest

from abm.loop import run
from abm.observers import Observer, Schedule
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
