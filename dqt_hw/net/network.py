"""A quantized network: the layer graph plus, per layer, its formats, candidate widths,
master weight codes and integer constants; and its versioned file format.

A network file is a pair ``NAME.json`` + ``NAME.npz`` (docs/networks.md):

- the JSON holds the format tag and version, the arithmetic settings (master width n,
  roundings, accumulator width and overflow mode, constant width), the graph (nodes in
  topological order), each node's output format (n, m, delta) and each conv/fc layer's
  candidate widths, the controller (if any), the SHA-256 of the ``.npz`` and provenance;
- the ``.npz`` holds the tensors: per conv/fc layer ``<layer>/w`` (master weight codes),
  ``<layer>/w_m`` and ``<layer>/w_delta`` (per-output-channel weight formats),
  ``<layer>/bias`` (the folded batch-norm bias, for reference), ``<layer>/K`` and
  ``<layer>/S`` (int64 (4, O): the requantization constants at the master widths); per
  residual add ``<layer>/K`` and ``<layer>/S`` (int64 (3,)).

The integer constants in the file are what the executor uses; the float formats and
biases document where they came from. ``load`` validates everything — the JSON by the
strict models of :mod:`dqt_hw.net.netfile`, each tensor's header before it is read
(:mod:`dqt_hw.net.tensors`), the values here — and refuses bad input with one
``ValueError`` (or ``TypeError``) line naming the file, the layer and the values.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import model, spec
from ..design import Design
from ..design.rules import VIEW_ROUNDINGS
from ..files import atomic_path, atomic_write_text
from . import netfile
from .graph import Graph, graph_to_dicts
from .netfile import FORMAT_TAG, FORMAT_VERSION
from .tensors import Tensors, tensors_path

_RENAMED_V1 = {"acc_bits": "acc_width"}

MAX_SHIFT = spec.MAX_INT_BITS - 2 * spec.MAX_MASTER_BITS
"""Largest |S| of a stored constant: the width switch moves a shift by up to
2 n (docs/arithmetic.md, section 3), and every moved shift stays within the ±4096 that
``round_shift`` takes."""

ACT_OPS = ("input", "conv", "fc", "add", "concat")  # ops whose output format is stored
PASS_OPS = ("maxpool", "avgpool", "flatten")  # ops whose output keeps the input format


_HW = Design()  # the default datapath: the defaults of the settings the hardware shares


@dataclass(frozen=True)
class Arith:
    """Network-wide arithmetic settings (docs/arithmetic.md). ``n``, ``acc_width``,
    ``overflow`` and ``const_bits`` (the requantizer's K width, ``kbits``) default to the
    default :class:`dqt_hw.design.Design`'s; the view rounding defaults to the paper's
    Eq. 4 (``half_up``), the one the networks are trained with. :meth:`for_design` gives
    the settings of a network run on a given datapath."""

    n: int = _HW.n
    view_rounding: str = "half_up"
    rounding: str = "half_even"  # requantization and the residual add
    pool_rounding: str = "half_even"
    acc_width: int = _HW.acc_width
    overflow: str = _HW.overflow
    const_bits: int = _HW.kbits

    @classmethod
    def for_design(cls, design: Design, **other) -> "Arith":
        """The settings a datapath ``design`` fixes (n, view rounding, accumulator width
        and overflow, constant width), with ``other`` (rounding, pool_rounding)."""
        return cls(n=design.n, view_rounding=design.view_rounding,
                   acc_width=design.acc_width, overflow=design.overflow,
                   const_bits=design.kbits, **other)

    def __post_init__(self):
        spec.check_width("master width n", self.n, spec.MIN_MASTER_BITS, spec.MAX_MASTER_BITS)
        for k in ("view_rounding", "rounding", "pool_rounding"):
            try:
                spec.check_rounding(getattr(self, k))
            except (TypeError, ValueError) as e:
                raise ValueError(f"arithmetic setting {k}: {e}") from None
        if self.view_rounding not in VIEW_ROUNDINGS:
            raise ValueError(
                f"view_rounding must be one of {VIEW_ROUNDINGS} (what the hardware view unit "
                f"implements), not {self.view_rounding!r}")
        spec.check_width("acc_width", self.acc_width, 2, model.MAX_MODEL_ACC_WIDTH)
        spec.check_overflow(self.overflow)
        spec.check_width("const_bits", self.const_bits, 2, spec.MAX_CONST_BITS)

    def to_dict(self):
        return dict(self.__dict__)


@dataclass
class Layer:
    """The parameters of one node. ``fmt`` is the node's output format (for pooling and
    flatten, the input's). Conv/fc layers have ``widths`` (candidate widths), ``w``
    (master codes: OIHW for conv, (O, C) for fc), per-channel weight formats ``w_m``,
    ``w_delta``, ``bias`` and the master constants ``K``, ``S`` (4, O). A residual add has
    ``K``, ``S`` (3,); a concat of I inputs ``K``, ``S`` (2, I), per input the (k1, k3) of
    its requantization into the concat's format (``concat_layer_constants``)."""

    name: str
    op: str
    fmt: spec.Format | None = None
    widths: tuple | None = None
    w: np.ndarray | None = None
    w_m: np.ndarray | None = None
    w_delta: np.ndarray | None = None
    bias: np.ndarray | None = None
    K: np.ndarray | None = None
    S: np.ndarray | None = None

    def constants(self, const_bits):
        """Per channel, the tuple of ``spec.Constant`` (k1..k4; k1..k3 for an add)."""
        if self.K.ndim == 1:
            return tuple(spec.Constant(int(k), int(s), const_bits) for k, s in zip(self.K, self.S))
        return tuple(
            tuple(spec.Constant(int(self.K[t, c]), int(self.S[t, c]), const_bits)
                  for t in range(self.K.shape[0]))
            for c in range(self.K.shape[1]))


def fmt_to_dict(f: spec.Format) -> dict:
    return {"n": f.n, "signed": f.signed, "m": f.m, "delta": f.delta}


@dataclass
class Controller:
    """The per-input width controller (docs/networks.md, "Controller").

    Features: the global average pool (integer, ``pool_rounding``) of the codes of node
    ``features`` (the stem output), one code per channel in that node's format. Then
    ``fc1`` (C -> hidden, ReLU) and ``fc2`` (hidden -> L*K logits), both fully connected
    layers run at 8/8 with the network's arithmetic; layer l's width is
    ``widths[argmax_k logits[l*K + k]]`` (ties go to the lowest k, the narrowest width).
    Layers not in ``layers`` run at ``static_widths[name]``.
    """

    features: str
    layers: tuple
    widths: tuple
    fc1: Layer
    fc2: Layer
    static_widths: dict

    @property
    def hidden(self) -> int:
        return self.fc1.w.shape[0]


class Network:
    """A quantized network: ``graph``, ``arith``, ``layers`` (name -> Layer) and an
    optional ``controller``. Construction validates everything (``validate``)."""

    def __init__(self, graph: Graph, arith: Arith, layers: dict, controller=None,
                 provenance=None):
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a dqt_hw.net.Graph, not {graph!r}")
        if not isinstance(arith, Arith):
            raise TypeError(f"arith must be an Arith, not {arith!r}")
        self.graph = graph
        self.arith = arith
        self.layers = dict(layers)
        self.controller = controller
        self.provenance = dict(provenance or {})
        self._fill_pass_formats()
        self.validate()

    @property
    def name(self) -> str:
        return self.graph.name

    def compute_layers(self) -> list[str]:
        return [nd.name for nd in self.graph.compute_layers()]

    def in_fmt(self, name: str) -> spec.Format:
        """The format of the (first) input of node ``name``."""
        return self.layers[self.graph[name].inputs[0]].fmt

    def output_node(self) -> str:
        return list(self.graph.nodes)[-1]

    # ---------------------------------------------------------------- validation
    def _fill_pass_formats(self):
        for nd in self.graph:
            if nd.op in PASS_OPS:
                if nd.name not in self.layers:
                    self.layers[nd.name] = Layer(nd.name, nd.op)
                src = self.layers.get(nd.inputs[0])
                self.layers[nd.name].fmt = src.fmt if src is not None else None

    def validate(self):
        # the executor's sessions (dqt_hw.net.plan) start afresh on a new revision
        self.revision = getattr(self, "revision", 0) + 1
        a = self.arith
        n = a.n
        for nd in self.graph:
            L = self.layers.get(nd.name)
            if L is None:
                raise ValueError(f"layer {nd.name!r}: no parameters (format, tensors) given")
            if nd.op in ACT_OPS:
                if not isinstance(L.fmt, spec.Format):
                    raise ValueError(f"layer {nd.name!r}: output format missing")
                want_n = L.fmt.n
                if nd.op != "fc" and want_n != n:
                    raise ValueError(
                        f"layer {nd.name!r}: output format has master width {want_n}, the "
                        f"network's is n = {n} (only an fc layer may emit wider codes)")
                if L.fmt.signed:
                    raise ValueError(f"layer {nd.name!r}: activation formats are unsigned "
                                     f"(the paper's form), not signed")
                if nd.attr("relu") and L.fmt.m != 0.0:
                    raise ValueError(
                        f"layer {nd.name!r}: a ReLU layer's output format must have m = 0 "
                        f"(ReLU is the clamp at code 0), not m = {L.fmt.m!r}")
            if nd.op in ("conv", "fc"):
                self._validate_compute(nd, L)
            elif nd.op == "add":
                self._check_consts(nd.name, L, (3,))
            elif nd.op == "concat":
                self._check_consts(nd.name, L, (2, len(nd.inputs)))
            elif nd.op == "avgpool" and nd.attr("padding", 0):
                raise ValueError(f"layer {nd.name!r}: average pooling with padding "
                                 f"{nd.attr('padding')} is not supported (no padding)")
        if self.controller is not None:
            self._validate_controller()

    def _check_widths(self, name, widths):
        if widths is None or not len(widths):
            raise ValueError(f"layer {name!r}: candidate widths missing")
        ws = []
        for b in widths:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
                raise TypeError(f"layer {name!r}: candidate width {b!r} is not an integer")
            if not 1 <= int(b) <= self.arith.n:
                raise ValueError(f"layer {name!r}: candidate width {int(b)} is outside "
                                 f"[1, {self.arith.n}] (master width n = {self.arith.n})")
            ws.append(int(b))
        if sorted(set(ws)) != ws:
            raise ValueError(f"layer {name!r}: candidate widths {ws} must be distinct and "
                             f"ascending")
        return tuple(ws)

    def _validate_compute(self, nd, L):
        L.widths = self._check_widths(nd.name, L.widths)
        info = self.graph.layer_info(nd)
        O = nd.shape[0]
        C = info["in_shape"][0] if nd.op == "conv" else info["taps"]
        if nd.op == "conv":
            g, k = info["groups"], info["kernel"]
            want = (O, C // g, k, k)
        else:
            want = (O, C)
        self._check_weights(nd.name, L, want, O)
        self._check_consts(nd.name, L, (4, O))

    def _check_weights(self, name, L, want, O):
        n = self.arith.n
        if L.w is None:
            raise ValueError(f"layer {name!r}: weights missing")
        if tuple(L.w.shape) != tuple(want):
            raise ValueError(f"layer {name!r}: weights have shape {tuple(L.w.shape)}, the "
                             f"graph needs {tuple(want)}")
        if not np.issubdtype(L.w.dtype, np.integer):
            raise TypeError(f"layer {name!r}: weight codes must be integers, not {L.w.dtype}")
        lo, hi = spec.code_range(n, False)
        if L.w.size and (L.w.min() < lo or L.w.max() > hi):
            bad = int(L.w.min()) if L.w.min() < lo else int(L.w.max())
            raise ValueError(f"layer {name!r}: weight code {bad} is outside the {n}-bit "
                             f"range [{lo}, {hi}]")
        L.w = np.ascontiguousarray(L.w, dtype=np.int64)
        for key in ("w_m", "w_delta", "bias"):
            v = getattr(L, key)
            if v is None or np.shape(v) != (O,):
                raise ValueError(f"layer {name!r}: {key} must have shape ({O},), not "
                                 f"{None if v is None else np.shape(v)}")
            v = np.asarray(v, dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"layer {name!r}: {key} holds a non-finite value")
            setattr(L, key, v)
        if np.any(L.w_delta <= 0):
            c = int(np.argmax(L.w_delta <= 0))
            raise ValueError(f"layer {name!r}: weight step w_delta[{c}] = {L.w_delta[c]!r} "
                             f"must be positive")

    def _check_consts(self, name, L, shape):
        bits = self.arith.const_bits
        for key in ("K", "S"):
            v = getattr(L, key)
            if v is None:
                raise ValueError(f"layer {name!r}: constants {key} missing")
            v = np.asarray(v)
            if tuple(v.shape) != tuple(shape):
                raise ValueError(f"layer {name!r}: constants {key} have shape "
                                 f"{tuple(v.shape)}, not {tuple(shape)}")
            if not np.issubdtype(v.dtype, np.integer):
                raise TypeError(f"layer {name!r}: constants {key} must be integers, not "
                                f"{v.dtype}")
            # in range before the cast to int64 (a uint64 2^64 - 1 must not become -1)
            lo, hi = spec.signed_range(bits) if key == "K" else (-MAX_SHIFT, MAX_SHIFT)
            bad = (v < lo) | (v > hi)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                t = idx[0] + 1
                ch = f" of channel {idx[1]}" if len(idx) > 1 else ""
                if key == "K":
                    raise ValueError(
                        f"layer {name!r}: constant K{t}{ch} = {int(v[idx])} does not fit its "
                        f"declared width of {bits} bits ([{lo}, {hi}])")
                raise ValueError(
                    f"layer {name!r}: shift S{t}{ch} = {int(v[idx])} (tensor "
                    f"'{name}/S') is outside [{lo}, {hi}], the shifts of the arithmetic "
                    f"(docs/arithmetic.md, section 3)")
            setattr(L, key, v.astype(np.int64))

    def _validate_controller(self):
        c = self.controller
        if c.features not in self.graph.nodes:
            raise ValueError(f"controller: features node {c.features!r} is not a layer "
                             f"(dangling edge)")
        H, W = self.graph[c.features].shape[1:]
        if H != W:
            raise ValueError(f"controller: features node {c.features!r} must be square, "
                             f"not {H}x{W}")
        names = set(self.compute_layers())
        order = {nd.name: i for i, nd in enumerate(self.graph)}
        K = len(c.widths)
        for lname in c.layers:
            if lname not in names:
                raise ValueError(f"controller: controlled layer {lname!r} is not a conv/fc "
                                 f"layer of the graph (dangling edge)")
            if order[lname] <= order[c.features]:
                raise ValueError(f"controller: controlled layer {lname!r} does not come after "
                                 f"the features node {c.features!r} (its widths are chosen from "
                                 f"that node's codes; it needs a static width)")
            lw = self.layers[lname].widths
            if tuple(lw) != tuple(c.widths):
                raise ValueError(f"layer {lname!r}: candidate widths {lw} differ from the "
                                 f"controller's {tuple(c.widths)}")
        for lname in names - set(c.layers):
            b = c.static_widths.get(lname)
            if b is None:
                raise ValueError(f"controller: layer {lname!r} is neither controlled nor "
                                 f"given a static width")
            self.check_width(lname, b)
        C = self.graph[c.features].shape[0]
        for lay, cin, cout in ((c.fc1, C, c.fc1.w.shape[0] if c.fc1.w is not None else 0),
                               (c.fc2, c.fc1.w.shape[0] if c.fc1.w is not None else 0,
                                len(c.layers) * K)):
            lay.widths = self._check_widths(lay.name, lay.widths or (self.arith.n,))
            self._check_weights(lay.name, lay, (cout, cin), cout)
            self._check_consts(lay.name, lay, (4, cout))
            if lay.fmt is None:
                raise ValueError(f"layer {lay.name!r}: output format missing")
        if c.fc1.fmt.m != 0.0:
            raise ValueError(f"layer {c.fc1.name!r}: a ReLU layer's output format must have "
                             f"m = 0, not m = {c.fc1.fmt.m!r}")

    # ---------------------------------------------------------------- widths
    def check_width(self, name: str, b):
        """(b_a, b_w) of layer ``name`` from ``b`` (one width or a pair), each in the
        layer's candidate widths."""
        pair = tuple(b) if isinstance(b, (tuple, list)) else (b, b)
        if len(pair) != 2:
            raise ValueError(f"layer {name!r}: widths must be one width or (b_a, b_w), "
                             f"not {b!r}")
        L = self.layers[name]
        out = []
        for x in pair:
            if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
                raise TypeError(f"layer {name!r}: width {x!r} is not an integer")
            if int(x) not in L.widths:
                raise ValueError(f"layer {name!r}: width {int(x)} is not in its candidate "
                                 f"widths {L.widths}")
            out.append(int(x))
        return tuple(out)

    def width_mix(self, widths) -> np.ndarray:
        """A static width mix as an int array (L, 2) of (b_a, b_w) per conv/fc layer, from
        one width for all, a dict name -> width or pair (every layer), or a list."""
        names = self.compute_layers()
        if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
            items = [(nm, widths) for nm in names]
        elif isinstance(widths, dict):
            unknown = sorted(set(widths) - set(names))
            if unknown:
                raise ValueError(f"width mix names {unknown}, which are not conv/fc layers")
            missing = [nm for nm in names if nm not in widths]
            if missing:
                raise ValueError(f"width mix gives no width for layers {missing}")
            items = [(nm, widths[nm]) for nm in names]
        elif isinstance(widths, (list, tuple, np.ndarray)):
            if len(widths) != len(names):
                raise ValueError(f"width mix has {len(widths)} entries for {len(names)} "
                                 f"conv/fc layers")
            items = list(zip(names, [tuple(w) if np.ndim(w) else int(w) for w in widths]))
        else:
            raise TypeError(f"widths must be an int, a dict or a list, not {widths!r}")
        return np.array([self.check_width(nm, w) for nm, w in items], dtype=np.int64)

    # ---------------------------------------------------------------- constants
    def requant(self, name: str, b_a: int, b_w: int, layer: Layer | None = None) -> model.Requant:
        """The requantization of layer ``name`` at (b_a, b_w): the master constants with
        their shifts moved (``Requant.switched``). (The executor keeps them, per session:
        ``dqt_hw.net.plan``.)"""
        L = layer if layer is not None else self.layers[name]
        base = model.Requant(L.constants(self.arith.const_bits), self.arith.rounding,
                             L.fmt.n, False, None)
        n = self.arith.n
        return base if (b_a, b_w) == (n, n) else base.switched(d_a=n - b_a, d_w=n - b_w,
                                                               d_out=0)

    def summary(self) -> str:
        rows = [self.graph.summary(), "",
                f"arithmetic: {self.arith.to_dict()}",
                f"{'layer':28s} {'op':7s} {'out format (n, m, delta)':>34s}  candidate widths"]
        for nd in self.graph:
            L = self.layers[nd.name]
            f = L.fmt
            fs = f"({f.n}, {f.m:+.4g}, {f.delta:.4g})" if f else "-"
            ws = ",".join(map(str, L.widths)) if L.widths else ""
            rows.append(f"{nd.name:28s} {nd.op:7s} {fs:>34s}  {ws}")
        if self.controller is not None:
            c = self.controller
            rows.append(f"controller: features = GAP({c.features}), hidden {c.hidden}, "
                        f"{len(c.layers)} controlled layers x widths {c.widths}; static "
                        f"{c.static_widths}")
        return "\n".join(rows)

    # ---------------------------------------------------------------- files
    def save(self, path) -> Path:
        """Write ``path`` (.json) and its ``.npz`` beside it, each atomically, the JSON
        last; returns the JSON path."""
        path = Path(path).with_suffix(".json")
        npz_path = path.with_suffix(".npz")
        arrays = {}
        nodes = graph_to_dicts(self.graph)
        for d in nodes:
            L = self.layers[d["name"]]
            if d["op"] in ACT_OPS:
                d["format"] = fmt_to_dict(L.fmt)
            if d["op"] in ("conv", "fc"):
                d["widths"] = list(L.widths)
            _put_tensors(arrays, L)
        ctrl = None
        if self.controller is not None:
            c = self.controller
            ctrl = {"features": c.features, "layers": list(c.layers), "widths": list(c.widths),
                    "static_widths": {k: (list(v) if isinstance(v, (tuple, list)) else int(v))
                                      for k, v in c.static_widths.items()},
                    "fc1": {"name": c.fc1.name, "format": fmt_to_dict(c.fc1.fmt)},
                    "fc2": {"name": c.fc2.name, "format": fmt_to_dict(c.fc2.fmt)}}
            _put_tensors(arrays, c.fc1)
            _put_tensors(arrays, c.fc2)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        data = buf.getvalue()
        doc = {"format": FORMAT_TAG, "version": FORMAT_VERSION,
               "contract": spec.CONTRACT_VERSION, "name": self.name,
               "arith": self.arith.to_dict(), "nodes": nodes, "controller": ctrl,
               "tensors": {"file": npz_path.name, "sha256": hashlib.sha256(data).hexdigest()},
               "provenance": self.provenance}
        path.parent.mkdir(parents=True, exist_ok=True)
        # each file whole or not at all (atomic rename); the JSON, written last, holds the
        # .npz's sha256, so a JSON beside another run's .npz is refused by load()
        with atomic_path(npz_path) as tmp:
            tmp.write_bytes(data)
        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
        return path


def _put_tensors(arrays, L: Layer):
    for key in ("w", "w_m", "w_delta", "bias", "K", "S"):
        v = getattr(L, key)
        if v is not None:
            if key == "w":
                v = np.asarray(v).astype(np.uint8 if v.max() < 256 and v.min() >= 0 else np.int32)
            arrays[f"{L.name}/{key}"] = v


def _fmt(d) -> spec.Format:
    return spec.Format(d.n, signed=d.signed, m=d.m, delta=d.delta)


def _layer_from(tensors: Tensors, name, op, fmt, widths, shapes=None):
    """The Layer ``name``; a conv/fc layer's tensors of ``shapes`` (w, O) read from
    ``tensors``, an add's constants."""
    L = Layer(name, op, fmt=fmt, widths=tuple(widths) if widths is not None else None)
    if op in ("conv", "fc"):
        w_shape, O = shapes
        L.w = tensors.get(name, "w", w_shape)
        for key in ("w_m", "w_delta", "bias"):
            setattr(L, key, tensors.get(name, key, (O,)))
        L.K = tensors.get(name, "K", (4, O))
        L.S = tensors.get(name, "S", (4, O))
    elif op == "add":
        L.K = tensors.get(name, "K", (3,))
        L.S = tensors.get(name, "S", (3,))
    elif op == "concat":
        L.K = tensors.get(name, "K", (2, shapes))
        L.S = tensors.get(name, "S", (2, shapes))
    return L


def _weight_shape(graph: Graph, nd):
    """(the weight shape, O) the graph gives conv/fc node ``nd``."""
    info = graph.layer_info(nd)
    O = nd.shape[0]
    if nd.op == "conv":
        return (O, info["in_shape"][0] // info["groups"], info["kernel"], info["kernel"]), O
    return (O, info["taps"]), O


def _controller_from(tensors: Tensors, c, graph: Graph, n: int) -> Controller:
    for key, name in (("fc1", c.fc1.name), ("fc2", c.fc2.name)):
        if name in graph.nodes or (key == "fc2" and name == c.fc1.name):
            raise ValueError(f"controller.{key}.name: {name!r} names another layer (each "
                             f"layer has its own tensors)")
    C = graph[c.features].shape[0] if c.features in graph.nodes else None
    fc1 = _layer_from(tensors, c.fc1.name, "fc", _fmt(c.fc1.format), [n], ((None, C), None))
    hidden = fc1.w.shape[0]
    for key in ("w_m", "w_delta", "bias"):  # now that the hidden width is known
        setattr(fc1, key, tensors.get(c.fc1.name, key, (hidden,)))
    fc1.K, fc1.S = (tensors.get(c.fc1.name, k, (4, hidden)) for k in ("K", "S"))
    out = len(c.layers) * len(c.widths)
    fc2 = _layer_from(tensors, c.fc2.name, "fc", _fmt(c.fc2.format), [n],
                      ((out, hidden), out))
    return Controller(c.features, tuple(c.layers), tuple(c.widths), fc1, fc2,
                      {k: (tuple(v) if isinstance(v, list) else v)
                       for k, v in c.static_widths.items()})


def load(path) -> Network:
    """Read and validate a network file (``.json`` with its ``.npz``): the JSON against
    :data:`dqt_hw.net.netfile.NetworkDoc`, the graph, every tensor's header against the
    graph, then the network; one ValueError line naming the file otherwise."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    source = f"network file {str(path)!r}"
    doc = netfile.check_network_doc(netfile.read_network_json(path, source=source),
                                    source=source)
    try:
        arith_doc = doc.arith.model_dump(exclude_unset=True)
        arith = Arith(**{_RENAMED_V1.get(k, k): v for k, v in arith_doc.items()})
        graph = netfile._graph(doc.nodes, doc.name or path.stem, source)
        tensors = Tensors(tensors_path(path, doc.tensors.file, source=source),
                          doc.tensors.sha256)
        layers = {}
        for d in doc.nodes:
            fmt = _fmt(d.format) if d.op in ACT_OPS else None
            shapes = (_weight_shape(graph, graph[d.name]) if d.op in ("conv", "fc")
                      else len(d.inputs) if d.op == "concat" else None)
            layers[d.name] = _layer_from(tensors, d.name, d.op, fmt, getattr(d, "widths", None),
                                         shapes)
        ctrl = None if doc.controller is None else \
            _controller_from(tensors, doc.controller, graph, arith.n)
        tensors.check_all_used()
        return Network(graph, arith, layers, ctrl, doc.provenance)
    except (TypeError, ValueError) as e:
        msg = str(e)
        if msg.startswith((source, "network tensors ")):
            raise
        raise type(e)(f"{source}: {msg}") from None


def default_path() -> Path:
    """The shipped, trained demo network (dqt_hw/net/data/resnet8_digits.json)."""
    return Path(__file__).parent / "data" / "resnet8_digits.json"


# ---------------------------------------------------------------------- builders


def layer_constants(net_arith: Arith, a_fmt, w_m, w_delta, out_fmt, taps, bias):
    """(K, S) int64 (4, O) of a conv/fc layer at the master widths, from its formats
    (``model.Requant.from_formats``)."""
    n = net_arith.n
    w_fmts = [spec.Format(n, m=float(m), delta=float(d)) for m, d in zip(w_m, w_delta)]
    rq = model.Requant.from_formats(a_fmt=a_fmt, b_a=n, w_fmts=w_fmts, b_w=n, out_fmt=out_fmt,
                                    b_out=out_fmt.n, taps=taps, rounding=net_arith.rounding,
                                    bias=np.asarray(bias, np.float64), bits=net_arith.const_bits)
    K = np.array([[k.K for k in ch] for ch in rq.constants], np.int64).T.copy()
    S = np.array([[k.S for k in ch] for ch in rq.constants], np.int64).T.copy()
    return K, S


def add_layer_constants(net_arith: Arith, f1, f2, fo):
    n = net_arith.n
    ks = spec.add_constants(f1, n, f2, n, fo, n)
    cs = [spec.quantize_constant(k, bits=net_arith.const_bits) for k in ks]
    return np.array([c.K for c in cs], np.int64), np.array([c.S for c in cs], np.int64)


def concat_layer_constants(net_arith: Arith, fmts, fo):
    """(K, S) int64 (2, I) of a concat of inputs in ``fmts``: per input, the (k1, k3) of
    its requantization into the concat's format ``fo`` (docs/arithmetic.md, section 6:
    q_o = clamp(round_shift(k1 q + k3)) with k1 = delta_i / delta_o, k3 = (m_i - m_o) /
    delta_o; k1 = 1, k3 = 0, the identity, where the formats are equal)."""
    n = net_arith.n
    K, S = [], []
    for f in fmts:
        k1, _, k3 = spec.add_constants(f, n, spec.Format(n, m=0.0, delta=f.delta), n, fo, n)
        cs = [spec.quantize_constant(k, bits=net_arith.const_bits) for k in (k1, k3)]
        K.append([c.K for c in cs])
        S.append([c.S for c in cs])
    return np.array(K, np.int64).T.copy(), np.array(S, np.int64).T.copy()


def random_network(graph: Graph, *, seed: int = 0, widths=(2, 4, 6, 8),
                   arith: Arith | None = None) -> Network:
    """A network on ``graph`` with random (He-initialized, per-channel quantized)
    weights and formats sized from the fan-in: for throughput and tests, not accuracy."""
    arith = arith or Arith()
    rng = np.random.default_rng(seed)
    n = arith.n
    layers = {}
    for nd in graph:
        if nd.op == "input":
            layers[nd.name] = Layer(nd.name, nd.op, fmt=spec.Format(n, m=0.0, delta=1 / 255))
        elif nd.op in PASS_OPS:
            layers[nd.name] = Layer(nd.name, nd.op, fmt=layers[nd.inputs[0]].fmt)
        elif nd.op in ("conv", "fc"):
            info = graph.layer_info(nd)
            O, taps = info["out_shape"][0], info["taps"]
            if nd.op == "conv":
                shape = (O, info["in_shape"][0] // info["groups"], info["kernel"], info["kernel"])
            else:
                shape = (O, taps)
            wf = rng.normal(0, math.sqrt(2 / taps), shape)
            w, fmts = spec.quantize_per_channel(wf, n, axis=0)
            w_m = np.array([f.m for f in fmts])
            w_d = np.array([f.delta for f in fmts])
            a_fmt = layers[nd.inputs[0]].fmt
            hi = 2.0 * a_fmt.delta * 255 * 0.5
            out = (spec.Format(n, m=0.0, delta=hi / 255) if nd.attr("relu")
                   else spec.Format(n, m=-hi, delta=2 * hi / 255))
            bias = rng.normal(0, 0.05, O)
            K, S = layer_constants(arith, a_fmt, w_m, w_d, out, taps, bias)
            layers[nd.name] = Layer(nd.name, nd.op, fmt=out, widths=tuple(widths), w=w,
                                    w_m=w_m, w_delta=w_d, bias=bias, K=K, S=S)
        elif nd.op == "add":
            f1, f2 = (layers[i].fmt for i in nd.inputs)
            hi = (f1.m + f1.delta * 255) + (f2.m + f2.delta * 255)
            fo = spec.Format(n, m=0.0, delta=hi / 255 / 2)
            K, S = add_layer_constants(arith, f1, f2, fo)
            layers[nd.name] = Layer(nd.name, nd.op, fmt=fo, K=K, S=S)
        elif nd.op == "concat":  # the inputs' widest range, so most inputs requantize
            fs = [layers[i].fmt for i in nd.inputs]
            lo = min(f.m for f in fs)
            hi = max(f.m + f.delta * 255 for f in fs)
            fo = spec.Format(n, m=lo, delta=(hi - lo) / 255)
            K, S = concat_layer_constants(arith, fs, fo)
            layers[nd.name] = Layer(nd.name, nd.op, fmt=fo, K=K, S=S)
    return Network(graph, arith, layers, None, {"random": True, "seed": seed})


def random_controller(net: Network, *, seed: int = 0, hidden: int = 64,
                      features: str | None = None) -> Network:
    """``net`` with a random controller (GAP of the first conv/fc layer's output, or of
    ``features``, every later conv/fc layer controlled, the others at n/n): for tests and
    throughput, not accuracy."""
    rng = np.random.default_rng(seed)
    names = net.compute_layers()
    feat = features or names[0]
    order = [nd.name for nd in net.graph]
    ctl = [nm for nm in names if order.index(nm) > order.index(feat)]
    widths = net.layers[ctl[0]].widths
    C = net.graph[feat].shape[0]
    a = net.arith
    fcs = []
    f_in = net.layers[feat].fmt
    for name, cin, cout, relu in (("controller.fc1", C, hidden, True),
                                  ("controller.fc2", hidden, len(ctl) * len(widths), False)):
        wf = rng.normal(0, math.sqrt(2 / cin), (cout, cin))
        w, fmts = spec.quantize_per_channel(wf, a.n, axis=0)
        w_m = np.array([f.m for f in fmts])
        w_d = np.array([f.delta for f in fmts])
        hi = f_in.delta * 255 * math.sqrt(cin) * 0.5
        fo = (spec.Format(a.n, m=0.0, delta=hi / 255) if relu
              else spec.Format(16, m=-hi, delta=2 * hi / 65535))
        bias = np.zeros(cout)
        K, S = layer_constants(a, f_in, w_m, w_d, fo, cin, bias)
        fcs.append(Layer(name, "fc", fmt=fo, widths=(a.n,), w=w, w_m=w_m, w_delta=w_d,
                         bias=bias, K=K, S=S))
        f_in = fo
    ctrl = Controller(feat, tuple(ctl), tuple(widths), fcs[0], fcs[1],
                      {nm: a.n for nm in names if nm not in ctl})
    return Network(net.graph, a, net.layers, ctrl, net.provenance)
