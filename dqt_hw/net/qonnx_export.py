"""A dqt_hw network as a QONNX model (docs/networks.md, "Export to QONNX").

``to_qonnx(net, mix=None)`` returns an ``onnx.ModelProto`` whose quantizers are QONNX
``Quant`` nodes (domain ``qonnx.custom_op.general``), so that FINN, hls4ml or qonnx's own
tools can take a DQT network:

- every stored activation format (n, m, delta) of the input and of each conv/fc/add output
  is a ``Quant`` at bit width n, unsigned, not narrow, rounding ``ROUND`` (half to even,
  the requantization's default; the network's own rounding where it is another), scale ``delta`` and zero point ``-m / delta``: QONNX's
  ``(clip(round(x / s + z), 0, 2^n - 1) - z) s`` is then ``m + delta q``, the format's
  real value of code q;
- every conv/fc weight tensor is the float initializer of its real master weights
  (``w_m + w_delta * code`` per output channel) behind a per-channel ``Quant`` at n bits
  (scale ``w_delta``, zero point ``-w_m / w_delta``), which gives back the master codes;
- the bias is a float initializer; a layer with ReLU has a ``Relu`` before its ``Quant``;
  a concat is an ONNX ``Concat`` (axis 1) of its inputs' real values then a ``Quant`` in
  its format (each input requantized into it);
  max pooling and flatten are plain ONNX ops (they keep their input's format); an average
  pool is ``AveragePool`` then a ``Quant`` in its input's format (dqt_hw rounds the mean to
  a code, with the pool rounding).

With ``mix`` (a static width mix: one width, "b_a x b_w" pairs per layer, as
``Network.width_mix`` takes), each conv/fc layer run below n/n also gets the nested views
it computes on: a ``Quant`` of its input at b_a bits with scale ``delta 2^(n - b_a)`` (same
zero point in real terms) and of its weights at b_w bits with scale ``w_delta 2^(n - b_w)``,
rounding ``HALF_UP`` or ``FLOOR`` as the network's view rounding; the master tensors stay
at n bits, so the file says both what is stored and what each layer multiplies.

QONNX scales are float32. So that ``dqt-hw import`` of an export runs bit for bit like the
network (its integer constants come from the formats), the model's ``metadata_props``
carry, under ``dqt_hw.network``, the exact float64 formats, weight formats and biases, the
arithmetic settings and the candidate widths; the importer uses them only where they agree
with the Quant nodes at float32 precision (``onnx_import``). The per-input controller, if
the network has one, is not exported (a QONNX model is static).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..files import atomic_path
from .network import Network

DOMAIN = "qonnx.custom_op.general"
META_KEY = "dqt_hw.network"
META_VERSION = 1
OPSET = 13
_VIEW_ROUNDING = {"half_up": "HALF_UP", "floor": "FLOOR"}
_ROUNDING = {"half_even": "ROUND", "half_up": "HALF_UP", "half_away": "HALF_UP",
             "floor": "FLOOR"}  # on codes >= 0 (QONNX clamps before it rounds)


def _hex(a) -> list:
    return [float(v).hex() for v in np.asarray(a, np.float64).ravel()]


class _Emitter:
    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.inits = [], []

    def const(self, name, arr, dtype=np.float32):
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype), name))
        return name

    def node(self, op, inputs, out, name, domain="", **attrs):
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=name,
                                                     domain=domain, **attrs))
        return out

    def quant(self, x, out, name, scale, zeropt, bits, rounding="ROUND"):
        ins = [x, self.const(f"{name}.scale", scale), self.const(f"{name}.zeropt", zeropt),
               self.const(f"{name}.bitwidth", float(bits))]
        return self.node("Quant", ins, out, name, domain=DOMAIN, signed=0, narrow=0,
                         rounding_mode=rounding)


def _check(net: Network):
    for nm, L in net.layers.items():
        if L.fmt is not None and L.fmt.signed:
            raise ValueError(f"network {net.name!r}, layer {nm!r}: signed format: the QONNX "
                             f"export writes unsigned codes only")


def to_qonnx(net: Network, mix=None, *, batch: int = 1):
    """The QONNX ``ModelProto`` of ``net`` (module docstring); ``mix`` a static width mix
    or None (the master widths n/n); ``batch`` the input's batch size (1, as FINN and
    hls4ml take a model; 0: a symbolic batch axis 'N')."""
    from .onnx_read import import_onnx

    onnx = import_onnx()
    _check(net)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 0:
        raise ValueError(f"batch must be an integer >= 0 (0: symbolic), not {batch!r}")
    N = batch or "N"
    n = net.arith.n
    names = net.compute_layers()
    widths = dict(zip(names, map(tuple, net.width_mix(mix if mix is not None else n))))
    e = _Emitter(onnx)
    out_of = {}
    inp = next(iter(net.graph))
    C, H, W = inp.shape
    for nd in net.graph:
        L = net.layers[nd.name]
        if nd.op == "input":
            f = L.fmt
            out_of[nd.name] = e.quant(nd.name, f"{nd.name}.q", f"{nd.name}.quant", f.delta,
                                      -f.m / f.delta, f.n)
            continue
        src = [out_of[i] for i in nd.inputs]
        if nd.op in ("conv", "fc"):
            out_of[nd.name] = _compute(e, net, nd, src[0], widths[nd.name])
        elif nd.op == "add":
            y = e.node("Add", src, f"{nd.name}.sum", nd.name)
            out_of[nd.name] = _out_quant(e, nd, L.fmt, y, net.arith.rounding)
        elif nd.op == "concat":  # the inputs' real values, quantized in the concat's format
            y = e.node("Concat", src, f"{nd.name}.cat", nd.name, axis=1)
            out_of[nd.name] = _out_quant(e, nd, L.fmt, y, net.arith.rounding)
        elif nd.op == "maxpool":
            a = nd.attrs
            out_of[nd.name] = e.node("MaxPool", src, nd.name, nd.name,
                                     kernel_shape=[a["kernel"]] * 2, strides=[a["stride"]] * 2,
                                     pads=[a.get("padding", 0)] * 4)
        elif nd.op == "avgpool":  # the mean rounded to a code of the input's format
            a, f = nd.attrs, L.fmt
            y = e.node("AveragePool", src, f"{nd.name}.mean", nd.name,
                       kernel_shape=[a["kernel"]] * 2, strides=[a["stride"]] * 2)
            out_of[nd.name] = e.quant(y, nd.name, f"{nd.name}.quant", f.delta, -f.m / f.delta,
                                      f.n, _ROUNDING[net.arith.pool_rounding])
        elif nd.op == "flatten":
            out_of[nd.name] = e.node("Flatten", src, nd.name, nd.name, axis=1)
        else:  # pragma: no cover - the graph validates its ops
            raise ValueError(f"layer {nd.name!r}: op {nd.op} has no QONNX export")
    last = net.output_node()
    lc, lh, lw = net.graph[last].shape
    out_dims = {"fc": [N, lc], "flatten": [N, lc * lh * lw]}.get(net.graph[last].op,
                                                                 [N, lc, lh, lw])
    g = onnx.helper.make_graph(
        e.nodes, net.name,
        [onnx.helper.make_tensor_value_info(inp.name, onnx.TensorProto.FLOAT, [N, C, H, W])],
        [onnx.helper.make_tensor_value_info(out_of[last], onnx.TensorProto.FLOAT, out_dims)],
        initializer=e.inits)
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", OPSET),
                                                 onnx.helper.make_opsetid(DOMAIN, 1)],
                               producer_name="dqt_hw")
    m.ir_version = 8
    meta = {"version": META_VERSION, "name": net.name, "arith": net.arith.to_dict(),
            "mix": {nm: list(map(int, widths[nm])) for nm in names}, "layers": {}}
    for nm, L in net.layers.items():
        d = {}
        if L.fmt is not None and net.graph[nm].op in ("input", "conv", "fc", "add", "concat"):
            d["fmt"] = [L.fmt.n, float(L.fmt.m).hex(), float(L.fmt.delta).hex()]
        if L.w is not None:
            d.update(widths=list(L.widths), w_m=_hex(L.w_m), w_delta=_hex(L.w_delta),
                     bias=_hex(L.bias))
        if d:
            meta["layers"][nm] = d
    onnx.helper.set_model_props(m, {META_KEY: json.dumps(meta, sort_keys=True)})
    return m


def _out_quant(e, nd, f, y, rounding):
    if nd.attrs.get("relu", False):
        y = e.node("Relu", [y], f"{nd.name}.relu", f"{nd.name}.relu")
    return e.quant(y, nd.name, f"{nd.name}.quant", f.delta, -f.m / f.delta, f.n,
                   _ROUNDING[rounding])


def _compute(e, net: Network, nd, x, bw):
    """The nodes of one conv/fc layer at widths ``bw`` = (b_a, b_w); its output tensor."""
    L = net.layers[nd.name]
    n = net.arith.n
    b_a, b_w = int(bw[0]), int(bw[1])
    O = L.w.shape[0]
    shape = (O,) + (1,) * (L.w.ndim - 1)
    w_m, w_d = L.w_m.reshape(shape), L.w_delta.reshape(shape)
    real = w_m + w_d * L.w.astype(np.float64)
    w = e.const(f"{nd.name}.weight", real)
    wq = e.quant(w, f"{nd.name}.weight.q", f"{nd.name}.weight_quant", w_d, -w_m / w_d, n)
    rnd = _VIEW_ROUNDING[net.arith.view_rounding]
    if b_w < n:
        s = w_d * float(1 << (n - b_w))
        wq = e.quant(wq, f"{nd.name}.weight.view", f"{nd.name}.weight_view", s, -w_m / s, b_w,
                     rnd)
    if b_a < n:
        f = net.in_fmt(nd.name)
        s = f.delta * float(1 << (n - b_a))
        x = e.quant(x, f"{nd.name}.input.view", f"{nd.name}.input_view", s, -f.m / s, b_a, rnd)
    b = e.const(f"{nd.name}.bias", L.bias)
    if nd.op == "conv":
        a = nd.attrs
        y = e.node("Conv", [x, wq, b], f"{nd.name}.conv", nd.name,
                   kernel_shape=[a["kernel"]] * 2, strides=[a["stride"]] * 2,
                   pads=[a["padding"]] * 4, group=int(a.get("groups", 1)))
    else:
        if net.graph[nd.inputs[0]].op != "flatten":
            x = e.node("Flatten", [x], f"{nd.name}.flat", f"{nd.name}.flatten", axis=1)
        y = e.node("Gemm", [x, wq, b], f"{nd.name}.gemm", nd.name, transB=1)
    return _out_quant(e, nd, L.fmt, y, net.arith.rounding)


def export_file(net: Network, out, *, mix=None, batch: int = 1) -> Path:
    """Write ``to_qonnx(net, mix, batch=batch)`` to ``out`` atomically, after
    ``onnx.checker``."""
    from .onnx_read import import_onnx

    onnx = import_onnx()
    m = to_qonnx(net, mix, batch=batch)
    onnx.checker.check_model(m)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        onnx.save(m, str(tmp))
    return out
