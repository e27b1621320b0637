"""The repository stands alone: no tracked text file points at documents outside it.

Whatever the code, config and docs rely on is in docs/ (design.md, ODD.md, sources.md, ...);
a reference to a planning document that is not in the repository, or to a sibling folder of
the checkout, would leave a reader with nothing to open.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spelled in pieces so that this file does not match itself.
_OUTSIDE_DOCS = ("MODEL", "DESIGN", "BIOLOGY2", "STYLE")
FORBIDDEN = re.compile(
    r"\b(?:" + "|".join(_OUTSIDE_DOCS) + r")\.md\b"
    r"|\.\./" + "shared"
    r"|/work/" + "shared"
)


def _tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def _text(path: Path) -> str | None:
    """The file's text, or None for binary files (a NUL byte, or not UTF-8) and deleted ones."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_references_outside_the_repository():
    hits = []
    for path in _tracked_files():
        text = _text(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            m = FORBIDDEN.search(line)
            if m:
                hits.append(f"{path.relative_to(ROOT)}:{lineno}: {m.group(0)}")
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)
