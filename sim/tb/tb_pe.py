"""cocotb bench of the MAC PE: a, w master codes, b_a, b_w widths, en/first/last -> acc, result.

A job is one accumulation (first on its first term, last on its last). The input monitor
reads the pins the PE takes at each rising edge and hands completed jobs to the model
(:class:`sim.models.PEModel`, i.e. ``dqt_hw.model``); the output monitor reads ``acc``
after every enabled edge and ``result`` after every ``last``; two in-order scoreboards.

Tests: the product of every pair of view values at every width pair (``product``
"all") or a seeded sample of it; accumulations of extreme codes driven into overflow
(above and, with signed codes, below) and kept going; random jobs with random widths and
idle cycles.
"""

from __future__ import annotations

import cocotb

from dqt_hw import spec

from .. import models
from .common import Config, CycleLoop, bench_rng, write_summary
from .coverage import cov


class PEDriver:
    """Drives a queue of beats (a, w, b_a, b_w, first, last); idle cycles (en = 0) with
    probability ``p_idle`` between beats."""

    def __init__(self, dut, cfg, rng, p_idle=0.0):
        self.dut, self.rng, self.p_idle = dut, rng, p_idle
        self.n = cfg.hw["n"]
        self.mask = (1 << self.n) - 1
        self.queue = []
        self.pos = 0
        self.sig = [dut.a, dut.w, dut.b_a, dut.b_w, dut.en, dut.first, dut.last]
        self.idle = False

    def add_job(self, job: models.PEJob, snap_from: int | None = None):
        """``snap_from``: ``last`` also on every beat from that index on (``result``
        snapshots of a running accumulation; the PE keeps accumulating while ``first``
        is low)."""
        K = len(job.a)
        snap = K - 1 if snap_from is None else snap_from
        for k in range(K):
            self.queue.append((job.a[k] & self.mask, job.w[k] & self.mask, job.b_a, job.b_w,
                               1, int(k == 0), int(k >= snap)))

    def busy(self):
        return self.pos < len(self.queue)

    def drive(self, cycle):
        a, w, ba, bw, en, first, last = self.sig
        if self.pos < len(self.queue) and not (self.p_idle and self.rng.random() < self.p_idle):
            beat = self.queue[self.pos]
            self.pos += 1
            a.value, w.value, ba.value, bw.value = beat[0], beat[1], beat[2], beat[3]
            en.value, first.value, last.value = 1, beat[5], beat[6]
        else:
            # idle: en low, the other pins scrambled (they must not matter)
            en.value = 0
            a.value = self.rng.getrandbits(self.n)
            first.value, last.value = self.rng.getrandbits(1), self.rng.getrandbits(1)


class PEInputMonitor:
    """Reads what the PE takes at the next edge; a completed job goes to ``on_job``."""

    def __init__(self, dut, cfg, on_job):
        self.dut, self.on_job = dut, on_job
        self.signed, self.n = cfg.hw["signed"], cfg.hw["n"]
        self.cur = None
        self.last_en = False
        self.last_last = False

    def _code(self, v):
        v = v.to_unsigned()
        return v - (1 << self.n) if self.signed and v >> (self.n - 1) else v

    def sample(self, cycle):
        d = self.dut
        self.last_en = bool(int(d.en.value))
        self.last_last = False
        if not self.last_en:
            return
        first, last = int(d.first.value), int(d.last.value)
        ba, bw = d.b_a.value.to_unsigned(), d.b_w.value.to_unsigned()
        if first or self.cur is None:
            self.cur = models.PEJob(ba, bw, [], [])
            self.reported = 0
        self.cur.a.append(self._code(d.a.value))
        self.cur.w.append(self._code(d.w.value))
        if (ba, bw) != (self.cur.b_a, self.cur.b_w):
            raise AssertionError("the bench never changes widths inside an accumulation")
        if last:
            # the PE copies acc to result and goes on accumulating unless the next
            # enabled beat has first: the accumulation stays open
            self.last_last = True
            self.on_job(self.cur, start=self.reported)
            self.reported = len(self.cur.a)


class PEOutputMonitor:
    def __init__(self, dut, inmon, on_acc, on_result):
        self.dut, self.inmon, self.on_acc, self.on_result = dut, inmon, on_acc, on_result
        self.pending = (False, False)

    def sample(self, cycle):
        en, last = self.pending
        if en:
            self.on_acc(self.dut.acc.value.to_signed())
            if last:
                self.on_result(self.dut.result.value.to_signed())
        # what the input monitor just saw is taken at the next edge: check it next cycle
        self.pending = (self.inmon.last_en, self.inmon.last_last)


class TB:
    def __init__(self, dut, p_idle=0.0):
        self.dut = dut
        self.cfg = Config()
        hw = self.cfg.hw
        self.n, self.signed, self.W, self.ovf = hw["n"], hw["signed"], hw["acc_width"], hw["overflow"]
        self.widths = list(hw["widths"])
        self.model = models.PEModel(self.n, self.signed, self.W, self.ovf, hw["view_rounding"],
                                    widths=tuple(self.widths))
        self.rng = bench_rng("pe")
        self.sb_acc = models.Scoreboard("pe.acc")
        self.sb_result = models.Scoreboard("pe.result")
        self.loop = CycleLoop(dut)
        self.driver = PEDriver(dut, self.cfg, self.rng, p_idle)
        self.inmon = PEInputMonitor(dut, self.cfg, self.model_job)
        self.outmon = PEOutputMonitor(dut, self.inmon, self.sb_acc.got, self.sb_result.got)
        self.loop.drivers.append(self.driver)
        # input monitor first: the output monitor checks the beat it saw a cycle earlier
        self.loop.monitors += [self.inmon, self.outmon]
        self.jobs = 0
        self.macs = 0

    def model_job(self, job, start=0):
        """Expected acc after every term from ``start`` on, and the result (the
        accumulation so far: a job may report several results, see ``add_job``)."""
        parts = self.model.partials(job)
        for k in range(start, len(parts)):
            self.sb_acc.expect(parts[k], info=f"job {self.jobs} term {k} "
                                              f"(b_a={job.b_a}, b_w={job.b_w})")
        self.sb_result.expect(parts[-1], info=f"job {self.jobs} result after {len(parts)} terms")
        self.jobs += start == 0
        self.macs += len(parts) - start
        if job.b_a in self.widths and job.b_w in self.widths:
            cov.pe_pair(self.signed, job.b_a, job.b_w)
        self._events(job, parts, start)

    def _events(self, job, parts, start=0):
        va, vw = self.model.views(job)
        prev = parts[start - 1] if start else 0
        lo, hi = spec.signed_range(self.W)
        for x, y, p in zip(va.tolist()[start:], vw.tolist()[start:], parts[start:]):
            exact = prev + x * y
            if exact > hi:
                cov.pe_event("wrap_over" if self.ovf == "wrap" else "saturate_hi")
            elif exact < lo:
                cov.pe_event("wrap_under" if self.ovf == "wrap" else "saturate_lo")
            prev = p

    async def start(self):
        self.loop.start_clock()
        self.dut.en.value = 0
        await self.loop.reset(self.dut.rst)

    async def run(self, max_cycles=10_000_000):
        await self.loop.run_until(lambda: not self.driver.busy(), max_cycles=max_cycles)
        end = self.loop.cycle + 2  # the last beat's acc and result are sampled
        await self.loop.run_until(lambda: self.loop.cycle >= end, max_cycles=end + 1)

    def finish(self, **kw):
        n = self.sb_acc.finish() + self.sb_result.finish()
        write_summary(checks=n, jobs=self.jobs, macs=self.macs, cycles=self.loop.cycle,
                      model_fallbacks=self.model.fallbacks, overflow_events=self.model.events, **kw)
        return n

    # ---- stimulus
    def view_representatives(self, b):
        """One master code per distinct view value at width b (the view unit is verified
        exhaustively on its own), plus both ends of the code range."""
        lo, hi = spec.code_range(self.n, self.signed)
        seen = {}
        table = models.view_table(n=self.n, signed=self.signed, rounding=self.model.view_rounding,
                                  widths=[b])[b]
        for q, v in zip(range(lo, hi + 1), table.tolist()):
            seen.setdefault(v, q)
        return sorted(set(seen.values()) | {lo, hi})


@cocotb.test()
async def test_products(dut):
    """acc = ovf(a * w) for view-value pairs at every width pair: all pairs (``product``:
    "all") or ``product`` random pairs per width pair."""
    tb = TB(dut)
    await tb.start()
    mode = tb.cfg.get("product", 16)
    for ba in tb.widths:
        ra = tb.view_representatives(ba)
        for bw in tb.widths:
            rw = tb.view_representatives(bw)
            pairs = ([(x, y) for x in ra for y in rw] if mode == "all"
                     else [(tb.rng.choice(ra), tb.rng.choice(rw)) for _ in range(int(mode))])
            for x, y in pairs:
                tb.driver.add_job(models.PEJob(ba, bw, [x], [y]))
    await tb.run()
    tb.finish()


@cocotb.test()
async def test_overflow(dut):
    """Largest products accumulated past the top of the W-bit range (and past the bottom
    with signed codes), then kept going: wrap or saturate at every addition."""
    tb = TB(dut)
    await tb.start()
    lo, hi = spec.code_range(tb.n, tb.signed)
    b = tb.n
    limit = 1 << (tb.W - 1)
    directions = [(hi, hi)] + ([(lo, hi), (lo, lo)] if tb.signed else [])
    extra = tb.cfg.get("overflow_extra", 40)
    for x, y in directions:
        prod = abs(x * y)
        K = limit // prod + 2 + extra
        if K > tb.cfg.get("overflow_max_terms", 70_000):
            continue  # (W = 32 unsigned needs ~33k terms: run in sim-full)
        tb.driver.add_job(models.PEJob(b, b, [x] * K, [y] * K))
        # then a second climb with mixed codes (the accumulator also comes back down)
        mix_a = [tb.rng.choice((x, hi, lo)) for _ in range(K)]
        mix_w = [tb.rng.choice((y, hi)) for _ in range(K)]
        tb.driver.add_job(models.PEJob(b, b, [x] * (K // 2) + mix_a, [y] * (K // 2) + mix_w))
    await tb.run()
    tb.finish()


@cocotb.test()
async def test_random(dut):
    """Random jobs: random widths per job, random lengths, random idle cycles."""
    tb = TB(dut, p_idle=tb_p(dut))
    await tb.start()
    lo, hi = spec.code_range(tb.n, tb.signed)
    for _ in range(tb.cfg.get("jobs", 200)):
        K = tb.rng.randint(1, 24)
        ba, bw = tb.rng.choice(tb.widths), tb.rng.choice(tb.widths)
        tb.driver.add_job(models.PEJob(ba, bw, [tb.rng.randint(lo, hi) for _ in range(K)],
                                       [tb.rng.randint(lo, hi) for _ in range(K)]))
    await tb.run()
    tb.finish()


@cocotb.test()
async def test_views(dut):
    """Each operand's view on its own: every master code at every width register value
    (built or not: an unbuilt one views to 0) times an identity partner (the code 1 at
    b = n, whose view is 1), so acc and result equal the view itself."""
    tb = TB(dut)
    await tb.start()
    if not tb.cfg.get("views", True):
        return
    lo, hi = spec.code_range(tb.n, tb.signed)
    nb = 1 << tb.cfg.ports["b_a"]["width"]
    for b in range(nb):
        for q in range(lo, hi + 1):
            tb.driver.add_job(models.PEJob(b, tb.n, [q], [1]))
            tb.driver.add_job(models.PEJob(tb.n, b, [1], [q]))
    await tb.run()
    tb.finish()


def _climb(target, hi, lo, signed):
    """Master codes (at b = n, the identity view) whose products add up to ``target``
    with every partial sum between 0 and ``target``: largest products first."""
    xs, ys = [], []
    s = 1 if target >= 0 else -1
    m = abs(target)
    big = hi if s > 0 or not signed else -lo  # |largest code| in the direction of s
    while m > 0:
        if m >= big:
            x = big
            y = min(hi, m // big)
        else:
            x, y = m, 1
        xs.append(s * x if s > 0 else -x)
        ys.append(y)
        m -= x * y
    return xs, ys


@cocotb.test()
async def test_boundary(dut):
    """Crossings of the top (and, signed, the bottom) of the W-bit range by a chosen
    amount d (0: lands on the bound; d = 1, 2, 2^j +- 1, ...; d < 0: stays inside), with
    ``last`` on the crossing beat and the beats around it, so that ``result`` (its own
    overflow logic) is checked where wrap and saturate decide, not only ``acc``."""
    tb = TB(dut)
    await tb.start()
    if not tb.cfg.get("boundary", True):
        return
    lo, hi = spec.code_range(tb.n, tb.signed)
    loW, hiW = spec.signed_range(tb.W)
    max_terms = tb.cfg.get("boundary_max_terms", 1500)
    big = hi * hi if not tb.signed else lo * lo
    finals = sorted({(hi, hi), (hi, hi // 2 + 1), (hi // 3 + 1, 5), (hi, 1)}
                    | ({(lo, lo), (lo, hi)} if tb.signed else set()))
    ds = sorted({-2, -1, 0, 1, 2, 3} | {(1 << j) + e for j in range(1, tb.W - 1)
                                        for e in (-1, 0, 1)})
    sides = [1, -1] if tb.signed else [1]
    for side in sides:
        for x, y in finals:
            p = x * y
            if p * side <= 0:
                continue
            for d in ds:
                if d >= abs(p):
                    continue
                target = (hiW + d - p) if side > 0 else (loW - d - p)
                if not loW <= target <= hiW:
                    continue
                xs, ys = _climb(target, hi, lo, tb.signed)
                if len(xs) > max_terms:
                    continue
                # after the crossing: once more the same way, then back the other way
                back = (lo, hi) if tb.signed and side > 0 else ((lo, lo) if tb.signed else (0, 0))
                xs, ys = xs + [x, x, back[0]], ys + [y, y, back[1]]
                K = len(xs)
                tb.driver.add_job(models.PEJob(tb.n, tb.n, xs, ys), snap_from=max(0, K - 5))
    await tb.run()
    tb.finish()


def tb_p(dut):
    return Config().get("p_idle", 0.2)
