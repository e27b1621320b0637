"""Experiments at scale: sweep jobs, their status, designs, launching and collecting.

Data flow: ``abm-run -m`` (Hydra sweeper + launcher: basic, ``hydra/launcher=joblib`` or
``hydra/launcher=slurm``) -> one job folder per parameter set under ``hydra.sweep.dir``, each
an ordinary run folder plus ``status.json`` (:mod:`abm.sweep.status`) -> readers:
``abm-sweep-report`` (:mod:`abm.sweep.collect`, :mod:`abm.sweep.report`), ``abm-replicates``
(:mod:`abm.sweep.replicates`), ``abm-sensitivity`` (:mod:`abm.sweep.sensitivity`).

Contracts (other modules rely on them):

- ``<job>/status.json`` (:data:`abm.schema.STATUS_FILE`): a JSON object with ``status``
  (``"running"``, ``"complete"`` or ``"failed"``), ``overrides`` (the job's task overrides, a
  list of strings), ``config_sha`` (sha256 of the job's resolved config, without ``hydra``,
  ``output.progress`` and ``resume``), ``started`` / ``ended`` (ISO 8601 local time),
  ``wall_s`` (float or null), ``error`` (one line or null), ``exit_code`` (int or null),
  ``host``, ``pid``, and ``design`` (the values a design row applied: ``{key: value}``, or
  ``{}``). Written atomically (temporary file + rename). A job folder with ``complete`` and the
  same ``config_sha`` is skipped when the sweep runs again; ``running`` with no live writer
  (``abm.lock``) counts as unfinished.
- Designs (:mod:`abm.sweep.design`): ``design.csv`` with a ``row`` column (0..n-1) and one
  column per dotted config key; a job with ``design.file=PATH design.row=I`` applies row I.
- :func:`abm.sweep.launch.run_sweep` runs ``abm-run -m`` over given overrides in a given
  sweep folder with any launcher, as a subprocess; re-running it skips finished jobs.
"""
