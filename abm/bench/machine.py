"""The machine a benchmark ran on: backends it offers, CPU, BLAS, GPU and the code's git state.

Data flow: the requested backend names -> :func:`check_backends` (unknown or unusable: one-line
:class:`~abm.errors.BenchError` before any work) -> the suite; :func:`machine_info` -> the
``machine`` block of bench.json, so that a number can be read with what produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abm.backend import cuda_device_count, get_backend
from abm.errors import BackendError, BenchError

KNOWN_BACKENDS = ("numpy", "cupy")
REPO = Path(__file__).resolve().parents[2]


def default_backends() -> list[str]:
    """numpy, plus cupy when a CUDA device answers."""
    return ["numpy", "cupy"] if cuda_device_count() > 0 else ["numpy"]


def check_backends(names: Sequence[str]) -> list[str]:
    """Validate backend names (unknown or unusable -> :class:`BenchError`, one line)."""
    out: list[str] = []
    for name in names:
        if name not in KNOWN_BACKENDS:
            raise BenchError(f"--backends: {name!r} is not one of {', '.join(KNOWN_BACKENDS)}")
        try:
            get_backend(name)
        except BackendError as exc:
            raise BenchError(f"--backends {name}: {exc}") from None
        if name not in out:
            out.append(name)
    return out


def cpu_model() -> str:
    """The CPU's model name (as lscpu's "Model name")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list[dict[str, Any]] | None:
    """Thread pools NumPy uses (threadpoolctl): library, version, threads and, for OpenBLAS,
    the core type its kernels were picked for (``architecture``, e.g. Haswell, SkylakeX)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def gpu_info() -> dict[str, Any]:
    """Device 0's name and memory, the cupy, CUDA runtime and driver versions."""
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "memory_gb": props["totalGlobalMem"] / 1e9,
        "cupy": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "driver": cupy.cuda.runtime.driverGetVersion(),
    }


def git_state() -> dict[str, Any]:
    """HEAD and the tracked files that differ from it (what the timings ran on); {} outside a
    checkout."""

    def git(*args: str) -> list[str]:
        out = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        return [line for line in out.splitlines() if line.strip()]

    try:
        return {
            "commit": git("rev-parse", "HEAD")[0],
            "dirty_files": git("diff", "--name-only", "HEAD"),
        }
    except (OSError, subprocess.SubprocessError, IndexError):  # no git, not a checkout
        return {}


def machine_info(backends: Sequence[str] = ()) -> dict[str, Any]:
    """CPU model, cores, load, numpy + BLAS, GPU (if cupy is among ``backends``), git."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "load_avg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "threadpools": blas_info(),
        "gpu": gpu_info() if "cupy" in backends else None,
        "git": git_state(),
    }
