"""Movies of a run: MP4 (imageio-ffmpeg's bundled ffmpeg), GIF, or a folder of PNG frames.

Data flow: :class:`abm.replay.Run` -> :class:`abm.replay.frames.FramePlot` (Agg, one frame at
a time, read lazily) -> imageio -> the movie file. Used by ``abm-replay``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
from tqdm.auto import tqdm

from abm.replay.frames import FramePlot, View
from abm.replay.run import Run

log = logging.getLogger(__name__)

MOVIE_SUFFIXES = (".mp4", ".gif")


def ffmpeg_available() -> bool:
    """Whether imageio-ffmpeg can find an ffmpeg binary (its bundled one or the system's)."""
    try:
        import imageio_ffmpeg

        return bool(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return False


def write_movie(
    run: Run,
    field: str,
    out: str | os.PathLike,
    *,
    view: View | None = None,
    fps: float = 6.0,
    dpi: int = 96,
    every: int = 1,
    progress: bool | None = None,
) -> Path:
    """Render every ``every``-th frame of ``field`` to ``out``; returns the path written.

    ``out`` ending in .mp4 writes H.264 through ffmpeg (a .gif beside it when no ffmpeg is
    found), .gif an animated GIF, anything else is a folder of ``frame_NNNN.png``. Frame sizes
    are multiples of 16 pixels for ``dpi`` a multiple of 8 (the figure is 10 x 4 inches).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".mp4" and not ffmpeg_available():
        log.warning("no ffmpeg found (imageio-ffmpeg): writing a GIF instead of %s", out)
        out, suffix = out.with_suffix(".gif"), ".gif"
    plot = FramePlot(run, field, view)
    plot.fig.set_dpi(dpi)
    frames = range(0, run.n_frames, max(1, int(every)))
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(frames, desc=f"{field} -> {out.name}", unit="frame", disable=not show)
    if suffix in MOVIE_SUFFIXES:
        out.parent.mkdir(parents=True, exist_ok=True)
        options = (
            {"fps": fps, "codec": "libx264", "quality": 7, "macro_block_size": 16}
            if suffix == ".mp4"
            else {"duration": 1000.0 / fps, "loop": 0}
        )
        with imageio.get_writer(out, mode="I", **options) as writer:
            for k in bar:
                plot.show(k)
                writer.append_data(plot.rgb())
    else:
        out.mkdir(parents=True, exist_ok=True)
        for k in bar:
            plot.show(k)
            iio.imwrite(out / f"frame_{k:04d}.png", plot.rgb())
    return out
