"""Array namespaces: the one place in the kernels that tells NumPy, CuPy and the rest apart.

Data flow: every kernel receives an array namespace ``xp`` (numpy, cupy, or any array-API
namespace such as ``array_api_strict``) or infers it from its arrays with
:func:`array_namespace`. The few NumPy-only or CuPy-only branches (scatter reductions, the
preallocated fast paths of the diffusion stepper) ask :func:`is_numpy` / :func:`is_cupy`.

CuPy is never imported here: an array or namespace can only be CuPy's once CuPy has been
imported by the caller, so looking it up in ``sys.modules`` is enough.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["array_namespace", "astype", "is_cupy", "is_numpy", "to_numpy"]


def _cupy() -> Any:
    """The cupy module if something imported it, else None."""
    return sys.modules.get("cupy")


def is_numpy(xp: Any) -> bool:
    """True when the namespace ``xp`` is NumPy itself."""
    return xp is np


def is_cupy(xp: Any) -> bool:
    """True when the namespace ``xp`` is CuPy itself."""
    cp = _cupy()
    return cp is not None and xp is cp


def _is_cupy_array(a: Any) -> bool:
    cp = _cupy()
    return cp is not None and isinstance(a, cp.ndarray)


def _name(xp: Any) -> str:
    return getattr(xp, "__name__", None) or type(xp).__name__


def array_namespace(*arrays: Any) -> Any:
    """The namespace of ``arrays``: numpy, cupy, or an array's ``__array_namespace__()``.

    ``None`` and Python scalars are skipped; objects that are not arrays (lists) count as
    NumPy; no arrays at all give NumPy. Arrays from different namespaces (NumPy with CuPy, ...)
    raise TypeError: move them to one backend first (nothing is copied implicitly).
    """
    found: list[Any] = []
    for a in arrays:
        if a is None or isinstance(a, (bool, int, float, complex)):
            continue
        if isinstance(a, (np.ndarray, np.generic)):
            xp = np
        elif _is_cupy_array(a):
            xp = _cupy()
        else:
            ns = getattr(a, "__array_namespace__", None)
            xp = ns() if ns is not None else np
        if not any(xp is f for f in found):
            found.append(xp)
    if len(found) > 1:
        names = ", ".join(_name(xp) for xp in found)
        raise TypeError(f"arrays from different namespaces ({names}): put them on one backend")
    return found[0] if found else np


def astype(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype`` (a new array): ``xp.astype`` where the namespace has it
    (array API, NumPy >= 2.1), else the array's own ``astype`` (older NumPy, CuPy)."""
    fn = getattr(xp, "astype", None)
    return fn(x, dtype) if fn is not None else x.astype(dtype)


def to_numpy(a: Any, dtype: Any = None) -> np.ndarray:
    """Host NumPy array of ``a``: a NumPy array, scalar, list or tuple (no copy when ``a`` is
    already a NumPy array of ``dtype``), a CuPy array (device -> host copy), or any array-API
    array (through DLPack). ``dtype`` (optional) converts the result."""
    if isinstance(a, (int, float, np.ndarray, np.generic, list, tuple)):
        return np.asarray(a, dtype=dtype)
    if _is_cupy_array(a):
        return np.asarray(a.get(), dtype=dtype)
    try:
        return np.asarray(np.from_dlpack(a), dtype=dtype)
    except Exception:  # no DLPack: whatever NumPy makes of it (__array__, sequences)
        return np.asarray(a, dtype=dtype)
