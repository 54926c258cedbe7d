"""cocotb bench of the accelerator tile through its stream protocol (docs/hardware.md).

Drivers on ``cmd``, ``act``, ``wgt``, ``rq`` (random idle cycles), a sink on ``out``
(random back-pressure), a monitor on every stream. The input monitors rebuild each tile job
from what was actually transferred (K from the act/wgt transfers between two ``cmd``
transfers, M, N and the lanes from ``rq``) and hand it to the model
(:class:`sim.models.TileModel`: ``dqt_hw.model`` views, gemm, side sums, requantize), or, for
golden cases, look the expected codes up in the golden set; the output monitor feeds the
in-order scoreboard, which must end empty.

Protocol: every monitor fails at once on a broken valid/ready rule (``sim.tb.streams``),
and the output monitor checks each row against the plan of the jobs sent (rows 0..M-1 of
each job in order, ``last`` on row M-1): a dropped, duplicated or reordered row fails at
the cycle it comes out, naming it.

Tests: random GEMM tiles with a precision switch between consecutive tiles; term lanes
(``sim.tb.tile_stim``: one requantizer term per column decides its codes, extreme shifts,
full-depth tiles); width switches at every tile's first element with non-zero data; tiles
back to back with no idle cycle (exact cmd spacing, then the array frozen by back-pressure
with the next tile in flight); the golden
cases that fit (``dqt_hw.golden.fits``; turned into tile jobs by ``sim.golden.case_jobs``:
gemm cases through "window" lanes that pin the accumulator exactly, dense layers, conv
layers by im2col); tiles of the real ResNet-18 CIFAR-10 layer1.0.conv1 computed by the
reference model.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import cocotb

from dqt_hw import spec
from dqt_hw.hw.reference import LaneConstants, TileJob

from .. import models
from . import tile_stim
from .common import Config, CycleLoop, bench_rng, write_summary
from .coverage import cov
from .streams import ProtocolError, StreamMonitor, StreamSink, StreamSource

ROOT = Path(__file__).resolve().parents[2]


class JobAssembler:
    """Input-side monitor: rebuilds tile jobs from the transfers on cmd/act/wgt/rq."""

    def __init__(self, cfg: Config, on_job):
        hw = cfg.hw
        self.design = cfg.design
        self.R, self.C, self.n, self.signed = hw["rows"], hw["cols"], hw["n"], hw["signed"]
        self.depth = 1 << hw["depth_bits"]
        self.cmdp, self.actp, self.wgtp, self.rqp = (cfg.packer(p) for p in (
            "cmd__payload", "act__payload", "wgt__payload", "rq__payload"))
        self.rcode = {v: k for k, v in spec.ROUNDING_CODES.items()}
        self.acts, self.wgts = [], []
        self.cmds, self.rqs = deque(), deque()
        self.on_job = on_job
        self.errors = []
        self.cycle = lambda: "?"  # the cmd monitor's cycle (set by the TB)

    def act(self, word):
        self.acts.append(word)

    def wgt(self, word):
        self.wgts.append(word)

    def cmd(self, word):
        f = self.cmdp.unpack(word)
        K = f["k"] or self.depth
        P, p = self.design.max_pack, self.design.pack_factor(f["b_a"], f["b_w"])
        T = -(-K // p)  # transfers of a tile of K elements
        if len(self.acts) != T or len(self.wgts) != T:
            raise ProtocolError(f"cmd stream, cycle {self.cycle()}: cmd taken after "
                                f"{len(self.acts)} act / {len(self.wgts)} wgt transfers, its k "
                                f"is {K} ({T} transfers of {p} element(s))")
        acts = self.actp.unpack_elements(self.acts[:T], K, P, p, self.R, self.signed)
        wgts = self.wgtp.unpack_elements(self.wgts[:T], K, P, p, self.C, self.signed)
        self.cmds.append((f["b_a"], f["b_w"], acts, wgts, f["k"] == 0, p))
        self.acts, self.wgts = self.acts[T:], self.wgts[T:]
        self._pair()

    def rq(self, word):
        f = self.rqp.unpack(word)
        lanes = [LaneConstants(tuple(f[f"lanes[{j}].k{t}"] for t in range(1, 5)),
                               tuple(f[f"lanes[{j}].e{t}"] for t in range(1, 5)),
                               f[f"lanes[{j}].s"]) for j in range(f["ncols"])]
        self.rqs.append((f["m"], f["ncols"], f["b_out"], self.rcode[f["rounding"]], lanes))
        self._pair()

    def _pair(self):
        while self.cmds and self.rqs:
            b_a, b_w, cols, rows, full_depth, p = self.cmds.popleft()
            m, ncols, b_out, rounding, lanes = self.rqs.popleft()
            K = len(cols)
            a = [[cols[k][i] for k in range(K)] for i in range(m)]
            w = [row[:ncols] for row in rows]
            job = TileJob(a, w, b_a, b_w, b_out, rounding, lanes)
            for f in job_features(job, self.design, full_depth=full_depth, pack=p):
                cov.tile_feature(f)
            self.on_job(job)


def job_features(job: TileJob, design, *, full_depth: bool, pack: int) -> list[str]:
    """The ``dqt.tile.feature`` bins a job (as transferred) hits: a full-depth tile (cmd
    k field 0), a packed one, term lanes (one non-zero K_t), extreme shifts."""
    out = ["full_depth"] if full_depth else []
    if pack > 1:
        out.append(f"pack{pack}")
    smax, emax = (1 << design.sbits) - 1, (1 << design.ebits) - 1
    for lane in job.lanes[:job.ncols]:
        used = [t for t in range(4) if lane.k[t]]
        if len(used) == 1:
            out.append(f"term_k{used[0] + 1}")
            if lane.e[used[0]] == emax:
                out.append("e_max")
            if lane.s == 0:
                out.append("s_zero")
            elif lane.s == smax:
                out.append("s_max")
    return out


class TB:
    def __init__(self, dut, *, p_idle=None, p_stall=None):
        self.dut = dut
        self.cfg = Config()
        hw = self.cfg.hw
        self.R, self.C, self.n, self.signed = hw["rows"], hw["cols"], hw["n"], hw["signed"]
        self.W, self.ovf = hw["acc_width"], hw["overflow"]
        self.kbits, self.ebits, self.sbits = hw["kbits"], hw["ebits"], hw["sbits"]
        self.widths = list(hw["widths"])
        self.view_rounding = hw["view_rounding"]
        self.model = models.TileModel(self.n, self.signed, self.W, self.ovf, self.view_rounding,
                                      self.kbits)
        self.rng = bench_rng("tile")
        p_idle = self.cfg.get("p_idle", 0.0) if p_idle is None else p_idle
        p_stall = self.cfg.get("p_stall", 0.0) if p_stall is None else p_stall
        self.loop = CycleLoop(dut)
        self.mon = {s: StreamMonitor(dut, s, cover_backpressure=(s == "out"),
                                     hold_payload=(s == "out"))
                    for s in ("act", "wgt", "cmd", "rq", "out")}  # act/wgt before cmd:
        # a tile's last act/wgt transfer and its cmd transfer happen at the same edge
        self.src = {s: StreamSource(dut, s, self.mon[s], bench_rng(f"tile-{s}"), p_idle)
                    for s in ("cmd", "act", "wgt", "rq")}
        self.sink = StreamSink(dut, "out", self.mon["out"], bench_rng("tile-out"), p_stall)
        self.cmdp, self.actp, self.wgtp, self.rqp, self.outp = (self.cfg.packer(p) for p in (
            "cmd__payload", "act__payload", "wgt__payload", "rq__payload", "out__payload"))
        self.sb = models.Scoreboard("tile.out")
        self.asm = JobAssembler(self.cfg, self.model_job)
        self.asm.cycle = lambda: self.mon["cmd"].cycle
        self.mon["cmd"].callbacks.append(self.asm.cmd)
        self.mon["act"].callbacks.append(self.asm.act)
        self.mon["wgt"].callbacks.append(self.asm.wgt)
        self.mon["rq"].callbacks.append(self.asm.rq)
        self.mon["out"].callbacks.append(self.out_row)
        self.loop.drivers += list(self.src.values()) + [self.sink]
        self.loop.monitors += list(self.mon.values())
        self.golden = deque()  # expected rows per job, for golden cases (instead of the model)
        self.jobs_seen = 0
        self.prev_pair = None
        self.macs = 0
        self.rows_expected = 0
        self.row_plan = deque()  # M of every job sent, in order (the output's row plan)
        self.row_pos = (0, 0)  # (job, row) the next out transfer must carry

    # ---- model side
    def model_job(self, job: TileJob):
        if self.golden:
            rows = self.golden.popleft()
        else:
            rows = self.model(job)
        for i, row in enumerate(rows):
            codes = list(row) + [0] * (self.C - job.ncols)
            self.sb.expect((tuple(codes), i, int(i == job.m - 1)),
                           info=f"job {self.jobs_seen} row {i} (b_a={job.b_a} b_w={job.b_w} "
                                f"K={job.k} {job.rounding} b_out={job.b_out})")
        self.jobs_seen += 1
        self.macs += job.m * job.ncols * job.k
        cov.tile_pair(self.signed, job.b_a, job.b_w)
        if self.prev_pair is not None:
            cov.tile_transition(self.prev_pair, (job.b_a, job.b_w))
            if self.prev_pair != (job.b_a, job.b_w) and self.first_element_nonzero(job):
                cov.tile_feature("switch_first_nonzero")
        self.prev_pair = (job.b_a, job.b_w)

    def first_element_nonzero(self, job: TileJob) -> bool:
        """Whether element 0 of the job has a non-zero view in an output row and column."""
        def nz(codes, b):
            return any(spec.nested_view(q, self.n, b, self.view_rounding, signed=self.signed)
                       for q in codes)
        return nz([row[0] for row in job.a], job.b_a) and nz(job.w[0], job.b_w)

    def out_row(self, word):
        codes = self.outp.array(word, "codes", self.C, self.signed)
        f = self.outp.unpack(word)
        self.check_row(f["row"], f["last"])
        self.sb.got((tuple(codes), f["row"], f["last"]))

    def check_row(self, row, last):
        """The row plan: job j's rows 0..M_j-1 in order, ``last`` on row M_j-1; a row that
        breaks it fails now, named (dropped / duplicated / out of order / extra)."""
        job, i = self.row_pos
        where = f"tile.out stream, cycle {self.mon['out'].cycle}"
        if job >= len(self.row_plan):
            raise ProtocolError(f"{where}: an extra row (row {row}, last {last}) after the "
                                f"{sum(self.row_plan)} rows of the {len(self.row_plan)} job(s) sent")
        m = self.row_plan[job]
        if row != i:
            if row == 0:
                what = (f"row 0 again: rows {i}..{m - 1} of job {job} dropped (the next job "
                        f"began)" + (" or row 0 duplicated" if i == 1 else ""))
            elif i < row < m:
                what = f"row(s) {i}..{row - 1} of job {job} dropped"
            elif row < i:
                what = (f"row {row} of job {job} duplicated" if row == i - 1 else
                        f"rows out of order in job {job}")
            else:
                what = f"row {row} does not exist in job {job} (M = {m})"
            raise ProtocolError(f"{where}: job {job} row {i} expected, got row {row}: {what}")
        if last != int(i == m - 1):
            raise ProtocolError(f"{where}: job {job} row {i} of {m}: last = {last}, expected "
                                f"{int(i == m - 1)} (last flag on the wrong row)")
        self.row_pos = (job + 1, 0) if i == m - 1 else (job, i + 1)

    # ---- driver side
    def send_job(self, job: TileJob, *, pad_rng=None):
        """Queue one job on the four input streams (padding rows/columns random)."""
        r = pad_rng or self.rng
        lo, hi = spec.code_range(self.n, self.signed)
        K = job.k
        kfield = K if K < (1 << self.cfg.hw["depth_bits"]) else 0
        self.src["cmd"].send(self.cmdp.pack({"k": kfield, "b_a": job.b_a, "b_w": job.b_w}))
        d = self.cfg.design
        P, p = d.max_pack, d.pack_factor(job.b_a, job.b_w)
        cols = [[job.a[i][k] if i < job.m else r.randint(lo, hi) for i in range(self.R)]
                for k in range(K)]
        rows = [[job.w[k][j] if j < job.ncols else r.randint(lo, hi) for j in range(self.C)]
                for k in range(K)]
        for a_word, w_word in zip(
                self.actp.pack_elements(cols, P, p, lambda: [r.randint(lo, hi)] * self.R),
                self.wgtp.pack_elements(rows, P, p, lambda: [r.randint(lo, hi)] * self.C)):
            self.src["act"].send(a_word)
            self.src["wgt"].send(w_word)
        fields = {"m": job.m, "ncols": job.ncols, "b_out": job.b_out,
                  "rounding": spec.ROUNDING_CODES[job.rounding]}
        for j in range(self.C):
            lane = job.lanes[j] if j < job.ncols else self.random_lane(r, "any")
            for key, v in lane.as_dict().items():
                fields[f"lanes[{j}].{key}"] = v
        self.src["rq"].send(self.rqp.pack(fields))
        self.rows_expected += job.m
        self.row_plan.append(job.m)

    async def start(self):
        import time

        self.t0 = time.perf_counter()
        self.loop.start_clock()
        await self.loop.reset(self.dut.rst)

    async def run(self, max_cycles=None):
        if max_cycles is None:
            max_cycles = 50_000 + 20 * sum(len(s.items) for s in self.src.values())
        done = lambda: (not any(s.busy() for s in self.src.values())  # noqa: E731
                        and self.mon["out"].count >= self.rows_expected)
        await self.loop.run_until(done, max_cycles=self.loop.cycle + max_cycles)
        end = self.loop.cycle + 2 * (self.R + self.C) + 4  # anything extra would show up
        await self.loop.run_until(lambda: self.loop.cycle >= end, max_cycles=end + 1)

    def finish(self, **kw):
        errs = self.asm.errors
        if errs:
            raise AssertionError("input monitor: " + "; ".join(errs[:5]))
        if self.asm.cmds or self.asm.rqs or self.asm.acts:
            raise AssertionError("input monitor: transfers left that form no complete job")
        if self.golden:
            raise AssertionError(f"{len(self.golden)} golden job(s) never ran")
        n = self.sb.finish()
        if self.model.wrap_events:
            cov.tile_event("wrap")
        if self.model.sat_events:
            cov.tile_event("saturate")
        import time

        write_summary(checks=n, jobs=self.jobs_seen, macs=self.macs, cycles=self.loop.cycle,
                      test_seconds=time.perf_counter() - getattr(self, "t0", time.perf_counter()),
                      model_fallbacks=self.model.fallbacks, overflow_events=self.model.events,
                      idle_cycles=sum(s.idle_cycles for s in self.src.values()),
                      stall_cycles=self.sink.stall_cycles, **kw)
        return n

    # ---- stimulus
    def random_lane(self, rng, style, *, acc_width=None, b_out=None):
        """``small``: K1 * acc scaled to about the output range (codes spread over it);
        ``any``: anything the fields hold (used for padding columns)."""
        kb, eb, sb = self.kbits, self.ebits, self.sbits
        klo, khi = spec.signed_range(kb)
        if style == "small":
            k1 = rng.randint(1 << (kb - 3), 1 << (kb - 2))
            k = (k1 if rng.random() < 0.8 else -k1,
                 rng.randint(-(k1 >> 5), k1 >> 5), rng.randint(-(k1 >> 5), k1 >> 5),
                 rng.randint(klo, khi))
            e = (rng.randrange(2), 0, 0, rng.randrange(2))
            s = (kb - 2) + e[0] + acc_width - b_out - 2 + rng.randint(-1, 1)
            s = max(0, min((1 << sb) - 1, s))
            return LaneConstants(k, e, s)
        return LaneConstants(tuple(rng.randint(klo, khi) for _ in range(4)),
                             tuple(rng.randrange(1 << eb) for _ in range(4)),
                             rng.randrange(1 << sb))

    def random_job(self, *, k=None, codes="random", pair=None):
        rng = self.rng
        lo, hi = spec.code_range(self.n, self.signed)
        m, ncols = rng.randint(1, self.R), rng.randint(1, self.C)
        if rng.random() < 0.5:
            m, ncols = self.R, self.C
        K = k or rng.choice((rng.randint(1, max(self.R, self.C)),
                             rng.randint(max(self.R, self.C), 4 * max(self.R, self.C))))
        pick = {"random": lambda: rng.randint(lo, hi), "max": lambda: hi,
                "extreme": lambda: rng.choice((lo, hi))}[codes]
        b_a, b_w = pair or (rng.choice(self.widths), rng.choice(self.widths))
        b_out = rng.choice(self.widths)
        acc_width = min(self.W, b_a + b_w + max(0, K - 1).bit_length())
        return TileJob(a=[[pick() for _ in range(K)] for _ in range(m)],
                       w=[[pick() for _ in range(ncols)] for _ in range(K)],
                       b_a=b_a, b_w=b_w, b_out=b_out, rounding=rng.choice(spec.ROUNDINGS),
                       lanes=[self.random_lane(rng, "small", acc_width=acc_width, b_out=b_out)
                              for _ in range(ncols)])


def _pairs_schedule(tb, count):
    """Width pairs for ``count`` consecutive jobs: every (b_a, b_w) pair and every kind of
    move (up / down / same for each) appears when count is large enough."""
    if tb.cfg.design.max_pack > 1:  # packed: every packing mode in turn
        return tile_stim.balanced_pairs(tb.rng, tb.cfg.design, count)
    pairs = [(a, w) for a in tb.widths for w in tb.widths]
    tb.rng.shuffle(pairs)
    out = []
    while len(out) < count:
        out += pairs
    return out[:count]


@cocotb.test()
async def test_random(dut):
    """Random GEMM tiles back to back, a precision switch between consecutive tiles, random
    idle cycles on the inputs and back-pressure on the output (``p_idle``, ``p_stall``)."""
    tb = TB(dut)
    await tb.start()
    count = tb.cfg.get("jobs", 12)
    for pair in _pairs_schedule(tb, count):
        tb.send_job(tb.random_job(pair=pair))
    await tb.run()
    tb.finish()


@cocotb.test()
async def test_overflow(dut):
    """Tiles of extreme codes at full width, long enough to overflow W: wrap or saturate."""
    tb = TB(dut)
    await tb.start()
    lo, hi = spec.code_range(tb.n, tb.signed)
    top = max(abs(lo * lo), abs(hi * hi), abs(lo * hi))
    # no deeper than a tile can be (2^depth_bits steps): at W = 32 with the default 12-bit
    # depth no tile can overflow (2^12 x 65025 < 2^31), and the deepest tile is run instead
    K = min((1 << (tb.W - 1)) // top + 3, tb.cfg.get("overflow_max_k", 600),
            1 << tb.cfg.hw["depth_bits"])
    for codes in ("max", "extreme"):
        tb.send_job(tb.random_job(k=K, codes=codes, pair=(tb.n, tb.n)))
    await tb.run()
    tb.finish()


def _depths(tb, count):
    """K of ``count`` jobs: 1, short, about the array, longer, and one or more full-depth
    tiles (2^depth_bits elements, cmd k field 0; ``full_depth_jobs`` of them, default 1)."""
    depth = 1 << tb.cfg.hw["depth_bits"]
    P = max(tb.R, tb.C)
    pool = [1, 2, 3, P, P + 1, 2 * P + 1]
    ks = [depth] * min(count, tb.cfg.get("full_depth_jobs", 1))
    ks += [min(depth, tb.rng.choice(pool)) for _ in range(count - len(ks))]
    tb.rng.shuffle(ks)
    return ks


@cocotb.test()
async def test_lanes(dut):
    """Term lanes (``sim.tb.tile_stim``): in every job each column's codes are decided by
    one requantizer term alone (K1 acc, K2 sum_a, K3 sum_w or K4, with E and S drawn with
    their extremes), scaled over the output range, on codes ramped per row and column; every
    column position meets every term; K from 1 to full depth (``lane_jobs``, default 12)."""
    tb = TB(dut)
    await tb.start()
    count = tb.cfg.get("lane_jobs", 12)
    for idx, (pair, K) in enumerate(zip(_pairs_schedule(tb, count), _depths(tb, count))):
        tb.send_job(tile_stim.term_job(tb, tb.rng, pair=pair, K=K, offset=idx))
    await tb.run()
    tb.finish()


@cocotb.test()
async def test_switch(dut):
    """Width switches between consecutive tiles (``tile_stim.switch_pairs``: every job at
    other widths than the one before, often the farthest ones), each tile's first element
    an extreme non-zero code in every row and column, term lanes, K from 1 (the switch and
    the last element in one step) to full depth, back to back (``switch_jobs``, default 12)."""
    tb = TB(dut)
    await tb.start()
    count = tb.cfg.get("switch_jobs", 12)
    pairs = tile_stim.switch_pairs(tb.rng, tb.cfg.design, count)
    for idx, (pair, K) in enumerate(zip(pairs, _depths(tb, count))):
        tb.send_job(tile_stim.term_job(tb, tb.rng, pair=pair, K=K, offset=idx,
                                       first_extreme=True))
    await tb.run()
    tb.finish()


@cocotb.test()
async def test_back_to_back(dut):
    """Tiles back to back with no idle cycle on the inputs, K = 1, 2, P - 1, P, P + 1 and
    2 P + 1 with P = max(R, C) (full depth where that is shorter), term lanes. First without back-pressure:
    each cmd must be taken exactly max(T, max(R, C)) cycles after the one before (T the
    tile's transfers: a shorter tile is padded to the minimum period, docs/hardware.md, and
    nothing is slower); then with back-pressure on half the cycles, so the array freezes
    with the next tile in flight (every other job M = R, N = C, K >= 2, accumulator lanes
    only) (``b2b_jobs`` per phase, default 24). Without back-pressure every out row must also
    leave when the sidecar's ``timing.latency_cycles`` says (``_check_latency``)."""
    count = Config().get("b2b_jobs", 24)
    for p_stall in (0.0, 0.5):
        tb = TB(dut, p_idle=0.0, p_stall=p_stall)
        await tb.start()
        P = max(tb.R, tb.C)
        depth = 1 << tb.cfg.hw["depth_bits"]
        takes, outs = [], []
        tb.mon["cmd"].callbacks.append(lambda word: takes.append(tb.mon["cmd"].cycle))
        tb.mon["out"].callbacks.append(lambda word: outs.append(tb.mon["out"].cycle))
        transfers, rows = [], []
        for idx, pair in enumerate(tile_stim.switch_pairs(tb.rng, tb.cfg.design, count)):
            K = min(depth, tb.rng.choice((1, 2, max(1, P - 1), P, P + 1, 2 * P + 1)))
            # under back-pressure every other job is a whole tile of accumulator lanes, so a
            # value corrupted while the array is frozen shows in every column
            acc_only = p_stall and idx % 2 == 0
            K = max(K, 2) if acc_only else K
            transfers.append(-(-K // tb.cfg.design.pack_factor(*pair)))
            job = tile_stim.term_job(tb, tb.rng, pair=pair, K=K, offset=idx,
                                     first_extreme=True, full=acc_only,
                                     terms=(1,) if acc_only else tile_stim.TERMS)
            rows.append(job.m)
            tb.send_job(job)
        await tb.run()
        tb.finish()
        if p_stall == 0.0:
            _check_latency(tb, takes, outs, rows)
            waits = _row_group_waits(tb, transfers, rows)
            for i in range(1, len(takes)):
                want = max(transfers[i], P) + waits[i]
                if takes[i] - takes[i - 1] != want:
                    raise AssertionError(
                        f"cmd stream: job {i} ({transfers[i]} transfer(s)) taken at cycle "
                        f"{takes[i]}, {takes[i] - takes[i - 1]} cycles after job {i - 1}; "
                        f"expected {want} (no idle cycle, no back-pressure)")


def _check_latency(tb, takes, outs, rows):
    """The sidecar's timing, without back-pressure: row r of a job leaves
    ``timing.latency_cycles`` + r ``cycles_per_row`` cycles after the job's last step (its
    cmd transfer). Every job with a lane per column (nothing freezes the datapath); the
    first job's rows with fewer lanes (later rows wait on each other's lane groups)."""
    lat, G = tb.cfg.timing["latency_cycles"], tb.cfg.timing.get("cycles_per_row", 1)
    want = [t + lat + G * r for j, (t, m) in enumerate(zip(takes, rows))
            if G == 1 or j == 0 for r in range(m)]
    got = outs[:len(want)]
    if got != want:
        bad = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        raise AssertionError(
            f"out stream: transfer {bad} at cycle {got[bad]}, the sidecar's latency_cycles = "
            f"{lat} (cycles_per_row {G}) puts it at cycle {want[bad]} (no idle cycle, no "
            f"back-pressure)")


def _row_group_waits(tb, transfers, rows):
    """Frozen cycles between the cmd takes of consecutive back-to-back jobs: with fewer
    requantizer lanes than columns (the sidecar's ``timing.cycles_per_row`` = G > 1) each
    emitted row freezes the datapath G - 1 cycles before its step advances (rows of job j
    due at steps s_j + 1 + C + r, r < M_j, s_j the step of job j's last transfer)."""
    G = tb.cfg.timing.get("cycles_per_row", 1)
    P = max(tb.R, tb.C)
    lasts = [transfers[0] - 1]
    for t in transfers[1:]:
        lasts.append(lasts[-1] + max(t, P))
    due = [s + 1 + tb.C + r for s, m in zip(lasts, rows) for r in range(m)]
    return [0] + [(G - 1) * sum(a < d <= b for d in due) for a, b in zip(lasts, lasts[1:])]


# ----------------------------------------------------------------------------- golden


def queue_jobs(tb, jobs):
    """Queue (job, expected rows) pairs (``sim.golden.case_jobs``): the expected rows
    replace the model for these jobs."""
    for job, rows in jobs:
        tb.golden.append(rows)
        tb.send_job(job)


@cocotb.test()
async def test_golden(dut):
    """The golden cases ``golden`` (names, under ``golden_dir`` or golden/) that fit this
    tile (``dqt_hw.golden.fits``; the first ``golden_blocks`` jobs of each, or all). With
    ``golden_required`` at least one must fit; with ``golden_strict`` every one (``dqt-hw
    sim``: a case that does not fit is an error, never a skip)."""
    from dqt_hw.golden import fits, read_case

    from ..golden import case_jobs

    tb = TB(dut)
    await tb.start()
    ran, skipped = [], {}
    design = tb.cfg.design
    for name in tb.cfg.get("golden", []):
        case = read_case(Path(tb.cfg.get("golden_dir") or ROOT / "golden") / name)
        why = fits(design, case)
        if why:
            skipped[name] = "; ".join(why)
            continue
        queue_jobs(tb, case_jobs(design, case, limit=tb.cfg.get("golden_blocks")))
        ran.append(name)
    if tb.cfg.get("golden_strict") and skipped:
        raise AssertionError(f"golden cases that do not fit this tile: {skipped}")
    if tb.cfg.get("golden_required") and not ran:
        raise AssertionError(f"no golden case fits this tile: {skipped}")
    await tb.run()
    tb.finish(golden_ran=ran, golden_skipped=skipped)


@cocotb.test()
async def test_resnet_layer(dut):
    """Tiles of ResNet-18 CIFAR-10 layer1.0.conv1 (64 -> 64, 3x3, pad 1, 32x32, the demo's
    built-in layer ``resnet18_l1c1`` and seed, written for this tile's design by
    ``dqt_hw.golden.writer``): the reference model computes the whole layer, the tile
    computes ``resnet_blocks`` R x C blocks of it (K = 576), chosen by the seed."""
    blocks_n = Config().get("resnet_blocks", 0)
    if not blocks_n:
        return
    from dqt_hw.golden.writer import builtin_source, design_cases

    from ..golden import case_jobs

    tb = TB(dut)
    design = tb.cfg.design
    if design.n != 8:
        return
    pair = tuple(tb.cfg.get("resnet_pair", [8, 8]))
    case = design_cases(design, builtin_source("resnet18_l1c1"), [pair])[0].case()
    jobs = case_jobs(design, case)
    tb.rng.shuffle(jobs)  # a spread of blocks: rows (pixels) and column groups (channels)
    await tb.start()
    queue_jobs(tb, jobs[:blocks_n])
    await tb.run()
    tb.finish(resnet_blocks=blocks_n)
