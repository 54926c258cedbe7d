"""Integer constants: a real k carried as K * 2^-S, and the integer linear combination.

A constant is a signed integer mantissa ``K`` of a declared width (32 bits by default)
and a shift ``S``: k ~ K * 2^-S. ``quantize_constant`` keeps K normalized
(2^(bits-2) <= |K| < 2^(bits-1)), so multiplying k by a power of two 2^d changes only
S (to S - d) and never K: that is the dequantization-free width switch.

Every integer-only operation of the contract (the DQT add, the DQT multiply and the
requantization of an accumulator) is one ``lincomb``: a sum of integer terms each
multiplied by its own constant, aligned to the largest shift and rounded once.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from .intops import signed_range
from .rounding import check_rounding, round_shift

DEFAULT_CONST_BITS = 32
MAX_CONST_BITS = 48

MAX_MODEL_ACC_WIDTH = 48
"""Widest accumulator the reference model runs (its int64 kernels keep headroom for exact
sums); files whose results come from the model (networks, golden cases) read this bound.
The hardware generators accept up to ``design.rules.MAX_ACC_WIDTH``."""


def _check_bits(bits) -> int:
    if isinstance(bits, bool):
        raise TypeError(f"constant width must be an integer, not {bits!r}")
    try:
        bits = operator.index(bits)
    except TypeError:
        raise TypeError(f"constant width must be an integer, not {bits!r}") from None
    if not 2 <= bits <= MAX_CONST_BITS:
        raise ValueError(f"constant width must be in [2, {MAX_CONST_BITS}] bits, not {bits}")
    return bits


@dataclass(frozen=True)
class Constant:
    """k ~ K * 2^-S with K a signed integer of ``bits`` bits.

    ``target`` is the real value it was made from (if any), kept to report the
    representation error; it takes no part in equality.
    """

    K: int
    S: int
    bits: int = DEFAULT_CONST_BITS
    target: float | None = field(default=None, compare=False)

    def __post_init__(self):
        bits = _check_bits(self.bits)
        for name in ("K", "S"):
            v = getattr(self, name)
            if isinstance(v, bool):
                raise TypeError(f"constant {name} must be an integer, not {v!r}")
            try:
                object.__setattr__(self, name, operator.index(v))
            except TypeError:
                raise TypeError(f"constant {name} must be an integer, not {v!r}") from None
        lo, hi = signed_range(bits)
        if not lo <= self.K <= hi:
            raise ValueError(
                f"constant K = {self.K} does not fit its declared width of {bits} bits "
                f"([{lo}, {hi}])"
            )

    @property
    def value(self) -> float:
        """K * 2^-S as a float (exact while K has at most 53 bits)."""
        return math.ldexp(self.K, -self.S)

    @property
    def abs_error(self) -> float:
        """|K 2^-S - target| (0.0 when made without a target)."""
        return 0.0 if self.target is None else abs(self.value - self.target)

    @property
    def rel_error(self) -> float:
        """|K 2^-S - target| / |target| (0.0 for a zero or missing target)."""
        if not self.target:
            return 0.0
        return self.abs_error / abs(self.target)

    def scaled_pow2(self, d: int) -> "Constant":
        """The constant for k * 2^d: the same K, shift S - d (the width-switch rule).
        A zero constant stays (0, 0)."""
        d = operator.index(d)
        if self.K == 0:  # zero stays the canonical (0, 0)
            return self
        target = None if self.target is None else math.ldexp(self.target, d)
        return Constant(self.K, self.S - d, self.bits, target)


def quantize_constant(k: float, *, bits: int = DEFAULT_CONST_BITS) -> Constant:
    """The normalized (K, S) of the real ``k``: K = round_half_even(f 2^(bits-1)),
    S = bits - 1 - e where k = f 2^e, 1/2 <= |f| < 1 (``math.frexp``).

    A mantissa that rounds up to 2^(bits-1) is halved (S - 1). ``k = 0`` gives (0, 0).
    """
    bits = _check_bits(bits)
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        try:
            k = float(k)  # numpy scalars
        except (TypeError, ValueError):
            raise TypeError(f"constant must be a real number, not {k!r}") from None
    k = float(k)
    if not math.isfinite(k):
        raise ValueError(f"constant must be finite, not {k!r}")
    if k == 0.0:
        return Constant(0, 0, bits, 0.0)
    f, e = math.frexp(k)
    K = round(math.ldexp(f, bits - 1))  # exact: |f 2^(bits-1)| < 2^53
    S = bits - 1 - e
    if abs(K) == 1 << (bits - 1):
        if K > 0:
            K, S = K >> 1, S - 1
        # K = -2^(bits-1) fits the signed range as it is
    return Constant(int(K), int(S), bits, k)


def align(constants) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """(K_i, E_i, S) with S = max S_i over the non-zero constants and E_i = S - S_i >= 0.

    Zero constants get E_i = 0. With no non-zero constant S = 0.
    """
    cs = list(constants)
    nz = [c.S for c in cs if c.K != 0]
    S = max(nz) if nz else 0
    return (
        tuple(c.K for c in cs),
        tuple((S - c.S) if c.K != 0 else 0 for c in cs),
        S,
    )


def lincomb(terms, constants, rounding: str, lo: int, hi: int) -> int:
    """clamp(round_shift(sum_i (K_i * x_i) << E_i, S, rounding), lo, hi).

    ``terms`` are integers x_i, ``constants`` the matching ``Constant``s; (K, E, S) come
    from ``align``. The sum is exact (no intermediate rounding or overflow).
    """
    terms = [operator.index(x) for x in terms]
    constants = list(constants)
    if len(terms) != len(constants):
        raise ValueError(f"{len(terms)} terms but {len(constants)} constants")
    check_rounding(rounding)
    Ks, Es, S = align(constants)
    acc = sum((K * x) << E for K, x, E in zip(Ks, terms, Es))
    v = round_shift(acc, S, rounding)
    return lo if v < lo else hi if v > hi else v
