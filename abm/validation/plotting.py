"""Figure style of the validation: arm colours, a figure factory (no pyplot state) and the
style every check draws in.

Data flow: the target checks (c1.py ... c7.py) draw on :func:`figure` inside :func:`styled`
-> report.py saves the figures, in :func:`style`, next to ``validation_results.csv``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import matplotlib as mpl
from matplotlib.figure import Figure

STYLE = {"font.size": 9, "figure.dpi": 100}
COLORS = {
    "healthy": "tab:green",
    "oa": "tab:red",
    "oa+msc": "tab:blue",
    "oa+msc primed": "tab:purple",
    "oa+msc pge2 KO": "tab:orange",
    "dose 1e6": "#9ecae1",
    "dose 1e7": "#4292c6",
    "dose 1e8": "#08306b",
    "dose 1e6 primed": "#bc80bd",
}

F = TypeVar("F", bound=Callable[..., Any])


def style() -> contextlib.AbstractContextManager:
    """The validation's matplotlib style, for drawing and for saving (tick density and label
    size are decided when a figure is drawn)."""
    return mpl.rc_context(STYLE)


def styled(fn: F) -> F:
    """Run ``fn`` (a check that draws a figure) in :func:`style`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with style():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def figure(nrows: int, ncols: int, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """A new Figure (not registered with pyplot) and its axes, as ``Figure.subplots`` gives."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)
