"""The tile run from bit-plane storage: a :class:`~dqt_hw.hw.planes.PlaneBuffer` in front
of the accelerator :class:`~dqt_hw.hw.tile.Tile`.

The operands are loaded once as plane words (``load``); each tile command names where its
K steps start in the activation and in the weight planes, and the widths. The reader reads
step k of both operands, enabling only the planes the width and the tile's view rounding
need, and hands the rebuilt codes (unread planes 0) to the tile's ``act``/``wgt`` streams.
The tile's views of those codes are those of the master codes, so every output is bit for
bit the tile's on the same codes (docs/hardware.md, "Bit-plane storage").

Protocol (``rq`` and ``out`` are the tile's, unchanged):

- ``load``: one plane word per transfer, always ready (:class:`PlaneBuffer`).
- ``cmd``: one transfer per tile: ``k`` = K (0 means 2^depth_bits), ``b_a``, ``b_w``, and
  ``a_base`` / ``w_base``: step k reads address (base + k) mod 2^depth_bits of the
  activation / weight planes. A command is taken when the reader starts on it: while the
  previous tile's last step is read, or when idle; the tile itself holds at most two
  commands (the one it runs, the one read ahead).
- ``reads``: ``a`` and ``w``, the plane words read for the last tile whose steps have all
  been read (K times the rows each step enables, counted from the read enables
  themselves); ``reads_done`` is high for the one cycle in which ``reads`` has just taken
  a new tile's counts (tiles in command order).

Timing: the read of a step is issued in one cycle and its codes reach the tile's edge in
the next (one register stage; it holds while the tile stalls). A command taken in cycle c
has its step 0 read in c + 1 and at the tile in c + 2; the next command's step 0 is read in
the cycle after this one's last step, so consecutive tiles, whatever their widths, reach
the tile back to back: a width switch costs no cycle, and K >= max(R, C) tiles run at one
step per cycle as on the tile's own streams.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..spec import ROUNDING_CODES
from ._params import validated_init
from .planes import PlaneBuffer, load_layout
from .tile import Tile

__all__ = ["PlaneTile"]


class PlaneTile(wiring.Component):
    """Accelerator tile fed from bit-plane storage (see the module docstring).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        The tile's parameters (``rows``, ``cols``, ``n``, ``acc_width``, ``overflow``,
        ``view_rounding``, ``signed``, ``widths``, ``kbits``, ``ebits``, ``sbits``) and
        ``depth_bits``: the K field of a tile and the depth of the plane memories
        (2^depth_bits words each, at most 2^12).
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    load, cmd, rq : In(stream.Signature(...)); out : Out(stream.Signature(...))
    reads : Out(struct of a, w); reads_done : Out(1)
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("plane_tile", design, params)
        self.tile = Tile(d.sub("tile"))
        self.buffer = PlaneBuffer(d.sub("planes"))
        db, wbits = d.depth_bits, d.width_bits
        self.cmd_layout = data.StructLayout({
            "k": unsigned(db), "b_a": unsigned(wbits), "b_w": unsigned(wbits),
            "a_base": unsigned(db), "w_base": unsigned(db),
        })
        self.load_layout = load_layout(d)
        count = unsigned((d.n << db).bit_length())
        self.reads_layout = data.StructLayout({"a": count, "w": count})
        super().__init__({
            "load": In(stream.Signature(self.load_layout)),
            "cmd": In(stream.Signature(self.cmd_layout)),
            "rq": In(stream.Signature(self.tile.rq_layout)),
            "out": Out(stream.Signature(self.tile.out_layout)),
            "reads": Out(self.reads_layout),
            "reads_done": Out(1),
        })

    rows = property(lambda self: self.design.rows)
    cols = property(lambda self: self.design.cols)
    n = property(lambda self: self.design.n)
    signed = property(lambda self: self.design.signed)
    acc_width = property(lambda self: self.design.acc_width)
    overflow = property(lambda self: self.design.overflow)
    view_rounding = property(lambda self: self.design.view_rounding)
    depth_bits = property(lambda self: self.design.depth_bits)

    def elaborate(self, platform):
        m = Module()
        d = self.design
        m.submodules.tile = t = self.tile
        m.submodules.planes = buf = self.buffer
        cmd_bits = self.tile.cmd_layout.size
        m.submodules.cmds = q = fifo.SyncFIFO(width=cmd_bits, depth=2)
        wiring.connect(m, wiring.flipped(self.load), buf.load)
        wiring.connect(m, wiring.flipped(self.rq), t.rq)
        wiring.connect(m, t.out, wiring.flipped(self.out))

        # the tile's commands: written when the reader takes a command, read by the tile
        cmd = self.cmd
        m.d.comb += [
            q.w_data.eq(Cat(cmd.payload.k, cmd.payload.b_a, cmd.payload.b_w)),
            t.cmd.valid.eq(q.r_rdy),
            t.cmd.payload.eq(q.r_data),
            q.r_en.eq(t.cmd.ready),
        ]

        # the reader: issue stage (addresses, widths, steps left) and one data stage
        db = d.depth_bits
        active = Signal(name="active")
        left = Signal(unsigned(db + 1), name="steps_left")
        a_addr = Signal(unsigned(db), name="a_addr")
        w_addr = Signal(unsigned(db), name="w_addr")
        b_a = Signal(unsigned(d.width_bits), name="b_a")
        b_w = Signal(unsigned(d.width_bits), name="b_w")
        held = Signal(name="step_held")  # the data stage holds a step for the tile
        take = Signal(name="take")
        issue = Signal(name="issue")
        is_last = Signal(name="is_last")
        accept = Signal(name="accept")
        m.d.comb += [
            take.eq(t.act.ready),  # the tile takes act and wgt together
            issue.eq(active & (~held | take)),
            is_last.eq(left == 1),
            accept.eq(cmd.valid & q.w_rdy & (~active | (issue & is_last))),
            cmd.ready.eq(accept),
            q.w_en.eq(accept),
            buf.rd_en.eq(issue),
            buf.a_addr.eq(a_addr),
            buf.w_addr.eq(w_addr),
            buf.b_a.eq(b_a),
            buf.b_w.eq(b_w),
            buf.rounding.eq(ROUNDING_CODES[d.view_rounding]),
            t.act.valid.eq(held),
            t.wgt.valid.eq(held),
            t.act.payload.eq(buf.a),
            t.wgt.payload.eq(buf.w),
        ]
        with m.If(issue):
            m.d.sync += [held.eq(1), a_addr.eq(a_addr + 1), w_addr.eq(w_addr + 1),
                         left.eq(left - 1)]
            with m.If(is_last):
                m.d.sync += active.eq(0)
        with m.Elif(take):
            m.d.sync += held.eq(0)
        with m.If(accept):  # (after the issue block: the new command's registers win)
            m.d.sync += [
                active.eq(1),
                left.eq(Cat(cmd.payload.k, ~cmd.payload.k.any())),
                a_addr.eq(cmd.payload.a_base),
                w_addr.eq(cmd.payload.w_base),
                b_a.eq(cmd.payload.b_a),
                b_w.eq(cmd.payload.b_w),
            ]

        # plane reads per tile, counted from the read enables
        count = self.reads_layout["a"].shape
        m.d.sync += self.reads_done.eq(issue & is_last)
        for op, en in (("a", buf.en_a), ("w", buf.en_w)):
            run = Signal(count, name=f"reads_{op}_running")
            now = Signal(range(d.n + 1), name=f"reads_{op}_now")
            m.d.comb += now.eq(sum(en[j] for j in range(d.n)))
            with m.If(issue):
                with m.If(is_last):
                    m.d.sync += [getattr(self.reads, op).eq(run + now), run.eq(0)]
                with m.Else():
                    m.d.sync += run.eq(run + now)
        return m
