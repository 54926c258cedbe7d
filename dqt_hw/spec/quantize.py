"""Float <-> code conversion, to build test data and import real weights.

These are float-side helpers (not part of the integer contract): the codes they make are
then processed bit-exactly. Rounding to codes is round-half-even (``numpy.rint``).
"""

from __future__ import annotations

import numpy as np

from .format import Format


def fit_format(lo: float, hi: float, n: int, *, signed: bool = False, widths=None) -> Format:
    """The format of master width ``n`` covering [lo, hi].

    Unsigned: m = lo, delta = (hi - lo) / (2^n - 1). Signed (symmetric): m = 0,
    delta = max(|lo|, |hi|) / (2^(n-1) - 1). A degenerate range gets delta = 1.
    """
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"range must be finite, not [{lo}, {hi}]")
    if lo > hi:
        raise ValueError(f"range minimum {lo} is above its maximum {hi}")
    if signed:
        a = max(abs(lo), abs(hi))
        delta = a / ((1 << (n - 1)) - 1) if a > 0 else 1.0
        return Format(n, signed=True, m=0.0, delta=delta, widths=widths)
    delta = (hi - lo) / ((1 << n) - 1) if hi > lo else 1.0
    return Format(n, signed=False, m=lo, delta=delta, widths=widths)


def quantize(x, fmt: Format) -> np.ndarray:
    """Master codes of the real array ``x``: clamp(rint((x - m) / delta)) as int64.
    A NaN or infinite value is a ValueError (it has no code)."""
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" at index {at if len(at) != 1 else at[0]}" if at else ""
        raise ValueError(f"quantize: x must be finite, not {x[bad].flat[0]}{where} "
                         f"({int(bad.sum())} of {x.size} values)")
    lo, hi = fmt.code_range()
    with np.errstate(over="ignore"):  # a huge finite x saturates: inf is clipped
        return np.clip(np.rint((x - fmt.m) / fmt.delta), lo, hi).astype(np.int64)


def dequantize(q, fmt: Format, b: int | None = None) -> np.ndarray:
    """Real values of codes ``q`` at width ``b`` (default: master)."""
    return fmt.real(np.asarray(q, dtype=np.float64), b)


def quantize_per_tensor(x, n: int, *, signed: bool = False):
    """(codes, Format) of ``x`` over its whole range."""
    x = np.asarray(x, dtype=np.float64)
    fmt = fit_format(x.min(), x.max(), n, signed=signed)
    return quantize(x, fmt), fmt


def quantize_per_channel(x, n: int, *, axis: int = 0, signed: bool = False):
    """(codes, [Format per channel]) of ``x``, one format per index along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    xm = np.moveaxis(x, axis, 0)
    codes = np.empty(xm.shape, dtype=np.int64)
    fmts = []
    for c in range(xm.shape[0]):
        fmt = fit_format(xm[c].min(), xm[c].max(), n, signed=signed)
        codes[c] = quantize(xm[c], fmt)
        fmts.append(fmt)
    return np.moveaxis(codes, 0, axis), fmts
