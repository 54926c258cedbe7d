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

- conv / fc (a fc on a 1 x 1 image is the 1 x 1 conv it equals): the layer's
  ``model.FusedConv`` from the network's plan (``plan.Session``) as a
  ``model.fused.FusedLayer``, encoded in a row (``fused.encode``: the padded block and
  its sums, the integer kernel and the short finish), run by ``fused.fused_images``, the
  kernel the layer-by-layer path runs too; one row per width pair it may run at;
- add: ``fused.fused_add_range`` with the plan's constants (``Session.add_consts``);
- concat: each input's codes requantized into the concat's format by
  ``fused.fused_add_range`` with K2 = 0 (``Session.concat_consts``), pixel by pixel
  into its channels of the concat's channels-last codes;
- avgpool (no padding), also the controller's global pool: exact sums and
  ``intops.round_div``;
- the controller's argmax (first maximum, the narrowest width on ties), which sets the
  row each controlled layer takes for that input. Inputs next to each other in a chunk
  with the same row run together.

``compile_program`` returns None where a network needs something a program does not
have (no integer kernel for the CPU, a layer off the short-finish path, codes that are
not bytes, groups, max pooling, a flatten of more than one pixel); the executor then
runs it layer by layer. ``DQT_HW_PROGRAM=0`` (``settings.PROGRAM``) switches programs
off.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .. import model, settings, spec
from ..model import fused, runtime
from ..model.intops import round_div

OP_CONV, OP_ADD, OP_POOL, OP_ARGMAX, OP_CONCAT = 0, 1, 2, 3, 4

# columns of the parameter table; every row: C_OP, C_SRC, C_SST (source node: offset,
# codes per image), C_DST, C_DST_ST (destination node), then per kind:
C_OP, C_SRC, C_SST, C_DST, C_DST_ST = range(5)
# conv: the int64 arena for its codes or the bytes, then the fused layer's row
C_WIDE, C_FL = 5, 6
NCOL = C_FL + fused.NFIELDS
# add: the second source node, then the ``model.AddConsts``
A_SRC2, A_SST2, A_K1, A_E1, A_K2, A_E2, A_C3, A_S, A_R, A_LO, A_HI = range(5, 16)
# pool: the source's H, W, C, then
P_H, P_W, P_C, P_K, P_S, P_HO, P_WO, P_R = range(5, 13)
# argmax: C_OP, C_SRC, C_SST, then
G_L, G_K, G_WIDE = 3, 4, 5
# concat, one row per input: its channels, the concat's, the input's channel offset and
# the pixels per image, then the ``model.AddConsts`` of its requantization (K2 = 0)
X_C, X_CT, X_OFF, X_PIX = range(5, 9)
X_K1, X_E1, X_C3, X_S, X_R, X_LO, X_HI = range(9, 16)


def enabled() -> bool:
    """Programs run here: not switched off (``settings.PROGRAM``) and the integer kernel
    available."""
    return settings.PROGRAM and model.integer_kernel()


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
        per = max(1, -(-N // (settings.CHUNKS_PER_THREAD * threads))) if threads > 1 else N
        runtime.numba_threads(threads)
        try:
            run_program(arena, wide, N, self.ops, self.prm, var, self.ctrl_ops, self.i64,
                        self.i32, self.i8, self.u8, per)
        finally:
            runtime.numba_threads(None)
        off, nb, _, w = self.nodes[self.out_node]
        out = (wide if w else arena)[off * N:off * N + N * nb].reshape(N, nb).astype(np.int64)
        return out, var


def _conv_row(fc, H, Wd, C, src, pools):
    """The parameter row of a fused layer ``fc`` on the node ``src`` (offset, codes per
    image) of H x Wd x C codes, and its output shape, or None where it is not on the
    one-call short-finish path (``model.FusedConv.fused_layer``)."""
    if fc is None or fc.wv.shape[1] != C:
        return None
    fl = fc.fused_layer(H, Wd)
    if fl is None:
        return None
    r = np.zeros(NCOL, np.int64)
    r[[C_OP, C_SRC, C_SST, C_WIDE]] = OP_CONV, src[0], src[1], fc.out_dtype != np.uint8
    r[C_FL:] = fused.encode(fl, pools)
    return r, (fl.g.Ho, fl.g.Wo, fl.O)


def compile_program(net, widths, plans):
    """A ``Program`` of ``net`` at the static mix ``widths`` ((L, 2) array in the order of
    ``net.compute_layers()``), or with the controller (``widths="dynamic"``), from the
    network's per-layer plans ``plans`` (its ``plan.Session``); None where the network
    needs the layer-by-layer executor."""
    if not enabled():
        return None
    g = net.graph
    names = net.compute_layers()
    dynamic = isinstance(widths, str)
    c = net.controller if dynamic else None
    pools = fused.pools()
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
            got = _conv_row(fc, H, Wd, C, nodes[src][:2], pools)
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
        r[[C_OP, C_SRC, C_SST, C_DST, C_DST_ST, P_H, P_W, P_C]] = (
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
            i = names.index(nd.name)
            if dynamic and nd.name in c.layers:
                pairs = [(b, b) for b in c.widths]
            elif dynamic:
                pairs = [tuple(net.check_width(nd.name, c.static_widths[nd.name]))]
            else:
                pairs = [tuple(int(v) for v in mix[i])]
            fcs = [plans.fused_conv(net, nd, L, int(a), int(b), (1, C, H, Wd))
                   for a, b in pairs]
            if not conv_op(nd.name, fcs, src):
                return None
        elif nd.op == "add":
            a_, b_ = nd.inputs
            if nodes[a_][2] != nodes[b_][2] or not byte_src(a_, b_):
                return None
            hit = plans.add_consts(net, nd)
            if hit is None or hit[1] != np.uint8:
                return None
            region(nd.name, nodes[a_][2])
            r = np.zeros(NCOL, np.int64)
            r[[C_OP, C_SRC, C_SST, C_DST, C_DST_ST]] = (OP_ADD, *nodes[a_][:2],
                                                         *nodes[nd.name][:2])
            r[[A_SRC2, A_SST2, A_K1, A_E1, A_K2, A_E2, A_C3, A_S, A_R, A_LO, A_HI]] = (
                *nodes[b_][:2], *hit[0])
            emit(nd.name, [r])
        elif nd.op == "concat":
            hit = plans.concat_consts(net, nd)
            if hit is None or not byte_src(*nd.inputs) or net.layers[nd.name].fmt.n != 8:
                return None
            H, Wd, _ = nodes[nd.inputs[0]][2]
            region(nd.name, (H, Wd, nd.shape[0]))
            off = 0
            for i, ac in zip(nd.inputs, hit):
                Ci = nodes[i][2][2]
                r = np.zeros(NCOL, np.int64)
                r[[C_OP, C_SRC, C_SST, C_DST, C_DST_ST, X_C, X_CT, X_OFF, X_PIX]] = (
                    OP_CONCAT, *nodes[i][:2], *nodes[nd.name][:2], Ci, nd.shape[0], off, H * Wd)
                r[[X_K1, X_E1, X_C3, X_S, X_R, X_LO, X_HI]] = (ac.K1, ac.E1, ac.C3, ac.S, ac.r,
                                                               ac.lo, ac.hi)
                emit(f"{nd.name}[{i}]", [r])
                off += Ci
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
                fc = plans.fused_dense(net, lay, f_in, F)
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
def _conv(arena, wide, N, p, pools, a, b):
    """A fused conv layer (row ``p``) on images [a, b) of the arena (its codes into the
    int64 arena ``wide`` where the row says so): ``fused.fused_images``."""
    q = p[C_FL:]
    Ho, Wo, O = q[fused.F_HO], q[fused.F_WO], q[fused.F_O]
    M = (b - a) * Ho * Wo
    xin = arena[p[C_SRC] * N:p[C_SRC] * N + N * p[C_SST]]
    dst = p[C_DST] * N + a * p[C_DST_ST]
    L = fused.decode(q, pools[0], pools[1], pools[2], pools[3])
    if p[C_WIDE]:
        fused.fused_images(xin, a, b, L, wide[dst:dst + (b - a) * p[C_DST_ST]].reshape(M, O))
    else:
        fused.fused_images(xin, a, b, L, arena[dst:dst + (b - a) * p[C_DST_ST]].reshape(M, O))


@njit(cache=True, nogil=True)
def _add(arena, N, p, a, b):
    n1 = p[C_SRC] * N + a * p[C_SST]
    n2 = p[A_SRC2] * N + a * p[A_SST2]
    d = p[C_DST] * N + a * p[C_DST_ST]
    ln = (b - a) * p[C_DST_ST]
    c = fused.AddConsts(p[A_K1], p[A_E1], p[A_K2], p[A_E2], p[A_C3], p[A_S], p[A_R], p[A_LO],
                        p[A_HI])
    fused.fused_add_range(arena[n1:n1 + ln], arena[n2:n2 + ln], c, arena[d:d + ln], 0, ln)


@njit(cache=True, nogil=True)
def _concat(arena, N, p, a, b):
    """One input of a concat (row ``p``) on images [a, b): each pixel's C codes
    requantized into channels [off, off + C) of the concat's pixel."""
    C, Ct, off = p[X_C], p[X_CT], p[X_OFF]
    c = fused.AddConsts(p[X_K1], p[X_E1], 0, 0, p[X_C3], p[X_S], p[X_R], p[X_LO], p[X_HI])
    for n in range(a, b):
        xs = p[C_SRC] * N + n * p[C_SST]
        ds = p[C_DST] * N + n * p[C_DST_ST] + off
        for q in range(p[X_PIX]):
            src = arena[xs + q * C:xs + (q + 1) * C]
            fused.fused_add_range(src, src, c, arena[ds + q * Ct:ds + q * Ct + C], 0, C)


@njit(cache=True, nogil=True)
def _pool(arena, N, p, a, b):
    """Average pooling k x k, stride s, of channels-last codes: each channel's exact sum
    over the window, ``round_div`` by k k (the executor's ``avg_pool2d``)."""
    H, Wd, C = p[P_H], p[P_W], p[P_C]
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
                    o[c] = round_div(acc[c], cnt, r)


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
def run_program(arena, wide, N, ops, prm, var, ctrl_ops, i64, i32, i8, u8, per):
    """Every op of the program on chunks of ``per`` images over Numba's threads (the
    pools' arrays i64 .. u8)."""
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
                    _conv(arena, wide, N, prm[base + v], (i64, i32, i8, u8), a, b)
                    a = b
            elif kind == OP_ADD:
                _add(arena, N, prm[base], n0, n1)
            elif kind == OP_POOL:
                _pool(arena, N, prm[base], n0, n1)
            elif kind == OP_CONCAT:
                _concat(arena, N, prm[base], n0, n1)
            else:
                _argmax(arena, wide, N, prm[base], var, ctrl_ops, n0, n1)
    return arena
