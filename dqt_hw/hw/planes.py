"""Bit-plane storage: an activation and a weight tile held as bit planes, read at a width.

A tensor is stored once at its master width n; its b-bit view needs only the top planes
(docs/arithmetic.md 2.2): ``floor`` the top b, ``half_up`` the top b + 1 (the rounding
bit), ``half_even`` / ``half_away`` all n, and b = n all n. The buffer keeps, for each
operand, one memory per plane; a read enables only the memories of the planes the
request's width and rounding need, and the planes it does not read come out as 0. The
code so rebuilt, q' (q with the unread low planes zeroed), has the same view as q at that
width and rounding, so a nested view unit behind the buffer gives bit for bit what it
gives on the full master codes.

Layout (the model's ``to_planes``): plane p (0 = LSB .. n - 1 = MSB) holds bit p of each
code's n-bit pattern (two's complement for signed codes: plane n - 1 is the sign); planes
are stored MSB first, **row j = plane n - 1 - j**, so a view reads a prefix of rows. A
plane word holds one bit per lane: R bits for the activations (bit i = row i of the PE
array), C bits for the weights (bit j = column j). Each memory has 2^depth_bits words,
one per step k of a tile.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..spec import ROUNDING_CODES
from . import faults
from ._params import validated_init
from .view import code_shape

__all__ = ["PlaneBuffer", "plane_mask"]


def plane_mask(m: Module, b, rounding, n: int, name: str) -> Signal:
    """The rows a view of width ``b`` (a signal) at the rounding code ``rounding`` (a
    signal, :data:`dqt_hw.spec.ROUNDING_CODES`) reads: bit j (row j = plane n - 1 - j)
    is set for j < b at floor, j <= b at half_up (b + 1 rows, all n at b >= n), every
    row at half_even and half_away. Built from comparisons with constants (no table)."""
    mask = Signal(n, name=name)
    floor = Signal(name=f"{name}_floor")
    half_up = Signal(name=f"{name}_half_up")
    m.d.comb += [floor.eq(_equals(rounding, ROUNDING_CODES["floor"])),
                 half_up.eq(_equals(rounding, ROUNDING_CODES["half_up"]))]
    short = faults.on("planes_half_up_short")
    for j in range(n):
        top = b > j  # rows 0 .. b - 1
        if short:  # the fault: half_up reads b rows, one too few
            rnd = top
        else:  # rows 0 .. b (row 0 always: b >= 0)
            rnd = (b >= j) if j else 1
        m.d.comb += mask[j].eq(Mux(floor, top, Mux(half_up, rnd, 1)))
    return mask


def _equals(x, value: int):
    """``x == value`` (a comparison with a constant 0 is written ``~x.any()``: Yosys writes
    it as a multi-bit ``!x``, which the lint refuses)."""
    return x == value if value else ~x.any()


class PlaneBuffer(wiring.Component):
    """Bit-plane buffer of one activation tile and one weight tile, with a width-aware
    reader (see the module docstring for the layout).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Its ``rows`` and ``cols`` (R and C: the bits of an activation and of a weight
        plane word), ``n`` (planes per operand), ``signed`` (the codes' signedness) and
        ``depth_bits`` (2^depth_bits words per plane: one per step of a tile).
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    load : In(stream)   one plane word per transfer: ``sel`` (0 activations, 1 weights),
                        ``addr`` (the step), ``row`` (j = plane n - 1 - j; rows >= n are
                        ignored), ``word`` (max(R, C) bits, activations in the low R).
                        ``ready`` is always high: a write never waits.
    rd_en : In(1)       read step ``a_addr`` of the activations and ``w_addr`` of the
                        weights this cycle, at widths ``b_a`` / ``b_w`` and ``rounding``
    en_a, en_w : Out(n) the plane memories enabled by this cycle's read (bit j: row j;
                        0 without ``rd_en``)
    a : Out(array of R codes); w : Out(array of C codes)
                        the codes of the last read, one cycle after it (held while
                        ``rd_en`` is low), unread planes 0
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("planes", design, params)
        self._R, self._C, self._n, self._signed = d.rows, d.cols, d.n, d.signed
        self._db = d.depth_bits
        code = code_shape(self._n, self._signed)
        self.load_layout = load_layout(d)
        super().__init__({
            "load": In(stream.Signature(self.load_layout)),
            "rd_en": In(1),
            "a_addr": In(unsigned(self._db)),
            "w_addr": In(unsigned(self._db)),
            "b_a": In(unsigned(d.width_bits)),
            "b_w": In(unsigned(d.width_bits)),
            "rounding": In(unsigned(2)),
            "en_a": Out(self._n),
            "en_w": Out(self._n),
            "a": Out(data.ArrayLayout(code, self._R)),
            "w": Out(data.ArrayLayout(code, self._C)),
        })

    rows = property(lambda self: self._R)
    cols = property(lambda self: self._C)
    n = property(lambda self: self._n)
    signed = property(lambda self: self._signed)
    depth_bits = property(lambda self: self._db)

    def elaborate(self, platform):
        m = Module()
        n, load = self._n, self.load
        m.d.comb += load.ready.eq(1)
        mask_a = plane_mask(m, self.b_a, self.rounding, n, "mask_a")
        mask_w = plane_mask(m, self.b_w, self.rounding, n, "mask_w")
        m.d.comb += [self.en_a.eq(Mux(self.rd_en, mask_a, 0)),
                     self.en_w.eq(Mux(self.rd_en, mask_w, 0))]
        # the rows read by the last read: the others come out as 0 (a memory that was not
        # enabled still holds an older word)
        read_a = Signal(n, name="read_a")
        read_w = Signal(n, name="read_w")
        with m.If(self.rd_en):
            m.d.sync += [read_a.eq(mask_a), read_w.eq(mask_w)]
        for sel, (lanes, addr, en, read, out) in enumerate((
                (self._R, self.a_addr, self.en_a, read_a, self.a),
                (self._C, self.w_addr, self.en_w, read_w, self.w))):
            op = "aw"[sel]
            rows = []
            for j in range(n):
                mem = memory.Memory(shape=unsigned(lanes), depth=1 << self._db, init=[])
                m.submodules[f"plane_{op}{j}"] = mem
                wr = mem.write_port()
                rd = mem.read_port()
                m.d.comb += [
                    wr.en.eq(load.valid & _equals(load.payload.sel, sel)
                             & _equals(load.payload.row, j)),
                    wr.addr.eq(load.payload.addr),
                    wr.data.eq(load.payload.word[:lanes]),
                    rd.en.eq(en[j]),
                    rd.addr.eq(addr),
                ]
                rows.append(Mux(read[j], rd.data, 0))
            for i in range(lanes):  # code i: bit n - 1 - j from row j
                bits = Cat(*[rows[n - 1 - p][i] for p in range(n)])
                m.d.comb += out[i].eq(bits.as_signed() if self._signed else bits)
        return m


def load_layout(design: Design) -> data.StructLayout:
    """The ``load`` payload of a plane buffer (or plane tile) of ``design``."""
    return data.StructLayout({
        "sel": unsigned(1),
        "addr": unsigned(design.depth_bits),
        "row": unsigned(max(1, (design.n - 1).bit_length())),
        "word": unsigned(max(design.rows, design.cols)),
    })
