"""Synchronized timing: wall times of calls and of whole model steps, split by phase.

Data flow: a case's callable or model (:mod:`abm.bench.cases`) -> repeated calls, each between
two device synchronizations (GPU times include the kernels' completion) -> lists of seconds ->
medians in the result rows of :mod:`abm.bench.suite`. Model steps are split through the
model's phase hook (``model.set_phase_timer``), never by replacing its parts.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

SOLVER_PHASE = "transport"  # the model phase that is the lattice solver


def median(values: Sequence[float]) -> float:
    """Median (nan for no values)."""
    return float(statistics.median(values)) if values else float("nan")


def time_calls(
    fn: Callable[[], Any], repeats: int, sync: Callable[[], None], warmup: int = 1
) -> list[float]:
    """Wall times (s) of ``repeats`` calls of ``fn``, each between two ``sync()``."""
    return time_in_turn([(fn, sync)], repeats, warmup)[0]


def time_in_turn(
    calls: Sequence[tuple[Callable[[], Any], Callable[[], None]]], repeats: int, warmup: int = 1
) -> list[list[float]]:
    """Wall times (s) of each ``(fn, sync)`` pair, called in turn ``repeats`` times, each
    call between two ``sync()``: a change of machine load during the run hits them alike."""
    for fn, sync in calls:
        for _ in range(warmup):
            fn()
        sync()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for (fn, sync), out in zip(calls, times, strict=True):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    return times


def populations(model: Any) -> Iterable[Any]:
    """The model's populations (each with ``.name`` and ``.n``), whatever the container."""
    cells = getattr(model, "cells", None)
    return cells if cells is not None else model.pops.values()


def n_cells(model: Any) -> int:
    """Cells of every type in ``model``."""
    return int(sum(p.n for p in populations(model)))


class PhaseTimer:
    """The model's phase hook: ``timer(name)`` times one phase between two synchronizations
    and adds the seconds to :attr:`current` (phase name -> s, in step order)."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.current: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.current[name] = self.current.get(name, 0.0) + time.perf_counter() - t0

    def take(self) -> dict[str, float]:
        """The phases timed since the last call (and start afresh)."""
        out, self.current = self.current, {}
        return out


@dataclass
class StepTimes:
    """Per-step wall times (s) of whole model steps and of each phase inside them."""

    step_s: list[float] = field(default_factory=list)
    phase_s: dict[str, list[float]] = field(default_factory=dict)
    cells: list[int] = field(default_factory=list)

    @property
    def solver_s(self) -> list[float]:
        """The lattice solver (the model's ``transport`` phase)."""
        return self.phase_s.get(SOLVER_PHASE, [])

    @property
    def rules_s(self) -> list[float]:
        """Everything but the solver: sensing, cell rules, moves, secretion, matrix, metrics."""
        return [s - v for s, v in zip(self.step_s, self.solver_s, strict=True)]

    def phase_medians(self) -> dict[str, float]:
        """Median seconds of each phase, in step order."""
        return {name: median(ts) for name, ts in self.phase_s.items()}


def time_model_steps(
    model: Any, repeats: int, warmup: int = 1, budget_s: float | None = None
) -> StepTimes:
    """Time ``repeats`` steps of ``model`` (after ``warmup`` steps) and each of their phases.

    With ``budget_s``, stops after at least 3 timed steps once the timed steps exceed it.
    """
    sync = model.backend.synchronize
    for _ in range(warmup):
        model.step()
    timer = PhaseTimer(sync)
    res = StepTimes()
    model.set_phase_timer(timer)
    try:
        for i in range(repeats):
            res.cells.append(n_cells(model))
            sync()
            t0 = time.perf_counter()
            model.step()
            sync()
            res.step_s.append(time.perf_counter() - t0)
            for name, seconds in timer.take().items():
                res.phase_s.setdefault(name, []).append(seconds)
            if budget_s is not None and i + 1 >= 3 and sum(res.step_s) > budget_s:
                break
    finally:
        model.set_phase_timer(None)
    return res


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (MB; monotone over the process)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20
