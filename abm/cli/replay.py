"""abm-replay: look at a run folder: a movie, PNG frames, a slider window, the summary PNG, or
one HTML page.

Data flow: ``run.h5`` -> :func:`abm.replay.load_run` -> :mod:`abm.replay.movie` /
:mod:`abm.replay.viewer` / :mod:`abm.replay.plots` / :mod:`abm.replay.html` -> files or a
window. Reads files only.

    abm-replay RUN [--field NAME] [--out FILE.mp4|FILE.gif|DIR|FILE.html] [--interactive]
               [--summary] [--html] [--max-mb M] [--slice K] [--axis A] [--project max]
               [--fps F] [--every N] [--dpi D]

Without --out/--interactive/--summary/--html it writes ``<field>.mp4`` into the run folder.
``--html`` writes one self-contained page (``run.html`` in the run folder, or ``--out
FILE.html``): the field with a time slider, the metrics over time, the config; plotly.js is
embedded, and frames are thinned so that the page stays under ``--max-mb`` (default 30, at
least 10).

A bad path, field or option is one line on stderr and exit code 2, before anything is rendered:
--every is an integer >= 1, --dpi an integer in [8, 600] (frames of 80 x 32 to 6000 x 2400
pixels: the figure is 10 x 4 inches), --fps a finite number > 0 (<= 100 for a GIF, whose frame
delays are whole hundredths of a second), and --out (or the run folder) must be a place a file
or folder can be written; --html takes no other mode (--summary, --interactive), an --out
ending in .html, and --max-mb a finite number >= 10. A write that fails midway (disk full) is
one line and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path

from abm.cli.common import writable_error
from abm.errors import RunFileError
from abm.replay.run import load_run
from abm.schema import SUMMARY_FILE

log = logging.getLogger(__name__)
DEFAULT_FIELD = "IL1b"
DPI_RANGE = (8, 600)
GIF_MAX_FPS = 100.0
HTML_FILE = "run.html"
MIN_HTML_MB = 10.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abm-replay", description="Movies, frames, a slider viewer or a summary of a run."
    )
    p.add_argument("path", help="run.h5, or the run folder holding it")
    p.add_argument("--field", default=None, help=f"field to show (default {DEFAULT_FIELD})")
    p.add_argument("--out", default=None, help="FILE.mp4, FILE.gif, or a folder for PNG frames")
    p.add_argument("--interactive", action="store_true", help="a window with a time slider")
    p.add_argument("--summary", action="store_true", help="write the metrics summary PNG")
    p.add_argument(
        "--html", action="store_true", help=f"one self-contained page ({HTML_FILE}: field, metrics)"
    )
    p.add_argument(
        "--max-mb", type=float, default=30.0, help="--html: largest page size in MB (default 30)"
    )
    p.add_argument("--slice", type=int, default=None, help="3D: index of the slice shown")
    p.add_argument("--axis", type=int, default=None, help="3D: lattice axis cut (default 2)")
    p.add_argument("--project", choices=["max"], default=None, help="3D: max projection")
    p.add_argument("--fps", type=float, default=6.0, help="movie frames per second")
    p.add_argument("--every", type=int, default=1, help="use every N-th frame")
    lo, hi = DPI_RANGE
    p.add_argument(
        "--dpi", type=int, default=96, help=f"pixels per inch in [{lo}, {hi}], a multiple of 8"
    )
    return p


def _error(message: str) -> None:
    print(f"abm-replay: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_options(args: argparse.Namespace) -> None:
    """Exit with one line if --every, --dpi or --fps is out of range (before any work)."""
    if args.every < 1:
        _error(f"--every {args.every}: must be an integer >= 1 (1 = every frame)")
    lo, hi = DPI_RANGE
    if not lo <= args.dpi <= hi:
        _error(f"--dpi {args.dpi}: must be an integer in [{lo}, {hi}]")
    if not (math.isfinite(args.fps) and args.fps > 0):
        _error(f"--fps {args.fps:g}: must be a finite number of frames per second > 0")
    if args.html:
        if args.summary or args.interactive:
            other = "--summary" if args.summary else "--interactive"
            _error(f"--html and {other}: choose one")
        if args.out is not None and Path(args.out).suffix.lower() != ".html":
            _error(f"--out {args.out}: --html writes one page; give a file name ending in .html")
        if not (math.isfinite(args.max_mb) and args.max_mb >= MIN_HTML_MB):
            _error(f"--max-mb {args.max_mb:g}: must be a finite number >= {MIN_HTML_MB:g} "
                   "(plotly.js alone takes about 5 MB)")  # fmt: skip
    gif = args.out is not None and Path(args.out).suffix.lower() == ".gif"
    if gif and args.fps > GIF_MAX_FPS and not (args.summary or args.interactive or args.html):
        _error(f"--fps {args.fps:g}: a GIF holds at most {GIF_MAX_FPS:g} frames per second "
               "(frame delays are whole hundredths of a second)")  # fmt: skip


def _check_writable(out: Path, folder: bool, flag: str = "--out") -> None:
    """Exit with one line unless ``out`` can be written: a file (``folder`` False) or a folder
    of frames, created with its missing parents. Probes with a temporary file (removed at
    once) in the nearest existing folder, so read-only file systems are caught too."""
    if folder:
        if out.exists() and not out.is_dir():
            _error(f"{flag} {out}: is a file; PNG frames need a folder (or give .mp4/.gif)")
    elif out.is_dir():
        _error(
            f"{flag} {out}: is a folder; give a file name (.mp4, .gif, .png for --summary, "
            ".html for --html)"
        )
    message = writable_error(out, folder, flag)
    if message is not None:
        _error(message)


def main(argv: list[str] | None = None) -> None:
    """Console script ``abm-replay``."""
    args = parser().parse_args(argv)
    _check_options(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.interactive is False:
        import matplotlib

        matplotlib.use("Agg")
    from abm.replay.frames import View
    from abm.replay.movie import MOVIE_SUFFIXES, write_movie
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
            flag = "--out" if args.out else "run folder"
            if args.summary:
                out = Path(args.out) if args.out else folder / SUMMARY_FILE
                _check_writable(out, folder=False, flag=flag)
                with _writing(out):
                    out.parent.mkdir(parents=True, exist_ok=True)
                    summary_figure(run, out)
                log.info("wrote %s", out)
            elif args.html:
                from abm.replay.html import write_run_html

                out = Path(args.out) if args.out else folder / HTML_FILE
                _check_writable(out, folder=False, flag=flag)
                with _writing(out):
                    out.parent.mkdir(parents=True, exist_ok=True)
                    page = write_run_html(
                        run, out, field, view, every=args.every, max_mb=args.max_mb
                    )
                size = page.bytes / 1e6
                log.info("wrote %s (%.1f MB, %d plots)", out, size, page.n_plots)
                for note in page.notes:
                    log.info("thinned: %s", note)
            elif args.interactive:
                import matplotlib.pyplot as plt

                from abm.replay.viewer import SliderViewer

                viewer = SliderViewer(run, field, view)
                viewer.goto(run.n_frames - 1)
                plt.show()
            else:
                out = Path(args.out) if args.out else folder / f"{field}.mp4"
                _check_writable(out, folder=out.suffix.lower() not in MOVIE_SUFFIXES, flag=flag)
                with _writing(out):
                    written = write_movie(
                        run, field, out, view=view, fps=args.fps, dpi=args.dpi, every=args.every
                    )
                n = len(range(0, run.n_frames, args.every))
                log.info("wrote %s (%d frames)", written, n)
    except (RunFileError, IndexError) as exc:
        _error(str(exc))


@contextlib.contextmanager
def _writing(out: Path) -> Iterator[None]:
    """An OSError while writing ``out`` (disk full, ...) is one line and exit code 1."""
    try:
        yield
    except OSError as exc:
        print(f"abm-replay: error: writing {out} failed: {exc.strerror or exc}", file=sys.stderr)
        sys.unraisablehook = lambda _: None  # the writer's own close retries the write
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
