"""Rounding modes and the integer shift/divide primitives of the contract.

Every function here works on Python ``int`` (arbitrary precision) and is the single
definition that the Numba model, the hardware generators and the test oracle follow.
Rounding is always an explicit argument: there is no default mode anywhere.
"""

from __future__ import annotations

from .intops import MAX_INT_BITS

ROUNDINGS = ("floor", "half_up", "half_even", "half_away")
"""Rounding modes, by name (docs/arithmetic.md, section "Rounding").

- ``floor``:     towards minus infinity (an arithmetic right shift).
- ``half_up``:   to nearest, ties towards plus infinity ((x + 2^(s-1)) >> s).
- ``half_even``: to nearest, ties to the even result.
- ``half_away``: to nearest, ties away from zero (gemmlowp ``RoundingDivideByPOT``).
"""

ROUNDING_CODES = {name: i for i, name in enumerate(ROUNDINGS)}
"""Integer code of each rounding mode, as used by the Numba kernels and hardware."""


def check_rounding(rounding) -> str:
    """Return ``rounding`` if it names a rounding mode, else raise."""
    if not isinstance(rounding, str):
        raise TypeError(f"rounding must be a string, one of {ROUNDINGS}, not {rounding!r}")
    if rounding not in ROUNDING_CODES:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    return rounding


def _check_int(name, x):
    if isinstance(x, bool) or not isinstance(x, int):
        # numpy integers are accepted through operator.index
        try:
            import operator

            return operator.index(x)
        except TypeError:
            raise TypeError(f"{name} must be an integer, not {x!r}") from None
    return x


def round_shift(x: int, s: int, rounding: str) -> int:
    """x * 2^-s rounded to an integer by ``rounding``; for s <= 0 it is the exact x << -s.
    ``|s|`` at most :data:`MAX_INT_BITS` (a larger shift is a ValueError, not a memory
    blow-up).

    This is the only way the contract divides by a power of two.
    """
    x = _check_int("x", x)
    s = _check_int("s", s)
    check_rounding(rounding)
    if not -MAX_INT_BITS <= s <= MAX_INT_BITS:
        raise ValueError(f"shift s must be in [-{MAX_INT_BITS}, {MAX_INT_BITS}], not {s}")
    if s <= 0:
        return x << (-s)
    q = x >> s  # floor
    if rounding == "floor":
        return q
    r = x - (q << s)  # 0 <= r < 2^s
    half = 1 << (s - 1)
    if r < half:
        return q
    if r > half:
        return q + 1
    # exact tie
    if rounding == "half_up":
        return q + 1
    if rounding == "half_even":
        return q + (q & 1)
    # half_away: ties away from zero; x = q*2^s + half, so x >= 0 iff q >= 0
    return q + 1 if q >= 0 else q


def round_div(x: int, d: int, rounding: str) -> int:
    """x / d rounded to an integer by ``rounding`` (d > 0). Used by average pooling."""
    x = _check_int("x", x)
    d = _check_int("d", d)
    check_rounding(rounding)
    if d <= 0:
        raise ValueError(f"divisor must be positive, not {d}")
    q, r = divmod(x, d)  # floor division, 0 <= r < d
    if rounding == "floor":
        return q
    twice = 2 * r
    if twice < d:
        return q
    if twice > d:
        return q + 1
    if rounding == "half_up":
        return q + 1
    if rounding == "half_even":
        return q + (q & 1)
    return q + 1 if q >= 0 else q
