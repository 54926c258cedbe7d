"""Epilogues: the finishing pass of a conv's exact sums, one per layout.

A GEMM leaves exact sums C of the moved codes (x - ox)(w - ow); the finishing pass makes
each output's accumulator acc = wrap_W(C + ox sum_w + ow sx) (``Sums``: sx the window sum
of the moved codes, sum_w per output channel) and, in a fused layer, requantizes it at
once with its side sum sum_a = sx + K ox (``Requant``, docs/arithmetic.md):

    code = clamp(round_shift((K1 acc << E1) + (K2 sum_a << E2) + C34, S, r), lo, hi)

with C34 = (K3 sum_w << E3) + (K4 << E4) per channel. The caller has proved from the
code ranges that every such sum stays below 2^62 and every shift S in [0, 62] (``layer.
FusedConv``), so the int64 arithmetic is exact. ``rq=None`` writes the accumulators.

Layouts (one function each): ``finish_rows`` (float GEMM rows (nch, rows, channels)),
``finish_cols`` (float GEMM columns (nch, channels, rows)), ``finish_tiles`` (the integer
kernel's int32 tile, channels-first codes) and ``finish_tiles_nhwc`` (the same tile,
channels-last codes: the network layout). The last one has three forms of the same
integer, chosen per layer by what ``FusedConv`` proved (``Requant.form``):

- ``GENERAL``: as above;
- ``SHORT``: no sum can overflow (the wrap is the identity, every accumulator fits
  int32) and K1, K2 and sum_a fit int32: 32 x 32 -> 64-bit products (``vpmuldq``, where
  the general form needs 64 x 64);
- ``AFFINE``: the sum in affine form P C + Q sx + R (P C taken as (K1 C) << E1, see
  ``FusedConv._affine``): two products per output instead of three.

They stay three loops because the loop over channels must vectorise: a branch per
output between them would keep it scalar (docs/speed.md, "Epilogues").
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from numba import njit

from .. import settings
from .intops import clamp, shift_round

GENERAL, SHORT, AFFINE = 0, 1, 2
"""``Requant.form``: the general requantization, the 32-bit one, the affine one."""


class Sums(NamedTuple):
    """The side terms of one group's accumulators: acc = wrap_W(C + corr[o] + ow sx[m])
    for output row m and channel o of the group (corr = ox sum_w), sum_a = sx[m] + ksa
    (ksa = K ox)."""

    sx: np.ndarray
    ow: int
    corr: np.ndarray
    ksa: int
    W: int


class Requant(NamedTuple):
    """Per-output-channel requantization constants (int64 arrays; K1, K2 int32 in the
    ``SHORT`` and ``AFFINE`` forms; shifts S in [0, 62] and H = 2^(S-1), 0 where S = 0),
    the affine form's Q and R (empty otherwise) and the rounding code, clamp range and
    form."""

    K1: np.ndarray
    E1: np.ndarray
    K2: np.ndarray
    E2: np.ndarray
    C34: np.ndarray
    S: np.ndarray
    H: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    r: int
    lo: int
    hi: int
    form: int


class Tile(NamedTuple):
    """A block of an int32 tile ``Cacc`` to finish: output rows [m0, m1) (Cacc's row
    m - cm0 holds row m) and Cacc's columns [n0, n1), the group's channels from its
    first output channel ``og``."""

    cm0: int
    m0: int
    m1: int
    n0: int
    n1: int
    og: int


@njit(cache=True, inline="always")
def rq_channels(q, c0, n):
    """``q`` with its per-channel arrays cut to channels [c0, c0 + n): a finishing pass
    then indexes them from 0 (no wraparound test: the loops vectorise)."""
    return Requant(q.K1[c0:c0 + n], q.E1[c0:c0 + n], q.K2[c0:c0 + n], q.E2[c0:c0 + n],
                   q.C34[c0:c0 + n], q.S[c0:c0 + n], q.H[c0:c0 + n], q.Q[c0:c0 + n],
                   q.R[c0:c0 + n], q.r, q.lo, q.hi, q.form)


@njit(cache=True, inline="always")
def wrap(a, W):
    """a wrapped to a W-bit two's complement accumulator."""
    half = np.int64(1) << (W - 1)
    return ((a + half) & ((np.int64(1) << W) - 1)) - half


@njit(cache=True, inline="always")
def rq_scalars(q, o):
    """(K1, E1, K2, E2, C34, S, H) of channel o of the cut constants q: a loop over one
    channel's outputs keeps them in registers (``requant1``)."""
    return (q.K1[o], q.E1[o], q.K2[o], q.E2[o], q.C34[o], q.S[o], q.H[o])


@njit(cache=True, inline="always")
def requant1(acc, sa, k, r, lo, hi):
    """The output code of accumulator ``acc`` with side sum ``sa`` by the constants k
    = ``rq_scalars(q, o)`` of one channel."""
    v = ((k[0] * acc) << k[1]) + ((k[2] * sa) << k[3]) + k[4]
    return clamp(shift_round(v, k[5], k[6], r), lo, hi)


@njit(cache=True, inline="always")
def requant(acc, sa, q, o):
    """The output code of accumulator ``acc`` with side sum ``sa`` at channel o of the
    cut constants q (``rq_channels``)."""
    return requant1(acc, sa, rq_scalars(q, o), q.r, q.lo, q.hi)


@njit(cache=True, nogil=True, inline="always")
def _put_tile(tile, ma, jn, c0, nro, out):
    """out[n, c0 + o, p] = tile[t, o] for the outputs ma + t = (n, p), t < jn."""
    HW = out.shape[2]
    na = ma // HW
    pa = ma - na * HW
    if pa + jn <= HW:
        for o in range(nro):
            orow = out[na, c0 + o]
            for t in range(jn):
                orow[pa + t] = tile[t, o]
    else:
        for t in range(jn):
            n = (ma + t) // HW
            p = ma + t - n * HW
            for o in range(nro):
                out[n, c0 + o, p] = tile[t, o]


@njit(cache=True, nogil=True)
def finish_rows(G, m0, o0, s, rq, out):
    """out[n, o0 + o, p] = the accumulator wrap_W(sum_ch G[ch, j, o] + corr[o] +
    ow sx[j]) (sx read only where ow != 0 or ``rq``) of the outputs m = m0 + j = (n, p) of a block, requantized by ``rq``
    (channel o0 + o) unless it is None; G (nch, rows, nro) holds exact chunk sums
    (float32: |.| <= 2^24, float64: |.| <= 2^53); ``s`` the block's ``Sums``."""
    nch, mb, nro = G.shape
    TJ = settings.FINISH_TILE
    tile = np.empty((TJ, nro), dtype=np.int64)
    acc = np.empty(nro, dtype=np.int64)
    if rq is not None:
        q = rq_channels(rq, o0, nro)
    for j0 in range(0, mb, TJ):
        jn = min(TJ, mb - j0)
        for t in range(jn):
            base = s.ow * s.sx[j0 + t] if s.ow != 0 else np.int64(0)
            for o in range(nro):
                acc[o] = s.corr[o] + base
            for ch in range(nch):
                g = G[ch, j0 + t]
                for o in range(nro):
                    acc[o] += np.int64(g[o])
            tr = tile[t]
            if rq is None:
                for o in range(nro):
                    tr[o] = wrap(acc[o], s.W)
            else:
                sa = s.sx[j0 + t] + s.ksa
                for o in range(nro):
                    tr[o] = requant(wrap(acc[o], s.W), sa, q, o)
        _put_tile(tile, m0 + j0, jn, o0, nro, out)
    return out


@njit(cache=True, nogil=True)
def finish_cols(GT, o0, s, rq, out):
    """out[n, o0 + o, p] = the accumulator wrap_W(sum_ch GT[ch, o, m] + corr[o] +
    ow sx[m]) of every output m = (n, p), requantized by ``rq`` unless it is None;
    GT (nch, nro, M) holds exact chunk sums."""
    nch, nro, M = GT.shape
    HW = out.shape[2]
    acc = np.empty(M, dtype=np.int64)
    if rq is not None:
        q = rq_channels(rq, o0, nro)
    for o in range(nro):
        for m in range(M):
            acc[m] = s.corr[o]
        if s.ow != 0:
            for m in range(M):
                acc[m] += s.ow * s.sx[m]
        for ch in range(nch):
            g = GT[ch, o]
            for m in range(M):
                acc[m] += np.int64(g[m])
        for n in range(M // HW):
            orow = out[n, o0 + o]
            a = acc[n * HW:(n + 1) * HW]
            if rq is None:
                for p in range(HW):
                    orow[p] = wrap(a[p], s.W)
            else:
                sxn = s.sx[n * HW:(n + 1) * HW]
                for p in range(HW):
                    orow[p] = requant(wrap(a[p], s.W), sxn[p] + s.ksa, q, o)
    return out


_LITTLE = sys.byteorder == "little"


@njit(cache=True, nogil=True, inline="always")
def _finish_pixels(Cacc, b, s, rq, of, O):
    """``finish_tiles`` where each image has one output pixel (HW = 1): the output is
    then channels-last too (``of``: out flat, O channels), so each output is one loop
    over its channels from Cacc's row (no transpose)."""
    nro = b.n1 - b.n0
    c0 = b.og + b.n0
    cr = s.corr[b.n0:b.n1]
    if rq is not None:
        q = rq_channels(rq, c0, nro)
    for m in range(b.m0, b.m1):
        src = Cacc[m - b.cm0, b.n0:b.n1]
        dst = of[m * O + c0:m * O + c0 + nro]
        if rq is not None:
            bm = s.ow * s.sx[m]
            sa = s.sx[m] + s.ksa
            for o in range(nro):
                dst[o] = requant(wrap(np.int64(src[o]) + cr[o] + bm, s.W), sa, q, o)
        elif s.ow != 0:
            bm = s.ow * s.sx[m]
            for o in range(nro):
                dst[o] = wrap(np.int64(src[o]) + cr[o] + bm, s.W)
        else:
            for o in range(nro):
                dst[o] = wrap(np.int64(src[o]) + cr[o], s.W)


@njit(cache=True, nogil=True)
def finish_tiles(Cacc, b, s, rq, out):
    """out[n, og + o, p] for the outputs m = (n, p) in [b.m0, b.m1) and the columns o in
    [b.n0, b.n1) (``Tile`` b) of the int32 sums of the integer kernel (exact, so the
    int64 total is the exact sum): the accumulator wrap_W(Cacc[m - cm0, o] + corr[o] +
    ow sx[m]), requantized by ``rq`` (channel og + o) unless it is None. ``Cacc`` and
    ``out`` are C-contiguous.

    The transpose runs of ``settings.FINISH_RUN`` pixels of one image: per channel, one
    loop over the run reads a column of Cacc (vector gathers from the L1-resident rows)
    and writes a contiguous piece of an output row. Channels go in pairs where Cacc's
    columns allow (even n0 and row length): the two int32 sums of channels 2k, 2k + 1
    read as one int64 (low half: the even channel), one gather for two outputs. The side
    term ow sx and the requantization's per-channel constants are hoisted out of the
    loops (the wrapping-only pass with ow = 0 reads no sx at all). With one output pixel
    per image (HW = 1) out is channels-last as well: no transpose (``_finish_pixels``)."""
    HW = out.shape[2]
    if HW == 1:
        _finish_pixels(Cacc, b, s, rq, out.reshape(-1), out.shape[1])
        return out
    nro = b.n1 - b.n0
    c0 = b.og + b.n0
    W = s.W
    TP = settings.FINISH_RUN
    cr = s.corr[b.n0:b.n1]
    side = s.ow != 0 or rq is not None
    base = np.zeros(TP, np.int64)  # ow sx of the run's pixels
    sa = np.zeros(TP, np.int64)  # their sum_a (``rq``)
    if rq is not None:
        q = rq_channels(rq, c0, nro)
    rows, cols = Cacc.shape
    flat = Cacc.reshape(-1)
    if _LITTLE and b.n0 % 2 == 0 and cols % 2 == 0:
        npair = nro // 2
        P = flat.view(np.int64).reshape(rows, cols // 2)
    else:
        npair = 0
        P = flat[:0].view(np.int64).reshape(0, 1)
    h0 = np.uintp(b.n0 // 2)
    m = b.m0
    while m < b.m1:
        n = m // HW
        p = m - n * HW
        ln = min(TP, b.m1 - m, HW - p)
        r0 = m - b.cm0
        if side:
            sxs = s.sx[m:m + ln]
            for t in range(ln):
                base[t] = s.ow * sxs[t]
            if rq is not None:
                for t in range(ln):
                    sa[t] = sxs[t] + s.ksa
        Pr = P[r0:r0 + ln]
        Cr = Cacc[r0:r0 + ln]
        og = out[n]
        for k in range(npair):
            uk = h0 + np.uintp(k)
            o = 2 * k
            d0 = og[c0 + o, p:p + ln]
            d1 = og[c0 + o + 1, p:p + ln]
            ca = cr[o]
            cb = cr[o + 1]
            if rq is not None:
                ka = rq_scalars(q, o)
                kb = rq_scalars(q, o + 1)
                for t in range(ln):
                    v = Pr[np.uintp(t), uk]
                    d0[t] = requant1(wrap(((v << 32) >> 32) + ca + base[t], W), sa[t], ka,
                                     q.r, q.lo, q.hi)
                    d1[t] = requant1(wrap((v >> 32) + cb + base[t], W), sa[t], kb,
                                     q.r, q.lo, q.hi)
            elif s.ow != 0:
                for t in range(ln):
                    v = Pr[np.uintp(t), uk]
                    d0[t] = wrap(((v << 32) >> 32) + ca + base[t], W)
                    d1[t] = wrap((v >> 32) + cb + base[t], W)
            else:
                for t in range(ln):
                    v = Pr[np.uintp(t), uk]
                    d0[t] = wrap(((v << 32) >> 32) + ca, W)
                    d1[t] = wrap((v >> 32) + cb, W)
        for o in range(2 * npair, nro):
            uo = np.uintp(b.n0 + o)
            d = og[c0 + o, p:p + ln]
            c = cr[o]
            if rq is not None:
                kc = rq_scalars(q, o)
                for t in range(ln):
                    d[t] = requant1(wrap(np.int64(Cr[np.uintp(t), uo]) + c + base[t], W),
                                    sa[t], kc, q.r, q.lo, q.hi)
            elif s.ow != 0:
                for t in range(ln):
                    d[t] = wrap(np.int64(Cr[np.uintp(t), uo]) + c + base[t], W)
            else:
                for t in range(ln):
                    d[t] = wrap(np.int64(Cr[np.uintp(t), uo]) + c, W)
        m += ln
    return out


@njit(cache=True, nogil=True)
def finish_tiles_nhwc(Cacc, b, s, rq, out):
    """As ``finish_tiles`` with ``rq``, writing codes channels-last: out (M, O)[m, og +
    o], in the form ``rq.form`` (see the module's docstring). Unsigned indices (no
    wraparound test) and no per-row views: the loop over the channels vectorises even
    for a few channels."""
    nro = b.n1 - b.n0
    c0 = b.og + b.n0
    cr = s.corr[b.n0:b.n1]
    q = rq_channels(rq, c0, nro)
    Cs = Cacc[b.m0 - b.cm0:b.m1 - b.cm0]
    Os = out[b.m0:b.m1]
    sxs = s.sx[b.m0:b.m1]
    un0 = np.uintp(b.n0)
    uc0 = np.uintp(c0)
    for i in range(b.m1 - b.m0):
        sxj = sxs[i]
        if rq.form == AFFINE:
            for o in range(nro):
                uo = np.uintp(o)
                v = ((np.int64(Cs[i, un0 + uo]) * q.K1[o]) << q.E1[o]) + sxj * q.Q[o] + q.R[o]
                Os[i, uc0 + uo] = clamp(shift_round(v, q.S[o], q.H[o], q.r), q.lo, q.hi)
        elif rq.form == SHORT:
            base = s.ow * sxj
            sa = np.int64(np.int32(sxj + s.ksa))
            for o in range(nro):
                uo = np.uintp(o)
                a = np.int64(np.int32(np.int64(Cs[i, un0 + uo]) + cr[o] + base))
                Os[i, uc0 + uo] = requant(a, sa, q, o)
        else:
            base = s.ow * sxj
            sa = sxj + s.ksa
            for o in range(nro):
                uo = np.uintp(o)
                a = wrap(np.int64(Cs[i, un0 + uo]) + cr[o] + base, s.W)
                Os[i, uc0 + uo] = requant(a, sa, q, o)
    return out
