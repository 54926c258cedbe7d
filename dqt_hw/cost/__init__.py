"""dqt_hw.cost: the architect's cost models (docs/cost.md).

- :mod:`.bitops`: BitOPs, static per-layer width mixes and per-input (dynamic) widths;
- :mod:`.switch`: precision-switch cost, shifts against dequantize/requantize MACs;
- :mod:`.tech` / :mod:`.energy`: technology tables (data files) with scaling laws; energy
  of a layer mapped onto the tile, and of one precision switch;
- :mod:`.area` / :mod:`.synth`: the analytic area model fitted to Yosys synthesis of the
  generated hardware, and the synthesis baseline;
- :mod:`.cycles`: the cycle model of the output-stationary tile (SCALE-Sim report fields).

Layers come from the one layer graph, :mod:`dqt_hw.net`; hardware configurations are the
generator's own description (:class:`dqt_hw.design.Design`, or a generated :class:`dqt_hw.hw.Tile`).
"""

from .bitops import dynamic_bitops, static_bitops
from .cycles import layer_cycles, network_cycles, steps_per_element
from .energy import MemoryConfig, layer_energy, network_energy, switch_energy_pj
from .switch import PAPER_RESNET50, paper_comparison, switch_cost
from .tech import load_tech
from .workload import DynamicWidths, WidthMix, load_network

__all__ = ["DynamicWidths", "MemoryConfig", "PAPER_RESNET50", "WidthMix", "dynamic_bitops",
           "layer_cycles", "layer_energy", "load_network", "load_tech", "network_cycles",
           "network_energy", "paper_comparison", "static_bitops", "steps_per_element",
           "switch_cost", "switch_energy_pj"]
