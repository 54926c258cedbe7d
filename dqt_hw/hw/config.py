"""Which generator builds a design, and the reference designs checked in under ``rtl/``.

A :class:`dqt_hw.design.Design` names its component; :data:`GENERATORS` maps the name to
the Amaranth generator and :func:`build` builds it. The reference designs (those checked
in under ``rtl/``) are :data:`dqt_hw.design.reference.REFERENCE_DESIGNS`.
"""

from __future__ import annotations

from ..design import COMPONENTS, Design
from .array import PEArray
from .axi import AxiShell
from .baseline import RescaleUnit
from .pe import MACPE
from .plain import PlainArray, PlainMACPE
from .plane_tile import PlaneTile
from .planes import PlaneBuffer
from .requant import Requantizer
from .scalable import ScalableMACPE
from .tile import Tile
from .view import NestedView

__all__ = ["GENERATORS", "build"]

GENERATORS = {
    "view": NestedView,
    "pe": MACPE,
    "scalable_pe": ScalableMACPE,
    "array": PEArray,
    "requant": Requantizer,
    "tile": Tile,
    "rescale": RescaleUnit,
    "axi": AxiShell,
    "plain_pe": PlainMACPE,
    "plain_array": PlainArray,
    "planes": PlaneBuffer,
    "plane_tile": PlaneTile,
}
"""Generator of each component name."""

if tuple(GENERATORS) != COMPONENTS:  # pragma: no cover - one list of components
    raise RuntimeError(f"GENERATORS {tuple(GENERATORS)} != design COMPONENTS {COMPONENTS}")


def build(design: Design):
    """The Amaranth component of ``design``."""
    if not isinstance(design, Design):
        raise TypeError(f"design must be a dqt_hw.design.Design, not {design!r}")
    return GENERATORS[design.component](design)
