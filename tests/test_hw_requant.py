"""Requantizer lane in Amaranth's simulator, against dqt_hw.spec.lincomb / round_shift."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from dqt_hw.hw import Requantizer
from dqt_hw.hw.reference import lane_constants
from dqt_hw.spec import (
    ROUNDING_CODES,
    ROUNDINGS,
    Constant,
    align,
    clamp,
    code_range,
    lincomb,
    round_shift,
    signed_range,
)


def expected(acc, sa, sw, K, E, S, rounding, b_out, signed):
    total = sum((k * x) << e for k, x, e in zip(K, (acc, sa, sw, 1), E))
    return clamp(round_shift(total, S, rounding), *code_range(b_out, signed))


def run_lane(dut, vectors):
    """vectors: (acc, sa, sw, K, E, S, rounding, b_out); returns the output codes."""
    got = []

    async def bench(ctx):
        for acc, sa, sw, K, E, S, rounding, b_out in vectors:
            ctx.set(dut.acc, acc)
            ctx.set(dut.sum_a, sa)
            ctx.set(dut.sum_w, sw)
            ctx.set(dut.cfg, {"k1": K[0], "k2": K[1], "k3": K[2], "k4": K[3],
                              "e1": E[0], "e2": E[1], "e3": E[2], "e4": E[3], "s": S})
            ctx.set(dut.rounding, ROUNDING_CODES[rounding])
            ctx.set(dut.b_out, b_out)
            got.append(ctx.get(dut.code))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got


def edges(bits):
    lo, hi = signed_range(bits)
    vals = {lo, lo + 1, lo + 2, hi, hi - 1, hi - 2, 0, 1, -1, 2, -2}
    for i in range(bits - 1):
        for d in (-2, -1, 0, 1, 2):
            vals.update({(1 << i) + d, -(1 << i) + d})
    return sorted(v for v in vals if lo <= v <= hi)


@pytest.mark.parametrize("signed", [False, True])
def test_lane_rounding_ties_and_clamp(signed):
    """Every rounding at exact ties, just below and above them, for both signs and many S."""
    n = 8
    dut = Requantizer(n=n, acc_width=24, sum_width=12, kbits=16, ebits=3, sbits=5,
                      signed=signed)
    vectors = []
    for S in (0, 1, 2, 3, 7, 12, 31):
        for base in (-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 200, -200, 255, 256):
            for delta in (-1, 0, 1):
                x = (base << S) + ((1 << S >> 1) if S else 0) + delta
                if not -(1 << 23) <= x < (1 << 23):
                    continue
                for rounding in ROUNDINGS:
                    for b_out in (1, 4, 8) if not signed else (2, 5, 8):
                        vectors.append((x, 0, 0, (1, 0, 0, 0), (0, 0, 0, 0), S, rounding, b_out))
    got = run_lane(dut, vectors)
    want = [expected(*v, signed) for v in vectors]
    assert got == want


@pytest.mark.parametrize("signed", [False, True])
def test_lane_edges_and_random(signed):
    n, W, SW, kb, eb, sb = 8, 32, 20, 32, 5, 6
    dut = Requantizer(n=n, acc_width=W, sum_width=SW, kbits=kb, ebits=eb, sbits=sb,
                      signed=signed)
    rng = random.Random(f"lane-{signed}")
    ea, es, ek = edges(W), edges(SW), edges(kb)
    vectors = []
    for i in range(400):
        pick = (lambda e, bits: rng.choice(e) if rng.random() < 0.5
                else rng.randint(*signed_range(bits)))
        K = tuple(pick(ek, kb) for _ in range(4))
        E = tuple(rng.choice((0, 1, (1 << eb) - 1, rng.randrange(1 << eb))) for _ in range(4))
        S = rng.choice((0, 1, (1 << sb) - 1, rng.randrange(1 << sb)))
        b_out = rng.choice(dut.widths)
        vectors.append((pick(ea, W), pick(es, SW), pick(es, SW), K, E, S,
                        ROUNDINGS[i % 4], b_out))
    # extremes: every term at its largest magnitude, both signs (the exact-sum bound)
    lo, hi = signed_range(kb)
    for K in ((lo,) * 4, (hi,) * 4):
        for acc in signed_range(W):
            for sa in signed_range(SW):
                vectors.append((acc, sa, sa, K, (31,) * 4, 63, "half_even", 8))
                vectors.append((acc, sa, sa, K, (31,) * 4, 0, "floor", 8))
    assert dut.sum_bits == kb + W + 31 + 2
    got = run_lane(dut, vectors)
    want = [expected(*v, signed) for v in vectors]
    assert got == want


def test_lane_matches_lincomb_with_aligned_constants():
    """Realistic constants from dqt_hw.spec.Constant, aligned by dqt_hw.spec.align."""
    dut = Requantizer(n=8, acc_width=32, sum_width=20, kbits=32, ebits=5, sbits=6)
    rng = random.Random(5)
    vectors, want = [], []
    while len(vectors) < 200:
        consts = [Constant(rng.randint(-(1 << 31), (1 << 31) - 1), rng.randint(20, 50))
                  for _ in range(4)]
        K, E, S = align(consts)
        if max(E) > 31 or S > 63:
            continue
        terms = (rng.randint(-(1 << 31), (1 << 31) - 1), rng.randint(0, 1 << 19),
                 rng.randint(0, 1 << 19), 1)
        rounding = rng.choice(ROUNDINGS)
        b_out = rng.randint(1, 8)
        vectors.append((*terms[:3], K, E, S, rounding, b_out))
        want.append(lincomb(terms, consts, rounding, 0, (1 << b_out) - 1))
    assert run_lane(dut, vectors) == want


def test_lane_unsupported_output_width_clamps_to_zero():
    dut = Requantizer(n=8, acc_width=16, sum_width=12, kbits=8, ebits=2, sbits=3,
                      widths=(4, 8))
    vectors = [(100, 0, 0, (1, 0, 0, 0), (0, 0, 0, 0), 0, "floor", b) for b in (3, 4, 8, 0)]
    assert run_lane(dut, vectors) == [0, 15, 100, 0]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(kbits=1), ValueError, r"^constant width kbits must be in \[2, 48\], not 1$"),
        (dict(kbits=49), ValueError, r"^constant width kbits must be in \[2, 48\], not 49$"),
        (dict(kbits=32.0), TypeError, r"^constant width kbits must be an integer, not 32\.0$"),
        (dict(ebits=0), ValueError, r"^shift width ebits must be in \[1, 7\], not 0$"),
        (dict(sbits=9), ValueError, r"^shift width sbits must be in \[1, 8\], not 9$"),
        (dict(acc_width=65), ValueError, r"^accumulator width W must be in \[2, 64\], not 65$"),
        (dict(sum_width=1), ValueError, r"^side-sum width must be in \[2, 64\], not 1$"),
        (dict(n=0), ValueError, r"^master width n must be in \[2, 16\], not 0$"),
        (dict(signed=None), TypeError, r"^signed must be a bool, not None$"),
        (dict(widths=(1,), signed=True), ValueError, r"^width 1 in widths"),
    ],
)
def test_lane_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Requantizer(**kwargs)


def test_lane_constants_fold_negative_shift_and_match_lincomb():
    """Constants with negative S (net left shifts) are folded into E and still match."""
    dut = Requantizer(n=8, acc_width=32, sum_width=20, kbits=16, ebits=4, sbits=5)
    rng = random.Random(7)
    vectors, want = [], []
    for _ in range(100):
        consts = [Constant(rng.randint(-(1 << 15), (1 << 15) - 1), rng.randint(-6, 3))
                  for _ in range(3)] + [Constant(rng.randint(-99, 99), rng.randint(-3, 0))]
        lane = lane_constants(consts, kbits=16, ebits=4, sbits=5)
        assert lane.s >= 0
        terms = (rng.randint(-(1 << 20), 1 << 20), rng.randint(0, 999), rng.randint(0, 999), 1)
        rounding = rng.choice(ROUNDINGS)
        vectors.append((*terms[:3], lane.k, lane.e, lane.s, rounding, 8))
        want.append(lincomb(terms, consts, rounding, 0, 255))
    assert run_lane(dut, vectors) == want


@pytest.mark.parametrize(
    "consts, match",
    [
        ([Constant(1 << 20, 0)] + [Constant(0, 0)] * 3, r"^constant K1 = 1048576 does not fit kbits = 16"),
        ([Constant(1, 40), Constant(1, 0), Constant(0, 0), Constant(0, 0)],
         r"^left shift E2 = 40 does not fit ebits = 4 \(at most 15\)$"),
        ([Constant(1, 40)] + [Constant(0, 0)] * 3, r"^right shift S = 40 does not fit sbits = 5 \(at most 31\)$"),
        ([Constant(1, 0)] * 3, r"^a lane takes 4 constants \(acc, sum_a, sum_w, 1\), not 3$"),
    ],
)
def test_lane_constants_refuse_what_does_not_fit(consts, match):
    with pytest.raises(ValueError, match=match):
        lane_constants(consts, kbits=16, ebits=4, sbits=5)
