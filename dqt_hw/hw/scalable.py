"""Precision-scalable MAC PE: fused bit-bricks turn narrow nested views into throughput.

With a fixed n x n multiplier a lower width saves energy but no cycles. Here the
multiplier is built from g x g *bricks* (g = n / max_pack), in the spirit of Bit Fusion:
at full width all (n/g)^2 bricks form one n x n product; when both views are at most
n/2 bits the operand words carry two views each and the bricks on the two diagonal
blocks form two (n/2 x n/2) products; at most n/4 bits, four products from the four
diagonal blocks. A brick multiplies digits that are signed or unsigned under a sign
control (the top digit of a signed operand group is signed).

The products of one cycle are accumulated one after the other in slot order, each with
the overflow rule (``acc <- ovf(acc + p_s, W)`` for s = 0, 1, ...), so the result is the
contract's ascending-k accumulation bit for bit, whatever the packing. Steps per element:
1 / pack with ``pack`` = 4 if max(b_a, b_w) <= n/4 (and max_pack = 4), 2 if <= n/2, else 1.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..design.rules import pack_modes, width_field_bits
from ._params import validated_init
from .pe import accumulate
from .view import NestedView, code_shape

__all__ = ["ScalableMACPE"]


class ScalableMACPE(wiring.Component):
    """MAC PE with ``max_pack`` operand slots and a brick multiplier.

    Parameters (keyword-only)
    -------------------------
    n, acc_width, overflow, view_rounding, signed, widths :
        As for :class:`~dqt_hw.hw.pe.MACPE`.
    max_pack : int
        1, 2 or 4: the most products per cycle; n must be a multiple of it (and
        n / max_pack >= 2 for signed codes).
    views : bool
        With ``True`` (default) the PE views and packs its master codes itself; with
        ``False`` (inside :class:`~dqt_hw.hw.array.PEArray`) it takes the packed operand
        words and the packing mode from the array's edge.

    Members
    -------
    a, w : In(array of max_pack master codes)  slot s carries element k + s
    b_a, b_w : In(unsigned)                    view widths
    pack : Out(range)                          slots usable this cycle (1, 2 or 4)
    (with ``views=False`` instead: ``a``, ``w`` : In(unsigned(n)) packed words of viewed
    codes, slot s of mode p in bits [s n/p, (s+1) n/p); ``mode`` : In(k) one bit per
    packing mode above 1, bit 0 = two slots, bit 1 = four slots, all low = one slot)
    en : In(max_pack)                          per-slot enable (a prefix of the usable slots)
    first, last : In(1)                        this cycle starts / ends the accumulation
    acc, result : Out(signed(W))               as for :class:`~dqt_hw.hw.pe.MACPE`
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("scalable_pe", design, params)
        self._n, self._signed, self._widths = d.n, d.signed, d.widths
        self._W, self._overflow, self._view_rounding = d.acc_width, d.overflow, d.view_rounding
        self._P, self._views = d.max_pack, d.views
        code = code_shape(self._n, self._signed)
        wbits = width_field_bits(self._n)
        if not self._views:
            nmodes = len(pack_modes(self._P)) - 1
            members = {"a": In(unsigned(self._n)), "w": In(unsigned(self._n))}
            if nmodes:
                members["mode"] = In(nmodes)
            members.update({
                "en": In(self._P),
                "first": In(1),
                "last": In(1),
                "acc": Out(signed_shape(self._W)),
                "result": Out(signed_shape(self._W)),
            })
            super().__init__(members)
            return
        super().__init__(
            {
                "a": In(data.ArrayLayout(code, self._P)),
                "w": In(data.ArrayLayout(code, self._P)),
                "b_a": In(unsigned(wbits)),
                "b_w": In(unsigned(wbits)),
                "pack": Out(range(self._P + 1)),
                "en": In(self._P),
                "first": In(1),
                "last": In(1),
                "acc": Out(signed_shape(self._W)),
                "result": Out(signed_shape(self._W)),
            }
        )

    n = property(lambda self: self._n)
    acc_width = property(lambda self: self._W)
    overflow = property(lambda self: self._overflow)
    view_rounding = property(lambda self: self._view_rounding)
    signed = property(lambda self: self._signed)
    widths = property(lambda self: self._widths)
    max_pack = property(lambda self: self._P)
    views = property(lambda self: self._views)

    def cycles_per_width_pair(self) -> dict[str, float]:
        """Cycles per element for every supported (b_a, b_w), for the cost models."""
        return self.design.cycles_per_width_pair()

    def elaborate(self, platform):
        m = Module()
        n, P, sgn = self._n, self._P, self._signed
        modes = [p for p in (1, 2, 4) if p <= P]
        if not self._views:
            mode = {}
            for q, p in enumerate(modes[1:]):
                mode[p] = self.mode[q]
            mode[1] = Signal(name="mode1")
            m.d.comb += mode[1].eq(~self.mode.any() if len(modes) > 1 else 1)
            self._datapath(m, self.a, self.w, mode, modes)
            return m

        # views of every slot
        va, vw = [], []
        for s in range(P):
            ua, uw = NestedView(self.design), NestedView(self.design)
            m.submodules[f"view_a{s}"], m.submodules[f"view_w{s}"] = ua, uw
            m.d.comb += [ua.q.eq(self.a[s]), ua.b.eq(self.b_a),
                         uw.q.eq(self.w[s]), uw.b.eq(self.b_w)]
            va.append(ua.v)
            vw.append(uw.v)

        # packing mode from the widths
        bmax = Signal(range(n + 1), name="bmax")
        m.d.comb += bmax.eq(Mux(self.b_a > self.b_w, self.b_a, self.b_w))
        mode = {p: Signal(name=f"mode{p}") for p in modes}
        pack_expr = 1
        for p in modes:
            if p == 1:
                continue
            better = [q for q in modes if q > p]
            cond = bmax <= n // p
            for q in better:
                cond = cond & ~(bmax <= n // q)
            m.d.comb += mode[p].eq(cond)
            pack_expr = Mux(mode[p], p, pack_expr)
        m.d.comb += mode[1].eq(~Cat(*[mode[p] for p in modes if p != 1]).any()
                               if len(modes) > 1 else 1)
        m.d.comb += self.pack.eq(pack_expr)

        # operand words: in mode p, slot s occupies bits [s*n/p, (s+1)*n/p)
        def word(views, name):
            wd = Signal(n, name=name)
            expr = views[0].as_unsigned()
            for p in modes:
                if p == 1:
                    continue
                packed = Cat(*[views[s].as_unsigned()[: n // p] for s in range(p)])
                expr = Mux(mode[p], packed, expr)
            m.d.comb += wd.eq(expr)
            return wd

        aw, ww = word(va, "a_word"), word(vw, "w_word")
        self._datapath(m, aw, ww, mode, modes)
        return m

    def _datapath(self, m, aw, ww, mode, modes):
        """Bricks, per-slot products and the slot-ordered accumulation, from the packed
        operand words ``aw``, ``ww`` and the mode bits ``mode[p]``."""
        n, P, sgn = self._n, self._P, self._signed
        g = n // P  # brick width
        D = P  # digits per operand

        # the bricks: digit i of a times digit j of w, each signed under its sign control
        def digit_signed(i, p):
            G = D // p
            return sgn and (i % G == G - 1)

        brick = {}
        for i in range(D):
            for j in range(D):
                sa = Signal(name=f"sa{i}")
                sw = Signal(name=f"sw{j}")
                m.d.comb += [
                    sa.eq(Cat(*[mode[p] for p in modes if digit_signed(i, p)]).any()
                          if any(digit_signed(i, p) for p in modes) else 0),
                    sw.eq(Cat(*[mode[p] for p in modes if digit_signed(j, p)]).any()
                          if any(digit_signed(j, p) for p in modes) else 0),
                ]
                da, dw = aw[i * g:(i + 1) * g], ww[j * g:(j + 1) * g]
                xa = Mux(sa, da.as_signed(), da).as_signed() if sgn else da
                xw = Mux(sw, dw.as_signed(), dw).as_signed() if sgn else dw
                b = Signal(signed_shape(2 * g + 2), name=f"brick_{i}_{j}")
                m.d.comb += b.eq(xa * xw)
                brick[i, j] = b

        # products of each slot in each mode, then the selected ones
        prods = []
        for s in range(P):
            sel = 0
            for p in modes:
                if s >= p:
                    continue
                G = D // p
                terms = [brick[i, j] << (g * ((i - s * G) + (j - s * G)))
                         for i in range(s * G, (s + 1) * G) for j in range(s * G, (s + 1) * G)]
                total = terms[0]
                for t in terms[1:]:
                    total = total + t
                sel = Mux(mode[p], total, sel)
            pr = Signal(signed_shape(2 * n + 1), name=f"product{s}")
            m.d.comb += pr.eq(Mux(self.en[s], sel, 0))
            prods.append(pr)

        # accumulate slot by slot, the overflow rule at every addition
        value = Mux(self.first, 0, self.acc)
        for s in range(P):
            step = Signal(signed_shape(self._W), name=f"acc_slot{s}")
            m.d.comb += step.eq(accumulate(value, prods[s], self._W, self._overflow))
            value = step
        with m.If(self.en.any()):
            m.d.sync += self.acc.eq(value)
            with m.If(self.last):
                m.d.sync += self.result.eq(value)
