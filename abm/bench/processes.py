"""Child processes measured from outside: wall time and peak resident memory of a whole run.

Data flow: Hydra overrides -> ``python -m abm`` (abm-run, observers and files included) in a
temporary run folder, under ``/usr/bin/time -v`` or a one-child ``getrusage`` wrapper -> a
result dict (wall s, peak RSS MB, exit code, stderr tail) for ``scripts/bench_model.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'\\nmaxrss_kb={kb}', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_measured(
    cmd: Sequence[str], timeout: float | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``cmd`` in a subprocess: wall time (s), peak RSS (MB) and exit code.

    Peak RSS comes from ``/usr/bin/time -v`` when present, else from a one-child wrapper's
    ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (exact for that one child).
    """
    env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    if Path("/usr/bin/time").exists():
        full, method = ["/usr/bin/time", "-v", *cmd], "/usr/bin/time -v"
    else:
        full = [sys.executable, "-c", _RUSAGE_WRAPPER, *cmd]
        method = "getrusage(RUSAGE_CHILDREN).ru_maxrss"
    t0 = time.perf_counter()
    res = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr) or re.search(
        r"maxrss_kb=(\d+)", res.stderr
    )
    return {
        "command": list(cmd),
        "returncode": res.returncode,
        "wall_s": wall,
        "peak_rss_mb": int(m.group(1)) / 1024.0 if m else None,
        "rss_method": method,
        "stderr_tail": res.stderr[-2000:],
    }


def abm_run_measured(overrides: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """``python -m abm OVERRIDES`` in a temporary run folder, measured by
    :func:`run_measured`."""
    with tempfile.TemporaryDirectory(prefix="abm-bench-") as tmp:
        cmd = [sys.executable, "-m", "abm", *overrides, f"hydra.run.dir={tmp}/run"]
        out = run_measured(cmd, timeout=timeout)
    out["overrides"] = list(overrides)
    return out
