"""The accelerator tile: PE array + side sums + requantizer lanes + stream interfaces.

One GEMM tile out = requant(A[M x K] @ W[K x N]) with M <= R, N <= C and any K
(1..2^depth_bits) goes in as K steps and comes out as M rows of C output codes. The exact
protocol (docs/hardware.md, "Tile stream protocol"):

- ``cmd`` (input side, one transfer per tile): ``k`` = K, ``b_a``, ``b_w`` = the view
  widths of this tile. It is held (valid, not yet ready) for the whole input phase of its
  tile and is taken (ready) together with the tile's last activation/weight step.
- ``act`` / ``wgt``: one transfer each per step, always together: step k carries column k
  of A (``act.payload[i]`` = A[i][k], R master codes) and row k of W (``wgt.payload[j]`` =
  W[k][j], C master codes). Rows i >= M and columns j >= N are padding (any value).
- ``rq`` (output side, one transfer per tile, in the same tile order): ``m`` = M, ``ncols``
  = N, ``b_out``, ``rounding`` (a :data:`dqt_hw.spec.ROUNDING_CODES` value) and per
  column j the lane constants K1..K4, E1..E4, S. It is held for the tile's drain and taken
  with the drain of row R - 1.
- ``out``: M transfers per tile, rows 0..M-1 in order: ``codes[j]`` (0 for j >= N),
  ``row`` = i, ``last`` = (i == M - 1).

Back-pressure: when ``out`` is full and not ready, or a row is due and ``rq`` is not
valid, the whole datapath freezes for that cycle (nothing is lost or duplicated). With
``rq_lanes`` = L < C requantizer lanes, each emitted row also freezes it for C / L - 1
cycles while the L lanes take the row's columns group by group (``_grouped_drain``). With
``rq_stages`` = S > 0 the lanes are pipelined (``_pipelined_drain``): a row's codes reach
``out`` S steps after it leaves the array, its control carried beside them. The last
steps of consecutive tiles are at least max(R, C) steps apart (a shorter tile is padded
with idle steps), so for K >= max(R, C) tiles follow each other back to back, whatever
their widths: a precision switch costs no drain and no cycle.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from . import faults
from ._params import validated_init
from .array import PEArray
from .requant import PipelinedRequantizer, Requantizer, lane_layout
from .view import code_shape

__all__ = ["Tile"]


class Tile(wiring.Component):
    """Accelerator tile (the top level).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Every parameter of the tile (docs/design.md): ``rows``, ``cols`` (R and C of the
        PE array, 1..64), ``n``, ``acc_width``, ``overflow``, ``view_rounding``,
        ``signed``, ``widths`` (the view and output widths built), ``depth_bits`` (tiles
        of 1..2^depth_bits steps; K = 0 means 2^depth_bits), ``kbits``, ``ebits``,
        ``sbits`` (the requantizer's constant and shift fields) and ``max_pack``: 1, one
        element of K per ``act``/``wgt`` transfer; 2 or 4, the array is built from
        :class:`~dqt_hw.hw.scalable.ScalableMACPE` bricks and every transfer carries
        ``max_pack`` slots, of which the first ``pack_factor(b_a, b_w)`` hold elements.
        ``rq_lanes``: requantizer lanes, dividing C (default C); fewer are
        time-multiplexed over C / rq_lanes cycles per output row. ``rq_stages``:
        register ranks in every lane (0..2, default 0), each one more cycle of latency.
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    cmd, act, wgt, rq : In(stream.Signature(...)); out : Out(stream.Signature(...))
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("tile", design, params)
        self._R, self._C, self._n, self._signed = d.rows, d.cols, d.n, d.signed
        self._widths, self._W, self._overflow = d.widths, d.acc_width, d.overflow
        self._view_rounding, self._depth_bits, self._P = d.view_rounding, d.depth_bits, d.max_pack
        self._kbits, self._ebits, self._sbits = d.kbits, d.ebits, d.sbits
        code = code_shape(self._n, self._signed)
        wbits = d.width_bits
        self.cmd_layout = data.StructLayout(
            {"k": unsigned(self._depth_bits), "b_a": unsigned(wbits), "b_w": unsigned(wbits)}
        )
        self.lane_layout = lane_layout(self._kbits, self._ebits, self._sbits)
        self.rq_layout = data.StructLayout(
            {
                "m": unsigned(self._R.bit_length()),
                "ncols": unsigned(self._C.bit_length()),
                "b_out": unsigned(wbits),
                "rounding": unsigned(2),
                "lanes": data.ArrayLayout(self.lane_layout, self._C),
            }
        )
        self.act_layout = data.ArrayLayout(code, self._R)
        self.wgt_layout = data.ArrayLayout(code, self._C)
        if self._P > 1:  # slot s (element k + s) of every row / column
            self.act_layout = data.ArrayLayout(self.act_layout, self._P)
            self.wgt_layout = data.ArrayLayout(self.wgt_layout, self._P)
        self.out_layout = data.StructLayout(
            {
                "codes": data.ArrayLayout(code, self._C),
                "row": unsigned(max(1, (self._R - 1).bit_length())),
                "last": unsigned(1),
            }
        )
        super().__init__(
            {
                "cmd": In(stream.Signature(self.cmd_layout)),
                "act": In(stream.Signature(self.act_layout)),
                "wgt": In(stream.Signature(self.wgt_layout)),
                "rq": In(stream.Signature(self.rq_layout)),
                "out": Out(stream.Signature(self.out_layout)),
            }
        )

    rows = property(lambda self: self._R)
    cols = property(lambda self: self._C)
    n = property(lambda self: self._n)
    acc_width = property(lambda self: self._W)
    overflow = property(lambda self: self._overflow)
    view_rounding = property(lambda self: self._view_rounding)
    signed = property(lambda self: self._signed)
    widths = property(lambda self: self._widths)
    depth_bits = property(lambda self: self._depth_bits)
    kbits = property(lambda self: self._kbits)
    ebits = property(lambda self: self._ebits)
    sbits = property(lambda self: self._sbits)
    max_pack = property(lambda self: self._P)

    def pack_factor(self, b_a: int, b_w: int) -> int:
        """Elements per ``act``/``wgt`` transfer at widths (b_a, b_w): the largest p in
        {1, 2, 4}, p <= max_pack, with max(b_a, b_w) <= n / p. A tile of K elements takes
        ceil(K / p) transfers; the last one holds the remaining K mod p (or p) elements in
        its first slots."""
        return self.design.pack_factor(b_a, b_w)

    def cycles_per_width_pair(self) -> dict[str, float]:
        """Steps (cycles without stalls) per element for every supported (b_a, b_w)."""
        return self.design.cycles_per_width_pair()

    @property
    def sum_width(self) -> int:
        """Width of the signed side sums."""
        return self.design.side_sum_width

    @property
    def min_period(self) -> int:
        """Fewest steps between the last steps of consecutive tiles: max(R, C)."""
        return self.design.min_period

    @property
    def latency(self) -> int:
        """Clock edges from the one that transfers a tile's last step to the one that
        transfers its first ``out`` row, without back-pressure (``out.valid`` rises one
        edge earlier): C + 2 (C + 1 + C / rq_lanes with fewer lanes; + rq_stages with a
        pipelined requantizer)."""
        return self.design.latency - (1 if faults.on("latency_short") else 0)

    @property
    def requant_sum_bits(self) -> int:
        """Width of the requantizer's exact internal sum."""
        return self.design.requant_sum_bits

    def requantizer(self) -> Requantizer:
        """A lane as built inside this tile (for its widths)."""
        return Requantizer(self.design)

    def _lane_inputs(self, lane, arr, j: int) -> list:
        """Column j's row of the array and its constants into ``lane``."""
        rq = self.rq
        return [lane.acc.eq(arr.row_acc[j]), lane.sum_a.eq(arr.row_sum_a),
                lane.sum_w.eq(arr.row_sum_w[j]), lane.cfg.eq(rq.payload.lanes[j]),
                lane.rounding.eq(rq.payload.rounding), lane.b_out.eq(rq.payload.b_out)]

    def elaborate(self, platform):
        m = Module()
        R, C = self._R, self._C
        m.submodules.array = arr = PEArray(self.design)
        rq, out = self.rq, self.out

        # ---- drain side: requantize the row the array presents, into the out register
        if self.design.row_cycles > 1:
            advance = self._grouped_drain(m, arr)
            return self._input_side(m, arr, advance)
        if self.design.rq_stages:
            advance = self._pipelined_drain(m, arr)
            return self._input_side(m, arr, advance)
        lanes = []
        for j in range(C):
            lane = self.requantizer()
            m.submodules[f"lane{j}"] = lane
            m.d.comb += self._lane_inputs(lane, arr, j)
            lanes.append(lane)
        due = arr.row_valid
        emit = Signal(name="emit")
        m.d.comb += emit.eq(arr.row_index < rq.payload.m)
        out_free = Signal(name="out_free")
        m.d.comb += out_free.eq(1 if faults.on("drop_on_stall") else ~out.valid | out.ready)
        advance = Signal(name="advance")
        m.d.comb += advance.eq(~due | (rq.valid & (~emit | out_free)))
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(advance & due & emit):
            m.d.sync += [
                out.valid.eq(1),
                out.payload.row.eq(arr.row_index),
                out.payload.last.eq(arr.row_index == R - 1 if faults.on("last_row") else
                                    arr.row_index + 1 == rq.payload.m),
            ]
            for j, lane in enumerate(lanes):
                m.d.sync += out.payload.codes[j].eq(Mux(j < rq.payload.ncols, lane.code, 0))
        # (no comparison with a constant 0: Yosys writes it as a multi-bit `!x`)
        last_row = (arr.row_index == R - 1) if R > 1 else 1
        m.d.comb += rq.ready.eq(advance & due & last_row)
        return self._input_side(m, arr, advance)

    def _input_side(self, m, arr, advance):
        """Join cmd, act and wgt into the array's edge (steps only while ``advance``)."""
        cmd, act, wgt = self.cmd, self.act, self.wgt
        if self._P > 1:
            self._packed_input(m, arr, advance)
            return m
        P = self.min_period
        k = Signal(unsigned(self._depth_bits), name="k")
        gap = Signal(range(P + 1), init=P, name="gap")
        is_last = Signal(name="is_last")
        if faults.on("full_depth_short"):
            m.d.comb += is_last.eq(k == Mux(cmd.payload.k.any(), cmd.payload.k - 1,
                                            (1 << self._depth_bits) - 2)[: self._depth_bits])
        else:
            m.d.comb += is_last.eq(k == (cmd.payload.k - 1)[: self._depth_bits])
        fire = Signal(name="fire")
        m.d.comb += fire.eq(
            advance & cmd.valid & act.valid & wgt.valid & (~is_last | (gap == P))
        )
        m.d.comb += [
            act.ready.eq(fire),
            wgt.ready.eq(fire),
            cmd.ready.eq(fire & is_last),
            arr.en.eq(advance),
            arr.valid.eq(fire),
            arr.first.eq(~k.any()),
            arr.last.eq(is_last),
            *self._widths_to(m, arr, fire),
            arr.a.eq(act.payload),
            arr.w.eq(wgt.payload),
        ]
        with m.If(advance):
            with m.If(fire & is_last):
                m.d.sync += [k.eq(0), gap.eq(1)]
            with m.Else():
                with m.If(fire):
                    m.d.sync += k.eq(k + 1)
                with m.If(gap != P):
                    m.d.sync += gap.eq(gap + 1)
        return m

    def _grouped_drain(self, m, arr):
        """Drain side with fewer requantizer lanes than columns (``rq_lanes`` = L, G =
        C / L groups): while a row i < m is due and ``rq`` is valid, the array is frozen
        and ``group`` counts 0..G-1; in the cycle of group g the L lanes requantize
        columns g*L .. g*L + L - 1 (groups 0..G-2 into ``held_codes``), and the row is
        taken (the datapath advances, out loaded) in the cycle of group G - 1 when out is
        free. Rows i >= m and cycles without a due row are as with a lane per column.
        Returns ``advance``."""
        R, C = self._R, self._C
        L, G = self.design.requant_lanes, self.design.row_cycles
        rq, out = self.rq, self.out
        group = Signal(range(G), name="group")
        lanes = []
        for lane_i in range(L):
            lane = self.requantizer()
            m.submodules[f"lane{lane_i}"] = lane
            m.d.comb += [
                lane.sum_a.eq(arr.row_sum_a),
                lane.rounding.eq(rq.payload.rounding),
                lane.b_out.eq(rq.payload.b_out),
            ]
            lanes.append(lane)
        with m.Switch(group):  # (the last group as the default: every value covered)
            for g in range(G):
                with (m.Case(g) if g < G - 1 else m.Default()):
                    for lane_i, lane in enumerate(lanes):
                        j = g * L + lane_i
                        m.d.comb += [
                            lane.acc.eq(arr.row_acc[j]),
                            lane.sum_w.eq(arr.row_sum_w[j]),
                            lane.cfg.eq(rq.payload.lanes[j]),
                        ]
        held = Signal(data.ArrayLayout(code_shape(self._n, self._signed), (G - 1) * L),
                      name="held_codes")
        due = arr.row_valid
        emit = Signal(name="emit")
        m.d.comb += emit.eq(arr.row_index < rq.payload.m)
        out_free = Signal(name="out_free")
        m.d.comb += out_free.eq(1 if faults.on("drop_on_stall") else ~out.valid | out.ready)
        row_done = Signal(name="row_done")
        m.d.comb += row_done.eq(group == G - 1)
        advance = Signal(name="advance")
        m.d.comb += advance.eq(~due | (rq.valid & (~emit | (row_done & out_free))))
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(advance & due & emit):
            m.d.sync += [
                out.valid.eq(1),
                out.payload.row.eq(arr.row_index),
                out.payload.last.eq(arr.row_index == R - 1 if faults.on("last_row") else
                                    arr.row_index + 1 == rq.payload.m),
                group.eq(0),
            ]
            for j in range(C):
                code = held[j] if j < (G - 1) * L else lanes[j - (G - 1) * L].code
                m.d.sync += out.payload.codes[j].eq(Mux(j < rq.payload.ncols, code, 0))
        with m.Elif(due & emit & rq.valid & ~row_done):
            m.d.sync += group.eq(group + 1)
            for g in range(G - 1):  # (`group == 0` would be written as a multi-bit `!x`)
                with m.If(group == g if g else ~group.any()):
                    m.d.sync += [held[g * L + i].eq(lane.code)
                                 for i, lane in enumerate(lanes)]
        last_row = (arr.row_index == R - 1) if R > 1 else 1
        m.d.comb += rq.ready.eq(advance & due & last_row)
        return advance

    def _pipelined_drain(self, m, arr):
        """Drain side with ``rq_stages`` = S register ranks in every lane: the row the
        array presents enters the lanes (``rq`` must be valid: its constants are read
        here, and it is taken with row R - 1), its control (valid, index, emit = i < m,
        last, ncols) travels through S ranks beside the lanes' data, and it is loaded into
        ``out`` S steps later. Everything advances together: the datapath freezes while a
        row enters without ``rq`` or while the row leaving the last rank is to be emitted
        and ``out`` is full. Returns ``advance``."""
        R, C, S = self._R, self._C, self.design.rq_stages
        rq, out = self.rq, self.out
        advance = Signal(name="advance")
        lanes = []
        for j in range(C):
            lane = PipelinedRequantizer(self.design, S)
            m.submodules[f"lane{j}"] = lane
            m.d.comb += self._lane_inputs(lane, arr, j) + [lane.en.eq(advance)]
            lanes.append(lane)
        ctrl = data.StructLayout({"valid": 1, "row": self.out_layout["row"].shape,
                                  "emit": 1, "last": 1, "ncols": unsigned(C.bit_length())})
        entry = Signal(ctrl, name="rq_row0")
        m.d.comb += [entry.valid.eq(arr.row_valid), entry.row.eq(arr.row_index),
                     entry.emit.eq(arr.row_index < rq.payload.m),
                     entry.last.eq(arr.row_index + 1 == rq.payload.m),
                     entry.ncols.eq(rq.payload.ncols)]
        row = entry
        for r in range(1, S + (0 if faults.on("rq_ctrl_early") else 1)):
            nxt = Signal(ctrl, name=f"rq_row{r}")
            with m.If(advance):
                m.d.sync += nxt.eq(row)
            row = nxt
        out_free = Signal(name="out_free")
        m.d.comb += out_free.eq(1 if faults.on("drop_on_stall") else ~out.valid | out.ready)
        leaving = Signal(name="leaving")  # the row leaving the last rank is emitted
        m.d.comb += leaving.eq(row.valid & row.emit)
        m.d.comb += advance.eq((~arr.row_valid | rq.valid) & (~leaving | out_free))
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(advance & leaving):
            m.d.sync += [
                out.valid.eq(1),
                out.payload.row.eq(row.row),
                out.payload.last.eq(row.row == R - 1 if faults.on("last_row") else row.last),
            ]
            for j, lane in enumerate(lanes):
                m.d.sync += out.payload.codes[j].eq(Mux(j < row.ncols, lane.code, 0))
        last_row = (arr.row_index == R - 1) if R > 1 else 1
        m.d.comb += rq.ready.eq(advance & arr.row_valid & last_row)
        return advance

    def _widths_to(self, m, arr, fire):
        """The array's view widths: the cmd's (a register with ``widths_step_late``)."""
        b_a, b_w = self.cmd.payload.b_a, self.cmd.payload.b_w
        if faults.on("widths_step_late"):
            q_a, q_w = Signal.like(b_a, name="b_a_q"), Signal.like(b_w, name="b_w_q")
            with m.If(fire):
                m.d.sync += [q_a.eq(b_a), q_w.eq(b_w)]
            b_a, b_w = q_a, q_w
        return [arr.b_a.eq(b_a), arr.b_w.eq(b_w)]

    def _packed_input(self, m, arr, advance):
        """Input controller of a packed tile: ``k`` counts the elements taken, each step
        takes ``pack`` of them (the array's pack factor for the cmd's widths), the last
        step the remaining ones (its slot mask is a prefix)."""
        cmd, act, wgt = self.cmd, self.act, self.wgt
        db, MP = self._depth_bits, self._P
        P = self.min_period
        k = Signal(unsigned(db), name="k")
        gap = Signal(range(P + 1), init=P, name="gap")
        total = Signal(unsigned(db + 1), name="k_total")  # K, with a k field of 0 = 2^db
        if faults.on("full_depth_short"):
            m.d.comb += total.eq(Mux(cmd.payload.k.any(), cmd.payload.k, (1 << db) - 1))
        else:
            m.d.comb += total.eq(Cat(cmd.payload.k, ~cmd.payload.k.any()))
        remaining = Signal(unsigned(db + 1), name="remaining")
        m.d.comb += remaining.eq(total - k)
        is_last = Signal(name="is_last")
        m.d.comb += is_last.eq(remaining <= arr.pack)
        count = Signal(range(MP + 1), name="count")
        m.d.comb += count.eq(Mux(is_last, remaining[:count.shape().width], arr.pack))
        mask = Signal(MP, name="slots")
        for s in range(MP):
            m.d.comb += mask[s].eq(count > s)
        fire = Signal(name="fire")
        m.d.comb += fire.eq(
            advance & cmd.valid & act.valid & wgt.valid & (~is_last | (gap == P))
        )
        m.d.comb += [
            act.ready.eq(fire),
            wgt.ready.eq(fire),
            cmd.ready.eq(fire & is_last),
            arr.en.eq(advance),
            arr.valid.eq(Mux(fire, mask, 0)),
            arr.first.eq(~k.any()),
            arr.last.eq(is_last),
            *self._widths_to(m, arr, fire),
            arr.a.eq(act.payload),
            arr.w.eq(wgt.payload),
        ]
        with m.If(advance):
            with m.If(fire & is_last):
                m.d.sync += [k.eq(0), gap.eq(1)]
            with m.Else():
                with m.If(fire):
                    m.d.sync += k.eq(k + arr.pack)
                with m.If(gap != P):
                    m.d.sync += gap.eq(gap + 1)
