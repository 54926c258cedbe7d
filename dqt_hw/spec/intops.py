"""Two's-complement helpers: ranges, wrap, saturate, bits needed."""

from __future__ import annotations

import operator

MAX_INT_BITS = 4096
"""Widest integer a width, wrap or saturate takes, and the largest shift |s| of
``round_shift``: far beyond any datapath, small enough that no call allocates absurdly."""


def as_int(name, x) -> int:
    """``x`` as a Python int (``operator.index``); a bool or a non-integer is a
    ``TypeError`` naming ``name``."""
    if isinstance(x, bool):
        raise TypeError(f"{name} must be an integer, not {x!r}")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {x!r}") from None


def check_width(name: str, width, lo: int = 1, hi: int = 64) -> int:
    """Validate a bit width: an int in [lo, hi]."""
    width = as_int(name, width)
    if not lo <= width <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {width}")
    return width


def signed_range(width: int) -> tuple[int, int]:
    """(min, max) of a two's-complement integer of ``width`` bits."""
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def unsigned_range(width: int) -> tuple[int, int]:
    """(min, max) of an unsigned integer of ``width`` bits."""
    return 0, (1 << width) - 1


def wrap(x: int, width: int) -> int:
    """x modulo 2^width, read as a two's-complement ``width``-bit integer."""
    x = as_int("x", x)
    width = check_width("width", width, 1, MAX_INT_BITS)
    m = 1 << width
    x &= m - 1
    return x - m if x >> (width - 1) else x


def saturate(x: int, width: int) -> int:
    """x clamped to the two's-complement range of ``width`` bits."""
    x = as_int("x", x)
    width = check_width("width", width, 1, MAX_INT_BITS)
    lo, hi = signed_range(width)
    return lo if x < lo else hi if x > hi else x


def clamp(x: int, lo: int, hi: int) -> int:
    """x clamped to [lo, hi]."""
    return lo if x < lo else hi if x > hi else x


def signed_bits(x: int) -> int:
    """The fewest two's-complement bits that hold x (at least 1)."""
    x = as_int("x", x)
    return (x if x >= 0 else ~x).bit_length() + 1


def signed_bits_for_magnitude(m: int) -> int:
    """The fewest two's-complement bits that hold every integer in [-m, m]."""
    m = as_int("m", m)
    if m < 0:
        raise ValueError(f"magnitude must be non-negative, not {m}")
    return m.bit_length() + 1
