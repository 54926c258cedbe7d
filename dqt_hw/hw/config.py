"""Which generator builds a design, and the reference designs checked in under ``rtl/``.

A :class:`dqt_hw.design.Design` names its component; :data:`GENERATORS` maps the name to
the Amaranth generator and :func:`build` builds it. :data:`REFERENCE_DESIGNS` are the
designs whose Verilog and sidecars are checked in under ``rtl/`` (``make rtl``).
"""

from __future__ import annotations

from ..design import COMPONENTS, Design
from .array import PEArray
from .baseline import RescaleUnit
from .pe import MACPE
from .requant import Requantizer
from .scalable import ScalableMACPE
from .tile import Tile
from .view import NestedView

__all__ = ["GENERATORS", "REFERENCE_DESIGNS", "build"]

GENERATORS = {
    "view": NestedView,
    "pe": MACPE,
    "scalable_pe": ScalableMACPE,
    "array": PEArray,
    "requant": Requantizer,
    "tile": Tile,
    "rescale": RescaleUnit,
}
"""Generator of each component name."""

if tuple(GENERATORS) != COMPONENTS:  # pragma: no cover - one list of components
    raise RuntimeError(f"GENERATORS {tuple(GENERATORS)} != design COMPONENTS {COMPONENTS}")


def build(design: Design):
    """The Amaranth component of ``design``."""
    if not isinstance(design, Design):
        raise TypeError(f"design must be a dqt_hw.design.Design, not {design!r}")
    return GENERATORS[design.component](design)


REFERENCE_DESIGNS = (
    Design(component="view", name="dqt_view_floor", n=8, view_rounding="floor"),
    Design(component="view", name="dqt_view", n=8, view_rounding="half_up"),
    Design(component="pe", name="dqt_pe", n=8, acc_width=32, overflow="wrap",
           view_rounding="floor"),
    Design(component="scalable_pe", name="dqt_pe_scalable", n=8, acc_width=32,
           overflow="wrap", max_pack=4),
    Design(component="array", name="dqt_array4x4", rows=4, cols=4, n=8, acc_width=32),
    Design(component="tile", name="dqt_tile8x8_w32", rows=8, cols=8, n=8, acc_width=32,
           overflow="wrap"),
    Design(component="tile", name="dqt_tile8x8_w18_sat", rows=8, cols=8, n=8, acc_width=18,
           overflow="saturate"),
    Design(component="rescale", name="dqt_rescale", n=8, rounding="half_up", mult_bits=16,
           sbits=5),
    Design(component="tile", name="dqt_tile4x4_pack4", rows=4, cols=4, n=8, acc_width=32,
           overflow="wrap", max_pack=4),
)
"""The designs checked in under rtl/ (``dqt-hw rtl --reference rtl``)."""
