"""dqt_hw.hw: Amaranth generators for the DQT datapath (docs/hardware.md).

The nested view unit, the MAC PE, the output-stationary PE array with its side sums, the
requantizer lane, the accelerator tile with stream interfaces, the baseline rescale
unit (a multiplier where DQT needs a shift), and bit-plane storage (the plane buffer and
the tile run from it). Every generator follows docs/arithmetic.md
bit for bit and is tested against :mod:`dqt_hw.spec` in Amaranth's simulator.
"""

from .array import PEArray, SideSum
from .baseline import RescaleUnit
from .pe import MACPE
from .plane_tile import PlaneTile
from .planes import PlaneBuffer
from .requant import Requantizer
from .scalable import ScalableMACPE
from .tile import Tile
from .view import NestedView

__all__ = ["MACPE", "NestedView", "PEArray", "PlaneBuffer", "PlaneTile", "Requantizer",
           "RescaleUnit", "ScalableMACPE", "SideSum", "Tile"]
