"""The calibration targets: one table (``conf/calibration/targets.csv``) read and checked.

Data flow: ``targets.csv`` (one row per measured quantity: what the model must reproduce, on
which arm and window, the value or interval, its unit, tolerance on a log10 scale, species,
source and role) -> :func:`load_targets` (one :class:`Target` per row, every cell checked;
a bad cell is one line naming the file, the row id and the column) -> the distance
(:mod:`abm.calibrate.distance`), the simulators that compute the readouts
(:mod:`abm.calibrate.toy`, :mod:`abm.calibrate.joint`) and the posterior-predictive check
(:mod:`abm.calibrate.abc`).

Columns (docs/calibration.md explains each): ``id, readout, arm, window_days, kind, value,
lower, upper, unit, log10_tolerance, species, source, role, note``.

Kinds: ``level`` (a value; band ``[value / 10**tol, value * 10**tol]``), ``interval`` and
``ratio`` (``[lower / 10**tol, upper * 10**tol]``, or around ``value`` when only it is given;
a ratio's arm is ``A/B``: the readout of arm A over that of arm B), ``censored_upper`` (below a
detection limit ``value``), ``censored_lower`` (above ``value``) and ``qualitative`` (a pattern
that holds or not: the readout is the fraction of its checks that hold, the target 1).
Roles: ``calibrate`` (in the distance), ``hold_out`` (only in the posterior-predictive check),
``input`` (a quantity the model takes as an input parameter: shown, never fitted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

KINDS = ("level", "interval", "ratio", "censored_upper", "censored_lower", "qualitative")
ROLES = ("calibrate", "hold_out", "input")
COLUMNS = (
    "id",
    "readout",
    "arm",
    "window_days",
    "kind",
    "value",
    "lower",
    "upper",
    "unit",
    "log10_tolerance",
    "species",
    "source",
    "role",
    "note",
)
REQUIRED_TEXT = ("id", "readout", "arm", "kind", "unit", "species", "source", "role")
_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


class TargetsError(ValueError):
    """A targets table that cannot be used; the message is one line naming file, row, column."""


@dataclass(frozen=True)
class Target:
    """One calibration target (one row of the table).

    ``window`` is ``(start_day, end_day)`` after the spin-up (the readout's mean over
    ``(start, end]``; ``start == end``: its value at that day) or None (the end of the run).
    ``value``/``lower``/``upper`` are in ``unit``; ``tol`` is the tolerance in decades (log10);
    NaN where the row leaves it empty.
    """

    id: str
    readout: str
    arm: str
    window: tuple[float, float] | None
    kind: str
    value: float
    lower: float
    upper: float
    unit: str
    tol: float
    species: str
    source: str
    role: str
    note: str = ""

    @property
    def arms(self) -> tuple[str, ...]:
        """The arm, or the two arms ``(A, B)`` of a ratio ``A/B``."""
        return tuple(a.strip() for a in self.arm.split("/"))

    @property
    def is_ratio(self) -> bool:
        return len(self.arms) == 2

    @property
    def band(self) -> tuple[float, float]:
        """The accepted interval in ``unit``: level/interval/ratio ``[lo / 10**tol, hi *
        10**tol]``; censored_upper ``(0, value]``; censored_lower ``[value, inf)``;
        qualitative ``[1, 1]``."""
        if self.kind == "censored_upper":
            return 0.0, self.value
        if self.kind == "censored_lower":
            return self.value, math.inf
        if self.kind == "qualitative":
            return 1.0, 1.0
        lo, hi = self.core
        f = 10.0**self.tol
        return lo / f, hi * f

    @property
    def core(self) -> tuple[float, float]:
        """The measured value or interval before the tolerance is added."""
        if self.kind in ("interval", "ratio") and math.isfinite(self.lower):
            return self.lower, self.upper
        return self.value, self.value

    def window_text(self) -> str:
        if self.window is None:
            return "end"
        a, b = self.window
        return f"{b:g}" if a == b else f"{a:g}:{b:g}"

    def describe(self) -> str:
        """One line: id, what, where, the band."""
        lo, hi = self.band
        if self.kind == "censored_upper":
            want = f"< {hi:g}"
        elif self.kind == "censored_lower":
            want = f"> {lo:g}"
        elif self.kind == "qualitative":
            want = "holds (1)"
        else:
            want = f"{lo:.3g}-{hi:.3g}"
        return (
            f"{self.id}: {self.readout} [{self.arm}, days {self.window_text()}] "
            f"{want} {self.unit} ({self.kind}, {self.role})"
        )


def default_targets_path() -> Path:
    """``conf/calibration/targets.csv`` of the installed config package."""
    from importlib.resources import files

    return Path(str(files("abm.conf"))) / "calibration" / "targets.csv"


def parse_window(text: str) -> tuple[float, float] | None:
    """``"A:B"`` -> (A, B); ``"B"`` -> (B, B); empty -> None. ValueError when malformed."""
    text = text.strip()
    if not text:
        return None
    a, sep, b = text.partition(":")
    lo, hi = (float(a), float(b)) if sep else (float(a), float(a))
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ValueError("need 0 <= A <= B")
    return lo, hi


def _number(text: str) -> float:
    text = text.strip()
    if not text:
        return math.nan
    v = float(text)
    if not math.isfinite(v):
        raise ValueError("not finite")
    return v


def load_targets(path: str | Path | None = None) -> list[Target]:
    """Every row of the targets table at ``path`` (default :func:`default_targets_path`) as a
    :class:`Target`. Raises :class:`TargetsError` (one line: file, row id, column, what is
    valid) for a missing file or column, a duplicate id, an unknown kind or role, a number
    that is not one, a band that is empty or not positive, or a missing unit/source."""
    import csv

    path = Path(default_targets_path() if path is None else path)
    if not path.is_file():
        raise TargetsError(f"targets {path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TargetsError(f"targets {path}: unreadable: {exc}") from None
    missing = [c for c in COLUMNS if c not in header]
    if not rows:
        raise TargetsError(f"targets {path}: no rows")
    if missing:
        raise TargetsError(
            f"targets {path}: missing column(s) {', '.join(missing)} "
            f"(expected {', '.join(COLUMNS)})"
        )
    out: list[Target] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        out.append(_row_target(path, i, row, seen))
    return out


def _row_target(path: Path, line: int, row: dict, seen: set[str]) -> Target:
    rid = (row.get("id") or "").strip()
    where = f"targets {path}: row {rid or f'at line {line}'}"

    def bad(col: str, msg: str) -> TargetsError:
        return TargetsError(f"{where}: column {col}: {msg}")

    cell = {c: (row.get(c) or "").strip() for c in COLUMNS}
    for c in REQUIRED_TEXT:
        if not cell[c]:
            raise bad(
                c,
                "empty (every row needs id, readout, arm, kind, unit, species, "
                "source and role; an unsourced value says 'assumed')",
            )
    if not _ID.match(rid):
        raise bad("id", f"{rid!r}: use letters, digits, '_', '.', '-'")
    if rid in seen:
        raise bad("id", f"{rid!r} given twice")
    seen.add(rid)
    kind, role = cell["kind"], cell["role"]
    if kind not in KINDS:
        raise bad("kind", f"{kind!r}: one of {', '.join(KINDS)}")
    if role not in ROLES:
        raise bad("role", f"{role!r}: one of {', '.join(ROLES)}")
    nums = {}
    for c in ("value", "lower", "upper", "log10_tolerance"):
        try:
            nums[c] = _number(cell[c])
        except ValueError:
            raise bad(c, f"{cell[c]!r}: expected a number or empty") from None
    try:
        window = parse_window(cell["window_days"])
    except ValueError:
        raise bad(
            "window_days",
            f"{cell['window_days']!r}: expected A:B (mean over days "
            "(A, B] after the spin-up, 0 <= A <= B), B (the value at day "
            "B) or empty (end of the run)",
        ) from None
    value, lower, upper, tol = nums["value"], nums["lower"], nums["upper"], nums["log10_tolerance"]
    arms = [a.strip() for a in cell["arm"].split("/")]
    if len(arms) > 2 or not all(arms):
        raise bad("arm", f"{cell['arm']!r}: one arm, or A/B for a ratio of two arms")
    if kind == "ratio" and len(arms) != 2:
        raise bad("arm", f"{cell['arm']!r}: a ratio needs two arms A/B")
    if kind == "qualitative":
        if not (math.isnan(value) or value == 1):
            raise bad("value", f"{value:g}: a qualitative target is 1 (the pattern holds) or empty")
        value = 1.0
        if not math.isnan(lower) or not math.isnan(upper):
            raise bad("lower", "a qualitative target has no lower/upper")
    else:
        if not (tol > 0):
            raise bad(
                "log10_tolerance", f"{cell['log10_tolerance']!r}: need a number > 0 (decades)"
            )
        has_interval = not (math.isnan(lower) and math.isnan(upper))
        if kind in ("interval", "ratio") and has_interval:
            if math.isnan(lower) or math.isnan(upper):
                raise bad(
                    "upper" if math.isnan(upper) else "lower",
                    "an interval needs both lower and upper",
                )
            if not (0 < lower <= upper):
                raise bad("lower", f"{lower:g}..{upper:g}: need 0 < lower <= upper")
            if not math.isnan(value) and not (lower <= value <= upper):
                raise bad("value", f"{value:g}: outside lower..upper {lower:g}..{upper:g}")
        else:
            if has_interval:
                raise bad(
                    "lower",
                    f"a {kind} target takes value only (lower/upper are for interval and ratio)",
                )
            if not (value > 0):
                what = "detection limit" if kind.startswith("censored") else "value"
                raise bad(
                    "value",
                    f"{cell['value']!r}: need a {what} > 0 (the distance is on a log10 scale)",
                )
    return Target(
        id=rid,
        readout=cell["readout"],
        arm="/".join(arms),
        window=window,
        kind=kind,
        value=value,
        lower=lower,
        upper=upper,
        unit=cell["unit"],
        tol=tol,
        species=cell["species"],
        source=cell["source"],
        role=role,
        note=cell["note"],
    )


def select(targets: Sequence[Target], roles: Sequence[str]) -> list[Target]:
    """The targets of ``roles``, in table order."""
    return [t for t in targets if t.role in roles]
