"""Bring your own network: an ONNX model as a dqt_hw network file (docs/networks.md,
"Your own model").

``from_onnx(path, calibration=None, ...)`` returns a ``Network`` at master width n = 8
with DQT nested formats, from

- a **QDQ int8 model** (QuantizeLinear/DequantizeLinear pairs, as onnxruntime's
  ``quantize_static`` writes them): every scale s and zero point z of an 8-bit tensor
  becomes the DQT format ``m = s (qmin - z)``, ``delta = s`` (codes ``q - qmin``, so
  uint8 codes are kept and int8 codes move up by 128); weights keep their codes, per
  output channel; the int32 bias is the real ``s_b (q_b - z_b)``;
- a **QONNX model** (``Quant`` nodes, ``qonnx_read``): the same formats with a real zero
  point; a dqt_hw export (``qonnx_export``) carries its exact float64 values in its
  metadata, used where they agree with the Quant operands (``_exact``), so that
  import(export(net)) runs bit for bit like net;
- a **float model plus calibration inputs**: DQT post-training quantization, weights per
  output channel over their [min, max], activations over a clipped range of the
  calibration values (``DEFAULT_PERCENTILE``), the logits at 16 bits.

The integer constants come from the formats exactly as for a trained network
(``network.layer_constants``, ``network.add_layer_constants``), so every candidate
width is a shift of the same master codes. ``import_file`` writes the network with
``Network.save`` (the .npz, then the .json, each atomically): nothing is written when
the model is refused.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np

from .. import spec
from ..schema import read_bounded
from . import network as nw
from .onnx_read import QConst, clip_subsumed, import_onnx, read

N_MASTER = 8
DEFAULT_WIDTHS = tuple(range(1, N_MASTER + 1))
DEFAULT_PERCENTILE = 99.99
"""Activation range of a float model's tensor: from the (100 - p)-th to the p-th
percentile of its calibration values, widened to include 0."""
LOGIT_BITS = 16
LOGIT_MARGIN = 0.25
"""The output (logit) layer of a float model: 16-bit codes over the calibration minimum
and maximum, each moved out by this fraction of their distance (not clipped: argmax
needs the top logits)."""
MAX_CALIBRATION_BYTES = 1 << 31


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        from .onnx_read import INSTALL

        raise ImportError(f"quantizing a float ONNX model needs onnxruntime (to run it on the "
                          f"calibration inputs): {INSTALL}") from None
    return ort


# ---------------------------------------------------------------------- formats


def qdq_format(q) -> spec.Format:
    """The DQT format of a QDQ or QONNX tensor quantization (scale, zero point, type, qmin
    [, bits: 8]): real = s (q - z) = m + delta (q - qmin) with m = s (qmin - z),
    delta = s."""
    s, z, _, qmin = q[:4]
    return spec.Format(q[4] if len(q) > 4 else N_MASTER, m=float(s) * (qmin - z),
                       delta=float(s))


def range_format(lo: float, hi: float, bits: int = N_MASTER) -> spec.Format:
    """The format over [lo, hi] (0 inside it) whose zero is a code at the master width:
    delta = (hi - lo) / (2^bits - 1), z = rint(-lo / delta), m = -z delta. A tensor
    that is 0 throughout gets [0, 1]."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi <= lo:
        hi = lo + 1.0
    top = (1 << bits) - 1
    d = (hi - lo) / top
    z = int(np.clip(np.rint(-lo / d), 0, top))
    return spec.Format(bits, m=-z * d if z else 0.0, delta=d)


def read_calibration(calibration, shape) -> np.ndarray:
    """The calibration inputs (N, C, H, W) from an array or a .npy file, checked."""
    src = "calibration inputs"
    if isinstance(calibration, (str, Path)):
        src = f"calibration file {str(calibration)!r}"
        data = read_bounded(calibration, what="calibration", max_bytes=MAX_CALIBRATION_BYTES)
        try:
            calibration = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{src} is not a .npy array ({e})") from None
    x = np.asarray(calibration)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{src}: dtype {x.dtype} is not a number type")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape) or x.shape[0] < 1:
        raise ValueError(f"{src}: shape {x.shape} is not (N >= 1, {', '.join(map(str, shape))}) "
                         f"(the model's input)")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{src}: value at {at} is {float(x[at])!r}, not finite")
    return x


def _ranges(parsed, x, percentile, batch_size):
    """Per op name, the values' (lo, hi) for the float model on inputs x (onnxruntime)."""
    onnx = import_onnx()
    ort = _ort()
    m = onnx.ModelProto()
    m.CopyFrom(parsed.model)
    want = [op.out for op in parsed.ops if op.op in ("conv", "fc", "add", "concat")]
    have = {o.name for o in m.graph.output}
    for t in want:
        if t not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT,
                                                                     None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    vals = {t: [] for t in want}
    for s in range(0, len(x), batch_size):
        outs = sess.run(want, {parsed.input: x[s:s + batch_size]})
        for t, v in zip(want, outs):
            vals[t].append(np.asarray(v, np.float64).ravel())
    out = {parsed.ops[0].name: _lo_hi(x.ravel().astype(np.float64), percentile)}
    last = parsed.ops[-1]
    for op in parsed.ops:
        if op.out in vals:
            v = np.concatenate(vals[op.out])
            if not np.all(np.isfinite(v)):
                raise ValueError(f"layer {op.name!r}: the float model computes a non-finite "
                                 f"value on the calibration inputs")
            out[op.name] = _lo_hi(v, 100.0 if op is last else percentile)
    return out


def _lo_hi(v, percentile):
    if percentile >= 100.0:
        return float(v.min()), float(v.max())
    lo, hi = np.percentile(v, [100.0 - percentile, percentile])
    return float(lo), float(hi)


def _formats(parsed, calibration, percentile, batch_size):
    """op name -> output format of every input/conv/fc/add op."""
    fmts = {}
    if parsed.quantized:
        for op in parsed.ops:
            if op.op in ("input", "conv", "fc", "add", "concat"):
                q = parsed.act_q.get(op.out)
                if q is None:
                    raise ValueError(f"layer {op.name!r} ({op.op}): its output {op.out!r} is not "
                                     f"quantized (no QuantizeLinear follows it in this QDQ model)")
                fmts[op.name] = qdq_format(q)
        return fmts, None
    x = read_calibration(calibration, parsed.shape)
    rng = _ranges(parsed, x, percentile, batch_size)
    last = parsed.ops[-1]
    for op in parsed.ops:
        if op.name not in rng:
            continue
        lo, hi = rng[op.name]
        if op.clip is not None:
            lo, hi = max(lo, op.clip[0]), min(hi, op.clip[1])
        if op is last and op.op == "fc" and op.clip is None:
            margin = LOGIT_MARGIN * (hi - lo)
            fmts[op.name] = range_format(lo - margin, hi + margin, LOGIT_BITS)
        else:
            fmts[op.name] = range_format(lo, hi)
    return fmts, len(x)


# ---------------------------------------------------------------------- weights


def _weights(op, O):
    """(unsigned master codes, w_m, w_delta) per output channel, batch norm folded."""
    if op.affine is not None:  # one real weight per channel: m, at code 0 (every width)
        k = op.attrs["kernel"]
        f = op.affine
        return (np.zeros((O, 1, k, k), np.int64), f.astype(np.float64),
                np.where(f != 0, np.abs(f), 1.0))
    if op.wq is None:
        w = op.w if op.bn is None else op.w * op.bn.reshape((-1,) + (1,) * (op.w.ndim - 1))
        codes, fl = spec.quantize_per_channel(w, N_MASTER, axis=0)
        return codes, np.array([f.m for f in fl]), np.array([f.delta for f in fl])
    qc: QConst = op.wq
    s, z = qc.scale.reshape(-1), qc.zp.reshape(-1)
    if s.size == 1:
        s, z = np.full(O, s[0]), np.full(O, z[0])
    elif s.size != O or qc.axis not in (0, -qc.q.ndim):
        raise ValueError(f"layer {op.name!r}: weights are quantized along axis {qc.axis} "
                         f"({s.size} scales), not per output channel ({O})")
    codes = qc.q - qc.qmin
    w_m = s * (qc.qmin - z).astype(np.float64)
    w_d = s.astype(np.float64)
    if op.bn is not None:
        # real weights times f per channel: f > 0 scales the format; f < 0 flips the codes
        # (u -> 255 - u) so that delta stays positive; f = 0 gives the zero channel
        f = op.bn
        top = (1 << N_MASTER) - 1
        shape = (-1,) + (1,) * (codes.ndim - 1)
        neg = (f < 0).reshape(shape)
        codes = np.where(neg, top - codes, codes)
        w_m = np.where(f < 0, f * (w_m + top * w_d), f * w_m)
        w_d = np.abs(f) * w_d
        zero = f == 0
        codes = np.where(zero.reshape(shape), 0, codes)
        w_m, w_d = np.where(zero, 0.0, w_m), np.where(zero, 1.0, w_d)
    return codes.astype(np.int64), w_m, w_d


# ---------------------------------------------------------------------- network


def _arith(graph) -> nw.Arith:
    """The default arithmetic, with an accumulator wide enough for the largest dot
    product (2n + ceil(log2 taps) + 1 bits) where the default is not."""
    base = nw.Arith(n=N_MASTER)
    taps = max((r["taps"] for r in graph.layer_table()), default=1)
    need = 2 * N_MASTER + math.ceil(math.log2(max(taps, 2))) + 1
    if need <= base.acc_width:
        return base
    return nw.Arith(n=N_MASTER, acc_width=need)


def _check_clip(op, fo):
    if op.clip is None:
        return
    lo, hi = op.clip
    top = fo.m + fo.delta * ((1 << fo.n) - 1)
    # the codes of lo and hi as QuantizeLinear computes them (zero point -m / delta)
    if not clip_subsumed((fo.delta, round(-fo.m / fo.delta), "", 0), lo, hi):
        raise ValueError(
            f"layer {op.name!r} ({'/'.join(op.onnx)}): its Relu/Clip [{lo}, {hi}] does not "
            f"cover its output format [{fo.m:.6g}, {top:.6g}] (scale {fo.delta:.6g}): the clamp "
            f"would need codes other than 0 and {(1 << fo.n) - 1}, which the network format "
            f"cannot hold (quantize the output with zero point = lowest code)")


EXACT_KEY = "dqt_hw.network"
"""The metadata entry of a dqt_hw QONNX export: the exact formats (``qonnx_export``)."""
EXACT_TOL = 1e-6
"""Relative agreement of an exact value with its float32 Quant operand (float32 rounding
is 6e-8) for the exact values to be used."""


def _unhex(v, what):
    try:
        return np.array([float.fromhex(t) for t in v], np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"metadata {EXACT_KEY!r}: {what} is not a list of hex floats") from None


def _near(a, b, scale) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= EXACT_TOL * scale))


def _exact(parsed, fmts):
    """The exact values a dqt_hw QONNX export carries (``qonnx_export``), as ``build``'s
    ``exact``, where every one agrees with the model's own Quant operands; else None
    (a model without them, or edited since)."""
    import json

    props = {p.key: p.value for p in parsed.model.metadata_props}
    if EXACT_KEY not in props:
        return None
    try:
        meta = json.loads(props[EXACT_KEY])
        layers, arith = dict(meta["layers"]), nw.Arith(**meta["arith"])
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"ONNX model {str(parsed.path)!r}: metadata {EXACT_KEY!r} is not a "
                         f"dqt_hw export's ({e})") from None
    ops = {op.name: op for op in parsed.ops}
    out = {"arith": arith, "fmts": {}, "w": {}, "widths": {}, "name": meta.get("name")}
    for nm, d in layers.items():
        op = ops.get(nm)
        if op is None or not isinstance(d, dict):
            return None
        if "fmt" in d:
            f = fmts.get(nm)
            n, m, dl = d["fmt"][0], *_unhex(d["fmt"][1:], f"layer {nm!r} fmt")
            if f is None or f.n != n or not (_near(f.m, m, abs(m) + dl) and _near(f.delta, dl, dl)):
                return None
            out["fmts"][nm] = spec.Format(n, m=float(m), delta=float(dl))
        if "w_m" in d:
            if op.op not in ("conv", "fc"):
                return None
            O = op.attrs.get("out_channels", op.attrs.get("out_features"))
            _, w_m, w_d = _weights(op, O)
            em, ed, eb = (_unhex(d[k], f"layer {nm!r} {k}") for k in ("w_m", "w_delta", "bias"))
            if not (_near(w_m, em, np.abs(em) + ed) and _near(w_d, ed, ed)
                    and _near(op.bias, eb, np.abs(eb) + ed)):
                return None
            out["w"][nm] = (em, ed, eb)
            out["widths"][nm] = tuple(int(b) for b in d.get("widths", DEFAULT_WIDTHS))
    return out


def _mix(parsed, exact):
    """(the static mix {layer: [b_a, b_w]}, the view rounding) of the nested views a
    ``dqt-hw export --mix`` model's layers read, or (None, None) where none does."""
    views = {op.name: op.view for op in parsed.ops if op.view is not None}
    if not views:
        return None, None
    rnds = sorted({v[1] for pair in views.values() for v in pair if v is not None})
    if len(rnds) > 1:
        raise ValueError(f"ONNX model {str(parsed.path)!r}: nested views round "
                         f"{' and '.join(rnds)}; a network has one view rounding")
    if exact is not None and exact["arith"].view_rounding != rnds[0]:
        raise ValueError(f"ONNX model {str(parsed.path)!r}: nested views round {rnds[0]}, its "
                         f"metadata's view_rounding is {exact['arith'].view_rounding}")
    mix = {}
    for op in parsed.ops:
        if op.op in ("conv", "fc"):
            va, vw = op.view or (None, None)
            mix[op.name] = [va[0] if va else N_MASTER, vw[0] if vw else N_MASTER]
    return mix, rnds[0]


def build(parsed, fmts, *, widths=DEFAULT_WIDTHS, name=None, provenance=None,
          exact=None, view_rounding=None) -> nw.Network:
    """The ``Network`` of a parsed model with its output formats; ``exact`` (``_exact``)
    the exact arithmetic, formats, weight formats, biases and widths of a dqt_hw export;
    ``view_rounding`` that of the nested views the model reads (``_mix``)."""
    if exact is not None:
        fmts = {**fmts, **exact["fmts"]}
    for op in parsed.ops:
        if op.op in ("conv", "fc", "add"):
            fo = fmts[op.name]
            _check_clip(op, fo)
            op.attrs["relu"] = fo.m == 0.0  # the clamp at code 0 is at real 0
    g = parsed.graph(name or (exact or {}).get("name") or parsed.path.stem)
    arith = _arith(g) if exact is None else exact["arith"]
    if view_rounding is not None and exact is None:
        arith = nw.Arith(**{**arith.to_dict(), "view_rounding": view_rounding})
    layers = {}
    for op in parsed.ops:
        nd = g[op.name]
        if op.op == "input":
            layers[op.name] = nw.Layer(op.name, op.op, fmt=fmts[op.name])
        elif op.op in nw.PASS_OPS:
            layers[op.name] = nw.Layer(op.name, op.op, fmt=layers[op.inputs[0]].fmt)
        elif op.op in ("conv", "fc"):
            O = nd.shape[0]
            w, w_m, w_d = _weights(op, O)
            bias = op.bias
            if exact is not None and op.name in exact["w"]:
                w_m, w_d, bias = exact["w"][op.name]
            if op.op == "fc" and w.ndim != 2:
                w = w.reshape(O, -1)
            fo = fmts[op.name]
            a_fmt = layers[op.inputs[0]].fmt
            K, S = nw.layer_constants(arith, a_fmt, w_m, w_d, fo, g.layer_info(nd)["taps"],
                                      bias)
            ws = tuple(widths) if exact is None else exact["widths"].get(op.name, widths)
            layers[op.name] = nw.Layer(op.name, op.op, fmt=fo, widths=ws, w=w,
                                       w_m=w_m, w_delta=w_d, bias=bias, K=K, S=S)
        elif op.op == "add":
            f1, f2 = (layers[i].fmt for i in op.inputs)
            K, S = nw.add_layer_constants(arith, f1, f2, fmts[op.name])
            layers[op.name] = nw.Layer(op.name, op.op, fmt=fmts[op.name], K=K, S=S)
        elif op.op == "concat":
            K, S = nw.concat_layer_constants(arith, [layers[i].fmt for i in op.inputs],
                                             fmts[op.name])
            layers[op.name] = nw.Layer(op.name, op.op, fmt=fmts[op.name], K=K, S=S)
    return nw.Network(g, arith, layers, None, provenance)


def from_onnx(path, *, calibration=None, widths=DEFAULT_WIDTHS,
              percentile: float = DEFAULT_PERCENTILE, name: str | None = None,
              batch_size: int = 64) -> nw.Network:
    """The network of the ONNX model at ``path`` (module docstring). ``calibration``
    (an array (N, C, H, W) or a .npy file) is required for a float model and refused for
    a QDQ one; ``widths`` are every layer's candidate widths; ``percentile`` the float
    model's activation clipping (100: plain min/max)."""
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not (
            50.0 < float(percentile) <= 100.0):
        raise ValueError(f"percentile must be a number in (50, 100], not {percentile!r}")
    ws = tuple(widths)
    if not ws or any(isinstance(b, bool) or not isinstance(b, (int, np.integer))
                     or not 1 <= b <= N_MASTER for b in ws) or sorted(set(ws)) != list(ws):
        raise ValueError(f"widths must be distinct ascending integers in [1, {N_MASTER}], not "
                         f"{list(ws)}")
    parsed = read(path)
    if parsed.quantized and calibration is not None:
        raise ValueError(f"ONNX model {str(path)!r} is already quantized (QDQ): calibration "
                         f"inputs do not apply")
    if not parsed.quantized and calibration is None:
        raise ValueError(f"ONNX model {str(path)!r} is a float model: give calibration inputs "
                         f"(--calibration DATA.npy, shape (N, {', '.join(map(str, parsed.shape))}))")
    fmts, n_cal = _formats(parsed, calibration, float(percentile), batch_size)
    data = Path(path).read_bytes()
    prov = {"source": {"format": "onnx", "file": Path(path).name,
                       "sha256": hashlib.sha256(data).hexdigest(), "opset": parsed.opset,
                       "producer": f"{parsed.model.producer_name} "
                                   f"{parsed.model.producer_version}".strip()},
            "import": "qdq" if parsed.quantized else "post-training quantization"}
    if not parsed.quantized:
        prov["calibration"] = {"inputs": n_cal, "percentile": float(percentile),
                               "logit_bits": LOGIT_BITS, "logit_margin": LOGIT_MARGIN}
        if isinstance(calibration, (str, Path)):
            prov["calibration"]["file"] = Path(calibration).name
    exact = _exact(parsed, fmts) if parsed.quantized else None
    if exact is not None:
        prov["import"] = "qonnx (dqt_hw export, exact formats)"
    elif any(nd.op_type == "Quant" for nd in parsed.model.graph.node):
        prov["import"] = "qonnx"
    mix, rnd = _mix(parsed, exact)
    if mix is not None:
        prov["mix"] = mix
    net = build(parsed, fmts, widths=ws, name=name, provenance=prov, exact=exact,
                view_rounding=rnd)
    if mix is not None:
        net.width_mix(mix)  # each view's width must be a candidate width of its layer
    return net


def import_file(path, out, *, command=None, **kw) -> tuple[Path, nw.Network]:
    """``from_onnx`` then ``Network.save(out)``; returns (the JSON path, the network)."""
    net = from_onnx(path, **kw)
    if command is not None:
        net.provenance["command"] = command
    return net.save(out), net
