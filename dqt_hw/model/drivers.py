"""The conv drivers: the fast bit-exact paths of ``conv2d`` and of fused conv layers.

Nothing here changes the contract of docs/arithmetic.md; from bounds on the codes
(``plan.ConvPlan``) a driver picks a cheaper way of computing the very same integers:

- ``conv_vnni``, the integer kernel (``_simd``: codes spanning at most 256 values): the
  padded NHWC block of x - ox as bytes, exact int32 sums of (x - ox)(w - ow), the side
  sums restoring the codes' product;
- ``conv_exact``, chunked float32 / float64 BLAS GEMMs whose every partial sum is an
  exact integer: padded NHWC blocks of the input, im2col rows (ky, kx, c) that stay in
  L2, GEMMs (rows, K) x (K, O); with few output pixels (batch 1 at 8x8 and 4x4), one
  im2col and GEMMs (O-block, K) x (K, rows) instead. Chunk results are added in int64
  and the total wrapped to W bits (the exact sum modulo 2^W whatever the order);
- ``conv_saturate_driver``, when a partial sum may reach the limit of a saturating
  accumulator: the register-blocked sequential kernel ``_simd.sat_tiles`` in the
  documented order (c, ky, kx), clamping after every addition, in float lanes that hold
  every value exactly.

Each ends in the finishing pass of ``epilogue`` (wrapping, and in a fused layer
requantizing with the view of ``views`` applied while the block was built). Work is
spread by ``runtime`` (threads, tuners); prepared weights are kept in the ``wcache``
entry of the weight array. The callers (``core.conv2d``, ``layer.FusedConv``) validate
arguments and decide which path applies; these functions assume valid input.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import settings
from . import _simd, depthwise, fused
from .epilogue import (
    GENERAL,
    Sums,
    Tile,
    finish_cols,
    finish_rows,
    finish_tiles,
    finish_tiles_nhwc,
)
from .fused import FusedLayer, Packed
from .intops import O_SATURATE, O_TRAP
from .plan import ConvArgs, ConvPlan, block_rows, chunks, plan_conv  # noqa: F401
from .runtime import Tuner, numba_threads, threads, tuned, tuned_done
from .views import (
    Block,
    View,
    block_of,
    im2col_nhwc,
    make_view,
    nhwc_to_padded_view,
    to_nhwc,
    to_nhwc_bytes,
    view_table,
    window_sums,
    window_sums_bytes,
    window_sums_plane,
)

_NO_TABLE = np.zeros(0, dtype=np.uint8)
_NO_SUMS = np.zeros(1, dtype=np.int64)  # the window sums where no finish reads them


def _prepare(w, groups, dt, ow, transposed, entry):
    """Per group: the centred float weights w - ow, as (K, Og) (``transposed`` False) or
    (Og, K), with k in (ky, kx, c) order (the NHWC im2col order; the sums are exact, so
    the order is free), and sw[o] = sum_k w[o, k] (int64)."""
    key = ("exact", groups, np.dtype(dt).str, ow, transposed)
    if entry is not None and key in entry["prep"]:
        return entry["prep"][key]
    O, Cg, kh, kw = w.shape
    K = Cg * kh * kw
    Og = O // groups
    prep = []
    for g in range(groups):
        wg = w[g * Og : (g + 1) * Og]
        sw = wg.reshape(Og, K).sum(axis=1, dtype=np.int64)
        if transposed:
            m = np.ascontiguousarray(wg.transpose(0, 2, 3, 1).reshape(Og, K), dtype=dt)
        else:
            m = np.ascontiguousarray(wg.transpose(2, 3, 1, 0).reshape(K, Og), dtype=dt)
        if ow:
            m -= dt(ow)
        prep.append((m, sw))
    if entry is not None:
        entry["prep"][key] = prep
    return prep



def conv_exact(x, w, cs, plan, entry=None, lv=None, rq=None, out=None, tuner=None):
    """Exact conv sums wrapped to W bits, (N, O, Ho, Wo) int64. ``x`` (NCHW) and ``w``
    (OIHW) are C-contiguous integer arrays; ``cs`` the ``ConvArgs``; ``plan`` the
    ``ConvPlan`` of their code ranges (pad_code included when pad > 0): the integer
    kernel (``conv_vnni``) or chunked float GEMMs.

    Fused layer: ``lv``, a ``views.LayerView``, views every code of x first (``plan`` and
    ``pad_code`` then refer to the viewed codes), by a table over the master codes
    [qlo, qhi] where ``lv.table`` (x must respect them: the caller has checked it);
    ``rq``, an ``epilogue.Requant``, requantizes each wrapped accumulator with its sum_a,
    writing codes into ``out`` (N, O, Ho*Wo) of any integer dtype holding [lo, hi].
    ``tuner``: a ``runtime.Tuner`` choosing serial or threaded execution for this
    recurring call."""
    if not isinstance(plan, ConvPlan):
        plan = ConvPlan(*plan)
    if plan.vnni:
        return conv_vnni(x, w, cs, plan, entry, lv, rq, out, tuner)
    stride, pad, groups, pad_code, W = cs
    dt, ox, ow, nch = plan[:4]
    Nb = x.shape[0]
    O, Cg, kh, kw = w.shape
    blk, Og, K, M = _sizes(x, w, cs, False)
    Ho, Wo, Hp, Wp = blk.Ho, blk.Wo, blk.Hp, blk.Wp
    HW = Ho * Wo
    if out is None:
        out = np.empty((Nb, O, HW), dtype=np.int64)
    dtype = np.dtype(dt)
    padv = dtype.type(pad_code - ox)
    if lv is not None and lv.table:
        v = make_view(pad, padv, dtype.type(ox), None,
                      view_table(lv.qlo, lv.qhi, *lv.nested, ox, dtype), lv.qlo)
    else:
        v = make_view(pad, padv, dtype.type(ox), None if lv is None else lv.nested, None)
    ksa = K * ox  # sum_a = (sum of the centred taps) + K * ox
    pieces = chunks(K, nch)
    th = threads()
    nt = th.count()
    none = np.zeros(1, dtype=np.int64)
    serial, t0 = tuned(tuner, M * K * O, nt)
    work = 0 if serial else None  # th.run: 0 runs in this thread, None spreads

    if M < settings.MIN_UNIT_ROWS * nt and Og >= 16 * nt:
        # few output pixels: im2col once, then units of output channels, each a GEMM
        # (o, K) x (K, M) (else every thread would stream all the weights)
        prep = _prepare(w, groups, dt, ow, True, entry)
        for g in range(groups):
            wmT, sw = prep[g]
            xp = np.empty((Nb, Hp, Wp, Cg), dtype=dtype)
            to_nhwc(x, 0, Nb, 0, Hp, g * Cg, Cg, v, xp)
            cols = np.empty((M, K), dtype=dtype)
            im2col_nhwc(xp, 0, 0, 0, M, kh, kw, stride, Ho, Wo, cols)
            sx = none
            if ow or rq is not None:
                sx = window_sums(xp, 0, 0, 0, M, kh, kw, stride, Ho, Wo,
                                 np.empty(M, dtype=np.int64))
            s = Sums(sx, ow, ox * sw, ksa, W)
            nu = 1 if serial else min(4 * nt, Og // 8)
            step = -(-Og // nu)
            bounds = [(o0, min(Og, o0 + step)) for o0 in range(0, Og, step)]

            def unit(i, wmT=wmT, cols=cols, s=s, g=g):
                o0, o1 = bounds[i]
                GT = np.empty((len(pieces), o1 - o0, M), dtype=dtype)
                for c, (k0, k1) in enumerate(pieces):
                    np.matmul(wmT[o0:o1, k0:k1], cols[:, k0:k1].T, out=GT[c])
                finish_cols(GT, g * Og + o0, s._replace(corr=s.corr[o0:o1]), rq, out)

            th.run(unit, len(bounds), work=work)
        tuned_done(tuner, serial, t0)
        return out.reshape(Nb, O, Ho, Wo)

    # units of output pixels: whole images, or bands of output rows of one image, each
    # GEMMs (rows, K) x (K, Og); rows per unit: an im2col block that stays in L2, and
    # enough units to share between the threads
    prep = _prepare(w, groups, dt, ow, False, entry)
    # at least 8 units per thread where the rows allow: a thread the OS leaves waiting
    # (a busy machine) then holds back a small share of the work
    rows = settings.MIN_UNIT_ROWS
    mb = min(max(rows, settings.COLS_BLOCK // K), max(rows, -(-M // (8 * nt))))
    if M * K * O < settings.SERIAL_WORK:
        # small work, one thread does it all (``Threads.run``): fewer, larger units
        mb = max(mb, min(M, 4 * settings.COLS_BLOCK // K))
    if HW <= mb:
        per = max(1, mb // HW)
        units = [(n0, min(Nb, n0 + per), 0, Ho) for n0 in range(0, Nb, per)]
    else:
        bands = -(-HW // mb)
        rows = -(-Ho // bands)
        units = [(n, n + 1, y0, min(Ho, y0 + rows)) for n in range(Nb)
                 for y0 in range(0, Ho, rows)]

    def unit(i):
        n0, n1, y0, y1 = units[i]
        iy0 = y0 * stride
        iy1 = (y1 - 1) * stride + kh
        m0 = n0 * HW + y0 * Wo
        m1 = (n1 - 1) * HW + y1 * Wo
        xp = np.empty((n1 - n0, iy1 - iy0, Wp, Cg), dtype=dtype)
        cols = np.empty((m1 - m0, K), dtype=dtype)
        G = np.empty((len(pieces), m1 - m0, Og), dtype=dtype)
        sums = ow or rq is not None
        sx = np.empty(m1 - m0, dtype=np.int64) if sums else none
        for g in range(groups):
            wm, sw = prep[g]
            to_nhwc(x, n0, n1, iy0, iy1, g * Cg, Cg, v, xp)
            im2col_nhwc(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, cols)
            if sums:
                window_sums(xp, n0, iy0, m0, m1, kh, kw, stride, Ho, Wo, sx)
            for c, (k0, k1) in enumerate(pieces):
                np.matmul(cols[:, k0:k1], wm[k0:k1], out=G[c])
            finish_rows(G, m0, g * Og, Sums(sx, ow, ox * sw, ksa, W), rq, out)

    th.run(unit, len(units), work=work)
    tuned_done(tuner, serial, t0)
    return out.reshape(Nb, O, Ho, Wo)


def _byte_view(x, lv, ox, entry, nhwc):
    """(table over the master codes or None, ``View`` parts (btab, ident)) of the
    integer kernel's input: a table of x's codes moved by -ox (channels-first), or for
    channels-last uint8 codes the table over 0..255 read by ``nhwc_to_padded_view``
    (``ident``: it is the identity); kept in the weight entry."""
    if lv is None or not lv.table:
        return None, _NO_TABLE, False
    tkey = ("vnni-view", lv, ox, nhwc, x.dtype == np.uint8)
    hit = entry["prep"].get(tkey) if entry is not None else None
    if hit is None:
        if not nhwc:
            hit = (view_table(lv.qlo, lv.qhi, *lv.nested, ox, np.uint8), _NO_TABLE, False)
        elif x.dtype == np.uint8 and lv.qlo == 0 and lv.qhi == 255:
            bt = view_table(0, 255, *lv.nested, ox, np.uint8)
            hit = (None, bt, bool((bt == np.arange(256)).all()))
        else:
            hit = (None, _NO_TABLE, False)
        if entry is not None:
            entry["prep"][tkey] = hit
    return hit


def packed_groups(w, groups, ow, entry=None):
    """Per group: (wp, woff, nvs, Np) of ``_simd.pack_weights`` of w - ow and the
    channels' weight sums; kept in the weight entry."""
    key = ("vnni", groups, ow)
    packs = entry["prep"].get(key) if entry is not None else None
    if packs is None:
        O, Cg, kh, kw = w.shape
        Og = O // groups
        packs = []
        for g in range(groups):
            wg = w[g * Og:(g + 1) * Og]
            packs.append(_simd.pack_weights(wg, ow)
                         + (wg.reshape(Og, Cg * kh * kw).sum(axis=1, dtype=np.int64),))
        if entry is not None:
            entry["prep"][key] = packs
    return packs


def _sizes(x, w, cs, nhwc):
    """(``Block``, channels per group, terms per sum, output pixels) of a conv of x by w
    (``ConvArgs`` cs; x channels-last where ``nhwc``)."""
    _, Cg, kh, kw = w.shape
    g = block_of(x, w, cs.stride, cs.pad, nhwc)
    return g, w.shape[0] // cs.groups, Cg * kh * kw, x.shape[0] * g.Ho * g.Wo


def fused_layer(w, cs, plan, lv, rq, H, Wd, entry=None):
    """The ``fused.FusedLayer`` of a fused channels-last layer (one group, the integer
    kernel, ``rq`` in the ``SHORT`` or ``AFFINE`` form, a byte view table over 0..255)
    on uint8 images H x Wd: what ``conv_vnni`` runs in one call and what a
    whole-network program runs per layer."""
    O, Cg, kh, kw = w.shape
    x = np.zeros((1, H, Wd, Cg), np.uint8)
    g = block_of(x, w, cs.stride, cs.pad, True)
    ox, ow = plan.ox, plan.ow
    _, btab, ident = _byte_view(x, lv, ox, entry, True)
    padv = np.uint8((cs.pad_code - ox) & 0xFF)
    wp, woff, nvs, Np, sw = packed_groups(w, 1, ow, entry)[0]
    koff, rows = _geometry(g, 1, entry)
    return FusedLayer(g, View(cs.pad, padv, ox, *lv.nested, btab, 0, ident, _simd.BYTES64),
                      Packed(wp, woff, nvs, Np, koff, plan.l16), rows[:g.Ho * g.Wo],
                      block_rows(g.Cp, kh, kw), O, Sums(_NO_SUMS, ow, ox * sw, Cg * kh * kw * ox,
                                                         cs.W), rq)


def _encoded_layer(w, cs, plan, lv, rq, H, Wd, entry):
    """(row, pool arrays) of ``fused.encode`` of the ``fused_layer``; kept in the weight
    entry while it is asked for with the same ``rq``."""
    key = ("fused-layer", H, Wd)
    hit = entry["prep"].get(key) if entry is not None else None
    if hit is None or hit[0] is not rq:
        ps = fused.pools()
        row = fused.encode(fused_layer(w, cs, plan, lv, rq, H, Wd, entry), ps)
        hit = (rq, row, tuple(p.array() for p in ps))
        if entry is not None:
            entry["prep"][key] = hit
    return hit[1], hit[2]


def _geometry(g, Nb, entry):
    """(tap offsets, pixel offsets of Nb images) in the padded block; kept in the
    weight entry."""
    gkey = ("vnni-geometry", Nb, g.Hp, g.Wp, g.Cp, g.kh, g.kw, g.stride)
    geom = entry["prep"].get(gkey) if entry is not None else None
    if geom is None:
        geom = (_simd.tap_offsets(g.kh, g.kw, g.Cp, g.Wp),
                _simd.pixel_offsets(Nb, g.Hp, g.Wp, g.Cp, g.Ho, g.Wo, g.stride))
        if entry is not None:
            entry["prep"][gkey] = geom
    return geom


# conv_vnni's units on NCHW codes read of one group: the ``View`` v of its bytes, the
# ``Sums`` s (window sums into s.sx), the ``Block`` g, the ``Packed`` weights pk, the
# numbers k = (c0, cg, sums, mb, og, Og): input channels [c0, c0 + cg), whether the
# finish reads window sums, output rows per GEMM block, the group's first output
# channel og of its Og; the padded block xp (N, Hp, Wp, Cp) and the window corner of
# every output pixel, ``rows``. (Numba's parallel loops take namedtuples of arrays as
# arguments, but not nested in one another: hence the separate arguments.)


@njit(cache=True, nogil=True, inline="always")
def _prep_nchw(x, n0, n1, v, s, g, k, xp):
    """Images [n0, n1) of the NCHW codes x into their padded byte block xp[n0:n1]
    (``to_nhwc_bytes``) and, where k[2] (``sums``), their window sums into s.sx."""
    HW = g.Ho * g.Wo
    xb = xp[n0:n1]
    to_nhwc_bytes(x, n0, n1, k[0], k[1], v, xb)
    if k[2]:
        window_sums_bytes(xb, n0, 0, n0 * HW, n1 * HW, g.kh, g.kw, g.stride, g.Ho, g.Wo,
                          s.sx[n0 * HW:n1 * HW])


@njit(cache=True, nogil=True, inline="always")
def _block_nchw(m0, m1, b0, b1, s, pk, k, xp, rows, rq, out):
    """Output rows [m0, m1) x weight blocks [b0, b1): the integer sums into a scratch
    tile (rows padded to whole micro-tiles by repeating the last pixel), then
    ``finish_tiles`` into out (N, O, Ho Wo)."""
    mr = _simd.MR
    cnt = m1 - m0
    cntp = (cnt + mr - 1) // mr * mr
    rl = np.empty(cntp, dtype=np.int64)
    rl[:cnt] = rows[m0:m1]
    rl[cnt:] = rows[m1 - 1]
    Cacc = np.empty((cntp, pk.Np), dtype=np.int32)
    _simd.gemm_tiles(xp.reshape(-1), rl, pk.koff, pk.wp, pk.woff, pk.nvs, Cacc, 0, cntp,
                     b0, b1, pk.l16)
    b = Tile(m0, m0, m1, b0 * _simd.NB, min(k[5], b1 * _simd.NB), k[4])
    finish_tiles(Cacc, b, s, rq, out)


@njit(cache=True, nogil=True)
def images_nchw(x, n0, n1, v, s, g, pk, k, xp, rows, rq, out):
    """A unit of ``conv_vnni`` on NCHW codes in one call (no GIL between its steps):
    images [n0, n1) into their block (``_prep_nchw``), then their output rows k[3] at a
    time by all weight blocks (``_block_nchw``)."""
    HW = g.Ho * g.Wo
    _prep_nchw(x, n0, n1, v, s, g, k, xp)
    for m0 in range(n0 * HW, n1 * HW, k[3]):
        _block_nchw(m0, min(n1 * HW, m0 + k[3]), 0, pk.nvs.shape[0], s, pk, k, xp, rows,
                    rq, out)
    return out


@njit(cache=True, parallel=True)
def images_par(x, per, v, s, g, pk, k, xp, rows, rq, out):
    """``images_nchw`` on all of x's images, ``per`` images a unit, the units over
    Numba's threads (whose OpenMP workers wait spinning between calls, where the
    Python pool's threads, woken by the caller, were often placed on its own CPU)."""
    Nb = x.shape[0]
    for t in prange((Nb + per - 1) // per):
        n0 = t * per
        images_nchw(x, n0, min(Nb, n0 + per), v, s, g, pk, k, xp, rows, rq, out)
    return out


@njit(cache=True, parallel=True)
def blocks_par(x, per, bstep, v, s, g, pk, k, xp, rows, rq, out):
    """Few images, or few pixels an image: the block of ``per`` images a unit, then
    units of k[3] output rows x ``bstep`` weight blocks, each over Numba's threads (the
    first loop done before the second starts)."""
    Nb = x.shape[0]
    for t in prange((Nb + per - 1) // per):
        n0 = t * per
        _prep_nchw(x, n0, min(Nb, n0 + per), v, s, g, k, xp)
    M = Nb * g.Ho * g.Wo
    mb = k[3]
    nblk = pk.nvs.shape[0]
    nb = (nblk + bstep - 1) // bstep
    for t in prange(((M + mb - 1) // mb) * nb):
        m0 = (t // nb) * mb
        b0 = (t % nb) * bstep
        _block_nchw(m0, min(M, m0 + mb), b0, min(nblk, b0 + bstep), s, pk, k, xp, rows, rq,
                    out)
    return out


def conv_vnni(x, w, cs, plan, entry=None, lv=None, rq=None, out=None, tuner=None,
              nhwc=False):
    """``conv_exact`` by the integer kernel (``_simd``; ``plan`` = (VNNI, ox, ow, 1)
    from ``plan_conv``): the padded NHWC block of x - ox as bytes, int32 sums of
    (x - ox)(w - ow) per output, then the finishing pass of ``epilogue``.

    Channels-last (fused layers with a view table and ``rq`` only): ``nhwc``, x is
    (N, H, W, C) and ``out`` (N, Ho * Wo, O) receives the codes channels-last. A network
    then keeps its activations in the layout the kernel reads and writes; with ``rq`` in
    the ``SHORT`` or ``AFFINE`` form, one group and at least two images the whole layer
    is one call (``fused.layer_nhwc``)."""
    stride, pad, groups, pad_code, W = cs
    ox, ow, l16 = plan.ox, plan.ow, plan.l16
    Nb = x.shape[0]
    O, Cg, kh, kw = w.shape
    g, Og, K, M = _sizes(x, w, cs, nhwc)
    H, Wd, C, Hp, Wp, Cp = g.H, g.Wd, g.C, g.Hp, g.Wp, g.Cp
    HW = g.Ho * g.Wo
    if out is None:
        out = np.empty((Nb, O, HW), dtype=np.int64)
    out2 = out.reshape(M, O) if nhwc else None
    tab, btab, ident = _byte_view(x, lv, ox, entry, nhwc)
    padv = np.uint8((pad_code - ox) & 0xFF)  # in [0, 255] where pad > 0 (else unused)
    if tab is not None:
        view = make_view(pad, padv, np.int64(ox), None, tab, lv.qlo)
    else:
        view = make_view(pad, padv, np.int64(ox), None if lv is None else lv.nested, btab,
                         0, ident, _simd.BYTES64)
    ksa = K * ox
    th = threads()
    nt = th.count()
    serial, t0 = tuned(tuner, M * K * O, nt)
    if (nhwc and rq is not None and rq.form != GENERAL and groups == 1 and Nb >= 2
            and btab.shape[0] == 256):
        # the whole layer in one call, its images over Numba's threads (``serial``:
        # the calling thread's Numba thread count, 1 inside ``serial_scope``)
        row, arrays = _encoded_layer(w, cs, plan, lv, rq, H, Wd, entry)
        nthr = nt if M * K * O >= settings.LAYER_PAR_WORK else 1
        per = -(-Nb // (4 * nthr)) if nthr > 1 else Nb
        numba_threads(nthr)
        try:
            fused.layer_nhwc(x, per, row, *arrays, out2)
        finally:
            numba_threads(None)
        tuned_done(tuner, serial, t0)
        return out.reshape(Nb, g.Ho, g.Wo, O)
    packs = packed_groups(w, groups, ow, entry)
    koff, rows = _geometry(g, Nb, entry)
    mr = _simd.MR
    # rows of output pixels per GEMM block: input windows that stay in L2
    mb = block_rows(Cp, kh, kw)
    sums = bool(ow) or rq is not None
    # serial work of one image on several threads: the weight blocks over Numba's pool
    par_blocks = serial and Nb == 1 and nt > 1 and M * K * O >= settings.PAR_BLOCKS_WORK
    for gi in range(groups):
        wp, woff, nvs, Np, sw = packs[gi]
        nblk = len(nvs)
        xp = (np.zeros if Cp != Cg else np.empty)((Nb, Hp, Wp, Cp), dtype=np.uint8)
        xflat = xp.reshape(-1)
        s = Sums(np.empty(M, dtype=np.int64) if sums else _NO_SUMS, ow, ox * sw, ksa, W)

        def prep(n0, n1, gi=gi, xp=xp, sx=s.sx):
            """The padded NHWC block and the window sums of images [n0, n1)."""
            xb = xp[n0:n1]
            if nhwc:
                plane = np.empty((n1 - n0, Hp, Wp), dtype=np.int64)
                nhwc_to_padded_view(x.reshape(-1), n0, n1, gi * Cg, Cg, g, view,
                                    xb.reshape(-1), plane.reshape(-1))
                if sums:
                    window_sums_plane(plane, n0, n1, kh, kw, stride, g.Ho, g.Wo,
                                      sx[n0 * HW:n1 * HW])
                return
            to_nhwc_bytes(x, n0, n1, gi * Cg, Cg, view, xb)
            if sums:
                window_sums_bytes(xb, n0, 0, n0 * HW, n1 * HW, kh, kw, stride, g.Ho, g.Wo,
                                  sx[n0 * HW:n1 * HW])

        def block(m0, m1, b0, b1, gi=gi, wp=wp, woff=woff, nvs=nvs, Np=Np, s=s,
                  xflat=xflat):
            """Outputs [m0, m1) x weight blocks [b0, b1): the int32 sums into a scratch
            tile (its rows padded to whole micro-tiles by repeating the last pixel), then
            the finish."""
            rl = rows[m0:m1]
            if (m1 - m0) % mr:
                rl = np.concatenate([rl, np.full(mr - (m1 - m0) % mr, rl[-1], np.int64)])
            Cacc = np.empty((rl.size, Np), dtype=np.int32)
            if par_blocks and b1 - b0 > 1:
                _simd.gemm_tiles_par(xflat, rl, koff, wp, woff, nvs, Cacc, 0, rl.size, b0, b1,
                                     l16)
            else:
                _simd.gemm_tiles(xflat, rl, koff, wp, woff, nvs, Cacc, 0, rl.size, b0, b1, l16)
            b = Tile(m0, m0, m1, b0 * _simd.NB, min(Og, b1 * _simd.NB), gi * Og)
            if nhwc:
                finish_tiles_nhwc(Cacc, b, s, rq, out2)
            else:
                finish_tiles(Cacc, b, s, rq, out)

        # units of whole images take at least settings.UNIT_PIXELS output pixels where
        # the batch allows: each unit streams all the weights once, so units of a few
        # pixels of many channels would read them from memory many times over
        per = Nb if serial else max(-(-Nb // (8 * nt)),
                                    min(-(-settings.UNIT_PIXELS // HW), -(-Nb // nt)))
        if serial or (Nb >= 2 * nt and per * HW >= settings.UNIT_PIXELS):
            # units of whole images: each builds its images' block and computes their
            # outputs (no unit reads another's images: one pass, no barrier between)
            imgs = [(n0, min(Nb, n0 + per)) for n0 in range(0, Nb, per)]

            if nhwc or par_blocks:
                def unit(i, prep=prep, block=block, nblk=nblk):
                    n0, n1 = imgs[i]
                    prep(n0, n1)
                    for m0 in range(n0 * HW, n1 * HW, mb):
                        block(m0, min(n1 * HW, m0 + mb), 0, nblk)
            else:
                # the units in one call over Numba's threads (docs/speed.md, "The
                # threaded conv2d now runs on Numba's threads": the Python pool's,
                # handing the GIL to and fro, were often woken onto one CPU)
                u = (view, s, g, Packed(wp, woff, nvs, Np, koff, l16),
                     (gi * Cg, Cg, int(sums), mb, gi * Og, Og), xp, rows, rq, out)
                if serial:  # no parallel region at all (the executor's parts call here)
                    images_nchw(x, 0, Nb, *u)
                    continue
                numba_threads(nt)
                try:
                    images_par(x, per, *u)
                finally:
                    numba_threads(None)
                continue

            if serial:
                unit(0)
            else:
                th.run(unit, len(imgs), blas=False)
            continue
        # few images, or few pixels an image: the block first, then units of output
        # rows x weight blocks
        per = max(1, Nb // nt)
        nm = -(-M // mb)
        bstep = -(-nblk // min(nblk, max(1, -(-4 * nt // nm))))
        if not nhwc:
            numba_threads(nt)
            try:
                blocks_par(x, per, bstep, view, s, g, Packed(wp, woff, nvs, Np, koff, l16),
                           (gi * Cg, Cg, int(sums), mb, gi * Og, Og), xp, rows, rq, out)
            finally:
                numba_threads(None)
            continue
        imgs = [(n0, min(Nb, n0 + per)) for n0 in range(0, Nb, per)]
        th.run(lambda i: prep(*imgs[i]), len(imgs), blas=False)
        units = [(m0, min(M, m0 + mb), b0, min(nblk, b0 + bstep)) for m0 in range(0, M, mb)
                 for b0 in range(0, nblk, bstep)]
        th.run(lambda i, block=block: block(*units[i]), len(units), blas=False)
    tuned_done(tuner, serial, t0)
    if nhwc:
        return out.reshape(Nb, g.Ho, g.Wo, O)
    return out.reshape(Nb, O, g.Ho, g.Wo)


def conv_saturate_driver(x, w, cs, entry=None):
    """Saturating conv (N, O, Ho, Wo) int64 for W <= 53, exact in float lanes: the
    register-blocked kernel ``_simd.sat_tiles`` on MR output pixels by up to four
    vectors of output channels at a time."""
    stride, pad, groups, pad_code, W = cs
    dt = np.float32 if W <= 24 else np.float64
    lanes = 16 if dt == np.float32 else 8
    Nb, C, H, Wd = x.shape
    O, Cg, kh, kw = w.shape
    blk, Og, K, M = _sizes(x, w, cs, False)
    Ho, Wo, Hp, Wp = blk.Ho, blk.Wo, blk.Hp, blk.Wp
    HW = Ho * Wo
    xp = np.full((Nb, C, Hp, Wp), pad_code, dtype=dt)
    xp[:, :, pad : pad + H, pad : pad + Wd] = x
    L = _simd.sat_vectors(Og, lanes) * lanes
    nblk = -(-Og // L)
    key = ("saturate", groups, np.dtype(dt).str, L)
    wt = entry["prep"].get(key) if entry is not None else None
    if wt is None:
        wt = np.zeros((groups, nblk * L, K), dtype=dt)
        wt[:, :Og] = w.reshape(groups, Og, K)
        # (groups, nblk, K, L): block b holds channels [b L, b L + L), k in (c, ky, kx)
        wt = np.ascontiguousarray(wt.reshape(groups, nblk, L, K).transpose(0, 1, 3, 2))
        if entry is not None:
            entry["prep"][key] = wt
    c_, ky, kx = np.meshgrid(np.arange(Cg), np.arange(kh), np.arange(kw), indexing="ij")
    toff = np.ascontiguousarray(((c_ * Hp + ky) * Wp + kx).reshape(-1), dtype=np.int64)
    n_, oy, ox = np.meshgrid(np.arange(Nb), np.arange(Ho), np.arange(Wo), indexing="ij")
    rows = ((n_ * C * Hp + oy * stride) * Wp + ox * stride).reshape(-1).astype(np.int64)
    mr = _simd.MR
    Mp = -(-M // mr) * mr
    if Mp > M:
        rows = np.concatenate([rows, np.full(Mp - M, rows[-1], np.int64)])
    hi = (1 << (W - 1)) - 1
    lo = -hi - 1
    out = np.empty((Nb, O, HW), dtype=np.int64)
    th = threads()
    tuner = None
    if entry is not None:
        tuner = entry["prep"].setdefault(("tune-saturate", x.shape, stride, pad, groups, W),
                                         Tuner())
    # the sequential kernel is slow per multiply-add: threads pay off on less work
    serial, t0 = tuned(tuner, Nb * O * HW * K, th.count(), settings.SERIAL_WORK >> 4)
    xflat = xp.reshape(-1)
    for g in range(groups):
        Cacc = np.empty((Mp, nblk * L), dtype=dt)
        if serial:
            units = [(0, Mp, 0, nblk)]
        else:
            want = 8 * th.count()
            mstep = max(mr, -(-Mp // (want * mr)) * mr)
            bstep = -(-nblk // min(nblk, max(1, -(-want // -(-Mp // mstep)))))
            units = [(m0, min(Mp, m0 + mstep), b0, min(nblk, b0 + bstep))
                     for m0 in range(0, Mp, mstep) for b0 in range(0, nblk, bstep)]
        wg = wt[g]

        def unit(i, g=g, wg=wg, Cacc=Cacc):
            m0, m1, b0, b1 = units[i]
            _simd.sat_tiles(xflat, g * Cg * Hp * Wp, rows, toff, wg, Cacc, m0, m1, b0, b1,
                            lo, hi)
            me = min(m1, M)
            if me > m0:
                o0 = b0 * L
                _simd.sat_finish(Cacc[:, o0:], m0, me, g * Og + o0,
                                 min(Og, b1 * L) - o0, out)

        th.run(unit, len(units), blas=False, work=0 if serial else None)
    tuned_done(tuner, serial, t0)
    return out.reshape(Nb, O, Ho, Wo)


def try_conv2d(x, w, cs, mode, bounds, entry=None):
    """The conv2d accumulators by a fast path, or None where the caller's general path
    must decide (a product wider than W by the coarse bounds, or a possible trap).
    ``bounds`` = (xlo, xhi, wlo, whi): the code ranges of x and w."""
    if x.size == 0 or w.size == 0:
        return None
    xlo, xhi, wlo, whi = bounds
    stride, pad, groups, pad_code, W = cs
    if pad > 0:
        xlo, xhi = min(xlo, pad_code), max(xhi, pad_code)
    A = max(abs(xlo), abs(xhi))
    B = max(abs(wlo), abs(whi))
    hi = (1 << (W - 1)) - 1
    if A * B > hi:
        return None
    O, Cg, kh, kw = w.shape
    K = Cg * kh * kw
    if A * B * K > hi:
        if mode == O_TRAP:
            return None
        if mode == O_SATURATE:
            return conv_saturate_driver(x, w, cs, entry)
    dts = depthwise.dtypes(A, B, K) if depthwise.applies(w, groups) else None
    plan = dts or plan_conv(Cg, kh, kw, xlo, xhi, wlo, whi)
    tuner = None
    if entry is not None:
        tuner = entry["prep"].setdefault(("tune", x.shape, stride, pad, groups, plan), Tuner())
    if dts is not None:  # direct stencils in types proved wide enough
        return depthwise.conv(np.ascontiguousarray(x), w, cs, dts, tuner=tuner, entry=entry)
    return conv_exact(x, w, cs, plan, entry, tuner=tuner)


# ----------------------------------------------------------------------------- fused layers
#
# The same exact conv sums as ``conv_exact``, with the layer pipeline of
# docs/arithmetic.md fused around them: the nested view of the activations is applied
# while the padded NHWC block is built, the side sum sum_a is the window sum of that very
# block (sum_a = sum of the centred taps + K * ox), and each output is requantized as soon
# as its accumulator is known. The caller has checked, from the code ranges, that every
# requantization sum stays below 2^62 (so the int64 arithmetic is exact, as in
# ``_kernels.requantize3``) and passes per channel K1, E1, K2, E2, S and the constant part
# C34 = (K3 sum_w << E3) + (K4 << E4).