"""Leaf package of array kernels (lattice solver, RNG, cell<->field exchange, moves).

Everything here takes plain arrays and an array namespace ``xp``; it never imports ``abm``.
"""
