"""Accelerator tile (and through it the PE array) in Amaranth's simulator.

Whole GEMM tiles go in through the streams and the output codes are compared with
dqt_hw.hw.reference.tile_reference, built from the dqt_hw.spec primitives: random widths
per tile (switches between consecutive tiles), wrap and saturate driven into overflow,
random valid gaps on every input and random back-pressure on the output.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from dqt_hw.hw import PEArray, Tile
from dqt_hw.design.rules import min_acc_width
from dqt_hw.hw.reference import LaneConstants, TileJob, tile_reference
from dqt_hw.spec import ROUNDING_CODES, ROUNDINGS, code_range, signed_range


def random_lane(rng, dut, style, *, acc_width=None, b_out=None):
    """Lane constants: ``"small"`` scales K1 * acc to about the output range (so the codes
    spread over [lo, hi]), ``"any"`` takes anything the fields hold."""
    kb, eb, sb = dut.kbits, dut.ebits, dut.sbits
    klo, khi = signed_range(kb)
    if style == "small":
        k1 = rng.randint(1 << (kb - 3), 1 << (kb - 2))
        k = (k1 if rng.random() < 0.8 else -k1,
             rng.randint(-(k1 >> 5), k1 >> 5), rng.randint(-(k1 >> 5), k1 >> 5),
             rng.randint(klo, khi))
        e = (rng.randrange(2), 0, 0, rng.randrange(2))
        s = (kb - 2) + e[0] + acc_width - b_out - 2 + rng.randint(-1, 1)
        s = max(0, min((1 << sb) - 1, s))
    else:
        k = tuple(rng.randint(klo, khi) for _ in range(4))
        e = tuple(rng.randrange(1 << eb) for _ in range(4))
        s = rng.randrange(1 << sb)
    return LaneConstants(k, e, s)


def random_job(rng, dut, *, m=None, ncols=None, k=None, codes="random", lanes="small"):
    R, C, n, signed = dut.rows, dut.cols, dut.n, dut.signed
    lo, hi = code_range(n, signed)
    m = m or rng.randint(1, R)
    ncols = ncols or rng.randint(1, C)
    k = k or rng.randint(1, 3 * max(R, C))
    pick = {"random": lambda: rng.randint(lo, hi),
            "max": lambda: hi,
            "extreme": lambda: rng.choice((lo, hi))}[codes]
    b_a, b_w, b_out = (rng.choice(dut.widths) for _ in range(3))
    acc_width = b_a + b_w + max(0, k - 1).bit_length()
    return TileJob(
        a=[[pick() for _ in range(k)] for _ in range(m)],
        w=[[pick() for _ in range(ncols)] for _ in range(k)],
        b_a=b_a, b_w=b_w, b_out=b_out, rounding=rng.choice(ROUNDINGS),
        lanes=[random_lane(rng, dut, lanes, acc_width=acc_width, b_out=b_out)
               for _ in range(ncols)],
    )


def transfers(dut, job, data, size, fill):
    """The act (``data`` = a, ``size`` = R) or wgt (``data`` = w transposed, ``size`` = C)
    payloads of a job: one list of ``size`` codes per element at max_pack = 1; at
    max_pack > 1 ``pack_factor(b_a, b_w)`` elements per transfer, ``[s][x]`` = element
    k0 + s of row / column x. Rows / columns beyond ``data`` and unused slots: ``fill()``."""
    K, P = job.k, dut.max_pack
    cols = [[data[x][k] if x < len(data) else fill() for x in range(size)] for k in range(K)]
    if P == 1:
        return cols
    p = dut.pack_factor(job.b_a, job.b_w)
    out = []
    for k0 in range(0, K, p):
        slots = cols[k0:k0 + p]
        slots += [[fill() for _ in range(size)] for _ in range(P - len(slots))]
        out.append(slots)
    return out


def run_tile(dut, jobs, *, seed, p_gap=0.0, p_stall=0.0):
    """Stream ``jobs`` through ``dut``; return (rows of codes per job, act transfer cycles)."""
    rng = random.Random(seed)
    R, C = dut.rows, dut.cols
    lo, hi = code_range(dut.n, dut.signed)
    expected_rows = sum(j.m for j in jobs)
    got, act_cycles, out_cycles = [], [], []
    cycle = [0]

    async def put(ctx, stream, payload, r):
        while r.random() < p_gap:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.valid, 1)
        ctx.set(stream.payload, payload)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def drive_cmd(ctx):
        r = random.Random(f"{seed}-cmd")
        for j in jobs:
            await put(ctx, dut.cmd, {"k": j.k, "b_a": j.b_a, "b_w": j.b_w}, r)

    async def drive_act(ctx):
        r = random.Random(f"{seed}-act")
        for j in jobs:
            for payload in transfers(dut, j, j.a, R, lambda: r.randint(lo, hi)):
                await put(ctx, dut.act, payload, r)

    async def drive_wgt(ctx):
        r = random.Random(f"{seed}-wgt")
        for j in jobs:
            wt = [[j.w[k][c] for k in range(j.k)] for c in range(j.ncols)]
            for payload in transfers(dut, j, wt, C, lambda: r.randint(lo, hi)):
                await put(ctx, dut.wgt, payload, r)

    async def drive_rq(ctx):
        r = random.Random(f"{seed}-rq")
        for j in jobs:
            lanes = [(j.lanes[c] if c < j.ncols else random_lane(r, dut, "any")).as_dict()
                     for c in range(C)]
            await put(ctx, dut.rq, {"m": j.m, "ncols": j.ncols, "b_out": j.b_out,
                                    "rounding": ROUNDING_CODES[j.rounding], "lanes": lanes}, r)

    async def collect(ctx):
        while len(got) < expected_rows:
            ready = rng.random() >= p_stall
            ctx.set(dut.out.ready, ready)
            _, _, valid, payload, a_valid, a_ready = await ctx.tick().sample(
                dut.out.valid, dut.out.payload, dut.act.valid, dut.act.ready)
            if a_valid and a_ready:
                act_cycles.append(cycle[0])
            cycle[0] += 1
            if valid and ready:
                out_cycles.append(cycle[0] - 1)
                got.append(([payload.codes[c] for c in range(C)], payload.row, payload.last))
            assert cycle[0] < 100_000, "tile stalled"
        ctx.set(dut.out.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for proc in (drive_cmd, drive_act, drive_wgt, drive_rq, collect):
        sim.add_testbench(proc)
    sim.run()

    per_job, pos = [], 0
    for j in jobs:
        rows = got[pos:pos + j.m]
        pos += j.m
        assert [r for _, r, _ in rows] == list(range(j.m))
        assert [lst for _, _, lst in rows] == [0] * (j.m - 1) + [1]
        assert all(codes[j.ncols:] == [0] * (C - j.ncols) for codes, _, _ in rows)
        per_job.append([codes[:j.ncols] for codes, _, _ in rows])
    run_tile.out_cycles = out_cycles
    return per_job, act_cycles


def reference(dut, job):
    return tile_reference(job, n=dut.n, signed=dut.signed, acc_width=dut.acc_width,
                          overflow=dut.overflow, view_rounding=dut.view_rounding)


@pytest.mark.parametrize(
    "params",
    [
        dict(rows=3, cols=4, overflow="wrap", view_rounding="floor"),
        dict(rows=4, cols=2, overflow="saturate", view_rounding="half_up"),
        dict(rows=2, cols=3, overflow="wrap", view_rounding="half_up", signed=True),
        dict(rows=3, cols=3, overflow="saturate", view_rounding="floor", signed=True),
        dict(rows=1, cols=1, overflow="wrap", view_rounding="floor", n=4, acc_width=9),
        # W below 2n: allowed when the built widths' products fit (4-bit x 4-bit: 9 bits)
        dict(rows=2, cols=2, overflow="saturate", view_rounding="half_up", widths=(2, 4),
             acc_width=9),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_tile_random_jobs_with_backpressure(params):
    params = dict(dict(n=8, acc_width=20, kbits=16, ebits=3, sbits=5, depth_bits=6), **params)
    dut = Tile(**params)
    seed = "tile-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    rng = random.Random(seed)
    jobs = [random_job(rng, dut) for _ in range(6)]
    jobs.append(random_job(rng, dut, k=1))  # shorter than min_period: padded
    jobs.append(random_job(rng, dut, lanes="any"))
    got, _ = run_tile(dut, jobs, seed=seed, p_gap=0.3, p_stall=0.3)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), f"seed {seed!r}"


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("signed", [False, True])
def test_tile_accumulator_driven_into_overflow(overflow, signed):
    """W = 2n + 2: a few extreme products cross the range, some lanes many times."""
    dut = Tile(rows=2, cols=2, n=6, acc_width=14, overflow=overflow, signed=signed,
               kbits=8, ebits=2, sbits=4, depth_bits=7)
    seed = f"ovf-{overflow}-{signed}"
    rng = random.Random(seed)
    jobs = []
    for codes, k in (("max", 9), ("extreme", 40), ("extreme", 100), ("random", 30)):
        j = random_job(rng, dut, m=2, ncols=2, k=k, codes=codes)
        # identity requantization (K1 = 1, S = 0) at the full width: the code is the clamped acc
        jobs.append(TileJob(j.a, j.w, b_a=6, b_w=6, b_out=6, rounding="floor",
                            lanes=[LaneConstants((1, 0, 0, 0), (0, 0, 0, 0), 0)] * 2))
        jobs.append(j)
    got, _ = run_tile(dut, jobs, seed=seed, p_gap=0.1, p_stall=0.2)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), f"seed {seed!r}"


def test_tile_width_switch_costs_no_cycle():
    """Tiles of every width pair back to back with K >= max(R, C): the act stream moves on
    every cycle from the first step to the last, across every precision switch."""
    dut = Tile(rows=3, cols=4, n=4, acc_width=12, kbits=12, ebits=3, sbits=5, depth_bits=5)
    rng = random.Random("switch")
    jobs = []
    for b_a in dut.widths:
        for b_w in dut.widths:
            j = random_job(rng, dut, k=rng.randint(4, 6))
            jobs.append(TileJob(j.a, j.w, b_a, b_w, rng.choice(dut.widths), j.rounding, j.lanes))
    got, act_cycles = run_tile(dut, jobs, seed="switch")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    assert len(act_cycles) == sum(j.k for j in jobs)
    assert act_cycles == list(range(act_cycles[0], act_cycles[0] + len(act_cycles)))
    # the first output row is valid `latency` cycles after the first tile's last step
    first_out = run_tile.out_cycles[0]
    assert first_out - act_cycles[jobs[0].k - 1] == dut.latency


def test_tile_short_tiles_are_padded_to_min_period():
    dut = Tile(rows=4, cols=3, n=4, acc_width=10, kbits=8, ebits=2, sbits=4, depth_bits=4)
    rng = random.Random("short")
    jobs = [random_job(rng, dut, k=k) for k in (1, 2, 1, 3, 4, 1)]
    got, act_cycles = run_tile(dut, jobs, seed="short")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    lasts, pos = [], 0
    for j in jobs:
        pos += j.k
        lasts.append(act_cycles[pos - 1])
    assert all(b - a >= dut.min_period for a, b in zip(lasts, lasts[1:]))
    assert dut.min_period == 4


def test_tile_full_depth_side_sums_are_exact():
    """K = 2^depth_bits (k field 0) of maximal codes: the side sums reach their bound."""
    dut = Tile(rows=1, cols=2, n=4, acc_width=16, overflow="saturate", kbits=4, ebits=1,
               sbits=4, depth_bits=3)
    job = TileJob(a=[[15] * 8], w=[[15, 15]] * 8, b_a=4, b_w=4, b_out=4, rounding="floor",
                  lanes=[LaneConstants((0, 1, 0, 0), (0, 0, 0, 0), 3),
                         LaneConstants((0, 0, 1, 0), (0, 0, 0, 0), 4)])
    # the driver sends k = 8, which the 3-bit field carries as 0
    got, _ = run_tile(dut, [job], seed="depth")
    assert got[0] == reference(dut, job) == [[15, 7]]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(rows=0), ValueError, r"^rows R must be in \[1, 64\], not 0$"),
        (dict(cols=65), ValueError, r"^columns C must be in \[1, 64\], not 65$"),
        (dict(rows="8"), TypeError, r"^rows R must be an integer, not '8'$"),
        (dict(acc_width=16), ValueError,
         r"^accumulator width W = 16 is narrower than one product: 8-bit x 8-bit unsigned "
         r"codes reach 65025, which needs 17 bits$"),
        (dict(overflow="trap"), ValueError, r"^overflow must be one of \('wrap', 'saturate'\) in hardware"),
        (dict(view_rounding="half_even"), ValueError, r"^view rounding must be one of"),
        (dict(depth_bits=0), ValueError, r"^depth_bits must be in \[1, 24\], not 0$"),
        (dict(kbits=64), ValueError, r"^constant width kbits must be in \[2, 48\], not 64$"),
        (dict(ebits=8), ValueError, r"^shift width ebits must be in \[1, 7\], not 8$"),
        (dict(sbits=0), ValueError, r"^shift width sbits must be in \[1, 8\], not 0$"),
        (dict(signed=0), TypeError, r"^signed must be a bool, not 0$"),
        (dict(widths=[]), ValueError, r"^widths must name at least one width"),
        (dict(n=17), ValueError, r"^master width n must be in \[2, 16\], not 17$"),
        (dict(rq_lanes=3), ValueError, r"^requantizer lanes rq_lanes must divide cols = 8 "
                                       r"\(one of \[1, 2, 4, 8\]\), not 3$"),
        (dict(cols=4, rq_lanes=8), ValueError,
         r"^requantizer lanes rq_lanes must be in \[1, 4\], not 8$"),
        (dict(rq_lanes=2.0), TypeError, r"^requantizer lanes rq_lanes must be an integer"),
    ],
)
def test_tile_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Tile(**kwargs)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(rows=65), ValueError, r"^rows R must be in \[1, 64\], not 65$"),
        (dict(cols=0), ValueError, r"^columns C must be in \[1, 64\], not 0$"),
        (dict(acc_width=16), ValueError,
         r"^accumulator width W = 16 is narrower than one product: 8-bit x 8-bit unsigned "
         r"codes reach 65025, which needs 17 bits$"),
        (dict(acc_width=15, signed=True, widths=(2, 4, 8)), ValueError,
         r"^accumulator width W = 15 is narrower than one product: 8-bit x 8-bit signed "
         r"codes reach 16384, which needs 16 bits$"),
        (dict(depth_bits=25), ValueError, r"^depth_bits must be in \[1, 24\], not 25$"),
        (dict(overflow="wrapping"), ValueError, r"^overflow must be one of"),
    ],
)
def test_array_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PEArray(**kwargs)


# ------------------------------------------- time-multiplexed requantizer (rq_lanes < cols)


@pytest.mark.parametrize(
    "params",
    [
        dict(rows=3, cols=4, rq_lanes=1, overflow="wrap", view_rounding="floor"),
        dict(rows=2, cols=4, rq_lanes=2, overflow="saturate", view_rounding="half_up",
             signed=True),
        dict(rows=4, cols=6, rq_lanes=3, overflow="wrap", view_rounding="half_up"),
        dict(rows=1, cols=2, rq_lanes=1, overflow="saturate", view_rounding="floor"),
        dict(rows=2, cols=2, rq_lanes=1, max_pack=4, overflow="wrap", view_rounding="floor"),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_grouped_requantizer_tile_equals_reference(params):
    """Fewer requantizer lanes than columns: random jobs (short ones padded, M < R and
    N < C, any lane constants) with valid gaps and back-pressure give the reference's
    codes bit for bit, as the tile with a lane per column does."""
    params = dict(dict(n=8, acc_width=20, kbits=16, ebits=3, sbits=5, depth_bits=6), **params)
    dut = Tile(**params)
    assert dut.design.row_cycles == params["cols"] // params["rq_lanes"] > 1
    seed = "grouped-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    rng = random.Random(seed)
    jobs = [random_job(rng, dut) for _ in range(6)]
    jobs += [random_job(rng, dut, k=1), random_job(rng, dut, lanes="any"),
             random_job(rng, dut, m=dut.rows, ncols=dut.cols, codes="extreme")]
    got, _ = run_tile(dut, jobs, seed=seed, p_gap=0.3, p_stall=0.3)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), f"seed {seed!r}"
    full = Tile(**{k: v for k, v in params.items() if k != "rq_lanes"})
    got_full, _ = run_tile(full, jobs, seed=seed, p_gap=0.3, p_stall=0.3)
    assert got_full == got


def test_grouped_requantizer_timing():
    """Inputs always valid, out always ready: the first row is out ``latency`` = C + 1 + G
    cycles after the first tile's last step, the rows of a tile G cycles apart, and the
    act stream is frozen G - 1 cycles for each emitted row."""
    dut = Tile(rows=3, cols=4, rq_lanes=1, n=4, acc_width=12, kbits=12, ebits=3, sbits=5,
               depth_bits=5)
    G = dut.design.row_cycles
    assert (G, dut.latency) == (4, 4 + 1 + 4)
    rng = random.Random("grouped-timing")
    jobs = [random_job(rng, dut, m=3, k=20), random_job(rng, dut, m=2, k=20)]
    got, act_cycles = run_tile(dut, jobs, seed="grouped-timing")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    out = run_tile.out_cycles
    assert out[0] - act_cycles[jobs[0].k - 1] == dut.latency
    assert [b - a for a, b in zip(out, out[1:3])] == [G, G]
    # job 1's 20 steps span 20 cycles plus the 3 rows of job 0 drained meanwhile
    job1 = act_cycles[jobs[0].k:]
    assert job1[-1] - job1[0] + 1 == 20 + (G - 1) * 3


# ------------------------------------------------------- precision-scalable (packed) tiles


def every_pair_jobs(rng, dut, kmax):
    """One job per (b_a, b_w) of the tile's widths, K random in 1..kmax."""
    jobs = []
    for b_a in dut.widths:
        for b_w in dut.widths:
            j = random_job(rng, dut, k=rng.randint(1, kmax))
            jobs.append(TileJob(j.a, j.w, b_a, b_w, j.b_out, j.rounding, j.lanes))
    return jobs


@pytest.mark.parametrize(
    "params",
    [
        dict(n=8, max_pack=4, rows=2, cols=2, overflow="wrap", view_rounding="floor"),
        dict(n=8, max_pack=2, rows=2, cols=3, overflow="saturate", view_rounding="half_up",
             signed=True),
        dict(n=8, max_pack=4, rows=3, cols=2, overflow="saturate", view_rounding="floor",
             signed=True, widths=(2, 3, 4, 6, 8)),
        dict(n=4, max_pack=4, rows=2, cols=2, overflow="wrap", view_rounding="half_up"),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_packed_tile_every_width_pair(params):
    """Every width pair, K not a multiple of the pack factor, valid gaps and back-pressure:
    the results are the contract's ascending-k accumulation bit for bit."""
    params = dict(dict(acc_width=20, kbits=16, ebits=3, sbits=5, depth_bits=5), **params)
    dut = Tile(**params)
    seed = "packed-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    rng = random.Random(seed)
    jobs = every_pair_jobs(rng, dut, 3 * max(dut.rows, dut.cols))
    got, act_cycles = run_tile(dut, jobs, seed=seed, p_gap=0.2, p_stall=0.2)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), (seed, job.b_a, job.b_w)
    steps = [-(-j.k // dut.pack_factor(j.b_a, j.b_w)) for j in jobs]
    assert len(act_cycles) == sum(steps)


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("signed", [False, True])
def test_packed_tile_accumulator_driven_into_overflow(overflow, signed):
    """The narrowest W for views of at most 4 bits (9 bits unsigned, 8 signed), extreme
    codes, 4 and 2 elements per step: the overflow rule at every addition in slot order
    equals the ascending-k rule (identity requantization: the code is the accumulator)."""
    widths = (2, 3, 4)
    W = min_acc_width(8, signed=signed, widths=widths)
    dut = Tile(rows=2, cols=2, n=8, acc_width=W, overflow=overflow, signed=signed,
               widths=widths, max_pack=4, kbits=8, ebits=2, sbits=4, depth_bits=7)
    seed = f"packed-ovf-{overflow}-{signed}"
    rng = random.Random(seed)
    jobs = []
    for codes, k, (b_a, b_w) in (("max", 9, (2, 2)), ("extreme", 60, (2, 2)),
                                 ("extreme", 100, (4, 3)), ("extreme", 70, (4, 4)),
                                 ("random", 30, (2, 4)), ("extreme", 37, (3, 3))):
        j = random_job(rng, dut, m=2, ncols=2, k=k, codes=codes)
        jobs.append(TileJob(j.a, j.w, b_a=b_a, b_w=b_w, b_out=4, rounding="floor",
                            lanes=[LaneConstants((1, 0, 0, 0), (0, 0, 0, 0), W - 4)] * 2))
        jobs.append(j)
    got, _ = run_tile(dut, jobs, seed=seed, p_gap=0.1, p_stall=0.2)
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job), f"seed {seed!r}"
    # the bench really overflows: a wider accumulator would give other codes
    wide = [tile_reference(j, n=8, signed=signed, acc_width=W + 16, overflow=overflow,
                           view_rounding=dut.view_rounding) for j in jobs]
    assert any(w != r for w, r in zip(wide, got))


def test_packed_tile_switches_cost_no_cycle():
    """Packed (4 and 2 per step) and unpacked tiles back to back, every step at least
    max(R, C): the act stream moves on every cycle across every switch, ceil(K / p)
    transfers per tile."""
    dut = Tile(rows=3, cols=2, n=8, acc_width=18, kbits=12, ebits=3, sbits=5, depth_bits=6,
               max_pack=4, widths=(2, 4, 8))
    rng = random.Random("packed-switch")
    jobs = []
    for b_a, b_w in ((2, 2), (8, 8), (4, 2), (2, 8), (2, 2), (4, 4), (8, 4), (2, 4)):
        p = dut.pack_factor(b_a, b_w)
        j = random_job(rng, dut, k=p * 3 + rng.randrange(p))  # >= 3 steps, often a partial one
        jobs.append(TileJob(j.a, j.w, b_a, b_w, rng.choice(dut.widths), j.rounding, j.lanes))
    got, act_cycles = run_tile(dut, jobs, seed="packed-switch")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    steps = [-(-j.k // dut.pack_factor(j.b_a, j.b_w)) for j in jobs]
    assert len(act_cycles) == sum(steps)
    assert act_cycles == list(range(act_cycles[0], act_cycles[0] + len(act_cycles)))
    assert run_tile.out_cycles[0] - act_cycles[steps[0] - 1] == dut.latency


def test_packed_tile_short_tiles_and_full_depth():
    """Tiles of fewer steps than max(R, C) are padded; K = 2^depth_bits (k field 0) packs
    into 2^depth_bits / p steps with exact side sums."""
    dut = Tile(rows=2, cols=3, n=8, acc_width=20, overflow="saturate", kbits=8, ebits=2,
               sbits=4, depth_bits=4, max_pack=4, widths=(2, 4, 8))
    rng = random.Random("packed-short")
    jobs = []
    for k, (b_a, b_w) in ((1, (2, 2)), (5, (2, 2)), (3, (4, 4)), (16, (2, 2)), (16, (8, 4)),
                          (2, (2, 4))):
        j = random_job(rng, dut, k=k)
        jobs.append(TileJob(j.a, j.w, b_a, b_w, j.b_out, j.rounding, j.lanes))
    got, act_cycles = run_tile(dut, jobs, seed="packed-short")
    for job, rows in zip(jobs, got):
        assert rows == reference(dut, job)
    lasts, pos = [], 0
    for j in jobs:
        pos += -(-j.k // dut.pack_factor(j.b_a, j.b_w))
        lasts.append(act_cycles[pos - 1])
    assert all(b - a >= dut.min_period for a, b in zip(lasts, lasts[1:]))


def test_packed_tile_interface():
    """max_pack = 1 keeps the act/wgt payloads of one element; max_pack = 4 carries four."""
    plain = Tile(rows=2, cols=3, n=8)
    packed = Tile(rows=2, cols=3, n=8, max_pack=4)
    plain._MustUse__silence = packed._MustUse__silence = True  # read as configurations only
    assert plain.act_layout.size == 2 * 8 and plain.wgt_layout.size == 3 * 8
    assert packed.act_layout.size == 4 * 2 * 8 and packed.wgt_layout.size == 4 * 3 * 8
    assert [packed.pack_factor(b, b) for b in range(1, 9)] == [4, 4, 2, 2, 1, 1, 1, 1]
    assert [plain.pack_factor(b, b) for b in range(1, 9)] == [1] * 8
    assert packed.cycles_per_width_pair()["2x2"] == 0.25
    assert packed.cycles_per_width_pair()["4x8"] == 1.0


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (Tile, dict(max_pack=3), r"^max_pack must be one of \(1, 2, 4\), not 3$"),
        (Tile, dict(n=6, max_pack=4), r"^master width n = 6 must be a multiple of max_pack = 4$"),
        (Tile, dict(n=4, max_pack=4, signed=True, acc_width=8),
         r"^signed codes need n / max_pack >= 2 bits per packed view"),
        (PEArray, dict(max_pack=8), r"^max_pack must be one of \(1, 2, 4\), not 8$"),
        (PEArray, dict(n=6, max_pack=4), r"^master width n = 6 must be a multiple of max_pack"),
    ],
)
def test_packed_validation(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
