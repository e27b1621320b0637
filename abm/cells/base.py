"""Shared pieces of the cell rules: the Hill function, event probabilities, random purposes.

Data flow: model.step builds a :class:`Sense` (fields gathered at the cells' voxels, Hill
terms cached per field) and a :class:`Ctx`, then calls each rule module with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from abm.cells.population import FLS, MACROPHAGE, MSC, TCELL
from kernels.random import uniform

# purposes of the counter-based RNG (kernels.random): one per kind of draw, never reused
MAC_DEATH, MAC_MOVE, MAC_DIR = 1, 2, 3
T_DIFF, T_DIFF_PICK, T_DIV, T_DEATH, T_MOVE, T_DIR, T_DIV_DIR, T_DIV_PRIO = range(10, 18)
FLS_DIV, FLS_DEATH, FLS_DIV_DIR, FLS_DIV_PRIO = range(20, 24)
CH_APOPTOSIS = 30
MSC_DEATH, MSC_ADHERE, MSC_MOVE, MSC_DIR, MSC_PERSIST, MSC_INJECT = range(40, 46)
RECRUIT_MAC, RECRUIT_T, RECRUIT_DIR, RECRUIT_PRIO = range(50, 54)
MOVE_PRIO = 60
INIT = 70  # + offsets for the initial placement draws
MOVE = {MACROPHAGE: (MAC_MOVE, MAC_DIR), TCELL: (T_MOVE, T_DIR), MSC: (MSC_MOVE, MSC_DIR)}
DIVIDE = {TCELL: (T_DIV_DIR, T_DIV_PRIO), FLS: (FLS_DIV_DIR, FLS_DIV_PRIO)}
GROUP = 10  # purposes p and q with p // GROUP == q // GROUP share one Philox call (rows p % GROUP)
_PURPOSES = (
    MAC_DEATH, MAC_MOVE, MAC_DIR, T_DIFF, T_DIFF_PICK, T_DIV, T_DEATH, T_MOVE, T_DIR,
    T_DIV_DIR, T_DIV_PRIO, FLS_DIV, FLS_DEATH, FLS_DIV_DIR, FLS_DIV_PRIO, CH_APOPTOSIS,
    MSC_DEATH, MSC_ADHERE, MSC_MOVE, MSC_DIR, MSC_PERSIST, MSC_INJECT, RECRUIT_MAC, RECRUIT_T,
    RECRUIT_DIR, RECRUIT_PRIO, MOVE_PRIO,
)  # fmt: skip
# rows drawn per group: the highest row in use + 1 (row k does not depend on how many are drawn)
ROWS = {g: 1 + max(p % GROUP for p in _PURPOSES if p // GROUP == g) for g in range(INIT // GROUP)}


def hill(xp: Any, x: Any, K: float, n: float) -> Any:
    """H(x; K, n) = x^n / (K^n + x^n) for x >= 0 (0 at x = 0)."""
    if n == 1:
        return x / (K + x)
    xn = x**n
    return xn / (K**n + xn)


def event_prob(xp: Any, rate: Any, dt: float) -> Any:
    """Probability that an event of ``rate`` (1/min) fires within ``dt`` min: 1 - exp(-rate dt)."""
    return 1.0 - xp.exp(-rate * dt)


@dataclass
class Ctx:
    """What a rule needs besides its cells: backend, step, seed, dt (min), parameters."""

    xp: Any
    seed: int
    step: int
    dt: float
    bio: Any
    scenario: Any
    knockouts: frozenset = field(default_factory=frozenset)
    _cache: dict = field(default_factory=dict, repr=False)

    def uniform(self, purpose: int, ids: Any) -> Any:
        """Counter-based uniforms (N,) keyed by (seed, step, purpose, cell id).

        Purposes of one group (``purpose // GROUP``) are drawn together in one Philox call as
        rows of an (GROUP, N) block, cached for this ``ids`` array: the draws are the same
        function of (seed, step, purpose, id) however many purposes a rule asks for.
        """
        group, row = divmod(purpose, GROUP)
        hit = self._cache.get(group)
        if hit is None or hit[0] is not ids:
            rows = ROWS.get(group, GROUP)
            hit = (ids, uniform(self.xp, self.seed, self.step, group, ids, rows).reshape(rows, -1))
            self._cache[group] = hit
        return hit[1][row]

    def remap(self, old_ids: Any, new_ids: Any, mask: Any) -> None:
        """After ``new_ids = old_ids[mask]`` (cells removed), keep their cached draws."""
        for group, (ids, block) in list(self._cache.items()):
            if ids is old_ids:
                self._cache[group] = (new_ids, block[:, mask])


class Sense:
    """Fields at the cells' voxels: ``s["IL1b"]`` is (N,); ``s.H("IL1b")`` its Hill term.

    ``IL1_eff = IL1b / (1 + IL1RA / K_ra)`` (receptor antagonist) is available as
    ``s["IL1_eff"]`` and ``s.H("IL1_eff")`` (with IL-1b's K).
    """

    def __init__(self, xp: Any, values: Any, names: tuple[str, ...], bio: Any) -> None:
        self.xp = xp
        self.values = {name: values[i] for i, name in enumerate(names)}
        self.bio = bio
        self.n = float(bio.hill_n)
        il1ra_K = float(bio.fields.IL1RA.K)
        self.values["IL1_eff"] = self.values["IL1b"] / (1.0 + self.values["IL1RA"] / il1ra_K)
        self._h: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def keep(self, mask: Any) -> None:
        """Drop the cells where ``mask`` is False (as :meth:`Population.keep` does)."""
        self.values = {k: v[mask] for k, v in self.values.items()}
        self._h = {k: v[mask] for k, v in self._h.items()}

    def H(self, name: str) -> Any:
        if name not in self._h:
            key = "IL1b" if name == "IL1_eff" else name
            self._h[name] = hill(self.xp, self.values[name], float(self.bio.fields[key].K), self.n)
        return self._h[name]
