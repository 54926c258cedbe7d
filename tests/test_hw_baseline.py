"""Baseline rescale unit (a multiplier per element) against dqt_hw.spec."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from dqt_hw.hw import RescaleUnit
from dqt_hw.spec import ROUNDINGS, clamp, code_range, round_shift, signed_range


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_rescale_matches_spec(rounding, signed):
    n, mb, sb = 8, 12, 4
    dut = RescaleUnit(n=n, rounding=rounding, signed=signed, mult_bits=mb, sbits=sb)
    rng = random.Random(f"rescale-{rounding}-{signed}")
    lo, hi = code_range(n, signed)
    klo, khi = signed_range(mb)
    zlo, zhi = signed_range(mb + n)
    vectors = []
    for q in (lo, lo + 1, hi - 1, hi, 0, 1):
        for k in (klo, khi, 0, 1, -1):
            vectors.append((q, k, rng.choice((zlo, zhi, 0)), rng.randrange(1 << sb),
                            rng.choice(dut.widths)))
    for _ in range(300):
        vectors.append((rng.randint(lo, hi), rng.randint(klo, khi), rng.randint(zlo, zhi) >> 6,
                        rng.randrange(1 << sb), rng.choice(dut.widths)))
    got = []

    async def bench(ctx):
        for q, k, z, s, b in vectors:
            for sig, v in ((dut.q, q), (dut.k, k), (dut.z, z), (dut.s, s), (dut.b, b)):
                ctx.set(sig, v)
            got.append(ctx.get(dut.v))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    want = [clamp(round_shift(k * q + z, s, rounding), *code_range(b, signed))
            for q, k, z, s, b in vectors]
    assert got == want


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(rounding="up"), ValueError, r"^rounding must be one of \('floor', 'half_up', "
                                          r"'half_even', 'half_away'\), not 'up'$"),
        (dict(mult_bits=1), ValueError, r"^multiplier width mult_bits must be in \[2, 32\], not 1$"),
        (dict(sbits=9), ValueError, r"^shift width sbits must be in \[1, 8\], not 9$"),
        (dict(n=1), ValueError, r"^master width n must be in \[2, 16\], not 1$"),
        (dict(signed="no"), TypeError, r"^signed must be a bool, not 'no'$"),
        (dict(widths=(0,)), ValueError, r"^width 0 in widths"),
    ],
)
def test_rescale_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        RescaleUnit(**kwargs)
