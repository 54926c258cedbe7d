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

What the executor prepares once per network (each layer's fused kernel per width pair,
requantizations, residual-add constants, whole-network programs) is kept in the
network's session (``plan.session(net)``, dqt_hw/net/plan.py), which the programs read
too; the executor calls only the public functions of ``dqt_hw.model``.

Graph-side additions (no kernel's semantics change): max pooling with padding pads with
the lowest code of the input format (the smallest real value, so the maximum of any
window with a real tap is unchanged: the same as padding with -inf); a convolution pads
with the code of real 0 at the viewed width (0 when m = 0, as after a ReLU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import model, settings, spec
from .network import Layer, Network
from .plan import conv_geometry, pad_code, session, w_fmt


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


def _batch_parts(net: Network, nb: int):
    """[(a, b)]: the batch cut into one part per thread where it is large work (each
    part then runs the whole network in its thread, every layer serially, and the
    parts run side by side: no barrier per layer), else the whole batch (its layers
    share the threads). Every input is computed on its own, so the codes are the same."""
    nt = model.thread_count()
    work = int(session(net).macs(net).sum())
    if nt <= 1 or nb < 2 * nt or work * nb < settings.SPLIT_WORK:
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
        fc = session(net).fused_conv(net, nd, L, b_a, b_w, x.shape)
        if fc is not None:
            if settings.CHANNELS_LAST and fc.nhwc:
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
    rq = session(net).requant(net, L, b_a, b_w)
    common = dict(a_fmt=a_fmt, w_fmt=w_fmt(a.n), b_a=b_a, b_w=b_w,
                  view_rounding=a.view_rounding, acc_width=a.acc_width, overflow=a.overflow,
                  requant=rq, stats=stats)
    if L.op == "conv":
        at = nd.attrs
        return model.conv_layer(x, L.w, geometry=conv_geometry(at, pad_code(a_fmt, b_a)),
                                **common)
    res = model.dense_layer(x.reshape(x.shape[0], -1), L.w.T, **common)
    if stats:
        return res[0].reshape(x.shape[0], -1, 1, 1), res[1]
    return res.reshape(x.shape[0], -1, 1, 1)


def _fused_add(net: Network, nd, x1, x2):
    """The residual add ``model.dqt_add`` of two activation tensors in one pass
    (``model.fused_add``), or None where its sum cannot be bounded below 2^62 from the
    input formats (then the caller takes ``model.dqt_add``, which decides from the
    data). The codes are the executor's own (in their formats' ranges)."""
    hit = session(net).add_consts(net, nd)
    if hit is None or x1.shape != x2.shape:
        return None
    consts, dt = hit
    out = np.empty(x1.shape, dt)
    model.fused_add(np.ascontiguousarray(x1).reshape(-1), np.ascontiguousarray(x2).reshape(-1),
                    consts, out.reshape(-1))
    return out


def _concat(net: Network, nd, xs):
    """The concat along the channels of the codes ``xs``, each input requantized into
    the concat's format (``model.lincomb`` of [q, 1] with the layer's (k1, k3); the
    identity where the formats are equal)."""
    L = net.layers[nd.name]
    lo, hi = L.fmt.code_range()
    one = np.ones((), np.int64)
    return np.concatenate([model.lincomb([_nchw(x), one], list(cs), rounding=net.arith.rounding,
                                         lo=lo, hi=hi)
                           for x, cs in zip(xs, L.constants(net.arith.const_bits))], axis=1)


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
        # as avg_pool2d, without the transpose
        h = model.global_avg_pool_nhwc(feat_codes.a, rounding=a.pool_rounding)
    else:
        feat_codes = _nchw(feat_codes)
        H = feat_codes.shape[2]
        g = model.avg_pool2d(feat_codes, kernel=H, rounding=a.pool_rounding)  # (N, C, 1, 1)
        h = g.reshape(g.shape[0], -1)
    fin = net.layers[c.features].fmt
    for lay, f_in in ((c.fc1, fin), (c.fc2, c.fc1.fmt)):
        fc = session(net).fused_dense(net, lay, f_in, h.shape[1])
        if fc is not None:  # the same codes as dense_layer (a 1x1 conv, see _run_layer)
            hc = np.ascontiguousarray(h)
            if fc.nhwc:  # (N, F) is already channels-last for a 1x1 image
                h = fc.run_nhwc(hc.reshape(hc.shape[0], 1, 1, -1), True)
            else:
                h = fc.run(hc.reshape(hc.shape[0], -1, 1, 1))
            h = h.reshape(h.shape[0], -1)
            continue
        h = model.dense_layer(h, lay.w.T, a_fmt=f_in, w_fmt=w_fmt(a.n), b_a=a.n, b_w=a.n,
                              view_rounding=a.view_rounding, acc_width=a.acc_width,
                              overflow=a.overflow,
                              requant=session(net).requant(net, lay, a.n, a.n))
    logits = h.reshape(h.shape[0], len(c.layers), len(c.widths))
    return np.argmax(logits, axis=2)


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
    plans = session(net)
    names = plans.names(net)
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
            mix = plans.mix(net, int(wkey))  # one width for all: checked once
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
            elif op == "concat":
                v = _concat(net, nd, [vals[i] for i in nd.inputs])
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

    prog = None if stats else plans.program(net, "dynamic" if dynamic else mix)
    if prog is not None:
        nt = model.thread_count()

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
                res = [None] * len(parts)

                def part(i):
                    a, b = parts[i]
                    with model.serial_scope():
                        res[i] = run_batch(xb[a:b])

                model.run_units(part, len(parts))
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
    macs = plans.macs(net)
    bitops = (all_w[:, :, 0] * all_w[:, :, 1] * macs).sum(axis=1)
    cb = controller_macs(net) * net.arith.n * net.arith.n if dynamic else 0
    return RunResult(out_codes, logits, np.argmax(out_codes, axis=1), all_w, names, bitops,
                     cb, acc_stats if stats else {}, input_stats)


def input_codes(net: Network, x) -> np.ndarray:
    """Master codes of real inputs ``x`` (N, C, H, W) in the network's input format
    (``spec.quantize``: round half to even, clamped)."""
    fin = net.layers[next(iter(net.graph)).name].fmt
    return spec.quantize(x, fin)


def codes_digest(codes) -> str:
    """SHA-256 of the codes as int64 little-endian (a bit-exact fingerprint of a run)."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(codes, dtype="<i8").tobytes()).hexdigest()
