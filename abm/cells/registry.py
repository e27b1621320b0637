"""The registry of cell types: registration order fixes the run-file type codes and phenotype
codes (build stage of the data flow). A leaf: the cell modules register here, and whoever needs
the types (config schema, parameters, model) reads them from here.
"""

from __future__ import annotations

from typing import Any

_REGISTRY: dict[str, Any] = {}


def register(cls: Any) -> Any:
    """Class decorator: add a cell type (type code and phenotype codes follow registry order)."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a cell type named {cls.name!r} is already registered")
    if cls.name not in _REGISTRY:
        cls.code = len(_REGISTRY)
        cls.phenotype_offset = sum(len(t.phenotypes) for t in _REGISTRY.values())
        _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove the last registered type ``name`` (tests that add a toy type clean up with it)."""
    if list(_REGISTRY)[-1] != name:
        raise ValueError(f"only the last registered cell type can be removed, not {name!r}")
    del _REGISTRY[name]


def registry() -> list[Any]:
    """The registered cell types (classes), in registry order."""
    return list(_REGISTRY.values())


def type_codes() -> dict[int, str]:
    """Run-file type code -> type name."""
    return {t.code: t.name for t in _REGISTRY.values()}


def phenotype_codes() -> dict[int, str]:
    """Run-file phenotype code -> phenotype name (one table for every type)."""
    return {t.phenotype_offset + i: ph for t in _REGISTRY.values()
            for i, ph in enumerate(t.phenotypes)}  # fmt: skip
