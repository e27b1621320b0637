"""Assay protocols: ``conf/assays/<name>.yaml`` (read with OmegaConf) -> a validated
:class:`Protocol` (the well, the target cells, the MSCs, the held stimulus, the conditions) that
:mod:`abm.assays.run` turns into one :class:`~abm.assays.dish.Dish` per condition.

Bad input raises :class:`AssayError`, one line naming the file and key and what is valid.
The biology is not here: it comes from the composed config (``abm.compose``), so every
``biology.*`` override applies to the assays as to the joint model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from abm.assays.dish import Well
from abm.errors import ConfigError
from abm.params import FIELD_NAMES

TARGET_TYPES = ("tcell", "macrophage", "fls", "chondrocyte")
PLACEMENTS = ("contact", "transwell")
KNOCKOUTS = ("pge2", "tsg6", "ido", "tgfb", "il1ra", "efferocytosis")  # abm.config.KNOCKOUTS
TOP_KEYS = {
    "title": True,
    "mirrors": True,
    "days": True,
    "pulse_hours": False,
    "well": True,
    "target": True,
    "msc": True,
    "stimulus": False,
    "drive": False,
    "mechanical_drive": False,
    "record_hours": False,
    "medium": False,
    "reference": True,
    "msc_alone": False,
    "conditions": True,
    "arms": False,
}  # key -> required
WELL_KEYS = ("area_cm2", "medium_ml", "dx_um")
TARGET_KEYS = ("type", "cells", "agents", "init")
MSC_KEYS = ("agents", "insert_um")
CONDITION_KEYS = ("label", "ratio", "placement", "knockouts", "target", "pair")
INIT_KEYS = ("state", "subset")


class AssayError(ConfigError):
    """A bad assay protocol or request (one line naming the file/key)."""


@dataclass(frozen=True)
class Condition:
    """One culture condition: MSCs at ``ratio`` (MSC : target cells), in ``placement``, with
    ``knockouts``; ``target`` False for an MSC monoculture; ``pair`` names the condition a
    knockout is compared with."""

    label: str
    ratio: float = 0.0
    placement: str = "contact"
    knockouts: tuple[str, ...] = ()
    target: bool = True
    pair: str | None = None


@dataclass(frozen=True)
class Protocol:
    """A validated assay protocol (units in the names; see conf/assays/*.yaml)."""

    name: str
    path: Path
    title: str
    mirrors: str
    days: float
    pulse_hours: float
    well: Well
    target: str
    target_cells: float
    target_agents: int
    target_init: dict
    msc_agents: int
    insert_um: float
    stimulus: dict
    drive: float
    mechanical_drive: float
    record_hours: float
    medium: tuple[str, ...]
    reference: str
    msc_alone: str | None
    conditions: tuple[Condition, ...]
    arms: dict

    def condition(self, label: str) -> Condition:
        for c in self.conditions:
            if c.label == label:
                return c
        raise KeyError(label)


def assays_dir() -> Path:
    """``conf/assays`` of the installed config package."""
    from importlib.resources import files

    return Path(str(files("abm.conf"))) / "assays"


def available() -> list[str]:
    """Names of the shipped assays (``conf/assays/*.yaml``)."""
    return sorted(p.stem for p in assays_dir().glob("*.yaml"))


def resolve(name: str) -> Path:
    """The protocol file of ``name`` (a shipped assay's name or a path to a .yaml file)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise AssayError(f"{name}: no such protocol file")
        return p
    path = assays_dir() / f"{name}.yaml"
    if not path.is_file():
        raise AssayError(f"unknown assay {name!r}; valid: {', '.join(available())} or a .yaml file")
    return path


def load_protocol(name: str) -> Protocol:
    """Read and validate the protocol ``name`` (see :func:`resolve`)."""
    path = resolve(name)
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # any parse error is bad input
        raise AssayError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise AssayError(f"{path}: expected a mapping of keys")
    return _protocol(path, raw)


def _protocol(path: Path, raw: dict) -> Protocol:
    def bad(key: str, msg: str) -> AssayError:
        return AssayError(f"{path}: {key}: {msg}")

    _keys(raw, list(TOP_KEYS), "", bad)
    for key, required in TOP_KEYS.items():
        if required and key not in raw:
            raise bad(key, "missing (required)")

    def number(key: str, value: Any, lo: float = 0.0, strict: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(key, f"expected a number, got {value!r}")
        v = float(value)
        if not math.isfinite(v) or v < lo or (strict and v == lo):
            raise bad(key, f"{v:g}: must be {'>' if strict else '>='} {lo:g}")
        return v

    def mapping(key: str, keys: Any) -> dict:
        d = raw.get(key) or {}
        if not isinstance(d, dict):
            raise bad(key, "expected a mapping")
        _keys(d, list(keys), f"{key}.", bad)
        return d

    well = mapping("well", WELL_KEYS)
    for k in WELL_KEYS:
        if k not in well:
            raise bad(f"well.{k}", "missing (required)")
    w = Well(*(number(f"well.{k}", well[k]) for k in WELL_KEYS))
    tgt = mapping("target", TARGET_KEYS)
    if tgt.get("type") not in TARGET_TYPES:
        raise bad("target.type", f"{tgt.get('type')!r}; valid: {', '.join(TARGET_TYPES)}")
    init = tgt.get("init") or {}
    if not isinstance(init, dict):
        raise bad("target.init", "expected a mapping")
    _keys(init, list(INIT_KEYS), "target.init.", bad)
    if "subset" in init and init["subset"] not in ("naive", "th1", "th17", "treg"):
        raise bad("target.init.subset", f"{init['subset']!r}; valid: naive, th1, th17, treg")
    if "state" in init:
        number("target.init.state", init["state"], -1.0, strict=False)
    msc = mapping("msc", MSC_KEYS)
    insert_um = number("msc.insert_um", msc.get("insert_um", 1000.0), 0.0, strict=False)
    if insert_um >= w.height_um:
        raise bad(
            "msc.insert_um",
            f"{insert_um:g} µm: must lie below the medium surface ({w.height_um:g} µm)",
        )
    stim = mapping("stimulus", FIELD_NAMES)
    stimulus = {k: number(f"stimulus.{k}", v, strict=False) for k, v in stim.items()}
    medium = raw.get("medium") or list(FIELD_NAMES)
    if not isinstance(medium, list):
        raise bad("medium", "expected a list of fields")
    for f in medium:
        if f not in FIELD_NAMES:
            raise bad("medium", f"{f!r} is not a field; valid: {', '.join(FIELD_NAMES)}")
    conditions = _conditions(raw.get("conditions"), bad, number)
    labels = [c.label for c in conditions]
    for c in conditions:
        if c.pair is not None and c.pair not in labels:
            raise bad("conditions", f"{c.label}: pair {c.pair!r} is not a condition label")
    ref = str(raw["reference"])
    if ref not in labels or conditions[labels.index(ref)].ratio != 0.0:
        raise bad("reference", f"{ref!r}: must be the label of a condition with ratio 0")
    alone = raw.get("msc_alone")
    if alone is not None and (alone not in labels or conditions[labels.index(alone)].target):
        raise bad("msc_alone", f"{alone!r}: must be the label of a condition with target: false")
    arms = raw.get("arms") or {}
    if not isinstance(arms, dict):
        raise bad("arms", "expected a mapping arm -> condition label")
    for arm, label in arms.items():
        if label not in labels:
            raise bad(f"arms.{arm}", f"{label!r} is not a condition label")
    days = number("days", raw["days"])
    return Protocol(
        name=path.stem,
        path=path,
        title=str(raw["title"]),
        mirrors=str(raw["mirrors"]),
        days=days,
        pulse_hours=number("pulse_hours", raw.get("pulse_hours", 24.0)),
        well=w,
        target=tgt["type"],
        target_cells=number("target.cells", tgt.get("cells")),
        target_agents=_count("target.agents", tgt.get("agents"), bad),
        target_init=dict(init),
        msc_agents=_count("msc.agents", msc.get("agents"), bad),
        insert_um=insert_um,
        stimulus=stimulus,
        drive=number("drive", raw.get("drive", 0.0), strict=False),
        mechanical_drive=number("mechanical_drive", raw.get("mechanical_drive", 0.0), strict=False),
        record_hours=number("record_hours", raw.get("record_hours", 1.0)),
        medium=tuple(medium),
        reference=ref,
        msc_alone=alone,
        conditions=conditions,
        arms={str(k): str(v) for k, v in arms.items()},
    )


def _keys(d: dict, valid: list[str], prefix: str, bad: Any) -> None:
    for k in d:
        if k not in valid:
            raise bad(f"{prefix}{k}", f"unknown key; valid: {', '.join(valid)}")


def _count(key: str, value: Any, bad: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(key, f"{value!r}: expected a whole number >= 1")
    return int(value)


def _conditions(items: Any, bad: Any, number: Any) -> tuple[Condition, ...]:
    if not isinstance(items, list) or not items:
        raise bad("conditions", "expected a non-empty list of {label, ratio, ...}")
    out, seen = [], set()
    for i, c in enumerate(items):
        key = f"conditions[{i}]"
        if not isinstance(c, dict) or "label" not in c:
            raise bad(key, "expected a mapping with a label")
        _keys(c, list(CONDITION_KEYS), f"{key}.", bad)
        label = str(c["label"])
        if label in seen:
            raise bad(key, f"label {label!r} used twice")
        seen.add(label)
        placement = c.get("placement", "contact")
        if placement not in PLACEMENTS:
            raise bad(f"{key}.placement", f"{placement!r}; valid: {', '.join(PLACEMENTS)}")
        kos = c.get("knockouts") or []
        for ko in kos:
            if ko not in KNOCKOUTS:
                raise bad(
                    f"{key}.knockouts", f"unknown knockout {ko!r}; valid: {', '.join(KNOCKOUTS)}"
                )
        target = c.get("target", True)
        if not isinstance(target, bool):
            raise bad(f"{key}.target", f"{target!r}: expected true or false")
        ratio = number(f"{key}.ratio", c.get("ratio", 0.0), strict=False)
        if not target and ratio == 0:
            raise bad(key, "a condition without target cells needs MSCs (ratio > 0)")
        out.append(
            Condition(
                label,
                ratio,
                placement,
                tuple(kos),
                target,
                None if c.get("pair") is None else str(c["pair"]),
            )
        )
    return tuple(out)
