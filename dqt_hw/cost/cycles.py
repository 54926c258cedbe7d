"""Cycle model of a layer mapped onto the accelerator tile (output-stationary R x C).

Mapping: a conv layer of g groups is g GEMMs ``A[M x K] @ W[K x N]`` with M = Ho * Wo
output pixels (batch 1), N = O / g output channels and K = taps = (C / g) k k; an fc layer
is one GEMM with M = 1. Each GEMM is cut into tiles of at most R rows (pixels) and C
columns (channels), each tile K steps long (one element of A's column and W's row per
step), as :class:`dqt_hw.hw.Tile` takes them. Tiles are issued column fold by column fold,
row folds inside, so the last tile has ``M_last = M - (ceil(M/R) - 1) R`` rows.

Timing of the tile (dqt_hw/hw/tile.py, without back-pressure and with inputs always
valid; both figures from :class:`dqt_hw.design.Design`): the last step of tile t enters
at cycle ``L_t = K - 1 + t * max(K, P)`` with ``P = design.min_period`` = max(R, C) (the
array's double-buffered results let the next tile start at once; a tile shorter than P is
padded with idle steps), and its rows leave ``design.latency`` = C + 1 + G cycles later,
one per G cycles, where G = ``design.row_cycles`` = C / rq_lanes (1 with a requantizer
lane per column: latency C + 2, one row per cycle; pipelined lanes, ``rq_stages``, add
their register ranks to the latency and nothing else). With G > 1 every emitted row freezes
the whole datapath (inputs included) for G - 1 cycles while the lane groups take its
columns in turn, so a layer of T tiles takes

    cycles = (T - 1) max(K, P) + K + latency - 1 + G (M_last - 1) + 1
             + (G - 1) (E - M_last)

with E = g ceil(N / C) M the rows emitted by all its tiles, counted from the first input
step to the last output transfer, both included (for G = 1: (T - 1) max(K, P) + K +
latency - 1 + M_last). The width
pair does not change it (the PE is a full n x n multiplier: one step per element at every
width); ``steps_per_element`` models a precision-scalable PE instead (the generator's
ScalableMACPE packing, not yet inside a tile: its K steps shrink to ceil(K / pack)).

The report has the fields of SCALE-Sim's ``COMPUTE_REPORT.csv`` (Total Cycles, Stall
Cycles, Overall Util %, Mapping Efficiency %, Compute Util %) plus the mapping details.
"""

from __future__ import annotations

import math

from ..design import as_design

__all__ = ["layer_cycles", "network_cycles", "steps_per_element", "SCALE_SIM_FIELDS",
           "PE_MODES", "scalesim_os_estimate", "cycles_to_seconds", "MAX_CLOCK_MHZ"]

MAX_CLOCK_MHZ = 100_000.0
"""Largest clock taken (100 GHz): a larger figure is a unit mistake (Hz for MHz)."""


def cycles_to_seconds(cycles: int, clock_mhz: float) -> float:
    """Seconds of ``cycles`` at ``clock_mhz`` (a finite number in (0, 100000] MHz;
    ValueError otherwise)."""
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) \
            or not (0 < clock_mhz <= MAX_CLOCK_MHZ):
        raise ValueError(f"clock frequency must be a number of MHz in (0, {MAX_CLOCK_MHZ:g}], "
                         f"not {clock_mhz!r}")
    return cycles / (clock_mhz * 1e6)

SCALE_SIM_FIELDS = ("LayerID", "Total Cycles", "Stall Cycles", "Overall Util %",
                    "Mapping Efficiency %", "Compute Util %")

PE_MODES = ("fixed", "scalable", "bit_serial")


def steps_per_element(b_a: int, b_w: int, n: int, mode: str = "fixed",
                      max_pack: int = 4) -> float:
    """Array steps per GEMM element at widths (b_a, b_w):

    - ``fixed`` (dqt_hw.hw.MACPE, an n x n multiplier): 1 at every width;
    - ``scalable`` (dqt_hw.hw.ScalableMACPE, fused bricks): 1 / pack, the generator's own
      ``pack_factor(n, b_a, b_w, max_pack)`` (4 when max(b_a, b_w) <= n/4, 2 when <= n/2);
    - ``bit_serial`` (activation bits one per step, Stripes-like): b_a.
    """
    if mode == "fixed":
        return 1.0
    if mode == "scalable":
        from ..design.rules import pack_factor

        return 1.0 / pack_factor(n, b_a, b_w, max_pack)
    if mode == "bit_serial":
        return float(b_a)
    raise ValueError(f"PE mode must be one of {PE_MODES}, not {mode!r}")


def layer_cycles(info: dict, tile, *, b_a: int = 8, b_w: int = 8, pe_mode: str = "fixed",
                 max_pack: int = 4, dram_bits: int | None = None,
                 dram_bits_per_cycle: float | None = None) -> dict:
    """Cycle report of one layer (``Graph.layer_info``) on ``tile`` (a tile
    :class:`dqt_hw.design.Design` or a generated :class:`dqt_hw.hw.Tile`)."""
    tile = as_design(tile, "tile")
    R, C = tile.rows, tile.cols
    g = info["groups"]
    O, Ho, Wo = info["out_shape"]
    M, N, K0 = Ho * Wo, O // g, info["taps"]
    spe = steps_per_element(b_a, b_w, tile.n, pe_mode, max_pack)
    K = max(1, math.ceil(K0 * spe))
    P = tile.min_period
    fm, fn = math.ceil(M / R), math.ceil(N / C)
    T = g * fm * fn
    m_last = M - (fm - 1) * R
    compute = (T - 1) * max(K, P) + K
    G = tile.row_cycles
    drain = tile.latency + G * (m_last - 1)
    requant_wait = (G - 1) * (g * fn * M - m_last)  # rows of the earlier tiles
    stall = 0
    if dram_bits is not None and dram_bits_per_cycle:
        stall = max(0, math.ceil(dram_bits / dram_bits_per_cycle)
                    - (compute + drain + requant_wait))
    total = compute + drain + requant_wait + stall
    macs = info["macs"]
    pe_cycles_used = macs * spe  # PE-steps doing useful work
    mapping = (M * N) / (fm * R * fn * C)
    return {
        "LayerID": info["name"],
        "Total Cycles": total,
        "Stall Cycles": stall,
        "Overall Util %": 100.0 * pe_cycles_used / (R * C * total),
        "Mapping Efficiency %": 100.0 * mapping,
        "Compute Util %": 100.0 * pe_cycles_used / (R * C * (total - stall)),
        "M": M, "N": N, "K": K0, "groups": g, "steps_per_tile": K,
        "row_folds": fm, "col_folds": fn, "tiles": T, "m_last": m_last,
        "idle_steps": (T - 1) * (max(K, P) - K),
        "fill_drain_cycles": drain,
        "requant_wait_cycles": requant_wait,
        "fits_depth": K0 <= (1 << tile.depth_bits),
    }


def network_cycles(graph, tile, mix, **kw) -> tuple[list[dict], dict]:
    """(per-layer reports, totals) for a graph at a static width mix (layers run one after
    the other; the fill/drain of each layer is paid once)."""
    rows = []
    for info in graph.layer_table():
        b_a, b_w = mix.pair(info["name"])
        rows.append(layer_cycles(info, tile, b_a=b_a, b_w=b_w, **kw))
    tile = as_design(tile, "tile")
    R, C = tile.rows, tile.cols
    total = sum(r["Total Cycles"] for r in rows)
    stall = sum(r["Stall Cycles"] for r in rows)
    used = sum(r["Compute Util %"] / 100.0 * R * C * (r["Total Cycles"] - r["Stall Cycles"])
               for r in rows)
    return rows, {"cycles": total, "stall_cycles": stall,
                  "overall_util_pct": 100.0 * used / (R * C * total) if total else 0.0}


def scalesim_os_estimate(info: dict, rows: int, cols: int) -> int:
    """SCALE-Sim's analytical output-stationary runtime, ``(2R + C + K - 2)`` cycles per
    fold times the folds (no overlap between folds): the number an architect used to
    SCALE-Sim would expect for an array without double-buffered results."""
    g = info["groups"]
    O, Ho, Wo = info["out_shape"]
    M, N, K = Ho * Wo, O // g, info["taps"]
    return g * math.ceil(M / rows) * math.ceil(N / cols) * (2 * rows + cols + K - 2)
