"""The MAC processing element: nested views, an n x n multiplier, a W-bit accumulator.

Per enabled cycle (``en``), with a and w the viewed codes::

    acc <- ovf((0 if first else acc) + a * w, W)

``ovf`` is :func:`dqt_hw.spec.wrap` (two's complement modulo 2^W) or
:func:`dqt_hw.spec.saturate` (clamp to the signed W-bit range at every addition), exactly
as docs/arithmetic.md orders the additions: ascending k, one product per cycle. A cycle
with ``last`` also copies the new value into ``result``, which holds it while the next
accumulation runs (the output-stationary double buffer: a new tile never waits for a drain).
"""

from __future__ import annotations

from amaranth import Module, Mux, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..design.rules import width_field_bits
from ..spec import signed_range
from ._params import validated_init
from .view import NestedView, code_shape

__all__ = ["MACPE", "accumulate"]


def accumulate(base, addend, W: int, overflow: str):
    """The Amaranth expression ovf(base + addend, W): the sum is formed exactly, then
    wrapped (low W bits) or saturated (clamped to [-2^(W-1), 2^(W-1) - 1])."""
    s = base + addend
    if overflow == "wrap":
        return s[:W].as_signed()
    lo, hi = signed_range(W)
    return Mux(s > hi, hi, Mux(s < lo, lo, s))[:W].as_signed()


class MACPE(wiring.Component):
    """Multiply-accumulate processing element.

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Its ``n``, ``acc_width`` (W, signed, at most 64 bits and at least the signed width
        of the largest product of the built widths: 17 bits for 8-bit unsigned codes),
        ``overflow`` (``"wrap"`` or ``"saturate"``), ``view_rounding``, ``signed``,
        ``widths`` and ``views``: with ``True`` (default) the PE holds its own two nested
        view units and takes master codes and width selects; with ``False`` it takes
        already-viewed codes (the PE array views once per row and column at its edges).
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    a, w : In(code)          operand codes (master codes when ``views``)
    b_a, b_w : In(unsigned)  view widths (only when ``views``)
    en : In(1)               accumulate a * w this cycle
    first : In(1)            this term starts a new accumulation (acc starts from 0)
    last : In(1)             this term ends it: ``result`` takes the new value
    acc : Out(signed(W))     the running accumulator
    result : Out(signed(W))  the last completed accumulation
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("pe", design, params)
        self._n, self._signed, self._widths = d.n, d.signed, d.widths
        self._W, self._overflow = d.acc_width, d.overflow
        self._view_rounding, self._views = d.view_rounding, d.views
        code = code_shape(self._n, self._signed)
        members = {"a": In(code), "w": In(code)}
        if self._views:
            wbits = width_field_bits(self._n)
            members.update(b_a=In(unsigned(wbits)), b_w=In(unsigned(wbits)))
        members.update(
            en=In(1),
            first=In(1),
            last=In(1),
            acc=Out(signed_shape(self._W)),
            result=Out(signed_shape(self._W)),
        )
        super().__init__(members)

    n = property(lambda self: self._n)
    acc_width = property(lambda self: self._W)
    overflow = property(lambda self: self._overflow)
    view_rounding = property(lambda self: self._view_rounding)
    signed = property(lambda self: self._signed)
    widths = property(lambda self: self._widths)
    views = property(lambda self: self._views)

    def elaborate(self, platform):
        m = Module()
        if self._views:
            m.submodules.view_a = va = NestedView(self.design)
            m.submodules.view_w = vw = NestedView(self.design)
            m.d.comb += [va.q.eq(self.a), va.b.eq(self.b_a), vw.q.eq(self.w), vw.b.eq(self.b_w)]
            a, w = va.v, vw.v
        else:
            a, w = self.a, self.w
        base = Mux(self.first, 0, self.acc)
        new = accumulate(base, a * w, self._W, self._overflow)
        with m.If(self.en):
            m.d.sync += self.acc.eq(new)
            with m.If(self.last):
                m.d.sync += self.result.eq(new)
        return m
