"""cocotb bench of the AXI shell (docs/axi.md) with cocotbext-axi.

``AxiStreamSource`` on ``s_axis_act`` / ``s_axis_wgt`` (one frame per tile: tlast on its
last beat), ``AxiStreamSink`` on ``m_axis_out``, ``AxiLiteMaster`` on ``s_axil``, random
pause generators on all three streams. The register map comes from the sidecar
(``regmap``, read through :class:`dqt_hw.hw.axi_host.Regmap`), never retyped. An
:class:`~sim.tb.axis_check.AxisChecker` on every stream fails the test at the first
protocol violation, naming the stream and the cycle; the one on ``m_axis_out`` is the
scoreboard against the reference model (:class:`sim.models.TileModel`), the ones on the
inputs check that what reached the shell is what the bench meant to send.

Tests: groups of tiles sharing a bank, banks alternating between groups (the host waits
on STATUS.bank_busy and queue_full), a width switch between consecutive tiles, every
counter checked against what the checkers counted; the checkers' own proofs: a source
that drops a beat, and a driver that changes a stalled beat and lowers tvalid without a
handshake, are each named at once.
"""

from __future__ import annotations

import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)

from dqt_hw import spec
from dqt_hw.hw.axi_host import Regmap, command_writes, lane_writes
from dqt_hw.hw.reference import TileJob

from .. import models
from . import tb_tile
from .axis_check import AxisChecker
from .common import Config, bench_rng, write_summary

COUNTERS = ("TILES_DONE", "ACT_BEATS", "WGT_BEATS", "OUT_BEATS", "ACT_STALL", "WGT_STALL",
            "OUT_STALL", "CYCLES_BUSY")


def pauses(rng, p):
    """A cocotbext-axi pause generator: pause in a cycle with probability ``p``."""
    while True:
        yield rng.random() < p


class TB:
    random_lane = tb_tile.TB.random_lane  # the tile bench's stimulus, on the same fields
    random_job = tb_tile.TB.random_job

    def __init__(self, dut, *, record: bool = False, sources=("act", "wgt")):
        self.dut = dut
        self.cfg = Config()
        d = self.cfg.design
        self.R, self.C, self.n, self.signed = d.rows, d.cols, d.n, d.signed
        self.W, self.widths = d.acc_width, list(d.widths)
        self.kbits, self.ebits, self.sbits = d.kbits, d.ebits, d.sbits
        self.rng = bench_rng("axi")
        self.rm = Regmap(self.cfg.sidecar["regmap"])
        self.model = models.TileModel(self.n, self.signed, self.W, d.overflow, d.view_rounding,
                                      self.kbits)
        clk, rst = dut.aclk, dut.aresetn
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rst,
                                  reset_active_level=False)
        self.src = {s: AxiStreamSource(AxiStreamBus.from_prefix(dut, f"s_axis_{s}"), clk, rst,
                                       reset_active_level=False, byte_lanes=1)
                    for s in sources}
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_out"), clk, rst,
                                  reset_active_level=False, byte_lanes=1)
        p_idle, p_stall = self.cfg.get("p_idle", 0.0), self.cfg.get("p_stall", 0.0)
        for s, src in self.src.items():
            src.set_pause_generator(pauses(bench_rng(f"axi-{s}"), p_idle))
        self.sink.set_pause_generator(pauses(bench_rng("axi-out"), p_stall))
        self.chk = {"act": AxisChecker(dut, "s_axis_act", record=record),
                    "wgt": AxisChecker(dut, "s_axis_wgt", record=record),
                    "out": AxisChecker(dut, "m_axis_out", user=True, record=record)}
        self.pack = {s: self.cfg.packer(p) for s, p in (("act", "s_axis_act_tdata"),
                                                         ("wgt", "s_axis_wgt_tdata"),
                                                         ("out", "m_axis_out_tdata"))}
        self.cycle = 0
        self.jobs = 0
        self.rows = 0

    # ---- clock, reset, the checkers' sampling
    async def start(self):
        self.t0 = time.perf_counter()
        Clock(self.dut.aclk, 10, unit="ns").start()
        self.dut.aresetn.value = 0
        for _ in range(4):
            await RisingEdge(self.dut.aclk)
        cocotb.start_soon(self._sample())
        self.dut.aresetn.value = 1
        await RisingEdge(self.dut.aclk)

    async def _sample(self):
        fall = FallingEdge(self.dut.aclk)
        while True:
            await fall
            for c in self.chk.values():
                c.sample(self.cycle)
            self.cycle += 1

    async def cycles(self, n: int):
        for _ in range(n):
            await RisingEdge(self.dut.aclk)

    # ---- AXI4-Lite
    async def write(self, addr: int, word: int, *, expect=AxiResp.OKAY):
        r = await self.axil.write(addr, word.to_bytes(4, "little"))
        assert r.resp == expect, f"write {addr:#x} <- {word:#x}: {r.resp!r}, not {expect!r}"

    async def read(self, addr: int) -> int:
        r = await self.axil.read(addr, 4)
        assert r.resp == AxiResp.OKAY, f"read {addr:#x}: {r.resp!r}"
        return int.from_bytes(r.data, "little")

    async def reg(self, name: str) -> dict:
        return self.rm.decode(name, await self.read(self.rm.addr(name)))

    # ---- stimulus
    def beats(self, job: TileJob, stream: str) -> list[int]:
        """The tdata words of a job on ``act`` or ``wgt`` (padding random)."""
        d, r = self.cfg.design, self.rng
        lo, hi = spec.code_range(self.n, self.signed)
        size = self.R if stream == "act" else self.C
        if stream == "act":
            elems = [[job.a[i][k] if i < job.m else r.randint(lo, hi) for i in range(size)]
                     for k in range(job.k)]
        else:
            elems = [[job.w[k][j] if j < job.ncols else r.randint(lo, hi) for j in range(size)]
                     for k in range(job.k)]
        p = d.pack_factor(job.b_a, job.b_w)
        return self.pack[stream].pack_elements(elems, d.max_pack, p,
                                               lambda: [r.randint(lo, hi)] * size)

    def queue_data(self, job: TileJob, *, drop=None):
        """Queue a job's act / wgt frames (and what the checkers expect: all its beats),
        and its output rows from the model. ``drop`` = (stream, beat): a deliberately
        buggy source that leaves that beat out."""
        for s in self.src:
            words = self.beats(job, s)
            for t, w in enumerate(words):
                self.chk[s].expect((w, int(t == len(words) - 1), None),
                                   f"job {self.jobs} beat {t}")
            if drop and drop[0] == s:
                words = words[:drop[1]] + words[drop[1] + 1:]
            self.src[s].send_nowait(AxiStreamFrame(tdata=words))
        for i, row in enumerate(self.model(job)):
            codes = list(row) + [0] * (self.C - job.ncols)
            self.chk["out"].expect((self.pack["out"].pack_array("", codes), int(i == job.m - 1),
                                    i), f"job {self.jobs} row {i} (b_a={job.b_a} "
                                        f"b_w={job.b_w} K={job.k} b_out={job.b_out})")
        self.jobs += 1
        self.rows += job.m

    async def run_command(self, job: TileJob, lanes, bank: int, *, load: bool = True):
        """Load ``lanes`` (all C columns) into ``bank`` once it is free, then queue the
        command once the queue has room."""
        if load:
            while (await self.reg("STATUS"))["bank_busy"] >> bank & 1:
                pass
            for addr, word in lane_writes(self.rm, bank, lanes):
                await self.write(addr, word)
        while (await self.reg("STATUS"))["queue_full"]:
            pass
        for addr, word in command_writes(self.rm, job, bank=bank,
                                         depth_bits=self.cfg.design.depth_bits):
            await self.write(addr, word)

    async def drain(self, max_cycles: int):
        end = self.cycle + max_cycles
        while self.chk["out"].expected or any(not s.idle() for s in self.src.values()):
            await RisingEdge(self.dut.aclk)
            assert self.cycle < end, (f"no progress: {len(self.chk['out'].expected)} output "
                                      f"row(s) still expected after {max_cycles} cycles")
        await self.cycles(2 * (self.R + self.C) + 8)  # anything extra would show up


@cocotb.test()
async def test_tiles(dut):
    """Groups of tiles sharing a bank, banks alternating between groups, width switches
    between consecutive tiles, back-pressure everywhere; counters against the checkers."""
    tb = TB(dut)
    await tb.start()
    d = tb.cfg.design
    ident = await tb.reg("ID")
    assert ident["id"].to_bytes(4, "big") == b"DQTA"
    cap = await tb.reg("CAP0")
    assert (cap["rows"], cap["cols"], cap["n"]) == (d.rows, d.cols, d.n)
    groups = tb.cfg.get("groups", 4)
    pairs = [(a, w) for a in tb.widths for w in tb.widths]
    tb.rng.shuffle(pairs)
    plan = []
    for g in range(groups):
        first = tb.random_job()
        lanes = list(first.lanes) + [tb.random_lane(tb.rng, "any")
                                     for _ in range(tb.C - first.ncols)]
        for t in range(tb.rng.randint(1, 3)):
            job = tb.random_job(pair=pairs[len(plan) % len(pairs)])
            job = TileJob(job.a, job.w, job.b_a, job.b_w, job.b_out, job.rounding,
                          lanes[:job.ncols])
            plan.append((job, lanes, g % 2, t == 0))
            tb.queue_data(job)
    for job, lanes, bank, load in plan:
        await tb.run_command(job, lanes, bank, load=load)
    await tb.drain(50_000 + 50 * sum(j.k for j, *_ in plan))
    counts = {name: (await tb.reg(name))["count"] for name in COUNTERS}
    errors = await tb.reg("ERROR")
    status = await tb.reg("STATUS")
    frames = 0
    while not tb.sink.empty():
        tb.sink.recv_nowait()
        frames += 1
    for c in tb.chk.values():
        c.finish()
    assert not any(errors.values()), errors
    assert status["busy"] == 0 and status["queue_used"] == 0 and status["bank_busy"] == 0
    assert counts["TILES_DONE"] == len(plan)
    assert counts["ACT_BEATS"] == tb.chk["act"].beats
    assert counts["WGT_BEATS"] == tb.chk["wgt"].beats
    assert counts["OUT_BEATS"] == tb.chk["out"].beats == tb.rows
    assert counts["ACT_STALL"] == tb.chk["act"].stalls
    assert counts["WGT_STALL"] == tb.chk["wgt"].stalls
    assert counts["OUT_STALL"] == tb.chk["out"].stalls
    assert 0 < counts["CYCLES_BUSY"] < tb.cycle
    assert frames == sum(1 for j, *_ in plan if j.m)
    write_summary(checks=tb.rows, jobs=len(plan), cycles=tb.cycle,
                  banks_switched=groups - 1, out_stalls=counts["OUT_STALL"],
                  test_seconds=time.perf_counter() - tb.t0)


@cocotb.test()
async def test_checker_names_a_dropped_beat(dut):
    """A deliberately buggy act source leaves beat 3 of a tile out: the act checker names
    it at the very handshake where beat 4 arrives instead."""
    tb = TB(dut, record=True)
    await tb.start()
    job = tb.random_job(k=8, pair=(tb.n, tb.n))  # one element per beat: 8 beats
    lanes = list(job.lanes) + [tb.random_lane(tb.rng, "any") for _ in range(tb.C - job.ncols)]
    tb.queue_data(job, drop=("act", 3))
    await tb.run_command(job, lanes, 0)
    await tb.cycles(60)
    act = tb.chk["act"]
    assert act.violations, "the dropped beat went unnoticed"
    cycle, msg = act.violations[0]
    assert msg.startswith("s_axis_act: beat 3 dropped (job 0 beat 3)"), msg
    assert cycle == act.handshake_cycles[3], (cycle, act.handshake_cycles)
    assert f"at cycle {cycle} " in msg
    assert not tb.chk["wgt"].violations


@cocotb.test()
async def test_checker_names_protocol_violations(dut):
    """A hand-driven wgt stream (no command queued: the shell takes two beats into its
    register slice, then holds tready low): changing tdata while stalled, then lowering
    tvalid without a handshake, are each named in the cycle they happen."""
    tb = TB(dut, record=True, sources=("act",))
    await tb.start()
    wgt = tb.chk["wgt"]
    for w in (0x11, 0x22, 0x33):
        wgt.expect((w, 0, None))
    dut.s_axis_wgt_tlast.value = 0
    dut.s_axis_wgt_tvalid.value = 1
    for w in (0x11, 0x22):
        dut.s_axis_wgt_tdata.value = w
        await RisingEdge(dut.aclk)
    dut.s_axis_wgt_tdata.value = 0x33
    for _ in range(3):
        await RisingEdge(dut.aclk)
    assert int(dut.s_axis_wgt_tready.value) == 0 and wgt.beats == 2
    changed_at = tb.cycle
    dut.s_axis_wgt_tdata.value = 0x34  # changes while stalled
    await RisingEdge(dut.aclk)
    await RisingEdge(dut.aclk)
    dropped_at = tb.cycle
    dut.s_axis_wgt_tvalid.value = 0  # falls without a handshake
    await tb.cycles(3)
    msgs = [m for _, m in wgt.violations]
    assert [c for c, _ in wgt.violations] == [changed_at, dropped_at], wgt.violations
    assert msgs[0].startswith("s_axis_wgt: beat changed while stalled: tdata=0x33 tlast=0 -> "
                              "tdata=0x34 tlast=0"), msgs
    assert msgs[1].startswith("s_axis_wgt: tvalid fell without a handshake (beat 2"), msgs
