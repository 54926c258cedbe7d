"""Private Numba kernels of the reference model.

No validation happens here: the public wrappers in this package check every argument and
every bound that keeps the int64 arithmetic exact before calling a kernel. Rounding and
overflow modes arrive as the integer codes of ``dqt_hw.spec.ROUNDING_CODES`` and
``dqt_hw.spec.OVERFLOW_CODES``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .intops import (  # noqa: F401  (the codes, for the callers of these kernels)
    O_SATURATE,
    O_TRAP,
    O_WRAP,
    R_FLOOR,
    round_div,
    round_shift,
)
from .runtime import par_range

POOL_MAX, POOL_AVG = 0, 1  # the modes of ``pool2d``


@njit(cache=True)
def nested_view(q, d, r, lo, hi):
    """Flat int64 codes -> clamp(round_shift(q, d, r), lo, hi)."""
    out = np.empty_like(q)
    for i in range(q.shape[0]):
        v = round_shift(q[i], d, r)
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[i] = v
    return out


@njit(cache=True)
def lincomb(X, K, E, S, r, lo, hi):
    """X (T, L): out[l] = clamp(round_shift(sum_t (K[t] X[t, l]) << E[t], S, r), lo, hi)."""
    T, L = X.shape
    out = np.empty(L, dtype=np.int64)
    for l in range(L):
        acc = np.int64(0)
        for t in range(T):
            acc += (K[t] * X[t, l]) << E[t]
        v = round_shift(acc, S, r)
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        out[l] = v
    return out


@njit(cache=True, parallel=True)
def gemm_exact(a, w):
    """Plain int64 GEMM, k ascending (used only where no partial sum can overflow)."""
    M, Kd = a.shape
    N = w.shape[1]
    out = np.zeros((M, N), dtype=np.int64)
    for i in prange(M):
        for k in range(Kd):
            av = a[i, k]
            if av != 0:
                for j in range(N):
                    out[i, j] += av * w[k, j]
    return out


@njit(cache=True, parallel=True)
def gemm_seq(a, w, W, mode):
    """Sequential GEMM with an accumulator of W bits, wrap or saturate at every addition.

    Returns (out, max_abs_partial, events, outputs_affected) where max_abs_partial is the
    largest |partial sum| of the exact (unbounded) accumulation, events counts additions
    whose result was changed by wrap/saturate, outputs_affected counts outputs with at
    least one event.
    """
    M, Kd = a.shape
    N = w.shape[1]
    lo = -(np.int64(1) << (W - 1))
    hi = (np.int64(1) << (W - 1)) - 1
    mask = (np.int64(1) << W) - 1
    out = np.empty((M, N), dtype=np.int64)
    row_max = np.zeros(M, dtype=np.int64)
    row_events = np.zeros(M, dtype=np.int64)
    row_aff = np.zeros(M, dtype=np.int64)
    for i in prange(M):
        acc = np.zeros(N, dtype=np.int64)
        ideal = np.zeros(N, dtype=np.int64)
        hit = np.zeros(N, dtype=np.bool_)
        mx = np.int64(0)
        ev = np.int64(0)
        for k in range(Kd):
            av = a[i, k]
            for j in range(N):
                p = av * w[k, j]
                t = ideal[j] + p
                ideal[j] = t
                if t < 0:
                    t = -t
                if t > mx:
                    mx = t
                s = acc[j] + p
                if mode == O_WRAP:
                    v = ((s - lo) & mask) + lo
                else:
                    v = s
                    if v < lo:
                        v = lo
                    elif v > hi:
                        v = hi
                if v != s:
                    ev += 1
                    hit[j] = True
                acc[j] = v
        out[i, :] = acc
        row_max[i] = mx
        row_events[i] = ev
        row_aff[i] = hit.sum()
    return out, row_max.max() if M > 0 else 0, row_events.sum(), row_aff.sum()


@njit(cache=True)
def gemm_first_overflow(a, w, W):
    """First (i, j, k, partial) in row-major output order, k ascending, whose partial sum
    leaves the signed W-bit range; (-1, -1, -1, 0) if none."""
    M, Kd = a.shape
    N = w.shape[1]
    lo = -(np.int64(1) << (W - 1))
    hi = (np.int64(1) << (W - 1)) - 1
    for i in range(M):
        for j in range(N):
            acc = np.int64(0)
            for k in range(Kd):
                acc += a[i, k] * w[k, j]
                if acc < lo or acc > hi:
                    return i, j, k, acc
    return -1, -1, -1, np.int64(0)


@njit(cache=True)
def gemm_first_overflow_colmajor(a, w, W):
    """As gemm_first_overflow, searching the outputs in column-major order (j, then i):
    conv2d's (o, y, x) order for the rows of one image."""
    M, Kd = a.shape
    N = w.shape[1]
    lo = -(np.int64(1) << (W - 1))
    hi = (np.int64(1) << (W - 1)) - 1
    for j in range(N):
        for i in range(M):
            acc = np.int64(0)
            for k in range(Kd):
                acc += a[i, k] * w[k, j]
                if acc < lo or acc > hi:
                    return i, j, k, acc
    return -1, -1, -1, np.int64(0)


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, stride, pad, pad_code, c0, cg):
    """x (N, C, H, W) -> (N*Ho*Wo, cg*kh*kw) columns of channels [c0, c0+cg), taps in
    (c, ky, kx) ascending order; out-of-image taps read ``pad_code``."""
    Nb, C, H, Wd = x.shape
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (Wd + 2 * pad - kw) // stride + 1
    cols = np.empty((Nb * Ho * Wo, cg * kh * kw), dtype=np.int64)
    for row in prange(Nb * Ho * Wo):
        nb = row // (Ho * Wo)
        rem = row - nb * Ho * Wo
        oy = rem // Wo
        ox = rem - oy * Wo
        col = 0
        for c in range(c0, c0 + cg):
            for ky in range(kh):
                iy = oy * stride + ky - pad
                for kx in range(kw):
                    ix = ox * stride + kx - pad
                    if 0 <= iy < H and 0 <= ix < Wd:
                        cols[row, col] = x[nb, c, iy, ix]
                    else:
                        cols[row, col] = pad_code
                    col += 1
    return cols


@njit(cache=True, nogil=True)
def pool2d_range(x, kh, kw, stride, mode, r, nc0, nc1, out):
    """Max (``POOL_MAX``) or average (``POOL_AVG``, exact integer division rounded by r)
    pooling of the planes nc in [nc0, nc1) (n * C + c) into out (N, C, Ho, Wo)."""
    Nb, C, H, Wd = x.shape
    Ho = out.shape[2]
    Wo = out.shape[3]
    cnt = kh * kw
    for nc in range(nc0, nc1):
        nb = nc // C
        c = nc - nb * C
        for oy in range(Ho):
            for ox in range(Wo):
                if mode == POOL_MAX:
                    m = x[nb, c, oy * stride, ox * stride]
                    for ky in range(kh):
                        for kx in range(kw):
                            v = x[nb, c, oy * stride + ky, ox * stride + kx]
                            if v > m:
                                m = v
                    out[nb, c, oy, ox] = m
                else:
                    s = np.int64(0)
                    for ky in range(kh):
                        for kx in range(kw):
                            s += x[nb, c, oy * stride + ky, ox * stride + kx]
                    out[nb, c, oy, ox] = round_div(s, cnt, r)
    return out


@njit(cache=True, nogil=True)
def gap_nhwc(x, r, out):
    """The global average pool of channels-last codes x (N, H, W, C) into out (N, C):
    each channel's sum over the H W pixels, divided by H W rounded by r (the same
    ``round_div`` as ``pool2d_range``)."""
    Nb, H, Wd, C = x.shape
    cnt = H * Wd
    s = np.empty(C, dtype=np.int64)
    for n in range(Nb):
        img = x[n].reshape(cnt, C)
        for c in range(C):
            s[c] = 0
        for p in range(cnt):
            px = img[p]
            for c in range(C):
                s[c] += np.int64(px[c])
        o = out[n]
        for c in range(C):
            o[c] = round_div(s[c], cnt, r)
    return out


def pool2d(x, kh, kw, stride, mode, r):
    """Max (``POOL_MAX``) or average (``POOL_AVG``) pooling, (N, C, Ho, Wo) int64."""
    Nb, C, H, Wd = x.shape
    Ho = (H - kh) // stride + 1
    Wo = (Wd - kw) // stride + 1
    out = np.empty((Nb, C, Ho, Wo), dtype=np.int64)
    par_range(lambda a, b: pool2d_range(x, kh, kw, stride, mode, r, a, b, out), Nb * C,
              out.size * kh * kw)
    return out


@njit(cache=True, nogil=True)
def absmax_axis1_range(x, c0, c1, out):
    A, C, B = x.shape
    for c in range(c0, c1):
        m = np.int64(0)
        for a in range(A):
            for b in range(B):
                v = np.int64(x[a, c, b])
                if v < 0:
                    v = -v
                if v > m:
                    m = v
        out[c] = m
    return out


def absmax_axis1(x):
    """x (A, C, B) -> (C,) int64: max |x[a, c, b]| over a and b."""
    out = np.zeros(x.shape[1], dtype=np.int64)
    par_range(lambda a, b: absmax_axis1_range(x, a, b, out), x.shape[1], x.size)
    return out


def requantize3(acc, sum_a, sum_w, K, E, S, r, lo, hi):
    """acc and sum_a (A, C, B) with channels on axis 1, sum_w (C,), K/E (4, C), S (C,) ->
    codes (A, C, B): clamp(round_shift(sum_t (K_t x_t) << E_t, S, r), lo, hi)."""
    A, C, B = acc.shape
    out = np.empty((A, C, B), dtype=np.int64)
    par_range(lambda a, b: requantize3_range(acc, sum_a, sum_w, K, E, S, r, lo, hi, a, b,
                                             out), A * C, acc.size * 4)
    return out


@njit(cache=True, nogil=True)
def requantize3_range(acc, sum_a, sum_w, K, E, S, r, lo, hi, ac0, ac1, out):
    A, C, B = acc.shape
    for ac in range(ac0, ac1):
        a = ac // C
        c = ac - a * C
        k0, e0, k1, e1, s = K[0, c], E[0, c], K[1, c], E[1, c], S[c]
        c23 = ((K[2, c] * sum_w[c]) << E[2, c]) + (K[3, c] << E[3, c])
        for b in range(B):
            v = ((k0 * acc[a, c, b]) << e0) + ((k1 * sum_a[a, c, b]) << e1) + c23
            v = round_shift(v, s, r)
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            out[a, c, b] = v
    return out
