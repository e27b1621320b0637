"""Timing: calls between synchronizations, model steps split by phase through the model's
hook (the phases add up to about the step), cell counts over either populations container."""

from __future__ import annotations

from types import SimpleNamespace

from abm.bench.cases import CELL_CASES, build_model, model_overrides
from abm.bench.timing import (
    PhaseTimer,
    median,
    n_cells,
    time_calls,
    time_in_turn,
    time_model_steps,
)
from abm.model import PHASES


def test_time_calls_synchronizes_every_call():
    calls, syncs = [], []
    times = time_calls(lambda: calls.append(1), 4, lambda: syncs.append(1), warmup=2)
    assert len(times) == 4 and all(t >= 0 for t in times)
    assert len(calls) == 6 and len(syncs) == 5  # once after the warm-up, once per timed call


def test_time_in_turn_alternates():
    log = []
    times = time_in_turn(
        [(lambda: log.append("a"), lambda: None), (lambda: log.append("b"), lambda: None)],
        3,
        warmup=1,
    )
    assert log == ["a", "b"] + ["a", "b"] * 3
    assert [len(t) for t in times] == [3, 3]


def test_phase_timer_accumulates_and_restarts():
    syncs = []
    timer = PhaseTimer(lambda: syncs.append(1))
    for name in ("a", "b", "a"):
        with timer(name):
            pass
    took = timer.take()
    assert list(took) == ["a", "b"] and len(syncs) == 6
    assert timer.take() == {}


def test_phases_add_up_to_about_the_step(backend):
    case = CELL_CASES["small"]["2d-small"]
    model, _ = build_model(model_overrides(case), backend.name)
    t = time_model_steps(model, repeats=5)
    assert tuple(t.phase_s) == PHASES
    assert all(len(ts) == len(t.step_s) == len(t.cells) == 5 for ts in t.phase_s.values())
    in_phases = [sum(ts[i] for ts in t.phase_s.values()) for i in range(5)]
    assert all(p <= s for p, s in zip(in_phases, t.step_s, strict=True))  # phases nest in steps
    assert sum(in_phases) > 0.7 * sum(t.step_s)  # and leave little outside them
    assert t.solver_s == t.phase_s["transport"]
    assert all(r > 0 for r in t.rules_s)
    assert t.phase_medians() == {name: median(ts) for name, ts in t.phase_s.items()}
    steps = int(model.steps)
    model.step()  # the hook is gone: stepping still works, nothing more is recorded
    assert int(model.steps) == steps + 1 and len(t.step_s) == 5


def test_time_model_steps_stops_at_the_budget():
    model, _ = build_model(model_overrides(CELL_CASES["small"]["2d-small"]), "numpy")
    t = time_model_steps(model, repeats=50, warmup=0, budget_s=0.0)
    assert len(t.step_s) == 3


def test_n_cells_reads_either_container():
    pops = [SimpleNamespace(name="a", n=3), SimpleNamespace(name="b", n=4)]
    assert n_cells(SimpleNamespace(pops=dict(enumerate(pops)))) == 7
    assert n_cells(SimpleNamespace(cells=pops)) == 7
