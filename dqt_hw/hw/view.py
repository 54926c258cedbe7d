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
from ._params import (
    check_bool,
    check_master_width,
    check_view_rounding,
    check_widths,
    validated_init,
    width_field_bits,
)

__all__ = ["NestedView", "code_shape"]


def code_shape(n: int, signed_codes: bool) -> Shape:
    """Shape of an n-bit code: ``signed(n)`` or ``unsigned(n)``."""
    return signed_shape(n) if signed_codes else unsigned(n)


class NestedView(wiring.Component):
    """Nested view unit (combinational).

    Parameters (keyword-only)
    -------------------------
    n : int
        Master width, 2..16.
    rounding : str
        ``"floor"`` or ``"half_up"``.
    signed : bool
        Two's-complement codes (arithmetic shift) instead of unsigned offset codes.
    widths : sequence of int, optional
        Supported view widths (default: all, 1..n unsigned, 2..n signed).

    Members
    -------
    q : In(code)       master code
    b : In(unsigned)   view width (run-time)
    v : Out(code)      the b-bit view, held in an n-bit signal of the code's signedness
    """

    @validated_init
    def __init__(self, *, n=8, rounding="floor", signed=False, widths=None):
        self._n = check_master_width(n)
        self._rounding = check_view_rounding(rounding)
        self._signed = check_bool("signed", signed)
        self._widths = check_widths(widths, self._n, self._signed)
        shape = code_shape(self._n, self._signed)
        super().__init__(
            {
                "q": In(shape),
                "b": In(unsigned(width_field_bits(self._n))),
                "v": Out(shape),
            }
        )

    n = property(lambda self: self._n)
    rounding = property(lambda self: self._rounding)
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
