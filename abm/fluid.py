"""The synovial fluid as one well-mixed compartment (transport stage of the data flow).

Placeholder of the joint-scale transport (issue: biology v2): ``mix`` is called after every
transport step with the fields and returns them unchanged until the well-mixed compartment
is built here.
"""

from __future__ import annotations

from typing import Any


class SynovialFluid:
    """The synovial fluid of one model (``model.fluid``)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def mix(self, u: Any, dt: float) -> Any:
        """After one transport step of ``dt`` minutes: the fields with the fluid mixed."""
        return u
