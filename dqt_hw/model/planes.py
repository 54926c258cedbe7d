"""Bit-plane form of code arrays, fast (numpy): the twins of ``dqt_hw.spec.planes``.

A plane array is ``numpy.uint64`` of shape (n, ceil(N / 64)) for N codes of master width
n: row j is plane n - 1 - j (most significant first), element i of the C-order flattening
is bit (i mod 64) of word (i div 64), padding bits zero (docs/arithmetic.md section 2.3).
A b-bit view reads the first ``planes_read(n, b, rounding)`` rows.
"""

from __future__ import annotations

import math

import numpy as np

from .. import spec
from ..spec.format import code_range
from ..spec.planes import PLANE_WORD_BITS, planes_read
from .core import as_int, as_codes
from .core import nested_view as _nested_view

__all__ = ["PLANE_WORD_BITS", "planes_read", "to_planes", "from_planes", "view_from_planes"]

_W = PLANE_WORD_BITS


def to_planes(codes, *, n: int, signed: bool = False) -> np.ndarray:
    """The plane array (uint64, (n, ceil(N / 64))) of an array of ``n``-bit master codes."""
    n, _ = spec.check_view_widths(n, n, signed)
    lo, hi = code_range(n, signed)
    q = as_codes("codes", codes, lo, hi).ravel()
    N = q.size
    words = -(-N // _W)
    u = (q & ((1 << n) - 1)).astype(np.uint64)  # the n-bit two's complement pattern
    out = np.zeros((n, words), np.uint64)
    bits = np.zeros(words * _W, np.uint8)  # one plane at a time: memory ~ N, not n N
    for j in range(n):
        bits[:N] = (u >> np.uint64(n - 1 - j)) & np.uint64(1)
        out[j] = np.packbits(bits, bitorder="little").view("<u8")
    return out


def _check_rows(planes, rows_lo: int, rows_hi: int, count: int, what: str) -> np.ndarray:
    if not isinstance(planes, np.ndarray):
        raise TypeError(f"{what} must be a numpy uint64 array, not {type(planes).__name__}")
    if planes.dtype != np.uint64:
        raise TypeError(f"{what} must have dtype uint64, not {planes.dtype}")
    words = -(-count // _W)
    if planes.ndim != 2 or planes.shape[1] != words or not rows_lo <= planes.shape[0] <= rows_hi:
        rows = f"{rows_lo}" if rows_lo == rows_hi else f"{rows_lo} to {rows_hi}"
        raise ValueError(f"{what} has shape {planes.shape}; {count} codes take ({rows}, "
                         f"{words}) ({rows} rows of ceil({count} / {_W}) words)")
    return planes


def _rebuild(rows: np.ndarray, n: int, count: int, signed: bool) -> np.ndarray:
    """The codes (int64, flat) of the first ``len(rows)`` planes, the rest 0; padding
    bits refused."""
    k, words = rows.shape
    q = np.zeros(count, np.int64)
    for j in range(k):
        row = np.ascontiguousarray(rows[j], dtype="<u8").view(np.uint8)
        bits = np.unpackbits(row, bitorder="little")
        if bits[count:].any():
            i = count + int(np.flatnonzero(bits[count:])[0])
            raise ValueError(f"plane row {j} has padding bit {i} set (word {i // _W}; only "
                             f"the first {count} bits of a row are elements)")
        p = n - 1 - j
        weight = -(1 << p) if signed and p == n - 1 else 1 << p
        q += bits[:count].astype(np.int64) * weight
    return q


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"shape must be a tuple of integers, not {shape!r}")
    out = tuple(as_int("shape entry", s) for s in shape)
    if any(s < 0 for s in out):
        raise ValueError(f"shape must have non-negative entries, not {out}")
    return out


def from_planes(planes, *, n: int, shape, signed: bool = False) -> np.ndarray:
    """The int64 codes of ``shape`` from their full plane array (n rows)."""
    n, _ = spec.check_view_widths(n, n, signed)
    shape = _shape(shape)
    count = math.prod(shape)
    rows = _check_rows(planes, n, n, count, "plane array")
    return _rebuild(rows, n, count, signed).reshape(shape)


def view_from_planes(planes, *, n: int, b: int, rounding: str, shape,
                     signed: bool = False) -> np.ndarray:
    """The ``b``-bit views (int64, ``shape``) of codes given by a prefix of their plane
    array: at least ``planes_read(n, b, rounding)`` rows, at most n (rows past the ones
    read are ignored). Equal to ``nested_view`` of the codes (docs/arithmetic.md 2.3)."""
    need = planes_read(n, b, rounding, signed=signed)
    shape = _shape(shape)
    count = math.prod(shape)
    rows = _check_rows(planes, need, n, count, f"plane rows of the {b}-bit {rounding} view")
    q = _rebuild(rows[:need], n, count, signed)
    return _nested_view(q, n=n, b=b, rounding=rounding, signed=signed).reshape(shape)
