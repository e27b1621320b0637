"""Benchmark reports: bench.json, bench.png and the plain-text tables (last stage of abm-bench).

Data flow: result rows of :mod:`abm.bench.suite` + the options + the machine
(:mod:`abm.bench.machine`) -> :func:`make_report` (schema ``oa-abm-bench/1``: ``schema``,
``started``, ``argv``, ``settings``, ``machine``, ``results``, ``speedups``) -> :func:`write`
(bench.json, bench.png) and :func:`format_text` (table, phase medians, yardstick lines).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abm.bench.machine import machine_info
from abm.bench.suite import WHAT

SCHEMA = "oa-abm-bench/1"
Row = dict[str, Any]


def now() -> str:
    """UTC time in ISO format (seconds), the report's ``started``."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def add_speedups(results: list[Row], baseline: str = "numpy") -> list[Row]:
    """Throughput ratio of each non-baseline backend to ``baseline`` per (what, case); also
    stored in the row as ``speedup_vs_<baseline>``."""
    base = {(r["what"], r["case"]): r for r in results if r["backend"] == baseline}
    out = []
    for r in results:
        b = base.get((r["what"], r["case"]))
        if r["backend"] != baseline and b is not None:
            ratio = r["throughput"] / b["throughput"]
            r["speedup_vs_" + baseline] = ratio
            out.append(
                {
                    "what": r["what"],
                    "case": r["case"],
                    "backend": r["backend"],
                    "baseline": baseline,
                    "ratio": ratio,
                }
            )
    return out


def make_report(
    results: list[Row], started: str, argv: Sequence[str], settings: dict[str, Any]
) -> dict[str, Any]:
    """The bench.json document. ``settings``: backends, what, sizes, repeats (the options);
    adds the speedups vs numpy when numpy and another backend ran."""
    backends = list(settings["backends"])
    speedups = add_speedups(results) if "numpy" in backends and len(backends) > 1 else []
    return {
        "schema": SCHEMA,
        "started": started,
        "argv": list(argv),
        "settings": {**settings, "what": list(settings["what"]), "statistic": "median"},
        "machine": machine_info(backends),
        "results": results,
        "speedups": speedups,
    }


def write(report: dict[str, Any], out: str | os.PathLike) -> tuple[Path, Path]:
    """bench.json and bench.png into the folder ``out`` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out / "bench.json", out / "bench.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    plot(report["results"], png_path)
    return json_path, png_path


def _columns(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    return "\n".join(out + [line.format(*row) for row in rows])


def format_table(results: Sequence[Row]) -> str:
    """One row per what/case/backend: median ms per step, throughput, the solver's share of a
    model step, speedup vs numpy, our speed / the yardstick's."""
    head = (
        "what",
        "case",
        "backend",
        "size",
        "ms/step",
        "throughput",
        "unit",
        "solver",
        "speedup",
        "yardstick",
    )
    rows = []
    for r in results:
        cells = r["what"] == "cells"
        size = f"{r['n_cells']:.3g} cells" if cells else f"{r['voxel_field_updates']:.3g} vox*F"
        solver = f"{100 * r['solver_fraction']:.0f}%" if cells else "-"
        speed = f"x{r['speedup_vs_numpy']:.2f}" if "speedup_vs_numpy" in r else "-"
        ratio = f"x{r['ratio_vs_reference']:.2f}" if "ratio_vs_reference" in r else "-"
        rows.append(
            (
                r["what"],
                r["case"],
                r["backend"],
                size,
                f"{1e3 * r['median_s']:.2f}",
                f"{r['throughput']:.3g}",
                r["unit"],
                solver,
                speed,
                ratio,
            )
        )
    return _columns(head, rows)


def format_phases(results: Sequence[Row]) -> str:
    """Median ms of each phase of a model step, one row per cells case and backend ("" if
    there are none)."""
    cells = [r for r in results if r["what"] == "cells"]
    if not cells:
        return ""
    phases = list(dict.fromkeys(p for r in cells for p in r["phase_median_s"]))
    rows = [
        (
            r["case"],
            r["backend"],
            f"{1e3 * r['median_s']:.2f}",
            *(f"{1e3 * r['phase_median_s'].get(p, 0.0):.2f}" for p in phases),
        )
        for r in cells
    ]
    return "phase medians (ms)\n" + _columns(("case", "backend", "step", *phases), rows)


def format_ratios(results: Sequence[Row]) -> str:
    """One line per ratio row: our solver against the yardstick in the same run ("" if none)."""
    lines = []
    for r in results:
        if "ratio_vs_reference" in r:
            ref = r["reference"]
            lines.append(
                f"{r['case']} x{r['fields']} fields, {r['backend']}: ours "
                f"{r['throughput']:.3g} M/s, yardstick {ref['throughput']:.3g} M/s (plain NumPy "
                f"LOD, uniform D) -> x{r['ratio_vs_reference']:.2f}"
            )
    return "\n".join(lines)


def format_text(results: Sequence[Row]) -> str:
    """The table, then the phase medians and the yardstick lines where there are any."""
    parts = (format_table(results), format_phases(results), format_ratios(results))
    return "\n".join(part for part in parts if part)


def _bars(rows: Sequence[Row]) -> dict[str, dict[str, tuple[float, str]]]:
    """series -> case -> (throughput, bar label): one series per backend, plus the yardstick."""
    series: dict[str, dict[str, tuple[float, str]]] = {}
    for r in rows:
        if "ratio_vs_reference" in r:
            label = f"x{r['ratio_vs_reference']:.2f}"
        elif "speedup_vs_numpy" in r:
            label = f"x{r['speedup_vs_numpy']:.1f}"
        else:
            label = f"{r['throughput']:.3g}"
        series.setdefault(r["backend"], {})[r["case"]] = (r["throughput"], label)
    for r in rows:  # after the backends: each backend keeps its colour in every panel
        if "reference" in r:
            ref = r["reference"]["throughput"]
            series.setdefault("yardstick (numpy)", {})[r["case"]] = (ref, f"{ref:.3g}")
    return series


def plot(results: Sequence[Row], path: str | os.PathLike) -> None:
    """Bar chart of throughput by case and backend (one panel per kind); bars are labelled
    with the speedup vs numpy, or for ratio rows with the ratio to the yardstick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [w for w in WHAT if any(r["what"] == w for r in results)]
    n = max(1, len(kinds))
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=False):
        rows = [r for r in results if r["what"] == kind]
        cases = list(dict.fromkeys(r["case"] for r in rows))
        series = _bars(rows)
        width = 0.8 / len(series)
        for j, (name, by_case) in enumerate(series.items()):
            at = [i for i, case in enumerate(cases) if case in by_case]
            xs = [i + (j - (len(series) - 1) / 2) * width for i in at]
            values = [by_case[cases[i]] for i in at]
            bars = ax.bar(xs, [v for v, _ in values], width, label=name)
            ax.bar_label(bars, labels=[lab for _, lab in values], fontsize=8, padding=2)
        ax.set_xticks(range(len(cases)), cases)
        vals = [v for by_case in series.values() for v, _ in by_case.values()]
        if max(vals) > 30 * min(vals):  # log only where the range needs it (bars from 0 else)
            ax.set_yscale("log")
        ax.set_ylabel(rows[0]["unit"])
        ax.set_title(f"{kind}: median of repeats (higher is better)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
