"""The requantizer lane: the contract's integer linear combination, rounded once, clamped.

Hardware twin of :func:`dqt_hw.spec.lincomb` with the constants already aligned
(:func:`dqt_hw.spec.align` gives them)::

    code = clamp(round_shift((K1*acc << E1) + (K2*sum_a << E2) + (K3*sum_w << E3)
                             + (K4 << E4), S, rounding), lo, hi)

with [lo, hi] the code range of the output width ``b_out`` (ReLU and PACT clipping are this
clamp). The sum is formed at its exact width (Amaranth sizes every intermediate), so it can
never overflow: see :attr:`Requantizer.sum_bits`. ``S`` is a run-time shift in
[0, 2^sbits - 1]; the contract's negative S (a left shift) is folded into the E_i by the
configuration writer (docs/hardware.md). ``rounding`` is a run-time 2-bit code,
:data:`dqt_hw.spec.ROUNDING_CODES`: floor, half_up, half_even, half_away.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth import signed as signed_shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..design import Design
from ..design.rules import width_field_bits
from ..spec import ROUNDING_CODES, code_range
from ._params import validated_init
from .view import code_shape

__all__ = ["PipelinedRequantizer", "Requantizer", "lane_code", "lane_layout", "lane_terms",
           "lane_total", "round_shift_hw"]

def lane_layout(kbits: int, ebits: int, sbits: int) -> data.StructLayout:
    """Per-lane (per output channel) constants: K1..K4 (signed, kbits), E1..E4
    (unsigned, ebits), S (unsigned, sbits)."""
    return data.StructLayout(
        {
            "k1": signed_shape(kbits),
            "k2": signed_shape(kbits),
            "k3": signed_shape(kbits),
            "k4": signed_shape(kbits),
            "e1": unsigned(ebits),
            "e2": unsigned(ebits),
            "e3": unsigned(ebits),
            "e4": unsigned(ebits),
            "s": unsigned(sbits),
        }
    )


if tuple(ROUNDING_CODES[r] for r in ("floor", "half_up", "half_even", "half_away")) != (
        0, 1, 2, 3):  # pragma: no cover - the decoder below reads the code bit by bit
    raise RuntimeError("round_shift_hw expects the rounding codes 0..3 in ROUNDINGS order")


def round_shift_hw(m: Module, x, s, rounding):
    """Amaranth twin of :func:`dqt_hw.spec.round_shift` for a signed ``x``, an unsigned
    run-time shift ``s`` >= 0 and a run-time rounding code; returns the rounded value."""
    width = len(x)
    q = x >> s  # arithmetic: floor
    # the half bit (bit s-1 of x; 0 when s = 0) and the sticky bits below it
    half = (Cat(Const(0, 1), x.as_unsigned()) >> s)[0]
    smax = (1 << len(s)) - 1
    below = [x[i] & (s > i + 1) for i in range(min(width, smax - 1))]  # bit i < s - 1
    sticky = Cat(*below).any() if below else Const(0, 1)
    negative = x[width - 1]
    # decode the 2-bit rounding code by its bits (codes 0..3 in ROUNDINGS order)
    inc = Signal(name="round_inc")
    r = rounding
    m.d.comb += inc.eq(
        Mux(
            r[1],
            Mux(r[0], half & (sticky | ~negative), half & (sticky | q[0])),  # away, even
            Mux(r[0], half, 0),  # half_up, floor
        )
    )
    return q + inc


class Requantizer(wiring.Component):
    """One requantizer lane (combinational).

    Parameters
    ----------
    design : dqt_hw.design.Design, optional
        Its ``n`` (master width of the output codes; ``b_out`` selects a width in
        ``widths``, any other clamps to [0, 0]), ``acc_width`` (W of the signed
        accumulator input), ``sum_width`` (of the signed side-sum inputs; a tile's design
        gives its side-sum width), ``kbits`` (signed constants K1..K4), ``ebits``
        (unsigned left shifts E1..E4), ``sbits`` (unsigned right shift S) and ``signed``
        (two's-complement output codes).
    **params
        Keyword parameters on top of ``design`` (or of the defaults).

    Members
    -------
    acc : In(signed(W)); sum_a, sum_w : In(signed(sum_width))
    cfg : In(lane_layout)       K1..K4, E1..E4, S
    rounding : In(unsigned(2))  a :data:`dqt_hw.spec.ROUNDING_CODES` value
    b_out : In(unsigned)        output width
    code : Out(code)            the output code
    """

    @validated_init
    def __init__(self, design=None, /, **params):
        self.design = d = Design.of("requant", design, params)
        self._n, self._W, self._sum_width = d.n, d.acc_width, d.sum_width
        self._kbits, self._ebits, self._sbits = d.kbits, d.ebits, d.sbits
        self._signed, self._widths = d.signed, d.widths
        self._layout = lane_layout(self._kbits, self._ebits, self._sbits)
        super().__init__(
            {
                "acc": In(signed_shape(self._W)),
                "sum_a": In(signed_shape(self._sum_width)),
                "sum_w": In(signed_shape(self._sum_width)),
                "cfg": In(self._layout),
                "rounding": In(unsigned(2)),
                "b_out": In(unsigned(width_field_bits(self._n))),
                "code": Out(code_shape(self._n, self._signed)),
            }
        )

    n = property(lambda self: self._n)
    acc_width = property(lambda self: self._W)
    sum_width = property(lambda self: self._sum_width)
    kbits = property(lambda self: self._kbits)
    ebits = property(lambda self: self._ebits)
    sbits = property(lambda self: self._sbits)
    signed = property(lambda self: self._signed)
    widths = property(lambda self: self._widths)
    layout = property(lambda self: self._layout)

    @property
    def sum_bits(self) -> int:
        """Width of the exact sum of the four terms (no overflow is possible)."""
        return self.design.requant_sum_bits

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        total = lane_total(m, lane_terms(c, self.acc, self.sum_a, self.sum_w), self.sum_bits)
        m.d.comb += self.code.eq(lane_code(m, total, c.s, self.rounding, self.b_out,
                                           self.design))
        return m


def lane_terms(cfg, acc, sum_a, sum_w) -> list:
    """The four terms K1*acc << E1, K2*sum_a << E2, K3*sum_w << E3, K4 << E4 (Amaranth
    values at their exact widths)."""
    return [(cfg.k1 * acc) << cfg.e1, (cfg.k2 * sum_a) << cfg.e2,
            (cfg.k3 * sum_w) << cfg.e3, cfg.k4 << cfg.e4]


def lane_total(m: Module, terms, sum_bits: int) -> Signal:
    """The exact sum of the four terms (``sum_bits`` wide: it never overflows)."""
    total = Signal(signed_shape(sum_bits), name="total")
    m.d.comb += total.eq(terms[0] + terms[1] + terms[2] + terms[3])
    return total


def lane_code(m: Module, total, s, rounding, b_out, design):
    """The output code of the sum: rounded once by S, clamped to the range of ``b_out``."""
    rounded = Signal(signed_shape(len(total)), name="rounded")
    m.d.comb += rounded.eq(round_shift_hw(m, total, s, rounding))
    lo = Signal(code_shape(design.n, design.signed), name="lo")
    hi = Signal(code_shape(design.n, design.signed), name="hi")
    with m.Switch(b_out):
        for b in design.widths:
            with m.Case(b):
                blo, bhi = code_range(b, design.signed)
                m.d.comb += [lo.eq(blo), hi.eq(bhi)]
        with m.Default():
            m.d.comb += [lo.eq(0), hi.eq(0)]
    return Mux(rounded < lo, lo, Mux(rounded > hi, hi, rounded))


class PipelinedRequantizer(wiring.Component):
    """A requantizer lane with ``stages`` register ranks (1 or 2), for a tile with
    ``rq_stages`` > 0: the ports of :class:`Requantizer` plus ``en``. Every rank loads at a
    rising edge with ``en`` high and holds otherwise, so ``code`` is the lane's value of
    the inputs presented ``stages`` enabled edges earlier (the constants S, ``rounding``
    and ``b_out`` travel with their row). Rank 1 (``stages`` = 2 only) holds the four
    shifted terms, the last rank the exact sum; rounding and clamp follow it."""

    @validated_init
    def __init__(self, design, stages: int):
        self.design = d = Design.of("requant", design)
        if stages not in (1, 2):
            raise ValueError(f"requantizer pipeline stages must be 1 or 2, not {stages!r}")
        self._stages = stages
        self._layout = lane_layout(d.kbits, d.ebits, d.sbits)
        super().__init__(
            {
                "acc": In(signed_shape(d.acc_width)),
                "sum_a": In(signed_shape(d.sum_width)),
                "sum_w": In(signed_shape(d.sum_width)),
                "cfg": In(self._layout),
                "rounding": In(unsigned(2)),
                "b_out": In(unsigned(width_field_bits(d.n))),
                "en": In(1),
                "code": Out(code_shape(d.n, d.signed)),
            }
        )

    stages = property(lambda self: self._stages)

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        terms = lane_terms(c, self.acc, self.sum_a, self.sum_w)
        late = [c.s, self.rounding, self.b_out]  # what the stages after the sum read
        if self._stages == 2:
            terms = self._rank(m, terms, [f"term{i}_q" for i in range(1, 5)])
            late = self._rank(m, late, ["s_q1", "rounding_q1", "b_out_q1"])
        total = lane_total(m, terms, self.design.requant_sum_bits)
        total, *late = self._rank(m, [total, *late],
                                  ["total_q", "s_q", "rounding_q", "b_out_q"])
        m.d.comb += self.code.eq(lane_code(m, total, *late, self.design))
        return m

    def _rank(self, m, values, names):
        """Registers of ``values`` (loaded when ``en``)."""
        regs = [Signal(Value.cast(v).shape(), name=nm) for v, nm in zip(values, names)]
        with m.If(self.en):
            m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
        return regs
