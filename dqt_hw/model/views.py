"""Layouts and views: how the codes of a conv's input become the padded channels-last
block its GEMMs read, and the side sums of that block.

- ``View`` (a record): the nested view of every code, clamp(round_shift(q, d, r), vlo,
  vhi), moved by -off (the plan's ox), by a table over the codes or computed; the border
  value and width of the padded block.
- ``Block`` (a record): the geometry of a conv's padded channels-last block and outputs.
- the padded block from channels-first codes (``to_nhwc``; ``to_nhwc_bytes``, the
  integer kernel's byte block) or from channels-last bytes
  (``nhwc_to_padded_view``, with the per-pixel sums), im2col rows of it
  (``im2col_nhwc``), and the window sums sum_a of the moved codes
  (``window_sums``, ``window_sums_bytes``, ``window_sums_plane``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from . import _simd
from .intops import R_FLOOR, R_HALF_UP, clamp, round_shift


class View(NamedTuple):
    """How a code q of the input becomes a value of the padded block: tab[q - qlo] where
    ``tab`` is not empty (the view over the codes [qlo, qlo + len(tab)), already moved by
    -off), else clamp(round_shift(q, d, r), vlo, vhi) - off (d = 0 and the widest
    [vlo, vhi]: q - off). ``pad`` border pixels hold ``padv``. For channels-last bytes
    (``nhwc_to_padded_view``): ``ident``, the table is the identity (a byte copy);
    ``use64``, the 64-byte AVX-512 kernels ``_simd.view64`` / ``sad64`` may be used."""

    pad: int
    padv: object
    off: object
    d: int
    r: int
    vlo: int
    vhi: int
    tab: np.ndarray
    qlo: int
    ident: bool
    use64: bool


class LayerView(NamedTuple):
    """The nested view of a fused layer's input codes q: clamp(round_shift(q, d, r), vlo,
    vhi), computed by a table over the master codes [qlo, qhi] where ``table``."""

    d: int
    r: int
    vlo: int
    vhi: int
    qlo: int
    qhi: int
    table: bool

    @property
    def nested(self):
        """(d, r, vlo, vhi)."""
        return (self.d, self.r, self.vlo, self.vhi)


NO_VIEW = (0, 0, -(1 << 62), 1 << 62)
"""(d, r, vlo, vhi) of no view: every code as it is."""


def make_view(pad, padv, off, view, tab, qlo=0, ident=False, use64=False):
    """A ``View`` from ``view`` = (d, r, vlo, vhi) or None (``NO_VIEW``) and a table
    (None: computed)."""
    d, r, vlo, vhi = NO_VIEW if view is None else view
    if tab is None:
        tab = np.zeros(0, dtype=np.asarray(padv).dtype)
    return View(pad, padv, off, d, r, vlo, vhi, tab, qlo, ident, use64)


class Block(NamedTuple):
    """A conv's padded channels-last block and outputs: input images H x Wd with C
    channels, padded Hp x Wp with Cp >= Cg channels per pixel, a kh x kw kernel at
    ``stride``, outputs Ho x Wo."""

    H: int
    Wd: int
    C: int
    Hp: int
    Wp: int
    Cp: int
    kh: int
    kw: int
    stride: int
    Ho: int
    Wo: int


def block_of(x, w, stride, pad, nhwc):
    """The ``Block`` of a conv of x (NCHW, or NHWC where ``nhwc``) by w."""
    if nhwc:
        _, H, Wd, C = x.shape
    else:
        _, C, H, Wd = x.shape
    _, Cg, kh, kw = w.shape
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (Wd + 2 * pad - kw) // stride + 1
    return Block(H, Wd, C, H + 2 * pad, Wd + 2 * pad, _simd.pad4(Cg), kh, kw, stride, Ho, Wo)


@njit(cache=True, inline="always")
def _pixel(m, HW, Wo):
    """(image, output row, output column) of output pixel m."""
    n = m // HW
    rem = m - n * HW
    oy = rem // Wo
    return n, oy, rem - oy * Wo


@njit(cache=True, nogil=True)
def im2col_nhwc(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """out[m - m0, (ky * kw + kx) * cg + c] = xp[n - n0, oy * stride + ky - iy0,
    ox * stride + kx, c] for the outputs m = (n, oy, ox) in [m0, m1): each row is kh runs
    of kw * cg contiguous values of the padded NHWC image."""
    cg = xp.shape[3]
    run = kw * cg
    HW = Ho * Wo
    for m in range(m0, m1):
        n, oy, ox = _pixel(m, HW, Wo)
        img = xp[n - n0]
        orow = out[m - m0]
        for ky in range(kh):
            src = img[oy * stride + ky - iy0].reshape(-1)
            s0 = ox * stride * cg
            d0 = ky * run
            for t in range(run):
                orow[d0 + t] = src[s0 + t]
    return out


@njit(cache=True, nogil=True, inline="always")
def _windows(plane, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """out[m - m0] = the sum, in the dtype of the pixel sums ``plane`` (rows from iy0 of
    images from n0), of the kh x kw window of output m = (n, oy, ox) in [m0, m1)."""
    HW = Ho * Wo
    for m in range(m0, m1):
        n, oy, ox = _pixel(m, HW, Wo)
        s = plane[n - n0, 0, 0] - plane[n - n0, 0, 0]
        for ky in range(kh):
            row = plane[n - n0, oy * stride + ky - iy0]
            for kx in range(kw):
                s += row[ox * stride + kx]
        out[m - m0] = np.int64(s)
    return out


@njit(cache=True, nogil=True)
def window_sums(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """out[m - m0] = the exact sum of the (centred) taps of output m = (n, oy, ox) in
    [m0, m1), from the padded NHWC block xp: channel sums per pixel, then the window."""
    nimg, R, Wp, cg = xp.shape
    plane = np.zeros((nimg, R, Wp), dtype=np.float64)
    for n in range(nimg):
        for r in range(R):
            for ix in range(Wp):
                s = 0.0
                px = xp[n, r, ix]
                for c in range(cg):
                    s += px[c]
                plane[n, r, ix] = s
    return _windows(plane, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out)


@njit(cache=True, nogil=True)
def window_sums_bytes(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out):
    """``window_sums`` of a padded NHWC block of bytes (the VNNI path): the channel
    sums in integers, which vectorise."""
    nimg, R, Wp, cg = xp.shape
    plane = np.zeros((nimg, R, Wp), dtype=np.int64)
    for n in range(nimg):
        for r in range(R):
            for ix in range(Wp):
                si = np.int32(0)
                px = xp[n, r, ix]
                for c in range(cg):
                    si += np.int32(px[c])
                plane[n, r, ix] = si
    return _windows(plane, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, out)


@njit(cache=True, nogil=True)
def window_sums_plane(plane, n0, n1, kh, kw, stride, Ho, Wo, out):
    """out[(n - n0) * Ho * Wo + oy * Wo + ox] = the sum of the kh x kw window of output
    (n, oy, ox) over the pixel sums ``plane`` (images n0 <= n < n1 at plane[n - n0],
    C-contiguous). On the flat plane of all the images: the column sums over ky, then
    the sums over kx, each one loop from 0 over the whole block (entries that straddle
    two rows or images are computed and never read), then each output's entry."""
    nimg = n1 - n0
    Hp = plane.shape[1]
    Wp = plane.shape[2]
    HpWp = Hp * Wp
    pf = plane.reshape(-1)
    L = nimg * HpWp
    if kh == 1 and kw == 1:
        u = pf
    else:
        nc = L - (kh - 1) * Wp
        col = np.empty(nc, dtype=np.int64)
        p0 = pf[0:nc]
        for j in range(nc):
            col[j] = p0[j]
        for ky in range(1, kh):
            pk = pf[ky * Wp:ky * Wp + nc]
            for j in range(nc):
                col[j] += pk[j]
        nu = nc - (kw - 1)
        u = np.empty(nu, dtype=np.int64)
        for j in range(nu):
            u[j] = col[j]
        for kx in range(1, kw):
            ck = col[kx:kx + nu]
            for j in range(nu):
                u[j] += ck[j]
    for n in range(nimg):
        for oy in range(Ho):
            src = u[n * HpWp + oy * stride * Wp:]
            o = out[(n * Ho + oy) * Wo:(n * Ho + oy + 1) * Wo]
            for ox in range(Wo):
                o[ox] = src[ox * stride]
    return out


@njit(cache=True, inline="always")
def _view1(q, d, r, vlo, vhi):
    """clamp(round_shift(q, d, r), vlo, vhi) (branch-free: it vectorises)."""
    return clamp(round_shift(np.int64(q), d, r), vlo, vhi)


def view_table(qlo, qhi, d, r, vlo, vhi, off, dtype):
    """tab[q - qlo] = clamp(round_shift(q, d, r), vlo, vhi) - off for every master code q
    in [qlo, qhi], in the float ``dtype`` of the exact plan (the values are small
    integers, exact there)."""
    q = np.arange(qlo, qhi + 1, dtype=np.int64)
    v = np.empty_like(q)
    view_codes(q, d, r, vlo, vhi, v)
    return (v - off).astype(dtype)


@njit(cache=True, nogil=True)
def view_codes(q, d, r, vlo, vhi, out):
    for i in range(q.shape[0]):
        out[i] = _view1(q[i], d, r, vlo, vhi)
    return out



@njit(cache=True, nogil=True)
def to_nhwc(x, n0, n1, iy0, iy1, c0, cg, v, xp):
    """x (N, C, H, W), images [n0, n1), padded rows [iy0, iy1), channels [c0, c0 + cg),
    into the padded NHWC block xp (``v.pad`` wide border holding ``v.padv``), each code
    by the ``View`` v (by its table where it has one: the codes lie in its range)."""
    H = x.shape[2]
    Wd = x.shape[3]
    Wp = xp.shape[2]
    pad = v.pad
    table = v.tab.shape[0] > 0
    for n in range(n0, n1):
        img = xp[n - n0]
        for r_ in range(iy0, iy1):
            row = img[r_ - iy0]
            if r_ < pad or r_ >= H + pad:
                for ix in range(Wp):
                    for c in range(cg):
                        row[ix, c] = v.padv
                continue
            for ix in range(pad):
                for c in range(cg):
                    row[ix, c] = v.padv
            for ix in range(Wd + pad, Wp):
                for c in range(cg):
                    row[ix, c] = v.padv
            for c in range(cg):
                xr = x[n, c0 + c, r_ - pad]
                if table:
                    for ix in range(Wd):
                        row[ix + pad, c] = v.tab[np.int64(xr[ix]) - v.qlo]
                elif v.d == 0:
                    for ix in range(Wd):
                        row[ix + pad, c] = xr[ix] - v.off
                else:
                    for ix in range(Wd):
                        row[ix + pad, c] = _view1(xr[ix], v.d, v.r, v.vlo, v.vhi) - v.off
    return xp


@njit(cache=True, nogil=True, inline="always")
def _bytes4(xs, ux, d0, d1, d2, d3, cg, v, mode, ob):
    """dj[c] = the byte of code xs[c, ux + j] (j < 4, c < cg) by the ``View`` v: mode 0,
    q - off (ob = off mod 256: a byte is the value mod 256 either way); 1, by the
    table; 2, the computed view, moved. One loop per mode (each vectorises)."""
    u1, u2, u3 = np.uintp(1), np.uintp(2), np.uintp(3)
    if mode == 0:
        for c in range(cg):
            xr = xs[np.uintp(c)]
            d0[c] = xr[ux] - ob
            d1[c] = xr[ux + u1] - ob
            d2[c] = xr[ux + u2] - ob
            d3[c] = xr[ux + u3] - ob
    elif mode == 1:
        for c in range(cg):
            xr = xs[np.uintp(c)]
            d0[c] = v.tab[np.int64(xr[ux]) - v.qlo]
            d1[c] = v.tab[np.int64(xr[ux + u1]) - v.qlo]
            d2[c] = v.tab[np.int64(xr[ux + u2]) - v.qlo]
            d3[c] = v.tab[np.int64(xr[ux + u3]) - v.qlo]
    else:
        for c in range(cg):
            xr = xs[np.uintp(c)]
            d0[c] = _view1(xr[ux], v.d, v.r, v.vlo, v.vhi) - v.off
            d1[c] = _view1(xr[ux + u1], v.d, v.r, v.vlo, v.vhi) - v.off
            d2[c] = _view1(xr[ux + u2], v.d, v.r, v.vlo, v.vhi) - v.off
            d3[c] = _view1(xr[ux + u3], v.d, v.r, v.vlo, v.vhi) - v.off


@njit(cache=True, nogil=True, inline="always")
def _bytes1(xs, ux, d0, cg, v, mode, ob):
    """d0[c] = the byte of code xs[c, ux] (``_bytes4`` for one pixel)."""
    if mode == 0:
        for c in range(cg):
            d0[c] = xs[np.uintp(c), ux] - ob
    elif mode == 1:
        for c in range(cg):
            d0[c] = v.tab[np.int64(xs[np.uintp(c), ux]) - v.qlo]
    else:
        for c in range(cg):
            d0[c] = _view1(xs[np.uintp(c), ux], v.d, v.r, v.vlo, v.vhi) - v.off


@njit(cache=True, nogil=True, inline="always")
def _fill_pixels(row, i0, i1, Cp, cg, b):
    """Channels [0, cg) of the pixels [i0, i1) of a flat padded row hold byte b."""
    for ix in range(i0, i1):
        d = row[ix * Cp:ix * Cp + cg]
        for c in range(cg):
            d[c] = b


@njit(cache=True, nogil=True)
def to_nhwc_bytes(x, n0, n1, c0, cg, v, xp):
    """``to_nhwc`` of whole padded images into a block of bytes (the integer kernel's):
    xp[n - n0] (Hp, Wp, Cp >= cg) for the images [n0, n1) of x (N, C, H, W), channels
    [c0, c0 + cg) (channels past cg left as they are), each code's byte by the ``View``
    v (its value mod 256). Per image row, four pixels at a time: one loop over the
    channels reads their four codes from each channel's row (vector gathers; four
    pixels per pass over the channels' rows, so a plane stride of a power of two does
    not evict them from L1 between pixels) and writes four contiguous runs of cg
    bytes."""
    H = x.shape[2]
    Wd = x.shape[3]
    Hp = xp.shape[1]
    Wp = xp.shape[2]
    Cp = xp.shape[3]
    pad = v.pad
    pb = np.uint8(v.padv)
    ob = np.uint8(np.int64(v.off) & 0xFF)
    mode = 1 if v.tab.shape[0] > 0 else (0 if v.d == 0 else 2)
    for n in range(n0, n1):
        img = xp[n - n0]
        for r_ in range(Hp):
            row = img[r_].reshape(-1)
            if r_ < pad or r_ >= H + pad:
                _fill_pixels(row, 0, Wp, Cp, cg, pb)
                continue
            _fill_pixels(row, 0, pad, Cp, cg, pb)
            _fill_pixels(row, Wd + pad, Wp, Cp, cg, pb)
            xs = x[n, c0:c0 + cg, r_ - pad]
            ix = 0
            while ix + 4 <= Wd:
                p0 = (ix + pad) * Cp
                d0 = row[p0:p0 + cg]
                d1 = row[p0 + Cp:p0 + Cp + cg]
                d2 = row[p0 + 2 * Cp:p0 + 2 * Cp + cg]
                d3 = row[p0 + 3 * Cp:p0 + 3 * Cp + cg]
                _bytes4(xs, np.uintp(ix), d0, d1, d2, d3, cg, v, mode, ob)
                ix += 4
            while ix < Wd:
                p0 = (ix + pad) * Cp
                _bytes1(xs, np.uintp(ix), row[p0:p0 + cg], cg, v, mode, ob)
                ix += 1
    return xp


@njit(cache=True, nogil=True, inline="always")
def _simple(v):
    """True where a byte's view is cheaper computed than looked up: floor / half_up,
    not moved (``nhwc_to_padded_view``)."""
    return (not v.ident and v.off == 0 and (v.r == R_FLOOR or v.r == R_HALF_UP)
            and 0 <= v.d < 63 and v.tab.shape[0] > 0)


@njit(cache=True, nogil=True, inline="always")
def _view_byte(q, v, simple):
    """The view of one code q of channels-last bytes (see ``nhwc_to_padded_view``)."""
    if v.ident:
        return np.int64(q)
    if simple:
        return _view1(q, v.d, v.r, v.vlo, v.vhi)
    if v.tab.shape[0] > 0:
        return np.int64(v.tab[q])
    return _view1(q, v.d, v.r, v.vlo, v.vhi) - v.off


@njit(cache=True, nogil=True, inline="always")
def _view_row(src, dst, nb, v, simple):
    """dst[j] = the view of src[j], j < nb (one loop from 0: it vectorises)."""
    if v.ident:
        for j in range(nb):
            dst[j] = src[j]
    elif simple:
        for j in range(nb):
            dst[j] = _view1(src[j], v.d, v.r, v.vlo, v.vhi)
    elif v.tab.shape[0] > 0:
        for j in range(nb):
            dst[j] = v.tab[src[j]]
    else:
        for j in range(nb):
            dst[j] = _view1(src[j], v.d, v.r, v.vlo, v.vhi) - v.off


@njit(cache=True, nogil=True, inline="always")
def _fill(a, s, e, v):
    sub = a[s:e]  # indices from 0: the loop vectorises
    for j in range(sub.shape[0]):
        sub[j] = v


@njit(cache=True, nogil=True)
def nhwc_to_padded_view(xf, n0, n1, c0, cg, g, v, xpf, planef):
    """Channels-last codes x (N, g.H, g.Wd, g.C), given flat as xf = x.reshape(-1),
    images [n0, n1), channels [c0, c0 + cg), into the padded NHWC block of bytes xpf
    (flat: (n1 - n0, g.Hp, g.Wp, g.Cp >= cg); border ``v.padv``; channels past cg hold
    whatever they held, or ``padv`` on the border: their weights are zero), each code q
    viewed by the ``View`` v: clamp(round_shift(q, d, r), vlo, vhi) - off (branch-free),
    or tab[q] where ``v.tab`` is not empty (uint8 codes, the table of the view over
    0..255, moved by -off; ``v.ident``: that table is the identity, a byte copy;
    ``v.use64``: AVX-512 may be used: the floor / half_up view of 8-bit codes by
    ``_simd.view64`` and the pixel sums by ``_simd.sad64``); planef (flat (n1 - n0, Hp,
    Wp)) receives the sum of each pixel's cg bytes. Flat indices from 0, so the loops
    vectorise; where the channels are not padded (cg = C = Cp) a row's view is one loop
    over its bytes, and where they are whole 64-byte pieces as well (C a multiple of
    64, the byte kernel) each pixel is one pass over its pieces, their sums from
    ``view64`` itself, and only the border is filled."""
    H, Wd, C, Hp, Wp, Cp = g.H, g.Wd, g.C, g.Hp, g.Wp, g.Cp
    pad, padv, d, r, vlo, vhi = v.pad, v.padv, v.d, v.r, v.vlo, v.vhi
    tab, ident = v.tab, v.ident
    pv = np.int64(padv) * cg
    pb8 = np.uint8(padv)
    flat = cg == C and Cp == C
    g8 = C // 8
    sad = flat and v.use64 and C % 8 == 0
    simple = _simple(v)
    # the byte kernel on whole rows: the identity view, or floor / half_up of 8-bit codes
    # (usat8(q + hv) >> d)
    hv = ((np.int64(1) << d) >> 1) if r == R_HALF_UP else np.int64(0)
    v64 = v.use64 and (ident or (simple and 1 <= d <= 7 and vlo == 0 and vhi == (255 >> d)))
    dv = d if not ident else 0
    if ident:
        hv = np.int64(0)
    img = Hp * Wp * Cp
    rowlen = Wp * Cp
    # scratch: the sums of 8 bytes of a padded image
    s8 = np.empty(img // 8 + 8 if sad else 1, dtype=np.int64)
    xpa = xpf.ctypes.data
    xfa = xf.ctypes.data
    sa8 = s8.ctypes.data
    HWp = Hp * Wp
    # whole pixels of 64-byte pieces: one pass, the byte kernel's own sums
    by64 = sad and v64 and C % 64 == 0
    for n in range(n0, n1):
        ib = (n - n0) * img
        pb = (n - n0) * HWp
        if by64:
            # the border rows and columns at the border code (and their pixel sums);
            # each inner pixel viewed 64 bytes at a time, its sum the pieces' sums
            # (``view64`` returns them): the block is written once and read never
            nb = Wd * C
            _fill(xpf, ib, ib + pad * rowlen, pb8)
            _fill(xpf, ib + (H + pad) * rowlen, ib + img, pb8)
            _fill(planef, pb, pb + pad * Wp, pv)
            _fill(planef, pb + (H + pad) * Wp, pb + HWp, pv)
            for r_ in range(pad, H + pad):
                rb = ib + r_ * rowlen
                prb = pb + r_ * Wp
                if pad:
                    _fill(xpf, rb, rb + pad * Cp, pb8)
                    _fill(xpf, rb + (Wd + pad) * Cp, rb + rowlen, pb8)
                    _fill(planef, prb, prb + pad, pv)
                    _fill(planef, prb + Wd + pad, prb + Wp, pv)
                sb = xfa + (n * H + r_ - pad) * nb
                db = xpa + rb + pad * Cp
                pl = planef[prb + pad:prb + pad + Wd]
                for ix in range(Wd):
                    t = np.int64(0)
                    for c in range(0, C, 64):
                        t += _simd.view64(sb + c, db + c, hv, dv)
                    pl[ix] = t
                    sb += C
                    db += C
            continue
        if sad:
            # the padded image: all of it at the border code, then each row's view
            # (64 bytes at a time by AVX-512 where it is the identity or a floor /
            # half_up view of 8-bit codes); then the sums of its bytes 8 at a time by
            # psadbw over the whole image (border pixels included: cg = Cp) and per
            # pixel the sum of its C / 8 groups
            _fill(xpf, ib, ib + img, pb8)
            nb = Wd * C
            for r_ in range(pad, H + pad):
                sb = (n * H + r_ - pad) * nb
                db = ib + r_ * rowlen + pad * Cp
                c = 0
                if v64:
                    while c + 64 <= nb:
                        _simd.view64(xfa + sb + c, xpa + db + c, hv, dv)
                        c += 64
                if c < nb:
                    _view_row(xf[sb + c:sb + nb], xpf[db + c:db + nb], nb - c, v, simple)
            j = 0
            while j + 64 <= img:
                _simd.sad64(xpa + ib + j, sa8 + j)
                j += 64
            im = xpf[ib:ib + img]
            for g in range(j // 8, img // 8):
                t = np.int64(0)
                for c in range(8):
                    t += np.int64(im[8 * g + c])
                s8[g] = t
            pl = planef[pb:pb + HWp]
            sg = s8[:g8 * HWp].reshape(HWp, g8)
            if g8 == 1:
                for ix in range(HWp):
                    pl[ix] = sg[ix, 0]
            elif g8 == 2:
                for ix in range(HWp):
                    pl[ix] = sg[ix, 0] + sg[ix, 1]
            else:
                for ix in range(HWp):
                    t = sg[ix, 0]
                    for g in range(1, g8):
                        t += sg[ix, g]
                    pl[ix] = t
            continue
        if cg == 1 and C == 1 and tab.shape[0] > 0:
            # one channel (an image input): the border everywhere, then each pixel's
            # byte by the table and its sum (the byte itself)
            _fill(xpf, ib, ib + img, pb8)
            _fill(planef, pb, pb + HWp, pv)
            for r_ in range(pad, H + pad):
                src = xf[(n * H + r_ - pad) * Wd:(n * H + r_ - pad + 1) * Wd]
                dst = xpf[ib + (r_ * Wp + pad) * Cp:ib + (r_ * Wp + pad + Wd) * Cp]
                pl = planef[pb + r_ * Wp + pad:pb + r_ * Wp + pad + Wd]
                for ix in range(Wd):
                    b = tab[src[ix]]
                    dst[np.uintp(ix) * np.uintp(Cp)] = b
                    pl[ix] = b
            continue
        for r_ in range(Hp):
            rb = ib + r_ * rowlen
            prb = pb + r_ * Wp
            if r_ < pad or r_ >= H + pad:
                _fill(xpf, rb, rb + rowlen, pb8)
                _fill(planef, prb, prb + Wp, pv)
                continue
            if pad:
                _fill(xpf, rb, rb + pad * Cp, pb8)
                _fill(xpf, rb + (Wd + pad) * Cp, rb + rowlen, pb8)
                _fill(planef, prb, prb + pad, pv)
                _fill(planef, prb + Wd + pad, prb + Wp, pv)
            sb = (n * H + r_ - pad) * Wd * C + c0
            db = rb + pad * Cp
            pp = prb + pad
            if flat:
                _view_row(xf[sb:sb + Wd * C], xpf[db:db + Wd * C], Wd * C, v, simple)
                for ix in range(Wd):
                    px = xpf[db + ix * C:db + (ix + 1) * C]
                    t = np.int32(0)
                    for c in range(C):
                        t += np.int32(px[c])
                    planef[pp + ix] = t
                continue
            for ix in range(Wd):
                s0 = sb + ix * C
                d0 = db + ix * Cp
                t = np.int64(0)
                for c in range(cg):
                    b = _view_byte(xf[s0 + c], v, simple)
                    xpf[d0 + c] = b
                    t += b
                planef[pp + ix] = t
    return xpf
