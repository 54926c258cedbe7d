"""Golden sets for one design: ``dqt-hw golden write --design D.toml --out DIR``.

The data comes from a layer of a network (its shape from the layer graph: a builder name
such as ``resnet18_cifar10`` or a JSON network file, ``dqt_hw.cost.workload.load_network``),
from a named built-in layer (:data:`BUILTINS`), or from seeded random codes of a given
shape. Layer data is a realistic layer (``cases.layer_inputs``: ReLU-like activations,
He-initialized weights quantized per output channel, a bias; the seed makes it
reproducible); random data is uniform random master codes with formats whose every
requantization term is nonzero (``cases.offset_layer``).

The constants are computed once, at the master widths (n/n -> n), and every width pair
(b_a, b_w) uses them switched by shifts alone: ``model.Requant.switched(d_a=n - b_a,
d_w=n - b_w, d_out=n - b_out)`` (docs/arithmetic.md section 7), never the master
constants unshifted. Everything a case records about the datapath (n, signedness,
accumulator width and overflow, view rounding, constant width) is the design's.

A set is written only when every case fits its own design (:func:`fit.fits`) and is
meaningful (:func:`fit.check_meaningful`); it is written beside ``DIR`` and renamed into
place, with a ``set.json`` naming the design and every case's manifest checksum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..design import Design, as_design
from . import fit
from .cases import (CaseData, LayerShape, build_case, constant_arrays, layer_inputs, layer_params,
                    offset_layer, requant_from_arrays)
from .io import write_set

__all__ = ["trained_source", "BUILTINS", "Builtin", "LayerShape", "default_pairs", "design_cases",
           "layer_data", "layer_source", "parse_pairs", "random_source", "builtin_source", "write_design_set"]

REQUANT_ROUNDING = "half_even"
"""Rounding of the requantization in written cases (the network executor's default)."""


@dataclass(frozen=True)
class Builtin:
    """A named built-in layer: a layer of a builder network and the seed of its data."""

    net: str
    layer: str
    seed: int
    about: str


BUILTINS = {
    "resnet18_l1c1": Builtin("resnet18_cifar10", "layer1.0.conv1", 2026,
                             "ResNet-18 CIFAR-10 layer1.0.conv1, 64 -> 64, 3x3, pad 1, 32x32, "
                             "K = 576 (the demo's layer)"),
    "resnet18_l2c1": Builtin("resnet18_cifar10", "layer2.0.conv1", 2026,
                             "ResNet-18 CIFAR-10 layer2.0.conv1, 64 -> 128, 3x3, stride 2, "
                             "32x32 -> 16x16, K = 576"),
    "resnet8_l1c1": Builtin("resnet8_digits", "layer1.0.conv1", 2026,
                            "the shipped ResNet-8 (digits) layer1.0.conv1, 16 -> 16, 3x3, "
                            "pad 1, 8x8, K = 144 (shape only: seeded data)"),
}
"""The built-in layers (``--builtin NAME``)."""


@dataclass(frozen=True)
class Source:
    """Where a set's data comes from: a layer shape and a seed, ``random`` for uniform
    random codes (``offset_layer``) instead of a realistic layer (``layer_inputs``), or
    ``network`` (a trained network file) for its own weights, constants and the layer's
    real input codes on the network's test inputs."""

    shape: LayerShape
    seed: int
    random: bool = False
    network: str | None = None
    layer: str | None = None
    data: str | None = None

    def describe(self) -> dict:
        s = self.shape
        data = ("uniform random codes" if self.random else
                f"trained network {self.network}, layer {self.layer}: its weights, "
                f"constants and real input codes of its first {s.batch} "
                f"{'input(s) of ' + self.data if self.data else 'test input(s)'}"
                if self.network else "realistic layer")
        return {"label": s.label, "kind": s.kind, "seed": self.seed, "data": data,
                "shape": {k: getattr(s, k) for k in ("C", "O", "H", "W", "k", "stride",
                                                     "padding", "groups", "batch")}}


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "layer"


def layer_source(net, layer: str, *, seed: int, label: str | None = None,
                 batch: int | None = None) -> Source:
    """The shape of ``layer`` of network ``net`` (a builder name, a JSON network file or
    a ``dqt_hw.net.Graph``) with seeded data; an fc layer becomes a dense layer over
    ``batch`` inputs (default 16)."""
    from ..cost.workload import load_network

    g = load_network(net)
    if layer not in g.nodes:
        near = [nd.name for nd in g.compute_layers()]
        raise ValueError(f"network {g.name!r} has no layer {layer!r} (conv/fc layers: "
                         f"{', '.join(near[:12])}{' ...' if len(near) > 12 else ''})")
    nd = g[layer]
    if nd.op not in ("conv", "fc"):
        raise ValueError(f"layer {layer!r} of {g.name!r} is a {nd.op}, not a conv or fc layer")
    info = g.layer_info(nd)
    C, H, W = info["in_shape"]
    O = info["out_shape"][0]
    lab = label or _label(f"{g.name}_{layer}")
    if nd.op == "fc":
        return Source(LayerShape(lab, "dense_layer", C * H * W, O, batch=batch or 16), seed)
    return Source(LayerShape(lab, "conv_layer", C, O, H, W, info["kernel"], info["stride"],
                             info["padding"], info["groups"], batch or 1), seed)


def trained_source(path, layer: str, *, inputs: int = 1, label: str | None = None,
                   data=None) -> Source:
    """A conv layer of a trained or imported network file (``resnet8_digits``: the shipped
    one): its master weight codes and constants, and its input codes on the network's first
    ``inputs`` test images (the integer executor at n/n up to the layer), or on the first
    ``inputs`` of the user's ``data`` file (``train.data.load_inputs``: a .npy of inputs
    or an .npz with ``x``), which a network not trained on the packaged digits needs."""
    from ..net import network as nw

    path = nw.default_path() if str(path) == "resnet8_digits" else Path(path)
    net = nw.load(path)
    if layer not in net.graph.nodes or net.graph[layer].op != "conv":
        convs = [nd.name for nd in net.graph if nd.op == "conv"]
        raise ValueError(f"network {net.name!r} has no conv layer {layer!r} (conv layers: "
                         f"{', '.join(convs[:12])}{' ...' if len(convs) > 12 else ''})")
    if not 1 <= inputs <= 64:
        raise ValueError(f"--inputs must be in [1, 64], not {inputs}")
    src = layer_source(net.graph, layer, seed=0, batch=inputs,
                       label=label or _label(f"{net.name}_{layer}_trained"))
    if data is None:
        name = net.provenance.get("data")
        if name is None or not str(name).startswith("digits"):
            why = f"was trained on {name!r}" if name else "records no data set"
            raise ValueError(f"network {net.name!r} {why}: give its inputs with --data X.npy "
                             f"(only networks on the packaged digits read their own)")
    return Source(src.shape, 0, network=str(path), layer=layer,
                  data=None if data is None else str(data))


def _trained_data(src: Source, d: Design):
    """(x (N, C, H, W), w, master Requant, None) of a trained network's layer."""
    from ..net import network as nw
    from ..net.executor import input_codes
    from ..net.plan import pad_code
    from ..net.tiles import layer_io
    from ..train import data as data_mod

    net = nw.load(src.network)
    if net.arith.n != d.n:
        raise ValueError(f"network {net.name!r} has master width n = {net.arith.n}, the "
                         f"design n = {d.n}")
    shape = tuple(next(iter(net.graph)).shape)
    if src.data is not None:
        x_in = data_mod.load_inputs(src.data, shape=shape)
        if len(x_in) < src.shape.batch:
            raise ValueError(f"data file {src.data!r} has {len(x_in)} inputs, fewer than "
                             f"--inputs {src.shape.batch}")
    else:
        x_in = data_mod.load(net.provenance.get("data", "digits")).x_test
    a_fmt = net.in_fmt(src.layer)
    pads = {pad_code(a_fmt, b) for b in d.widths}
    if pads != {0}:
        raise ValueError(f"layer {src.layer!r} pads with codes {sorted(pads)} (its input "
                         f"format's real 0 is not code 0): not supported by golden sets")
    codes = input_codes(net, x_in[:src.shape.batch])
    widths = np.full((len(codes), len(net.compute_layers()), 2), net.arith.n, np.int64)
    x, _ = layer_io(net, src.layer, codes, widths)
    return x, net.layers[src.layer].w, net.requant(src.layer, d.n, d.n), None


def builtin_source(name: str, *, seed: int | None = None) -> Source:
    """A built-in layer (:data:`BUILTINS`) with its own seed unless ``seed`` is given."""
    if name not in BUILTINS:
        raise ValueError(f"unknown built-in layer {name!r} (known: {', '.join(BUILTINS)})")
    b = BUILTINS[name]
    return layer_source(b.net, b.layer, seed=b.seed if seed is None else seed, label=name)


MAX_RANDOM_DIM = 1 << 16
"""Largest M, K or N of a random golden layer."""
MAX_RANDOM_MACS = 1 << 26
"""Most MACs (M*K*N) of a random golden layer: a set far larger than a simulation runs."""


def random_source(shape: str, *, seed: int) -> Source:
    """Seeded uniform random codes of a dense layer ``MxKxN`` (M inputs of K taps, N
    output channels)."""
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*", str(shape))
    if not m or min(int(v) for v in m.groups()) < 1:
        raise ValueError(f"a random shape is MxKxN (M inputs, K taps, N outputs, each >= 1), "
                         f"not {shape!r}")
    M, K, N = (int(v) for v in m.groups())
    if max(M, K, N) > MAX_RANDOM_DIM or M * K * N > MAX_RANDOM_MACS:
        raise ValueError(f"a random shape has each of M, K, N at most {MAX_RANDOM_DIM} and "
                         f"M*K*N at most {MAX_RANDOM_MACS} MACs, not {shape!r} "
                         f"({M * K * N} MACs)")
    return Source(LayerShape(f"random_{M}x{K}x{N}_s{seed}", "dense_layer", K, N, batch=M),
                  seed, random=True)


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """``"8x8,4x4"`` -> [(8, 8), (4, 4)]."""
    pairs = []
    for tok in str(text).replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)x(\d+)", tok)
        if not m:
            raise ValueError(f"width pairs are B_AxB_W, comma separated (e.g. 8x8,4x4), "
                             f"not {tok!r} in {text!r}")
        pair = (int(m.group(1)), int(m.group(2)))
        if pair in pairs:
            raise ValueError(f"width pair {tok} is given twice in {text!r}")
        pairs.append(pair)
    if not pairs:
        raise ValueError("no width pair given")
    return pairs


def default_pairs(design) -> list[tuple[int, int]]:
    """n x n, n x n/2, 3n/4 x 3n/4 and n/2 x n/2, those whose widths the design builds
    (the widest built pair if none)."""
    d = as_design(design)
    n = d.n
    want = [(n, n), (n, n // 2), (3 * n // 4, 3 * n // 4), (n // 2, n // 2)]
    out = []
    for p in want:
        if p not in out and p[0] in d.widths and p[1] in d.widths:
            out.append(p)
    return out or [(max(d.widths), max(d.widths))]


def layer_data(src: Source, d: Design):
    """(activation codes, weight codes, master Requant (n/n -> n), info) of a source for
    design ``d``; ``info`` is ``layer_inputs``' formats and float tensors (None for
    random codes). Dense layers: activations (M, K), weights (K, N)."""
    if src.network:
        return _trained_data(src, d)
    s, rng = src.shape, np.random.default_rng(src.seed)
    n = d.n
    if src.random:
        if d.signed:
            raise ValueError("--random writes unsigned codes (offset formats); the design is "
                             "signed: use a layer (--builtin or --net)")
        x, w, master = offset_layer(rng, M=s.batch, C=s.C, O=s.O, n=n, const_bits=d.kbits,
                                    rounding=REQUANT_ROUNDING)
        return x.reshape(s.batch, s.C), w.reshape(s.O, s.C).T.copy(), master, None
    x, w, K, S, f = layer_inputs(rng, s, n=n, w_signed=d.signed, a_signed=d.signed,
                                 const_bits=d.kbits)
    rq = requant_from_arrays(K, S, d.kbits, REQUANT_ROUNDING, n, d.signed)
    if s.kind == "dense_layer":
        return x.reshape(s.batch, s.C), w.reshape(s.O, s.C).T.copy(), rq, f
    return x, w, rq, f


def design_cases(design, src: Source, pairs=None, *, planes: bool = False) -> list[CaseData]:
    """One case per width pair (default :func:`default_pairs`) of ``src`` for ``design``,
    every pair with the master constants switched by shifts (``Requant.switched``);
    ``planes``: each case also holds the bit-plane form of its activation and weight codes
    (docs/arithmetic.md section 2.3)."""
    d = as_design(design)
    if d.component != "tile":
        raise ValueError(f"golden sets are written for a tile design, not a {d.component}")
    pairs = list(pairs) if pairs is not None else default_pairs(d)
    for b_a, b_w in pairs:
        for what, b in (("b_a", b_a), ("b_w", b_w)):
            if b not in d.widths:
                raise ValueError(f"width pair {b_a}x{b_w}: {what} = {b} is not one of the "
                                 f"design's widths {list(d.widths)}")
    x, w, master, _ = layer_data(src, d)
    n = d.n
    b_out = n if n in d.widths else max(d.widths)
    s = src.shape
    key = "x" if s.kind == "conv_layer" else "a"
    cases = []
    for b_a, b_w in pairs:
        rq = master.switched(d_a=n - b_a, d_w=n - b_w, d_out=n - b_out)
        K, S = constant_arrays(rq)
        params = layer_params(d, kind=s.kind, b_a=b_a, b_w=b_w, b_out=b_out,
                              rounding=master.rounding, seed=src.seed, stride=s.stride,
                              padding=s.padding, groups=s.groups, planes=planes)
        name = f"{s.label}_b{b_a}x{b_w}_w{d.acc_width}_{d.overflow}"
        cases.append(build_case(name, s.kind, params, {key: x, "w": w, "K": K, "S": S}))
    return cases


def check_cases(design, cases) -> None:
    """Refuse (ValueError) a case that does not fit ``design`` or is degenerate."""
    for c in cases:
        case = c.case()
        why = fit.fits(design, case)
        if why:
            raise ValueError(f"golden case {c.name!r} does not fit the design "
                             f"{as_design(design).name!r} it is written for: {'; '.join(why)}")
        fit.check_meaningful(case)


def write_design_set(design, out, src: Source, pairs=None, *,
                     planes: bool = False) -> tuple[Path, list[CaseData]]:
    """Compute, check (:func:`check_cases`) and write the set of ``src`` for ``design``
    into ``out`` (atomically, with ``set.json``); returns (path, cases). ``planes``: the
    cases carry the plane form of their code inputs."""
    d = as_design(design)
    cases = design_cases(d, src, pairs, planes=planes)
    check_cases(d, cases)
    path = write_set(out, cases, design=d.to_dict(), source=src.describe())
    return Path(path), cases
