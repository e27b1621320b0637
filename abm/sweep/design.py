"""Parameter designs: one CSV row per job (config stage of the data flow).

A design is a CSV file with a ``row`` column (0..n-1) and one column per dotted config key
(``biology.macrophage.activation_rate``, ``therapy.dose``, ``seed``, ...); every cell is a
value of that key. ``abm-sensitivity`` writes one (:func:`write_design`) and sweeps
``design.file=PATH design.row=range(0,n)``; each job's :func:`abm.config.validate` calls
:func:`apply_design`, which sets the row's values in the composed config with the schema's
type checks, so they are validated like any other override.

Every problem is one :class:`~abm.errors.ConfigError` line naming the file, the row and the
key, and what would be valid: a missing file, a missing or out-of-range ``design.row``, a file
without a ``row`` column or with holes in it, an unknown key, a value of the wrong type (an
integer key takes integral numbers only: ``3.0`` is 3, ``3.5`` an error), or a biology value
outside its declared bounds.
"""

from __future__ import annotations

import csv
import difflib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, read_write
from omegaconf.nodes import BooleanNode, FloatNode, IntegerNode, StringNode, ValueNode

from abm.errors import ConfigError

ROW = "row"
NOT_IN_DESIGN = ("design", "hydra", "resume")  # keys a design row may not set
_EXPECTED = (
    (BooleanNode, "expected true or false"),
    (IntegerNode, "expected an integer"),
    (FloatNode, "expected a number"),
    (StringNode, "expected a string"),
)


def read_design(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(the key columns, the rows as ``{key: text}`` in row order) of a design file.

    Raises :class:`ConfigError` for a missing or unreadable file, no ``row`` column, rows that
    are not 0..n-1 in order, or an empty cell.
    """
    path = Path(path)
    where = f"design.file={path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file (a CSV with a 'row' column and one column "
                          "per config key)")  # fmt: skip
    try:
        with path.open(newline="") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where}: cannot read it: {exc}") from None
    header = [h.strip() for h in lines[0]] if lines else []
    rows = [dict(zip(header, (v.strip() for v in line), strict=False))
            for line in lines[1:] if line]  # fmt: skip
    if ROW not in header:
        raise ConfigError(f"{where}: no '{ROW}' column (header: {', '.join(header) or 'empty'})")
    keys = [h for h in header if h != ROW]
    if not keys:
        raise ConfigError(f"{where}: no config key columns besides '{ROW}'")
    for i, r in enumerate(rows):
        if _index(r.get(ROW)) != i:
            raise ConfigError(f"{where}: line {i + 2} has row {r.get(ROW)!r}; rows must be "
                              f"0, 1, 2, ... in order")  # fmt: skip
        for key in keys:
            if not r.get(key):
                raise ConfigError(f"{where} row {i}: {key}: empty value")
    return keys, rows


def _index(text: str | None) -> int | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def parse_value(text: str) -> Any:
    """A design cell as a Python value: int, float, true/false, a ``[...]`` list, else str."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("[") and text.endswith("]"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return text


def row_values(path: str | Path, row: int) -> dict[str, Any]:
    """``{key: value}`` of row ``row`` of a design file (values parsed, not yet checked)."""
    keys, rows = read_design(path)
    if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < len(rows):
        raise ConfigError(f"design.row: {row!r} is not a row of design.file={path}; valid: "
                          f"an integer in 0..{len(rows) - 1}")  # fmt: skip
    return {key: parse_value(rows[row][key]) for key in keys}


def apply_design(cfg: DictConfig) -> DictConfig:
    """Set the values of row ``cfg.design.row`` of ``cfg.design.file`` in ``cfg``; return it.

    Values are checked against the schema (an integer key takes integral numbers only; a
    biology parameter its declared bounds); every problem is one :class:`ConfigError` line
    naming the file, the row and the key. The config is changed in place (a read-only one
    too: applying the same row again changes nothing).
    """
    file, row = cfg.design.file, cfg.design.row
    if row is None:
        n = len(read_design(file)[1])
        raise ConfigError(f"design.row: missing; design.file={file} has rows 0..{n - 1}: give "
                          "design.row=I (or design.row=range(0,N) in a sweep)")  # fmt: skip
    values = row_values(file, row)
    where = f"design.file={file} row {row}"
    declared = _declared()
    with read_write(cfg):
        for key, value in values.items():
            _set(cfg, key, value, where, declared)
    return cfg


def _set(cfg: DictConfig, key: str, value: Any, where: str, declared: Mapping) -> None:
    from omegaconf.errors import OmegaConfBaseException

    if key.split(".", 1)[0] in NOT_IN_DESIGN:
        raise ConfigError(f"{where}: {key}: a design cannot set {key.split('.', 1)[0]}.*")
    node = config_node(cfg, key)
    if node is None:
        raise ConfigError(f"{where}: {key}: unknown config key{_close(cfg, key)}")
    if not isinstance(node, ValueNode) and not isinstance(value, list):
        raise ConfigError(f"{where}: {key}: is a group of keys, not a value; give its keys "
                          f"(e.g. {key}.NAME)")  # fmt: skip
    if isinstance(node, IntegerNode) and not isinstance(node, BooleanNode):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        elif not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: {key}: expected an integer, got {value!r}")
    try:
        OmegaConf.update(cfg, key, value, merge=False)
    except OmegaConfBaseException as exc:
        from abm.params import describe

        expect = describe(key) if key.startswith("biology.") else None
        expect = expect or next((e for t, e in _EXPECTED if isinstance(node, t)), None)
        text = expect or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: {key}: {text}, got {value!r}") from None
    d = declared.get(key)
    if d is not None and not key.endswith(".units"):
        v = OmegaConf.select(cfg, key)
        lo, hi = d.bounds
        if not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
            from abm.params import describe

            raise ConfigError(f"{where}: {key}: {describe(key)}, got {value!r}")


def config_node(cfg: DictConfig, key: str) -> Any:
    """The config node at dotted ``key`` (value node or container), or None if unknown."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node._get_node(part)
    return node


def _close(cfg: DictConfig, key: str) -> str:
    """``; did you mean ...`` for a mistyped key (the leaf keys of its nearest known parent)."""
    parts = key.split(".")
    parent: Any = cfg
    prefix = []
    for part in parts[:-1]:
        if isinstance(parent, DictConfig) and part in parent:
            parent = parent[part]
            prefix.append(part)
        else:
            break
    if not isinstance(parent, DictConfig):
        return ""
    name = parts[len(prefix)]
    near = difflib.get_close_matches(name, [str(k) for k in parent.keys()], n=3)
    if not near:
        return ""
    return "; did you mean " + " or ".join(".".join([*prefix, n]) for n in near) + "?"


def _declared() -> dict[str, Any]:
    from abm.params import parameter_rows

    return {d.key: d for d in parameter_rows()}


def write_design(path: str | Path, table: Any) -> Path:
    """Write a design CSV: ``table`` is a DataFrame, a ``{key: values}`` mapping or an
    iterable of ``{key: value}`` rows; a ``row`` column 0..n-1 is put first (a ``row`` column
    of the table is replaced). Floats keep every digit (they read back exactly)."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        frame = table.copy()
    elif isinstance(table, Mapping):
        frame = pd.DataFrame(dict(table))
    elif isinstance(table, Iterable):
        frame = pd.DataFrame(list(table))
    else:
        raise TypeError(f"write_design: a DataFrame, mapping or rows, not {type(table)}")
    frame = frame.drop(columns=[ROW], errors="ignore").reset_index(drop=True)
    if frame.empty or not len(frame.columns):
        raise ValueError("write_design: the design has no rows or no key columns")
    frame.insert(0, ROW, range(len(frame)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def design_jobs(runs: str | Path, design: str | Path, n: int) -> tuple[dict[int, Any], Any]:
    """The jobs of the sweep folder ``runs`` that applied a row of ``design`` (rows 0..n-1):
    ``({row: its abm.sweep.collect.collect_jobs row}, those jobs)``; a complete job wins over
    another attempt at the same row; jobs of another design file are left out."""
    import pandas as pd

    from abm.sweep.collect import collect_jobs

    runs, design = Path(runs), Path(design)
    jobs = collect_jobs(runs) if runs.is_dir() else pd.DataFrame()
    if not len(jobs) or "design.row" not in jobs.columns:
        return {}, jobs.iloc[:0] if len(jobs.columns) else jobs
    if "design.file" in jobs.columns:
        files = jobs["design.file"].astype(str).str.strip("'\"")
        mine = files.map(lambda f: Path(f).expanduser().resolve() == design.resolve())
        jobs = jobs[mine]
    rows: dict[int, Any] = {}
    for _, job in jobs.iterrows():
        try:
            r = int(float(job["design.row"]))
        except (TypeError, ValueError):
            continue
        if 0 <= r < n and (r not in rows or job["status"] == "complete"):
            rows[r] = job
    return rows, jobs
