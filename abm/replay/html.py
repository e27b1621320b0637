"""One self-contained HTML page for one run: field frames with a time slider, metrics, config.

Data flow: :class:`abm.replay.Run` -> :func:`write_run_html` -> ``run.html`` (``abm-replay
--html``): plotly graphs with the plotly.js bundle embedded (no network, no server: the page
opens from any file system, e.g. a cluster's copied to a laptop). The page holds

- the run's configuration (the keys that set an experiment, and the whole config folded);
- a heat map of one field (3D: a slice or a max projection, as in the movies) with a time
  slider and play buttons: plotly frames, one per shown snapshot, with a fixed colour range;
- the key readouts over time, one panel each, and every metric through a dropdown.

Size: each frame is stored as float32 (base64). Frames and lattices are thinned until the
frames fit :data:`FRAME_BUDGET_FRACTION` of ``max_mb`` (default 30 MB for the whole page): at
most :data:`MAX_SIDE` pixels along an axis (block means), at most :data:`MAX_FRAMES` frames
(evenly spaced, the last one kept), then fewer frames down to :data:`MIN_FRAMES`, then coarser
blocks. The page says what was thinned. Reads files only.
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from abm.errors import RunFileError
from abm.replay.frames import View
from abm.replay.run import Run
from abm.units import MIN_PER_DAY

DEFAULT_MAX_MB = 30.0
PLOTLY_JS_MB = 5.0  # the embedded plotly.js bundle (about 4.8 MB), counted against max_mb
FRAME_BUDGET_FRACTION = 0.85  # of what max_mb leaves after plotly.js: the field frames
MAX_SIDE = 400  # pixels along one axis of the heat map (more cannot be seen on a screen)
MAX_FRAMES = 400  # slider positions
MIN_FRAMES = 30  # thinning frames stops here; then the lattice is coarsened
MAX_POINTS = 2000  # points per metric curve
MAX_TICK_LABELS = 15  # slider tick labels shown up to this many snapshots
KEY_READOUTS = (
    ("il1b_fluid", "IL-1β fluid"),
    ("tnf_fluid", "TNF-α fluid"),
    ("il6_fluid", "IL-6 fluid"),
    ("il10_fluid", "IL-10 fluid"),
    ("macrophage_m1", "macrophages M1"),
    ("macrophage_m2", "macrophages M2"),
    ("tcell_treg", "T cells Treg"),
    ("fls_activated", "FLS activated"),
    ("msc_alive", "MSCs alive"),
    ("chondrocyte_catabolic", "chondrocytes catabolic"),
    ("cartilage_agg", "aggrecan"),
    ("cartilage_col2", "collagen II"),
)
CONFIG_KEYS = (
    "seed",
    "scenario.name",
    "therapy.name",
    "therapy.dose",
    "therapy.day",
    "therapy.prelicensed",
    "therapy.knockouts",
    "perturb.deplete_macrophages",
    "perturb.deplete_day",
    "lattice.shape",
    "lattice.dx_um",
    "sim.days",
    "sim.dt_min",
    "output.snapshot_every_min",
    "backend.name",
    "design.file",
    "design.row",
    "resume",
)
PLAYER_ARGS = {
    "mode": "immediate",
    "frame": {"duration": 0, "redraw": True},
    "transition": {"duration": 0},
}


@dataclass
class Thinning:
    """Which frames and how coarse: ``frames`` (indices into the run), ``block`` (voxels per
    pixel along each axis), ``frame_bytes`` (their estimated size in the page) and ``budget``
    (what they may take); :attr:`notes` says what was left out."""

    frames: list[int]
    block: int
    frame_bytes: float
    budget: float
    n_frames: int
    every: int
    image_shape: tuple[int, int]
    max_mb: float

    @property
    def notes(self) -> list[str]:
        out = []
        if self.every > 1:
            out.append(f"every {self.every}-th snapshot (--every {self.every})")
        total = len(range(0, self.n_frames, self.every))
        if len(self.frames) < total:
            out.append(
                f"{len(self.frames)} of {total} snapshots shown, evenly spaced, to keep the "
                f"page under {self.max_mb:g} MB"
            )
        if self.block > 1:
            h, w = (math.ceil(n / self.block) for n in self.image_shape)
            out.append(
                f"lattice shown at 1/{self.block} resolution ({self.image_shape[0]} x "
                f"{self.image_shape[1]} voxels as {h} x {w} block means)"
            )
        return out


def _frame_bytes(shape: tuple[int, int], block: int) -> float:
    """Bytes one heat-map frame may take in the page: float32 as base64, + 30% for plotly's
    escapes (it writes ``/`` as ``\\u002f``: 6 characters; field data has many)."""
    h, w = (math.ceil(n / block) for n in shape)
    return h * w * 4 * 4 / 3 * 1.3 + 400


def encoded_bytes(image: np.ndarray) -> int:
    """Bytes the float32 ``image`` takes in the page (base64 with plotly's escapes)."""
    data = base64.b64encode(np.ascontiguousarray(image, dtype=np.float32).tobytes())
    return len(data) + 5 * data.count(b"/") + 200


def _spaced(indices: list[int], n: int) -> list[int]:
    """``n`` of ``indices``, evenly spaced, first and last kept."""
    if len(indices) <= n:
        return list(indices)
    pick = np.unique(np.round(np.linspace(0, len(indices) - 1, n)).astype(int))
    return [indices[i] for i in pick]


def plan(
    n_frames: int, image_shape: tuple[int, int], every: int = 1, max_mb: float = DEFAULT_MAX_MB
) -> Thinning:
    """How many frames, how coarse, for a page of at most ``max_mb`` (see the module doc)."""
    frames = list(range(0, n_frames, every))
    budget = max(max_mb - PLOTLY_JS_MB, 0.5) * 1e6 * FRAME_BUDGET_FRACTION
    block = max(1, math.ceil(max(image_shape) / MAX_SIDE))
    if len(frames) > MAX_FRAMES:
        frames = _spaced(frames, MAX_FRAMES)
    while (len(frames) + 1) * _frame_bytes(image_shape, block) > budget:  # + the first again
        fit = int(budget // _frame_bytes(image_shape, block)) - 1
        if len(frames) > MIN_FRAMES and fit >= 1:
            frames = _spaced(frames, max(fit, MIN_FRAMES))
        elif block >= max(image_shape):
            frames = frames[-1:]
            break
        else:
            block += 1
    size = (len(frames) + 1) * _frame_bytes(image_shape, block)
    return Thinning(frames, block, size, budget, n_frames, every, tuple(image_shape), max_mb)


def block_mean(image: np.ndarray, block: int) -> np.ndarray:
    """Means over ``block`` x ``block`` voxels (partial blocks at the edges too), float32."""
    if block == 1:
        return np.asarray(image, dtype=np.float32)
    h, w = image.shape
    H, W = math.ceil(h / block) * block, math.ceil(w / block) * block
    padded = np.full((H, W), np.nan, dtype=np.float64)
    padded[:h, :w] = image
    tiles = padded.reshape(H // block, block, W // block, block)
    with np.errstate(invalid="ignore"):
        return np.nanmean(tiles, axis=(1, 3)).astype(np.float32)


# -- page helpers (also used by abm-sweep-report) ----
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f2f2f2; }
tr.failed td, tr.unfinished td, tr.missing td { background: #fde8e8; }
tr.running td { background: #fff6dd; }
.warn { background: #fde8e8; border: 1px solid #e99; padding: 0.6em 1em; }
.note { color: #555; font-size: 0.9em; }
.plot { width: 100%; }
"""


def plotly_head() -> str:
    """A ``<script>`` holding the whole plotly.js bundle (the page needs no network)."""
    from plotly.offline import get_plotlyjs

    return f'<script type="text/javascript">{get_plotlyjs()}</script>'


def figure_div(fig: Any, div_id: str, height: int) -> str:
    """A plotly figure as a ``<div>`` + script (plotly.js not included: :func:`plotly_head`)."""
    import plotly.io as pio

    fig.update_layout(height=height, template="plotly_white")
    return pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        default_width="100%",
        default_height=f"{height}px",
        auto_play=False,
        config={"responsive": True, "displaylogo": False},
    )


def html_table(frame: pd.DataFrame, row_class: str | None = None) -> str:
    """A plain HTML table of ``frame`` (escaped; NaN shown empty); rows classed by a column."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cls = f' class="{html.escape(str(row[row_class]))}"' if row_class else ""
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.tolist())
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


# -- page parts --------------------------------------------------------------------------------
def config_rows(run: Run) -> list[tuple[str, str]]:
    """(key, value) of the keys in :data:`CONFIG_KEYS` that the run's config has."""
    try:
        cfg = run.config
    except RunFileError:
        return []
    rows = []
    for key in CONFIG_KEYS:
        value = OmegaConf.select(cfg, key, default="\0")
        if isinstance(value, str) and value == "\0":
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        rows.append((key, str(value)))
    return rows


def _field_figure(run: Run, name: str, view: View, thin: Thinning) -> Any:
    import plotly.graph_objects as go

    images = [block_mean(view.image(run.field(name, k)), thin.block) for k in thin.frames]
    sizes = [encoded_bytes(img) for img in images]
    while len(images) > 1 and sum(sizes) + sizes[0] > thin.budget:  # data that packs worse
        keep = _spaced(list(range(len(images))), max(1, len(images) // 2))
        images, sizes = [images[i] for i in keep], [sizes[i] for i in keep]
        thin.frames = [thin.frames[i] for i in keep]
    thin.frame_bytes = float(sum(sizes) + sizes[0])
    stack = np.stack(images)
    finite = stack[np.isfinite(stack)]
    lo = float(min(finite.min(), 0.0)) if finite.size else 0.0
    hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    hi = hi if hi > lo else lo + 1.0
    step = run.dx_um * thin.block
    days = run.time_min / MIN_PER_DAY
    units = run.field_units.get(name, "")
    label = f"{name} ({units}{view.label()})"

    def title(k: int) -> str:
        return f"{label}, day {days[k]:.3f} (snapshot {k + 1} of {run.n_frames})"

    heat = go.Heatmap(
        z=images[0],
        x0=step / 2,
        dx=step,
        y0=step / 2,
        dy=step,
        zmin=lo,
        zmax=hi,
        colorscale="Magma",
        colorbar={"title": {"text": units}},
        hovertemplate="x %{x:.0f} µm, y %{y:.0f} µm: %{z:.4g}<extra></extra>",
    )
    traces = [heat]
    comp = run.compartment
    if view.axis is not None:
        mid = view.index if view.project is None else run.shape[view.axis] // 2
        comp = np.take(comp, mid, axis=view.axis)
    codes = np.unique(comp)
    if codes.size > 1:
        traces.append(
            go.Contour(
                z=comp.astype(np.float32),
                x0=run.dx_um / 2,
                dx=run.dx_um,
                y0=run.dx_um / 2,
                dy=run.dx_um,
                contours={
                    "coloring": "none",
                    "start": float(codes[0]) + 0.5,
                    "end": float(codes[-2]) + 0.5,
                    "size": 1.0,
                },
                line={"color": "white", "width": 1},
                showscale=False,
                hoverinfo="skip",
                name="compartments",
            )
        )
    frames = [
        go.Frame(
            name=str(k), data=[go.Heatmap(z=img)], traces=[0], layout={"title": {"text": title(k)}}
        )
        for k, img in zip(thin.frames, images, strict=True)
    ]
    steps = [
        {"method": "animate", "label": _day(days[k]), "args": [[str(k)], PLAYER_ARGS]}
        for k in thin.frames
    ]
    h, w = images[0].shape
    fig = go.Figure(data=traces, frames=frames)
    fig.update_layout(
        title={"text": title(thin.frames[0])},
        xaxis={"title": {"text": "µm"}, "constrain": "domain"},
        yaxis={
            "title": {"text": "µm (bone → synovium)"},
            "scaleanchor": "x",
            "constrain": "domain",
        },
        sliders=[
            {
                "active": 0,
                "steps": steps,
                "currentvalue": {"prefix": "day ", "font": {"color": "#444"}},
                # many snapshots: the tick labels would overlap; the current day is shown above
                "font": {"color": "rgba(0,0,0,0)" if len(steps) > MAX_TICK_LABELS else "#444"},
                "pad": {"t": 40},
                "len": 0.9,
                "x": 0.1,
            }
        ],
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": 0,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"t": 45, "r": 10},
                "showactive": False,
                "buttons": [
                    {
                        "label": "▶",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                **PLAYER_ARGS,
                                "frame": {"duration": 150, "redraw": True},
                                "fromcurrent": True,
                            },
                        ],
                    },
                    {"label": "❚❚", "method": "animate", "args": [[None], PLAYER_ARGS]},
                ],
            }
        ],
        margin={"t": 60, "b": 40},
    )
    height = int(min(900, max(420, 560 * h / max(w, 1) + 220)))
    return fig, height


def _day(day: float) -> str:
    """A day as a slider label: up to 3 decimals, no trailing zeros (0.021, 0.5, 12.25, 90)."""
    return f"{day:.3f}".rstrip("0").rstrip(".") or "0"


def _sampled(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, MAX_POINTS)).astype(int))


def _injection_day(run: Run) -> float | None:
    try:
        from abm.replay.plots import injection_day

        return injection_day(run)
    except (RunFileError, AttributeError, TypeError, ValueError):
        return None


def _metrics_figures(run: Run) -> list[tuple[Any, int]]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = run.metrics
    if not len(metrics) or "time_min" not in metrics:
        return []
    rows = _sampled(len(metrics))
    t = metrics["time_min"].to_numpy(dtype=float)[rows] / MIN_PER_DAY
    inj = _injection_day(run)
    if inj is not None and not t[0] <= inj <= t[-1]:
        inj = None  # outside the run: no line (it would stretch the axes)

    def line(col: str, extra: str = "", **kw: Any) -> Any:
        """One metric over time (the sampled rows)."""
        hover = "day %{x:.3f}: %{y:.4g}<extra>" + extra + "</extra>"
        y = metrics[col].to_numpy(dtype=float)[rows]
        return go.Scatter(x=t, y=y, mode="lines", name=col, hovertemplate=hover, **kw)

    out = []
    keys = [(c, lab) for c, lab in KEY_READOUTS if c in metrics]
    if keys:
        ncols = min(4, len(keys))
        nrows = math.ceil(len(keys) / ncols)
        fig = make_subplots(
            rows=nrows,
            cols=ncols,
            subplot_titles=[lab for _, lab in keys],
            horizontal_spacing=0.06,
            vertical_spacing=0.14,
        )
        for i, (col, _) in enumerate(keys):
            r, c = i // ncols + 1, i % ncols + 1
            fig.add_trace(line(col, showlegend=False, extra=col), row=r, col=c)
            if inj is not None:
                fig.add_vline(
                    x=inj, line={"dash": "dot", "color": "grey", "width": 1}, row=r, col=c
                )
        fig.update_xaxes(title_text="days", title_font_size=10, row=nrows)
        note = f" (dotted: MSC injection, day {inj:g})" if inj is not None else ""
        fig.update_layout(title_text="key readouts over time" + note)
        out.append((fig, 250 * nrows + 110))
    names = [c for c in metrics.columns if c != "time_min"]
    if names:
        fig = go.Figure()
        for i, col in enumerate(names):
            fig.add_trace(line(col, visible=i == 0))
        buttons = [
            {
                "label": col,
                "method": "update",
                "args": [
                    {"visible": [j == i for j in range(len(names))]},
                    {"yaxis.title.text": col},
                ],
            }
            for i, col in enumerate(names)
        ]
        fig.update_layout(
            title_text="any metric (choose in the menu)",
            updatemenus=[
                {
                    "buttons": buttons,
                    "direction": "down",
                    "x": 1.0,
                    "xanchor": "right",
                    "y": 1.15,
                    "yanchor": "top",
                    "active": 0,
                }
            ],
            xaxis_title="days",
            yaxis_title=names[0],
        )
        out.append((fig, 420))
    return out


@dataclass
class PageInfo:
    """What :func:`write_run_html` wrote: the path, its size, the number of plots, the notes."""

    path: Path
    bytes: int
    n_plots: int
    notes: list[str]


def write_run_html(
    run: Run,
    out: str | os.PathLike,
    field_name: str,
    view: View | None = None,
    *,
    every: int = 1,
    max_mb: float = DEFAULT_MAX_MB,
) -> PageInfo:
    """Write the page of ``run`` (field ``field_name``) to ``out``; see the module doc."""
    run.check_field(field_name)
    if run.n_frames == 0:
        raise RunFileError(f"{run.path}: holds no frame yet")
    view = (view or View()).resolve(run.shape)
    image_shape = view.image(np.empty(run.shape, dtype=np.int8)).shape
    thin = plan(run.n_frames, image_shape, every=every, max_mb=max_mb)
    figures = [_field_figure(run, field_name, view, thin), *_metrics_figures(run)]
    rows = config_rows(run)
    attrs = run.attrs
    try:
        full = OmegaConf.to_yaml(run.config)
    except RunFileError:
        full = "(unreadable)"
    days = run.time_min / MIN_PER_DAY
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Run {html.escape(run.path.parent.name)}</title>",
        f"<style>{PAGE_STYLE}</style>",
        plotly_head(),
        "</head><body>",
        f"<h1>Run: {html.escape(str(run.path.parent))}</h1>",
        "<p>"
        + html.escape(
            f"{run.ndim}D lattice {' x '.join(map(str, run.shape))} at {run.dx_um:g} µm, "
            f"{run.n_frames} snapshots (day {days[0]:.3f} to {days[-1]:.3f}), "
            f"{len(run.metrics)} metric rows; abm {attrs.get('abm_version', '?')}, "
            f"backend {attrs.get('backend', '?')}"
        )
        + "</p>",
    ]
    if rows:
        cells = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        parts.append(f"<h2>Configuration</h2><table>{cells}</table>")
    parts.append(
        f"<details><summary>whole configuration</summary><pre>{html.escape(full)}</pre></details>"
    )
    parts.append(f"<h2>Field {html.escape(field_name)}</h2>")
    parts.append(
        '<p class="note">Move the slider (or press ▶) to step through the snapshots; '
        "white lines: compartment boundaries; colour range fixed over the shown "
        "snapshots (up to the 99.5th percentile).</p>"
    )
    if thin.notes:
        parts.append('<p class="warn">Thinned: ' + html.escape("; ".join(thin.notes)) + "</p>")
    for i, (fig, height) in enumerate(figures):
        if i == 1:
            parts.append("<h2>Metrics over time</h2>")
        parts.append(figure_div(fig, ["field", "readouts", "metric"][min(i, 2)], height))
    parts.append("</body></html>")
    path = Path(out)
    path.write_text("\n".join(parts), encoding="utf-8")
    return PageInfo(path, path.stat().st_size, len(figures), thin.notes)
