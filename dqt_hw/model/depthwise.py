"""Depthwise convolutions (one input channel per group, Cg = 1): direct stencils.

A depthwise conv has kh * kw terms per output, and each output channel reads one input
channel, so the GEMM of the other drivers would run one group at a time with a padded
block per group: hundreds of tiny GEMMs. Here each output is its taps' sum computed
directly, exactly, in integer types proved wide enough from the code ranges
(``dtypes``: int32 sums of int16 codes where every sum fits, else int64), then wrapped
to W bits and, in a fused layer, requantized with its side sum sum_a (the same
``epilogue`` integers: docs/arithmetic.md). The view of a fused layer's input is applied
while the padded block is built, the padding holds ``pad_code``, and channel
multipliers (Og > 1 outputs per group) are taken too.

Units are bands of output rows of one image: their padded input rows channels-last
(split by column phase at stride s > 1, ``_col``), then each output row in one loop over
its Wo x C sums (``_row_taps``; a loop per pixel where Og > 1) and one finishing pass.
Both layouts take it: channels-first (``conv2d``, ``FusedConv.run``: the block gathers
each row's channels, a row buffer transposes the outputs) and channels-last
(``FusedConv.run_nhwc``, the network layout). docs/speed.md, "Depthwise convolutions".
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import settings
from .epilogue import rq_scalars, requant1, wrap
from .runtime import numba_threads, threads, tuned, tuned_done
from .views import NO_VIEW, _view1, block_of

I16 = (1 << 15) - 1
I32 = (1 << 31) - 1
I62 = 1 << 62


def applies(w, groups) -> bool:
    """True where a conv of weights ``w`` (O, Cg, kh, kw) in ``groups`` groups is
    depthwise (more than one group, one input channel each): this module's case."""
    return groups > 1 and w.shape[1] == 1


def dtypes(A: int, B: int, taps: int):
    """(block type, accumulator type) for ``taps`` products of codes |x| <= A and
    weights |w| <= B: the accumulator holds every sum of products and every side sum of
    the x (int32 where it can, else int64), the block every code and weight (int16
    where they fit and the accumulator is int32: half the bytes to stream); None where
    even int64 might not hold a sum (the caller then takes another path)."""
    m = max(A * B, A) * taps
    if m >= I62:
        return None
    if m > I32:
        return (np.int64, np.int64)
    return (np.int16 if max(A, B) <= I16 else np.int32, np.int32)


def _weights(w, bt, entry):
    """w (O, 1, kh, kw) as (kh kw, O) in the block type; kept in the weight entry."""
    key = ("depthwise", np.dtype(bt).str)
    hit = entry["prep"].get(key) if entry is not None else None
    if hit is None:
        hit = np.ascontiguousarray(w.reshape(w.shape[0], -1).T, dtype=bt)
        if entry is not None:
            entry["prep"][key] = hit
    return hit


def conv(x, w, cs, dts, lv=None, rq=None, out=None, tuner=None, nhwc=False, entry=None):
    """The depthwise conv of codes x (N, C, H, W), or (N, H, W, C) where ``nhwc``, by w
    (O, 1, kh, kw) with ``ConvArgs`` cs: the accumulators wrapped to W bits as
    (N, O, Ho, Wo) int64, or with ``rq`` (an ``epilogue.Requant``) the output codes
    written into ``out`` ((N, O, Ho*Wo) channels-first, (N, Ho*Wo, O) channels-last, any
    integer dtype holding the clamp range). ``lv``, a ``views.LayerView``, views every
    code of x first (``pad_code`` is a viewed code then). ``dts`` from ``dtypes`` of the
    ranges (the caller proved them). Returns out as (N, O, Ho, Wo) or (N, Ho, Wo, O)."""
    stride, pad, groups, pad_code, W = cs
    Nb, O = x.shape[0], w.shape[0]
    g = block_of(x, w, stride, pad, nhwc)
    C, Wd, kh, kw, Ho, Wo = g.C, g.Wd, g.kh, g.kw, g.Ho, g.Wo
    if out is None:
        out = np.empty((Nb, Ho * Wo, O) if nhwc else (Nb, O, Ho * Wo), dtype=np.int64)
    bt, dt = dts
    wt = _weights(w, bt, entry)
    d, r, vlo, vhi = NO_VIEW if lv is None else lv.nested
    # the view is the identity on x's codes: the block is a plain copy
    ident = lv is None or (d == 0 and vlo <= lv.qlo and lv.qhi <= vhi)
    vw = (np.int64(pad), np.int64(pad_code), np.int64(d), np.int64(r), np.int64(vlo),
          np.int64(vhi), np.int64(ident))
    nt = threads().count()
    serial, t0 = tuned(tuner, Nb * Ho * Wo * O * kh * kw, nt, settings.DEPTHWISE_SERIAL_WORK)
    # units of output rows of one image: their padded input rows about
    # settings.DEPTHWISE_BLOCK bytes, and enough units for every thread
    Wp = Wd + 2 * pad
    rows = settings.DEPTHWISE_BLOCK // max(1, Wp * C * np.dtype(bt).itemsize)
    step = max(1, min(Ho, (rows - kh) // stride + 1))
    if not serial:
        step = min(step, -(-Ho // max(1, -(-4 * nt // max(1, Nb)))))
    nu = Nb * -(-Ho // step)
    geo = (stride, kh, kw, O // groups, Ho, Wo, W, step, int(not nhwc))
    args = (x, wt, geo, vw, rq, out.reshape(Nb, -1, O) if nhwc else out, np.zeros(0, dt))
    if serial or nu == 1:
        units(*args, 0, nu)
    else:
        numba_threads(nt)
        try:
            units_par(*args, nu, -(-nu // (8 * nt)))
        finally:
            numba_threads(None)
    tuned_done(tuner, serial, t0)
    return out.reshape((Nb, Ho, Wo, O) if nhwc else (Nb, O, Ho, Wo))


@njit(cache=True, nogil=True, inline="always")
def _col(q, s, Wq, C):
    """Where padded column q starts in a block row split by phase: column q is pixel
    q // s of phase q % s (each phase Wq pixels of C channels), so at stride s the
    columns an output row reads through one tap are contiguous."""
    return ((q % s) * Wq + q // s) * C


@njit(cache=True, nogil=True)
def _fill(x, n, iy, vw, chw, sq, dst):
    """Padded row ``dst`` (channels-last, split by phase: ``_col``; sq = (stride s,
    Wq)) from input row iy of image n: the viewed codes between ``pad`` border pixels
    (vw = (pad, pad value, view d, r, vlo, vhi, the view is the identity)), all pad
    values where iy is outside the image."""
    if chw:
        _, C, H, Wd = x.shape
    else:
        _, H, Wd, C = x.shape
    pad, padv = vw[0], vw[1]
    s, Wq = sq
    if iy < 0 or iy >= H:
        dst[:] = padv
        return
    for q in range(pad):
        for k in (_col(q, s, Wq, C), _col(pad + Wd + q, s, Wq, C)):
            dst[k:k + C] = padv
    ident = vw[6] != 0
    if chw:
        for j in range(Wd):
            k = np.uintp(_col(pad + j, s, Wq, C))
            if ident:
                for c in range(C):
                    dst[k + np.uintp(c)] = x[n, c, iy, j]
            else:
                for c in range(C):
                    dst[k + np.uintp(c)] = _view1(x[n, c, iy, j], vw[2], vw[3], vw[4], vw[5])
        return
    src = x[n, iy].reshape(-1)
    for j in range(0, Wd, Wd if s == 1 else 1):  # stride 1: the row is one run
        k = np.uintp(_col(pad + j, s, Wq, C))
        j0 = np.uintp(j * C)
        m = Wd * C if s == 1 else C
        if ident:
            for c in range(m):
                u = np.uintp(c)
                dst[k + u] = src[j0 + u]
        else:
            for c in range(m):
                u = np.uintp(c)
                dst[k + u] = _view1(src[j0 + u], vw[2], vw[3], vw[4], vw[5])


@njit(cache=True, nogil=True)
def _taps(blk, wf, base, toff, Og, acc):
    """One output pixel of a layer with Og > 1 outputs per channel: acc[o] = sum over
    the taps t of blk[base + toff[t] + o // Og] wf[t, o] (wf flat (taps, O)); one output
    per channel takes whole rows instead (``_row_taps``)."""
    O = acc.shape[0]
    uO = np.uintp(O)
    acc[:] = 0
    for t in range(toff.shape[0]):
        p = base + toff[t]
        w0 = np.uintp(t) * uO
        for o in range(O):
            u = np.uintp(o)
            acc[u] += blk[p + np.uintp(o // Og)] * wf[w0 + u]


@njit(cache=True, nogil=True)
def _side(blk, base, toff, sa):
    """sa[j] = sum over the taps t of blk[base + toff[t] + j]: sum_a of each channel of
    one pixel, or of a whole row's (``_row_taps``)."""
    C = sa.shape[0]
    T = toff.shape[0]
    if T == 9:
        p0, p1, p2 = base + toff[0], base + toff[1], base + toff[2]
        p3, p4, p5 = base + toff[3], base + toff[4], base + toff[5]
        p6, p7, p8 = base + toff[6], base + toff[7], base + toff[8]
        for c in range(C):
            u = np.uintp(c)
            sa[u] = (blk[p0 + u] + blk[p1 + u] + blk[p2 + u] + blk[p3 + u] + blk[p4 + u]
                     + blk[p5 + u] + blk[p6 + u] + blk[p7 + u] + blk[p8 + u])
        return
    sa[:] = 0
    for t in range(T):
        p = base + toff[t]
        for c in range(C):
            u = np.uintp(c)
            sa[u] += blk[p + u]


@njit(cache=True, nogil=True)
def _row_taps(blk, wrow, base, toff, acc, sa, side):
    """One output per channel: a whole output row at once, acc[j] (j = xo C + c) = sum
    over the taps t of blk[base + toff[t] + j] wrow[t, j] (the block's rows split by
    phase, so tap t's inputs of the row are contiguous at any stride; wrow: the taps'
    weights repeated along the row), and with ``side`` sa[j] = sum of those blk."""
    n = acc.shape[0]
    T = toff.shape[0]
    un = np.uintp(n)
    if T == 9:
        p0, p1, p2 = base + toff[0], base + toff[1], base + toff[2]
        p3, p4, p5 = base + toff[3], base + toff[4], base + toff[5]
        p6, p7, p8 = base + toff[6], base + toff[7], base + toff[8]
        for j in range(n):
            u = np.uintp(j)
            acc[u] = (blk[p0 + u] * wrow[u] + blk[p1 + u] * wrow[un + u]
                      + blk[p2 + u] * wrow[2 * un + u] + blk[p3 + u] * wrow[3 * un + u]
                      + blk[p4 + u] * wrow[4 * un + u] + blk[p5 + u] * wrow[5 * un + u]
                      + blk[p6 + u] * wrow[6 * un + u] + blk[p7 + u] * wrow[7 * un + u]
                      + blk[p8 + u] * wrow[8 * un + u])
    else:
        acc[:] = 0
        for t in range(T):
            p = base + toff[t]
            w0 = np.uintp(t) * un
            for j in range(n):
                u = np.uintp(j)
                acc[u] += blk[p + u] * wrow[w0 + u]
    if side:
        _side(blk, base, toff, sa)


@njit(cache=True, nogil=True)
def _finish_row(acc, sa, Og, rq, W, dst):
    """dst[xo, o] = the accumulator wrap_W(acc[xo O + o]) of a row of outputs,
    requantized with sum_a sa[xo C + o // Og] by ``rq`` (channel o) unless it is None."""
    Wo, O = dst.shape
    C = O // Og
    for xo in range(Wo):
        a = acc[xo * O:(xo + 1) * O]
        d = dst[xo]
        if rq is None:
            for o in range(O):
                d[o] = wrap(np.int64(a[o]), W)
            continue
        sx = sa[xo * C:(xo + 1) * C]
        if Og == 1:
            for o in range(O):
                d[o] = requant1(wrap(np.int64(a[o]), W), np.int64(sx[o]), rq_scalars(rq, o),
                                rq.r, rq.lo, rq.hi)
        else:
            for o in range(O):
                d[o] = requant1(wrap(np.int64(a[o]), W), np.int64(sx[o // Og]),
                                rq_scalars(rq, o), rq.r, rq.lo, rq.hi)


@njit(cache=True, nogil=True)
def units(x, wt, geo, vw, rq, out, zacc, u0, u1):
    """Units u in [u0, u1) = (image, band of ``step`` output rows): the band's padded
    input rows, channels-last in the block type, then each output pixel's taps (the
    loops over the channels vectorise). ``out`` is (N, Ho Wo, O), or (N, O, Ho Wo)
    where ``chw`` (a row of outputs then goes out through a transposing buffer)."""
    s, kh, kw, Og, Ho, Wo, W, step, chw = geo
    if chw:
        _, C, H, Wd = x.shape
    else:
        _, H, Wd, C = x.shape
    O = C * Og
    Wp = Wd + 2 * vw[0]
    Wq = -(-Wp // s)
    WC = s * Wq * C  # a block row: s phases of Wq pixels (``_col``)
    nb = -(-Ho // step)
    blk = np.empty(((step - 1) * s + kh) * WC, wt.dtype)
    wf = wt.reshape(-1)
    toff = np.empty(kh * kw, np.uintp)
    for ky in range(kh):
        for kx in range(kw):
            toff[ky * kw + kx] = np.uintp(ky * WC + _col(kx, s, Wq, C))
    row = np.empty((Wo if chw else 0, O), np.int64)
    # one output per channel: whole output rows at once (``_row_taps``)
    byrow = Og == 1
    WoC = Wo * C if byrow else 0
    wrow = np.empty(kh * kw * WoC, wt.dtype)
    for t in range(kh * kw if byrow else 0):
        for xo in range(Wo):
            wrow[t * WoC + xo * C:t * WoC + (xo + 1) * C] = wt[t]
    acc = np.empty(Wo * O, zacc.dtype)
    sa = np.zeros(Wo * C, zacc.dtype)
    for u in range(u0, u1):
        n = u // nb
        y0 = (u - n * nb) * step
        y1 = min(Ho, y0 + step)
        for i in range((y1 - 1 - y0) * s + kh):
            _fill(x, n, y0 * s + i - vw[0], vw, chw, (s, Wq), blk[i * WC:(i + 1) * WC])
        for y in range(y0, y1):
            if byrow:
                _row_taps(blk, wrow, np.uintp((y - y0) * s * WC), toff, acc, sa,
                          rq is not None)
            else:
                for xo in range(Wo):
                    base = np.uintp((y - y0) * s * WC + xo * C)
                    _taps(blk, wf, base, toff, Og, acc[xo * O:(xo + 1) * O])
                    if rq is not None:
                        _side(blk, base, toff, sa[xo * C:(xo + 1) * C])
            if chw:
                _finish_row(acc, sa, Og, rq, W, row)
                for o in range(O):
                    d = out[n, o, y * Wo:(y + 1) * Wo]
                    for xo in range(Wo):
                        d[xo] = row[xo, o]
            else:
                _finish_row(acc, sa, Og, rq, W, out[n, y * Wo:(y + 1) * Wo])


@njit(cache=True, nogil=True, parallel=True)
def units_par(x, wt, geo, vw, rq, out, zacc, nu, per):
    """``units`` over Numba's threads, ``per`` units at a time."""
    for i in prange(-(-nu // per)):
        units(x, wt, geo, vw, rq, out, zacc, i * per, min(nu, (i + 1) * per))
