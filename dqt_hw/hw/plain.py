"""A plain n x n MAC PE and PE array: the reference against which the cost of DQT's
shift-based precision switching is measured (docs/cost.md).

:class:`PlainMACPE` is :class:`~dqt_hw.hw.pe.MACPE` without views and width selects: per
enabled cycle ``acc <- wrap((0 if first else acc) + a * w, W)``, ``result`` takes the new
value on ``last``. :class:`PlainArray` is :class:`~dqt_hw.hw.array.PEArray`'s R x C
output-stationary array (same edge registers, systolic skew, east/south hops and row
drain) built of plain PEs: no edge view units, no width registers, no side sums. Codes
are n-bit (signed by default: int8 x int8 at n = 8); overflow wraps.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ._params import validated_init
from .pe import accumulate
from .view import code_shape

__all__ = ["PlainMACPE", "PlainArray"]


class PlainMACPE(wiring.Component):
    """Plain multiply-accumulate PE (design component ``plain_pe``).

    Members: ``a``, ``w`` (In, n-bit codes), ``en``, ``first``, ``last`` (In(1)),
    ``acc`` and ``result`` (Out(signed(W))), as :class:`~dqt_hw.hw.pe.MACPE` with
    ``views=False`` and ``overflow="wrap"``.
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("plain_pe", design, params)
        self._n, self._signed, self._W = d.n, d.signed, d.acc_width
        code = code_shape(self._n, self._signed)
        super().__init__({"a": In(code), "w": In(code), "en": In(1), "first": In(1),
                          "last": In(1), "acc": Out(signed_shape(self._W)),
                          "result": Out(signed_shape(self._W))})

    def elaborate(self, platform):
        m = Module()
        new = accumulate(Mux(self.first, 0, self.acc), self.a * self.w, self._W, "wrap")
        with m.If(self.en):
            m.d.sync += self.acc.eq(new)
            with m.If(self.last):
                m.d.sync += self.result.eq(new)
        return m


class PlainArray(wiring.Component):
    """R x C output-stationary array of :class:`PlainMACPE` (design component
    ``plain_array``), timed as :class:`~dqt_hw.hw.array.PEArray`: PE(i, j) adds element k
    at step t_k + 1 + i + j and row i of a tile whose last element entered at step t_L is
    on ``row_acc`` at step t_L + 1 + C + i (``row_valid``, ``row_index``).

    Members: ``en``, ``valid``, ``first``, ``last`` (In(1)); ``a`` (In(array of R codes)),
    ``w`` (In(array of C codes)); ``row_valid`` (Out(1)), ``row_index`` (Out(unsigned)),
    ``row_acc`` (Out(array of C signed(W))).
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("plain_array", design, params)
        self._R, self._C, self._n = d.rows, d.cols, d.n
        self._signed, self._W = d.signed, d.acc_width
        code = code_shape(self._n, self._signed)
        super().__init__({
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "a": In(data.ArrayLayout(code, self._R)),
            "w": In(data.ArrayLayout(code, self._C)),
            "row_valid": Out(1),
            "row_index": Out(unsigned(max(1, (self._R - 1).bit_length()))),
            "row_acc": Out(data.ArrayLayout(signed_shape(self._W), self._C)),
        })

    def elaborate(self, platform):
        m = Module()
        R, C = self._R, self._C
        code = code_shape(self._n, self._signed)
        en = self.en

        def reg(name, shape, src):
            r = Signal(shape, name=name)
            with m.If(en):
                m.d.sync += r.eq(src)
            return r

        ev, ef, el = (reg(f"edge_{nm}", 1, x)
                      for nm, x in (("valid", self.valid), ("first", self.first),
                                    ("last", self.last)))
        a_in = [[None] * (C + 1) for _ in range(R)]
        f_in = [[None] * (C + 1) for _ in range(R)]
        w_in = [[None] * C for _ in range(R + 1)]
        for i in range(R):
            a, f = reg(f"edge_a{i}", code, self.a[i]), (ev, ef, el)
            for s in range(i):
                a = reg(f"skew_a{i}_{s}", code, a)
                f = tuple(reg(f"skew_{nm}{i}_{s}", 1, x) for nm, x in zip("vfl", f))
            a_in[i][0], f_in[i][0] = a, f
        for j in range(C):
            w = reg(f"edge_w{j}", code, self.w[j])
            for s in range(j):
                w = reg(f"skew_w{j}_{s}", code, w)
            w_in[0][j] = w
        pe_design = self.design.sub("plain_pe")
        pes = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                pe = pes[i][j] = PlainMACPE(pe_design)
                m.submodules[f"pe_{i}_{j}"] = pe
                v, fi, la = f_in[i][j]
                m.d.comb += [pe.a.eq(a_in[i][j]), pe.w.eq(w_in[i][j]), pe.en.eq(en & v),
                             pe.first.eq(fi), pe.last.eq(la)]
                if j + 1 < C:
                    a_in[i][j + 1] = reg(f"a_{i}_{j}", code, a_in[i][j])
                f_in[i][j + 1] = tuple(reg(f"{nm}_{i}_{j}", 1, x)
                                       for nm, x in zip("vfl", f_in[i][j]))
                if i + 1 < R:
                    w_in[i + 1][j] = reg(f"w_{i}_{j}", code, w_in[i][j])
        trig = [f_in[i][C][0] & f_in[i][C][2] for i in range(R)]
        any_trig, idx = 0, 0
        for i, t in enumerate(trig):
            any_trig = any_trig | t
            if i:
                idx = idx | Mux(t, i, 0)
        m.d.comb += [self.row_valid.eq(any_trig), self.row_index.eq(idx)]
        for j in range(C):
            acc = 0
            for i in range(R):
                acc = acc | Mux(trig[i], pes[i][j].result.as_unsigned(), 0)
            m.d.comb += self.row_acc[j].eq(acc)
        return m
