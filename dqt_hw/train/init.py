"""``dqt-hw train --init NET.json``: DQT fine-tuning of a network file (an imported one,
say) from its own weights (docs/networks.md, "Training", Fine-tuning).

``model_from_network(net, widths=..., hidden=...)`` builds the fake-quantized twin
(``qat.DQTModel``) of ``net``'s graph — conv (groups and depthwise included), fc, add,
concat, max and average pooling, flatten, as the network file describes them — and starts
it where the network is:

- each conv/fc layer's weights are its real master weights ``w_m + w_delta * code`` and
  its bias the stored (folded) bias; the trainer requantizes the weights per output
  channel over their [min, max] as for every DQT network;
- each output quantization starts at the network's format: a ReLU output (m = 0) as the
  PACT clip alpha = delta (2^n - 1), any other as the EMA range [m, m + delta (2^n - 1)];
- the input format, the logits' width (the last layer's n) and the view rounding are the
  network's; the controller is new (the network's own, if any, is not reused), reading
  the first conv/fc layer's output as for every DQT network.

What the twin cannot train is refused in one line naming the node: a controller whose
features node (the first conv/fc layer) is not square (it reads their global average
pool), an input format with another master width than the network's, a network whose
master width is not the trainer's.
"""

from __future__ import annotations

import numpy as np
import torch

from ..net import network as nw
from .config import MASTER_BITS
from .qat import ActQuant, DQTModel


def _check(net: nw.Network, source: str):
    if net.arith.n != MASTER_BITS:
        raise ValueError(f"{source}: master width n = {net.arith.n}; the trainer trains at "
                         f"n = {MASTER_BITS}")
    names = net.compute_layers()
    if not names:
        raise ValueError(f"{source}: the network has no conv/fc layer to train")
    stem = net.graph[names[0]]
    if stem.shape[1] != stem.shape[2]:
        raise ValueError(f"{source}: layer {stem.name!r}: the controller reads the global "
                         f"average pool of the first conv/fc layer's output, which is "
                         f"{stem.shape[1]}x{stem.shape[2]}, not square")
    inp = next(iter(net.graph))
    bits = net.layers[inp.name].fmt.n
    if bits != MASTER_BITS:
        raise ValueError(f"{source}: layer {inp.name!r}: input format of {bits} bits, not "
                         f"{MASTER_BITS}")


def _start_act(act: ActQuant, fmt, where: str):
    top = (1 << act.bits) - 1
    if act.bits != fmt.n:
        raise ValueError(f"layer {where!r}: output format of {fmt.n} bits, the twin's is "
                         f"{act.bits}")
    with torch.no_grad():
        if act.relu:
            act.alpha.fill_(fmt.delta * top)
        else:
            act.lo.fill_(fmt.m)
            act.hi.fill_(fmt.m + fmt.delta * top)
            act.seen.fill_(True)


def model_from_network(net: nw.Network, *, widths, hidden=64, source=None) -> DQTModel:
    """The ``DQTModel`` of ``net`` started at its weights and formats (module docstring)."""
    source = source or f"network {net.name!r}"
    _check(net, source)
    fin = net.layers[next(iter(net.graph)).name].fmt
    out = net.layers[net.output_node()].fmt
    model = DQTModel(net.graph, widths=widths, n=net.arith.n,
                     view_rounding=net.arith.view_rounding, hidden=hidden,
                     in_fmt=(fin.m, fin.delta), out_bits=out.n)
    model.arith = net.arith  # export keeps the network's arithmetic (accumulator width, ...)
    for nd in net.graph:
        L = net.layers[nd.name]
        key = nd.name.replace(".", "_")
        if nd.op in ("conv", "fc"):
            op = model.ops[key]
            shape = (-1,) + (1,) * (L.w.ndim - 1)
            real = L.w_m.reshape(shape) + L.w_delta.reshape(shape) * L.w.astype(np.float64)
            with torch.no_grad():
                op.weight.copy_(torch.from_numpy(real.reshape(op.weight.shape)))
                op.bias.copy_(torch.from_numpy(np.asarray(L.bias, np.float64)))
            _start_act(op.act, L.fmt, nd.name)
        elif nd.op == "add":
            _start_act(model.adds[key], L.fmt, nd.name)
        elif nd.op == "concat":
            _start_act(model.cats[key], L.fmt, nd.name)
    return model
