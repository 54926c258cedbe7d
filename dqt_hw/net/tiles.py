"""A layer of a network mapped onto the accelerator tile's GEMM jobs, on real activations.

This is what the cocotb bench ``sim/tb/tb_net.py`` runs on the generated tile (issue 7,
"through the hardware"); everything here is plain Python/NumPy and is also checked
without a simulator (``tests/test_net_tiles.py``, through ``dqt_hw.hw.reference``).

- :func:`prefix_network`: the network cut after a node (every node up to it in
  topological order, no controller). The integer executor run on it returns that node's
  codes, so a layer's input and output codes come from the executor itself
  (:func:`layer_io`), with the widths of every earlier layer as in the full run.
- :func:`switching_inputs`: inputs ordered so that consecutive ones differ in their
  widths at a layer (e.g. the controller's), as far as the choices allow.
- :func:`layer_jobs`: one conv layer of one input at (b_a, b_w) as im2col GEMM blocks
  ``A[M x K] @ W[K x N]``, M <= R output pixels, N <= C output channels, K = C_in k k
  streamed (``A`` holds master activation codes, the conv's padding as the code of real 0,
  which is 0 for an input after a ReLU; ``W`` master weight codes), each with the layer's
  requantization constants at (b_a, b_w) (``Network.requant``: the master constants with
  shifts moved, no constant recomputed) turned into lane fields by
  ``dqt_hw.hw.reference.lane_constants``, and the expected output codes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .graph import Graph
from .network import Network

__all__ = ["prefix_network", "layer_io", "im2col", "layer_jobs", "dynamic_widths",
           "switching_inputs", "GemmBlock"]


def prefix_network(net: Network, node: str) -> Network:
    """``net`` cut after ``node``: its graph's nodes up to ``node`` (topological order), the
    same layers (copies), no controller. Its output node is ``node``."""
    names = list(net.graph.nodes)
    if node not in names:
        raise ValueError(f"layer {node!r} is not a node of network {net.name!r}")
    keep = names[:names.index(node) + 1]
    g = Graph([net.graph[nm] for nm in keep], name=f"{net.name}[:{node}]")
    layers = {nm: dataclasses.replace(net.layers[nm]) for nm in keep}
    return Network(g, net.arith, layers, None, {})


def dynamic_widths(net: Network, codes) -> tuple[list[str], np.ndarray]:
    """(layer names, (N, L, 2) widths) the controller chooses for ``codes``."""
    from .executor import execute

    r = execute(net, codes, widths="dynamic")
    return r.layers, r.widths


def switching_inputs(pairs, count: int) -> list[int]:
    """Indices of ``count`` inputs such that consecutive ones differ in ``pairs`` (N, 2) (an
    input's (b_a, b_w) at a layer) wherever possible: round robin over the distinct pairs,
    in order of first appearance, each pair's inputs in order. With the shipped controller
    at ``layer1.0.conv2`` (2/2 or 4/4 per test input) this alternates between the two."""
    groups: dict = {}
    for i, p in enumerate(map(tuple, np.asarray(pairs).tolist())):
        groups.setdefault(p, []).append(i)
    order, keys = [], list(groups)
    pos = {k: 0 for k in keys}
    while len(order) < count and any(pos[k] < len(groups[k]) for k in keys):
        for k in keys:
            if pos[k] < len(groups[k]) and len(order) < count:
                order.append(groups[k][pos[k]])
                pos[k] += 1
    return order


def layer_io(net: Network, layer: str, codes, widths) -> tuple[np.ndarray, np.ndarray]:
    """(input codes (N, C, H, W), output codes (N, O, Ho, Wo)) of conv ``layer`` on
    ``codes``, each input run through the integer executor alone with its own static mix:
    ``widths`` (N, L, 2) over ``net.compute_layers()`` (e.g. from :func:`dynamic_widths`,
    or a mix with the layer's width forced). The input is the layer's input node's output
    in a prefix run, the output the layer's in another."""
    from .executor import execute

    nd = net.graph[layer]
    if nd.op != "conv":
        raise ValueError(f"layer {layer!r} is a {nd.op}, not a conv")
    names = net.compute_layers()
    widths = np.asarray(widths, np.int64)
    codes = np.asarray(codes)
    if widths.shape != (len(codes), len(names), 2):
        raise ValueError(f"widths must have shape {(len(codes), len(names), 2)}, not "
                         f"{widths.shape}")
    src = nd.inputs[0]
    nets = {which: prefix_network(net, which) for which in (src, layer)}
    ins, outs = [], []
    for i in range(len(codes)):
        mix = {nm: tuple(int(v) for v in widths[i, j]) for j, nm in enumerate(names)}
        res = {}
        for which, pn in nets.items():
            pmix = {nm: mix[nm] for nm in pn.compute_layers()}
            r = execute(pn, codes[i:i + 1], widths=pmix if pmix else net.arith.n)
            res[which] = r.codes.reshape((1,) + tuple(pn.graph[which].shape))
        ins.append(res[src])
        outs.append(res[layer])
    return np.concatenate(ins), np.concatenate(outs)


def im2col(x, kernel, stride, padding, pad_code):
    """(N*Ho*Wo, C*k*k) patches of ``x`` (N, C, H, W), rows in (n, y, x) order, columns in
    the order of ``w.reshape(O, -1)`` (c, dy, dx)."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=pad_code)
    Ho = (H + 2 * padding - kernel) // stride + 1
    Wo = (W + 2 * padding - kernel) // stride + 1
    cols = np.empty((N, Ho, Wo, C, kernel, kernel), np.int64)
    for dy in range(kernel):
        for dx in range(kernel):
            cols[..., dy, dx] = xp[:, :, dy:dy + stride * Ho:stride,
                                   dx:dx + stride * Wo:stride].transpose(0, 2, 3, 1)
    return cols.reshape(N * Ho * Wo, C * kernel * kernel), (Ho, Wo)


@dataclasses.dataclass
class GemmBlock:
    """One tile job of a layer: rows ``i0:i1`` (output pixels) and columns ``j0:j1``
    (output channels); ``a`` (M, K) and ``w`` (K, N) master codes, ``lanes`` the lane
    fields per column (``dqt_hw.hw.reference.LaneConstants``), ``out`` (M, N) the
    executor's output codes."""

    i0: int
    i1: int
    j0: int
    j1: int
    a: np.ndarray
    w: np.ndarray
    lanes: list
    out: np.ndarray
    b_a: int
    b_w: int
    b_out: int
    rounding: str


def layer_jobs(net: Network, layer: str, x, out, b_a: int, b_w: int, *, rows: int,
               cols: int, kbits: int = 32, ebits: int = 5, sbits: int = 6) -> list[GemmBlock]:
    """The GEMM blocks of conv ``layer`` on one input's codes ``x`` (1, C, H, W) at
    (b_a, b_w), for an R x C tile, with the executor's output codes ``out`` (1, O, Ho, Wo).
    Column folds outside, row folds inside (the cycle model's order)."""
    from ..hw.reference import lane_constants

    nd = net.graph[layer]
    L = net.layers[layer]
    at = nd.attrs
    groups = at.get("groups", 1)
    if groups != 1:
        raise ValueError(f"layer {layer!r}: grouped conv ({groups} groups) is not mapped")
    a_fmt = net.in_fmt(layer)
    if a_fmt.m != 0.0:
        raise ValueError(f"layer {layer!r}: its input format has m = {a_fmt.m}; the tile's "
                         f"padding would need the master code of real 0 at b_a")
    b_a, b_w = net.check_width(layer, (b_a, b_w))
    A, (Ho, Wo) = im2col(np.asarray(x, np.int64), at["kernel"], at.get("stride", 1),
                         at.get("padding", 0), 0)
    Wm = L.w.reshape(L.w.shape[0], -1).T
    O = L.w.shape[0]
    expect = np.asarray(out, np.int64).reshape(O, Ho * Wo).T
    rq = net.requant(layer, b_a, b_w)
    lanes = [lane_constants(rq.constants[c], kbits=kbits, ebits=ebits, sbits=sbits)
             for c in range(O)]
    M = A.shape[0]
    jobs = []
    for j0 in range(0, O, cols):
        j1 = min(j0 + cols, O)
        for i0 in range(0, M, rows):
            i1 = min(i0 + rows, M)
            jobs.append(GemmBlock(i0, i1, j0, j1, A[i0:i1], Wm[:, j0:j1], lanes[j0:j1],
                                  expect[i0:i1, j0:j1], b_a, b_w, rq.b_out, rq.rounding))
    return jobs
