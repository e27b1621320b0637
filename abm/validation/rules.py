"""Rule-level checks: one cell type alone, fields clamped (:class:`abm.cells.harness.RuleHarness`).

Data flow: a composed config -> a harness steps one rule exactly as the model does (same
parameters, same counter-based draws) -> a small table per rule -> read by the target checks
(C2 MSC survival, C3 T-cell suppression, C7 chondrocyte dose response) and by the tests. No
lattice, no transport, no other cell type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from abm.cells.chondrocyte import CATABOLIC
from abm.cells.harness import RuleHarness
from abm.cells.msc import Draw as MscDraw
from abm.cells.population import TH1
from abm.params import load_biology
from abm.units import MIN_PER_DAY, MIN_PER_HOUR
from kernels.random import uniform

RULE_EXPERIMENT = "validation_oa_msc"  # the rules see the oa scenario (C7: its mechanical drive)
MEDIATOR_MULTIPLES = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # C3: PGE2 = KYN = TGF-β = m x K
IL1B_LEVELS = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)  # C7, ng/mL


def rule_config() -> Any:
    """The composed config the rule checks use (the ``oa+msc`` validation arm)."""
    import abm

    return abm.compose([f"+experiment={RULE_EXPERIMENT}"])


def msc_survival(cfg: Any, n: int = 10_000, days: int = 180) -> pd.DataFrame:
    """C2: fraction of ``n`` injected MSCs alive at each whole day 0..``days`` under the loss
    rule alone (hour steps, no fields; the persistent pool drawn as at injection).

    Returns columns ``day``, ``fraction_alive`` (``days + 1`` rows).
    """
    ids = np.arange(n, dtype=np.int64)
    persistent = uniform(np, 0, 0, MscDraw.PERSIST, ids) < cfg.biology.msc.persistent_fraction
    h = RuleHarness(cfg, "msc", n, dt=MIN_PER_HOUR, persistent=persistent)
    steps_per_day = round(MIN_PER_DAY / MIN_PER_HOUR)
    rows = [(0.0, 1.0)]
    for day in range(1, days + 1):
        h.run(steps_per_day)
        rows.append((float(day), h.pop.n / n))
    return pd.DataFrame(rows, columns=["day", "fraction_alive"])


def msc_survival_expected(cfg: Any, days: Any) -> Any:
    """The loss law the MSC rule implements: ``f_p + (1 - f_p) 2^(-t / t½)`` at ``days``."""
    m = load_biology(cfg.biology).msc
    f_p = m.persistent_fraction
    return f_p + (1.0 - f_p) * 0.5 ** (np.asarray(days, dtype=float) / m.half_life_days)


def tcell_suppression(
    cfg: Any, n: int = 2000, steps: int = 720, multiples: Sequence[float] = MEDIATOR_MULTIPLES
) -> pd.DataFrame:
    """C3: division rate of ``n`` Th1 cells (per cell per day, over ``steps`` 2-min steps) with
    IL-1β clamped at 0.01 ng/mL (proliferation on) and PGE2 = KYN = TGF-β = m x their own K.

    Returns columns ``mediator_x_K``, ``divisions_per_cell_day``, ``suppression_factor`` (mean
    T-cell ``state`` at the end: (1 - H(KYN))(1 - H(PGE2))(1 - H(TGFb))).
    """
    fields = load_biology(cfg.biology).fields
    K = {f: fields[f].K for f in ("PGE2", "KYN", "TGFb")}
    rows = []
    for mult in multiples:
        h = RuleHarness(cfg, "tcell", n, subset=np.full(n, TH1, np.int8), state=np.ones(n))
        h.clamp(IL1b=0.01, **{f: mult * k for f, k in K.items()})
        divisions = sum(int(h.step(remove_dead=False).divide.sum()) for _ in range(steps))
        rows.append(
            {
                "mediator_x_K": mult,
                "divisions_per_cell_day": divisions / n / (steps * h.dt / MIN_PER_DAY),
                "suppression_factor": float(h.pop["state"].mean()),
            }
        )
    return pd.DataFrame(rows)


def chondrocyte_dose_response(
    cfg: Any, levels: Sequence[float] = IL1B_LEVELS, days: float = 3.0, n: int = 200
) -> pd.DataFrame:
    """C7: ``n`` chondrocytes (intact matrix, no TNF or TGF-β) after ``days`` at each clamped
    IL-1β level (ng/mL), with the scenario's mechanical drive.

    Returns columns ``il1b_ng_ml``, ``c_mean`` (mean catabolic drive c), ``prot_molec_cell_s``
    (PROT secretion, molecules/cell/s), ``catabolic_fraction`` (c > 0.5) and
    ``agg_synthesis_drive`` (relative aggrecan synthesis drive of the rule).
    """
    # one harness for every level (n cells each): with the matrix intact no cell dies, so the
    # rule is deterministic and each cell evolves as it would alone
    level = np.repeat(np.asarray(levels, dtype=float), n)
    m = level.shape[0]
    h = RuleHarness(cfg, "chondrocyte", m, state=np.zeros(m), alive=np.ones(m, bool))
    h.clamp(IL1b=level)  # per-cell levels broadcast like a scalar
    h.run(round(days * MIN_PER_DAY / h.dt))
    c = h.pop["state"]
    per_cell = {  # (levels, n) each
        "c_mean": c,
        "prot_molec_cell_s": h.secretion()["PROT"],
        "catabolic_fraction": c > CATABOLIC,
        "agg_synthesis_drive": h.type.synthesis(h.context(), h.pop),
    }
    per_cell = {k: np.asarray(v).reshape(len(levels), n) for k, v in per_cell.items()}
    return pd.DataFrame(
        [
            {"il1b_ng_ml": lv, **{k: float(v[i].mean()) for k, v in per_cell.items()}}
            for i, lv in enumerate(levels)
        ]
    )
