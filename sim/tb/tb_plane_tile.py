"""cocotb bench of the tile run from bit-plane storage (``plane_tile``, docs/hardware.md,
"Bit-plane storage").

Drivers on ``load`` (plane words), ``cmd`` and ``rq`` (random idle cycles), a sink on
``out`` (random back-pressure), a monitor on every stream. The input monitors keep a shadow
of the plane memories from the ``load`` transfers; at each ``cmd`` transfer the job is
rebuilt from that shadow (all n planes of steps base .. base + K - 1, so the master codes
themselves) and paired with its ``rq``; the reference model (:class:`sim.models.TileModel`,
or the golden set's expected codes) gives the rows the in-order scoreboard waits for. The
codes the tile sees were read with only the planes the width needs: the outputs equal the
model's on the master codes only if the reader read every plane the view needs.

A reads monitor checks every ``reads_done`` strobe, in command order, against the
contract: K b (floor), K (b + 1) (half_up, K n at b = n) plane words per operand.

``planes_of`` / ``codes_of`` are the model's layout (``dqt_hw.spec.to_planes`` /
``from_planes``: row j = plane n - 1 - j, bit i = lane i), and the reads expected are
``spec.planes_read``.

Tests: width pairs in turn (8/8, 4/4, 2/2, mixed, every width of the build) with a switch
between consecutive tiles, a weight tile read twice at other widths; tiles back to back with
no idle cycle and no back-pressure at K >= max(R, C): each tile's reads end exactly K cycles
after the previous tile's (a width switch costs nothing); a full-depth tile and tiles
whose addresses wrap; the golden cases that fit.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import cocotb

from dqt_hw import spec
from dqt_hw.hw.reference import LaneConstants, TileJob

from .. import models
from .common import Config, CycleLoop, bench_rng, write_summary
from .streams import StreamMonitor, StreamSink, StreamSource

ROOT = Path(__file__).resolve().parents[2]


def planes_of(codes, n: int, signed: bool) -> list[int]:
    """Plane words of a vector of codes (the model's layout, ``spec.to_planes`` with one
    word of len(codes) bits a plane): row j holds bit n - 1 - j of each code, bit i for
    lane i."""
    return [row[0] for row in spec.to_planes(codes, n, signed=signed, word_bits=len(codes))]


def codes_of(rows, n: int, lanes: int, signed: bool) -> list[int]:
    """The codes of ``lanes`` lanes from their n plane rows (``spec.from_planes``)."""
    return spec.from_planes([[r] for r in rows], n, lanes, signed=signed, word_bits=lanes)


class TB:
    def __init__(self, dut, *, p_idle=None, p_stall=None):
        self.dut = dut
        self.cfg = cfg = Config()
        hw = cfg.hw
        self.R, self.C, self.n, self.signed = hw["rows"], hw["cols"], hw["n"], hw["signed"]
        self.depth = 1 << hw["depth_bits"]
        self.widths = list(hw["widths"])
        self.rounding = hw["view_rounding"]
        self.kbits, self.ebits, self.sbits = hw["kbits"], hw["ebits"], hw["sbits"]
        self.model = models.TileModel(self.n, self.signed, hw["acc_width"], hw["overflow"],
                                      self.rounding, self.kbits)
        self.rng = bench_rng("plane_tile")
        p_idle = cfg.get("p_idle", 0.0) if p_idle is None else p_idle
        p_stall = cfg.get("p_stall", 0.0) if p_stall is None else p_stall
        self.loop = CycleLoop(dut)
        self.mon = {s: StreamMonitor(dut, s, hold_payload=(s == "out"))
                    for s in ("load", "cmd", "rq", "out")}
        self.src = {s: StreamSource(dut, s, self.mon[s], bench_rng(f"plane_tile-{s}"), p_idle)
                    for s in ("load", "cmd", "rq")}
        self.sink = StreamSink(dut, "out", self.mon["out"], bench_rng("plane_tile-out"),
                               p_stall)
        self.loadp, self.cmdp, self.rqp, self.outp = (cfg.packer(p) for p in (
            "load__payload", "cmd__payload", "rq__payload", "out__payload"))
        self.shadow = {}  # (sel, addr, row) -> plane word, from the load transfers
        self.cmds, self.rqs = deque(), deque()
        self.reads_expected = deque()
        self.reads_seen = []
        self.sb = models.Scoreboard("plane_tile.out")
        self.golden = deque()
        self.mon["load"].callbacks.append(self.on_load)
        self.mon["cmd"].callbacks.append(self.on_cmd)
        self.mon["rq"].callbacks.append(self.on_rq)
        self.mon["out"].callbacks.append(self.on_out)
        self.loop.drivers += list(self.src.values()) + [self.sink]
        self.loop.monitors += list(self.mon.values()) + [self]
        self.rows_expected = 0
        self.jobs_seen = 0
        self.plane_reads = 0
        self.macs = 0

    # ---- monitors
    def on_load(self, word):
        f = self.loadp.unpack(word)
        self.shadow[(f["sel"], f["addr"], f["row"])] = f["word"]

    def on_cmd(self, word):
        f = self.cmdp.unpack(word)
        K = f["k"] or self.depth
        steps = []
        for sel, base, lanes in ((0, f["a_base"], self.R), (1, f["w_base"], self.C)):
            op = []
            for k in range(K):
                addr = (base + k) % self.depth
                rows = [self.shadow.get((sel, addr, j)) for j in range(self.n)]
                if None in rows:
                    raise AssertionError(f"cmd at cycle {self.mon['cmd'].cycle}: step {k} "
                                         f"reads address {addr} of operand {sel}, never loaded")
                op.append(codes_of(rows, self.n, lanes, self.signed))
            steps.append(op)
        self.cmds.append((f["b_a"], f["b_w"], steps[0], steps[1]))
        reads = [K * spec.planes_read(self.n, f[b], self.rounding, signed=self.signed)
                 for b in ("b_a", "b_w")]
        self.reads_expected.append((*reads, K,
                                    f["b_a"], f["b_w"]))
        self._pair()

    def on_rq(self, word):
        f = self.rqp.unpack(word)
        lanes = [LaneConstants(tuple(f[f"lanes[{j}].k{t}"] for t in range(1, 5)),
                               tuple(f[f"lanes[{j}].e{t}"] for t in range(1, 5)),
                               f[f"lanes[{j}].s"]) for j in range(f["ncols"])]
        rcode = {v: k for k, v in spec.ROUNDING_CODES.items()}
        self.rqs.append((f["m"], f["ncols"], f["b_out"], rcode[f["rounding"]], lanes))
        self._pair()

    def _pair(self):
        while self.cmds and self.rqs:
            b_a, b_w, cols, rows = self.cmds.popleft()
            m, ncols, b_out, rounding, lanes = self.rqs.popleft()
            K = len(cols)
            job = TileJob([[cols[k][i] for k in range(K)] for i in range(m)],
                          [row[:ncols] for row in rows], b_a, b_w, b_out, rounding, lanes)
            expected = self.golden.popleft() if self.golden else self.model(job)
            for i, row in enumerate(expected):
                codes = list(row) + [0] * (self.C - ncols)
                self.sb.expect((tuple(codes), i, int(i == m - 1)),
                               info=f"job {self.jobs_seen} row {i} (b_a={b_a} b_w={b_w} K={K})")
            self.jobs_seen += 1
            self.macs += m * ncols * K

    def sample(self, cycle):
        """The reads monitor: every reads_done strobe against the next command's counts."""
        if not int(self.dut.reads_done.value):
            return
        word = self.dut.reads.value.to_unsigned()
        port = self.cfg.ports["reads"]
        got = {f["name"]: (word >> f["offset"]) & ((1 << f["width"]) - 1)
               for f in port["fields"]}
        if not self.reads_expected:
            raise AssertionError(f"reads_done at cycle {cycle} with no command outstanding")
        a, w, K, b_a, b_w = self.reads_expected.popleft()
        tile = len(self.reads_seen)
        if (got["a"], got["w"]) != (a, w):
            raise AssertionError(
                f"plane reads of tile {tile} (K={K}, b_a={b_a}, b_w={b_w}, {self.rounding}): "
                f"a={got['a']} w={got['w']}, expected a={a} w={w} (cycle {cycle})")
        self.reads_seen.append((cycle, K))
        self.plane_reads += a + w

    def on_out(self, word):
        codes = self.outp.array(word, "codes", self.C, self.signed)
        f = self.outp.unpack(word)
        self.sb.got((tuple(codes), f["row"], f["last"]))

    # ---- drivers
    def load_job(self, job: TileJob, a_base: int, w_base: int, *, weights=True):
        """Queue the plane words of ``job`` at a_base / w_base (padding lanes random)."""
        lo, hi = spec.code_range(self.n, self.signed)
        r = self.rng
        for k in range(job.k):
            ops = [(0, a_base, [job.a[i][k] if i < job.m else r.randint(lo, hi)
                                for i in range(self.R)])]
            if weights:
                ops.append((1, w_base, [job.w[k][j] if j < job.ncols else r.randint(lo, hi)
                                        for j in range(self.C)]))
            for sel, base, codes in ops:
                addr = (base + k) % self.depth
                for row, word in enumerate(planes_of(codes, self.n, self.signed)):
                    self.src["load"].send(self.loadp.pack(
                        {"sel": sel, "addr": addr, "row": row, "word": word}))

    def run_job(self, job: TileJob, a_base: int, w_base: int):
        """Queue the cmd and rq of ``job`` (its planes already loaded)."""
        r = self.rng
        self.src["cmd"].send(self.cmdp.pack({"k": job.k % self.depth, "b_a": job.b_a,
                                             "b_w": job.b_w, "a_base": a_base,
                                             "w_base": w_base}))
        fields = {"m": job.m, "ncols": job.ncols, "b_out": job.b_out,
                  "rounding": spec.ROUNDING_CODES[job.rounding]}
        for j in range(self.C):
            lane = job.lanes[j] if j < job.ncols else self.random_lane(r, "any")
            for key, v in lane.as_dict().items():
                fields[f"lanes[{j}].{key}"] = v
        self.src["rq"].send(self.rqp.pack(fields))
        self.rows_expected += job.m

    async def start(self):
        self.loop.start_clock()
        await self.loop.reset(self.dut.rst)

    async def run(self):
        """Run until every source is done and every expected row came out, then a few
        cycles more (anything extra shows up)."""
        budget = self.loop.cycle + 50_000 + 20 * sum(len(s.items) for s in self.src.values())
        await self.loop.run_until(
            lambda: (not any(s.busy() for s in self.src.values())
                     and self.mon["out"].count >= self.rows_expected),
            max_cycles=budget)
        end = self.loop.cycle + 2 * (self.R + self.C) + 4
        await self.loop.run_until(lambda: self.loop.cycle >= end, max_cycles=end + 1)

    async def batch(self, jobs, start: int = 0):
        """Load the planes of ``jobs`` (job t at address ``start`` + the K before it,
        modulo the depth; a job whose ``w`` is the previous job's reads the previous
        weights), then run them."""
        at, places = start, []
        for t, job in enumerate(jobs):
            shared = t > 0 and job.w is jobs[t - 1].w
            w_base = places[-1][1] if shared else at % self.depth
            places.append((at % self.depth, w_base))
            self.load_job(job, at, w_base, weights=not shared)
            at += job.k
        if at - start > self.depth:
            raise ValueError(f"a batch of {at - start} steps does not fit {self.depth} words")
        await self.run()  # the loads first: a command reads what is loaded
        for job, (ab, wb) in zip(jobs, places):
            self.run_job(job, ab, wb)
        await self.run()

    def finish(self, **kw):
        if self.cmds or self.rqs:
            raise AssertionError("input monitor: commands or rq left that form no job")
        if self.reads_expected:
            raise AssertionError(f"{len(self.reads_expected)} tile(s) without a reads_done")
        n = self.sb.finish()
        write_summary(checks=n + len(self.reads_seen), jobs=self.jobs_seen, macs=self.macs,
                      plane_reads=self.plane_reads, cycles=self.loop.cycle, **kw)
        return n

    # ---- stimulus
    def random_lane(self, rng, style, *, acc_width=None, b_out=None):
        kb, eb, sb = self.kbits, self.ebits, self.sbits
        klo, khi = spec.signed_range(kb)
        if style == "small":
            k1 = rng.randint(1 << (kb - 3), 1 << (kb - 2))
            k = (k1 if rng.random() < 0.8 else -k1, rng.randint(-(k1 >> 5), k1 >> 5),
                 rng.randint(-(k1 >> 5), k1 >> 5), rng.randint(klo, khi))
            e = (rng.randrange(2), 0, 0, rng.randrange(2))
            s = max(0, min((1 << sb) - 1,
                           (kb - 2) + e[0] + acc_width - b_out - 2 + rng.randint(-1, 1)))
            return LaneConstants(k, e, s)
        return LaneConstants(tuple(rng.randint(klo, khi) for _ in range(4)),
                             tuple(rng.randrange(1 << eb) for _ in range(4)),
                             rng.randrange(1 << sb))

    def random_job(self, pair, K, *, w=None):
        rng = self.rng
        lo, hi = spec.code_range(self.n, self.signed)
        m, ncols = self.R, (len(w[0]) if w else self.C)
        if rng.random() < 0.4 and not w:
            m, ncols = rng.randint(1, self.R), rng.randint(1, self.C)
        b_a, b_w = pair
        b_out = rng.choice(self.widths)
        acc_width = min(self.cfg.hw["acc_width"], b_a + b_w + max(0, K - 1).bit_length())
        return TileJob([[rng.randint(lo, hi) for _ in range(K)] for _ in range(m)],
                       w or [[rng.randint(lo, hi) for _ in range(ncols)] for _ in range(K)],
                       b_a, b_w, b_out, rng.choice(spec.ROUNDINGS),
                       [self.random_lane(rng, "small", acc_width=acc_width, b_out=b_out)
                        for _ in range(ncols)])

    def pairs(self):
        """8/8, 4/4, 2/2, mixed, then every width of the build on both sides (those of
        the first list the build lacks left out)."""
        first = [(8, 8), (4, 4), (2, 2), (8, 2), (2, 8), (4, 8), (8, 4)]
        out = [(a, w) for a, w in first if a in self.widths and w in self.widths]
        out += [(b, b) for b in self.widths]
        out += [(b, self.widths[-1 - i]) for i, b in enumerate(self.widths)]
        return out


@cocotb.test()
async def test_widths(dut):
    """Width pairs in turn (``TB.pairs``), a switch between consecutive tiles, random K
    (up to 2 max(R, C)), a weight tile read again at other widths, random idle cycles and
    back-pressure; ``rounds`` times (default 1)."""
    tb = TB(dut)
    await tb.start()
    P = max(tb.R, tb.C)
    for _ in range(tb.cfg.get("rounds", 1)):
        batch, used = [], 0
        for pair in tb.pairs():
            K = tb.rng.randint(1, 2 * P)
            if used + 2 * K > tb.depth:  # (room for the job and a reuse of its weights)
                await tb.batch(batch)
                batch, used = [], 0
            job = tb.random_job(pair, K)
            batch.append(job)
            used += K
            if tb.rng.random() < 0.3:  # the same weights again, other activations and widths
                again = (tb.rng.choice(tb.widths), tb.rng.choice(tb.widths))
                batch.append(tb.random_job(again, K, w=job.w))
                used += K
        if batch:
            await tb.batch(batch)
    tb.finish()


@cocotb.test()
async def test_back_to_back(dut):
    """K >= max(R, C) tiles at switching widths, no idle cycle, no back-pressure: each
    tile's reads end exactly K cycles after the previous tile's (reads_done strobes), so
    the reader never waits at a width switch."""
    tb = TB(dut, p_idle=0.0, p_stall=0.0)
    await tb.start()
    P = max(tb.R, tb.C)
    pairs = tb.pairs()
    jobs, used = [], 0
    for pair in pairs:
        K = tb.rng.randint(P, 2 * P)
        if used + K > tb.depth:
            break
        jobs.append(tb.random_job(pair, K))
        used += K
    if len(jobs) < 3:
        raise AssertionError(f"{tb.depth} words hold only {len(jobs)} tiles of K >= {P}")
    before = len(tb.reads_seen)
    await tb.batch(jobs)
    seen = tb.reads_seen[before:]
    for t in range(1, len(seen)):
        gap = seen[t][0] - seen[t - 1][0]
        if gap != seen[t][1]:
            raise AssertionError(f"tile {t} (K={seen[t][1]}, widths {jobs[t].b_a}/"
                                 f"{jobs[t].b_w} after {jobs[t - 1].b_a}/{jobs[t - 1].b_w}): "
                                 f"its reads ended {gap} cycles after the previous tile's, "
                                 f"expected K = {seen[t][1]}")
    tb.finish(back_to_back=len(seen))


@cocotb.test()
async def test_full_depth_and_wrap(dut):
    """A full-depth tile (K = 2^depth_bits, cmd k field 0) reading every word, then tiles
    whose steps wrap from the last address to address 0, at narrow and full widths."""
    tb = TB(dut)
    await tb.start()
    P = max(tb.R, tb.C)
    await tb.batch([tb.random_job((4, 4) if 4 in tb.widths else (tb.n, tb.n), tb.depth)])
    wrap = [tb.random_job(pair, min(tb.depth // 2, P + 2))
            for pair in ((tb.widths[0], tb.n), (tb.n, tb.widths[0]))]
    await tb.batch(wrap, start=tb.depth - 3)
    tb.finish()


@cocotb.test()
async def test_golden(dut):
    """The golden cases ``golden`` that fit the tile inside (``dqt_hw.golden.fits`` on the
    plane tile's tile design; the first ``golden_blocks`` jobs of each), their expected
    codes in place of the model, each job loaded as planes and run."""
    names = Config().get("golden", [])
    if not names:
        return
    from dqt_hw.golden import fits, read_case

    from ..golden import case_jobs

    tb = TB(dut)
    await tb.start()
    design = tb.cfg.design.sub("tile")
    ran = []
    for name in names:
        case = read_case(ROOT / "golden" / name)
        if fits(design, case):
            continue
        for job, rows in case_jobs(design, case, limit=tb.cfg.get("golden_blocks")):
            tb.golden.append(rows)
            await tb.batch([job])
        ran.append(name)
    if tb.cfg.get("golden_required") and not ran:
        raise AssertionError("no golden case fits this plane tile")
    tb.finish(golden_ran=ran)
