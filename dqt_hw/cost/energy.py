"""Energy of a layer mapped onto the tile, and of one precision switch.

Layer energy (batch 1), from a technology table (:mod:`dqt_hw.cost.tech`) and the tile's
configuration (a :class:`dqt_hw.hw.Tile`: R, C, n, W, widths, side-sum and constant
widths), with the mapping of :mod:`dqt_hw.cost.cycles` (T tiles of K steps):

- ``compute``: MACs x (multiplier(b_a, b_w) + adder(W)). The PE multiplier is n x n, but
  the viewed operands have their top n - b bits zero, so its switching energy follows
  b_a x b_w (the multiplier scaling law);
- ``views``: the edge view units, R + C per step, each an n-bit multiplexer over the
  supported widths (plus an n-bit adder for ``half_up``);
- ``side_sums``: R + C additions per step at the side-sum width;
- ``requant``: per output, K1 x acc, K2 x sum_a, K3 x sum_w (kbits x W, kbits x side-sum
  width), three additions at the requantizer's sum width and the final shift;
- ``sram``: on-chip buffer traffic. Each tile reads R x K activations and K x C weights
  (activations are re-read once per column fold, weights once per row fold) and writes its
  outputs; an element is ``n`` bits when tensors are stored once at the master width
  (``storage="master"``, DQT's way), b bits when stored packed at the view width
  (``"packed"``), or, stored as bit-planes (``"planes"``, docs/arithmetic.md 2.3),
  ``planes_read(n, b, view_rounding)`` bits for an operand read at width b and n bits for
  an output (written once at the master width: the next layer may read it at any width),
  times the word-packing overhead of its tensor: a plane of N elements takes
  ceil(N / W) words of W bits (``MemoryConfig.plane_word_bits``, default 64, the
  technology tables' SRAM word), so an element costs ceil(N / W) W / N plane bits;
- ``dram``: every weight, input and output element crosses DRAM once (ideal reuse, a
  lower bound: the buffers are taken to hold the layer's working set), at the same bits
  an element as the SRAM traffic.

Register clocking, leakage and control are not modelled (no entry in the table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..design import Design, as_design
from ..design.reference import baseline_rescale
from ..spec import PLANE_WORD_BITS, planes_read
from .tech import load_tech
from .workload import check_supported

__all__ = ["MemoryConfig", "layer_energy", "network_energy", "dynamic_energy",
           "switch_energy_pj", "element_bits", "SWITCH_METHODS", "ENERGY_PARTS", "STORAGE"]

ENERGY_PARTS = ("compute", "views", "side_sums", "requant", "sram", "dram")
SWITCH_METHODS = ("shift", "shift_half_up", "int_rescale", "float")
STORAGE = ("master", "packed", "planes")
"""How tensors are stored: once at the master width n, packed at each view width, or as
n bit-planes of which a view reads a prefix (docs/arithmetic.md section 2.3)."""


@dataclass(frozen=True)
class MemoryConfig:
    """On-chip buffers (KB), how tensors are stored and, for ``planes``, the word width
    of a packed plane."""

    act_buf_kb: float = 64.0
    wgt_buf_kb: float = 64.0
    out_buf_kb: float = 16.0
    storage: str = "master"
    dram_corner: str | None = None
    plane_word_bits: int = PLANE_WORD_BITS

    def __post_init__(self):
        if self.storage not in STORAGE:
            raise ValueError(f"storage must be one of {STORAGE}, not {self.storage!r}")
        for k in ("act_buf_kb", "wgt_buf_kb", "out_buf_kb"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{k} must be positive, not {getattr(self, k)}")
        w = self.plane_word_bits
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise ValueError(f"plane_word_bits must be an integer >= 1, not {w!r}")


def element_bits(mem: MemoryConfig, tile, b: int | None, elements: int) -> float:
    """Bits moved per element of a tensor of ``elements`` codes read at width ``b`` (None:
    written, at the master width) under ``mem.storage`` on ``tile``: n (master), b
    (packed; an output at b_out = n), or the planes read (``spec.planes_read`` of the
    tile's view rounding; n for an output) times ceil(N / W) W / N (planes)."""
    n = tile.n
    if mem.storage == "master":
        return float(n)
    if mem.storage == "packed":
        return float(n if b is None else b)
    planes = n if b is None else planes_read(n, b, tile.view_rounding, signed=tile.signed)
    if elements <= 0:
        return float(planes)
    W = mem.plane_word_bits
    return planes * (-(-elements // W) * W) / elements


def _view_pj(tech, tile):
    stages = max(0, math.ceil(math.log2(len(tile.widths)))) if len(tile.widths) > 1 else 0
    e = tech.shift_pj(tile.n, stages)
    if tile.view_rounding == "half_up":
        e += tech.add_pj(tile.n)
    return e


def layer_energy(info: dict, tile, *, b_a: int = 8, b_w: int = 8, b_out: int | None = None,
                 tech="horowitz45", memory: MemoryConfig | None = None) -> dict:
    """Energy (pJ) of one conv/fc layer (``Graph.layer_info``) on ``tile``, by part."""
    tech = load_tech(tech)
    mem = memory or MemoryConfig()
    tile = as_design(tile, "tile")
    n, W = tile.n, tile.acc_width
    check_supported(tile, b_a, b_w)
    b_out = n if b_out is None else b_out
    R, C = tile.rows, tile.cols
    g = info["groups"]
    O, Ho, Wo = info["out_shape"]
    M, N, K = Ho * Wo, O // g, info["taps"]
    fm, fn = math.ceil(M / R), math.ceil(N / C)
    steps = g * fm * fn * K
    macs = info["macs"]
    outs = info["out_activations"]
    sw = tile.side_sum_width
    e = {}
    e["compute"] = macs * tech.mac_pj(b_a, b_w, W)
    e["views"] = steps * (R + C) * _view_pj(tech, tile)
    e["side_sums"] = steps * (R + C) * tech.add_pj(sw)
    rq = (tech.mul_pj(tile.kbits, W) + 2 * tech.mul_pj(tile.kbits, sw)
          + 3 * tech.add_pj(tile.requant_sum_bits) + tech.shift_pj(tile.requant_sum_bits, tile.sbits))
    e["requant"] = outs * rq
    a_bits = element_bits(mem, tile, b_a, info["in_activations"])
    w_bits = element_bits(mem, tile, b_w, info["weights"])
    o_bits = element_bits(mem, tile, None if mem.storage == "planes" else b_out, outs)
    act_reads = g * fn * M * K
    wgt_reads = g * fm * N * K
    e["sram"] = (act_reads * a_bits * tech.sram_pj_per_bit(mem.act_buf_kb)
                 + wgt_reads * w_bits * tech.sram_pj_per_bit(mem.wgt_buf_kb)
                 + outs * o_bits * tech.sram_pj_per_bit(mem.out_buf_kb))
    dram_bits = (info["weights"] * w_bits + info["in_activations"] * a_bits + outs * o_bits)
    e["dram"] = dram_bits * tech.dram_pj_per_bit(mem.dram_corner)
    e["total"] = sum(e[k] for k in ENERGY_PARTS)
    return {"name": info["name"], "b_a": b_a, "b_w": b_w,
            **{f"{k}_pj": v for k, v in e.items()},
            "sram_reads": act_reads + wgt_reads, "dram_bits": dram_bits,
            "element_bits": {"a": a_bits, "w": w_bits, "out": o_bits}}


def network_energy(graph, tile, mix, *, tech="horowitz45", memory=None) -> tuple[list[dict], dict]:
    rows = []
    for info in graph.layer_table():
        b_a, b_w = mix.pair(info["name"])
        rows.append(layer_energy(info, tile, b_a=b_a, b_w=b_w, tech=tech, memory=memory))
    tot = {f"{k}_pj": sum(r[f"{k}_pj"] for r in rows) for k in (*ENERGY_PARTS, "total")}
    return rows, tot


def dynamic_energy(graph, tile, dynamic, *, tech="horowitz45", memory=None) -> dict:
    """Energy per inference under per-input widths (a ``DynamicWidths``: the controller's
    choices): each input's layers at its own pairs. Returns ``per_input_pj`` (inputs,)
    and, over the inputs, ``mean``, ``std``, ``min``, ``max`` (pJ) and the mean of every
    part (``<part>_pj``)."""
    import numpy as np

    table = graph.layer_table()
    names = tuple(r["name"] for r in table)
    if tuple(dynamic.layers) != names:
        raise ValueError(f"per-input widths are for layers {dynamic.layers[:3]}..., not the "
                         f"{len(names)} conv/fc layers of {graph.name}")
    tech = load_tech(tech)
    w = np.asarray(dynamic.widths, np.int64)
    parts = {k: np.zeros(w.shape[0]) for k in (*ENERGY_PARTS, "total")}
    for li, info in enumerate(table):
        pairs, inverse = np.unique(w[:, li, :], axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        for pi, (b_a, b_w) in enumerate(pairs.tolist()):
            e = layer_energy(info, tile, b_a=b_a, b_w=b_w, tech=tech, memory=memory)
            hit = inverse == pi
            for k in parts:
                parts[k][hit] += e[f"{k}_pj"]
    tot = parts["total"]
    return {"inputs": int(w.shape[0]), "per_input_pj": tot, "mean_pj": float(tot.mean()),
            "std_pj": float(tot.std()), "min_pj": float(tot.min()), "max_pj": float(tot.max()),
            **{f"{k}_pj": float(parts[k].mean()) for k in ENERGY_PARTS}}


def switch_energy_pj(method: str, *, design=None, tech="horowitz45", fmt: str = "fp32") -> float:
    """Energy of switching ONE element's width on ``design`` (a tile design or
    component; default: the default tile):

    - ``shift``: the floor view, an n-bit multiplexer over the design's widths
      (n x ceil(log2 |widths|) 2:1 multiplexer bits; the shift itself is wiring);
    - ``shift_half_up``: the same plus the n-bit rounding adder (the paper's Eq. 4);
    - ``int_rescale``: :class:`dqt_hw.hw.RescaleUnit` (a ``rescale`` design as given, or
      the reference baseline ``dqt_rescale`` at the design's n): a mult_bits x n
      multiply, a (mult_bits + n + 2)-bit add and a rounding shift of sbits stages;
    - ``float``: dequantize then requantize, two floating-point multiply-adds (``fmt``);
      int/float conversions are not counted.
    """
    tech = load_tech(tech)
    d = Design() if design is None else as_design(design)
    n, widths = d.n, d.widths
    stages = math.ceil(math.log2(len(widths))) if len(widths) > 1 else 0
    if method == "shift":
        return tech.shift_pj(n, stages)
    if method == "shift_half_up":
        return tech.shift_pj(n, stages) + tech.add_pj(n)
    if method == "int_rescale":
        r = d if d.component == "rescale" else baseline_rescale(n)
        w = r.mult_bits + n + 2
        return tech.mul_pj(r.mult_bits, n) + tech.add_pj(w) + tech.shift_pj(w, r.sbits)
    if method == "float":
        return 2 * tech.fp_mac_pj(fmt)
    raise ValueError(f"switch method must be one of {SWITCH_METHODS}, not {method!r}")
