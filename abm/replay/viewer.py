"""Interactive viewer: a frame figure with a time slider that reads frames lazily.

Data flow: :class:`abm.replay.Run` -> :class:`SliderViewer` (a :class:`FramePlot` plus a
matplotlib Slider) -> the screen (``abm-replay --interactive``) or a saved figure. Moving the
slider reads only the frame it lands on.
"""

from __future__ import annotations

import os

from matplotlib.figure import Figure
from matplotlib.widgets import Slider

from abm.replay.frames import FramePlot, View
from abm.replay.run import Run


class SliderViewer:
    """``SliderViewer(run, field)``; ``.slider.set_val(k)`` or :meth:`goto` moves to frame k."""

    def __init__(self, run: Run, field: str, view: View | None = None, fig: Figure | None = None):
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(10.0, 4.6))
        self.plot = FramePlot(run, field, view, fig=fig, bottom=0.2)
        self.fig = fig
        slider_ax = fig.add_axes((0.12, 0.03, 0.6, 0.04))
        last = max(run.n_frames - 1, 0)
        self.slider = Slider(slider_ax, "frame", 0, max(last, 1), valinit=0, valstep=1, valfmt="%d")
        self.slider.on_changed(self._moved)

    def _moved(self, value: float) -> None:
        k = min(round(value), self.plot.run.n_frames - 1)
        if k != self.plot.frame:
            self.plot.show(k)
            self.fig.canvas.draw_idle()

    @property
    def frame(self) -> int:
        return self.plot.frame

    def goto(self, frame: int) -> None:
        self.slider.set_val(int(frame) % self.plot.run.n_frames)

    def save(self, path: str | os.PathLike, dpi: int = 96) -> None:
        self.fig.savefig(path, dpi=dpi)
