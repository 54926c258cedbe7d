"""The compiled per-layer plan of a network, and the session that keeps it.

A ``Session`` holds, for one network, what the executor computes once and uses on every
call:

- the requantization of each layer at each width pair (``requant``);
- each conv / fc layer's ``model.FusedConv`` at each width pair (``fused_conv``; None
  where the layer needs the general path), and the controller's two layers as the 1 x 1
  convs they equal (``fused_dense``);
- each residual add's ``model.AddConsts`` (``add_consts``; None where its sum cannot be
  bounded below 2^62 from the input formats);
- the whole-network programs (``program``, compiled by ``program.compile_program`` from
  these very plans), the latest ``settings.PROGRAMS_KEPT``;
- the memo: the compute layers, their multiply-adds, the checked width mixes.

The layer-by-layer executor (``executor``) and the programs (``program``) both read these
plans, so a layer runs the same prepared kernel either way; neither module imports the
other.

``session(net)`` is the network's session, from a weak-keyed store: it lives as long as
the network, and starts afresh when the network's ``revision`` moves (``Network.validate``
moves it, e.g. after its constants change). Plans of a layer are also dropped when the
layer is given a new weight array, and a program when any of its layers is.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np

from .. import model, settings, spec
from . import program

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session(net) -> "Session":
    """The ``Session`` of ``net`` (made on first use, again after ``net.validate()``)."""
    s = _SESSIONS.get(net)
    if s is None or s.revision != net.revision:
        s = _SESSIONS[net] = Session(net.revision)
    return s


def pad_code(fmt: spec.Format, b: int) -> int:
    """The b-bit code of real 0 in ``fmt`` (clamped): 0 when m = 0."""
    if fmt.m == 0.0:
        return 0
    lo, hi = fmt.code_range(b)
    return int(np.clip(np.rint(-fmt.m / fmt.delta_at(b)), lo, hi))


_W_FMT: dict = {}


def conv_geometry(attrs: dict, pad: int) -> model.ConvGeometry:
    """The ``model.ConvGeometry`` of a conv node's attributes, padded with code ``pad``."""
    return model.ConvGeometry(attrs.get("stride", 1), attrs.get("padding", 0),
                              attrs.get("groups", 1), pad)


def w_fmt(n: int) -> spec.Format:
    """The format of n-bit master weight codes."""
    f = _W_FMT.get(n)
    if f is None:
        f = _W_FMT[n] = spec.Format(n)
    return f


class Session:
    """The plans of one network (see the module's docstring). Every method takes the
    network: a session holds no reference to it."""

    def __init__(self, revision: int):
        self.revision = revision
        self.layers: dict = {}  # (id(L), key) -> (L, L.w, plan)
        self.programs: OrderedDict = OrderedDict()
        self.memo: dict = {}

    def _kept(self, L, key, make):
        """The plan ``key`` of layer L, made by ``make()`` unless kept for L's weight
        array."""
        hit = self.layers.get((id(L), key))
        if hit is not None and hit[0] is L and hit[1] is L.w:
            return hit[2]
        v = make()
        self.layers[(id(L), key)] = (L, L.w, v)
        return v

    def requant(self, net, L, b_a: int, b_w: int) -> model.Requant:
        """``net.requant`` of layer L at (b_a, b_w)."""
        return self._kept(L, ("rq", b_a, b_w), lambda: net.requant(L.name, b_a, b_w, L))

    def fused_conv(self, net, nd, L, b_a: int, b_w: int, x_shape):
        """The ``model.FusedConv`` of conv / fc layer L (node nd) at (b_a, b_w) on inputs
        of shape x_shape (an fc as the 1 x 1 conv it equals, on (N, F, 1, 1)); None where
        it needs the general path. The master weight codes were validated when the
        network was built or loaded, so they are viewed once, here."""

        def make():
            a = net.arith
            if L.op == "fc" and tuple(x_shape[2:]) != (1, 1):
                return None  # fc input not flattened: the general path
            a_fmt = net.in_fmt(nd.name)
            at = nd.attrs
            w = L.w if L.op == "conv" else L.w.reshape(L.w.shape + (1, 1))
            return model.fused_conv(
                w, x_shape, a_fmt=a_fmt, w_fmt=w_fmt(a.n), b_a=b_a, b_w=b_w,
                view_rounding=a.view_rounding, acc_width=a.acc_width, overflow=a.overflow,
                requant=self.requant(net, L, b_a, b_w),
                geometry=conv_geometry(at, pad_code(a_fmt, b_a)))

        return self._kept(L, ("fused", b_a, b_w, tuple(x_shape[1:])), make)

    def fused_dense(self, net, lay, a_fmt: spec.Format, F: int):
        """A controller layer (at n/n) as the ``model.FusedConv`` of its 1 x 1 conv on F
        features; None where it needs the general path (which then raises or decides
        from the data)."""

        def make():
            a = net.arith
            if lay.w.ndim != 2 or lay.w.shape[1] != F:
                return None
            return model.fused_conv(
                np.ascontiguousarray(lay.w.reshape(lay.w.shape + (1, 1))), (1, F, 1, 1),
                a_fmt=a_fmt, w_fmt=w_fmt(a.n), b_a=a.n, b_w=a.n,
                view_rounding=a.view_rounding, acc_width=a.acc_width, overflow=a.overflow,
                requant=self.requant(net, lay, a.n, a.n))

        return self._kept(lay, ("dense", F), make)

    def add_consts(self, net, nd):
        """(``model.AddConsts``, output dtype) of the residual add at node nd, or None
        where its sum cannot be bounded below 2^62 from the input formats (the caller
        then takes ``model.dqt_add``, which decides from the data)."""
        L = net.layers[nd.name]

        def make():
            a = net.arith
            Ks, Es, S = spec.align(L.constants(a.const_bits))
            m1 = (1 << net.layers[nd.inputs[0]].fmt.n) - 1
            m2 = (1 << net.layers[nd.inputs[1]].fmt.n) - 1
            bound = ((abs(Ks[0]) * m1 << Es[0]) + (abs(Ks[1]) * m2 << Es[1])
                     + (abs(Ks[2]) << Es[2]))
            lo, hi = spec.code_range(L.fmt.n, False)
            if bound < (1 << 62) and max(Es[0], Es[1]) < 63 and 0 <= S <= 62:
                return (model.AddConsts(Ks[0], Es[0], Ks[1], Es[1], Ks[2] << Es[2], S,
                                        spec.ROUNDING_CODES[a.rounding], lo, hi),
                        model.code_dtype(lo, hi))
            return None

        return self._kept(L, "add", make)

    def concat_consts(self, net, nd):
        """Per input of the concat at node nd, the ``model.AddConsts`` of its
        requantization into the concat's format (the ``lincomb`` of [q, 1]: K2 = 0), or
        None where a sum cannot be bounded below 2^62 from the input formats."""
        L = net.layers[nd.name]

        def make():
            a = net.arith
            lo, hi = spec.code_range(L.fmt.n, False)
            out = []
            for i, cs in zip(nd.inputs, L.constants(a.const_bits)):
                Ks, Es, S = spec.align(cs)
                m = (1 << net.layers[i].fmt.n) - 1
                if not ((abs(Ks[0]) * m << Es[0]) + (abs(Ks[1]) << Es[1]) < (1 << 62)
                        and Es[0] < 63 and 0 <= S <= 62):
                    return None
                out.append(model.AddConsts(Ks[0], Es[0], 0, 0, Ks[1] << Es[1], S,
                                           spec.ROUNDING_CODES[a.rounding], lo, hi))
            return out

        return self._kept(L, "concat", make)

    def names(self, net) -> list:
        """The conv / fc layers in order."""
        if "names" not in self.memo:
            self.memo["names"] = net.compute_layers()
            self.memo["macs"] = np.array([r["macs"] for r in net.graph.layer_table()],
                                         np.int64)
        return self.memo["names"]

    def macs(self, net) -> np.ndarray:
        """Multiply-adds of each conv / fc layer per input."""
        self.names(net)
        return self.memo["macs"]

    def mix(self, net, width: int) -> np.ndarray:
        """``net.width_mix(width)`` of one width for all layers (checked once)."""
        mix = self.memo.get(("mix", width))
        if mix is None:
            mix = self.memo[("mix", width)] = net.width_mix(width)
        return mix

    def program(self, net, widths):
        """The network's ``program.Program`` at a static mix (an (L, 2) array) or with
        the controller (``"dynamic"``), compiled once and kept while every layer holds
        the same weight array; None where it needs the layer-by-layer path."""
        if not program.enabled():
            return None
        key = ("dynamic" if isinstance(widths, str)
               else tuple(map(tuple, np.asarray(widths).tolist())))
        cache = self.programs
        hit = cache.get(key)
        if hit is not None and (hit is False or hit.current(net)):
            cache.move_to_end(key)
            return hit or None
        prog = program.compile_program(net, widths, self)
        cache[key] = prog if prog is not None else False
        cache.move_to_end(key)
        while len(cache) > settings.PROGRAMS_KEPT:  # a sweep over many mixes keeps the latest
            cache.popitem(last=False)
        return prog
