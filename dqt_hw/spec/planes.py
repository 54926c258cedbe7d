"""Bit-plane form of a tensor of master codes (docs/arithmetic.md section 2.3).

Plane p (0 = least significant .. n - 1 = most significant) holds bit p of every code's
n-bit pattern (the code itself when unsigned, its n-bit two's complement when signed: plane
n - 1 is then the sign plane, of weight -2^(n-1)). The plane array stores the planes most
significant first (row j is plane n - 1 - j), each packed into little-endian words of
``word_bits`` bits: element i of the C-order flattening is bit (i mod W) of word (i div W),
padding bits zero. A view reads a prefix of the rows (:func:`planes_read`).

Everything here is slow, plain Python on ints and lists; ``dqt_hw.model`` has the fast
numpy twins and ``tests/naive.py`` the oracle.
"""

from __future__ import annotations

from .format import code_range
from .intops import as_int
from .nested import check_view_widths, nested_view
from .rounding import check_rounding

__all__ = ["PLANE_WORD_BITS", "plane_words", "planes_read", "to_planes", "from_planes",
           "view_from_planes"]

PLANE_WORD_BITS = 64
"""Word width W of a packed plane in the model and in golden files (16 hex digits)."""


def _word_bits(word_bits) -> int:
    w = as_int("word width word_bits", word_bits)
    if w < 1:
        raise ValueError(f"word width word_bits must be at least 1, not {w}")
    return w


def plane_words(count: int, word_bits: int = PLANE_WORD_BITS) -> int:
    """Words of one plane of ``count`` elements: ceil(count / word_bits)."""
    count, w = as_int("element count", count), _word_bits(word_bits)
    if count < 0:
        raise ValueError(f"element count must be non-negative, not {count}")
    return -(-count // w)


def planes_read(n: int, b: int, rounding: str, *, signed: bool = False) -> int:
    """Rows of the plane array (most significant first) that the ``b``-bit view with
    ``rounding`` of ``n``-bit codes reads: b for ``floor``, b + 1 for ``half_up`` (the
    rounding bit, b < n), n for ``half_even`` and ``half_away`` (the sticky lower bits)
    and n whenever b = n. The one source of this fact (the cost model reads it)."""
    n, b = check_view_widths(n, b, signed)
    check_rounding(rounding)
    if b == n:
        return n
    if rounding == "floor":
        return b
    if rounding == "half_up":
        return b + 1
    return n


def to_planes(codes, n: int, *, signed: bool = False,
              word_bits: int = PLANE_WORD_BITS) -> list[list[int]]:
    """The plane array of the flat sequence ``codes`` of ``n``-bit master codes: n rows
    (plane n - 1 first) of ceil(len / word_bits) words each (Python ints)."""
    n, _ = check_view_widths(n, n, signed)
    w = _word_bits(word_bits)
    lo, hi = code_range(n, signed)
    codes = [as_int(f"code {i}", q) for i, q in enumerate(codes)]
    for i, q in enumerate(codes):
        if not lo <= q <= hi:
            raise ValueError(f"code {i} = {q} is outside [{lo}, {hi}] for master width "
                             f"n = {n}")
    words = plane_words(len(codes), w)
    rows = []
    for p in range(n - 1, -1, -1):
        row = [0] * words
        for i, q in enumerate(codes):
            if (q >> p) & 1:  # Python's >> of a negative int is two's complement
                row[i // w] |= 1 << (i % w)
        rows.append(row)
    return rows


def _rebuild(rows, n: int, count: int, signed: bool, w: int) -> list[int]:
    """The codes of the first ``len(rows)`` planes (most significant first), the planes
    not given taken as 0; words checked (width, padding)."""
    words = plane_words(count, w)
    out = [0] * count
    for j, row in enumerate(rows):
        row = list(row)
        if len(row) != words:
            raise ValueError(f"plane row {j} has {len(row)} words, {count} elements take "
                             f"{words} of {w} bits")
        p = n - 1 - j
        weight = -(1 << p) if signed and p == n - 1 else 1 << p
        for k, word in enumerate(row):
            word = as_int(f"plane row {j} word {k}", word)
            if not 0 <= word < 1 << w:
                raise ValueError(f"plane row {j} word {k} = {word} is not a {w}-bit word")
            valid = min(w, count - k * w)
            if word >> valid:
                raise ValueError(f"plane row {j} word {k} = {word:#x} has padding bits set "
                                 f"(only its low {valid} bits are elements)")
            for t in range(valid):
                if (word >> t) & 1:
                    out[k * w + t] += weight
    return out


def from_planes(planes, n: int, count: int, *, signed: bool = False,
                word_bits: int = PLANE_WORD_BITS) -> list[int]:
    """The ``count`` codes of a full plane array (n rows, plane n - 1 first)."""
    n, _ = check_view_widths(n, n, signed)
    w = _word_bits(word_bits)
    planes = list(planes)
    if len(planes) != n:
        raise ValueError(f"a plane array of master width n = {n} has {n} rows, not "
                         f"{len(planes)}")
    return _rebuild(planes, n, as_int("element count", count), signed, w)


def view_from_planes(rows, n: int, b: int, rounding: str, count: int, *,
                     signed: bool = False, word_bits: int = PLANE_WORD_BITS) -> list[int]:
    """The ``b``-bit views of ``count`` codes from the prefix ``rows`` of their plane
    array: at least :func:`planes_read` rows (more are ignored). The codes q' rebuilt from
    the rows read, the others 0, give ``nested_view(q', n, b, rounding)``, which is the
    view of the full codes (docs/arithmetic.md section 2.3)."""
    need = planes_read(n, b, rounding, signed=signed)
    w = _word_bits(word_bits)
    rows = list(rows)
    if not need <= len(rows) <= n:
        raise ValueError(f"the {b}-bit {rounding} view of n = {n} codes reads {need} plane "
                         f"rows; {len(rows)} given (between {need} and {n})")
    q = _rebuild(rows[:need], n, as_int("element count", count), signed, w)
    return [nested_view(v, n, b, rounding, signed=signed) for v in q]
