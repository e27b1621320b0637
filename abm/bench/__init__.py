"""Benchmark library behind ``abm-bench`` and ``scripts/bench_model.py``.

Where it sits: beside the run's data flow, timing it. Cases are Hydra overrides composed like a
run (:mod:`~abm.bench.cases`) -> the model's solver and whole model steps timed between device
synchronizations, steps split by phase through ``model.set_phase_timer``
(:mod:`~abm.bench.timing`, :mod:`~abm.bench.suite`), the solver also against a plain NumPy
yardstick in the same run (:mod:`~abm.bench.yardstick`) -> bench.json, bench.png and tables
(:mod:`~abm.bench.report`) with the machine they ran on (:mod:`~abm.bench.machine`).
:mod:`~abm.bench.processes` measures whole ``abm-run`` children (wall time, peak memory).
"""
