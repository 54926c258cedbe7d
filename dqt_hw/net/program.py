"""Whole-network programs: a network at a width mix, or with the controller choosing the
widths per input, compiled into one Numba call.

The executor (``executor.execute``) runs a network layer by layer from Python: each
layer a call of its fused kernel, every call with its checks, its hand-off to Numba's
threads and its barrier. For a small network (the shipped digits network: ten layers of
16 to 64 channels on 8 x 8 images) that overhead is as large as the arithmetic. A
``Program`` holds the same layers as a table of operations and their constants in flat
arrays and runs them in one call of ``run_program``: chunks of images over Numba's
threads, each chunk taking every operation in turn (no barrier between layers), with
the activation codes of every node channels-last in one byte arena.

The operations are the executor's own kernels on the same codes, so the output is the
same bit for bit (tests/test_net_program.py checks it against the layer-by-layer path):

- conv / fc (a fc on a 1 x 1 image is the 1 x 1 conv it equals): the fused layer
  ``_fast.fused_images`` (the padded block and its sums, ``_simd.gemm_tiles`` and the
  short finish), the kernel the layer-by-layer path runs too, one row of constants per
  width pair it may run at;
- add: ``_kernels.lincomb2c_range`` with the executor's constants (``_fused_add``);
- avgpool (no padding), also the controller's global pool: exact sums and
  ``_kernels.round_div``;
- the controller's argmax (first maximum, the narrowest width on ties), which sets the
  row each controlled layer takes for that input. Inputs next to each other in a chunk
  with the same row run together.

``compile_program`` returns None where a network needs something a program does not
have (no integer kernel for the CPU, a layer off the short-finish path, codes that are
not bytes, groups, max pooling, a flatten of more than one pixel); the executor then
runs it layer by layer. ``DQT_HW_PROGRAM=0`` switches programs off.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from numba import njit, prange

from .. import spec
from ..model import _fast, _kernels, _simd

OP_CONV, OP_ADD, OP_POOL, OP_ARGMAX = 0, 1, 2, 3

# columns of a conv row of the parameter table
(C_OP, C_SRC, C_SST, C_DST, C_DST_ST, C_H, C_W, C_C, C_CP, C_KH, C_KW, C_S, C_PAD,
 C_HO, C_WO, C_O, C_NP, C_PADV, C_OX, C_D, C_VR, C_VLO, C_VHI, C_IDENT, C_TAB, C_OW, C_KSA,
 C_RR, C_LO, C_HI, C_AFF, C_MB, C_KOFF, C_NK4, C_WPK, C_WPN, C_WOFF, C_NVS, C_NBLK, C_Q,
 C_R, C_SR, C_HH, C_CORR, C_K1, C_RE1, C_K2, C_RE2, C_C34, C_WIDE, C_PIX) = range(51)
NCOL = 51
# add: C_OP, C_SRC, C_SST, C_DST, C_DST_ST, then
A_SRC2, A_SST2, A_K1, A_E1, A_K2, A_E2, A_C3, A_S, A_R, A_LO, A_HI = range(5, 16)
# pool: C_OP, C_SRC, C_SST, C_DST, C_DST_ST, C_H, C_W, C_C, then
P_K, P_S, P_HO, P_WO, P_R = range(8, 13)
# argmax: C_OP, C_SRC, C_SST, then
G_L, G_K, G_WIDE = 3, 4, 5

CHUNKS_PER_THREAD = 1  # chunks of images per Numba thread


def enabled() -> bool:
    return os.environ.get("DQT_HW_PROGRAM", "1") != "0" and _simd.AVAILABLE


class _Pool:
    """Arrays of one dtype laid end to end (each at a multiple of 64 bytes)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.parts, self.size = [], 0

    def add(self, a) -> int:
        a = np.ascontiguousarray(a, dtype=self.dtype).reshape(-1)
        off = self.size
        self.parts.append((off, a))
        self.size = off + -(-max(a.size, 1) * self.dtype.itemsize // 64) * 64 // self.dtype.itemsize
        return off

    def array(self):
        out = np.zeros(max(self.size, 1), self.dtype)
        for off, a in self.parts:
            out[off:off + a.size] = a
        return out


class Program:
    """One network compiled for ``run``; build it with ``compile_program``."""

    def __init__(self, ops, prm, ctrl_ops, pools, nodes, out_node, in_node, dynamic,
                 conv_index, weights):
        self.ops, self.prm, self.ctrl_ops = ops, prm, ctrl_ops
        self.i64, self.i32, self.i8, self.u8 = pools
        # name -> (offset, codes per image, shape HWC, wide): image n of a node at
        # offset * N + n * codes of the byte arena, or of the int64 one where ``wide``
        # (a layer's codes that are not bytes: the logits, the controller's logits)
        self.nodes = nodes
        self.out_node, self.in_node, self.dynamic = out_node, in_node, dynamic
        regions = {v[:2] + (v[3],) for v in nodes.values()}  # a flatten shares its input's
        self.sizes = (sum(nb for _, nb, w in regions if not w),
                      sum(nb for _, nb, w in regions if w))
        self.conv_index = conv_index  # conv / fc layer -> its op (var[:, op]: its row)
        self.weights = weights  # the weight arrays it was compiled from
        self._arenas = {}

    def current(self, net) -> bool:
        """True while every layer (and controller layer) holds the array it was
        compiled from."""
        now = weight_arrays(net, self.dynamic)
        return len(now) == len(self.weights) and all(
            a is b for a, b in zip(now, self.weights))

    def run(self, x, threads: int):
        """Output codes (N, F) int64 and the row index per input and op (N, ops) of
        master input codes x (N, C, H, W) (in [0, 255], the executor has checked
        them)."""
        N = x.shape[0]
        # the arenas are kept for the next call of the same batch size in this thread
        # (fresh pages of a large arena cost more than the small layers' work)
        key = (threading.get_ident(), N)
        hit = self._arenas.get(key)
        if hit is None:
            if len(self._arenas) >= 2:
                self._arenas.clear()
            hit = self._arenas[key] = (np.empty(N * self.sizes[0], np.uint8),
                                       np.empty(max(1, N * self.sizes[1]), np.int64))
        arena, wide = hit
        off_in, nb_in, _, _ = self.nodes[self.in_node]
        arena[off_in * N:off_in * N + N * nb_in] = np.ascontiguousarray(
            x.transpose(0, 2, 3, 1)).reshape(-1)
        var = np.zeros((N, self.ops.shape[0]), np.int64)
        per = max(1, -(-N // (CHUNKS_PER_THREAD * threads))) if threads > 1 else N
        _fast._numba_threads(threads)
        try:
            run_program(arena, wide, N, self.ops, self.prm, var, self.ctrl_ops, self.i64,
                        self.i32, self.i8, self.u8, per, _simd.BYTES64)
        finally:
            _fast._numba_threads(None)
        off, nb, _, w = self.nodes[self.out_node]
        out = (wide if w else arena)[off * N:off * N + N * nb].reshape(N, nb).astype(np.int64)
        return out, var


def _conv_rows(fc, H, Wd, C, src, dst, pools):
    """The parameter row of a fused layer ``fc`` (None where it is not on the one-call
    short-finish path)."""
    i64, i32, i8, u8 = pools
    if not (fc is not None and fc.nhwc and fc.lin is not None and fc.groups == 1
            and fc.view[:2] == (0, 255)):
        return None
    _, ox, ow, _ = fc.plan
    qlo, qhi, d, vr, vlo, vhi = fc.view
    O, Cg, kh, kw = fc.wv.shape
    if Cg != C:
        return None
    p, s = fc.padding, fc.stride
    Hp, Wp = H + 2 * p, Wd + 2 * p
    Ho, Wo = (Hp - kh) // s + 1, (Wp - kw) // s + 1
    Cp = _simd.pad4(Cg)
    K = Cg * kh * kw
    tab = _fast.view_table(0, 255, d, vr, vlo, vhi, ox, np.uint8)
    wp, woff, nvs, Np = _simd.pack_weights(fc.wv, ow)
    sw = fc.wv.reshape(O, K).sum(axis=1, dtype=np.int64)
    RK1, RE1, RK2, RE2, C34, SL, SR, rr, lo, hi = fc.rq
    r = np.zeros(NCOL, np.int64)
    r[[C_OP, C_SRC, C_SST, C_DST, C_DST_ST]] = OP_CONV, src[0], src[1], dst[0], dst[1]
    r[[C_H, C_W, C_C, C_CP, C_KH, C_KW, C_S, C_PAD, C_HO, C_WO, C_O, C_NP]] = (
        H, Wd, C, Cp, kh, kw, s, p, Ho, Wo, O, Np)
    r[[C_PADV, C_OX, C_D, C_VR, C_VLO, C_VHI, C_IDENT]] = (
        (fc.pad_code - ox) & 0xFF, ox, d, vr, vlo, vhi, int((tab == np.arange(256)).all()))
    r[C_TAB] = u8.add(tab)
    r[[C_OW, C_KSA, C_RR, C_LO, C_HI]] = ow, K * ox, rr, lo, hi
    r[C_WIDE] = fc.out_dtype != np.uint8
    r[C_MB] = _fast.block_rows(Cp, kh, kw)
    koff = _simd.tap_offsets(kh, kw, Cp, Wp)
    r[[C_KOFF, C_NK4]] = i64.add(koff), koff.size
    r[C_PIX] = i64.add(_simd.pixel_offsets(1, Hp, Wp, Cp, Ho, Wo, s))  # within an image
    r[[C_WPK, C_WPN]] = i8.add(wp), wp.size
    r[[C_WOFF, C_NVS, C_NBLK]] = i64.add(woff), i64.add(nvs), len(nvs)
    lin = fc.lin
    r[C_AFF] = len(lin) == 5
    if len(lin) == 5:
        r[[C_Q, C_R]] = i64.add(lin[3]), i64.add(lin[4])
    r[[C_SR, C_HH]] = i64.add(SR), i64.add(lin[2])
    r[[C_CORR, C_K1, C_RE1, C_K2, C_RE2, C_C34]] = (
        i64.add(ox * sw), i32.add(lin[0]), i64.add(RE1), i32.add(lin[1]), i64.add(RE2),
        i64.add(C34))
    return r, (Ho, Wo, O)


def compile_program(net, widths):
    """A ``Program`` of ``net`` at the static mix ``widths`` ((L, 2) array in the order of
    ``net.compute_layers()``), or with the controller (``widths="dynamic"``); None
    where the network needs the layer-by-layer executor."""
    from . import executor as ex

    if not enabled():
        return None
    g = net.graph
    names = net.compute_layers()
    dynamic = isinstance(widths, str)
    c = net.controller if dynamic else None
    pools = (_Pool(np.int64), _Pool(np.int32), _Pool(np.int8), _Pool(np.uint8))
    nodes, rows, ops = {}, [], []
    pos = [0, 0]

    def region(name, shape_hwc, wide=False):
        nb = int(np.prod(shape_hwc))
        nodes[name] = (pos[wide], nb, tuple(shape_hwc), bool(wide))
        pos[wide] += nb
        return nodes[name]

    def byte_src(*names_):
        return all(not nodes[nm][3] for nm in names_)

    op_names = []

    def emit(name, rs):
        """One op: its rows (one per width pair it may run at)."""
        ops.append((len(rows), len(rs)))
        rows.extend(rs)
        op_names.append(name)

    def conv_op(name, fc_list, src):
        if not byte_src(src):
            return False
        H, Wd, C = nodes[src][2]
        rs = []
        for fc in fc_list:
            got = _conv_rows(fc, H, Wd, C, nodes[src][:2], (0, 0), pools)
            if got is None:
                return False
            r, shp = got
            if name not in nodes:
                region(name, shp, bool(r[C_WIDE]))
            elif nodes[name][3] != bool(r[C_WIDE]):
                return False
            r[[C_DST, C_DST_ST]] = nodes[name][:2]
            rs.append(r)
        emit(name, rs)
        return True

    def pool_op(name, src, k, s):
        H, Wd, C = nodes[src][2]
        if k > H or k > Wd or nodes[src][3]:
            return False
        Ho, Wo = (H - k) // s + 1, (Wd - k) // s + 1
        region(name, (Ho, Wo, C))
        r = np.zeros(NCOL, np.int64)
        r[[C_OP, C_SRC, C_SST, C_DST, C_DST_ST, C_H, C_W, C_C]] = (
            OP_POOL, *nodes[src][:2], *nodes[name][:2], H, Wd, C)
        r[[P_K, P_S, P_HO, P_WO, P_R]] = (k, s, Ho, Wo,
                                          spec.ROUNDING_CODES[net.arith.pool_rounding])
        emit(name, [r])
        return True

    mix = None if dynamic else np.asarray(widths)
    in_node = next(iter(g)).name
    for nd in g:
        if nd.op == "input":
            C, H, Wd = nd.shape
            fin = net.layers[nd.name].fmt
            if fin.code_range() != (0, 255):
                return None
            region(nd.name, (H, Wd, C))
        elif nd.op in ("conv", "fc"):
            L = net.layers[nd.name]
            src = nd.inputs[0]
            H, Wd, C = nodes[src][2]
            if nd.op == "fc" and (H, Wd) != (1, 1):
                return None
            dummy = np.zeros((1, C, H, Wd), np.uint8)
            i = names.index(nd.name)
            if dynamic and nd.name in c.layers:
                pairs = [(b, b) for b in c.widths]
            elif dynamic:
                pairs = [tuple(net.check_width(nd.name, c.static_widths[nd.name]))]
            else:
                pairs = [tuple(int(v) for v in mix[i])]
            fcs = [ex._fused_conv(net, nd, L, dummy, int(a), int(b)) for a, b in pairs]
            if not conv_op(nd.name, fcs, src):
                return None
        elif nd.op == "add":
            a_, b_ = nd.inputs
            if nodes[a_][2] != nodes[b_][2] or not byte_src(a_, b_):
                return None
            dummy = np.zeros(1, np.uint8)
            if ex._fused_add(net, nd, dummy, dummy) is None:
                return None
            K1, E1, K2, E2, C3, S, r_, lo, hi, dt = net.layers[nd.name]._rq_cache["fused_add"]
            if dt != np.uint8:
                return None
            region(nd.name, nodes[a_][2])
            r = np.zeros(NCOL, np.int64)
            r[[C_OP, C_SRC, C_SST, C_DST, C_DST_ST]] = (OP_ADD, *nodes[a_][:2],
                                                         *nodes[nd.name][:2])
            r[[A_SRC2, A_SST2, A_K1, A_E1, A_K2, A_E2, A_C3, A_S, A_R, A_LO, A_HI]] = (
                *nodes[b_][:2], K1, E1, K2, E2, C3, S, r_, lo, hi)
            emit(nd.name, [r])
        elif nd.op == "avgpool":
            if nd.attr("padding", 0):
                return None
            k, s = nd.attrs["kernel"], nd.attr("stride", nd.attrs["kernel"])
            if not pool_op(nd.name, nd.inputs[0], k, s):
                return None
        elif nd.op == "flatten":
            off, nb, shp, w = nodes[nd.inputs[0]]
            if shp[:2] != (1, 1):
                return None
            nodes[nd.name] = (off, nb, (1, 1, nb), w)
        else:
            return None
        if dynamic and nd.name == c.features:
            H, Wd, C = nodes[nd.name][2]
            if H != Wd:
                return None
            if not pool_op("(controller pool)", nd.name, H, H):
                return None
            fin = net.layers[c.features].fmt
            src = "(controller pool)"
            for lay, f_in, nm in ((c.fc1, fin, "(controller fc1)"),
                                  (c.fc2, c.fc1.fmt, "(controller fc2)")):
                F = nodes[src][2][2]
                fc = ex._fused_dense(net, lay, f_in, F)
                if fc is None or f_in.code_range() != (0, 255):
                    return None
                if not conv_op(nm, [fc], src):
                    return None
                src = nm
            r = np.zeros(NCOL, np.int64)
            r[[C_OP, C_SRC, C_SST, G_L, G_K, G_WIDE]] = (
                OP_ARGMAX, *nodes[src][:2], len(c.layers), len(c.widths), nodes[src][3])
            emit("(controller argmax)", [r])
    out_node = net.output_node()
    if nodes[out_node][2][:2] != (1, 1):
        return None
    conv_index = {nm: k for k, nm in enumerate(op_names) if nm in names}
    ctrl_ops = (np.array([conv_index[nm] for nm in c.layers], np.int64) if dynamic
                else np.zeros(0, np.int64))
    return Program(np.array(ops, np.int64), np.array(rows, np.int64), ctrl_ops,
                   tuple(p.array() for p in pools), nodes, out_node, in_node, dynamic,
                   conv_index, weight_arrays(net, dynamic))


def weight_arrays(net, dynamic):
    """The weight arrays a program of ``net`` reads (each layer's, and the controller's
    in a dynamic one)."""
    ws = [net.layers[nm].w for nm in net.compute_layers()]
    if dynamic:
        ws += [net.controller.fc1.w, net.controller.fc2.w]
    return ws


@njit(cache=True, nogil=True)
def _conv(arena, wide, N, p, i64, i32, i8, u8, a, b, use64):
    """A fused conv layer (row ``p``) on images [a, b) of the arena (its codes into the
    int64 arena ``wide`` where the row says so): ``_fast.fused_images``."""
    Ho, Wo, O = p[C_HO], p[C_WO], p[C_O]
    M = (b - a) * Ho * Wo
    xin = arena[p[C_SRC] * N:p[C_SRC] * N + N * p[C_SST]]
    dst = p[C_DST] * N + a * p[C_DST_ST]
    if p[C_WIDE]:
        _images(xin, p, i64, i32, i8, u8, a, b, use64,
                wide[dst:dst + (b - a) * p[C_DST_ST]].reshape(M, O))
    else:
        _images(xin, p, i64, i32, i8, u8, a, b, use64,
                arena[dst:dst + (b - a) * p[C_DST_ST]].reshape(M, O))


@njit(cache=True, nogil=True)
def _images(xin, p, i64, i32, i8, u8, a, b, use64, out2):
    O = p[C_O]
    nblk = p[C_NBLK]
    _fast.fused_images(
        xin, p[C_H], p[C_W], p[C_C], a, b, p[C_PAD], np.uint8(p[C_PADV]), p[C_OX], p[C_D],
        p[C_VR], p[C_VLO], p[C_VHI], u8[p[C_TAB]:p[C_TAB] + 256], p[C_IDENT] != 0, use64,
        p[C_KH], p[C_KW], p[C_S], p[C_HO], p[C_WO], p[C_CP],
        i64[p[C_PIX]:p[C_PIX] + p[C_HO] * p[C_WO]], i64[p[C_KOFF]:p[C_KOFF] + p[C_NK4]],
        i8[p[C_WPK]:p[C_WPK] + p[C_WPN]], i64[p[C_WOFF]:p[C_WOFF] + nblk],
        i64[p[C_NVS]:p[C_NVS] + nblk], p[C_NP], O, p[C_MB], p[C_OW],
        i64[p[C_CORR]:p[C_CORR] + O], p[C_KSA], i32[p[C_K1]:p[C_K1] + O],
        i64[p[C_RE1]:p[C_RE1] + O], i32[p[C_K2]:p[C_K2] + O], i64[p[C_RE2]:p[C_RE2] + O],
        i64[p[C_C34]:p[C_C34] + O], i64[p[C_SR]:p[C_SR] + O], i64[p[C_HH]:p[C_HH] + O],
        p[C_AFF] != 0, i64[p[C_Q]:p[C_Q] + O], i64[p[C_R]:p[C_R] + O], p[C_RR], p[C_LO],
        p[C_HI], out2)


@njit(cache=True, nogil=True)
def _add(arena, N, p, a, b):
    n1 = p[C_SRC] * N + a * p[C_SST]
    n2 = p[A_SRC2] * N + a * p[A_SST2]
    d = p[C_DST] * N + a * p[C_DST_ST]
    ln = (b - a) * p[C_DST_ST]
    _kernels.lincomb2c_range(arena[n1:n1 + ln], arena[n2:n2 + ln], p[A_K1], p[A_E1],
                             p[A_K2], p[A_E2], p[A_C3], p[A_S], p[A_R], p[A_LO], p[A_HI],
                             arena[d:d + ln], 0, ln)


@njit(cache=True, nogil=True)
def _pool(arena, N, p, a, b):
    """Average pooling k x k, stride s, of channels-last codes: each channel's exact sum
    over the window, ``round_div`` by k k (the executor's ``avg_pool2d``)."""
    H, Wd, C = p[C_H], p[C_W], p[C_C]
    k, s, Ho, Wo, r = p[P_K], p[P_S], p[P_HO], p[P_WO], p[P_R]
    acc = np.empty(C, np.int64)
    cnt = k * k
    for n in range(a, b):
        xs = p[C_SRC] * N + n * p[C_SST]
        xi = arena[xs:xs + H * Wd * C]
        ds = p[C_DST] * N + n * p[C_DST_ST]
        oi = arena[ds:ds + Ho * Wo * C]
        for oy in range(Ho):
            for ox in range(Wo):
                for c in range(C):
                    acc[c] = 0
                for ky in range(k):
                    for kx in range(k):
                        q = ((oy * s + ky) * Wd + ox * s + kx) * C
                        px = xi[q:q + C]
                        for c in range(C):
                            acc[c] += np.int64(px[c])
                o = oi[(oy * Wo + ox) * C:(oy * Wo + ox + 1) * C]
                for c in range(C):
                    o[c] = _kernels.round_div(acc[c], cnt, r)


@njit(cache=True, nogil=True)
def _argmax(arena, wide, N, p, var, ctrl_ops, a, b):
    """Each controlled layer's row for images [a, b): the first maximum of its K logit
    codes (the narrowest width on ties)."""
    L, K = p[G_L], p[G_K]
    for n in range(a, b):
        s = p[C_SRC] * N + n * p[C_SST]
        for l in range(L):
            best = 0
            j = s + l * K
            for k in range(1, K):
                if p[G_WIDE]:
                    better = wide[j + k] > wide[j + best]
                else:
                    better = arena[j + k] > arena[j + best]
                if better:
                    best = k
            var[n, ctrl_ops[l]] = best


@njit(cache=True, parallel=True)
def run_program(arena, wide, N, ops, prm, var, ctrl_ops, i64, i32, i8, u8, per, use64):
    """Every op of the program on chunks of ``per`` images over Numba's threads."""
    nch = (N + per - 1) // per
    for ci in prange(nch):
        n0 = ci * per
        n1 = min(N, n0 + per)
        for o in range(ops.shape[0]):
            base = ops[o, 0]
            kind = prm[base, 0]
            if kind == OP_CONV:
                a = n0
                while a < n1:
                    v = var[a, o]
                    b = a + 1
                    while b < n1 and var[b, o] == v:
                        b += 1
                    _conv(arena, wide, N, prm[base + v], i64, i32, i8, u8, a, b, use64)
                    a = b
            elif kind == OP_ADD:
                _add(arena, N, prm[base], n0, n1)
            elif kind == OP_POOL:
                _pool(arena, N, prm[base], n0, n1)
            else:
                _argmax(arena, wide, N, prm[base], var, ctrl_ops, n0, n1)
    return arena
