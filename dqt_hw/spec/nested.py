"""The nested view: a b-bit code from an n-bit master code, by a shift."""

from __future__ import annotations

import operator

from .format import MAX_MASTER_BITS, MIN_MASTER_BITS, code_range
from .rounding import check_rounding, round_shift


def check_view_widths(n, b, signed: bool = False) -> tuple[int, int]:
    """Validate a (master width, view width) pair; return them as ints."""
    for name, v in (("master width n", n), ("width b", b)):
        if isinstance(v, bool):
            raise TypeError(f"{name} must be an integer, not {v!r}")
        try:
            operator.index(v)
        except TypeError:
            raise TypeError(f"{name} must be an integer, not {v!r}") from None
    n, b = operator.index(n), operator.index(b)
    if not MIN_MASTER_BITS <= n <= MAX_MASTER_BITS:
        raise ValueError(
            f"master width n must be in [{MIN_MASTER_BITS}, {MAX_MASTER_BITS}], not {n}"
        )
    low = 2 if signed else 1
    if b > n:
        raise ValueError(f"width b = {b} is above the master width n = {n}")
    if b < low:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"width b = {b} is below {low}, the narrowest {kind} view")
    return n, b


def nested_view(q: int, n: int, b: int, rounding: str, *, signed: bool = False) -> int:
    """The ``b``-bit view of the ``n``-bit master code ``q``.

    ``clamp(round_shift(q, n - b, rounding), lo_b, hi_b)`` where [lo_b, hi_b] is the
    code range at width b. With ``floor`` this is the pure shift ``q >> (n - b)``
    (arithmetic for signed codes) and the clamp never acts; with ``half_up`` it is the
    paper's Eq. 4, ``min((q + 2^(n-b-1)) >> (n-b), 2^b - 1)``.
    """
    n, b = check_view_widths(n, b, signed)
    check_rounding(rounding)
    if isinstance(q, bool):
        raise TypeError(f"code q must be an integer, not {q!r}")
    try:
        q = operator.index(q)
    except TypeError:
        raise TypeError(f"code q must be an integer, not {q!r}") from None
    lo, hi = code_range(n, signed)
    if not lo <= q <= hi:
        raise ValueError(f"code q = {q} is outside [{lo}, {hi}] for master width n = {n}")
    v = round_shift(q, n - b, rounding)
    lo_b, hi_b = code_range(b, signed)
    return lo_b if v < lo_b else hi_b if v > hi_b else v
