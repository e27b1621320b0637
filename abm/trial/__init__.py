"""Virtual trial (``abm-trial``, issue 12): a virtual population of OA knees treated in paired arms.

Data flow: :mod:`abm.trial.population` (declarations, sampling, designs: config stage) ->
``abm-run -m design.file=... design.row=...`` sweeps started by :mod:`abm.cli.trial` (run
stage) -> :mod:`abm.trial.analysis` (plausibility, paired outcomes, responders, rates,
predictors, figures) -> :mod:`abm.trial.report` (``report.md``, ``report.html``).
"""
