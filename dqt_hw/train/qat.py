"""The DQT fake-quantized model in PyTorch, built from a ``dqt_hw.net.Graph``.

It mirrors the integer executor (``dqt_hw.net.executor``) operation by operation, so that
the exported integer network computes the same codes (docs/networks.md, "Training"):

- every activation tensor is a code of an unsigned n-bit format (m, delta) at the master
  width n = 8; a consumer views it at its width b with the nested view
  (``view_rounding``: the paper's Eq. 4, ``half_up``, by default), real value
  m + delta 2^(n-b) q_b: the nested power-of-two scales Delta_b = Delta_n 2^(n-b);
- weights are quantized per output channel over their [min, max] (``spec.fit_format``)
  and viewed the same way;
- rounding is a straight-through estimator (the forward value is the quantized one, the
  gradient passes as identity);
- ReLU outputs (and residual adds with ReLU) use a learned PACT clip alpha: format
  m = 0, delta = alpha / (2^n - 1); other outputs use ranges tracked by an exponential
  moving average (EMA) of the batch min and max; the logits are 16-bit codes;
- requantization and the add round half to even (``torch.round``), average pooling
  rounds the mean of the codes half to even, as the integer kernels do;
- a concat (channels) joins its inputs' real values and quantizes them in its own format
  (an EMA range): each input requantized into it, as the executor does.

The controller is a two-layer MLP (hidden 64) on the global average pool of the stem's
output codes, fake-quantized the same way; in training it samples each controlled
layer's width by a straight-through Gumbel-softmax and each such layer computes its
output at every candidate width and mixes them by the one-hot sample (forward = the
sampled width exactly; gradients reach the controller through the mix).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..net.graph import Graph
from .config import MASTER_BITS

LOGIT_BITS = 16
EMA_MOMENTUM = 0.1
PACT_INIT = 4.0
PACT_MIN = 0.05


def ste(x, value):
    """``value`` in the forward pass, the gradient of ``x`` in the backward pass."""
    return x + (value - x).detach()


def codes_of(x, m, delta):
    """The integer codes (as floats) of fake-quantized reals x = m + delta q."""
    return torch.round((x.detach() - m.detach()) / delta.detach())


def nested_view(x, m, delta, n, b, rounding):
    """The b-bit nested view of fake-quantized x (master width n), as reals, STE."""
    if b == n:
        return x
    d = n - b
    q = codes_of(x, m, delta)
    if rounding == "floor":
        qb = torch.floor(q / (1 << d))
    else:  # half_up: min((q + 2^(d-1)) >> d, 2^b - 1)
        qb = torch.clamp(torch.floor((q + (1 << (d - 1))) / (1 << d)), max=(1 << b) - 1)
    val = m.detach() + delta.detach() * (1 << d) * qb
    return ste(x, val)


CONSTANT_SPREAD = 2.0 ** -20
"""A weight channel whose spread max - min is at most this fraction of its largest
magnitude is constant (delta = 1, every code 0, m its minimum): a step of float noise
would make k1 = delta_a delta_w / delta_o so small that the requantization's aligned sum
leaves the 63-bit datapath (the average pool an import makes a depthwise conv of, after a
few training steps)."""


def weight_format(w):
    """Per output channel (m, delta) over [min, max] (``spec.fit_format``, unsigned,
    delta = 1 for a constant channel, ``CONSTANT_SPREAD``)."""
    flat = w.detach().reshape(w.shape[0], -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    spread = torch.maximum(lo.abs(), hi.abs()) * CONSTANT_SPREAD
    delta = torch.where(hi - lo > spread, (hi - lo) / 255.0, torch.ones_like(hi))
    return lo, delta


def quantize_weight(w, n, b, rounding):
    """Fake-quantized weights at width b: master codes clamp(rint((w - m)/delta)), viewed."""
    m, delta = weight_format(w)
    shape = (-1,) + (1,) * (w.dim() - 1)
    m, delta = m.reshape(shape), delta.reshape(shape)
    q = torch.clamp(torch.round((w.detach() - m) / delta), 0, (1 << n) - 1)
    d = n - b
    if d:
        if rounding == "floor":
            q = torch.floor(q / (1 << d))
        else:
            q = torch.clamp(torch.floor((q + (1 << (d - 1))) / (1 << d)), max=(1 << b) - 1)
    return ste(w, m + delta * (1 << d) * q)


class ActQuant(nn.Module):
    """Output quantization of one node: PACT (ReLU, learned alpha) or EMA range."""

    def __init__(self, relu: bool, bits: int = 8):
        super().__init__()
        self.relu = relu
        self.bits = bits
        if relu:
            self.alpha = nn.Parameter(torch.tensor(PACT_INIT))
        else:
            self.register_buffer("lo", torch.tensor(0.0))
            self.register_buffer("hi", torch.tensor(0.0))
            self.register_buffer("seen", torch.tensor(False))
        self.update = True

    def fmt(self):
        """(m, delta) of the output codes."""
        top = (1 << self.bits) - 1
        if self.relu:
            a = self.alpha  # kept >= PACT_MIN by the trainer
            return torch.zeros((), dtype=a.dtype, device=a.device), a / top
        span = self.hi - self.lo
        return self.lo, torch.where(span > 0, span / top, torch.ones_like(span))

    def forward(self, y):
        top = (1 << self.bits) - 1
        if self.relu:
            m, delta = self.fmt()
            alpha = delta * top
            yc = torch.minimum(F.relu(y), alpha)
            q = torch.clamp(torch.round(yc.detach() / delta.detach()), 0, top)
            return ste(yc, delta * q), (m, delta)
        if self.training and self.update:
            with torch.no_grad():
                lo, hi = y.min().to(self.lo.dtype), y.max().to(self.hi.dtype)
                if not bool(self.seen):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                    self.seen.fill_(True)
                else:
                    self.lo.mul_(1 - EMA_MOMENTUM).add_(EMA_MOMENTUM * lo)
                    self.hi.mul_(1 - EMA_MOMENTUM).add_(EMA_MOMENTUM * hi)
        m, delta = self.fmt()
        q = torch.clamp(torch.round((y.detach() - m) / delta), 0, top)
        return ste(y, m + delta * q), (m, delta)


class QLinearOp(nn.Module):
    """A conv or fc node: weights, bias (a folded batch norm), output quantization."""

    def __init__(self, graph: Graph, nd, out_bits=8):
        super().__init__()
        info = graph.layer_info(nd)
        self.op = nd.op
        self.stride = info["stride"]
        self.padding = info["padding"]
        self.groups = info["groups"]
        O = info["out_shape"][0]
        if nd.op == "conv":
            shape = (O, info["in_shape"][0] // self.groups, info["kernel"], info["kernel"])
        else:
            shape = (O, info["taps"])
        fan_in = info["taps"]
        self.weight = nn.Parameter(torch.randn(shape) * math.sqrt(2.0 / fan_in))
        self.bias = nn.Parameter(torch.zeros(O))
        self.act = ActQuant(bool(nd.attr("relu")), out_bits)

    def linear(self, xv, b_w, n, rounding):
        w = quantize_weight(self.weight, n, b_w, rounding)
        if self.op == "conv":
            return F.conv2d(xv, w, None, self.stride, 0, 1, self.groups)
        return xv.reshape(xv.shape[0], -1) @ w.t()

    def forward(self, x, fmt, b, n, rounding, gate=None, widths=None):
        """x: fake-quantized master input with format ``fmt`` = (m, delta). Static width
        ``b`` (int), or per-sample one-hot ``gate`` (N, K) over ``widths``."""
        m, delta = fmt

        def pad(xv, bb):
            if self.op != "conv" or not self.padding:
                return xv
            # the bb-bit code of real 0 (0 when m = 0), as the executor pads
            dbb = delta.detach() * (1 << (n - bb))
            pc = torch.clamp(torch.round(-m.detach() / dbb), 0, (1 << bb) - 1)
            val = float(m.detach() + dbb * pc)
            p = self.padding
            return F.pad(xv, (p, p, p, p), value=val)

        if gate is None:
            xv = pad(nested_view(x, m, delta, n, b, rounding), b)
            y = self.linear(xv, b, n, rounding)
        else:
            views = [pad(nested_view(x, m, delta, n, bk, rounding), bk) for bk in widths]
            shape = (-1,) + (1,) * (views[0].dim() - 1)
            xv = sum(gate[:, k].reshape(shape) * v for k, v in enumerate(views))
            ys = [self.linear(xv, bk, n, rounding) for bk in widths]
            shape = (-1,) + (1,) * (ys[0].dim() - 1)
            y = sum(gate[:, k].reshape(shape) * yk for k, yk in enumerate(ys))
        if self.op == "conv":
            y = y + self.bias.reshape(1, -1, 1, 1)
        else:
            y = (y + self.bias).reshape(y.shape[0], -1, 1, 1)
        return self.act(y)


class Controller(nn.Module):
    """The width controller: GAP of the stem's output codes -> fc1 (64, ReLU) -> fc2
    (L*K logits, 16-bit codes)."""

    def __init__(self, channels, layers, widths, hidden=64):
        super().__init__()
        self.layers = list(layers)
        self.widths = list(widths)
        self.w1 = nn.Parameter(torch.randn(hidden, channels) * math.sqrt(2.0 / channels))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.randn(len(layers) * len(widths), hidden) * 0.01)
        self.b2 = nn.Parameter(torch.zeros(len(layers) * len(widths)))
        self.act1 = ActQuant(True, 8)
        self.act2 = ActQuant(False, LOGIT_BITS)

    def forward(self, feat, fmt, n, rounding):
        """Logits (N, L, K) (fake-quantized reals) from the features node's output."""
        m, delta = fmt
        q = codes_of(feat, m, delta)
        H = q.shape[2]
        qa = torch.round(q.sum(dim=(2, 3)) / (H * H))  # avg pool, half to even
        x = (m + delta * qa).detach()
        w1 = quantize_weight(self.w1, n, n, rounding)
        h, f1 = self.act1((x @ w1.t() + self.b1))
        w2 = quantize_weight(self.w2, n, n, rounding)
        z, _ = self.act2(h @ w2.t() + self.b2)
        return z.reshape(z.shape[0], len(self.layers), len(self.widths))


class DQTModel(nn.Module):
    """The fake-quantized network of ``graph`` with candidate ``widths`` per conv/fc layer
    and a controller for every conv/fc layer but the stem (the controller reads the
    stem's output, so the stem runs at ``stem_width``)."""

    def __init__(self, graph: Graph, *, widths=(2, 4, 6, 8), n=MASTER_BITS, view_rounding="half_up",
                 hidden=64, stem_width=8, controller=True, in_fmt=(0.0, 1.0 / 255.0),
                 out_bits=LOGIT_BITS):
        super().__init__()
        self.graph = graph
        self.n = n
        self.in_fmt = (float(in_fmt[0]), float(in_fmt[1]))  # (m, delta) of the input codes
        self.widths = tuple(widths)
        self.view_rounding = view_rounding
        self.stem_width = stem_width
        self.ops = nn.ModuleDict()
        self.adds = nn.ModuleDict()
        self.cats = nn.ModuleDict()
        names = [nd.name for nd in graph.compute_layers()]
        last = list(graph.nodes)[-1]
        for nd in graph:
            key = nd.name.replace(".", "_")
            if nd.op in ("conv", "fc"):
                self.ops[key] = QLinearOp(graph, nd, out_bits if nd.name == last else 8)
            elif nd.op == "add":
                self.adds[key] = ActQuant(bool(nd.attr("relu")), 8)
            elif nd.op == "concat":
                self.cats[key] = ActQuant(False, 8)
        self.stem = names[0]
        self.controlled = names[1:]
        self.macs = {r["name"]: r["macs"] for r in graph.layer_table()}
        self.controller = (Controller(graph[self.stem].shape[0], self.controlled, self.widths,
                                      hidden) if controller else None)

    def op(self, name):
        return self.ops[name.replace(".", "_")]

    def forward(self, x, widths=8, tau=1.0, hard_argmax=False):
        """``x``: real inputs (N, C, H, W), quantized in ``in_fmt``. ``widths``: an int
        (static, every layer), a dict name -> width, or ``"dynamic"`` (the controller;
        Gumbel-softmax samples in training, argmax otherwise). Returns (logits, probs or
        None) where probs (N, L, K) are the controller's softmax probabilities."""
        n, r = self.n, self.view_rounding
        fmt_in = tuple(torch.tensor(v, dtype=x.dtype) for v in self.in_fmt)
        top = (1 << n) - 1
        xq = torch.clamp(torch.round((x - fmt_in[0]) / fmt_in[1]), 0, top) * fmt_in[1] + fmt_in[0]
        vals = {}
        gates = {}
        probs = None
        for nd in self.graph:
            if nd.op == "input":
                vals[nd.name] = (xq, fmt_in)
            elif nd.op in ("conv", "fc"):
                xin, fmt = vals[nd.inputs[0]]
                if widths == "dynamic":
                    if nd.name in gates:
                        out = self.op(nd.name)(xin, fmt, None, n, r, gate=gates[nd.name],
                                               widths=self.widths)
                    else:
                        out = self.op(nd.name)(xin, fmt, self.stem_width, n, r)
                else:
                    b = widths if isinstance(widths, int) else widths[nd.name]
                    out = self.op(nd.name)(xin, fmt, b, n, r)
                vals[nd.name] = out
                if widths == "dynamic" and nd.name == self.stem:
                    z = self.controller(out[0], out[1], n, r)
                    probs = F.softmax(z, dim=-1)
                    if self.training and not hard_argmax:
                        g = F.gumbel_softmax(z, tau=tau, hard=True, dim=-1)
                    else:
                        idx = torch.argmax(z, dim=-1)
                        g = F.one_hot(idx, len(self.widths)).to(z.dtype)
                    for i, nm in enumerate(self.controlled):
                        gates[nm] = g[:, i]
            elif nd.op == "add":
                (x1, _), (x2, _) = vals[nd.inputs[0]], vals[nd.inputs[1]]
                vals[nd.name] = self.adds[nd.name.replace(".", "_")](x1 + x2)
            elif nd.op == "concat":
                vals[nd.name] = self.cats[nd.name.replace(".", "_")](
                    torch.cat([vals[i][0] for i in nd.inputs], dim=1))
            elif nd.op == "avgpool":
                xin, (m, d) = vals[nd.inputs[0]]
                k = nd.attrs["kernel"]
                s = nd.attr("stride", k)
                q = codes_of(xin, m, d)
                qa = torch.round(F.avg_pool2d(q, k, s))
                vals[nd.name] = (ste(F.avg_pool2d(xin, k, s), m + d * qa), (m, d))
            elif nd.op == "maxpool":
                xin, fmt = vals[nd.inputs[0]]
                k = nd.attrs["kernel"]
                vals[nd.name] = (F.max_pool2d(xin, k, nd.attr("stride", k),
                                              nd.attr("padding", 0)), fmt)
            elif nd.op == "flatten":
                xin, fmt = vals[nd.inputs[0]]
                vals[nd.name] = (xin.reshape(xin.shape[0], -1, 1, 1), fmt)
        out, _ = vals[list(self.graph.nodes)[-1]]
        return out.reshape(out.shape[0], -1), probs

    def expected_cost(self, probs):
        """J_cost: the expected BitOPs of the controller's choices (softmax probabilities)
        relative to the whole network at n/n; per input, averaged."""
        w = torch.tensor([b * b for b in self.widths], dtype=probs.dtype)
        macs = torch.tensor([self.macs[nm] for nm in self.controlled], dtype=probs.dtype)
        exp = (probs * w).sum(-1) @ macs  # (N,)
        static = self.macs[self.stem] * self.stem_width ** 2
        total = sum(self.macs.values()) * self.n ** 2
        return ((exp + static) / total).mean()

    def bitops(self, widths_idx):
        """Per input BitOPs (N,) of a dynamic choice (N, L) of width indices."""
        w = torch.tensor(self.widths)[widths_idx]
        macs = torch.tensor([self.macs[nm] for nm in self.controlled])
        return (w * w * macs).sum(-1) + self.macs[self.stem] * self.stem_width ** 2
