"""Import rules of the package layout, checked on the source with ``ast`` (nothing is imported).

- ``kernels`` is a leaf: it never imports ``abm``.
- ``abm.replay`` reads run files only: neither it nor anything it imports reaches the observers,
  the runner or the model (it shares the file names through ``abm.schema``).
- ``abm.schema``, ``abm.errors``, ``abm.units`` and ``abm.version`` are leaves that any stage may
  import: none imports another ``abm`` module, except ``abm.schema`` -> ``abm.errors``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("abm", "kernels")


def _file(module: str) -> Path | None:
    """Source file of ``module`` in this repository (None when it is not ours)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Modules imported anywhere in ``path`` (function-level imports included), absolute."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from pkg import name`` may import the submodule pkg.name
            found.update(f"{module}.{a.name}" for a in node.names if _file(f"{module}.{a.name}"))
    return found


def reachable(start: list[Path]) -> dict[str, str]:
    """Every repository module imported from ``start``, directly or not: {module: importer}."""
    seen: dict[str, str] = {}
    todo = list(start)
    while todo:
        path = todo.pop()
        for module in imports(path):
            target = _file(module)
            if target is not None and module not in seen:
                seen[module] = _module(path)
                todo.append(target)
    return seen


def _ours(modules: set[str], prefix: str) -> list[str]:
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("path", sorted((ROOT / "kernels").rglob("*.py")), ids=lambda p: p.name)
def test_kernels_never_import_abm(path):
    assert _ours(imports(path), "abm") == []


def test_replay_reaches_neither_observers_nor_model():
    files = sorted((ROOT / "abm" / "replay").rglob("*.py"))
    assert files, "abm/replay has no modules?"
    for path in files:  # direct imports, file by file
        direct = imports(path)
        assert _ours(direct, "abm.observers") == [], path.name
        assert _ours(direct, "abm.model") == [], path.name
    reached = reachable(files)  # and nothing they import leads there
    bad = [
        f"{m} (imported by {reached[m]})"
        for m in reached
        if m.startswith(("abm.observers", "abm.model", "abm.runner", "abm.cells"))
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("leaf", "allowed"),
    [("schema", {"abm.errors"}), ("errors", set()), ("units", set()), ("version", set())],
)
def test_leaf_modules(leaf, allowed):
    path = ROOT / "abm" / f"{leaf}.py"
    assert set(_ours(imports(path), "abm")) <= allowed
