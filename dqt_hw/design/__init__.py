"""dqt_hw.design: the one description of a datapath (docs/design.md).

:class:`Design` holds every parameter of a tile (or of one of its parts) and the
quantities derived from them; the generators (:mod:`dqt_hw.hw`), the cost models
(:mod:`dqt_hw.cost`), the golden writer (:mod:`dqt_hw.golden`) and the cocotb benches
read it, and ``dqt-hw rtl|golden write|sim|cost --design FILE.toml`` take it from a file.
:mod:`dqt_hw.design.rules` holds the limits, checks and derived formulas.
"""

from . import rules
from .core import COMPONENTS, PARAMETERS, Design, as_design

__all__ = ["COMPONENTS", "PARAMETERS", "Design", "as_design", "rules"]
