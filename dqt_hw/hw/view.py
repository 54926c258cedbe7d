"""The nested view unit: the b-bit view of an n-bit master code, b from a run-time register.

Hardware twin of :func:`dqt_hw.spec.nested_view`::

    v = clamp(round_shift(q, n - b, rounding), lo_b, hi_b)

- ``floor``: the pure shift ``q >> (n - b)`` (arithmetic for signed codes): a multiplexer
  of wires, no arithmetic at all.
- ``half_up``: the paper's Eq. 4, ``min((q + 2^(n-b-1)) >> (n-b), hi_b)``: one adder per
  supported width and the clamp (only the upper bound can be crossed).

The width register ``b`` holds the view width itself (not the shift). Only the widths in
``widths`` are built; any other value of ``b`` gives the view 0.
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import code_range
from ..design import Design
from ..design.rules import width_field_bits
from ._params import validated_init

__all__ = ["NestedView", "code_shape"]


def code_shape(n: int, signed_codes: bool) -> Shape:
    """Shape of an n-bit code: ``signed(n)`` or ``unsigned(n)``."""
    return signed_shape(n) if signed_codes else unsigned(n)


class NestedView(wiring.Component):
    """Nested view unit (combinational).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Its ``n``, ``view_rounding`` (``"floor"`` or ``"half_up"``), ``signed`` and
        ``widths`` (the supported view widths); a design of another component gives its
        view unit.
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    q : In(code)       master code
    b : In(unsigned)   view width (run-time)
    v : Out(code)      the b-bit view, held in an n-bit signal of the code's signedness
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("view", design, params)
        self._n, self._rounding = d.n, d.view_rounding
        self._signed, self._widths = d.signed, d.widths
        shape = code_shape(self._n, self._signed)
        super().__init__(
            {
                "q": In(shape),
                "b": In(unsigned(width_field_bits(self._n))),
                "v": Out(shape),
            }
        )

    n = property(lambda self: self._n)
    view_rounding = property(lambda self: self._rounding)
    signed = property(lambda self: self._signed)
    widths = property(lambda self: self._widths)

    def elaborate(self, platform):
        m = Module()
        n, q = self._n, self.q
        with m.Switch(self.b):
            for b in self._widths:
                d = n - b
                with m.Case(b):
                    if d == 0:
                        m.d.comb += self.v.eq(q)
                    elif self._rounding == "floor":
                        m.d.comb += self.v.eq(q >> d)
                    else:
                        _, hi = code_range(b, self._signed)
                        r = (q + (1 << (d - 1))) >> d
                        m.d.comb += self.v.eq(Mux(r > hi, hi, r))
            with m.Default():
                m.d.comb += self.v.eq(0)
        return m
