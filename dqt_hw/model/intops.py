"""The integer primitives every Numba kernel of the model shares: the one ``round_shift``,
``round_div``, and the rounding and overflow codes (named, from ``dqt_hw.spec``).

Rounding and overflow modes reach the kernels as the integer codes of
``dqt_hw.spec.ROUNDING_CODES`` and ``dqt_hw.spec.OVERFLOW_CODES``; the names below are
those codes, so no kernel compares a mode with a bare number.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import spec

R_FLOOR = spec.ROUNDING_CODES["floor"]
R_HALF_UP = spec.ROUNDING_CODES["half_up"]
R_HALF_EVEN = spec.ROUNDING_CODES["half_even"]
R_HALF_AWAY = spec.ROUNDING_CODES["half_away"]
O_WRAP = spec.OVERFLOW_CODES["wrap"]
O_SATURATE = spec.OVERFLOW_CODES["saturate"]
O_TRAP = spec.OVERFLOW_CODES["trap"]


@njit(cache=True, inline="always")
def round_shift(x, s, r):
    """docs/arithmetic.md "Rounding": x * 2^-s rounded by mode r; x << -s for s <= 0.

    It branches on the shift only (the same for every element of a caller's loop, so
    the loop is unswitched and vectorises), never on x: the rounding is ``shift_round``.
    The same integers as ``spec.round_shift`` wherever |x| + 2^(s-1) < 2^63 and s <= 62,
    which the callers prove (every sum they shift stays below 2^62, every shift at most
    62; a left shift never leaves int64)."""
    if s <= 0:
        return x << (-s)
    return shift_round(x, s, (np.int64(1) << s) >> 1, r)


@njit(cache=True, inline="always")
def shift_round(v, t, h, r):
    """The rounding of ``round_shift``, v * 2^-t for t >= 0, given h = 2^(t-1) (0 for
    t = 0), for callers that keep h per channel: (v + b) >> t with b = 0 (floor), h
    (half_up), h - 1 + ((v >> t) & 1) (half_even) or h - [v < 0] (half_away); no b for
    t = 0 (m = 0 below)."""
    if r == R_FLOOR:
        return v >> t
    m = min(t, 1)
    if r == R_HALF_UP:
        b = h
    elif r == R_HALF_EVEN:
        b = h - m + ((v >> t) & m)
    else:
        b = h - (np.int64(v < 0) & m)
    return (v + b) >> t


@njit(cache=True, inline="always")
def round_div(x, d, r):
    """x / d (d > 0) rounded by mode r (docs/arithmetic.md "Pooling")."""
    q = x // d
    rem = x - q * d
    if r == R_FLOOR:
        return q
    t = 2 * rem
    if t < d:
        return q
    if t > d:
        return q + 1
    if r == R_HALF_UP:
        return q + 1
    if r == R_HALF_EVEN:
        return q + (q & 1)
    if q >= 0:
        return q + 1
    return q


@njit(cache=True, inline="always")
def clamp(v, lo, hi):
    """min(max(v, lo), hi) (branch-free: it vectorises)."""
    return min(max(v, lo), hi)
