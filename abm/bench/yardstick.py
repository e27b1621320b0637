"""The yardstick: a plain vectorized NumPy LOD step with uniform D, timed next to our solver.

Data flow: a lattice case's shape, dx, dt and one (D, decay) pair -> :class:`ReferenceLOD`
precomputes the Thomas factors of each axis once -> ``step(u)`` solves every line of an axis
at once (the sweep axis first, a Python loop along it, whole slabs per operation) -> abm-bench's
ratio case times it against :func:`kernels.diffusion.make_stepper` in the same run, so the
ratio does not depend on the machine. This is the textbook way to vectorize BioFVM's scheme
in NumPy; on a 2-core Xeon it stepped 3D 128^3 x 8 float32 fields at ~55 M voxel-field
updates/s and 2D 512^2 x 8 at ~60-80 M/s, about the speed of BioFVM's C++ solver, so "our
speed / yardstick speed" reads as roughly "times BioFVM".

Scheme (the same as ``make_stepper(method="lod")`` without cells): per axis k, backward Euler
``(1 - dt*L_k) u_new = u`` with the second difference ``L_k`` (D/dx² times [1, -2, 1]) and no
flux through the outer faces (end rows [-1, 1]); the decay is implicit in the solve of the last
axis longer than one voxel, ``(1 + dt*decay - dt*L_k)``, once per step, so a uniform field
decays exactly as (1 + dt*decay)^-1 and the step conserves mass when decay is 0.
Units: dx in µm, dt in min, D in µm²/min, decay in 1/min.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def thomas_factors(n: int, r: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Factors of the tridiagonal matrix ``-r, 1 + 2r + lam, -r`` (ends ``1 + r + lam``), n rows.

    Returns (pivot reciprocals m, back-substitution weights e), float64 (n,): the forward sweep
    is ``y[i] = (d[i] + r*y[i-1]) * m[i]`` and the backward ``x[i] = y[i] + e[i]*x[i+1]``.
    """
    diag = np.full(n, 1.0 + 2.0 * r + lam)
    diag[[0, -1]] = 1.0 + r + lam
    if n == 1:
        diag[0] = 1.0 + lam
    m = np.empty(n)
    e = np.empty(n)
    upper = 0.0  # the eliminated upper coefficient of the previous row (-e[i-1])
    for i in range(n):
        m[i] = 1.0 / (diag[i] + r * upper)
        e[i] = r * m[i]
        upper = -e[i]
    return m, e


class ReferenceLOD:
    """Implicit LOD diffusion + decay step with uniform ``D`` on an ``(F, *shape)`` array.

    shape: 1-3 spatial dims; dx_um: µm; dt_min: min; D: µm²/min; decay: 1/min (the same for
    every field and voxel). ``step(u)`` returns the next state (a new array of ``dtype``).
    """

    def __init__(
        self,
        shape: Sequence[int],
        dx_um: float,
        dt_min: float,
        D: float,
        decay: float,
        dtype: str | np.dtype = "float32",
    ) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.r = self.dtype.type(D * dt_min / dx_um**2)
        long_axes = [k for k, n in enumerate(self.shape) if n > 1]
        decay_axis = long_axes[-1] if long_axes else len(self.shape) - 1
        lam = [decay * dt_min if k == decay_axis else 0.0 for k in range(len(self.shape))]
        self.factors = [
            tuple(a.astype(self.dtype) for a in thomas_factors(n, float(self.r), lam[k]))
            for k, n in enumerate(self.shape)
        ]

    def step(self, u: np.ndarray) -> np.ndarray:
        """u (F, *shape) -> u after one step of every axis (the input is not modified)."""
        for axis in range(len(self.shape)):
            u = self._sweep(u, axis)
        return np.ascontiguousarray(u)

    def _sweep(self, u: np.ndarray, axis: int) -> np.ndarray:
        m, e = self.factors[axis]
        lines = np.moveaxis(u, axis + 1, 0).astype(self.dtype, order="C")  # lines[i]: one slab
        tmp = np.empty_like(lines[0])
        lines[0] *= m[0]
        for i in range(1, lines.shape[0]):
            np.multiply(lines[i - 1], self.r, out=tmp)
            lines[i] += tmp
            lines[i] *= m[i]
        for i in range(lines.shape[0] - 2, -1, -1):
            np.multiply(lines[i + 1], e[i], out=tmp)
            lines[i] += tmp
        return np.moveaxis(lines, 0, axis + 1)
