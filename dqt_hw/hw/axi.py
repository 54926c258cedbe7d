"""The AXI shell: the tile behind AXI4-Stream data ports and an AXI4-Lite register file.

:class:`AxiShell` (component ``axi``, docs/axi.md) is the drop-in IP: ports with AXI names
(``aclk``, active-low ``aresetn``, ``s_axis_act_*``, ``s_axis_wgt_*``, ``m_axis_out_*``,
``s_axil_*``). :class:`AxiCore` is the same logic in Amaranth's ``sync`` domain (clock
``clk``, active-high synchronous ``rst``), which the shell wraps with the AXI clock and
reset; Amaranth-level tests simulate the core.

Inside:

- **Register slices** on ``s_axis_act`` and ``s_axis_wgt`` (two entries each): the AXI
  ``tready`` outputs are registers, so no input of another interface reaches them
  within a cycle. ``m_axis_out`` is the tile's ``out`` register itself (valid and data
  are registers, held until the transfer); ``tuser`` is the row index.
- **The command queue** (``queue_depth`` entries): a DOORBELL write pushes the staged
  command {K, b_a, b_w, m, ncols, b_out, rounding, bank}. Two read pointers feed the
  tile: ``cmd`` (K, b_a, b_w; advances when the tile takes the command with its last
  step) and ``rq`` (M, N, b_out, rounding and the lanes of the command's bank; advances
  when the tile has drained the tile's rows). So the next tile starts while the previous
  one drains, and a width switch between tiles costs no cycle.
- **Two constant banks** (ping-pong): a bank named by a command that is not yet retired
  (its rq not yet taken) is *busy* (STATUS.bank_busy); a write into a busy bank is
  refused (SLVERR, ERROR.bank_in_use) and changes nothing.
- **The register decode**, generated from :func:`dqt_hw.hw.regmap.register_map` (one
  write and one read in flight; writes honour ``wstrb`` byte by byte).
"""

from __future__ import annotations

from amaranth import (Array, Cat, ClockDomain, Const, Module, Mux, Shape, Signal, Value, signed,
                      unsigned)
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ._params import validated_init
from .regmap import BANKS, COUNTERS, ERRORS, register_map
from .tile import Tile

__all__ = ["AxiCore", "AxiShell", "RegisterSlice", "stream_fields"]

OKAY, SLVERR = 0, 2


def _bytes(bits: int) -> int:
    return 8 * -(-bits // 8)


class RegisterSlice(wiring.Component):
    """A two-entry register slice (skid buffer) on a valid/ready stream: full throughput,
    ``i.ready`` and ``o.valid`` are registers (no combinational path through it)."""

    def __init__(self, width: int):
        self.width = width
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal(self.width, name="skid")
        skid_valid = Signal(name="skid_valid")
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += self.o.valid.eq(self.i.valid)
                with m.If(self.i.valid):
                    m.d.sync += self.o.payload.eq(self.i.payload)
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m


def stream_fields(tile: Tile) -> dict:
    """{tdata port: its data layout}: the tile's act / wgt payloads and out codes."""
    return {"s_axis_act_tdata": tile.act_layout, "s_axis_wgt_tdata": tile.wgt_layout,
            "m_axis_out_tdata": tile.out_layout["codes"].shape}


def _signature(tile: Tile, addr_width: int) -> dict:
    lay = stream_fields(tile)
    members = {}
    for name, flow in (("s_axis_act", In), ("s_axis_wgt", In)):
        back = Out if flow == In else In
        members[f"{name}_tdata"] = flow(_bytes(Shape.cast(lay[f"{name}_tdata"]).width))
        members[f"{name}_tvalid"] = flow(1)
        members[f"{name}_tready"] = back(1)
        members[f"{name}_tlast"] = flow(1)
    members["m_axis_out_tdata"] = Out(_bytes(Shape.cast(lay["m_axis_out_tdata"]).width))
    members["m_axis_out_tuser"] = Out(Shape.cast(tile.out_layout["row"].shape).width)
    members["m_axis_out_tvalid"] = Out(1)
    members["m_axis_out_tready"] = In(1)
    members["m_axis_out_tlast"] = Out(1)
    axil = (("awaddr", In, addr_width), ("awvalid", In, 1), ("awready", Out, 1),
            ("wdata", In, 32), ("wstrb", In, 4), ("wvalid", In, 1), ("wready", Out, 1),
            ("bresp", Out, 2), ("bvalid", Out, 1), ("bready", In, 1),
            ("araddr", In, addr_width), ("arvalid", In, 1), ("arready", Out, 1),
            ("rdata", Out, 32), ("rresp", Out, 2), ("rvalid", Out, 1), ("rready", In, 1))
    for name, flow, width in axil:
        members[f"s_axil_{name}"] = flow(width)
    return members


class AxiCore(wiring.Component):
    """The shell's logic in the ``sync`` domain (``clk``, active-high ``rst``); the ports
    are those of :class:`AxiShell` less ``aclk`` and ``aresetn``."""

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("axi", design, params)
        self.regmap = register_map(d)
        self.tile = Tile(d.sub("tile"))
        super().__init__(_signature(self.tile, self.regmap.addr_width))

    def elaborate(self, platform):
        m = Module()
        tile = self.tile
        m.submodules.tile = tile
        regs = _Registers(self, m)
        self._data_streams(m, tile, regs)
        self._queue(m, tile, regs)
        regs.decode()
        return m

    # ---------------------------------------------------------------- data streams

    def _data_streams(self, m, tile, regs):
        for name, port in (("act", tile.act), ("wgt", tile.wgt)):
            bits = Shape.cast(getattr(tile, f"{name}_layout")).width
            sl = m.submodules[f"{name}_slice"] = RegisterSlice(bits + 1)
            tdata = getattr(self, f"s_axis_{name}_tdata")
            tvalid = getattr(self, f"s_axis_{name}_tvalid")
            tready = getattr(self, f"s_axis_{name}_tready")
            m.d.comb += [
                sl.i.payload.eq(Cat(tdata[:bits], getattr(self, f"s_axis_{name}_tlast"))),
                sl.i.valid.eq(tvalid),
                tready.eq(sl.i.ready),
                port.payload.as_value().eq(sl.o.payload[:bits]),
                port.valid.eq(sl.o.valid),
                sl.o.ready.eq(port.ready),
            ]
            taken = sl.o.valid & port.ready
            # tlast must be high exactly on a tile's last beat: the one taken with cmd
            regs.error(f"{name}_tlast", taken & (sl.o.payload[bits] != tile.cmd.ready))
            regs.count(f"{name}_beats", tvalid & tready)
            regs.count(f"{name}_stall", tvalid & ~tready)
            regs.count(f"{name}_starve", tile.cmd.valid & ~sl.o.valid)
        out = tile.out
        m.d.comb += [
            self.m_axis_out_tdata.eq(out.payload.codes.as_value()),
            self.m_axis_out_tuser.eq(out.payload.row),
            self.m_axis_out_tlast.eq(out.payload.last),
            self.m_axis_out_tvalid.eq(out.valid),
            out.ready.eq(self.m_axis_out_tready),
        ]
        regs.count("out_beats", out.valid & self.m_axis_out_tready)
        regs.count("out_stall", out.valid & ~self.m_axis_out_tready)

    # ---------------------------------------------------------------- command queue

    def _queue(self, m, tile, regs):
        d = self.design
        depth = d.queue_depth
        ib = (depth - 1).bit_length()
        cmd_l, rq_l = tile.cmd_layout, tile.rq_layout
        entry = data.StructLayout({
            "k": cmd_l["k"].shape, "b_a": cmd_l["b_a"].shape, "b_w": cmd_l["b_w"].shape,
            "m": rq_l["m"].shape, "ncols": rq_l["ncols"].shape, "b_out": rq_l["b_out"].shape,
            "rounding": rq_l["rounding"].shape, "bank": unsigned(1)})
        slots = [Signal(Shape.cast(entry).width, name=f"queue{i}") for i in range(depth)]
        wp, cp, rp = (Signal(ib + 1, name=f"{p}_ptr") for p in ("push", "cmd", "rq"))
        used = Signal(ib + 1, name="queue_used")
        pending = Signal(ib + 1, name="cmd_pending")
        m.d.comb += [used.eq(wp - rp), pending.eq(wp - cp)]
        full = Signal(name="queue_full")
        m.d.comb += full.eq(used == depth)

        # push: the staged command (DOORBELL), refused when full or m / ncols too large
        staged = Signal(entry, name="staged")
        for key in ("k", "b_a", "b_w", "m", "ncols", "b_out", "rounding", "bank"):
            m.d.comb += staged[key].eq(regs.store[f"cmd.{key}"])
        bad = Signal(name="bad_shape")
        # (only where the field can hold more: no constant comparison in the Verilog)
        over = [staged[f] > top for f, top in (("m", d.rows), ("ncols", d.cols))
                if (1 << len(staged[f])) - 1 > top]
        m.d.comb += bad.eq(Cat(*over).any() if over else 0)
        regs.refuse("doorbell.push", full, "push_full")
        regs.refuse("doorbell.push", ~full & bad, "bad_shape")
        push = regs.pulse("doorbell.push")  # a write of 1 that was not refused
        with m.If(push):
            m.d.sync += wp.eq(wp + 1)
        for i, s in enumerate(slots):
            # (no comparison with a constant 0: Yosys writes it as a multi-bit `!x`)
            at = (wp[:ib] == i) if i else ~wp[:ib].any()
            with m.If(push & at):
                m.d.sync += s.eq(staged)

        # the tile's cmd and rq streams: two read pointers into the same entries
        head_c = Signal(entry, name="cmd_head")
        head_r = Signal(entry, name="rq_head")
        m.d.comb += [head_c.eq(Array(slots)[cp[:ib]]), head_r.eq(Array(slots)[rp[:ib]])]
        m.d.comb += [
            tile.cmd.valid.eq(cp != wp),
            tile.cmd.payload.k.eq(head_c.k),
            tile.cmd.payload.b_a.eq(head_c.b_a),
            tile.cmd.payload.b_w.eq(head_c.b_w),
            tile.rq.valid.eq(rp != wp),
            tile.rq.payload.m.eq(head_r.m),
            tile.rq.payload.ncols.eq(head_r.ncols),
            tile.rq.payload.b_out.eq(head_r.b_out),
            tile.rq.payload.rounding.eq(head_r.rounding),
        ]
        for j in range(d.cols):
            lane = tile.rq.payload.lanes[j]
            for key in ("k1", "k2", "k3", "k4", "e1", "e2", "e3", "e4", "s"):
                m.d.comb += lane[key].eq(Mux(head_r.bank, regs.store[f"bank1.lane{j}.{key}"],
                                             regs.store[f"bank0.lane{j}.{key}"]))
        with m.If(tile.cmd.valid & tile.cmd.ready):
            m.d.sync += cp.eq(cp + 1)
        retire = tile.rq.valid & tile.rq.ready
        with m.If(retire):
            m.d.sync += rp.eq(rp + 1)
        regs.count("tiles_done", retire)

        # a bank is busy while a command not yet retired names it
        live = []  # slot i holds a command not yet retired: (i - rp) mod depth < used
        for i in range(depth):
            age = Signal(ib, name=f"queue{i}_age")
            m.d.comb += age.eq(Const(i, ib) - rp[:ib])
            live.append(age < used)
        busy_banks = Signal(BANKS, name="bank_busy")
        for b in range(BANKS):
            refs = [lv & (s[entry["bank"].offset] == b) for lv, s in zip(live, slots)]
            m.d.comb += busy_banks[b].eq(Cat(*refs).any())
        busy = Signal(name="busy")
        m.d.comb += busy.eq((wp != rp) | self.m_axis_out_tvalid)
        regs.count("cycles_busy", busy)
        regs.live.update({"status.busy": busy, "status.queue_full": full,
                          "status.queue_used": used, "status.cmd_pending": pending,
                          "status.bank_busy": busy_banks})
        regs.bank_busy = busy_banks


class _Registers:
    """The register file of :class:`AxiCore`, built from its register map: storage for
    the ``rw`` values, sticky ``w1c`` bits, ``w1p`` pulses, counters, and the AXI4-Lite
    decode (:meth:`decode`)."""

    def __init__(self, core: AxiCore, m: Module):
        self.core, self.m, self.rm = core, m, core.regmap
        self.store, self.live, self.sticky, self.pulses = {}, {}, {}, {}
        self.events = {name: [] for name, _ in ERRORS}
        self.refusals = {}  # pulse value -> [(condition, error name)]
        self.bank_busy = None
        widths = {}
        for r in self.rm.registers:
            for f in r.fields:
                if f.access == "rw":
                    w, sg = widths.get(f.value, (0, False))
                    widths[f.value] = (max(w, f.part + f.width), sg or f.signed)
        for value, (w, sg) in widths.items():
            self.store[value] = Signal(signed(w) if sg else unsigned(w),
                                       name=value.replace(".", "_"))
        for name, _ in ERRORS:
            self.sticky[f"error.{name}"] = Signal(name=f"error_{name}")
        for value in ("ctrl.clear_counters", "doorbell.push"):
            self.pulses[value] = Signal(name=value.replace(".", "_"))
        self.counters = {name: Signal(32, name=f"count_{name}") for name, _ in COUNTERS}
        for name, sig in self.counters.items():
            self.live[f"count.{name}"] = sig

    def pulse(self, value: str):
        return self.pulses[value]

    def refuse(self, value: str, condition, error: str):
        """A write of 1 to the pulse ``value`` under ``condition`` is refused (SLVERR,
        no pulse) and sets ERROR.<error>."""
        self.refusals.setdefault(value, []).append((condition, error))

    def error(self, name: str, event):
        self.events[name].append(event)

    def count(self, name: str, event):
        clear = self.pulses["ctrl.clear_counters"]
        c = self.counters[name]
        with self.m.If(clear):
            self.m.d.sync += c.eq(0)
        with self.m.Elif(event):
            self.m.d.sync += c.eq(c + 1)

    # ---------------------------------------------------------------- decode

    def _read_value(self, reg):
        bits = [Const(0, 1)] * 32
        for f in reg.fields:
            if f.value == "const":
                src = Const(f.const, f.width)
            elif f.access == "w1p":
                continue
            else:
                full = self.store.get(f.value)
                if full is None:
                    full = self.sticky.get(f.value, self.live.get(f.value))
                src = Value.cast(full)[f.part:f.part + f.width]
            for i in range(f.width):
                bits[f.lsb + i] = src[i]
            if f.signed:
                for i in range(f.lsb + f.width, 32):
                    bits[i] = src[f.width - 1]
        return Cat(*bits)

    def decode(self):
        m, core, rm = self.m, self.core, self.rm
        aw_ok = Signal(name="axil_write")
        m.d.comb += aw_ok.eq(core.s_axil_awvalid & core.s_axil_wvalid & ~core.s_axil_bvalid)
        m.d.comb += [core.s_axil_awready.eq(aw_ok), core.s_axil_wready.eq(aw_ok)]
        wdata, wstrb = core.s_axil_wdata, core.s_axil_wstrb
        resp = Signal(2, name="axil_bresp_next")
        sets = {name: Signal(name=f"error_{name}_set") for name, _ in ERRORS}
        clears = {name: Signal(name=f"error_{name}_clear") for name, _ in ERRORS}

        def strobed(bit):
            return wstrb[bit // 8] & wdata[bit]

        # one comparator per writable register (no case statement: each storage bit is
        # written in one branch only)
        widx = core.s_axil_awaddr[2:]
        accepted = []
        for reg in rm.registers:
            if reg.writable:
                sel = Signal(name=f"write_{reg.name.lower()}")
                m.d.comb += sel.eq(aw_ok & (widx == reg.offset // 4))
                accepted.append(self._write(reg, sel, clears, sets, strobed))
        m.d.comb += resp.eq(Mux(Cat(*accepted).any(), OKAY, SLVERR))
        with m.If(aw_ok):
            m.d.sync += [core.s_axil_bvalid.eq(1), core.s_axil_bresp.eq(resp)]
        with m.Elif(core.s_axil_bready):
            m.d.sync += core.s_axil_bvalid.eq(0)

        # sticky errors: a hardware event wins over a clear in the same cycle
        for name, _ in ERRORS:
            bit = self.sticky[f"error.{name}"]
            events = self.events[name] + [sets[name]]
            with m.If(Cat(*events).any()):
                m.d.sync += bit.eq(1)
            with m.Elif(clears[name]):
                m.d.sync += bit.eq(0)

        # reads
        m.d.comb += core.s_axil_arready.eq(~core.s_axil_rvalid)
        with m.If(core.s_axil_arvalid & ~core.s_axil_rvalid):
            m.d.sync += core.s_axil_rvalid.eq(1)
            with m.Switch(core.s_axil_araddr[2:]):
                for reg in rm.registers:
                    with m.Case(reg.offset // 4):
                        m.d.sync += [core.s_axil_rresp.eq(OKAY),
                                     core.s_axil_rdata.eq(self._read_value(reg))]
                with m.Default():
                    m.d.sync += [core.s_axil_rresp.eq(SLVERR), core.s_axil_rdata.eq(0)]
        with m.Elif(core.s_axil_rready):
            m.d.sync += core.s_axil_rvalid.eq(0)

    def _write(self, reg, sel, clears, sets, strobed):
        """The effects of a write to ``reg`` (selected by ``sel``); returns the signal
        "accepted" (OKAY), low when the write is refused."""
        m = self.m
        core = self.core
        wdata, wstrb = core.s_axil_wdata, core.s_axil_wstrb
        allowed = Const(1, 1)
        if reg.group == "lane":
            bank = reg.offset // self.rm.bank_stride - 1
            busy = self.bank_busy[bank]
            with m.If(sel & busy):
                m.d.comb += sets["bank_in_use"].eq(1)
            allowed = ~busy
        for f in reg.fields:
            if f.access == "w1p":
                hit = strobed(f.lsb)
                ok = hit
                for cond, err in self.refusals.get(f.value, []):
                    with m.If(sel & hit & cond):
                        m.d.comb += sets[err].eq(1)
                    ok = ok & ~cond
                allowed = allowed & ~(hit & ~ok)
                with m.If(sel):
                    m.d.comb += self.pulses[f.value].eq(ok)
        accepted = Signal(name=f"write_{reg.name.lower()}_ok")
        m.d.comb += accepted.eq(sel & allowed)
        with m.If(accepted):
            for f in reg.fields:
                if f.access == "rw":
                    store = Value.cast(self.store[f.value])
                    cur = store[f.part:f.part + f.width]
                    mask = Cat(*(wstrb[(f.lsb + i) // 8] for i in range(f.width)))
                    new = (cur & ~mask) | (wdata[f.lsb:f.lsb + f.width] & mask)
                    m.d.sync += store[f.part:f.part + f.width].eq(new)
                elif f.access == "w1c":
                    m.d.comb += clears[f.value.split(".", 1)[1]].eq(strobed(f.lsb))
        return accepted


class AxiShell(wiring.Component):
    """The drop-in IP: :class:`AxiCore` on the AXI clock ``aclk`` with the active-low
    synchronous reset ``aresetn`` (the tile's active-high reset is its inverse).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        A design of component ``axi``: the tile's parameters and ``queue_depth``.
    **params
        Keyword parameters on top of ``design`` (or of the defaults).
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.core = AxiCore(design, **params)
        self.design, self.regmap, self.tile = self.core.design, self.core.regmap, self.core.tile
        super().__init__({"aclk": In(1), "aresetn": In(1), **self.core.signature.members})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.core = core = self.core
        for name, member in core.signature.members.items():
            if member.flow == In:
                m.d.comb += getattr(core, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(core, name))
        return m
