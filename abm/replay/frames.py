"""One replay frame as a figure: a field heat map, cells on top, compartments, metric panels.

Data flow: :class:`abm.replay.Run` -> :class:`FramePlot` (artists made once, updated per frame)
-> movies (:mod:`abm.replay.movie`) and the slider viewer (:mod:`abm.replay.viewer`).
3D runs are shown as one slice (``axis``, ``index``) or a maximum projection along ``axis``.
Display: lattice axis 0 (bone -> synovium) runs up, the other in-plane axis to the right, in µm.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from abm.errors import RunFileError
from abm.replay.plots import fraction
from abm.replay.run import AXIS_NAMES, Run
from abm.units import MIN_PER_DAY

TYPE_MARKERS = ("o", "^", "s", "D", "*", "v", "P", "X")
# (panel title, [(label, column or (numerator, denominators))])
METRIC_PANELS = (
    (
        "fluid cytokines (ng/mL)",
        [
            ("IL-1β", "il1b_fluid"),
            ("TNF-α", "tnf_fluid"),
            ("IL-10", "il10_fluid"),
            ("PGE2", "pge2_fluid"),
        ],
    ),
    (
        "fractions",
        [
            ("M1", ("macrophage_m1", ("macrophage_m0", "macrophage_m1", "macrophage_m2"))),
            ("M2", ("macrophage_m2", ("macrophage_m0", "macrophage_m1", "macrophage_m2"))),
            ("aggrecan", "cartilage_agg"),
            ("collagen II", "cartilage_col2"),
        ],
    ),
)


@dataclass(frozen=True)
class View:
    """How to cut a 3D lattice down to the 2D image: a slice at ``index`` or a max projection.

    ``axis`` is the lattice axis cut (default: the last one); ``index`` defaults to its middle.
    2D lattices ignore both.
    """

    axis: int | None = None
    index: int | None = None
    project: str | None = None  # None (slice) or "max"

    def resolve(self, shape: tuple[int, ...]) -> View:
        if len(shape) == 2:
            return View()
        axis = 2 if self.axis is None else int(self.axis)
        if not 0 <= axis < 3:
            raise ValueError(f"--axis {axis}: a 3D lattice has axes 0, 1, 2")
        if self.project not in (None, "max"):
            raise ValueError(f"--project {self.project}: only 'max' is supported")
        index = shape[axis] // 2 if self.index is None else int(self.index)
        if not 0 <= index < shape[axis]:
            raise ValueError(f"--slice {index}: axis {axis} has indices 0..{shape[axis] - 1}")
        return View(axis, index, self.project)

    def image(self, a: np.ndarray) -> np.ndarray:
        """The 2D image of a (*shape) array."""
        if self.axis is None:
            return a
        if self.project == "max":
            return a.max(axis=self.axis)
        return np.take(a, self.index, axis=self.axis)

    def points(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which cells of ``pos`` (N, ndim) are shown (mask (N,)), and their (M, 2) indices."""
        if self.axis is None:
            return np.ones(len(pos), bool), pos
        shown = (
            np.ones(len(pos), bool) if self.project == "max" else pos[:, self.axis] == self.index
        )
        return shown, np.delete(pos[shown], self.axis, axis=1)

    def label(self) -> str:
        if self.axis is None:
            return ""
        what = "max projection" if self.project == "max" else f"slice {self.index}"
        return f", {what} along axis {self.axis}"


def _fixed_range(run: Run, field: str, samples: int = 5) -> tuple[float, float]:
    """A colour range for the whole movie from a few frames (the 99.5th percentile)."""
    frames = np.unique(np.linspace(0, run.n_frames - 1, min(samples, run.n_frames)).astype(int))
    values = np.concatenate([run.field(field, k).ravel() for k in frames])
    lo, hi = float(np.nanmin(values)), float(np.nanpercentile(values, 99.5))
    lo = min(lo, 0.0)
    return lo, hi if hi > lo else lo + 1.0


def _series(metrics, spec) -> np.ndarray | None:
    if isinstance(spec, str):
        return metrics[spec].to_numpy(dtype=float) if spec in metrics else None
    return fraction(metrics, *spec)


class FramePlot:
    """The figure of one frame of ``run``; :meth:`show` moves it to another frame.

    Pass ``fig`` to draw into an existing figure (the interactive viewer does); otherwise an
    Agg figure of ``figsize`` inches is made. ``bottom`` leaves room below (for a slider).
    """

    def __init__(
        self,
        run: Run,
        field: str,
        view: View | None = None,
        *,
        fig: Figure | None = None,
        figsize: tuple[float, float] = (10.0, 4.0),
        bottom: float = 0.12,
    ) -> None:
        run.check_field(field)
        if run.n_frames == 0:
            raise RunFileError(f"{run.path}: holds no frame yet")
        self.run, self.field, self.view = run, field, (view or View()).resolve(run.shape)
        self.fig = fig if fig is not None else Figure(figsize=figsize)
        if self.fig.canvas is None or not hasattr(self.fig.canvas, "buffer_rgba"):
            FigureCanvasAgg(self.fig)
        gs = self.fig.add_gridspec(
            2,
            3,
            width_ratios=(1.7, 0.5, 1.2),
            left=0.06,
            right=0.98,
            bottom=bottom,
            top=0.9,
            wspace=0.35,
            hspace=0.45,
        )
        self.ax = self.fig.add_subplot(gs[:, 0])
        legend_ax = self.fig.add_subplot(gs[:, 1])
        legend_ax.axis("off")
        self.frame = -1
        self._make_image()
        self._make_cells(legend_ax)
        self._make_metrics([self.fig.add_subplot(gs[0, 2]), self.fig.add_subplot(gs[1, 2])])
        self.show(0)

    # -- artists, made once -------------------------------------------------------------------
    def _make_image(self) -> None:
        run, ax = self.run, self.ax
        img = self.view.image(run.field(self.field, 0))
        dx = run.dx_um
        self.extent = (0.0, img.shape[1] * dx, 0.0, img.shape[0] * dx)
        vmin, vmax = _fixed_range(run, self.field)
        self.image = ax.imshow(
            img,
            origin="lower",
            extent=self.extent,
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        self.fig.colorbar(
            self.image, ax=ax, fraction=0.046, pad=0.02, label=run.field_units.get(self.field, "")
        )
        comp = run.compartment
        if self.view.axis is not None:  # a projection outlines the middle slice
            mid = self.view.index if self.view.project is None else run.shape[self.view.axis] // 2
            comp = np.take(comp, mid, axis=self.view.axis)
        codes = np.unique(comp)
        if codes.size > 1:
            ys = (np.arange(comp.shape[0]) + 0.5) * dx
            xs = (np.arange(comp.shape[1]) + 0.5) * dx
            ax.contour(xs, ys, comp, levels=codes[:-1] + 0.5, colors="w", linewidths=0.6, alpha=0.8)
        ax.set_xlabel("µm")
        ax.set_ylabel("µm (bone → synovium)")

    def _make_cells(self, legend_ax: Axes) -> None:
        run = self.run
        cmap = matplotlib.colormaps["tab20"]
        pheno_codes = sorted(run.phenotypes) or [0]
        self.pheno_color = {c: cmap(i % 20) for i, c in enumerate(pheno_codes)}
        self.scatter = {}
        for i, (code, name) in enumerate(sorted(run.cell_types.items())):
            marker = TYPE_MARKERS[i % len(TYPE_MARKERS)]
            self.scatter[code] = self.ax.scatter(
                [], [], s=5, marker=marker, linewidths=0.3, edgecolors="k", label=name
            )
        handles = [
            Line2D(
                [], [], ls="", marker=TYPE_MARKERS[i % len(TYPE_MARKERS)], color="0.3", label=name
            )
            for i, (_, name) in enumerate(sorted(run.cell_types.items()))
        ]
        handles += [
            Line2D([], [], ls="", marker="s", color=self.pheno_color[c], label=name)
            for c, name in sorted(run.phenotypes.items())
        ]
        legend_ax.legend(
            handles=handles,
            loc="center left",
            fontsize=6,
            frameon=False,
            title="cells: type, phenotype",
            title_fontsize=6,
            borderaxespad=0,
        )

    def _make_metrics(self, axes: list[Axes]) -> None:
        metrics = self.run.metrics
        self.days = self.run.time_min / MIN_PER_DAY
        t = metrics["time_min"].to_numpy(dtype=float) / MIN_PER_DAY if len(metrics) else np.zeros(0)
        self.cursors = []
        for ax, (title, items) in zip(axes, METRIC_PANELS, strict=True):
            for label, spec in items:
                values = _series(metrics, spec)
                if values is not None:
                    ax.plot(t, values, lw=1, label=label)
            ax.set_title(title, fontsize=7)
            ax.tick_params(labelsize=6)
            if ax.lines:
                ax.legend(fontsize=5, loc="best", ncols=2)
            self.cursors.append(ax.axvline(0.0, color="k", lw=0.8))
        axes[-1].set_xlabel("time (days)", fontsize=7)

    # -- per frame ----------------------------------------------------------------------------
    def show(self, frame: int) -> None:
        """Move every artist to ``frame`` (reads that frame's field and cells only)."""
        run = self.run
        k = int(frame) % run.n_frames
        self.image.set_data(self.view.image(run.field(self.field, k)))
        cells = run.cells(k)
        shown, ij = self.view.points(cells[list(AXIS_NAMES[: run.ndim])].to_numpy())
        types = cells["type"].to_numpy()[shown]
        phenos = cells["phenotype"].to_numpy()[shown]
        xy = (ij[:, ::-1] + 0.5) * run.dx_um  # axis 1 to the right, axis 0 up
        for code, sc in self.scatter.items():
            mine = types == code
            sc.set_offsets(xy[mine] if mine.any() else np.empty((0, 2)))
            sc.set_facecolors([self.pheno_color.get(int(p), "w") for p in phenos[mine]])
        for cursor in self.cursors:
            cursor.set_xdata([self.days[k], self.days[k]])
        units = run.field_units.get(self.field, "")
        self.ax.set_title(
            f"{self.field} ({units}{self.view.label()}) - day {self.days[k]:.2f}", fontsize=8
        )
        self.frame = k

    def rgb(self) -> np.ndarray:
        """The current figure as an (H, W, 3) uint8 array."""
        canvas = self.fig.canvas
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
