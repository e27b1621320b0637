"""Replay: read-only views of finished (or running) runs: reader, movies, viewer, plots.

Data flow: files in a run folder -> :func:`load_run` -> :class:`Run` -> movies
(:mod:`abm.replay.movie`), the slider viewer (:mod:`abm.replay.viewer`) and summary plots
(:mod:`abm.replay.plots`). Nothing here imports the model: any run file, old or remote, works.
"""

from abm.replay.run import Run, RunFileError, load_run

__all__ = ["Run", "RunFileError", "load_run"]
