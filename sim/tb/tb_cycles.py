"""cocotb bench: the cycle model (``dqt_hw.cost.cycles.layer_cycles``) against cycles
measured on the generated tile in Verilator (issue 6, model 5).

A layer of shape (groups, out_shape = (O, Ho, Wo), taps K) is cut into the cycle model's
tiles (groups outside, then column folds of at most C output channels, row folds of at
most R output pixels inside) and streamed through ``sim.tb.tb_tile.TB`` with every input
stream always valid and ``out.ready`` always high (no idle cycles, no back-pressure). The
measured figure is the number of clock cycles from the first ``act``/``wgt`` transfer to
the last ``out`` transfer, both included — the model's definition — and must equal the
model exactly. The outputs are also checked against the reference model (random codes
and lanes), so the figure is that of a tile computing correct results.

Shapes (``shapes`` parameter, or the defaults below): K < max(R, C) (padded tiles),
K = max(R, C), K > max(R, C) (tiles back to back), a short last row fold and a partial
column fold, groups, one tile, several consecutive tiles with a width switch at every
tile (``switch``: the (b_a, b_w) pair cycles through every built pair), and the geometry
of a real layer of the shipped network. The summary records every shape with its
measured and modelled cycles and the error (``cycles``: list of dicts).
"""

from __future__ import annotations

import math

import cocotb

from dqt_hw import spec
from dqt_hw.hw.reference import TileJob

from .common import Config, write_summary
from .tb_tile import TB

# (name, groups, (O, Ho, Wo), taps, switch widths between tiles)
DEFAULT_SHAPES = [
    ["K2_padded", 1, [6, 3, 3], 2, False],          # K < max(R, C): each tile padded
    ["K3_short_folds", 1, [5, 3, 3], 3, True],      # M = 9 (last fold 1 row), N = 5
    ["K_eq_P", 1, [8, 2, 4], 4, False],             # K = max(R, C)
    ["K9_switch", 1, [8, 4, 4], 9, True],           # K > max(R, C), a switch every tile
    ["single_tile", 1, [3, 1, 2], 5, False],        # one tile, M < R, N < C
    ["K1_one_step", 1, [4, 2, 2], 1, True],         # the shortest tile
    ["groups2", 2, [8, 3, 2], 7, True],             # grouped conv: 2 GEMMs back to back
    ["layer3.0.downsample", 1, [64, 2, 2], 32, True],  # the shipped network's 1x1 conv
]


def layer_tiles(groups, out_shape, taps, R, C):
    """(m, ncols, K) per tile in the cycle model's order."""
    O, Ho, Wo = out_shape
    M, N = Ho * Wo, O // groups
    return [(min(R, M - i * R), min(C, N - j * C), taps)
            for _ in range(groups) for j in range(math.ceil(N / C))
            for i in range(math.ceil(M / R))]


class CycleProbe:
    """A monitor stepped after the stream monitors: the cycles of the first act transfer
    and of the last out transfer."""

    def __init__(self, tb):
        self.tb = tb
        self.first = None
        self.last = None

    def sample(self, cycle):
        if self.first is None and self.tb.mon["act"].fire:
            self.first = cycle
        if self.tb.mon["out"].fire:
            self.last = cycle


def _job(tb, m, ncols, k, pair):
    rng = tb.rng
    lo, hi = spec.code_range(tb.n, tb.signed)
    b_out = rng.choice(tb.widths)
    acc_width = min(tb.W, pair[0] + pair[1] + max(0, k - 1).bit_length())
    return TileJob(a=[[rng.randint(lo, hi) for _ in range(k)] for _ in range(m)],
                   w=[[rng.randint(lo, hi) for _ in range(ncols)] for _ in range(k)],
                   b_a=pair[0], b_w=pair[1], b_out=b_out, rounding=rng.choice(spec.ROUNDINGS),
                   lanes=[tb.random_lane(rng, "small", acc_width=acc_width, b_out=b_out)
                          for _ in range(ncols)])


@cocotb.test()
async def test_cycles(dut):
    """Every shape: measured cycles == ``layer_cycles(...)["Total Cycles"]``."""
    from dqt_hw.cost.cycles import layer_cycles

    rows, errors = [], []
    for name, groups, out_shape, taps, switch in Config().get("shapes", DEFAULT_SHAPES):
        tb = TB(dut)
        if tb.cfg.get("p_idle", 0) or tb.cfg.get("p_stall", 0):
            raise AssertionError("the cycle check needs p_idle = p_stall = 0")
        probe = CycleProbe(tb)
        tb.loop.monitors.append(probe)
        pairs = [(a, w) for a in tb.widths for w in tb.widths]
        tb.rng.shuffle(pairs)
        tiles = layer_tiles(groups, out_shape, taps, tb.R, tb.C)
        for t, (m, ncols, k) in enumerate(tiles):
            pair = pairs[t % len(pairs)] if switch else (8, 8)
            tb.send_job(_job(tb, m, ncols, k, pair))
        await tb.start()
        await tb.run()
        tb.finish()
        measured = probe.last - probe.first + 1
        O, Ho, Wo = out_shape
        info = {"name": name, "groups": groups, "out_shape": tuple(out_shape), "taps": taps,
                "macs": O * Ho * Wo * taps}
        model = layer_cycles(info, tb.cfg.design, b_a=8, b_w=8)["Total Cycles"]
        rows.append({"shape": name, "groups": groups, "out_shape": list(out_shape), "K": taps,
                     "tiles": len(tiles), "switches": bool(switch), "measured": measured,
                     "model": model, "error": measured - model})
        dut._log.info(f"{name}: {len(tiles)} tiles, K = {taps}: measured {measured} cycles, "
                      f"model {model} (error {measured - model})")
        if measured != model:
            errors.append(f"{name}: measured {measured} cycles, the model says {model}")
    write_summary(cycles=rows, cycle_shapes=len(rows),
                  cycle_max_abs_error=max(abs(r["error"]) for r in rows))
    if errors:
        raise AssertionError("; ".join(errors))
