"""Cell types: one module per type (its parameters, columns and rules) and their registry.

Data flow: the model instantiates every registered :class:`~abm.cells.base.CellType` with its
parameters (``biology.<name>``), keeps one population per type
(:class:`~abm.cells.population.Populations`) and calls the same methods of each type in the
step order (see :mod:`abm.cells.base`). Registry order fixes the run-file type codes and the
phenotype codes; the five built-in types register on import of this package.
"""

from __future__ import annotations

from abm.cells.registry import (  # noqa: F401  (the package's face)
    phenotype_codes,
    register,
    registry,
    type_codes,
    unregister,
)

# the built-in types, in registry order (type codes 0-4)
# isort: off
from abm.cells import macrophage  # noqa: F401
from abm.cells import tcell  # noqa: F401
from abm.cells import fls  # noqa: F401
from abm.cells import chondrocyte  # noqa: F401
from abm.cells import msc  # noqa: F401
# isort: on
