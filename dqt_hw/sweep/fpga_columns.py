"""FPGA columns of a sweep (``dqt-hw sweep --fpga ecp5``): LUTs, flip-flops, DSPs and Fmax
of each distinct tile of the sweep, placed and routed once (seed 1) with the flow of
:mod:`dqt_hw.cost.fpga`, and the time per inference at that Fmax.

The tile placed is ``Design(rows, cols, n, acc_width, overflow)`` with the other
parameters at their defaults (every width built): the hardware a point's tile stands for,
not a tile trimmed to the widths of its mix. Each is minutes of nextpnr; a 16 x 16 tile
runs out of DSP blocks and is placed with its multipliers in LUTs (``fpga_dsp`` "nodsp").
"""

from __future__ import annotations

__all__ = ["FPGA_COLUMNS", "add_fpga_columns"]

FPGA_COLUMNS = ("fpga_comb", "fpga_ffs", "fpga_dsps", "fpga_dsp", "fpga_fmax_mhz",
                "fpga_seconds_per_inference")


def _tile_key(r):
    from ..design import Design

    n = r.get("n")  # (a grid may leave n out: the default master width)
    return (int(r["rows"]), int(r["cols"]), int(n if n is not None else Design().n),
            int(r["acc_width"]), r["overflow"])


def add_fpga_columns(rows, target: str, *, implement=None, log=print) -> list[dict]:
    """``rows`` with :data:`FPGA_COLUMNS` added (one place-and-route per distinct tile;
    ``implement`` defaults to :func:`dqt_hw.cost.fpga.implement`)."""
    from ..cost.fpga import FPGA_TARGETS
    from ..design import Design
    from ..design.rules import min_acc_width

    if target not in FPGA_TARGETS:
        raise ValueError(f"--fpga must be one of {sorted(FPGA_TARGETS)}, not {target!r}")
    if implement is None:
        from ..cost.fpga import implement
    figures = {}
    for key in sorted({_tile_key(r) for r in rows}):
        R, C, n, W, ovf = key
        W = max(W, min_acc_width(n))  # a point whose W holds no product: its valid tile
        d = Design(component="tile", name=f"sweep_tile{R}x{C}_n{n}_w{W}_{ovf}", rows=R,
                   cols=C, n=n, acc_width=W, overflow=ovf)
        res = implement(d, target, seeds=(1,))
        clk = sorted(res["fmax_median_mhz"])[0]
        figures[key] = res, res["fmax_median_mhz"][clk]
        log(f"{target} {d.name}: {res['comb_used']} comb, {res['ffs']} FF, {res['dsps']} DSP "
            f"({res['dsp']}), Fmax {figures[key][1]:.1f} MHz")
    out = []
    for r in rows:
        res, fmax = figures[_tile_key(r)]
        out.append({**r, "fpga_comb": res["comb_used"], "fpga_ffs": res["ffs"],
                    "fpga_dsps": res["dsps"], "fpga_dsp": res["dsp"], "fpga_fmax_mhz": fmax,
                    "fpga_seconds_per_inference": r["cycles"] / (fmax * 1e6)})
    return out
