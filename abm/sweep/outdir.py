"""An analysis folder OUT that holds one request (abm-sensitivity, abm-calibrate, abm-trial):
atomic writes of its files, the fields in which a new request differs from the stored one,
and moving an old request's files aside to ``OUT/previous-<time>/`` (``--force-new``).

Data flow: a command's request (a plain mapping, ``OUT/request.json``) -> :func:`request_diff`
against the stored one -> reuse, refuse with one line, or :func:`move_aside` and start afresh;
every table and text the command writes goes through :func:`write_text` / :func:`write_csv`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_csv(path: Path, table: Any) -> Path:
    """Write a DataFrame to ``path`` (no index) through a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_figure(path: Path, fig: Any, dpi: int = 110) -> Path:
    """Save a matplotlib figure to ``path`` through a temporary file, close it, replace."""
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def request_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The top-level fields in which two requests differ (empty: the same request)."""
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def move_aside(out: Path, paths: Iterable[Path]) -> Path:
    """Move the existing ``paths`` (files or folders of ``out``) into a new
    ``out/previous-<time>/``; returns that folder."""
    aside = out / f"previous-{datetime.now():%Y%m%d-%H%M%S}"
    aside.mkdir(parents=True)
    for p in paths:
        if p.exists():
            p.rename(aside / p.name)
    return aside
