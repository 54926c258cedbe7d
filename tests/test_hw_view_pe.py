"""Nested view unit and MAC PE in Amaranth's simulator, against dqt_hw.spec."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from dqt_hw.hw import MACPE, NestedView
from dqt_hw.spec import code_range, nested_view, saturate, wrap


def simulate(dut, bench, *, clock=True):
    sim = Simulator(dut)
    if clock:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def edge_codes(n, signed):
    """Every 2^i +- {0, 1, 2} and the extremes +- {0, 1, 2}, inside the code range."""
    lo, hi = code_range(n, signed)
    vals = {lo, hi, 0}
    for i in range(n + 1):
        for d in (-2, -1, 0, 1, 2):
            vals.update({(1 << i) + d, -(1 << i) + d})
    vals.update({lo + 1, lo + 2, hi - 1, hi - 2})
    return sorted(v for v in vals if lo <= v <= hi)


# ---------------------------------------------------------------- nested view unit


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("rounding", ["floor", "half_up"])
@pytest.mark.parametrize("n", [2, 5, 8])
def test_view_exhaustive(n, rounding, signed):
    dut = NestedView(n=n, view_rounding=rounding, signed=signed)
    lo, hi = code_range(n, signed)

    async def bench(ctx):
        for b in dut.widths:
            ctx.set(dut.b, b)
            for q in range(lo, hi + 1):
                ctx.set(dut.q, q)
                assert ctx.get(dut.v) == nested_view(q, n, b, rounding, signed=signed), (q, b)

    simulate(dut, bench, clock=False)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_view_16bit_edges(rounding, signed):
    n = 16
    dut = NestedView(n=n, view_rounding=rounding, signed=signed)
    rng = random.Random(16)
    lo, hi = code_range(n, signed)
    codes = edge_codes(n, signed) + [rng.randint(lo, hi) for _ in range(50)]

    async def bench(ctx):
        for b in dut.widths:
            ctx.set(dut.b, b)
            for q in codes:
                ctx.set(dut.q, q)
                assert ctx.get(dut.v) == nested_view(q, n, b, rounding, signed=signed), (q, b)

    simulate(dut, bench, clock=False)


def test_view_unsupported_width_gives_zero():
    dut = NestedView(n=8, view_rounding="half_up", widths=(2, 4, 8))

    async def bench(ctx):
        ctx.set(dut.q, 0xB7)
        for b in (0, 1, 3, 5, 6, 7, 9, 15):
            ctx.set(dut.b, b)
            assert ctx.get(dut.v) == 0
        for b in (2, 4, 8):
            ctx.set(dut.b, b)
            assert ctx.get(dut.v) == nested_view(0xB7, 8, b, "half_up")

    simulate(dut, bench, clock=False)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n=1), ValueError, r"^master width n must be in \[2, 16\], not 1$"),
        (dict(n=17), ValueError, r"^master width n must be in \[2, 16\], not 17$"),
        (dict(n=8.0), TypeError, r"^master width n must be an integer, not 8\.0$"),
        (dict(n=True), TypeError, r"^master width n must be an integer, not True$"),
        (dict(view_rounding="half_even"), ValueError,
         r"^view rounding must be one of \('floor', 'half_up'\) in hardware, not 'half_even' "
         r"\(supported by the reference model only\)$"),
        (dict(view_rounding="nearest"), ValueError,
         r"^view rounding must be one of \('floor', 'half_up'\), not 'nearest'$"),
        (dict(view_rounding=0), TypeError, r"^view rounding must be a string, one of .*, not 0$"),
        (dict(signed=1), TypeError, r"^signed must be a bool, not 1$"),
        (dict(widths=()), ValueError, r"^widths must name at least one width, not an empty"),
        (dict(widths=(0, 4)), ValueError,
         r"^width 0 in widths \(0, 4\) is outside \[1, 8\] for unsigned codes at master width n = 8$"),
        (dict(widths=(1, 4), signed=True), ValueError,
         r"^width 1 in widths \(1, 4\) is outside \[2, 8\] for signed codes"),
        (dict(widths=(9,)), ValueError, r"^width 9 in widths \(9,\) is outside \[1, 8\]"),
        (dict(widths="48"), TypeError, r"^widths must be a sequence of integers, not '48'$"),
        (dict(widths=(4.0,)), TypeError, r"^widths must be a sequence of integers, not \(4\.0,\)$"),
        (dict(widths=4), TypeError, r"^widths must be a sequence of integers, not 4$"),
    ],
)
def test_view_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        NestedView(**kwargs)


def test_view_keyword_only():
    with pytest.raises(TypeError):
        NestedView(8)  # noqa


# ---------------------------------------------------------------- MAC PE


def mac_reference(pairs, n, b_a, b_w, rounding, signed, W, overflow):
    """acc after each term: ovf(acc + view(a) * view(w), W), acc from 0."""
    ovf = wrap if overflow == "wrap" else saturate
    acc, out = 0, []
    for a, w in pairs:
        va = nested_view(a, n, b_a, rounding, signed=signed)
        vw = nested_view(w, n, b_w, rounding, signed=signed)
        acc = ovf(acc + va * vw, W)
        out.append(acc)
    return out


async def run_pe(ctx, dut, segments):
    """Feed segments of (b_a, b_w, pairs); return the per-cycle acc and per-segment result."""
    accs, results = [], []
    for b_a, b_w, pairs in segments:
        if dut.views:
            ctx.set(dut.b_a, b_a)
            ctx.set(dut.b_w, b_w)
        for k, (a, w) in enumerate(pairs):
            ctx.set(dut.a, a)
            ctx.set(dut.w, w)
            ctx.set(dut.en, 1)
            ctx.set(dut.first, k == 0)
            ctx.set(dut.last, k == len(pairs) - 1)
            await ctx.tick()
            accs.append(ctx.get(dut.acc))
        ctx.set(dut.en, 0)
        # a bubble between segments must change nothing
        await ctx.tick()
        assert ctx.get(dut.acc) == accs[-1]
        results.append(ctx.get(dut.result))
    return accs, results


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_pe_every_width_pair(rounding, overflow, signed):
    # the narrowest W that holds one product: 17 bits unsigned (255 * 255 = 65025), 16
    # signed ((-128)^2 = 16384), so that two extreme products already overflow
    n, W = 8, (16 if signed else 17)
    dut = MACPE(n=n, acc_width=W, overflow=overflow, view_rounding=rounding, signed=signed)
    rng = random.Random(f"pe-{rounding}-{overflow}-{signed}")
    lo, hi = code_range(n, signed)
    edges = edge_codes(n, signed)
    segments = []
    for b_a in dut.widths:
        for b_w in dut.widths:
            pairs = [(rng.choice(edges), rng.choice(edges)) for _ in range(3)]
            pairs += [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(3)]
            pairs += [(hi, hi), (lo, hi), (hi, hi)]
            segments.append((b_a, b_w, pairs))

    async def bench(ctx):
        accs, results = await run_pe(ctx, dut, segments)
        want = []
        for b_a, b_w, pairs in segments:
            want += mac_reference(pairs, n, b_a, b_w, rounding, signed, W, overflow)
        assert accs == want
        finals, i = [], 0
        for _, _, pairs in segments:
            i += len(pairs)
            finals.append(want[i - 1])
        assert results == finals

    simulate(dut, bench)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_pe_driven_into_overflow(overflow, signed):
    """Long runs of extreme products cross the W-bit range, in both directions for signed."""
    n, W = 8, 18
    dut = MACPE(n=n, acc_width=W, overflow=overflow, signed=signed)
    lo, hi = code_range(n, signed)
    up = [(hi, hi)] * 12
    down = [(lo, hi)] * 30 if signed else [(0, 0)] * 3
    mixed = up + down + up
    segments = [(8, 8, mixed), (8, 8, up[:3]), (7, 8, mixed)]

    async def bench(ctx):
        accs, _ = await run_pe(ctx, dut, segments)
        want = []
        for b_a, b_w, pairs in segments:
            want += mac_reference(pairs, n, b_a, b_w, "floor", signed, W, overflow)
        assert accs == want
        lo_w, hi_w = -(1 << (W - 1)), (1 << (W - 1)) - 1
        if overflow == "saturate":
            assert hi_w in want
        if signed and overflow == "saturate":
            assert lo_w in want

    simulate(dut, bench)


def test_pe_without_views_takes_viewed_codes():
    dut = MACPE(n=4, acc_width=9, views=False)
    assert "b_a" not in dut.signature.members
    pairs = [(15, 15), (3, 7), (15, 1)]

    async def bench(ctx):
        accs, _ = await run_pe(ctx, dut, [(4, 4, pairs)])
        assert accs == mac_reference(pairs, 4, 4, 4, "floor", False, 9, "wrap")

    simulate(dut, bench)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n=8, acc_width=16), ValueError,
         r"^accumulator width W = 16 is narrower than one product: 8-bit x 8-bit unsigned "
         r"codes reach 65025, which needs 17 bits$"),
        (dict(n=8, acc_width=15, signed=True), ValueError,
         r"^accumulator width W = 15 is narrower than one product: 8-bit x 8-bit signed "
         r"codes reach 16384, which needs 16 bits$"),
        (dict(n=8, acc_width=8, widths=(2, 4)), ValueError,
         r"^accumulator width W = 8 is narrower than one product: 4-bit x 4-bit unsigned "
         r"codes reach 225, which needs 9 bits$"),
        (dict(acc_width=65), ValueError, r"^accumulator width W must be at most 64, not 65$"),
        (dict(acc_width="32"), TypeError, r"^accumulator width W must be an integer, not '32'$"),
        (dict(overflow="trap"), ValueError,
         r"^overflow must be one of \('wrap', 'saturate'\) in hardware, not 'trap' "
         r"\(supported by the reference model only\)$"),
        (dict(overflow="clip"), ValueError, r"^overflow must be one of \('wrap', 'saturate'\), not 'clip'$"),
        (dict(overflow=None), TypeError, r"^overflow must be a string, one of .*, not None$"),
        (dict(view_rounding="half_away"), ValueError, r"^view rounding must be one of"),
        (dict(views=0), TypeError, r"^views must be a bool, not 0$"),
        (dict(n=20), ValueError, r"^master width n must be in \[2, 16\], not 20$"),
        (dict(widths=(3, 9)), ValueError, r"^width 9 in widths"),
        (dict(signed="yes"), TypeError, r"^signed must be a bool, not 'yes'$"),
    ],
)
def test_pe_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MACPE(**kwargs)
