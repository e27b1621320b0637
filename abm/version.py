"""The package version, read from the installed distribution's metadata (pyproject.toml).

Written into every run file (root attr ``abm_version``) and benchmark report, so a result can
be traced to the code that made it. A source tree that was never installed (no metadata) reports
:data:`UNKNOWN_VERSION` instead of guessing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "oa-abm"
UNKNOWN_VERSION = "0+unknown"  # PEP 440 local version: "not from an installed package"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # e.g. run from a source tree without `pip install -e .`
    __version__ = UNKNOWN_VERSION
