"""The validation report: every target's rows in one table, written as CSV with the figures.

Data flow: :class:`~abm.validation.runs.Runs` -> ``check(runs)`` of each target module
(c1.py ... c7.py) -> :func:`collect` (one table, figures by file name) -> :func:`write`
(``validation_results.csv`` + ``c*.png`` in the output folder, docs/figures by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from abm.validation import c1, c2, c3, c4, c5, c6, c7
from abm.validation.plotting import style
from abm.validation.runs import Runs
from abm.validation.verdicts import COLUMNS, Row

log = logging.getLogger(__name__)

CSV_NAME = "validation_results.csv"
Check = Callable[[Runs], tuple[list[Row], Figure | None]]
# target -> (its check, the file name of its figure)
TARGETS: dict[str, tuple[Check, str]] = {
    "C1": (c1.check, "c1_fluid_cytokines.png"),
    "C2": (c2.check, "c2_msc_persistence.png"),
    "C3": (c3.check, "c3_tcell_suppression.png"),
    "C4": (c4.check, "c4_il10_pge2.png"),
    "C5": (c5.check, "c5_therapy.png"),
    "C6": (c6.check, "c6_primed.png"),
    "C7": (c7.check, "c7_catabolism_matrix.png"),
}


def collect(runs: Runs) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """Run every check, in order C1..C7: the table (columns
    :data:`~abm.validation.verdicts.COLUMNS`) and the figures by file name."""
    rows: list[Row] = []
    figures: dict[str, Figure] = {}
    for target, (check, name) in TARGETS.items():
        target_rows, fig = check(runs)
        rows += target_rows
        if fig is not None:
            figures[name] = fig
        log.info("%s: %d rows", target, len(target_rows))
    return pd.DataFrame(rows, columns=list(COLUMNS)), figures


def write(table: pd.DataFrame, figures: dict[str, Figure], out: Path | str) -> Path:
    """Write the table as ``out/validation_results.csv`` (5 significant digits, NaN empty) and
    each figure as ``out/<name>``; returns the CSV path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with style():
        for name, fig in figures.items():
            fig.savefig(out / name)
    path = out / CSV_NAME
    table.to_csv(path, index=False, float_format="%.5g")
    return path
