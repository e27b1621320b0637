"""Unit conversions and physical constants shared by every stage (no magic numbers elsewhere).

Model time is in minutes, lengths in µm, concentrations in ng/mL (kynurenine µM).
"""

from __future__ import annotations

MIN_PER_DAY = 1440.0  # minutes in a day
MIN_PER_HOUR = 60.0
S_PER_MIN = 60.0
AVOGADRO = 6.02214076e23  # 1/mol
ML_PER_UM3 = 1e-12  # mL in one µm³
