"""abm-replay: look at a run folder: a movie, PNG frames, a slider window, or the summary PNG.

Data flow: ``run.h5`` -> :func:`abm.replay.load_run` -> :mod:`abm.replay.movie` /
:mod:`abm.replay.viewer` / :mod:`abm.replay.plots` -> files or a window. Reads files only.

    abm-replay RUN [--field NAME] [--out FILE.mp4|FILE.gif|DIR] [--interactive] [--summary]
               [--slice K] [--axis A] [--project max] [--fps F] [--every N] [--dpi D]

Without --out/--interactive/--summary it writes ``<field>.mp4`` into the run folder. A bad path,
field or option is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from abm.errors import RunFileError
from abm.replay.run import load_run
from abm.schema import SUMMARY_FILE

log = logging.getLogger(__name__)
DEFAULT_FIELD = "IL1b"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abm-replay", description="Movies, frames, a slider viewer or a summary of a run."
    )
    p.add_argument("path", help="run.h5, or the run folder holding it")
    p.add_argument("--field", default=None, help=f"field to show (default {DEFAULT_FIELD})")
    p.add_argument("--out", default=None, help="FILE.mp4, FILE.gif, or a folder for PNG frames")
    p.add_argument("--interactive", action="store_true", help="a window with a time slider")
    p.add_argument("--summary", action="store_true", help="write the metrics summary PNG")
    p.add_argument("--slice", type=int, default=None, help="3D: index of the slice shown")
    p.add_argument("--axis", type=int, default=None, help="3D: lattice axis cut (default 2)")
    p.add_argument("--project", choices=["max"], default=None, help="3D: max projection")
    p.add_argument("--fps", type=float, default=6.0, help="movie frames per second")
    p.add_argument("--every", type=int, default=1, help="use every N-th frame")
    p.add_argument("--dpi", type=int, default=96, help="pixels per inch (multiple of 8)")
    return p


def _error(message: str) -> None:
    print(f"abm-replay: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Console script ``abm-replay``."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.interactive is False:
        import matplotlib

        matplotlib.use("Agg")
    from abm.replay.frames import View
    from abm.replay.movie import write_movie
    from abm.replay.plots import summary_figure

    try:
        with load_run(args.path) as run:
            field = args.field or (
                DEFAULT_FIELD if DEFAULT_FIELD in run.field_names else run.field_names[0]
            )
            run.check_field(field)
            view = View(args.axis, args.slice, args.project)
            try:
                view.resolve(run.shape)  # bad --slice/--axis: fail before any work
            except ValueError as exc:
                _error(str(exc))
            folder = run.path.parent
            if args.summary:
                out = Path(args.out) if args.out else folder / SUMMARY_FILE
                summary_figure(run, out)
                log.info("wrote %s", out)
            elif args.interactive:
                import matplotlib.pyplot as plt

                from abm.replay.viewer import SliderViewer

                viewer = SliderViewer(run, field, view)
                viewer.goto(run.n_frames - 1)
                plt.show()
            else:
                out = Path(args.out) if args.out else folder / f"{field}.mp4"
                written = write_movie(
                    run, field, out, view=view, fps=args.fps, dpi=args.dpi, every=args.every
                )
                log.info("wrote %s (%d frames)", written, len(range(0, run.n_frames, args.every)))
    except (RunFileError, IndexError) as exc:
        _error(str(exc))


if __name__ == "__main__":
    main()
