"""Clinical readouts: ``synovitis_score`` and ``pain_index`` (observe stage of the data flow).

Data flow: the model's cells and fields -> :func:`synovitis_score` / :func:`pain_index`
(backend arithmetic, 0-d arrays) -> the last two columns of the metric catalogue
(:func:`abm.metrics.catalogue`) -> ``metrics.csv`` / ``run.h5``. Parameters: ``biology.readouts``
(:class:`abm.params.ReadoutParams`). Formulas and sources: docs/protocol.md.

Both are MODEL CONSTRUCTS that map simulated quantities onto familiar scales; neither is a
validated clinical instrument, and neither was calibrated against patients' scores.

synovitis_score (0-9): a continuous analogue of the Krenn synovitis score (Krenn et al. 2006
Histopathology 49:358 [R]), the sum of three sub-scores, each clipped to [0, 3]:

- lining hyperplasia: ``L / dx - healthy_lining_cells``, with ``L = lining_thickness_um`` (one
  cell per voxel, so ``L / dx`` is the number of cell layers; Krenn: 1-2 layers = 0, 2-3 = 1,
  4-5 = 2, > 5 = 3);
- stromal (resident) cellularity: ``(rho_fls - stroma_healthy) / stroma_per_point``, with
  ``rho_fls`` = FLS in sublining voxels / sublining voxels;
- inflammatory infiltrate: ``(rho_inf - infiltrate_healthy) / infiltrate_per_point``, with
  ``rho_inf`` = (macrophages with p > 0 + T cells) in the synovium / synovium voxels.

pain_index (0-100): ``100 · Σ w_i h_i / Σ w_i`` over the saturating terms
``h = c / (K + c)`` of the mean synovial-fluid PGE2 (pro-nociceptive: Jang et al. 2020
J Neuroinflammation 17:30), TNF (correlates with WOMAC pain: Orita et al. 2011 BMC
Musculoskelet Disord 12:144) and IL-6, and ``h = synovitis_score / 9``. With all weights 0 it
is 0.
"""

from __future__ import annotations

from typing import Any

from abm.metrics import Metric

# The Krenn sub-scores (each 0-3) and the pain terms, in the order of the formulas above.
SUBSCORES = ("lining", "stroma", "infiltrate")
PAIN_FIELDS = (("PGE2", "K_pge2", "w_pge2"), ("TNF", "K_tnf", "w_tnf"), ("IL6", "K_il6", "w_il6"))
MAX_SUBSCORE = 3.0


def _rows_count(model: Any, kind: str, lo: int, hi: int, sel: Any = None) -> Any:
    """Cells of ``kind`` (optionally only where ``sel(pop)``) with voxels in rows [lo, hi)."""
    xp = model.xp
    if kind not in getattr(model, "types_by_name", {}):
        return xp.asarray(0.0)
    pop = model.cells[kind]
    if pop.n == 0:
        return xp.asarray(0.0)
    lateral = model.n_voxels // model.shape[0]
    row = pop["voxel"] // lateral
    inside = (row >= lo) & (row < hi)
    if sel is not None:
        inside = inside & sel(pop)
    return xp.sum(inside).astype(xp.float64)


def subscores(xp: Any, layers: Any, rho_fls: Any, rho_inf: Any, p: Any) -> tuple[Any, Any, Any]:
    """The three Krenn sub-scores (each in [0, 3]) from the lining's cell layers, the sublining
    FLS density and the infiltrate density (cells per voxel); ``p``: ReadoutParams."""

    def clip(x: Any) -> Any:
        return xp.clip(xp.asarray(x, dtype=xp.float64), 0.0, MAX_SUBSCORE)

    return (
        clip(layers - p.healthy_lining_cells),
        clip((rho_fls - p.stroma_healthy) / p.stroma_per_point),
        clip((rho_inf - p.infiltrate_healthy) / p.infiltrate_per_point),
    )


def pain(xp: Any, conc: dict[str, Any], synovitis: Any, p: Any) -> Any:
    """pain_index from the mean SF concentrations ``conc`` (field -> ng/mL) and synovitis_score."""
    total = xp.asarray(0.0, dtype=xp.float64)
    weights = 0.0
    for name, k, w in PAIN_FIELDS:
        c = xp.asarray(conc[name], dtype=xp.float64)
        total = total + getattr(p, w) * c / (getattr(p, k) + c)
        weights += getattr(p, w)
    total = total + p.w_synovitis * xp.asarray(synovitis, dtype=xp.float64) / (3 * MAX_SUBSCORE)
    weights += p.w_synovitis
    return 100.0 * total / weights if weights > 0 else xp.asarray(0.0, dtype=xp.float64)


def synovitis_parts(model: Any) -> tuple[Any, Any, Any]:
    """The three sub-scores of ``model`` now (0-d backend arrays)."""
    xp, rows = model.xp, model.tissue.rows
    lateral = model.n_voxels // model.shape[0]
    syn_lo, syn_hi = rows["lining"][0], model.shape[0]
    sub_lo, sub_hi = rows["sublining"]
    layers = model.world.lining_thickness(("fls", "macrophage")) / model.tissue.dx_um
    rho_fls = _rows_count(model, "fls", sub_lo, sub_hi) / max(1, (sub_hi - sub_lo) * lateral)
    infiltrate = _rows_count(model, "macrophage", syn_lo, syn_hi, lambda pop: pop["state"] > 0)
    infiltrate = infiltrate + _rows_count(model, "tcell", syn_lo, syn_hi)
    rho_inf = infiltrate / max(1, (syn_hi - syn_lo) * lateral)
    return subscores(xp, layers, rho_fls, rho_inf, model.bio.readouts)


def synovitis_score(model: Any) -> Any:
    """Krenn-like synovitis score of ``model`` now, 0-9 (see the module docstring)."""
    lining, stroma, infiltrate = synovitis_parts(model)
    return lining + stroma + infiltrate


def pain_index(model: Any) -> Any:
    """Pain index of ``model`` now, 0-100 (see the module docstring): a model construct."""
    xp = model.xp
    a, b = model.tissue.rows["fluid"]
    conc = {name: xp.mean(model.u[model.fidx[name], a:b]) for name, _, _ in PAIN_FIELDS}
    return pain(xp, conc, synovitis_score(model), model.bio.readouts)


def readout_metrics() -> list[Metric]:
    """The readout columns of the metric catalogue (after the tissue's)."""
    return [
        Metric("synovitis_score", "0-9", "Krenn-like synovitis score (model construct; "
               "docs/protocol.md)", synovitis_score),
        Metric("pain_index", "0-100", "weighted saturating SF PGE2, TNF, IL-6 and synovitis "
               "(model construct, not a validated scale; docs/protocol.md)", pain_index),
    ]  # fmt: skip
