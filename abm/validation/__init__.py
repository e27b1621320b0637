"""Validation against the calibration targets C1-C7 (docs/validation.md): the last stage of the
data flow, after runs and their metrics.

conf/experiment/validation_*.yaml (the arms) -> :mod:`~abm.validation.runs` (run the arms in
parallel processes, cache their metrics, load them) and :mod:`~abm.validation.rules` (single
cell rules with clamped fields) -> one check per target, :mod:`~abm.validation.c1` ...
:mod:`~abm.validation.c7` (``check(runs) -> (rows, figure)``) -> :mod:`~abm.validation.report`
(``validation_results.csv`` and the figures). Command line: ``python -m abm.validation``.
"""
