"""The regression matrix: which configuration runs which bench with which knobs.

A :class:`Node` is one pytest node: a generated configuration (``component`` + parameters)
or a checked-in ``rtl/`` file, a cocotb bench module and its parameters. ``QUICK`` is the
representative subset (``make sim``, also inside ``make test``); ``FULL`` is everything
(``make sim-full``).

The tile matrix is array size {2x2, 4x4, 8x8} x W {16, 24, 32} x {wrap, saturate} x
{unsigned, signed} x view rounding {floor, half_up}: the whole product at 2x2 (24
configurations), and at 4x4 and 8x8 a covering subset in which every value of every axis
appears (8x8 models take minutes to compile); ``SIM_FULL_PRODUCT=1`` runs the whole
product at every size (72 tile builds).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

GOLDEN_TILE_CASES = ["gemm_8x64x8_w32_wrap", "gemm_8x64x8_w20_wrap", "gemm_8x48x8_w18_saturate",
                     "conv_8x6x6_k3_b4x4_w32", "dense_4x16x8_b8x6_w18_sat"]


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
        return runner.design(self.component, **dict(self.hw))


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
                      dict(n=8, rounding=r, signed=signed), quick=quick))
    # PE: products x widths, overflow
    for W, ovf, signed, r in itertools.product((16, 24, 32), ("wrap", "saturate"),
                                               (False, True), ("floor", "half_up")):
        quick = (W, ovf, signed, r) == (16, "saturate", True, "half_up")
        params = dict(product="all" if full else 6, jobs=200 if full else 60,
                      overflow_max_terms=70_000 if full else 3_000)
        out.append(_n(f"pe-w{W}-{ovf[:4]}-{'s' if signed else 'u'}-{_rounding_tag(r)}", "tb_pe",
                      "pe", dict(n=8, acc_width=W, overflow=ovf, view_rounding=r, signed=signed),
                      params, quick))
    # requantizer lane (its datapath depends on W and the code signedness)
    for W, signed in itertools.product((16, 24, 32), (False, True)):
        quick = (W, signed) == (32, False)
        params = dict(edge_vectors=800 if full else 200, random_vectors=3000 if full else 600)
        out.append(_n(f"requant-w{W}-{'s' if signed else 'u'}", "tb_requant", "requant",
                      dict(n=8, acc_width=W, signed=signed), params, quick))
    # tile
    axes = list(itertools.product((16, 24, 32), ("wrap", "saturate"), (False, True),
                                  ("floor", "half_up")))
    product = os.environ.get("SIM_FULL_PRODUCT", "0") not in ("", "0")
    for size in (2, 4, 8):
        if size == 2 or product:
            chosen = axes
        else:  # a covering subset: every axis value at this size
            chosen = [(16, "wrap", False, "floor"), (24, "saturate", True, "half_up"),
                      (32, "wrap", True, "half_up"), (32, "saturate", False, "floor")]
            if size == 8:
                chosen = chosen[:2] + [(32, "saturate", False, "half_up")]
        for W, ovf, signed, r in chosen:
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
                    params=dict(jobs=24, p_idle=0.1, p_stall=0.1)))
    if not full:
        out = [n for n in out if n.quick]
    return out


QUICK = nodes(full=False)
FULL = nodes(full=True)
