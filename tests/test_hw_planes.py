"""Bit-plane storage in Amaranth's simulator: the plane buffer and the tile run from it.

The buffer: codes stored as planes read back at every width and rounding as the code with
its unread low planes zeroed (computed here with a mask, not by the generator's rule), the
same nested view as the master code, and the enabled memories b / b + 1 / n. The plane
tile: whole GEMM tiles from plane storage equal ``dqt_hw.hw.reference.tile_reference`` on
the master codes, its read counter equals K (b_a + ...), and a width switch costs no cycle.

The layout and the planes a view reads come from the oracle (``tests/naive.py``).
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from dqt_hw.hw.plane_tile import PlaneTile
from dqt_hw.hw.planes import PlaneBuffer
from dqt_hw.hw.reference import TileJob, tile_reference
from dqt_hw.spec import ROUNDING_CODES, ROUNDINGS, code_range, nested_view
import naive
from test_hw_tile import random_job, random_lane


def planes_of(codes, n: int) -> list[int]:
    """Plane words of a vector of codes (the oracle's layout, one word a plane)."""
    return [row[0] for row in naive.to_planes(codes, n, W=len(codes))]


rows_read = naive.planes_read  # floor b, half_up b + 1, the others n (n at b = n)


def top_planes(q: int, n: int, rows: int, signed: bool) -> int:
    """``q`` with all but its top ``rows`` planes zeroed."""
    low = n - rows
    v = (q & ((1 << n) - 1)) >> low << low
    return v - (1 << n) if signed and v >> (n - 1) else v


@pytest.mark.parametrize("n,signed", [(8, False), (8, True), (5, False), (3, True)])
def test_buffer_reads_the_top_planes_at_every_width_and_rounding(n, signed):
    dut = PlaneBuffer(rows=3, cols=2, n=n, signed=signed, depth_bits=3)
    rng = random.Random(f"buf-{n}-{signed}")
    lo, hi = code_range(n, signed)
    depth = 1 << dut.depth_bits
    a = [[rng.randint(lo, hi) for _ in range(3)] for _ in range(depth)]
    w = [[rng.randint(lo, hi) for _ in range(2)] for _ in range(depth)]
    a[0], w[0] = [lo, hi, 0], [hi, lo]
    reads = [(rng.randrange(depth), rng.randrange(depth), b, rnd)
             for b in range(n + 1) for rnd in ROUNDINGS for _ in range(2)]
    got = []

    async def bench(ctx):
        for sel, data in ((0, a), (1, w)):
            for addr, codes in enumerate(data):
                for row, word in enumerate(planes_of(codes, n)):
                    ctx.set(dut.load.valid, 1)
                    ctx.set(dut.load.payload, {"sel": sel, "addr": addr, "row": row,
                                               "word": word})
                    assert ctx.get(dut.load.ready)
                    await ctx.tick()
        ctx.set(dut.load.valid, 0)
        for ai, wi, b, rnd in reads:
            ctx.set(dut.rd_en, 1)
            ctx.set(dut.a_addr, ai)
            ctx.set(dut.w_addr, wi)
            ctx.set(dut.b_a, b)
            ctx.set(dut.b_w, b)
            ctx.set(dut.rounding, ROUNDING_CODES[rnd])
            en = (ctx.get(dut.en_a), ctx.get(dut.en_w))
            await ctx.tick()
            ctx.set(dut.rd_en, 0)
            await ctx.tick()  # held while rd_en is low
            got.append((en, [ctx.get(dut.a[i]) for i in range(3)],
                        [ctx.get(dut.w[j]) for j in range(2)]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for (ai, wi, b, rnd), (en, ga, gw) in zip(reads, got):
        rows = rows_read(n, b, rnd)
        where = f"n={n} signed={signed} b={b} {rnd}"
        assert en == ((1 << rows) - 1,) * 2, where  # rows 0 .. rows - 1: a prefix
        assert ga == [top_planes(q, n, rows, signed) for q in a[ai]], where
        assert gw == [top_planes(q, n, rows, signed) for q in w[wi]], where
        if 1 <= b:
            for q, g in zip(a[ai] + w[wi], ga + gw):
                if signed and b < 2:
                    continue
                assert nested_view(g, n, b, rnd, signed=signed) == \
                    nested_view(q, n, b, rnd, signed=signed), where


def run_plane_tile(dut, jobs, bases, *, seed, p_gap=0.0, p_stall=0.0):
    """Load every job's planes (job t at ``bases[t]``: (a_base, w_base); jobs may share
    weights), then run them: (rows per job, reads per job, cycles of the reads_done
    strobes); ``run_plane_tile.cmd_cycles`` / ``.step_cycles`` keep the cycles of the cmd
    transfers and of the steps the tile inside takes."""
    rng = random.Random(seed)
    R, C, n = dut.rows, dut.cols, dut.n
    lo, hi = code_range(n, dut.signed)
    depth = 1 << dut.depth_bits
    words = {}
    for j, (ab, wb) in zip(jobs, bases):
        for k in range(j.k):
            for sel, base, size, used, code in ((0, ab, R, j.m, lambda x: j.a[x][k]),
                                                 (1, wb, C, j.ncols, lambda x: j.w[k][x])):
                addr = (base + k) % depth
                pad = random.Random(f"{seed}-pad-{sel}-{addr}")  # the same at a shared address
                codes = [code(x) if x < used else pad.randint(lo, hi) for x in range(size)]
                for row, word in enumerate(planes_of(codes, n)):
                    old = words.setdefault((sel, addr, row), word)
                    assert old == word, "two jobs share an address with other codes"
    got, reads, strobes = [], [], []
    expected_rows = sum(j.m for j in jobs)
    cycle = [0]
    loaded = [False]

    async def put(ctx, stream, payload, r):
        while r.random() < p_gap:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.valid, 1)
        ctx.set(stream.payload, payload)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def drive_load(ctx):
        r = random.Random(f"{seed}-load")
        for (sel, addr, row), word in words.items():
            await put(ctx, dut.load, {"sel": sel, "addr": addr, "row": row, "word": word}, r)
        loaded[0] = True

    async def drive_cmd(ctx):
        r = random.Random(f"{seed}-cmd")
        while not loaded[0]:
            await ctx.tick()
        for j, (ab, wb) in zip(jobs, bases):
            await put(ctx, dut.cmd, {"k": j.k % depth, "b_a": j.b_a, "b_w": j.b_w,
                                     "a_base": ab, "w_base": wb}, r)

    async def drive_rq(ctx):
        r = random.Random(f"{seed}-rq")
        for j in jobs:
            lanes = [(j.lanes[c] if c < j.ncols else random_lane(r, dut.tile, "any")).as_dict()
                     for c in range(C)]
            await put(ctx, dut.rq, {"m": j.m, "ncols": j.ncols, "b_out": j.b_out,
                                    "rounding": ROUNDING_CODES[j.rounding], "lanes": lanes}, r)

    async def collect(ctx):
        while len(got) < expected_rows:
            ready = rng.random() >= p_stall
            ctx.set(dut.out.ready, ready)
            _, _, valid, payload, done, rd, cv, cr, av, ar = await ctx.tick().sample(
                dut.out.valid, dut.out.payload, dut.reads_done, dut.reads, dut.cmd.valid,
                dut.cmd.ready, dut.tile.act.valid, dut.tile.act.ready)
            if done:
                reads.append((rd.a, rd.w))
                strobes.append(cycle[0])
            if cv and cr:
                run_plane_tile.cmd_cycles.append(cycle[0])
            if av and ar:
                run_plane_tile.step_cycles.append(cycle[0])
            cycle[0] += 1
            if valid and ready:
                got.append([payload.codes[c] for c in range(C)])
            assert cycle[0] < 100_000, "plane tile stalled"

    run_plane_tile.cmd_cycles, run_plane_tile.step_cycles = [], []
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for proc in (drive_load, drive_cmd, drive_rq, collect):
        sim.add_testbench(proc)
    sim.run()
    per_job, pos = [], 0
    for j in jobs:
        per_job.append([codes[:j.ncols] for codes in got[pos:pos + j.m]])
        pos += j.m
    return per_job, reads, strobes


def reference(dut, job):
    return tile_reference(job, n=dut.n, signed=dut.signed, acc_width=dut.design.acc_width,
                          overflow=dut.design.overflow, view_rounding=dut.view_rounding)


def _with_widths(job, b_a, b_w):
    return TileJob(job.a, job.w, b_a, b_w, job.b_out, job.rounding, job.lanes)


@pytest.mark.parametrize("params", [
    dict(rows=2, cols=3, view_rounding="half_up"),
    dict(rows=3, cols=2, view_rounding="floor", signed=True, overflow="saturate"),
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_plane_tile_equals_reference_and_counts_reads(params):
    params = dict(dict(n=8, acc_width=20, kbits=16, ebits=3, sbits=5, depth_bits=6), **params)
    dut = PlaneTile(**params)
    seed = "ptile-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    rng = random.Random(seed)
    widths = [(8, 8), (4, 4), (2, 2), (8, 2), (3, 5), (4, 4)]
    jobs, bases, at = [], [], 0
    for b_a, b_w in widths:
        j = _with_widths(random_job(rng, dut.tile, k=rng.randint(1, 8)), b_a, b_w)
        jobs.append(j)
        bases.append((at, at))
        at += j.k
    # the last job's weights again, with other activations and widths (weights read twice)
    j = random_job(rng, dut.tile, k=jobs[-1].k, ncols=jobs[-1].ncols)
    jobs.append(TileJob(j.a, jobs[-1].w, 6, 7, j.b_out, j.rounding, jobs[-1].lanes))
    bases.append((at, bases[-1][1]))
    got, reads, _ = run_plane_tile(dut, jobs, bases, seed=seed, p_gap=0.3, p_stall=0.3)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), f"seed {seed!r}"
    want = [(j.k * rows_read(8, j.b_a, dut.view_rounding),
             j.k * rows_read(8, j.b_w, dut.view_rounding)) for j in jobs]
    assert reads == want


def test_plane_tile_width_switch_costs_no_cycle():
    """K >= max(R, C) tiles at changing widths, no gaps, no back-pressure: each tile's
    reads end exactly K cycles after the previous tile's."""
    dut = PlaneTile(rows=2, cols=2, n=8, acc_width=20, kbits=16, ebits=3, sbits=5,
                    depth_bits=6, view_rounding="half_up")
    rng = random.Random("ptile-switch")
    jobs, bases, at = [], [], 0
    for b_a, b_w in [(8, 8), (2, 2), (4, 8), (1, 1), (8, 4), (4, 4)]:
        j = _with_widths(random_job(rng, dut.tile, k=rng.randint(2, 6)), b_a, b_w)
        jobs.append(j)
        bases.append((at, at))
        at += j.k
    got, _, strobes = run_plane_tile(dut, jobs, bases, seed="ptile-switch")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    assert [b - a for a, b in zip(strobes, strobes[1:])] == [j.k for j in jobs[1:]]
    # the first command's step 0 reaches the tile 2 cycles after the command, then one
    # step per cycle through every tile
    steps = run_plane_tile.step_cycles
    assert steps[0] == run_plane_tile.cmd_cycles[0] + 2
    assert steps == list(range(steps[0], steps[0] + sum(j.k for j in jobs)))


def test_components_without_widths_replace_and_take_params():
    """A design of a component without ``widths`` (the plane buffer, the plain PE) can be
    replaced and given keyword parameters on top (its widths stay at the default)."""
    from dqt_hw.design import Design

    d = Design(component="planes", name="p", rows=2, cols=2, depth_bits=3)
    assert d.replace(name="q").name == "q"
    assert Design.of("planes", d, {"rows": 3}).rows == 3
    assert Design(component="plain_pe").replace(acc_width=24).acc_width == 24


def test_plane_tile_validation():
    with pytest.raises(ValueError, match=r"depth_bits of a plane buffer must be in \[1, 12\], "
                                         r"not 13"):
        PlaneTile(depth_bits=13)
    with pytest.raises(ValueError, match=r"parameter 'max_pack' is not one of the plane_tile"):
        PlaneTile(max_pack=2)
