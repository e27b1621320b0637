"""Virtual trial, report stage: ``OUT/report.md`` and a self-contained ``OUT/report.html``.

Data flow: the tables of :mod:`abm.trial.analysis` (already written as CSVs in OUT) and the
PNG figures -> a list of blocks (:class:`Block`: heading, text, table, figure) -> rendered
twice: Markdown (figures linked as PNG files beside it) and HTML (figures embedded as base64,
tables as HTML: one file that opens anywhere). Both are written atomically (a temporary file
renamed into place).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abm.replay.html import html_table
from abm.sweep.outdir import write_text


@dataclass(frozen=True)
class Block:
    """One piece of the report: ``kind`` heading (``level``), text, table or figure."""

    kind: str
    text: str = ""
    level: int = 2
    table: pd.DataFrame | None = None
    path: Path | None = None


def heading(text: str, level: int = 2) -> Block:
    return Block("heading", text, level)


def text(body: str) -> Block:
    return Block("text", body)


def table(frame: pd.DataFrame, caption: str = "") -> Block:
    return Block("table", caption, table=frame)


def figure(path: Path | None, caption: str) -> Block | None:
    return (
        None
        if path is None or not Path(path).is_file()
        else Block("figure", caption, path=Path(path))
    )


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.4g}"
    return str(v)


def to_markdown(blocks: Sequence[Block | None]) -> str:
    out: list[str] = []
    for b in blocks:
        if b is None:
            continue
        if b.kind == "heading":
            out.append(f"{'#' * b.level} {b.text}\n")
        elif b.kind == "text":
            out.append(b.text.strip() + "\n")
        elif b.kind == "table" and b.table is not None:
            if b.text:
                out.append(f"*{b.text}*\n")
            if not len(b.table):
                out.append("(no rows)\n")
                continue
            cols = [str(c) for c in b.table.columns]
            lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for row in b.table.itertuples(index=False):
                lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
            out.append("\n".join(lines) + "\n")
        elif b.kind == "figure" and b.path is not None:
            out.append(f"![{b.text}]({b.path.name})\n\n*{b.text}*\n")
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%}
.cap{font-style:italic;color:#555;font-size:13px}code{background:#f5f5f5;padding:0 3px}"""


def _inline(s: str) -> str:
    """Escape, then the Markdown this module uses in text: `code` and **bold**."""
    import re

    s = html.escape(s)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


def to_html(blocks: Sequence[Block | None], title: str) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]  # fmt: skip
    for b in blocks:
        if b is None:
            continue
        if b.kind == "heading":
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif b.kind == "text":
            paras = [p for p in b.text.strip().split("\n\n") if p.strip()]
            for p in paras:
                lines = p.strip().splitlines()
                if all(line.lstrip().startswith("- ") for line in lines):
                    items = "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines)
                    out.append(f"<ul>{items}</ul>")
                elif lines[0].startswith("```"):
                    body = "\n".join(line for line in lines if not line.startswith("```"))
                    out.append(f"<pre>{html.escape(body)}</pre>")
                else:
                    out.append(f"<p>{_inline(' '.join(lines))}</p>")
        elif b.kind == "table" and b.table is not None:
            if b.text:
                out.append(f"<p class='cap'>{_inline(b.text)}</p>")
            if not len(b.table):
                out.append("<p>(no rows)</p>")
                continue
            out.append(html_table(b.table.map(_cell)))  # cells as in the Markdown
        elif b.kind == "figure" and b.path is not None:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            alt = html.escape(b.text)
            out.append(f"<figure><img src='data:image/png;base64,{data}' alt='{alt}'>"
                       f"<figcaption class='cap'>{_inline(b.text)}</figcaption>"
                       "</figure>")  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out)


def write_report(blocks: Sequence[Block | None], out: Path, title: str) -> tuple[Path, Path]:
    """``out/report.md`` and ``out/report.html`` of ``blocks``."""
    md = write_text(out / "report.md", f"# {title}\n\n" + to_markdown(blocks))
    page = write_text(out / "report.html", to_html([heading(title, 1), *blocks], title))
    return md, page


# -- the trial report --------------------------------------------------------------------------
def build_report(spec: Any, out: Path, baseline: pd.DataFrame, outcomes: pd.DataFrame,
                 patients: pd.DataFrame, rates: pd.DataFrame, pred: pd.DataFrame,
                 eff: pd.DataFrame, figs: dict[str, Path | None], missing: int,
                 benefits: pd.DataFrame | None = None) -> tuple[Path, Path]:  # fmt: skip
    """Write ``out/report.md`` and ``out/report.html`` of a virtual trial's tables."""
    rs = spec.responder
    n_acc = int(baseline["accepted"].sum())
    feats = pd.DataFrame([{"feature": f.name, "key": f.key, "group": f.group,
                           "distribution": f.shape(), "unit": f.unit, "source": f.source}
                          for f in spec.features])  # fmt: skip
    arms = pd.DataFrame([{"arm": a.name, "therapy": a.therapy, "what": a.label} for a in spec.arms])
    bands = pd.DataFrame([{"readout": r.metric, "cohort range (pg/mL)":
                           f"{r.cohort_low_pg_ml:g}-{r.cohort_high_pg_ml:g}",
                           "accepted band (pg/mL)": "{:.3g}-{:.3g}".format(
                               *r.band(spec.tolerance_log10)),
                           "enforced": r.enforce,
                           "patients in band": int(baseline[f"{r.metric}_ok"].sum())}
                          for r in spec.readouts])  # fmt: skip
    pop_cols = ["patient", *[f.key for f in spec.features],
                *[f"{r.metric}_pg_ml" for r in spec.readouts], "accepted", "reason"]  # fmt: skip
    wide = pd.DataFrame()
    if len(patients):
        p = patients.copy()
        p["cell"] = [f"{100 * v:+.1f}%{' R' if r else ''}" if c else "–"
                     for v, r, c in zip(p["pain_rel_change"], p["responder"], p["classified"],
                                        strict=True)]  # fmt: skip
        wide = p.pivot(index="patient", columns="arm", values="cell").reset_index()
        wide = wide[["patient", *[a.name for a in spec.treated_arms if a.name in wide.columns]]]
    rate_cols = ["arm", "label", "n", "responders", "rate", "ci_low", "ci_high", "unclassified",
                 "median_pain_change_pct"]  # fmt: skip
    conf = f"{100 * spec.confidence:g}%"
    blocks: list[Block | None] = [
        text(
            f"Virtual trial of `{spec.size}` virtual patients x `{spec.seeds}` seed(s) x "
            f"`{len(spec.arms)}` arms, written by `abm-trial` into `{out}`. Every arm of a "
            "patient and seed branches from the same cached untreated spin-up (paired). "
            "Readouts are model constructs (docs/protocol.md), not validated clinical scales."
        ),
        heading("Design"),
        table(
            feats,
            "Sampled features (one value per patient, the same in all its arms); "
            f"sampler `{spec.sampler}`, sample_seed {spec.sample_seed}",
        ),
        text(_feature_notes(spec)),
        table(arms, "Arms"),
        text(
            "Run settings: `" + " ".join(spec.run_overrides) + f"`; baseline runs "
            f"{spec.baseline_days:g} days, arms {spec.followup_days:g} days after the spin-up."
        ),
        heading("Plausibility filter"),
        text(
            f"Untreated baseline: the mean over the last {spec.window_days:g} days of the baseline "
            f"run (median over a patient's seeds), accepted within {spec.tolerance_log10:g} "
            "log10 beyond the cohort range of every enforced readout (docs/validation.md, "
            f"Biology v2, C1a). **{n_acc} of {len(baseline)} patients accepted.**"
        ),
        table(bands, "Plausibility bands"),
        table(
            baseline[[c for c in pop_cols if c in baseline.columns]], "Population (population.csv)"
        ),
        heading("Responders"),
        text(
            f"Fixed before running: a patient responds to an arm when at day {rs.day:g} (mean "
            f"over the last {rs.window_days:g} day) `{rs.pain_metric}` changed by <= "
            f"{100 * rs.pain_max_rel_change:g}% against the same patient and seed untreated "
            f"AND `{rs.synovitis_metric}` changed by <= {rs.synovitis_max_abs_change:g} points. "
            "With several seeds the patient is classified on the seed means of the paired "
            "changes; an untreated pain of 0 gives no relative change and no verdict "
            f"(unclassified). Rates with {conf} Wilson intervals."
        ),
        table(
            rates[[c for c in rate_cols if c in rates.columns]] if len(rates) else rates,
            "Responder rate per arm (responder_rates.csv)",
        ),
        figure(figs.get("dose"), "Responder rate vs MSC dose (naive MSCs, fixed doses)"),
        figure(figs.get("waterfall"), f"Waterfall: per-patient change in {rs.pain_metric}"),
        table(
            wide,
            f"Per patient: change in {rs.pain_metric} vs untreated (R: responder; patients.csv)",
        ),
        heading("Predictors of response"),
        text(
            "Rank correlation of each sampled feature with the patient's pain change "
            f"(negative: more relief), per arm, with a {conf} bootstrap interval "
            f"({spec.bootstrap_resamples} resamples): PRCC (abm.sweep.sensitivity) where there "
            "are at least k + 3 classified patients for k varying features, else Spearman."
        ),
        table(
            pred[pred["outcome"] == "pain_rel_change"] if "outcome" in pred.columns else pred,
            "predictors.csv (outcome pain_rel_change)",
        ),
        figure(figs.get("predictors"), "Predictors of the pain change"),
        *_benefit_blocks(spec, benefits, pred, figs, conf),
        heading("Effusion dilution"),
        text(
            f"Fixed dose (`{spec.effusion_arm}`) against a dose scaled by the synovial-fluid "
            f"volume (`{spec.effusion_scaled_arm}`): responders at or below and above the "
            "median volume of the accepted patients, and the Spearman correlation of the "
            "volume with the pain change (positive: larger effusions, less relief)."
        ),
        table(eff, "effusion.csv"),
        figure(figs.get("effusion"), "Pain change vs synovial fluid volume"),
    ]
    if missing:
        blocks.insert(1, text(f"**Incomplete:** {missing} arm run(s) of accepted patients did not "
                              "complete; their patient-arms have no verdict. Run the same "
                              "command again to retry them."))  # fmt: skip
    return write_report(blocks, out, "Virtual trial report")


def _benefit_blocks(spec: Any, benefits: pd.DataFrame | None, pred: pd.DataFrame,
                    figs: dict[str, Path | None], conf: str) -> list[Block | None]:  # fmt: skip
    """The continuous benefits: per arm, the mean change of each declared readout with its
    interval, and the predictors of each (empty without declared benefits)."""
    if not spec.benefits or benefits is None:
        return []
    from abm.trial.analysis import outcome_scale

    rs = spec.responder
    shown = benefits.copy()
    scale = shown["outcome"].map(outcome_scale)  # relative changes in %
    for c in ("mean", "ci_low", "ci_high", "median", "min", "max"):
        shown[c] = scale * shown[c]
    shown["unit"] = np.where(scale == 100.0, "%", "abs")
    cols = ["arm", "readout", "better", "unit", "n", "mean", "ci_low", "ci_high", "median", "min",
            "max", "n_benefit", "n_harm"]  # fmt: skip
    named = ", ".join(f"`{b.metric}` ({b.change}, {b.better} is better)" for b in spec.benefits)
    bp = pred[pred["outcome"] != "pain_rel_change"] if "outcome" in pred.columns else pred[:0]
    resolved = bp[np.isfinite(bp["value"]) & ((bp["ci_low"] > 0) | (bp["ci_high"] < 0))]
    n_fin = int(np.isfinite(bp["value"]).sum())
    return [
        heading("Continuous benefits"),
        text(
            f"Beside the responder verdict, the change of each declared readout ({named}) at day "
            f"{rs.day:g} (mean over the last {rs.window_days:g} day) against the same patient "
            "and seed untreated, seed means per patient. Per arm: the mean over patients with a "
            f"{conf} bootstrap interval over patients, the median and range (relative changes "
            "in %), and the patients whose change has the sign of a benefit or of a harm."
        ),
        table(shown[[c for c in cols if c in shown.columns]], "benefits.csv"),
        figure(figs.get("benefits"), "Per-patient changes per arm, mean and interval"),
        text(
            "Predictors of each benefit, as for the pain change (same method and resamples): "
            f"{len(resolved)} of {n_fin} correlations have a {conf} interval excluding 0 "
            f"(about {(1 - spec.confidence) * n_fin:.1f} expected by chance)."
        ),
        table(bp, "predictors.csv (the benefits' outcomes)"),
        figure(figs.get("benefit_predictors"), "Predictors of each continuous benefit"),
    ]


NOTES = {
    "biology.tcell.secretion.th1.IFNg": "IFN-γ availability is sampled as the Th1 cells' IFN-γ "
    "secretion (`biology.tcell.secretion.th1.IFNg`): the model has no other IFN-γ source and no "
    "key for the fluid's IFN-γ level itself.",
    "scenario.mac_density": "Macrophage density is sampled as the seeding density of the "
    "synovium (`scenario.mac_density`); recruitment from vessels (CCL2-driven) adds to it during "
    "the spin-up.",
    "biology.msc.half_life_days": "MSC persistence is sampled as the first-order half-life of "
    "the injected MSCs (`biology.msc.half_life_days`; the persistent 1.5% pool is kept).",
}


def _feature_notes(spec: Any) -> str:
    """What the sampled model keys stand for, for the features that have a note."""
    return " ".join(NOTES[f.key] for f in spec.features if f.key in NOTES)
