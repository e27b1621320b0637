"""Check the calibration targets C1-C7: a thin wrapper of ``python -m abm.validation``.

Same options (``--help``); the cache (build/validate) and the output (docs/figures) default to
folders of this checkout wherever it is called from. docs/validation.md describes the targets.
"""

import sys
from pathlib import Path

from abm.validation.cli import main

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    here = ["--cache", str(ROOT / "build" / "validate"), "--out", str(ROOT / "docs" / "figures")]
    raise SystemExit(main([*here, *sys.argv[1:]]))  # options given later win
