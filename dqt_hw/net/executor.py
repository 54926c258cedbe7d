"""The integer-only network executor.

``execute(net, codes, widths=...)`` runs a ``Network`` on input codes with the
``dqt_hw.model`` kernels, integer from the input codes to the logit codes; the only float
step is the final dequantization of the logits. Every conv/fc layer views its input
activation codes and its master weight codes at the layer's (b_a, b_w) and requantizes
with the master constants whose shifts moved (``Requant.switched``): no constant is
recomputed for a width switch. Every activation tensor is produced at the master width n
and each consumer views it at its own width.

Widths come from a static mix (``widths=8``, a dict or a list of (b_a, b_w) per layer) or
from the controller (``widths="dynamic"``), per input. Inputs with equal widths at a layer
run together; each input's result depends only on that input and its widths (every
kernel computes each output on its own, in a fixed order), so the executor is
deterministic bit for bit and independent of batching and grouping.

Graph-side additions (no kernel's semantics change): max pooling with padding pads with
the lowest code of the input format (the smallest real value, so the maximum of any
window with a real tap is unchanged: the same as padding with -inf); a convolution pads
with the code of real 0 at the viewed width (0 when m = 0, as after a ReLU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import model, spec
from .network import Layer, Network


@dataclass
class RunResult:
    """What ``execute`` returns.

    - ``codes`` (N, F): output (logit) codes; ``logits`` (N, F) their real values
      (the one float step); ``pred`` (N,) the argmax of the codes (first on ties).
    - ``widths`` (N, L, 2): (b_a, b_w) of each conv/fc layer per input (``layers`` names
      them); ``bitops`` (N,): sum over layers of MACs * b_a * b_w;
      ``controller_bitops``: BitOPs of the controller per input (0 for static runs).
    - ``acc_stats``: layer -> ``model.AccStats`` over the run (with ``stats=True``);
      ``input_stats``: per input, layer -> AccStats (with ``stats="input"``).
    """

    codes: np.ndarray
    logits: np.ndarray
    pred: np.ndarray
    widths: np.ndarray
    layers: list
    bitops: np.ndarray
    controller_bitops: int = 0
    acc_stats: dict = field(default_factory=dict)
    input_stats: list | None = None

    def accuracy(self, labels) -> float:
        labels = np.asarray(labels)
        return float(np.mean(self.pred == labels)) if len(labels) else 0.0

    def switches(self) -> np.ndarray:
        """Per input: the number of layers whose (b_a, b_w) differs from the previous
        input's (the width-register writes between consecutive inputs; 0 for the first)."""
        if len(self.widths) == 0:
            return np.zeros(0, np.int64)
        d = np.any(self.widths[1:] != self.widths[:-1], axis=2).sum(axis=1)
        return np.concatenate([[0], d]).astype(np.int64)

    def shifts(self, net: Network) -> np.ndarray:
        """Per input: the nested-view shift operations, i.e. the activation codes viewed
        at b_a < n plus the weight codes viewed at b_w < n, summed over layers — what the
        dequantize/requantize approach does with two float multiplies per element."""
        table = {r["name"]: r for r in net.graph.layer_table()}
        n = net.arith.n
        acts = np.array([table[nm]["in_activations"] for nm in self.layers], np.int64)
        wts = np.array([table[nm]["weights"] for nm in self.layers], np.int64)
        return ((self.widths[:, :, 0] < n) * acts + (self.widths[:, :, 1] < n) * wts).sum(1)


def _pad_code(fmt: spec.Format, b: int) -> int:
    """The b-bit code of real 0 in ``fmt`` (clamped): 0 when m = 0."""
    if fmt.m == 0.0:
        return 0
    lo, hi = fmt.code_range(b)
    return int(np.clip(np.rint(-fmt.m / fmt.delta_at(b)), lo, hi))


_W_FMT_CACHE: dict = {}


def _w_fmt(n):
    f = _W_FMT_CACHE.get(n)
    if f is None:
        f = _W_FMT_CACHE[n] = spec.Format(n)
    return f


CHANNELS_LAST = True  # keep activations channels-last between fused VNNI conv layers
SPLIT_WORK = 1 << 30  # multiply-adds per batch from which it is cut into parts per thread
PROGRAMS_KEPT = 6  # compiled whole-network programs kept per network (the latest used)


def _batch_parts(net: Network, nb: int):
    """[(a, b)]: the batch cut into one part per thread where it is large work (each
    part then runs the whole network in its thread, every layer serially, and the
    parts run side by side: no barrier per layer), else the whole batch (its layers
    share the threads). Every input is computed on its own, so the codes are the same."""
    from ..model import _fast

    nt = _fast._threads().count()
    work = net.__dict__.get("_macs_per_input")
    if work is None:
        work = sum(r["macs"] for r in net.graph.layer_table())
        net.__dict__["_macs_per_input"] = work
    if nt <= 1 or nb < 2 * nt or work * nb < SPLIT_WORK:
        return [(0, nb)]
    step = -(-nb // nt)
    return [(a, min(nb, a + step)) for a in range(0, nb, step)]


class _NHWC:
    """Activation codes held channels-last, (N, H, W, C) in ``a``, between fused conv
    layers that read and write that layout (``FusedConv.run_nhwc``). ``shape`` and
    ``ndim`` are those of the NCHW tensor it stands for; ``nchw()`` converts."""

    __slots__ = ("a",)
    ndim = 4

    def __init__(self, a):
        self.a = a

    @property
    def shape(self):
        N, H, W, C = self.a.shape
        return (N, C, H, W)

    def nchw(self):
        return np.ascontiguousarray(self.a.transpose(0, 3, 1, 2))


def _nchw(v):
    return v.nchw() if isinstance(v, _NHWC) else v


def _take(v, sel):
    return _NHWC(v.a[sel]) if isinstance(v, _NHWC) else v[sel]


def _run_layer(net: Network, nd, L: Layer, x, b_a, b_w, stats):
    """``_compute_layer`` by the layer's fused conv where it has one (same codes); a
    fused VNNI layer returns its codes channels-last (``_NHWC``). A fully connected
    layer on (N, F, 1, 1) runs as the 1x1 conv it equals: the same sums over f
    ascending, the same side sums and requantization."""
    if not stats and L.op in ("conv", "fc") and x.ndim == 4:
        fc = _fused_conv(net, nd, L, x, b_a, b_w)
        if fc is not None:
            if CHANNELS_LAST and fc.nhwc:
                if isinstance(x, _NHWC):
                    return _NHWC(fc.run_nhwc(x.a, True))
                if x.shape[2:] == (1, 1):  # (N, C, 1, 1) is channels-last as it is
                    xa = np.ascontiguousarray(x)
                    return _NHWC(fc.run_nhwc(xa.reshape(xa.shape[0], 1, 1, -1), True))
                return _NHWC(fc.run_nhwc(x, False))
            return fc.run(_nchw(x))
    return _compute_layer(net, nd, L, _nchw(x), b_a, b_w, stats)


def _compute_layer(net: Network, nd, L: Layer, x, b_a, b_w, stats):
    """One conv/fc layer on master input codes x at (b_a, b_w)."""
    a = net.arith
    a_fmt = net.in_fmt(nd.name)
    rq = net.requant(L.name, b_a, b_w, L)
    common = dict(a_fmt=a_fmt, w_fmt=_w_fmt(a.n), b_a=b_a, b_w=b_w,
                  view_rounding=a.view_rounding, acc_bits=a.acc_bits, overflow=a.overflow,
                  requant=rq, stats=stats)
    if L.op == "conv":
        at = nd.attrs
        return model.conv_layer(x, L.w, stride=at.get("stride", 1), padding=at.get("padding", 0),
                                groups=at.get("groups", 1), pad_code=_pad_code(a_fmt, b_a),
                                **common)
    res = model.dense_layer(x.reshape(x.shape[0], -1), L.w.T, **common)
    if stats:
        return res[0].reshape(x.shape[0], -1, 1, 1), res[1]
    return res.reshape(x.shape[0], -1, 1, 1)


def _fused_conv(net: Network, nd, L: Layer, x, b_a, b_w):
    """The layer's ``model.layer.FusedConv`` at (b_a, b_w), kept in the layer's cache
    (cleared when the network is validated again) while ``L.w`` is the same array; None
    where the layer needs the general path. The master weight codes were validated when
    the network was built or loaded, so they are viewed once here, not on every call."""
    key = ("fused", b_a, b_w)
    hit = L._rq_cache.get(key)
    if hit is not None and hit[0] is L.w:
        return hit[1]
    from ..model import core as mcore
    from ..model import layer as mlayer

    a = net.arith
    a_fmt = net.in_fmt(nd.name)
    w_fmt = _w_fmt(a.n)
    rq = net.requant(L.name, b_a, b_w, L)
    at = nd.attrs
    fc = None
    w = L.w if L.op == "conv" else L.w.reshape(L.w.shape + (1, 1))  # fc: a 1x1 conv
    try:
        if L.op == "fc" and tuple(x.shape[2:]) != (1, 1):
            raise ValueError("fc input is not flattened")
        mlayer._check_product_width(a.acc_bits, b_a, b_w, a_fmt, w_fmt)
        W, mode = mcore._check_acc(a.acc_bits, a.overflow)
        stride, padding, groups, _, _ = mcore._conv_geometry(
            x, w, at.get("stride", 1), at.get("padding", 0), at.get("groups", 1))
    except (TypeError, ValueError):
        pass  # the general path raises the error
    else:
        wv = model.nested_view(w, n=a.n, b=b_w, rounding=a.view_rounding)
        lo, hi = rq.range
        fc = mlayer.FusedConv(wv, a_fmt=a_fmt, b_a=b_a, view_rounding=a.view_rounding, W=W,
                              mode=mode, rq=rq, stride=stride, padding=padding,
                              groups=groups, pad_code=_pad_code(a_fmt, b_a),
                              out_dtype=mlayer._out_dtype(lo, hi))
        fc = fc if fc.ok else None
    L._rq_cache[key] = (L.w, fc)
    return fc


def _fused_add(net: Network, nd, x1, x2):
    """The residual add ``model.dqt_add`` of two activation tensors in one pass, or None
    where its sum cannot be bounded below 2^62 from the input formats (then the caller
    takes ``model.dqt_add``, which decides from the data). The codes are the executor's
    own (in their formats' ranges)."""
    L = net.layers[nd.name]
    hit = L._rq_cache.get("fused_add")
    if hit is None:
        a = net.arith
        Ks, Es, S = spec.align(L.constants(a.const_bits))
        m1 = (1 << net.layers[nd.inputs[0]].fmt.n) - 1
        m2 = (1 << net.layers[nd.inputs[1]].fmt.n) - 1
        bound = (abs(Ks[0]) * m1 << Es[0]) + (abs(Ks[1]) * m2 << Es[1]) + (abs(Ks[2]) << Es[2])
        lo, hi = spec.code_range(L.fmt.n, False)
        if bound < (1 << 62) and max(Es[0], Es[1]) < 63 and 0 <= S <= 62:
            hit = (Ks[0], Es[0], Ks[1], Es[1], Ks[2] << Es[2], S,
                   spec.ROUNDING_CODES[a.rounding], lo, hi, np.dtype(_small_dtype(lo, hi)))
        else:
            hit = False
        L._rq_cache["fused_add"] = hit
    if not hit or x1.shape != x2.shape:
        return None
    from ..model import _kernels

    *consts, dt = hit
    out = np.empty(x1.shape, dt)
    _kernels.lincomb2c(np.ascontiguousarray(x1).reshape(-1), np.ascontiguousarray(x2).reshape(-1),
                       *consts, out.reshape(-1))
    return out


def _small_dtype(lo, hi):
    from ..model.layer import _out_dtype

    return _out_dtype(lo, hi)


def _merge(d, key, st):
    if st is not None:
        d[key] = st if key not in d else d[key].merge(st)


def controller_widths(net: Network, feat_codes) -> np.ndarray:
    """Width index per input and controlled layer (N, L): the controller on the codes of
    its features node (N, C, H, H). Integer throughout; argmax ties go to the lowest
    index."""
    c = net.controller
    a = net.arith
    if isinstance(feat_codes, _NHWC) and feat_codes.a.shape[1] == feat_codes.a.shape[2]:
        # the global average pool of channels-last codes: the same sums and rounding
        # (``_kernels.round_div``) as avg_pool2d, without the transpose
        from ..model import _kernels

        fa = np.ascontiguousarray(feat_codes.a)
        h = _kernels.gap_nhwc(fa, spec.ROUNDING_CODES[a.pool_rounding],
                              np.empty((fa.shape[0], fa.shape[3]), np.int64))
    else:
        feat_codes = _nchw(feat_codes)
        H = feat_codes.shape[2]
        g = model.avg_pool2d(feat_codes, kernel=H, rounding=a.pool_rounding)  # (N, C, 1, 1)
        h = g.reshape(g.shape[0], -1)
    fin = net.layers[c.features].fmt
    for lay, f_in in ((c.fc1, fin), (c.fc2, c.fc1.fmt)):
        fc = _fused_dense(net, lay, f_in, h.shape[1])
        if fc is not None:  # the same codes as dense_layer (a 1x1 conv, see _run_layer)
            hc = np.ascontiguousarray(h)
            if fc.nhwc:  # (N, F) is already channels-last for a 1x1 image
                h = fc.run_nhwc(hc.reshape(hc.shape[0], 1, 1, -1), True)
            else:
                h = fc.run(hc.reshape(hc.shape[0], -1, 1, 1))
            h = h.reshape(h.shape[0], -1)
            continue
        h = model.dense_layer(h, lay.w.T, a_fmt=f_in, w_fmt=_w_fmt(a.n), b_a=a.n, b_w=a.n,
                              view_rounding=a.view_rounding, acc_bits=a.acc_bits,
                              overflow=a.overflow, requant=net.requant(lay.name, a.n, a.n, lay))
    logits = h.reshape(h.shape[0], len(c.layers), len(c.widths))
    return np.argmax(logits, axis=2)


def _fused_dense(net: Network, lay: Layer, a_fmt: spec.Format, F: int):
    """A controller layer (at n/n) as the ``FusedConv`` of its 1x1 conv, kept in the
    layer's cache while ``lay.w`` is the same array; None where it needs the general
    path (which then raises or decides from the data)."""
    hit = lay._rq_cache.get("fused_dense")
    if hit is not None and hit[0] is lay.w:
        return hit[1]
    from ..model import core as mcore
    from ..model import layer as mlayer

    a = net.arith
    rq = net.requant(lay.name, a.n, a.n, lay)
    fc = None
    if lay.w.ndim == 2 and lay.w.shape[1] == F:
        try:
            mlayer._check_product_width(a.acc_bits, a.n, a.n, a_fmt, _w_fmt(a.n))
            W, mode = mcore._check_acc(a.acc_bits, a.overflow)
        except (TypeError, ValueError):
            pass
        else:
            lo, hi = rq.range
            fc = mlayer.FusedConv(np.ascontiguousarray(lay.w.reshape(lay.w.shape + (1, 1))),
                                  a_fmt=a_fmt, b_a=a.n, view_rounding=a.view_rounding, W=W,
                                  mode=mode, rq=rq, stride=1, padding=0, groups=1,
                                  pad_code=0, out_dtype=mlayer._out_dtype(lo, hi))
            fc = fc if fc.ok else None
    lay._rq_cache["fused_dense"] = (lay.w, fc)
    return fc


def controller_macs(net: Network) -> int:
    c = net.controller
    if c is None:
        return 0
    return int(c.fc1.w.size + c.fc2.w.size)


def execute(net: Network, codes, *, widths=None, batch_size: int = 64, stats=False,
            progress: bool = False, desc: str | None = None) -> RunResult:
    """Run ``net`` on input codes (N, C, H, W) (master codes of the input format).

    ``widths``: one width for all layers, a dict or list (a static mix, see
    ``Network.width_mix``), or ``"dynamic"`` (the controller, per input). ``stats``:
    False, True (per-layer ``AccStats`` over the run) or ``"input"`` (also per input;
    runs inputs one at a time). Batches of ``batch_size`` run under a tqdm progress bar
    when ``progress``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a dqt_hw.net.Network, not {net!r}")
    g = net.graph
    memo = net.__dict__.setdefault("_exec_memo", {})  # cleared by Network.validate
    if "names" not in memo:
        memo["names"] = net.compute_layers()
        memo["macs"] = np.array([r["macs"] for r in g.layer_table()], np.int64)
    names = memo["names"]
    index = {nm: i for i, nm in enumerate(names)}
    in_node = next(iter(g))
    fin = net.layers[in_node.name].fmt
    x = model.as_codes("input codes", codes, *fin.code_range())
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(in_node.shape):
        raise ValueError(f"layer {in_node.name!r}: input codes have shape {x.shape}, the "
                         f"network takes (N, {', '.join(map(str, in_node.shape))})")
    if stats not in (False, True, "input"):
        raise ValueError(f"stats must be False, True or 'input', not {stats!r}")
    batch_size = spec.check_width("batch_size", batch_size, 1, 1 << 30)
    dynamic = isinstance(widths, str)
    if dynamic:
        if widths != "dynamic":
            raise ValueError(f"widths must be a static mix or 'dynamic', not {widths!r}")
        if net.controller is None:
            raise ValueError(f"network {net.name!r} has no controller: widths='dynamic' "
                             f"needs one")
        c = net.controller
        static = np.array([net.check_width(nm, c.static_widths[nm]) if nm not in c.layers
                           else (0, 0) for nm in names], np.int64)
        ctrl_idx = np.array([index[nm] for nm in c.layers], np.int64)
        cw = np.array(c.widths, np.int64)
        feat_node = c.features
    else:
        wkey = net.arith.n if widths is None else widths
        if isinstance(wkey, (int, np.integer)) and not isinstance(wkey, bool):
            mix = memo.get(("mix", int(wkey)))  # one width for all: checked once
            if mix is None:
                mix = memo[("mix", int(wkey))] = net.width_mix(wkey)
        else:
            mix = net.width_mix(wkey)
    N = x.shape[0]
    if stats == "input":
        batch_size = 1
    out_node = net.output_node()
    all_w = np.zeros((N, len(names), 2), np.int64)
    out_codes = None
    acc_stats: dict = {}
    input_stats = [] if stats == "input" else None
    bar = None

    def run_batch(xb):
        """(output codes (nb, -1), widths (nb, L, 2), stats) of one batch."""
        nb = xb.shape[0]
        if dynamic:
            wb = np.broadcast_to(static, (nb, len(names), 2)).copy()
        else:
            wb = np.broadcast_to(mix, (nb, len(names), 2)).copy()
        vals = {}
        st_b: dict = {}
        for nd in g:
            op = nd.op
            if op == "input":
                v = xb
            elif op in ("conv", "fc"):
                L = net.layers[nd.name]
                xin = vals[nd.inputs[0]]
                pairs = wb[:, index[nd.name]]
                if dynamic and not (pairs == pairs[0]).all():
                    keys = np.unique(pairs, axis=0)
                else:  # a static mix: one pair for the whole batch
                    keys = pairs[:1]
                if len(keys) == 1:
                    r = _run_layer(net, nd, L, xin, int(keys[0, 0]), int(keys[0, 1]),
                                   bool(stats))
                    v, st = r if stats else (r, None)
                    _merge(st_b, nd.name, st)
                else:
                    parts = []
                    for k in keys:
                        sel = np.nonzero(np.all(pairs == k, axis=1))[0]
                        r = _run_layer(net, nd, L, _take(xin, sel), int(k[0]),
                                       int(k[1]), bool(stats))
                        vk, st = r if stats else (r, None)
                        _merge(st_b, nd.name, st)
                        parts.append((sel, vk))
                    if all(isinstance(vk, _NHWC) for _, vk in parts):
                        a0 = parts[0][1].a
                        v = _NHWC(np.empty((nb,) + a0.shape[1:], np.result_type(
                            *[vk.a.dtype for _, vk in parts])))
                        for sel, vk in parts:
                            v.a[sel] = vk.a
                    else:
                        v = None
                        for sel, vk in parts:
                            vk = _nchw(vk)
                            if v is None:
                                v = np.empty((nb,) + vk.shape[1:], np.int64)
                            v[sel] = vk
            elif op == "add":
                L = net.layers[nd.name]
                x1, x2 = vals[nd.inputs[0]], vals[nd.inputs[1]]
                v = None
                if isinstance(x1, _NHWC) and isinstance(x2, _NHWC):
                    # elementwise: the same in either layout
                    va = _fused_add(net, nd, x1.a, x2.a)
                    v = None if va is None else _NHWC(va)
                else:
                    x1, x2 = _nchw(x1), _nchw(x2)
                    v = _fused_add(net, nd, x1, x2)
                if v is None:
                    v = model.dqt_add(_nchw(x1), _nchw(x2),
                                      L.constants(net.arith.const_bits),
                                      rounding=net.arith.rounding, b_out=L.fmt.n)
            elif op == "maxpool":
                xin = _nchw(vals[nd.inputs[0]])
                p = nd.attr("padding", 0)
                if p:
                    lo = net.layers[nd.inputs[0]].fmt.code_range()[0]
                    xin = np.pad(xin, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=lo)
                v = model.max_pool2d(xin, kernel=nd.attrs["kernel"],
                                     stride=nd.attr("stride", nd.attrs["kernel"]))
            elif op == "avgpool":
                v = model.avg_pool2d(_nchw(vals[nd.inputs[0]]), kernel=nd.attrs["kernel"],
                                     stride=nd.attr("stride", nd.attrs["kernel"]),
                                     rounding=net.arith.pool_rounding)
            elif op == "flatten":
                xin = _nchw(vals[nd.inputs[0]])
                v = xin.reshape(xin.shape[0], -1, 1, 1)
            else:  # pragma: no cover
                raise AssertionError(op)
            vals[nd.name] = v
            if dynamic and nd.name == feat_node:
                idx = controller_widths(net, v)
                chosen = cw[idx]  # (nb, Lc)
                wb[:, ctrl_idx, 0] = chosen
                wb[:, ctrl_idx, 1] = chosen
        ob = _nchw(vals[out_node]).reshape(nb, -1)
        return ob, wb, st_b

    prog = None if stats else _program(net, "dynamic" if dynamic else mix)
    if prog is not None:
        from ..model import _fast

        nt = _fast._threads().count()

        def run_batch(xb):  # noqa: F811  (the same results in one Numba call)
            ob, var = prog.run(xb, nt)
            nb = xb.shape[0]
            if dynamic:
                wb = np.broadcast_to(static, (nb, len(names), 2)).copy()
                for j, nm in enumerate(c.layers):
                    chosen = cw[var[:, prog.conv_index[nm]]]
                    wb[:, ctrl_idx[j], 0] = chosen
                    wb[:, ctrl_idx[j], 1] = chosen
            else:
                wb = np.broadcast_to(mix, (nb, len(names), 2)).copy()
            return ob, wb, {}

    if progress:
        from tqdm import tqdm

        bar = tqdm(total=N, unit="img", desc=desc or net.name, leave=False)
    try:
        for s in range(0, N, batch_size):
            xb = x[s:s + batch_size]
            nb = xb.shape[0]
            parts = _batch_parts(net, nb) if not (stats or prog) else [(0, nb)]
            if len(parts) == 1:
                ob, wb, st_b = run_batch(xb)
            else:
                from ..model import _fast

                res = [None] * len(parts)

                def part(i):
                    a, b = parts[i]
                    with _fast.serial_scope():
                        res[i] = run_batch(xb[a:b])

                _fast._threads().run(part, len(parts), blas=False)
                ob = np.concatenate([r[0] for r in res])
                wb = np.concatenate([r[1] for r in res])
                st_b = {}
                for r in res:
                    for k, st in r[2].items():
                        _merge(st_b, k, st)
            if out_codes is None:
                out_codes = np.empty((N, ob.shape[1]), np.int64)
            out_codes[s:s + nb] = ob
            all_w[s:s + nb] = wb
            for k, st in st_b.items():
                _merge(acc_stats, k, st)
            if input_stats is not None:
                input_stats.append(st_b)
            if bar is not None:
                bar.update(nb)
    finally:
        if bar is not None:
            bar.close()
    if out_codes is None:
        out_codes = np.zeros((0, g[out_node].shape[0]), np.int64)
    ofmt = net.layers[out_node].fmt
    logits = ofmt.real(out_codes.astype(np.float64))  # the one float step
    macs = memo["macs"]
    bitops = (all_w[:, :, 0] * all_w[:, :, 1] * macs).sum(axis=1)
    cb = controller_macs(net) * net.arith.n * net.arith.n if dynamic else 0
    return RunResult(out_codes, logits, np.argmax(out_codes, axis=1), all_w, names, bitops,
                     cb, acc_stats if stats else {}, input_stats)


def _program(net: Network, widths):
    """The network's ``program.Program`` at a static mix (an (L, 2) array) or with the
    controller (``"dynamic"``), compiled once and kept while every layer holds the same
    weight array; None where it needs the layer-by-layer path."""
    from . import program

    if not program.enabled():
        return None
    key = "dynamic" if isinstance(widths, str) else tuple(map(tuple, np.asarray(widths).tolist()))
    cache = net.__dict__.get("_programs")
    if cache is None:
        from collections import OrderedDict

        cache = net.__dict__["_programs"] = OrderedDict()
    hit = cache.get(key)
    if hit is not None and (hit is False or hit.current(net)):
        cache.move_to_end(key)
        return hit or None
    prog = program.compile_program(net, widths)
    cache[key] = prog if prog is not None else False
    cache.move_to_end(key)
    while len(cache) > PROGRAMS_KEPT:  # a sweep over many mixes keeps the latest few
        cache.popitem(last=False)
    return prog


def input_codes(net: Network, x) -> np.ndarray:
    """Master codes of real inputs ``x`` (N, C, H, W) in the network's input format
    (``spec.quantize``: round half to even, clamped)."""
    fin = net.layers[next(iter(net.graph)).name].fmt
    return spec.quantize(x, fin)


def codes_digest(codes) -> str:
    """SHA-256 of the codes as int64 little-endian (a bit-exact fingerprint of a run)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(codes, dtype="<i8").tobytes()).hexdigest()
