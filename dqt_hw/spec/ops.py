"""Real constants of the DQT operators, derived from formats and widths.

Each function returns the real constants k_i of one operator at the given view widths
and, with ``switch_shifts``, the power of two by which each constant moves when the widths
change. Quantizing a constant computed here at a lower width gives exactly the K of the
master-width constant with the shift moved (``Constant.scaled_pow2``): the
dequantization-free property.

Notation (docs/arithmetic.md): a real value is m + delta_b * q_b, with
delta_b = delta * 2^(n - b); d = n - b is a view's shift.
"""

from __future__ import annotations

from .format import Format


def _deltas(*pairs):
    return [f.delta_at(b) for f, b in pairs]


def add_constants(f1: Format, b1: int, f2: Format, b2: int, fo: Format, bo: int):
    """q1 (+) q2 = k1 q1 + k2 q2 + k3 (real x1 + x2 in the output format)."""
    d1, d2, do = _deltas((f1, b1), (f2, b2), (fo, bo))
    return (d1 / do, d2 / do, (f1.m + f2.m - fo.m) / do)


def mul_constants(f1: Format, b1: int, f2: Format, b2: int, fo: Format, bo: int):
    """q1 (x) q2 = k1 q1 q2 + k2 q1 + k3 q2 + k4 (real x1 * x2 in the output format)."""
    d1, d2, do = _deltas((f1, b1), (f2, b2), (fo, bo))
    return (d1 * d2 / do, f2.m * d1 / do, f1.m * d2 / do, (f1.m * f2.m - fo.m) / do)


def requant_constants(
    fa: Format, ba: int, fw: Format, bw: int, fo: Format, bo: int, taps: int, bias: float = 0.0
):
    """Output code = k1 acc + k2 sum_a + k3 sum_w + k4 for a dot product of ``taps`` terms.

    sum_i (m_a + da qa_i)(m_w + dw qw_i) + bias = da dw acc + m_w da sum_a + m_a dw sum_w
    + taps m_a m_w + bias, re-expressed as a code of the output format.
    """
    da, dw, do = _deltas((fa, ba), (fw, bw), (fo, bo))
    return (
        da * dw / do,
        fw.m * da / do,
        fa.m * dw / do,
        (taps * fa.m * fw.m + bias - fo.m) / do,
    )


def switch_shifts(op: str, d_in1: int, d_in2: int, d_out: int) -> tuple[int, ...]:
    """Power-of-two exponent by which each constant of ``op`` moves when the view shifts
    grow by (d_in1, d_in2, d_out) (for ``requant``: activation, weight, output).

    The constant k_i becomes k_i * 2^e_i, i.e. its shift S_i becomes S_i - e_i.
    """
    if op == "requant" or op == "mul":
        return (d_in1 + d_in2 - d_out, d_in1 - d_out, d_in2 - d_out, -d_out)
    if op == "add":
        return (d_in1 - d_out, d_in2 - d_out, -d_out)
    raise ValueError(f"op must be one of ('add', 'mul', 'requant'), not {op!r}")
