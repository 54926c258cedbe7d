"""The AXI shell (dqt_hw.hw.axi) in Amaranth's simulator: its AXI4-Lite register file
(read-only, read/write with byte strobes, sticky errors, refusals with SLVERR) and tiles
through its AXI4-Stream ports against tile_reference, with the counters checked against
what the bench sent; the register map itself (dqt_hw.hw.regmap)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from test_hw_tile import random_job, random_lane, reference

from dqt_hw.design import Design
from dqt_hw.hw.axi import AxiCore
from dqt_hw.hw.axi_host import Regmap, command_writes, lane_writes
from dqt_hw.hw.reference import TileJob
from dqt_hw.hw.regmap import register_map

OKAY, SLVERR = 0, 2

SMALL = Design(component="axi", name="axi_t", rows=2, cols=3, n=8, acc_width=20, kbits=16,
               ebits=3, sbits=5, depth_bits=6, queue_depth=2)


class Host:
    """AXI4-Lite master of a testbench (one transfer at a time)."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut
        self.rm = Regmap(dut.regmap.to_json())

    async def write(self, addr, value, strb=0xF):
        ctx, d = self.ctx, self.dut
        ctx.set(d.s_axil_awaddr, addr)
        ctx.set(d.s_axil_wdata, value & 0xFFFFFFFF)
        ctx.set(d.s_axil_wstrb, strb)
        ctx.set(d.s_axil_awvalid, 1)
        ctx.set(d.s_axil_wvalid, 1)
        await ctx.tick().until(d.s_axil_awready)
        ctx.set(d.s_axil_awvalid, 0)
        ctx.set(d.s_axil_wvalid, 0)
        assert ctx.get(d.s_axil_bvalid)
        resp = ctx.get(d.s_axil_bresp)
        ctx.set(d.s_axil_bready, 1)
        await ctx.tick()
        ctx.set(d.s_axil_bready, 0)
        return resp

    async def read(self, addr):
        ctx, d = self.ctx, self.dut
        ctx.set(d.s_axil_araddr, addr)
        ctx.set(d.s_axil_arvalid, 1)
        await ctx.tick().until(d.s_axil_arready)
        ctx.set(d.s_axil_arvalid, 0)
        assert ctx.get(d.s_axil_rvalid)
        data, resp = ctx.get(d.s_axil_rdata), ctx.get(d.s_axil_rresp)
        ctx.set(d.s_axil_rready, 1)
        await ctx.tick()
        ctx.set(d.s_axil_rready, 0)
        return data, resp

    async def reg(self, name):
        data, resp = await self.read(self.rm.addr(name))
        assert resp == OKAY, name
        return self.rm.decode(name, data)

    async def writes(self, pairs):
        for addr, word in pairs:
            assert await self.write(addr, word) == OKAY, hex(addr)


def beats(tile, job, lo=0, hi=255, rng=None):
    """The act and wgt tdata words of a job (8-bit codes, element i / j at bits 8i),
    padding rows / columns random."""
    rng = rng or random.Random(0)
    acts, wgts = [], []
    for k in range(job.k):
        a = [job.a[i][k] if i < job.m else rng.randint(lo, hi) for i in range(tile.rows)]
        w = [job.w[k][j] if j < job.ncols else rng.randint(lo, hi) for j in range(tile.cols)]
        acts.append(sum((c & 0xFF) << (8 * i) for i, c in enumerate(a)))
        wgts.append(sum((c & 0xFF) << (8 * j) for j, c in enumerate(w)))
    return acts, wgts


def run(dut, host_script, *, act=(), wgt=(), rows=0, p_gap=0.0, p_stall=0.0, seed=0,
        act_last=None):
    """Simulate ``dut`` (an AxiCore): ``host_script(host)`` on AXI4-Lite, the act / wgt
    words (tlast on each word where ``act_last`` / the last of each tile says) with random
    gaps, a sink taking ``rows`` output rows with random back-pressure. Returns the rows
    (word, tuser, tlast) and what the drivers counted."""
    got, seen = [], {"act_stall": 0, "wgt_stall": 0, "out_stall": 0, "cycles": 0}

    def driver(name, words):
        async def proc(ctx):
            r = random.Random(f"{seed}-{name}")
            tdata = getattr(dut, f"s_axis_{name}_tdata")
            tvalid = getattr(dut, f"s_axis_{name}_tvalid")
            tlast = getattr(dut, f"s_axis_{name}_tlast")
            tready = getattr(dut, f"s_axis_{name}_tready")
            for word, last in words:
                while r.random() < p_gap:
                    ctx.set(tvalid, 0)
                    await ctx.tick()
                ctx.set(tdata, word)
                ctx.set(tlast, last)
                ctx.set(tvalid, 1)
                while True:
                    *_, ready = await ctx.tick().sample(tready)
                    if ready:
                        break
                    seen[f"{name}_stall"] += 1
            ctx.set(tvalid, 0)
        return proc

    async def sink(ctx):
        r = random.Random(f"{seed}-out")
        while len(got) < rows:
            ready = r.random() >= p_stall
            ctx.set(dut.m_axis_out_tready, ready)
            *_, valid, data, user, last = await ctx.tick().sample(
                dut.m_axis_out_tvalid, dut.m_axis_out_tdata, dut.m_axis_out_tuser,
                dut.m_axis_out_tlast)
            seen["cycles"] += 1
            if valid and ready:
                got.append((data, user, last))
            elif valid:
                seen["out_stall"] += 1
            assert seen["cycles"] < 20_000, "no progress"
        ctx.set(dut.m_axis_out_tready, 1)

    async def host(ctx):
        await host_script(Host(ctx, dut))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host)
    sim.add_testbench(driver("act", list(act)))
    sim.add_testbench(driver("wgt", list(wgt)))
    sim.add_testbench(sink)
    sim.run()
    return got, seen


def with_last(words_per_job):
    out = []
    for words in words_per_job:
        out += [(w, int(i == len(words) - 1)) for i, w in enumerate(words)]
    return out


def unpack_row(word, cols):
    return [(word >> (8 * j)) & 0xFF for j in range(cols)]


# ------------------------------------------------------------------------- register file


def test_identification_and_capabilities():
    dut = AxiCore(SMALL)
    out = {}

    async def script(h):
        out["id"] = (await h.read(h.rm.addr("ID")))[0]
        out["version"] = await h.reg("VERSION")
        for r in ("CAP0", "CAP1", "CAP2", "CAP3"):
            out[r] = await h.reg(r)

    run(dut, script)
    assert out["id"].to_bytes(4, "big") == b"DQTA"
    assert out["version"] == {"regmap": 1, "contract_minor": 0, "contract_major": 1}
    assert out["CAP0"] == {"rows": 2, "cols": 3, "n": 8, "signed": 0, "overflow": 0,
                           "view_rounding": 0, "max_pack": 1}
    assert out["CAP1"] == {"acc_width": 20, "depth_bits": 6, "kbits": 16, "ebits": 3,
                           "sbits": 5}
    assert out["CAP2"] == {"widths": 0b1_1111_1110}  # widths 1..8
    assert out["CAP3"] == {"queue_depth": 2, "banks": 2}


def test_refusals_strobes_and_sticky_errors():
    """SLVERR for an unmapped address (read and write) and a read-only register; wstrb
    writes bytes; a bank named by a queued command refuses writes (SLVERR,
    ERROR.bank_in_use) until the command retires; a full queue and a bad shape refuse the
    push; ERROR clears with 1s; CTRL.clear_counters zeroes the counters."""
    dut = AxiCore(SMALL)
    rm = Regmap(dut.regmap.to_json())
    mapped = {r["offset"] for r in rm.table["registers"]}
    hole = next(a for a in range(0, 1 << rm.table["addr_width"], 4) if a not in mapped)
    k1 = rm.addr("BANK0_LANE0_K1")
    e = rm.addr("BANK0_LANE1_E")
    s1 = rm.addr("BANK1_LANE0_S")
    log = {}

    async def script(h):
        log["hole_read"] = await h.read(hole)
        log["hole_write"] = await h.write(hole, 1)
        log["id_write"] = await h.write(rm.addr("ID"), 0)
        log["id"] = (await h.read(rm.addr("ID")))[0]
        await h.write(k1, 0x1234)
        log["k1_strobe"] = await h.write(k1, 0xFFFFAB00, strb=0b0010)
        log["k1"] = (await h.read(k1))[0]
        await h.write(e, rm.encode("BANK0_LANE1_E", e1=1, e2=2, e3=3, e4=4))
        await h.write(e, rm.encode("BANK0_LANE1_E", e1=7, e2=7, e3=7, e4=7), strb=0b0100)
        log["e"] = await h.reg("BANK0_LANE1_E")
        # a bad shape: m = R + 1
        await h.write(rm.addr("CMD_SHAPE"), rm.encode("CMD_SHAPE", m=3, ncols=3))
        log["bad"] = await h.write(rm.addr("DOORBELL"), 1)
        log["err_bad"] = await h.reg("ERROR")
        await h.write(rm.addr("ERROR"), 0xFFFFFFFF)
        # two commands on bank 0 (no act/wgt data yet: they stay queued), then a third
        await h.write(rm.addr("CMD_SHAPE"), rm.encode("CMD_SHAPE", m=2, ncols=3))
        await h.write(rm.addr("CMD_K"), 4)
        log["push"] = [await h.write(rm.addr("DOORBELL"), 1) for _ in range(3)]
        log["status"] = await h.reg("STATUS")
        log["bank0"] = await h.write(k1, 0x55)
        log["k1_after"] = (await h.read(k1))[0]
        log["bank1"] = await h.write(s1, 9)
        log["err"] = await h.reg("ERROR")
        await h.write(rm.addr("ERROR"), rm.encode("ERROR", push_full=1))
        log["err_partial"] = await h.reg("ERROR")
        await h.write(rm.addr("ERROR"), 0xFFFFFFFF)
        log["err_clear"] = await h.reg("ERROR")
        log["busy_before"] = (await h.reg("CYCLES_BUSY"))["count"]
        await h.write(rm.addr("CTRL"), 1)
        log["busy_after"] = (await h.reg("CYCLES_BUSY"))["count"]

    run(dut, script)
    assert log["hole_read"] == (0, SLVERR)
    assert log["hole_write"] == SLVERR and log["id_write"] == SLVERR
    assert log["id"] == 0x44515441
    assert log["k1_strobe"] == OKAY
    assert log["k1"] == 0xFFFFAB34  # byte 1 written; K1 is 16-bit signed: sign-extended
    assert log["e"] == {"e1": 1, "e2": 2, "e3": 7, "e4": 4}
    assert log["bad"] == SLVERR and log["err_bad"]["bad_shape"] == 1
    assert log["push"] == [OKAY, OKAY, SLVERR]
    st = log["status"]
    assert (st["queue_used"], st["cmd_pending"], st["queue_full"], st["bank_busy"]) == \
        (2, 2, 1, 0b01)
    assert st["busy"] == 1
    assert log["bank0"] == SLVERR and log["k1_after"] == 0xFFFFAB34  # unchanged
    assert log["bank1"] == OKAY
    assert log["err"] == {"push_full": 1, "bank_in_use": 1, "bad_shape": 0, "act_tlast": 0,
                          "wgt_tlast": 0}
    assert log["err_partial"]["push_full"] == 0 and log["err_partial"]["bank_in_use"] == 1
    assert not any(log["err_clear"].values())
    assert log["busy_before"] > 20 and log["busy_after"] <= 4


# ------------------------------------------------------------------------- tiles


def test_tiles_through_the_shell_with_bank_switches():
    """Six tiles, banks alternating (the host loads the other bank while one is in use,
    waiting on STATUS.bank_busy and queue_full), a width switch between tiles, random
    gaps on act / wgt and back-pressure on out: every row equals tile_reference, tuser is
    the row index, tlast the last row, and the counters equal what the bench counted."""
    dut = AxiCore(SMALL)
    tile = dut.tile
    rng = random.Random("axi-tiles")
    jobs = [random_job(rng, tile) for _ in range(5)]
    jobs.append(random_job(rng, tile, k=1))  # shorter than min_period
    rm = Regmap(dut.regmap.to_json())
    packed = [beats(tile, j, rng=rng) for j in jobs]
    acts = with_last([a for a, _ in packed])
    wgts = with_last([w for _, w in packed])
    rows = sum(j.m for j in jobs)
    counters = {}

    async def script(h):
        for i, job in enumerate(jobs):
            bank = i % 2
            while (await h.reg("STATUS"))["bank_busy"] >> bank & 1:
                pass
            lanes = list(job.lanes) + [random_lane(rng, tile, "any")
                                       for _ in range(tile.cols - job.ncols)]
            await h.writes(lane_writes(rm, bank, lanes))
            while (await h.reg("STATUS"))["queue_full"]:
                pass
            await h.writes(command_writes(rm, job, bank=bank, depth_bits=tile.depth_bits))
        while (await h.reg("STATUS"))["busy"]:
            pass
        for name in ("TILES_DONE", "ACT_BEATS", "WGT_BEATS", "OUT_BEATS", "ACT_STALL",
                     "WGT_STALL", "OUT_STALL", "CYCLES_BUSY", "ACT_STARVE", "WGT_STARVE"):
            counters[name] = (await h.reg(name))["count"]
        counters["ERROR"] = await h.reg("ERROR")

    got, seen = run(dut, script, act=acts, wgt=wgts, rows=rows, p_gap=0.3, p_stall=0.3,
                    seed=1)
    pos = 0
    for job in jobs:
        mine = got[pos:pos + job.m]
        pos += job.m
        assert [u for _, u, _ in mine] == list(range(job.m))
        assert [t for _, _, t in mine] == [0] * (job.m - 1) + [1]
        codes = [unpack_row(w, tile.cols) for w, _, _ in mine]
        assert all(c[job.ncols:] == [0] * (tile.cols - job.ncols) for c in codes)
        assert [c[:job.ncols] for c in codes] == reference(tile, job)
    assert counters["TILES_DONE"] == len(jobs)
    assert counters["ACT_BEATS"] == counters["WGT_BEATS"] == len(acts)
    assert counters["OUT_BEATS"] == rows
    assert counters["ACT_STALL"] == seen["act_stall"]
    assert counters["WGT_STALL"] == seen["wgt_stall"]
    assert counters["OUT_STALL"] == seen["out_stall"]
    assert 0 < counters["CYCLES_BUSY"] <= seen["cycles"] + 200
    assert 0 < counters["ACT_STARVE"] < counters["CYCLES_BUSY"]
    assert not any(counters["ERROR"].values())


def test_tlast_disagreeing_with_the_command_is_flagged():
    """tlast low on the last act beat and high on a middle wgt beat: ERROR.act_tlast and
    ERROR.wgt_tlast are set; the tile still runs as the command says."""
    dut = AxiCore(SMALL)
    tile = dut.tile
    rng = random.Random("axi-tlast")
    job = random_job(rng, tile, k=5, m=2)
    rm = Regmap(dut.regmap.to_json())
    acts, wgts = beats(tile, job, rng=rng)
    out = {}

    async def script(h):
        await h.writes(lane_writes(rm, 0, job.lanes + [random_lane(rng, tile, "any")] *
                                   (tile.cols - job.ncols)))
        await h.writes(command_writes(rm, job, bank=0, depth_bits=tile.depth_bits))
        while (await h.reg("STATUS"))["busy"]:
            pass
        out["err"] = await h.reg("ERROR")

    got, _ = run(dut, script, act=[(w, 0) for w in acts],
                 wgt=[(w, int(i == 2)) for i, w in enumerate(wgts)], rows=job.m)
    assert out["err"]["act_tlast"] == 1 and out["err"]["wgt_tlast"] == 1
    assert [unpack_row(w, tile.cols)[:job.ncols] for w, _, _ in got] == reference(tile, job)


# ------------------------------------------------------------------------- register map


def test_register_map_is_consistent():
    """Offsets distinct and word aligned, fields inside 32 bits and disjoint, every lane
    constant of both banks present, K wider than 32 bits split over _HI registers."""
    for d in (SMALL, Design(component="axi", rows=3, cols=5, kbits=40, queue_depth=16)):
        rm = register_map(d)
        offsets = [r.offset for r in rm.registers]
        assert len(set(offsets)) == len(offsets) and all(o % 4 == 0 for o in offsets)
        assert max(offsets) < 1 << rm.addr_width
        for r in rm.registers:
            bits = 0
            for f in r.fields:
                assert 0 <= f.lsb and f.lsb + f.width <= 32, (r.name, f.name)
                assert not bits & f.mask, (r.name, f.name)
                bits |= f.mask
        values = {f.value for r in rm.registers for f in r.fields}
        for b in range(2):
            for j in range(d.cols):
                for c in ("k1", "k2", "k3", "k4", "e1", "e2", "e3", "e4", "s"):
                    assert f"bank{b}.lane{j}.{c}" in values
        if d.kbits > 32:
            hi = rm.lane_register(1, 4, "K3_HI").fields[0]
            assert (hi.part, hi.width, hi.signed) == (32, d.kbits - 32, True)


def test_register_map_refuses_other_components():
    with pytest.raises(ValueError, match=r"^a register map belongs to an axi design, not a "
                                         r"tile$"):
        register_map(Design())
    with pytest.raises(ValueError, match=r"^queue_depth must be one of \(2, 4, 8, 16\), "
                                         r"not 3$"):
        Design(component="axi", queue_depth=3)
    with pytest.raises(ValueError, match=r"^parameter 'queue_depth' is not one of the tile"):
        Design(queue_depth=8)


def test_host_encode_refuses_a_value_that_does_not_fit():
    rm = Regmap(register_map(SMALL).to_json())
    with pytest.raises(ValueError, match=r"^CMD_SHAPE.m = 4 does not fit \[0, 3\]$"):
        rm.encode("CMD_SHAPE", m=4)


def test_a_tile_job_type_is_shared():
    """The host helpers take the reference model's TileJob."""
    job = TileJob(a=[[1]], w=[[2]], b_a=8, b_w=8, b_out=8, rounding="floor", lanes=[])
    rm = Regmap(register_map(SMALL).to_json())
    writes = command_writes(rm, job, bank=1, depth_bits=SMALL.depth_bits)
    assert [a for a, _ in writes] == [rm.addr(n) for n in ("CMD_K", "CMD_CFG", "CMD_SHAPE",
                                                           "DOORBELL")]
    assert rm.decode("CMD_CFG", writes[1][1])["bank"] == 1


def test_no_combinational_path_between_interfaces():
    """Yosys's netlist of the core: every output is a register except awready / wready,
    which are of awvalid and wvalid only (docs/axi.md, "Handshakes"); rst reaches none."""
    from test_hw_protocol import comb_cones

    cones, inputs = comb_cones(AxiCore(SMALL))
    assert "rst" in inputs and "m_axis_out_tready" in inputs
    both = {"s_axil_awvalid", "s_axil_wvalid"}
    assert cones.pop("s_axil_awready") == cones.pop("s_axil_wready") == both
    assert all(c == set() for c in cones.values()), {k: v for k, v in cones.items() if v}
