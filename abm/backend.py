"""Array backends: the one place in ``abm`` that chooses between NumPy and CuPy.

Data flow: config (``backend=numpy|cupy|auto``) -> :func:`get_backend` -> the model, tissue and
kernels receive ``backend.xp`` and never import cupy themselves. Host copies happen through
``to_numpy`` only, and only where an observer needs data. Telling the namespaces apart is the
job of :mod:`kernels.xp` (``to_numpy`` and ``is_cupy`` come from there, so there is one copy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from abm.errors import BackendError
from kernels.xp import is_cupy, to_numpy

log = logging.getLogger(__name__)

BACKENDS = ("numpy", "cupy", "auto")


@dataclass(frozen=True)
class Backend:
    """A named array namespace: ``xp`` is ``numpy`` or ``cupy``."""

    name: str
    xp: ModuleType

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Move a host array to this backend (a copy only when needed)."""
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        """Host copy of a numpy or cupy array (numpy arrays are returned as they are)."""
        return to_numpy(a)

    def synchronize(self) -> None:
        synchronize(self.xp)


def cuda_device_count() -> int:
    """Number of usable CUDA devices (0 when cupy is missing or no driver/device answers)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # ImportError, CUDARuntimeError, driver errors: all mean "no GPU"
        return 0


def get_backend(name: str = "numpy") -> Backend:
    """Return the backend called ``name`` (``numpy``, ``cupy`` or ``auto``).

    ``cupy`` without a usable CUDA device raises :class:`BackendError` with one line;
    ``auto`` falls back to numpy and logs why.
    """
    if name not in BACKENDS:
        raise BackendError(f"backend={name!r} is not one of {', '.join(BACKENDS)}")
    if name == "numpy":
        return Backend("numpy", np)
    if cuda_device_count() > 0:
        import cupy

        return Backend("cupy", cupy)
    if name == "cupy":
        raise BackendError(
            "backend=cupy needs cupy (pip install -e '.[gpu]') and a usable CUDA device; "
            "none was found (use backend=numpy or backend=auto)"
        )
    log.info("backend=auto: no usable CUDA device, running on numpy")
    return Backend("numpy", np)


def synchronize(xp: ModuleType) -> None:
    """Wait for queued device work (no-op on numpy); use before timing or host reads."""
    if is_cupy(xp):
        xp.cuda.get_current_stream().synchronize()
