"""The cycle model against the generated tile in Amaranth's simulator.

Layers cut into tiles are streamed through :class:`dqt_hw.hw.Tile` with every input always
valid and the output always ready; the cycles from the first input transfer to the last
output transfer (both included) must equal :func:`dqt_hw.cost.layer_cycles` exactly. The
same check on the generated Verilog in Verilator under cocotb is ``sim/tb/tb_cycles.py``
(node ``cycles-tile4x4`` of sim/matrix.py's QUICK list: make sim and make test).
"""

from __future__ import annotations

import math

import pytest
from amaranth.sim import Simulator

from dqt_hw.cost import layer_cycles
from dqt_hw.hw import Tile


def simulate_cycles(dut, jobs):
    """jobs: (m, ncols, k) per tile, in issue order."""
    R, C = dut.rows, dut.cols
    lane = {"k1": 1, "k2": 0, "k3": 0, "k4": 0, "e1": 0, "e2": 0, "e3": 0, "e4": 0, "s": 0}
    total_rows = sum(m for m, _, _ in jobs)
    ev = {"first": None, "last": None, "rows": 0}

    async def put(ctx, stream, payloads):
        for p in payloads:
            ctx.set(stream.valid, 1)
            ctx.set(stream.payload, p)
            await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def cmd(ctx):
        await put(ctx, dut.cmd, [{"k": k, "b_a": 4, "b_w": 8} for _, _, k in jobs])

    async def act(ctx):
        await put(ctx, dut.act, [[3] * R for _, _, k in jobs for _ in range(k)])

    async def wgt(ctx):
        await put(ctx, dut.wgt, [[5] * C for _, _, k in jobs for _ in range(k)])

    async def rq(ctx):
        await put(ctx, dut.rq, [{"m": m, "ncols": nc, "b_out": 8, "rounding": 0,
                                 "lanes": [lane] * C} for m, nc, _ in jobs])

    async def collect(ctx):
        ctx.set(dut.out.ready, 1)
        cyc = 0
        while ev["rows"] < total_rows:
            _, _, ov, av, ar = await ctx.tick().sample(dut.out.valid, dut.act.valid,
                                                       dut.act.ready)
            if av and ar and ev["first"] is None:
                ev["first"] = cyc
            if ov:
                ev["rows"] += 1
                ev["last"] = cyc
            cyc += 1
            assert cyc < 20_000

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for p in (cmd, act, wgt, rq, collect):
        sim.add_testbench(p)
    sim.run()
    return ev["last"] - ev["first"] + 1


def layer_jobs(info, R, C):
    """The tiles of a layer in the cycle model's order: column folds, row folds inside."""
    O, Ho, Wo = info["out_shape"]
    M, N, K = Ho * Wo, O // info["groups"], info["taps"]
    jobs = []
    for _ in range(info["groups"]):
        for j in range(math.ceil(N / C)):
            for i in range(math.ceil(M / R)):
                jobs.append((min(R, M - i * R), min(C, N - j * C), K))
    return jobs


@pytest.mark.parametrize("R, C, out_shape, taps, groups, rq_lanes, rq_stages", [
    (2, 3, (5, 2, 3), 7, 1, None, 0),      # K > max(R, C): tiles back to back
    (3, 2, (3, 2, 2), 2, 1, None, 0),      # K < max(R, C): padded to the period
    (4, 4, (8, 3, 3), 9, 2, None, 0),      # groups, a short last row fold
    (1, 1, (2, 1, 1), 3, 1, None, 0),
    # fewer requantizer lanes than columns: C / rq_lanes cycles per emitted row
    (2, 3, (5, 2, 3), 7, 1, 1, 0),
    (3, 2, (3, 2, 2), 2, 1, 1, 0),
    (4, 4, (8, 3, 3), 9, 2, 2, 0),
    (4, 4, (8, 3, 3), 9, 1, 1, 0),
    (3, 4, (4, 5, 1), 2, 1, 2, 0),         # short tiles and short row folds
    # pipelined requantizer lanes: rq_stages more cycles of latency, nothing else
    (2, 3, (5, 2, 3), 7, 1, None, 2),
    (4, 1, (3, 3, 3), 2, 1, None, 1),   # R > C, short tiles: rows of two tiles in the lanes
])
def test_cycle_model_equals_tile_simulation(R, C, out_shape, taps, groups, rq_lanes, rq_stages):
    O, Ho, Wo = out_shape
    info = {"name": "layer", "groups": groups, "out_shape": out_shape, "taps": taps,
            "macs": O * Ho * Wo * taps}
    dut = Tile(rows=R, cols=C, n=8, acc_width=24, kbits=16, ebits=3, sbits=5,
               depth_bits=6, rq_lanes=rq_lanes, rq_stages=rq_stages)
    model = layer_cycles(info, dut, b_a=4, b_w=8)["Total Cycles"]
    assert simulate_cycles(dut, layer_jobs(info, R, C)) == model
