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

from ..spec import signed_bits_for_magnitude, signed_range
from ._params import (
    check_bool,
    check_int,
    check_master_width,
    check_overflow,
    check_view_rounding,
    check_widths,
    validated_init,
    width_field_bits,
)
from .view import NestedView, code_shape

__all__ = ["MACPE", "MAX_ACC_WIDTH", "check_acc_width", "accumulate", "max_product",
           "min_acc_width"]

MAX_ACC_WIDTH = 64


def max_product(widths, signed: bool) -> int:
    """The largest product of two viewed codes of at most ``max(widths)`` bits:
    (2^b - 1)^2 unsigned, (-2^(b-1))^2 = 2^(2b-2) signed."""
    b = max(widths)
    return ((1 << b) - 1) ** 2 if not signed else 1 << (2 * b - 2)


def min_acc_width(n: int, *, signed: bool = False, widths=None) -> int:
    """The narrowest accumulator the generators accept: the signed width of the largest
    product of two viewed codes of ``max(widths)`` bits (default: n)."""
    b = max(widths) if widths is not None else n
    return signed_bits_for_magnitude(max_product((b,), signed))


def check_acc_width(acc_width, n: int, *, signed: bool = False, widths=None) -> int:
    """W must hold one full product of the built widths (docs/arithmetic.md 6.1: the
    signed width of the largest product, e.g. 17 bits for 8-bit x 8-bit unsigned codes),
    and be at most 64. ``widths`` default: all widths up to n."""
    W = check_int("accumulator width W", acc_width)
    b = max(widths) if widths is not None else n
    prod = max_product((b,), signed)
    need = signed_bits_for_magnitude(prod)
    if W < need:
        kind = "signed" if signed else "unsigned"
        raise ValueError(
            f"accumulator width W = {W} is narrower than one product: {b}-bit x {b}-bit "
            f"{kind} codes reach {prod}, which needs {need} bits"
        )
    if W > MAX_ACC_WIDTH:
        raise ValueError(f"accumulator width W must be at most {MAX_ACC_WIDTH}, not {W}")
    return W


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

    Parameters (keyword-only)
    -------------------------
    n : int
        Master width of the operand codes, 2..16.
    acc_width : int
        Accumulator width W (signed), at most 64 bits and at least the signed width of
        the largest product of the built widths (17 bits for 8-bit unsigned codes).
    overflow : str
        ``"wrap"`` or ``"saturate"``.
    view_rounding : str
        Rounding of the nested views, ``"floor"`` or ``"half_up"``.
    signed : bool
        Two's-complement operand codes (default: unsigned offset codes).
    widths : sequence of int, optional
        Supported view widths (default: all).
    views : bool
        With ``True`` (default) the PE holds its own two nested view units and takes
        master codes and width selects; with ``False`` it takes already-viewed codes (the
        PE array views once per row and column at its edges).

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
    def __init__(
        self,
        *,
        n=8,
        acc_width=32,
        overflow="wrap",
        view_rounding="floor",
        signed=False,
        widths=None,
        views=True,
    ):
        self._n = check_master_width(n)
        self._signed = check_bool("signed", signed)
        self._widths = check_widths(widths, self._n, self._signed)
        self._W = check_acc_width(acc_width, self._n, signed=self._signed, widths=self._widths)
        self._overflow = check_overflow(overflow)
        self._view_rounding = check_view_rounding(view_rounding)
        self._views = check_bool("views", views)
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
            kw = dict(n=self._n, rounding=self._view_rounding, signed=self._signed,
                      widths=self._widths)
            m.submodules.view_a = va = NestedView(**kw)
            m.submodules.view_w = vw = NestedView(**kw)
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
