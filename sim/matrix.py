"""The regression matrix: which configuration runs which bench with which knobs.

A :class:`Node` is one pytest node: a generated configuration (``component`` + parameters)
or a checked-in ``rtl/`` file, a cocotb bench module and its parameters. ``QUICK`` is the
representative subset (``make sim``, also inside ``make test``); ``FULL`` is the matrix of
``make sim-full``.

Only configurations the generators accept are in it: W must hold one product
(``dqt_hw.design.rules.min_acc_width``: 17 bits for 8-bit unsigned codes, 16 for signed), so the
W axis is {narrowest, 24, 32} where "narrowest" is W = 16 with signed codes and W = 17
with unsigned codes (``w_min``); nothing uses W = 16 with unsigned codes.

The full product (PE: 3 W x 2 overflow x 2 signedness x 2 rounding = 24; tile: 3 sizes x
the same 24 = 72) takes hours of Verilator builds on 2 shared cores, so ``FULL`` is a
covering set:

- PE and every tile size: all six (W, overflow) combinations, with signedness and view
  rounding chosen so that every pair of axis values appears (``PAIRWISE``: a strength-2
  covering array of W x overflow x signedness x rounding in 6 rows);
- 8x8 (a build takes minutes): W = 16 saturate and W = 24 wrap, signed, half_up, plus the
  two checked-in tiles (W = 32 wrap and W = 18 saturate, unsigned, floor), so that every
  axis value appears at 8x8 too;
- requantizer: every W with both signednesses across 4 builds.

``SIM_FULL_PRODUCT=1`` runs the whole product instead (PE, requantizer and every tile size).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from dqt_hw.design.rules import min_acc_width


def w_min(signed: bool) -> int:
    """The narrowest accumulator of n = 8 codes: 16 signed, 17 unsigned."""
    return min_acc_width(8, signed=signed)


def _w(W, signed):
    return w_min(signed) if W == "min" else W


# W x overflow x signed x view rounding: every pair of values of any two axes appears
PAIRWISE = [("min", "wrap", False, "half_up"), ("min", "saturate", True, "floor"),
            (24, "wrap", True, "half_up"), (24, "saturate", False, "floor"),
            (32, "wrap", False, "floor"), (32, "saturate", True, "half_up")]
PRODUCT = list(itertools.product(("min", 24, 32), ("wrap", "saturate"), (False, True),
                                 ("floor", "half_up")))

GOLDEN_TILE_CASES = ["gemm_8x64x8_w32_wrap", "gemm_8x64x8_w20_wrap", "gemm_8x48x8_w18_saturate",
                     "conv_8x6x6_k3_b4x4_w32", "dense_4x16x8_b8x6_w18_sat",
                     "conv_16x6x6_k3_b8x8_w32_wrap", "conv_16x6x6_k3_b4x4_w32_wrap",
                     "conv_16x6x6_k3_b2x2_w32_wrap", "conv_16x6x6_k3_b8x8_w18_sat"]
"""The canonical golden cases of golden/ that are tile cases; each tile node runs those
that fit it (``dqt_hw.golden.fits``)."""


@dataclass(frozen=True)
class Node:
    id: str
    bench: str  # module under sim.tb
    component: str | None = None
    hw: tuple = ()  # sorted (key, value) generator parameters
    rtl: str | None = None  # or a checked-in rtl/<stem>
    params: dict = field(default_factory=dict, compare=False, hash=False)
    quick: bool = False

    def design(self):
        from . import runner

        if self.rtl:
            return runner.rtl_design(self.rtl)
        return runner.generated(self.component, **dict(self.hw))


def _n(id, bench, component, hw, params=None, quick=False):
    return Node(id, bench, component, tuple(sorted(hw.items())), None, params or {}, quick)


def _rounding_tag(r):
    return "hu" if r == "half_up" else "fl"


def nodes(full: bool = True) -> list[Node]:
    out = []
    # view unit: exhaustive, every build-time variant
    for signed, r in itertools.product((False, True), ("floor", "half_up")):
        quick = (signed, r) in ((False, "floor"), (True, "half_up"))
        out.append(_n(f"view-{'s' if signed else 'u'}-{_rounding_tag(r)}", "tb_view", "view",
                      dict(n=8, view_rounding=r, signed=signed), quick=quick))
    product = os.environ.get("SIM_FULL_PRODUCT", "0") not in ("", "0")
    # PE: products x widths, overflow
    for Wk, ovf, signed, r in (PRODUCT if product else PAIRWISE):
        W = _w(Wk, signed)
        quick = (W, ovf, signed, r) == (16, "saturate", True, "floor")
        params = dict(product="all" if full else 6, jobs=200 if full else 60,
                      overflow_max_terms=70_000 if full else 3_000, views=True,
                      boundary=True)
        out.append(_n(f"pe-w{W}-{ovf[:4]}-{'s' if signed else 'u'}-{_rounding_tag(r)}", "tb_pe",
                      "pe", dict(n=8, acc_width=W, overflow=ovf, view_rounding=r, signed=signed),
                      params, quick))
    # requantizer lane (its datapath depends on W and the code signedness)
    rq = (list(itertools.product(("min", 24, 32), (False, True))) if product else
          [("min", False), ("min", True), (24, False), (32, True), (32, False)])
    for Wk, signed in rq:
        W = _w(Wk, signed)
        quick = (W, signed) == (32, False)
        params = dict(edge_vectors=800 if full else 200, random_vectors=3000 if full else 600)
        out.append(_n(f"requant-w{W}-{'s' if signed else 'u'}", "tb_requant", "requant",
                      dict(n=8, acc_width=W, signed=signed), params, quick))
    # tile
    for size in (2, 4, 8):
        if product:
            chosen = PRODUCT
        elif size == 8:  # + the checked-in rtl-dqt_tile8x8_w32 (32 wrap u fl), _w18_sat
            chosen = [("min", "saturate", True, "half_up"), (24, "wrap", True, "half_up")]
        else:
            chosen = PAIRWISE
        for Wk, ovf, signed, r in chosen:
            W = _w(Wk, signed)
            quick = (size, W, ovf, signed, r) == (2, 32, "wrap", False, "floor")
            jobs = (64 if size == 2 else 49) if full else 16
            params = dict(jobs=jobs, p_idle=0.15, p_stall=0.2, golden=GOLDEN_TILE_CASES,
                          golden_blocks=None if full else 8,
                          resnet_blocks=(2 if size == 8 else 4) if full else 1,
                          overflow_max_k=40_000 if full else 600)
            out.append(_n(f"tile{size}x{size}-w{W}-{ovf[:4]}-{'s' if signed else 'u'}-"
                          f"{_rounding_tag(r)}", "tb_tile", "tile",
                          dict(rows=size, cols=size, n=8, acc_width=W, overflow=ovf,
                               view_rounding=r, signed=signed), params, quick))
    out += feature_tiles(full)
    # two requantizer lanes for four columns (2 cycles per row), signed, half_up views
    out.append(_n("tile4x4-rq2-w17-wrap-s-hu", "tb_tile", "tile",
                  dict(rows=4, cols=4, n=8, acc_width=17, overflow="wrap",
                       view_rounding="half_up", signed=True, rq_lanes=2),
                  dict(jobs=24, p_idle=0.15, p_stall=0.25, golden=GOLDEN_TILE_CASES,
                       golden_blocks=8, resnet_blocks=2, overflow_max_k=600)))
    # configurations that exist for golden sets of their own
    out.append(_n("tile2x2-w20-wrap-u-fl-golden", "tb_tile", "tile",
                  dict(rows=2, cols=2, n=8, acc_width=20, overflow="wrap"),
                  dict(jobs=8, golden=GOLDEN_TILE_CASES, golden_required=True)))
    out.append(_n("tile4x4-w18-satu-u-hu-golden", "tb_tile", "tile",
                  dict(rows=4, cols=4, n=8, acc_width=18, overflow="saturate",
                       view_rounding="half_up"),
                  dict(jobs=8, golden=GOLDEN_TILE_CASES, golden_required=True)))
    # the checked-in reference tiles
    out.append(Node("rtl-dqt_tile8x8_w32", "tb_tile", rtl="dqt_tile8x8_w32",
                    params=dict(jobs=24, p_idle=0.1, p_stall=0.1, golden=GOLDEN_TILE_CASES,
                                golden_required=True, resnet_blocks=4)))
    out.append(Node("rtl-dqt_tile8x8_w18_sat", "tb_tile", rtl="dqt_tile8x8_w18_sat",
                    params=dict(jobs=24, p_idle=0.1, p_stall=0.1, golden=GOLDEN_TILE_CASES,
                                golden_required=True)))
    if not full:
        out = [n for n in out if n.quick]
    return out


# Small tiles that, with the quick 2x2 W = 32 node, give QUICK every tile feature: signed and
# unsigned, wrap and saturate, floor and half_up views, packed (max_pack 4) and not, a
# time-multiplexed requantizer (rq_lanes < cols), a pipelined one (rq_stages), and a small K field so that full-depth
# tiles (K = 2^depth_bits, cmd k field 0) are short.
# Every tb_tile node runs with idle cycles on the inputs and back-pressure on the output.
FEATURE_TILES = [
    # (id, generator parameters)
    ("tile2x2-w16-satu-s-hu-d3", dict(rows=2, cols=2, acc_width=16, overflow="saturate",
                                      view_rounding="half_up", signed=True, depth_bits=3)),
    ("tile2x2-p4-w17-satu-u-hu-d3", dict(rows=2, cols=2, acc_width=17, overflow="saturate",
                                         view_rounding="half_up", signed=False, depth_bits=3,
                                         max_pack=4)),
    ("tile4x4-p4-w16-wrap-s-fl-d4", dict(rows=4, cols=4, acc_width=16, overflow="wrap",
                                         view_rounding="floor", signed=True, depth_bits=4,
                                         max_pack=4)),
    # one requantizer lane for the four columns: 4 cycles per output row, the array frozen
    ("tile4x4-rq1-w24-satu-u-fl-d4", dict(rows=4, cols=4, acc_width=24, overflow="saturate",
                                          view_rounding="floor", signed=False, depth_bits=4,
                                          rq_lanes=1)),
    # pipelined requantizer lanes (two register ranks), R > C: rows of consecutive tiles in
    # the lanes at once, each with its own tile's constants; latency C + 4
    ("tile3x2-rs2-w20-wrap-s-hu-d4", dict(rows=3, cols=2, acc_width=20, overflow="wrap",
                                          view_rounding="half_up", signed=True, depth_bits=4,
                                          rq_stages=2)),
]


def feature_tiles(full: bool) -> list[Node]:
    """The ``FEATURE_TILES`` nodes (quick; in FULL with longer stimulus)."""
    scale = 4 if full else 1
    params = dict(jobs=12 * scale, lane_jobs=12 * scale, switch_jobs=12 * scale,
                  full_depth_jobs=2, p_idle=0.15, p_stall=0.25, overflow_max_k=600)
    return [_n(id, "tb_tile", "tile", dict(hw, n=8), params, quick=True)
            for id, hw in FEATURE_TILES]


QUICK = nodes(full=False)
FULL = nodes(full=True)


# ----------------------------------------------------------------------------- networks, cycles
# A layer of the shipped trained network on the tile (sim/tb/tb_net.py) and the cycle model
# against measured cycles (sim/tb/tb_cycles.py), both on one 4x4 tile with the network's
# arithmetic (n = 8 unsigned, W = 32 wrap, half_up views); quick, so in make sim and make test.
NET_TILE = dict(rows=4, cols=4, n=8, acc_width=32, overflow="wrap", view_rounding="half_up",
                signed=False)
EXTRA = [
    # layer1.0.conv2: where the shipped controller switches (2/2 or 4/4 per input), 4 inputs
    # alternating between its two choices (3 switches from the controller itself, required);
    # then forced switches there and at the stride-2 layer2.0.conv1 (2/2 for every input)
    _n("net-layer1.0.conv2-tile4x4", "tb_net", "tile", NET_TILE,
       dict(layer="layer1.0.conv2", inputs=4, controller_min_switches=3,
            forced=[[2, 2], [8, 8], [4, 6], [6, 2]], also=["layer2.0.conv1"],
            p_idle=0.1, p_stall=0.2),
       quick=True),
    _n("cycles-tile4x4", "tb_cycles", "tile", NET_TILE, {}, quick=True),
    # the cycle model on the pipelined feature tile (rq_stages = 2; the same build as its
    # QUICK tb_tile node, so a few seconds): shapes with K <= 2^4
    _n("cycles-tile3x2-rs2-d4", "tb_cycles", "tile",
       dict(rows=3, cols=2, acc_width=20, overflow="wrap", view_rounding="half_up",
            signed=True, depth_bits=4, rq_stages=2, n=8),
       dict(shapes=[["K2_padded", 1, [6, 3, 3], 2, False],
                    ["K3_short_folds", 1, [5, 3, 3], 3, True],
                    ["K9_switch", 1, [8, 4, 4], 9, True],
                    ["K1_one_step", 1, [4, 2, 2], 1, True],
                    ["groups2", 2, [8, 3, 2], 7, True]]),
       quick=True),
    # the AXI shell (sim/tb/tb_axi.py, cocotbext-axi): the checked-in reference shell
    Node("axi-dqt_axi4x4", "tb_axi", rtl="dqt_axi4x4",
         params=dict(p_idle=0.2, p_stall=0.2, groups=8), quick=True),
]
# and a generated shell of other parameters (signed, saturate, half_up views, packed
# max_pack = 2, R != C, the smallest queue) in the full matrix only
AXI_FULL = [_n("axi3x2-w20-satu-s-hu-p2-q2", "tb_axi", "axi",
               dict(rows=3, cols=2, n=8, acc_width=20, overflow="saturate", signed=True,
                    view_rounding="half_up", max_pack=2, queue_depth=2),
               dict(p_idle=0.3, p_stall=0.3, groups=12))]
# the tile run from bit-plane storage (sim/tb/tb_plane_tile.py): a small half_up one in
# QUICK (b + 1 planes read), a signed floor one and the checked-in reference in FULL
PLANES_QUICK = [_n("plane_tile2x2-w20-wrap-u-hu-d4", "tb_plane_tile", "plane_tile",
                   dict(rows=2, cols=2, n=8, acc_width=20, overflow="wrap",
                        view_rounding="half_up", depth_bits=4),
                   dict(p_idle=0.2, p_stall=0.2), quick=True)]
PLANES_FULL = [
    _n("plane_tile3x2-w16-satu-s-fl-d5", "tb_plane_tile", "plane_tile",
       dict(rows=3, cols=2, n=8, acc_width=16, overflow="saturate", view_rounding="floor",
            signed=True, depth_bits=5),
       dict(p_idle=0.2, p_stall=0.3, rounds=3)),
    Node("rtl-dqt_planes4x4", "tb_planes", rtl="dqt_planes4x4",
         params=dict(p_idle=0.2, rounds=3)),
    Node("rtl-dqt_plane_tile4x4", "tb_plane_tile", rtl="dqt_plane_tile4x4",
         params=dict(p_idle=0.1, p_stall=0.2, rounds=2, golden=GOLDEN_TILE_CASES,
                     golden_blocks=4, golden_required=True)),
]
QUICK = QUICK + EXTRA + PLANES_QUICK
FULL = FULL + EXTRA + AXI_FULL + PLANES_QUICK + PLANES_FULL
