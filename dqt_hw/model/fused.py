"""Fused layers: the residual add in one pass, and the fused channels-last conv layer in
one Numba call: what a small network's many small
layers need, and what a whole-network program runs per layer (``dqt_hw.net.program``).

A ``FusedLayer`` record holds everything of one fused conv layer (one group, the
integer kernel, a byte view table, a ``SHORT`` or ``AFFINE`` requantization) that does
not depend on the input: the geometry, the view, the packed weights, the offsets of the
taps and of the output pixels, the side terms and the requantization constants.

Numba's parallel loops take arrays and numbers, not records: a ``FusedLayer`` is
therefore run from its flat encoding, ``encode``: one int64 row of the numbers (columns
``F_*``) and offsets of its arrays in four pools (int64, int32, int8, uint8 arrays laid
end to end, ``Pool``), from which ``decode`` makes the record again inside a kernel.
``layer_nhwc`` runs one layer on a batch over Numba's threads; a whole-network program
keeps one row per layer and width pair in one table (``dqt_hw.net.program``). Either way
``fused_images`` does the work on some images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from . import _simd
from .epilogue import Requant, Sums, Tile, finish_tiles_nhwc
from .intops import clamp, round_shift
from .runtime import par_range
from .views import Block, View, nhwc_to_padded_view, window_sums_plane

MR = _simd.MR

# columns of a fused layer's row (``encode``): the Block, the View, the Packed weights,
# pix / mb / O, the Sums and the Requant, then the lengths of the pooled arrays
(F_H, F_WD, F_C, F_HP, F_WP, F_CP, F_KH, F_KW, F_STRIDE, F_HO, F_WO,
 F_PAD, F_PADV, F_OFF, F_D, F_R, F_VLO, F_VHI, F_TAB, F_IDENT, F_USE64,
 F_WPK, F_WPN, F_WOFF, F_NVS, F_NBLK, F_NP, F_KOFF, F_NK,
 F_PIX, F_MB, F_O,
 F_OW, F_CORR, F_KSA, F_W,
 F_K1, F_E1, F_K2, F_E2, F_C34, F_S, F_SH, F_Q, F_RQ, F_NQ, F_RR, F_LO, F_HI,
 F_FORM, F_L16) = range(51)
NFIELDS = 51


class Packed(NamedTuple):
    """A group's weights packed for the integer kernel (``_simd.pack_weights``: bytes
    ``wp``, block offsets ``woff``, vectors per block ``nvs``, ``Np`` padded channels)
    and the offsets of the kernel's taps in the padded block (``_simd.tap_offsets``), and
    the plan's ``l16`` (``plan.narrow_steps``)."""

    wp: np.ndarray
    woff: np.ndarray
    nvs: np.ndarray
    Np: int
    koff: np.ndarray
    l16: int  # steps per int16 chunk of the narrow kernel, 0: the int32 kernel


class FusedLayer(NamedTuple):
    """One fused channels-last conv layer (see the module's docstring): ``g`` its
    geometry, ``v`` the view of its input bytes, ``w`` its packed weights, ``pix`` the
    window corner of each output pixel within a padded image, ``mb`` output rows per
    GEMM block, ``O`` output channels, ``s`` its side terms (``s.sx`` unused: each call
    makes its own) and ``rq`` its requantization."""

    g: Block
    v: View
    w: Packed
    pix: np.ndarray
    mb: int
    O: int
    s: Sums
    rq: Requant


class Pool:
    """Arrays of one dtype laid end to end (each at a multiple of 64 bytes)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.parts, self.size = [], 0

    def add(self, a) -> int:
        """Append a (flattened); its offset."""
        a = np.ascontiguousarray(a, dtype=self.dtype).reshape(-1)
        off = self.size
        self.parts.append((off, a))
        item = self.dtype.itemsize
        self.size = off + -(-max(a.size, 1) * item // 64) * 64 // item
        return off

    def array(self):
        out = np.zeros(max(self.size, 1), self.dtype)
        for off, a in self.parts:
            out[off:off + a.size] = a
        return out


def pools():
    """Empty pools of int64, int32, int8 and uint8 arrays (the order ``decode`` takes)."""
    return (Pool(np.int64), Pool(np.int32), Pool(np.int8), Pool(np.uint8))


def encode(L, pools_):
    """The row (NFIELDS int64) of the ``FusedLayer`` L, its arrays added to ``pools_``
    (from ``pools``; their ``array()`` s are what ``decode`` reads)."""
    i64, i32, i8, u8 = pools_
    g, v, w, s, q = L.g, L.v, L.w, L.s, L.rq
    r = np.zeros(NFIELDS, np.int64)
    r[F_H:F_WO + 1] = tuple(g)
    r[[F_PAD, F_PADV, F_OFF, F_D, F_R, F_VLO, F_VHI]] = (v.pad, v.padv, v.off, v.d, v.r,
                                                         v.vlo, v.vhi)
    r[[F_TAB, F_IDENT, F_USE64]] = u8.add(v.tab), v.ident, v.use64
    r[[F_WPK, F_WPN, F_WOFF, F_NVS, F_NBLK, F_NP]] = (i8.add(w.wp), w.wp.size, i64.add(w.woff),
                                                      i64.add(w.nvs), w.nvs.size, w.Np)
    r[[F_KOFF, F_NK, F_PIX, F_MB, F_O]] = i64.add(w.koff), w.koff.size, i64.add(L.pix), L.mb, L.O
    r[[F_OW, F_CORR, F_KSA, F_W]] = s.ow, i64.add(s.corr), s.ksa, s.W
    r[[F_K1, F_E1, F_K2, F_E2, F_C34, F_S, F_SH]] = (
        i32.add(q.K1), i64.add(q.E1), i32.add(q.K2), i64.add(q.E2), i64.add(q.C34),
        i64.add(q.S), i64.add(q.H))
    r[[F_Q, F_RQ, F_NQ]] = i64.add(q.Q), i64.add(q.R), q.Q.size
    r[[F_RR, F_LO, F_HI, F_FORM]] = q.r, q.lo, q.hi, q.form
    r[F_L16] = w.l16
    return r


@njit(cache=True, nogil=True, inline="always")
def decode(p, i64, i32, i8, u8):
    """The ``FusedLayer`` of the row p (``encode``) over the pools' arrays."""
    O = p[F_O]
    g = Block(p[F_H], p[F_WD], p[F_C], p[F_HP], p[F_WP], p[F_CP], p[F_KH], p[F_KW],
              p[F_STRIDE], p[F_HO], p[F_WO])
    v = View(p[F_PAD], np.uint8(p[F_PADV]), p[F_OFF], p[F_D], p[F_R], p[F_VLO], p[F_VHI],
             u8[p[F_TAB]:p[F_TAB] + 256], 0, p[F_IDENT] != 0, p[F_USE64] != 0)
    nblk = p[F_NBLK]
    w = Packed(i8[p[F_WPK]:p[F_WPK] + p[F_WPN]], i64[p[F_WOFF]:p[F_WOFF] + nblk],
               i64[p[F_NVS]:p[F_NVS] + nblk], p[F_NP], i64[p[F_KOFF]:p[F_KOFF] + p[F_NK]],
               p[F_L16])
    s = Sums(i64[0:0], p[F_OW], i64[p[F_CORR]:p[F_CORR] + O], p[F_KSA], p[F_W])
    rq = Requant(i32[p[F_K1]:p[F_K1] + O], i64[p[F_E1]:p[F_E1] + O],
                 i32[p[F_K2]:p[F_K2] + O], i64[p[F_E2]:p[F_E2] + O],
                 i64[p[F_C34]:p[F_C34] + O], i64[p[F_S]:p[F_S] + O],
                 i64[p[F_SH]:p[F_SH] + O], i64[p[F_Q]:p[F_Q] + p[F_NQ]], i64[p[F_RQ]:p[F_RQ] + p[F_NQ]], p[F_RR],
                 p[F_LO], p[F_HI], p[F_FORM])
    return FusedLayer(g, v, w, i64[p[F_PIX]:p[F_PIX] + p[F_HO] * p[F_WO]], p[F_MB], O, s, rq)


@njit(cache=True, nogil=True)
def fused_images(xin, a, b, L, out2):
    """Images [a, b) of the ``FusedLayer`` L: xin the layer's input codes flat (N, H, W,
    C), out2 ((b - a) Ho Wo, O) their output rows. The padded block of the images and
    its pixel sums, their window sums, then per block of ``L.mb`` output rows the
    integer sums into a scratch tile (each row's window corner from ``L.pix``) and the
    requantizing finish."""
    g = L.g
    nimg = b - a
    HW = g.Ho * g.Wo
    M = nimg * HW
    imgb = g.Hp * g.Wp * g.Cp
    xp = np.empty(nimg * imgb, dtype=np.uint8)
    plane = np.empty(nimg * g.Hp * g.Wp, dtype=np.int64)
    n_in = g.H * g.Wd * g.C
    nhwc_to_padded_view(xin[a * n_in:b * n_in], 0, nimg, 0, g.C, g, L.v, xp, plane)
    sx = np.empty(M, dtype=np.int64)
    window_sums_plane(plane.reshape(nimg, g.Hp, g.Wp), 0, nimg, g.kh, g.kw, g.stride, g.Ho,
                      g.Wo, sx)
    s = Sums(sx, L.s.ow, L.s.corr, L.s.ksa, L.s.W)
    w = L.w
    nblk = w.nvs.shape[0]
    for m0 in range(0, M, L.mb):
        m1 = min(M, m0 + L.mb)
        cnt = m1 - m0
        cntp = (cnt + MR - 1) // MR * MR
        rl = np.empty(cntp, dtype=np.int64)
        # the window corner of each output pixel (image n, pixel q): no division per row
        n = m0 // HW
        q = m0 - n * HW
        for i in range(cnt):
            rl[i] = n * imgb + L.pix[q]
            q += 1
            if q == HW:
                q = 0
                n += 1
        for i in range(cnt, cntp):
            rl[i] = rl[cnt - 1]
        Cacc = np.empty((cntp, w.Np), dtype=np.int32)
        _simd.gemm_tiles(xp, rl, w.koff, w.wp, w.woff, w.nvs, Cacc, 0, cntp, 0, nblk, w.l16)
        finish_tiles_nhwc(Cacc, Tile(m0, m0, m1, 0, L.O, 0), s, L.rq, out2)
    return out2


@njit(cache=True, parallel=True)
def layer_nhwc(x, per, p, i64, i32, i8, u8, out2):
    """The fused layer of row p (``encode``; the pools' arrays i64 .. u8) on a batch x
    (N, H, W, C) in one call: chunks of ``per`` images over Numba's threads, each
    ``fused_images``, writing codes into out2 (M, O). The same steps as the Python
    driver ``drivers.conv_vnni`` (which takes every other case), without its per-step
    call overhead."""
    Nb = x.shape[0]
    xin = x.reshape(-1)
    HW = p[F_HO] * p[F_WO]
    nch = (Nb + per - 1) // per
    for ci in prange(nch):
        n0 = ci * per
        n1 = min(Nb, n0 + per)
        fused_images(xin, n0, n1, decode(p, i64, i32, i8, u8), out2[n0 * HW:n1 * HW])
    return out2


# ----------------------------------------------------------------------------- residual add


class AddConsts(NamedTuple):
    """The constants of a two-term ``lincomb`` with a constant third term (a residual
    add): clamp(round_shift((K1 q1 << E1) + (K2 q2 << E2) + C3, S, r), lo, hi)."""

    K1: int
    E1: int
    K2: int
    E2: int
    C3: int
    S: int
    r: int
    lo: int
    hi: int


def fused_add(q1, q2, c, out):
    """The residual add of two code arrays of any integer dtypes in one pass:
    out = clamp(round_shift((K1 q1 << E1) + (K2 q2 << E2) + C3, S, r), lo, hi) element
    by element (``fused_add_range`` over the whole arrays, split between the threads),
    the ``lincomb`` of [q1, q2, 1]; the caller has bounded every sum below 2^62."""
    step = 4096
    nb = -(-q1.shape[0] // step)
    par_range(lambda a, b: fused_add_range(q1, q2, c, out, a * step,
                                           min(q1.shape[0], b * step)),
              nb, q1.shape[0] * 4)
    return out


@njit(cache=True, nogil=True, inline="always")
def _fused_add_loop(a1, a2, k1, k2, c, o1):
    for l in range(a1.shape[0]):
        v = ((k1 * np.int64(a1[l])) << c.E1) + ((k2 * np.int64(a2[l])) << c.E2) + c.C3
        o1[l] = clamp(round_shift(v, c.S, c.r), c.lo, c.hi)


@njit(cache=True, nogil=True)
def fused_add_range(q1, q2, c, out, l0, l1):
    """Flat q1, q2 (same length, any integer dtype): out[l] = clamp(round_shift(
    (K1 q1[l] << E1) + (K2 q2[l] << E2) + C3, S, r), lo, hi) for l in [l0, l1), i.e.
    ``lincomb`` of the terms [q1, q2, 1] with C3 = K3 << E3 (``AddConsts`` c; the caller
    has bounded the sum below 2^62)."""
    # slices indexed from 0: an index known to be non-negative lets the loop vectorise
    # (Numba's wraparound of negative indices otherwise keeps it scalar, about 6x slower)
    a1 = q1[l0:l1]
    a2 = q2[l0:l1]
    o1 = out[l0:l1]
    i31 = (np.int64(1) << 31) - 1
    if abs(c.K1) <= i31 and abs(c.K2) <= i31:
        # 32-bit constants: 32 x 32 -> 64-bit products
        _fused_add_loop(a1, a2, np.int64(np.int32(c.K1)), np.int64(np.int32(c.K2)), c, o1)
    else:
        _fused_add_loop(a1, a2, np.int64(c.K1), np.int64(c.K2), c, o1)
    return out
