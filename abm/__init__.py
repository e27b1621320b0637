"""oa-abm: agent-based model of the osteoarthritic knee treated with intra-articular MSCs.

Public API (a contract, documented in docs/design.md): :func:`compose`, :class:`JointModel`,
:func:`load_run` and ``__version__`` (from the package metadata, :mod:`abm.version`). The three
functions are imported lazily so that ``import abm`` stays cheap for the CLI and the tests.
"""

from __future__ import annotations

from typing import Any

from abm.version import __version__

__all__ = ["JointModel", "__version__", "compose", "load_run"]


def __getattr__(name: str) -> Any:
    if name == "compose":
        from abm.config import compose

        return compose
    if name == "JointModel":
        from abm.model import JointModel

        return JointModel
    if name == "load_run":
        from abm.replay.run import load_run

        return load_run
    raise AttributeError(f"module 'abm' has no attribute {name!r}")
