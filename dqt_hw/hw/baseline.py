"""Baseline rescale unit: a precision switch the non-nested way, by a multiplier.

Without nested scales, moving a code q from one quantization grid to another needs the
dequantize/requantize cycle in integer form, one multiply per element::

    v = clamp(round_shift(K * q + Z, S, rounding), lo_b, hi_b)

with a run-time scale mantissa K, offset Z (the zero-point change), shift S and output
width b. It is the unit that :class:`~dqt_hw.hw.view.NestedView` (a shift) replaces, built
so that the two can be synthesized side by side (``make synth``) and their areas compared
on generated hardware instead of assumed.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..design.rules import width_field_bits
from ..spec import ROUNDING_CODES, code_range
from ._params import validated_init
from .requant import round_shift_hw
from .view import code_shape

__all__ = ["RescaleUnit"]


class RescaleUnit(wiring.Component):
    """Per-element rescale by an integer multiplier (combinational).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Its ``n`` (master width of the input and output codes), ``rounding`` (one of
        ``dqt_hw.spec.ROUNDINGS``), ``signed``, ``mult_bits`` (width of the signed
        multiplier K), ``sbits`` (width of the unsigned right shift S) and ``widths`` (the
        output widths built; others clamp to [0, 0]).
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    q : In(code); k : In(signed(mult_bits)); z : In(signed(mult_bits + n))
    s : In(unsigned(sbits)); b : In(unsigned); v : Out(code)
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("rescale", design, params)
        self._n, self._rounding, self._signed = d.n, d.rounding, d.signed
        self._mult_bits, self._sbits, self._widths = d.mult_bits, d.sbits, d.widths
        super().__init__(
            {
                "q": In(code_shape(self._n, self._signed)),
                "k": In(signed_shape(self._mult_bits)),
                "z": In(signed_shape(self._mult_bits + self._n)),
                "s": In(unsigned(self._sbits)),
                "b": In(unsigned(width_field_bits(self._n))),
                "v": Out(code_shape(self._n, self._signed)),
            }
        )

    n = property(lambda self: self._n)
    rounding = property(lambda self: self._rounding)
    signed = property(lambda self: self._signed)
    mult_bits = property(lambda self: self._mult_bits)
    sbits = property(lambda self: self._sbits)
    widths = property(lambda self: self._widths)

    def elaborate(self, platform):
        m = Module()
        width = self._mult_bits + self._n + 2
        total = Signal(signed_shape(width), name="total")
        m.d.comb += total.eq(self.k * self.q + self.z)
        rounded = Signal(signed_shape(width), name="rounded")
        code = Const(ROUNDING_CODES[self._rounding], 2)
        m.d.comb += rounded.eq(round_shift_hw(m, total, self.s, code))
        lo = Signal(code_shape(self._n, self._signed), name="lo")
        hi = Signal(code_shape(self._n, self._signed), name="hi")
        with m.Switch(self.b):
            for b in self._widths:
                with m.Case(b):
                    blo, bhi = code_range(b, self._signed)
                    m.d.comb += [lo.eq(blo), hi.eq(bhi)]
            with m.Default():
                m.d.comb += [lo.eq(0), hi.eq(0)]
        m.d.comb += self.v.eq(Mux(rounded < lo, lo, Mux(rounded > hi, hi, rounded)))
        return m
