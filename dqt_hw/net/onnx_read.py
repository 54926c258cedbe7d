"""Reading an ONNX model into the layer graph's terms (docs/networks.md, "Your own model").

``read(path)`` loads and checks an ONNX file and returns a ``Parsed`` model: the input,
and a list of ``Op`` in topological order, each one future node of ``dqt_hw.net.Graph``
(``input``, ``conv``, ``fc``, ``add``, ``maxpool``, ``avgpool``, ``flatten``, ``concat``)
with its
float or quantized weights, its real bias and the Relu/Clip bounds folded into it;
``act_q`` holds the quantization (scale, zero point, type) of every activation tensor of
a QDQ model. Nothing here computes a format or a constant (``onnx_import`` does).

What is folded: a Conv/Gemm/MatMul with the Add of a constant bias, a BatchNormalization,
a Relu or a Clip that directly follow it (on a tensor used by nothing else and not
quantized in between); Identity and Dropout are dropped; QuantizeLinear/DequantizeLinear
pairs, and QONNX ``Quant`` nodes (``qonnx_read``), become the quantization of the tensor
they enclose. Everything else is refused
with a one-line ``ValueError`` naming the node, its op type and the attribute.

``onnx`` is imported only here, inside ``read`` (an optional dependency: the ``onnx``
extra).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..schema import read_bounded
from . import qonnx_read
from .graph import Graph, Node

MIN_OPSET = 13
"""The oldest default-domain opset read (per-channel QuantizeLinear/DequantizeLinear)."""

MAX_ONNX_BYTES = 1 << 31  # protobuf's own limit for one message
SUPPORTED = ("Conv", "Gemm", "MatMul", "Add", "Concat", "Relu", "Clip", "BatchNormalization",
             "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
             "Identity", "Dropout", "QuantizeLinear", "DequantizeLinear", "Quant (QONNX)")
_Q_OPS = ("QuantizeLinear", "DequantizeLinear", "Quant")
INSTALL = "pip install 'dqt_hw[onnx]' (or: pip install onnx onnxruntime)"

# ONNX TensorProto element types of the 8-bit codes, and their code ranges
_CODE_TYPES = {2: ("uint8", 0, 255), 3: ("int8", -128, 127)}


def import_onnx():
    """The ``onnx`` module, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"importing an ONNX model needs the onnx package: {INSTALL}") from None
    return onnx


@dataclass
class QConst:
    """A quantized constant (a DequantizeLinear of an initializer): ``q`` the integer
    codes as stored, ``scale`` and ``zp`` (scalars or per ``axis``), ``type`` the code
    type name ('uint8', 'int8', 'int32'), ``qmin`` its lowest code."""

    q: np.ndarray
    scale: np.ndarray
    zp: np.ndarray
    axis: int
    type: str
    qmin: int

    def real(self) -> np.ndarray:
        s, z = self.scale, self.zp
        if s.ndim == 1 and self.q.ndim > 1:
            shape = [1] * self.q.ndim
            shape[self.axis] = -1
            s, z = s.reshape(shape), z.reshape(shape)
        return s.astype(np.float64) * (self.q.astype(np.float64) - z)


@dataclass
class Op:
    """One future graph node. ``inputs`` are the names of the ops it reads; ``out`` the
    ONNX tensor it produces (after folding); conv/fc carry either float weights ``w``
    (float model) or ``wq`` (a QConst, QDQ model), the real ``bias`` and the folded
    batch norm's per-channel factor ``bn`` (weights times ``bn``); ``clip`` the (lo, hi)
    of a folded Relu/Clip; ``affine`` (one real weight per channel) marks a depthwise
    conv made from an average pool (weights 1/(k*k)) or a batch norm (weights
    gamma/sqrt(var+eps)) of a QDQ model that quantizes its output with a quantization of
    its own: the result is then rounded once, into that quantization; ``onnx`` the ONNX
    node names folded into it."""

    name: str
    op: str
    inputs: tuple
    out: str
    attrs: dict = field(default_factory=dict)
    w: np.ndarray | None = None
    wq: QConst | None = None
    bias: np.ndarray | None = None
    bn: np.ndarray | None = None
    clip: tuple | None = None
    affine: np.ndarray | None = None
    onnx: list = field(default_factory=list)
    view: tuple | None = None  # (b_a, b_w) of the nested views it reads (export --mix)


@dataclass
class Parsed:
    path: Path
    model: object  # onnx.ModelProto
    opset: int
    input: str
    shape: tuple  # (C, H, W)
    ops: list
    act_q: dict  # tensor -> (scale, zero point, type name, qmin)
    quantized: bool

    def graph(self, name: str) -> Graph:
        return Graph([Node(o.name, o.op, o.inputs, o.attrs) for o in self.ops], name=name)


def _where(nd) -> str:
    return f"node {nd.name or '(unnamed)'!r} ({nd.op_type})"


def _attrs(onnx, nd) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in nd.attribute}


def _load(onnx, path: Path):
    data = read_bounded(path, what="ONNX model", max_bytes=MAX_ONNX_BYTES)
    from google.protobuf.message import DecodeError

    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ValueError(f"ONNX model {str(path)!r} is not an ONNX file (truncated or another "
                         f"format: {e})") from None
    if not m.graph.node or not m.opset_import:
        raise ValueError(f"ONNX model {str(path)!r} is not an ONNX file (no graph nodes or no "
                         f"opset; truncated or another format, {len(data)} bytes)")
    try:
        onnx.checker.check_model(m)
    except Exception as e:  # noqa: BLE001  (onnx raises its own ValidationError types)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"ONNX model {str(path)!r} is not a valid ONNX model: {first}") from None
    return m


def _opset(m, path) -> int:
    v = None
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            v = int(o.version)
    if v is None or v < MIN_OPSET:
        raise ValueError(f"ONNX model {str(path)!r}: opset {v} is too old (dqt_hw reads opset "
                         f"{MIN_OPSET} or later: per-channel QuantizeLinear/DequantizeLinear)")
    return v


def _input(m, path, consts):
    ins = [i for i in m.graph.input if i.name not in consts]
    if len(ins) != 1:
        raise ValueError(f"ONNX model {str(path)!r}: {len(ins)} graph inputs "
                         f"({[i.name for i in ins]}); dqt_hw imports a model with one input")
    i = ins[0]
    tt = i.type.tensor_type
    if tt.elem_type != 1:
        raise ValueError(f"ONNX model {str(path)!r}: input {i.name!r} has element type "
                         f"{tt.elem_type}, not float (1)")
    dims = list(tt.shape.dim)
    if len(dims) != 4:
        raise ValueError(f"ONNX model {str(path)!r}: input {i.name!r} has {len(dims)} "
                         f"dimensions, not 4 (N, C, H, W)")
    shape = []
    for ax, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value < 1:
            sym = d.dim_param if d.HasField("dim_param") else "unknown"
            raise ValueError(f"ONNX model {str(path)!r}: input {i.name!r} has a dynamic "
                             f"dimension {sym!r} at axis {ax} (dqt_hw needs static C, H, W; "
                             f"only the batch axis may be dynamic)")
        shape.append(int(d.dim_value))
    return i.name, tuple(shape)


def _consts(onnx, m) -> dict:
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for nd in m.graph.node:
        if nd.op_type == "Constant":
            a = _attrs(onnx, nd)
            if "value" not in a:
                raise ValueError(f"{_where(nd)}: only a tensor 'value' is supported, not "
                                 f"{sorted(a)}")
            out[nd.output[0]] = numpy_helper.to_array(a["value"])
    return out


def _scale_zp(nd, consts, dtype_from=None):
    """(scale float64 array, zero point int64 array, type name, qmin) of a
    Quantize/DequantizeLinear node, checked."""
    if len(nd.input) < 2 or nd.input[1] not in consts:
        raise ValueError(f"{_where(nd)}: the scale must be a constant (dynamic scales are not "
                         f"supported)")
    s = np.asarray(consts[nd.input[1]], dtype=np.float64)
    bad = ~(np.isfinite(s) & (s > 0))
    if bad.any():
        i = int(np.argmax(bad.ravel()))
        raise ValueError(f"{_where(nd)}: scale {nd.input[1]!r}[{i}] = {float(s.ravel()[i])!r} is not "
                         f"a positive finite number")
    if len(nd.input) > 2 and nd.input[2]:
        if nd.input[2] not in consts:
            raise ValueError(f"{_where(nd)}: the zero point must be a constant")
        zarr = np.asarray(consts[nd.input[2]])
        ztype = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8",
                 np.dtype(np.int32): "int32"}.get(zarr.dtype, str(zarr.dtype))
    else:
        zarr, ztype = np.zeros(s.shape, np.int64), "uint8"
    tname = dtype_from or ztype
    types = {"uint8": (0, 255), "int8": (-128, 127), "int32": (-(1 << 31), (1 << 31) - 1)}
    if tname not in types:
        raise ValueError(f"{_where(nd)}: code type {tname} is not an 8-bit type (uint8, int8): "
                         f"dqt_hw imports at master width n = 8")
    lo, hi = types[tname]
    z = zarr.astype(np.int64)
    if z.size and (z.min() < lo or z.max() > hi):
        bad_z = int(z.min()) if z.min() < lo else int(z.max())
        raise ValueError(f"{_where(nd)}: zero point {bad_z} is outside the {tname} code range "
                         f"[{lo}, {hi}]")
    if z.shape != s.shape and z.size != 1:
        raise ValueError(f"{_where(nd)}: zero point shape {z.shape} differs from the scale's "
                         f"{s.shape}")
    return s, np.broadcast_to(z, s.shape).copy(), tname, lo


class _Reader:
    def __init__(self, onnx, m, path):
        self.onnx, self.m, self.path = onnx, m, path
        self.consts = _consts(onnx, m)
        self.alias: dict = {}
        self.qconst: dict = {}
        self.act_q: dict = {}
        self.prod: dict = {}  # tensor -> Op
        self.ops: list = []
        self.names: set = set()
        self.uses: dict = {}
        self.outputs: set = set()
        self.batch = None  # the input's static batch size, where it has one
        self.aview: dict = {}  # tensor -> (b, rounding): a nested view of an activation
        self.wview: dict = {}  # tensor -> (b, rounding): a nested view of weights

    def res(self, t):
        while t in self.alias:
            t = self.alias[t]
        return t

    def uname(self, raw, fallback):
        base = re.sub(r"[^A-Za-z0-9_.\-]", ".", raw or fallback).strip(".") or fallback
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    # ------------------------------------------------------------ QDQ pairs
    def qdq(self, nodes):
        qout = {}
        for nd in nodes:
            a = _attrs(self.onnx, nd)
            if nd.op_type == "Quant":
                self.quant(nd, a)
            elif nd.op_type == "QuantizeLinear":
                s, z, t, qmin = _scale_zp(nd, self.consts)
                x = nd.input[0]
                if x in self.consts:
                    v = np.asarray(self.consts[x], np.float64)
                    qc = QConst(np.zeros(0), s, z, int(a.get("axis", 1)), t, qmin)
                    sh = [1] * v.ndim
                    if s.ndim == 1 and v.ndim > 1:
                        sh[qc.axis] = -1
                    q = np.rint(v / s.reshape(sh) if s.ndim else v / s) + z.reshape(sh)
                    qc.q = np.clip(q, qmin, qmin + 255).astype(np.int64)
                    self.qconst[nd.output[0]] = qc
                else:
                    if s.size != 1:
                        raise ValueError(f"{_where(nd)}: activation {x!r} is quantized per "
                                         f"channel ({s.size} scales); dqt_hw needs one scale "
                                         f"per activation tensor")
                    qout[nd.output[0]] = (x, float(s.ravel()[0]), int(z.ravel()[0]), t, qmin)
            elif nd.op_type == "DequantizeLinear":
                src = nd.input[0]
                a_axis = int(a.get("axis", 1))
                if src in self.consts:
                    arr = np.asarray(self.consts[src])
                    tname = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8",
                             np.dtype(np.int32): "int32"}.get(arr.dtype, str(arr.dtype))
                    s, z, t, qmin = _scale_zp(nd, self.consts, dtype_from=tname)
                    self.qconst[nd.output[0]] = QConst(arr.astype(np.int64), s, z, a_axis, t,
                                                       qmin)
                elif src in self.qconst:
                    self.qconst[nd.output[0]] = self.qconst[src]
                elif src in qout:
                    x, s0, z0, t0, qmin = qout[src]
                    s, z, t, _ = _scale_zp(nd, self.consts)
                    if s.size != 1 or (float(s.ravel()[0]), int(z.ravel()[0]), t) != (s0, z0, t0):
                        raise ValueError(
                            f"{_where(nd)}: dequantizes {x!r} with scale {s.ravel().tolist()} "
                            f"and zero point {z.ravel().tolist()} ({t}), not the "
                            f"QuantizeLinear's {s0} and {z0} ({t0})")
                    x = self.res(x)
                    q = (s0, z0, t0, qmin)
                    old = self.act_q.get(x)
                    if old is not None and old != q:
                        raise ValueError(f"{_where(nd)}: tensor {x!r} is quantized twice, with "
                                         f"(scale, zero point) {old[:2]} and {q[:2]}")
                    self.act_q[x] = q
                    self.alias[nd.output[0]] = x
                else:
                    raise ValueError(f"{_where(nd)}: its input {src!r} comes from neither a "
                                     f"QuantizeLinear nor a constant")
        for nd in self.m.graph.node:
            if nd.op_type != "DequantizeLinear":
                for i in nd.input:
                    if i in qout:
                        raise ValueError(f"{_where(nd)}: reads the quantized codes {i!r} "
                                         f"directly (only a DequantizeLinear may)")

    def quant(self, nd, a):
        """A QONNX Quant node (``qonnx_read``): a quantized constant, or the quantization
        of the activation it reads."""
        x = nd.input[0] if nd.input else ""
        if x in self.qconst:  # a Quant of quantized weights: their nested view?
            qc = self.qconst[x]
            v = qonnx_read.view(nd, a, self.consts, _where(nd), qc.scale, qc.zp, qc.qmin, 8)
            if v is not None:
                self.qconst[nd.output[0]] = qc
                self.wview[nd.output[0]] = v
                return
        if x in self.consts or x in self.qconst:
            v = self.qconst[x].real() if x in self.qconst else self.consts[x]
            got = qonnx_read.constant(v, nd, a, self.consts, _where(nd))
            if got[0] == "real":
                self.consts[nd.output[0]] = got[1]
            else:
                self.qconst[nd.output[0]] = QConst(*got[1:])
            return
        q0 = self.viewed(x)
        if q0 is not None:  # a Quant of a quantized tensor: its nested view?
            v = qonnx_read.view(nd, a, self.consts, _where(nd), q0[0], q0[1], q0[3],
                                q0[4] if len(q0) > 4 else 8)
            if v is not None and (len(q0) < 5 or q0[4] == 8):
                self.alias[nd.output[0]] = self.res(x)
                self.aview[nd.output[0]] = v
                return
        q = qonnx_read.activation(nd, a, self.consts, _where(nd),
                                  is_output=nd.output[0] in {o.name for o in self.m.graph.output})
        x = self.res(x)
        old = self.act_q.get(x)
        if old is not None and old != q:
            raise ValueError(f"{_where(nd)}: tensor {x!r} is quantized twice, with "
                             f"(scale, zero point) {old[:2]} and {q[:2]}")
        self.act_q[x] = q
        self.alias[nd.output[0]] = x

    def viewed(self, x):
        """The quantization of the Quant output ``x`` reads (through max pools and
        flattens, which keep their input's codes), or None."""
        if not hasattr(self, "_onnx_prod"):
            self._onnx_prod = {o: nd for nd in self.m.graph.node for o in nd.output}
        prod = self._onnx_prod
        while True:
            if x in self.alias and self.res(x) in self.act_q:
                return self.act_q[self.res(x)]
            p = prod.get(x)
            if p is None or p.op_type not in ("MaxPool", "Flatten", "Reshape", "Identity"):
                return None
            x = p.input[0]

    # ------------------------------------------------------------ helpers
    def act(self, nd, t):
        t = self.res(t)
        if t not in self.prod:
            what = "a constant" if (t in self.consts or t in self.qconst) else "no layer's output"
            raise ValueError(f"{_where(nd)}: input {t!r} is {what}; dqt_hw needs an activation "
                             f"from the graph input here")
        return self.prod[t]

    def const(self, nd, t, what):
        t = self.res(t)
        if t in self.qconst:
            return self.qconst[t]
        if t in self.consts:
            return np.asarray(self.consts[t])
        raise ValueError(f"{_where(nd)}: {what} {t!r} is not a constant (computed weights are "
                         f"not supported)")

    def weight(self, nd, t, quantized):
        v = self.const(nd, t, "weight")
        if quantized and not isinstance(v, QConst):
            raise ValueError(f"{_where(nd)}: weight {t!r} is not quantized (a QDQ model needs "
                             f"DequantizeLinear weights)")
        if isinstance(v, QConst):
            if v.type not in ("uint8", "int8"):
                raise ValueError(f"{_where(nd)}: weight {t!r} has code type {v.type}, not an "
                                 f"8-bit type")
            return v
        return np.asarray(v, np.float64)

    def bias(self, nd, t, O):
        if not t:
            return np.zeros(O)
        v = self.const(nd, t, "bias")
        b = np.asarray(v.real() if isinstance(v, QConst) else v, np.float64).reshape(-1)
        if b.size not in (1, O):
            raise ValueError(f"{_where(nd)}: bias {t!r} has {b.size} values, not {O}")
        return np.broadcast_to(b, (O,)).copy()

    def foldable(self, t, what):
        """The op whose output tensor ``t`` a following node may fold into, or None."""
        t = self.res(t)
        P = self.prod.get(t)
        if (P is None or P.out != t or t in self.act_q or self.uses.get(t, 0) != 1
                or t in self.outputs):
            return None
        if what == "clip":
            return P if P.op in ("conv", "fc", "add") and P.clip is None else None
        return P if P.op in ("conv", "fc") and P.clip is None else None

    def emit(self, op, onnx_name):
        op.onnx.append(onnx_name)
        self.ops.append(op)
        self.prod[op.out] = op
        return op

    def moved(self, P, nd):
        P.onnx.append(nd.name)
        P.out = nd.output[0]
        self.prod[P.out] = P

    def shape(self, op):
        """The (C, H, W) of op's output, by the graph's own shape inference."""
        return Graph([Node(o.name, o.op, o.inputs, o.attrs) for o in self.ops])[op.name].shape


def clip_subsumed(q, lo: float, hi: float) -> bool:
    """Whether Clip(lo, hi) changes no code of a tensor then quantized with ``q`` = (scale,
    zero point, type, qmin[, bits: 8]): QuantizeLinear maps lo to the lowest code or below
    and hi to the highest or above."""
    s, z, _, qmin = q[:4]
    top = qmin + (1 << (q[4] if len(q) > 4 else 8)) - 1
    lo_code = -np.inf if lo == -np.inf else np.rint(lo / s) + z
    hi_code = np.inf if hi == np.inf else np.rint(hi / s) + z
    return bool(lo_code <= qmin and hi_code >= top)


def _square(nd, key, vals, n=2):
    vals = list(vals)
    if len(vals) != n or len(set(vals)) != 1:
        raise ValueError(f"{_where(nd)}: attribute {key} = {vals} is not supported (dqt_hw.net "
                         f"layers have square kernels, equal strides and equal pads)")
    return int(vals[0])


def _spatial(nd, a, k_default=None):
    """(kernel, stride, padding) of a Conv or pool node, refused where not square."""
    for key in ("dilations",):
        if key in a and any(int(d) != 1 for d in a[key]):
            raise ValueError(f"{_where(nd)}: attribute dilations = {list(a[key])} is not "
                             f"supported (only 1)")
    ap = a.get("auto_pad", b"NOTSET")
    ap = ap.decode() if isinstance(ap, bytes) else str(ap)
    if ap not in ("NOTSET", "VALID", ""):
        raise ValueError(f"{_where(nd)}: attribute auto_pad = {ap!r} is not supported (give "
                         f"explicit pads)")
    if int(a.get("ceil_mode", 0)):
        raise ValueError(f"{_where(nd)}: attribute ceil_mode = 1 is not supported")
    if int(a.get("storage_order", 0)):
        raise ValueError(f"{_where(nd)}: attribute storage_order = 1 is not supported")
    k = _square(nd, "kernel_shape", a.get("kernel_shape", k_default or []))
    s = _square(nd, "strides", a.get("strides", [1, 1]))
    p = _square(nd, "pads", a.get("pads", [0, 0, 0, 0]), 4)
    return k, s, p


def read(path) -> Parsed:
    """Load and check the ONNX model at ``path``; the ops of the graph it maps onto."""
    onnx = import_onnx()
    path = Path(path)
    m = _load(onnx, path)
    opset = _opset(m, path)
    r = _Reader(onnx, m, path)
    x, shape = _input(m, path, r.consts)
    d0 = next(i for i in m.graph.input if i.name == x).type.tensor_type.shape.dim[0]
    r.batch = int(d0.dim_value) if d0.HasField("dim_value") else None
    nodes = [nd for nd in m.graph.node if nd.op_type != "Constant"]
    for nd in nodes:
        if nd.op_type == "Quant" and nd.domain in qonnx_read.DOMAINS:
            continue
        if nd.op_type == "Quant":
            raise ValueError(f"{_where(nd)}: a Quant node of domain {nd.domain!r}, not QONNX's "
                             f"({', '.join(qonnx_read.DOMAINS)})")
        if nd.domain not in ("", "ai.onnx"):
            raise ValueError(f"{_where(nd)}: op {nd.domain}.{nd.op_type} is not supported "
                             f"(supported: {', '.join(SUPPORTED)})")
    qdq = [nd for nd in nodes if nd.op_type in _Q_OPS]
    r.qdq(qdq)
    quantized = bool(qdq)
    if len(m.graph.output) != 1:
        raise ValueError(f"ONNX model {str(path)!r}: {len(m.graph.output)} graph outputs; "
                         f"dqt_hw imports a model with one output")
    r.outputs = {r.res(o.name) for o in m.graph.output}
    rest = [nd for nd in nodes if nd.op_type not in _Q_OPS]
    for nd in rest:
        for i in nd.input:
            if i:
                t = r.res(i)
                r.uses[t] = r.uses.get(t, 0) + 1
    r.emit(Op(r.uname(x, "input"), "input", (), x, {"shape": shape}), x)
    for nd in rest:
        _node(r, nd, quantized)
    out = r.res(m.graph.output[0].name)
    if out not in r.prod or r.prod[out] is not r.ops[-1]:
        raise ValueError(f"ONNX model {str(path)!r}: the graph output {out!r} is not produced by "
                         f"the last layer (dqt_hw's executor returns the last layer's codes)")
    return Parsed(path, m, opset, x, shape, r.ops, r.act_q, quantized)


def _node(r: _Reader, nd, quantized):
    onnx = r.onnx
    a = _attrs(onnx, nd)
    t = nd.op_type
    viewed = [i for i in nd.input[:1] if i in r.aview] + [i for i in nd.input[1:2]
                                                          if i in r.wview and t == "Conv"]
    if viewed and t not in ("Conv", "Gemm", "MatMul", "Flatten", "Reshape"):
        raise ValueError(f"{_where(nd)}: reads the nested view {viewed[0]!r} (a narrower Quant "
                         f"of a Quant); dqt_hw reads such a view only as a Conv/Gemm/MatMul "
                         f"input or weight")
    if t in ("Identity", "Dropout"):
        if t == "Dropout" and len(nd.input) > 2 and nd.input[2]:
            raise ValueError(f"{_where(nd)}: input training_mode is not supported")
        r.alias[nd.output[0]] = r.res(nd.input[0])
        return
    if t == "Conv":
        src = r.act(nd, nd.input[0])
        w = r.weight(nd, nd.input[1], quantized)
        ws = (w.q if isinstance(w, QConst) else w).shape
        if len(ws) != 4:
            raise ValueError(f"{_where(nd)}: weight shape {list(ws)} is not 2-D convolution's")
        k, s, p = _spatial(nd, a, ws[2:])
        if ws[2] != ws[3] or ws[2] != k:
            raise ValueError(f"{_where(nd)}: attribute kernel_shape = {list(ws[2:])} is not "
                             f"supported (square kernels only)")
        g = int(a.get("group", 1))
        op = Op(r.uname(nd.name, "conv"), "conv", (src.name,), nd.output[0],
                {"out_channels": int(ws[0]), "kernel": k, "stride": s, "padding": p,
                 "groups": g, "relu": False},
                w=None if isinstance(w, QConst) else w, wq=w if isinstance(w, QConst) else None,
                bias=r.bias(nd, nd.input[2] if len(nd.input) > 2 else "", int(ws[0])))
        op.view = _views(r, nd)
        r.emit(op, nd.name)
        return
    if t in ("Gemm", "MatMul"):
        src = r.act(nd, nd.input[0])
        w = r.weight(nd, nd.input[1], quantized)
        q = w.q if isinstance(w, QConst) else w
        if q.ndim != 2:
            raise ValueError(f"{_where(nd)}: weight shape {list(q.shape)} is not 2-D")
        trans = False
        if t == "Gemm":
            for key in ("alpha", "beta"):
                if float(a.get(key, 1.0)) != 1.0:
                    raise ValueError(f"{_where(nd)}: attribute {key} = {a[key]} is not "
                                     f"supported (only 1.0)")
            if int(a.get("transA", 0)):
                raise ValueError(f"{_where(nd)}: attribute transA = 1 is not supported")
            trans = bool(int(a.get("transB", 0)))
        if not trans:  # (K, O) -> (O, K)
            if isinstance(w, QConst):
                w = QConst(w.q.T.copy(), w.scale, w.zp, 1 - w.axis if w.scale.ndim else 0,
                           w.type, w.qmin)
            else:
                w = w.T.copy()
        O = int((w.q if isinstance(w, QConst) else w).shape[0])
        bias = r.bias(nd, nd.input[2] if t == "Gemm" and len(nd.input) > 2 else "", O)
        op = Op(r.uname(nd.name, t.lower()), "fc", (src.name,), nd.output[0],
                {"out_features": O, "relu": False},
                w=None if isinstance(w, QConst) else w, wq=w if isinstance(w, QConst) else None,
                bias=bias)
        op.view = _views(r, nd)
        r.emit(op, nd.name)
        return
    if t == "Add":
        ins = [r.res(i) for i in nd.input]
        cidx = [i for i, v in enumerate(ins) if v in r.consts or v in r.qconst]
        if cidx:
            P = r.foldable(nd.input[1 - cidx[0]], "bias") if len(cidx) == 1 else None
            if P is None:
                raise ValueError(f"{_where(nd)}: adding a constant is supported only as the "
                                 f"bias of the Conv/Gemm/MatMul right before it")
            O = len(P.bias)
            P.bias = P.bias + r.bias(nd, nd.input[cidx[0]], O)
            r.moved(P, nd)
            return
        a1, a2 = (r.act(nd, i) for i in nd.input)
        op = Op(r.uname(nd.name, "add"), "add", (a1.name, a2.name), nd.output[0],
                {"relu": False})
        r.emit(op, nd.name)
        return
    if t == "Concat":
        axis = int(a.get("axis", 1))
        if axis not in (1, -3):
            raise ValueError(f"{_where(nd)}: attribute axis = {axis} is not supported (only 1: "
                             f"the channels of (N, C, H, W))")
        srcs = [r.act(nd, i) for i in nd.input]
        r.emit(Op(r.uname(nd.name, "concat"), "concat", tuple(x.name for x in srcs),
                  nd.output[0]), nd.name)
        return
    if t == "BatchNormalization":
        if int(a.get("training_mode", 0)):
            raise ValueError(f"{_where(nd)}: attribute training_mode = 1 is not supported")
        gam, beta, mean, var = (np.asarray(r.const(nd, i, "parameter"), np.float64).reshape(-1)
                                for i in nd.input[1:5])
        f = gam / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        if not np.all(np.isfinite(f)):
            raise ValueError(f"{_where(nd)}: a folded scale gamma / sqrt(var + eps) is not finite")
        P = r.foldable(nd.input[0], "bn")
        if P is None:
            src = r.act(nd, nd.input[0])
            if r.res(nd.input[0]) not in r.act_q:
                raise ValueError(f"{_where(nd)}: only a BatchNormalization right after a "
                                 f"Conv/Gemm (its output used by nothing else) or on a "
                                 f"quantized tensor is supported")
            C = r.shape(src)[0]
            r.emit(Op(r.uname(nd.name, "batchnorm"), "conv", (src.name,), nd.output[0],
                      {"out_channels": C, "kernel": 1, "stride": 1, "padding": 0, "groups": C,
                       "relu": False}, bias=beta - mean * f, affine=f), nd.name)
            return
        P.bn = f if P.bn is None else P.bn * f
        P.bias = (P.bias - mean) * f + beta
        r.moved(P, nd)
        return
    if t in ("Relu", "Clip"):
        if t == "Relu":
            lo, hi = 0.0, np.inf
        else:
            lo, hi = -np.inf, np.inf
            if "min" in a or "max" in a:
                lo, hi = float(a.get("min", lo)), float(a.get("max", hi))
            if len(nd.input) > 1 and nd.input[1]:
                lo = float(np.asarray(r.const(nd, nd.input[1], "min")))
            if len(nd.input) > 2 and nd.input[2]:
                hi = float(np.asarray(r.const(nd, nd.input[2], "max")))
        P = r.foldable(nd.input[0], "clip")
        if P is None:
            src = r.act(nd, nd.input[0])
            q = r.act_q.get(r.res(nd.input[0]))
            if q is not None and clip_subsumed(q, lo, hi):  # a no-op on these codes
                r.alias[nd.output[0]] = r.res(nd.input[0])
                return
            raise ValueError(f"{_where(nd)}: follows layer {src.name!r} ({src.op}); a Relu/Clip "
                             f"is supported only right after a Conv/Gemm/MatMul/Add (as its "
                             f"output clamp)")
        P.clip = (lo, hi)
        r.moved(P, nd)
        return
    if t in ("MaxPool", "AveragePool"):
        src = r.act(nd, nd.input[0])
        if len(nd.output) > 1 and nd.output[1]:
            raise ValueError(f"{_where(nd)}: output Indices is not supported")
        k, s, p = _spatial(nd, a)
        op = "maxpool" if t == "MaxPool" else "avgpool"
        if op == "avgpool" and p:
            raise ValueError(f"{_where(nd)}: attribute pads = {list(a['pads'])} is not "
                             f"supported (average pooling without padding only)")
        if op == "avgpool":
            _avgpool(r, nd, src, k, s)
            return
        r.emit(Op(r.uname(nd.name, op), op, (src.name,), nd.output[0],
                  {"kernel": k, "stride": s, "padding": p}), nd.name)
        return
    if t == "GlobalAveragePool":
        src = r.act(nd, nd.input[0])
        _, H, W = r.shape(src)
        if H != W:
            raise ValueError(f"{_where(nd)}: input {H}x{W} is not square (dqt_hw's pools are "
                             f"square)")
        _avgpool(r, nd, src, H, H)
        return
    if t in ("Flatten", "Reshape"):
        src = r.act(nd, nd.input[0])
        C, H, W = r.shape(src)
        if t == "Flatten" and int(a.get("axis", 1)) not in (1, -3):
            raise ValueError(f"{_where(nd)}: attribute axis = {a['axis']} is not supported "
                             f"(only 1: (N, C*H*W))")
        if t == "Reshape":
            tgt = np.asarray(r.const(nd, nd.input[1], "shape")).astype(np.int64).tolist()
            ok = (len(tgt) == 2 and tgt[1] in (-1, C * H * W)
                  and (tgt[0] in (0, -1) or tgt[0] == r.batch) and tgt != [-1, -1])
            if not ok:
                raise ValueError(f"{_where(nd)}: target shape {tgt} is not supported (only a "
                                 f"flatten of (N, {C}, {H}, {W}) to (N, {C * H * W}))")
        r.emit(Op(r.uname(nd.name, "flatten"), "flatten", (src.name,), nd.output[0]),
               nd.name)
        if nd.input[0] in r.aview:  # export writes the fc's input view before its Flatten
            r.aview[nd.output[0]] = r.aview[nd.input[0]]
        return
    raise ValueError(f"{_where(nd)}: op type {t} is not supported (supported: "
                     f"{', '.join(SUPPORTED)})")


def _views(r: _Reader, nd):
    """((b_a, rounding) or None, (b_w, rounding) or None) of the nested views a Conv/Gemm
    reads, or None where it reads none."""
    va, vw = r.aview.get(nd.input[0]), r.wview.get(nd.input[1])
    return None if va is None and vw is None else (va, vw)


def _avgpool(r: _Reader, nd, src, k, s):
    """An average pool: the ``avgpool`` layer (its result a code of its input's format),
    or, where a QDQ model quantizes its output differently from its input, the depthwise
    conv it equals (``Op.avg``)."""
    q_out = r.act_q.get(r.res(nd.output[0]))
    if q_out is None or q_out == r.act_q.get(src.out):
        r.emit(Op(r.uname(nd.name, "avgpool"), "avgpool", (src.name,), nd.output[0],
                  {"kernel": k, "stride": s, "padding": 0}), nd.name)
        return
    C = r.shape(src)[0]
    r.emit(Op(r.uname(nd.name, "avgpool"), "conv", (src.name,), nd.output[0],
              {"out_channels": C, "kernel": k, "stride": s, "padding": 0, "groups": C,
               "relu": False}, bias=np.zeros(C), affine=np.full(C, 1.0 / (k * k))), nd.name)
