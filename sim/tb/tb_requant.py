"""cocotb bench of one requantizer lane (combinational):
acc, sum_a, sum_w, cfg (K1..K4, E1..E4, S), rounding, b_out -> code.

Stimulus: edge constants (K at its min / max / 0 / +-1, E at 0 and max, S at 0, 1 and
max), edge terms (every 2^i +- {0, 1} of the port widths, min and max), exact ties of
every rounding mode (through the K4 term alone), and seeded random constants with S
placed so the result lands near the output range (both clamps and the inside). Every
rounding mode and every built output width. The model is ``dqt_hw.model.requantize``
(``dqt_hw.spec.lincomb`` where the exact sum passes the model's 63-bit datapath).
"""

from __future__ import annotations

import cocotb

from dqt_hw import spec
from dqt_hw.hw.reference import LaneConstants

from .. import models
from .common import Config, bench_rng, settle, write_summary
from .coverage import cov


class RequantDriver:
    def __init__(self, dut, cfg: Config, on_input):
        self.dut, self.on_input = dut, on_input
        self.cfgp = cfg.packer("cfg")
        self.ports = cfg.ports
        self.rcodes = dict(spec.ROUNDING_CODES)

    async def send(self, acc, sum_a, sum_w, lane: LaneConstants, rounding, b_out):
        d = self.dut
        m = lambda name, v: v & ((1 << self.ports[name]["width"]) - 1)  # noqa: E731
        d.acc.value = m("acc", acc)
        d.sum_a.value = m("sum_a", sum_a)
        d.sum_w.value = m("sum_w", sum_w)
        d.cfg.value = self.cfgp.pack(lane.as_dict())
        d.rounding.value = self.rcodes[rounding]
        d.b_out.value = b_out
        self.on_input(acc, sum_a, sum_w, lane, rounding, b_out)
        await settle()


class RequantMonitor:
    def __init__(self, dut, signed, on_output):
        self.code, self.signed, self.on_output = dut.code, signed, on_output

    def sample(self):
        v = self.code.value
        self.on_output(v.to_signed() if self.signed else v.to_unsigned())


class TB:
    def __init__(self, dut):
        self.dut = dut
        self.cfg = Config()
        hw = self.cfg.hw
        self.n, self.signed = hw["n"], hw["signed"]
        self.kbits, self.ebits, self.sbits = hw["kbits"], hw["ebits"], hw["sbits"]
        self.W, self.sw = hw["acc_width"], hw["sum_width"]
        self.widths = list(hw["widths"])
        self.model = models.RequantModel(self.kbits, self.signed)
        self.sb = models.Scoreboard("requant")
        self.rng = bench_rng("rq")
        self.driver = RequantDriver(dut, self.cfg, self.model_input)
        self.monitor = RequantMonitor(dut, self.signed, self.sb.got)
        self.count = 0

    def model_input(self, acc, sum_a, sum_w, lane, rounding, b_out):
        code = self.model.code(acc, sum_a, sum_w, lane, rounding, b_out)
        self.sb.expect(code, info=f"acc={acc} sum_a={sum_a} sum_w={sum_w} {lane} "
                                  f"{rounding} b_out={b_out}")
        # coverage: was the result clamped? (the contract's lincomb without the clamp)
        consts = models.lane_constants_of(lane, self.kbits)
        raw = spec.lincomb([acc, sum_a, sum_w, 1], consts, rounding, -(1 << 200), 1 << 200)
        lo, hi = spec.code_range(b_out, self.signed)
        cov.rq(rounding, "low" if raw < lo else "high" if raw > hi else "inside")
        klo, khi = spec.signed_range(self.kbits)
        if lane.s == 0:
            cov.rq_edge("s_zero")
        if lane.s == (1 << self.sbits) - 1:
            cov.rq_edge("s_max")
        if klo in lane.k:
            cov.rq_edge("k_min")
        if khi in lane.k:
            cov.rq_edge("k_max")
        if (1 << self.ebits) - 1 in lane.e:
            cov.rq_edge("e_max")
        self.count += 1

    async def check(self, *args):
        await self.driver.send(*args)
        self.monitor.sample()

    def finish(self):
        n = self.sb.finish()
        write_summary(checks=n, model_fallbacks=self.model.fallbacks)

    # ---- stimulus
    def edge_terms(self, width):
        lo, hi = spec.signed_range(width)
        vals = {lo, lo + 1, hi, hi - 1, 0, 1, -1}
        for i in range(width - 1):
            vals |= {(1 << i), (1 << i) + 1, -(1 << i), -(1 << i) - 1}
        return sorted(v for v in vals if lo <= v <= hi)

    def edge_k(self):
        lo, hi = spec.signed_range(self.kbits)
        return [lo, lo + 1, -1, 0, 1, hi - 1, hi]

    def near_range_s(self, acc, sum_a, sum_w, k, e, b_out):
        """An S that puts the result near the b_out-bit range (stimulus only)."""
        total = sum((kk * x) << ee for kk, x, ee in zip(k, (acc, sum_a, sum_w, 1), e))
        s = max(0, abs(total).bit_length() - b_out + self.rng.randint(-2, 2))
        return min(s, (1 << self.sbits) - 1)

    def random_lane(self, acc, sum_a, sum_w, b_out, style):
        rng = self.rng
        klo, khi = spec.signed_range(self.kbits)
        emax = (1 << self.ebits) - 1
        if style == "small":
            k = [rng.randint(klo, khi) >> rng.randrange(self.kbits) for _ in range(4)]
            e = [rng.choice((0, 0, 1, rng.randrange(emax + 1))) for _ in range(4)]
        else:
            k = [rng.choice(self.edge_k() + [rng.randint(klo, khi)]) for _ in range(4)]
            e = [rng.choice((0, emax, rng.randrange(emax + 1))) for _ in range(4)]
        for i in range(4):
            if rng.random() < 0.2:
                k[i] = 0
        s = self.near_range_s(acc, sum_a, sum_w, k, e, b_out)
        if rng.random() < 0.1:
            s = rng.choice((0, (1 << self.sbits) - 1))
        return LaneConstants(tuple(k), tuple(e), s)

    def random_terms(self):
        rng = self.rng
        pick = lambda w: rng.choice(self.edge_terms(w) + [rng.randint(*spec.signed_range(w))] * 4)  # noqa: E731
        return pick(self.W), pick(self.sw), pick(self.sw)


@cocotb.test()
async def test_edges(dut):
    """Edge constants and edge terms, every rounding mode, every output width."""
    tb = TB(dut)
    emax, smax = (1 << tb.ebits) - 1, (1 << tb.sbits) - 1
    accs = tb.edge_terms(tb.W)
    sums = tb.edge_terms(tb.sw)
    per = tb.cfg.get("edge_vectors", 400)
    for rounding in spec.ROUNDINGS:
        for b_out in tb.widths:
            for _ in range(per // len(tb.widths) + 1):
                acc, sa, sw = tb.rng.choice(accs), tb.rng.choice(sums), tb.rng.choice(sums)
                k = tuple(tb.rng.choice(tb.edge_k()) for _ in range(4))
                e = tuple(tb.rng.choice((0, 1, emax)) for _ in range(4))
                s = tb.rng.choice((0, 1, smax, tb.near_range_s(acc, sa, sw, k, e, b_out)))
                await tb.check(acc, sa, sw, LaneConstants(k, e, s), rounding, b_out)
    tb.finish()


@cocotb.test()
async def test_ties(dut):
    """Exact halves, just below and just above, positive and negative, through K4 alone:
    total = K4 = q 2^S + r with r in {h - 1, h, h + 1} (h = 2^(S-1)), every rounding."""
    tb = TB(dut)
    klo, khi = spec.signed_range(tb.kbits)
    for rounding in spec.ROUNDINGS:
        for b_out in tb.widths:
            lo, hi = spec.code_range(b_out, tb.signed)
            for s in range(1, min(12, (1 << tb.sbits) - 1) + 1):
                h = 1 << (s - 1)
                for q in (lo, lo + 1, (lo + hi) // 2, hi - 1, hi, -1, 0):
                    for r in (h - 1, h, h + 1):
                        total = (q << s) + r
                        if not klo <= total <= khi:
                            continue
                        lane = LaneConstants((tb.rng.randint(klo, khi), 0, 0, total), (0, 0, 0, 0), s)
                        await tb.check(0, tb.rng.randint(*spec.signed_range(tb.sw)), 0,
                                       lane, rounding, b_out)
    tb.finish()


@cocotb.test()
async def test_random(dut):
    """Seeded random terms and constants, S placed near the output range."""
    tb = TB(dut)
    for i in range(tb.cfg.get("random_vectors", 1500)):
        acc, sa, sw = tb.random_terms()
        b_out = tb.rng.choice(tb.widths)
        lane = tb.random_lane(acc, sa, sw, b_out, "small" if i % 2 else "any")
        await tb.check(acc, sa, sw, lane, tb.rng.choice(spec.ROUNDINGS), b_out)
    tb.finish()


@cocotb.test()
async def test_uniform(dut):
    """Every field uniform over its whole range (terms, K, E, S, rounding, b_out): most
    results clamp, but every bit of the datapath is exercised in combinations the
    range-seeking tests avoid (the mutation check's counterexamples looked like this)."""
    tb = TB(dut)
    klo, khi = spec.signed_range(tb.kbits)
    emax, smax = (1 << tb.ebits) - 1, (1 << tb.sbits) - 1
    for _ in range(tb.cfg.get("uniform_vectors", 1500)):
        acc = tb.rng.randint(*spec.signed_range(tb.W))
        sa, sw = (tb.rng.randint(*spec.signed_range(tb.sw)) for _ in range(2))
        lane = LaneConstants(tuple(tb.rng.randint(klo, khi) for _ in range(4)),
                             tuple(tb.rng.randint(0, emax) for _ in range(4)),
                             tb.rng.randint(0, smax))
        await tb.check(acc, sa, sw, lane, tb.rng.choice(spec.ROUNDINGS),
                       tb.rng.choice(tb.widths))
    tb.finish()


@cocotb.test()
async def test_sticky(dut):
    """The rounding's half and sticky bits, one at a time, at every shift S up to the
    register's maximum: total = q 2^S + h +- 2^j (h = 2^(S-1), j < S - 1), q of both
    parities and signs, every rounding. The high part (2q+1) 2^(S-1) comes from K1 acc << E1
    with acc = 1, the single low bit from K2 sum_a << E2 with sum_a = +-1, so totals reach
    far beyond one K. A tie broken by one low bit must round away from the tie; a mutation
    that drops or flips any one remainder bit is caught here (the mutation check's
    survivors 8, 14 and 21 were such bits at S > 16)."""
    tb = TB(dut)
    klo, khi = spec.signed_range(tb.kbits)
    emax = (1 << tb.ebits) - 1
    smax = min((1 << tb.sbits) - 1, tb.cfg.get("sticky_max_s", 63))
    b_out = max(tb.widths)

    def term(value_log2, mult):
        """(K, E) with K << E = mult << value_log2, or None if it does not fit."""
        e = min(value_log2, emax)
        k = mult << (value_log2 - e)
        return (k, e) if klo <= k <= khi else None

    for rounding in spec.ROUNDINGS:
        for s in range(2, smax + 1):
            js = range(s - 1) if s <= 34 else sorted({0, 1, s // 2, s - 3, s - 2})
            for j in js:
                for sign in (1, -1):
                    low = term(j, 1)
                    for q in (-2, -1, 0, 1):
                        high = term(s - 1, 2 * q + 1)
                        if high is None or low is None:
                            continue
                        lane = LaneConstants((high[0], low[0], 0, 0), (high[1], low[1], 0, 0), s)
                        await tb.check(1, sign, 0, lane, rounding, b_out)
    tb.finish()


@cocotb.test()
async def test_magnitudes(dut):
    """Single-bit totals +-2^p and 2^p - 1 at every bit position of the exact sum, with
    small shifts, every rounding: each bit of the clamp comparisons decides once (the
    mutation check's survivor 28 dropped bit 57 of the high-side comparison)."""
    tb = TB(dut)
    klo, khi = spec.signed_range(tb.kbits)
    emax = (1 << tb.ebits) - 1
    top = (khi.bit_length() - 1) + emax + (spec.signed_range(tb.W)[1]).bit_length()
    for rounding in spec.ROUNDINGS:
        for p in range(top):
            e = min(p, emax)
            rest = p - e  # the part of 2^p carried by K1 and acc
            k = 1 << min(rest, tb.kbits - 2)
            acc = 1 << (rest - min(rest, tb.kbits - 2))
            if acc > spec.signed_range(tb.W)[1]:
                continue
            for sign in (1, -1):
                for s in (0, 1, 3):
                    for minus_one in (0, 1):
                        lane = LaneConstants((sign * k, 0, 0, -sign * minus_one), (e, 0, 0, 0), s)
                        await tb.check(acc, 0, 0, lane, rounding, max(tb.widths))
    tb.finish()
