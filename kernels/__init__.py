"""Leaf package of array kernels (lattice solver, RNG, cell<->field exchange, moves).

Everything here takes plain arrays and an array namespace ``xp`` (numpy, cupy or any array-API
namespace; :mod:`kernels.xp` is the one place that tells them apart); it never imports ``abm``.
"""
