"""Replay: read-only views of finished (or running) runs: reader, movies, viewer, plots.

Data flow: files in a run folder -> :func:`load_run` -> :class:`Run` -> movies
(:mod:`abm.replay.movie`), the slider viewer (:mod:`abm.replay.viewer`) and summary plots
(:mod:`abm.replay.plots`). Nothing here imports the model or the observers (names of files and
datasets come from :mod:`abm.schema`, errors from :mod:`abm.errors`), so any run file, old or
remote, can be opened without building a model.
"""

from abm.replay.run import Run, load_run

__all__ = ["Run", "load_run"]
