"""The slow, obviously-correct oracle of docs/arithmetic.md, on Python ints and Fractions.

Nothing here is shared with dqt_hw: rounding works on exact rationals (``Fraction``),
accumulation is a plain loop over nested lists in the contract's order. Every Numba kernel
and every spec primitive is tested equal to these functions.
"""

from __future__ import annotations

import math
from fractions import Fraction


def round_rational(v: Fraction, rounding: str) -> int:
    """The integer nearest the rational ``v`` by ``rounding``."""
    fl = math.floor(v)
    frac = v - fl
    if rounding == "floor":
        return fl
    if frac < Fraction(1, 2):
        return fl
    if frac > Fraction(1, 2):
        return fl + 1
    if rounding == "half_up":
        return fl + 1
    if rounding == "half_even":
        return fl if fl % 2 == 0 else fl + 1
    if rounding == "half_away":
        return fl + 1 if v > 0 else fl
    raise ValueError(rounding)


def round_shift(x: int, s: int, rounding: str) -> int:
    return round_rational(Fraction(x) / Fraction(2) ** s, rounding)


def round_div(x: int, d: int, rounding: str) -> int:
    return round_rational(Fraction(x, d), rounding)


def code_range(b: int, signed: bool):
    return (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if signed else (0, 2**b - 1)


def clamp(v, lo, hi):
    return max(lo, min(hi, v))


def nested_view(q: int, n: int, b: int, rounding: str, signed: bool = False) -> int:
    lo, hi = code_range(b, signed)
    return clamp(round_rational(Fraction(q, 2 ** (n - b)), rounding), lo, hi)


def wrap(x: int, W: int) -> int:
    x %= 2**W
    return x - 2**W if x >= 2 ** (W - 1) else x


def saturate(x: int, W: int) -> int:
    return clamp(x, -(2 ** (W - 1)), 2 ** (W - 1) - 1)


def lincomb(terms, KS, rounding, lo, hi):
    """``KS`` is a list of (K, S): the exact rational sum of K x 2^-S, rounded once."""
    v = sum(Fraction(K * x) / Fraction(2) ** S for x, (K, S) in zip(terms, KS))
    return clamp(round_rational(v, rounding), lo, hi)


class Trap(Exception):
    def __init__(self, index, k, partial):
        super().__init__(index, k, partial)
        self.index, self.k, self.partial = index, k, partial


def dot(pairs, W, overflow):
    """Accumulate a*w over ``pairs`` in order. Returns (acc, max |exact partial|, events)."""
    acc = exact = 0
    mx = events = 0
    for k, (a, w) in enumerate(pairs):
        exact += a * w
        mx = max(mx, abs(exact))
        s = acc + a * w
        if overflow == "wrap":
            v = wrap(s, W)
        elif overflow == "saturate":
            v = saturate(s, W)
        else:
            if s != saturate(s, W):
                raise Trap(None, k, s)
            v = s
        events += v != s
        acc = v
    return acc, mx, events


def gemm(a, w, W, overflow):
    """a, w nested lists (M x K, K x N). Returns (acc, max_abs_partial, events, affected)."""
    M, Kd, N = len(a), len(w), len(w[0]) if w else 0
    out = [[0] * N for _ in range(M)]
    mx = events = affected = 0
    for i in range(M):
        for j in range(N):
            try:
                acc, m, e = dot([(a[i][k], w[k][j]) for k in range(Kd)], W, overflow)
            except Trap as t:
                raise Trap((i, j), t.k, t.partial) from None
            out[i][j] = acc
            mx, events, affected = max(mx, m), events + e, affected + (e > 0)
    return out, mx, events, affected


def conv_taps(x, nb, c0, cg, oy, ox, kh, kw, stride, pad, pad_code):
    """The input codes of one output's taps, in (c, ky, kx) ascending order."""
    H, Wd = len(x[0][0]), len(x[0][0][0])
    taps = []
    for c in range(c0, c0 + cg):
        for ky in range(kh):
            for kx in range(kw):
                iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                taps.append(x[nb][c][iy][ix] if 0 <= iy < H and 0 <= ix < Wd else pad_code)
    return taps


def conv2d(x, w, stride, pad, groups, W, overflow, pad_code=0):
    """x (N, C, H, W), w (O, C/g, kh, kw) nested lists. Returns (acc, mx, events, affected)."""
    Nb, C, H, Wd = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    O, Cg, kh, kw = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    Og = O // groups
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (Wd + 2 * pad - kw) // stride + 1
    out = [[[[0] * Wo for _ in range(Ho)] for _ in range(O)] for _ in range(Nb)]
    mx = events = affected = 0
    for nb in range(Nb):
        for o in range(O):
            g = o // Og
            wt = [w[o][c][ky][kx] for c in range(Cg) for ky in range(kh) for kx in range(kw)]
            for oy in range(Ho):
                for ox in range(Wo):
                    taps = conv_taps(x, nb, g * Cg, Cg, oy, ox, kh, kw, stride, pad, pad_code)
                    try:
                        acc, m, e = dot(list(zip(taps, wt)), W, overflow)
                    except Trap as t:
                        raise Trap((nb, o, oy, ox), t.k, t.partial) from None
                    out[nb][o][oy][ox] = acc
                    mx, events, affected = max(mx, m), events + e, affected + (e > 0)
    return out, mx, events, affected


def requantize(acc, sum_a, sum_w, KS4, rounding, lo, hi):
    """One output: KS4 is the channel's four (K, S)."""
    return lincomb([acc, sum_a, sum_w, 1], KS4, rounding, lo, hi)


def pool(x, k, stride, mode, rounding=None):
    Nb, C, H, Wd = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    Ho, Wo = (H - k) // stride + 1, (Wd - k) // stride + 1
    out = [[[[0] * Wo for _ in range(Ho)] for _ in range(C)] for _ in range(Nb)]
    for nb in range(Nb):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    win = [x[nb][c][oy * stride + ky][ox * stride + kx]
                           for ky in range(k) for kx in range(k)]
                    out[nb][c][oy][ox] = max(win) if mode == "max" else round_div(
                        sum(win), k * k, rounding)
    return out


# ----------------------------------------------------------------------------- bit planes


def bit_pattern(q: int, n: int) -> str:
    """The n-bit pattern of q (two's complement when negative), most significant first."""
    return format(q % 2**n, f"0{n}b")


def to_planes(codes, n: int, W: int = 64):
    """Row j holds bit n-1-j of each code; element i is bit i mod W of word i div W."""
    pats = [bit_pattern(q, n) for q in codes]
    words = -(-len(pats) // W)
    rows = []
    for j in range(n):
        row = []
        for k in range(words):
            chunk = [int(p[j]) for p in pats[k * W:(k + 1) * W]]
            row.append(sum(bit * 2**t for t, bit in enumerate(chunk)))
        rows.append(row)
    return rows


def from_planes(rows, n: int, count: int, signed: bool, W: int = 64):
    """The codes of the rows given (plane n-1 first); the planes not given are 0."""
    codes = []
    for i in range(count):
        pat = "".join(str(row[i // W] // 2**(i % W) % 2) for row in rows)
        u = int(pat + "0" * (n - len(rows)), 2)
        codes.append(u - 2**n if signed and u >= 2 ** (n - 1) else u)
    return codes


def planes_read(n: int, b: int, rounding: str) -> int:
    if b == n or rounding in ("half_even", "half_away"):
        return n
    return b + (rounding == "half_up")
