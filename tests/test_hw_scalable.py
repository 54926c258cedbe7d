"""Precision-scalable PE: packed products, same results bit for bit, fewer cycles."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from dqt_hw.design.rules import cycles_per_width_pair, pack_factor
from dqt_hw.hw.scalable import ScalableMACPE
from dqt_hw.spec import code_range, nested_view, saturate, wrap


def reference_accs(elems, n, b_a, b_w, rounding, signed, W, overflow):
    ovf = wrap if overflow == "wrap" else saturate
    acc, out = 0, []
    for a, w in elems:
        acc = ovf(acc + nested_view(a, n, b_a, rounding, signed=signed)
                  * nested_view(w, n, b_w, rounding, signed=signed), W)
        out.append(acc)
    return out


def run(dut, segments):
    """segments: (b_a, b_w, elems). Returns [(cycles, accs after each cycle, result)]."""
    P = dut.max_pack
    out = []

    async def bench(ctx):
        for b_a, b_w, elems in segments:
            ctx.set(dut.b_a, b_a)
            ctx.set(dut.b_w, b_w)
            p = ctx.get(dut.pack)
            assert p == pack_factor(dut.n, b_a, b_w, P)
            accs, pos, cycles = [], 0, 0
            while pos < len(elems):
                chunk = elems[pos:pos + p]
                lo = code_range(dut.n, dut.signed)[0]
                ctx.set(dut.a, [c[0] for c in chunk] + [lo] * (P - len(chunk)))
                ctx.set(dut.w, [c[1] for c in chunk] + [lo] * (P - len(chunk)))
                ctx.set(dut.en, (1 << len(chunk)) - 1)
                ctx.set(dut.first, pos == 0)
                ctx.set(dut.last, pos + len(chunk) == len(elems))
                await ctx.tick()
                pos += len(chunk)
                cycles += 1
                accs.append((pos, ctx.get(dut.acc)))
            ctx.set(dut.en, 0)
            await ctx.tick()
            out.append((cycles, accs, ctx.get(dut.result)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize(
    "n, max_pack, signed, overflow, rounding",
    [
        (8, 2, False, "wrap", "floor"),
        (8, 4, False, "saturate", "half_up"),
        (8, 4, True, "wrap", "floor"),
        (8, 2, True, "saturate", "half_up"),
        (6, 2, False, "saturate", "floor"),
        (4, 1, False, "wrap", "floor"),
    ],
)
def test_scalable_pe_every_width_pair(n, max_pack, signed, overflow, rounding):
    W = 2 * n + 2  # narrow, so that long runs overflow
    dut = ScalableMACPE(n=n, acc_width=W, overflow=overflow, view_rounding=rounding,
                        signed=signed, max_pack=max_pack)
    seed = f"scalable-{n}-{max_pack}-{signed}-{overflow}-{rounding}"
    rng = random.Random(seed)
    lo, hi = code_range(n, signed)
    segments = []
    for b_a in dut.widths:
        for b_w in dut.widths:
            k = rng.randint(1, 9)
            pool = [lo, hi, lo + 1, hi - 1, 0, 1]
            elems = [(rng.choice(pool) if rng.random() < 0.4 else rng.randint(lo, hi),
                      rng.choice(pool) if rng.random() < 0.4 else rng.randint(lo, hi))
                     for _ in range(k)]
            if rng.random() < 0.3:
                elems += [(hi, hi)] * 12 + ([(lo, hi)] * 12 if signed else [])
            segments.append((b_a, b_w, elems))
    results = run(dut, segments)
    for (b_a, b_w, elems), (cycles, accs, result) in zip(segments, results):
        want = reference_accs(elems, n, b_a, b_w, rounding, signed, W, overflow)
        assert [acc for _, acc in accs] == [want[pos - 1] for pos, _ in accs], (seed, b_a, b_w)
        assert result == want[-1]
        p = pack_factor(n, b_a, b_w, max_pack)
        assert cycles == -(-len(elems) // p)


def test_pack_factor_and_cycles_table():
    assert [pack_factor(8, b, b, 4) for b in range(1, 9)] == [4, 4, 2, 2, 1, 1, 1, 1]
    assert [pack_factor(8, b, 2, 2) for b in range(1, 9)] == [2, 2, 2, 2, 1, 1, 1, 1]
    assert cycles_per_width_pair(8, (2, 4, 8), 4) == {
        "2x2": 0.25, "2x4": 0.5, "2x8": 1.0, "4x2": 0.5, "4x4": 0.5, "4x8": 1.0,
        "8x2": 1.0, "8x4": 1.0, "8x8": 1.0}


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(max_pack=3), ValueError, r"^max_pack must be one of \(1, 2, 4\), not 3$"),
        (dict(max_pack=True), ValueError, r"^max_pack must be one of \(1, 2, 4\), not True$"),
        (dict(n=6, max_pack=4), ValueError,
         r"^master width n = 6 must be a multiple of max_pack = 4$"),
        (dict(n=4, max_pack=4, signed=True), ValueError,
         r"^signed codes need n / max_pack >= 2 bits per packed view"),
        (dict(acc_width=16), ValueError,
         r"^accumulator width W = 16 is narrower than one product: 8-bit x 8-bit unsigned "
         r"codes reach 65025, which needs 17 bits$"),
    ],
)
def test_scalable_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ScalableMACPE(**kwargs)
