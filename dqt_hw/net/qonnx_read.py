"""QONNX ``Quant`` nodes as ``onnx_read`` takes them (docs/networks.md, "Your own model").

A ``Quant(x, scale, zeropt, bitwidth; signed, narrow, rounding_mode)`` node (domain
``qonnx.custom_op.general``, as qonnx and dqt_hw write it, or ``onnx.brevitas`` /
``finn.custom_op.general``, as Brevitas and FINN do) computes
``(clip(round(x / s + z), lo, hi) - z) s`` with [lo, hi] the signed or unsigned b-bit code
range. It is a QuantizeLinear/DequantizeLinear pair with a real (not necessarily integer)
zero point, so it maps onto the same DQT format ``m = s (lo - z)``, ``delta = s`` (codes
``q - lo``):

- on a constant (weights): the codes are computed here, per output channel where the
  scale is (a scale of shape (O, 1, ...)), at up to 8 bits; b-bit codes q (b < 8) are
  stored as the 8-bit master codes (q - lo) 2^(8-b) with step s 2^-(8-b), whose nested
  view at b is q - lo (so the weights run at b_w = b exactly as quantized, and at 8); a
  constant quantized at more bits (a 32-bit bias) is its real value;
- on an activation: one scale, not narrow, rounding ``ROUND`` (half to even, as the
  requantization), at exactly 8 bits (dqt_hw's master width; the clamp of a narrower code
  range has no field in the network format), except the graph output, up to 16 bits
  (logits).

This module reads the node's operands only; ``onnx_read`` keeps the graph.
"""

from __future__ import annotations

import numpy as np

DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
MAX_WEIGHT_BITS = 8
ACT_BITS = 8
MAX_OUTPUT_BITS = 16
_ROUND = {
    "ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil,
    "DOWN": np.fix, "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)),
    "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
    "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5),
}


def code_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """(lo, hi) of QONNX's b-bit codes (qonnx ``min_int``/``max_int``)."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def params(nd, a: dict, consts: dict, where: str):
    """(scale, zeropt (float64 arrays of one shape), bits, signed, narrow, rounding) of a
    Quant node, checked."""
    if len(nd.input) != 4:
        raise ValueError(f"{where}: has {len(nd.input)} inputs, not 4 (x, scale, zeropt, "
                         f"bitwidth)")
    for i, what in zip(nd.input[1:], ("scale", "zeropt", "bitwidth")):
        if i not in consts:
            raise ValueError(f"{where}: the {what} {i!r} must be a constant")
    s = np.asarray(consts[nd.input[1]], np.float64)
    z = np.asarray(consts[nd.input[2]], np.float64)
    b = np.asarray(consts[nd.input[3]], np.float64)
    bad = ~(np.isfinite(s) & (s > 0))
    if bad.any():
        i = int(np.argmax(bad.ravel()))
        raise ValueError(f"{where}: scale {nd.input[1]!r}[{i}] = {float(s.ravel()[i])!r} is not "
                         f"a positive finite number")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{where}: zero point {nd.input[2]!r} is not finite")
    if b.size != 1 or b.ravel()[0] != int(b.ravel()[0]) or not 1 <= b.ravel()[0] <= 32:
        raise ValueError(f"{where}: bitwidth {b.ravel().tolist()} is not one integer in "
                         f"[1, 32]")
    if z.size != 1 and z.shape != s.shape:
        raise ValueError(f"{where}: zero point shape {z.shape} differs from the scale's "
                         f"{s.shape}")
    rnd = a.get("rounding_mode", b"ROUND")
    rnd = (rnd.decode() if isinstance(rnd, bytes) else str(rnd)).upper()
    if rnd not in _ROUND:
        raise ValueError(f"{where}: attribute rounding_mode = {rnd!r} is not a QONNX rounding "
                         f"mode ({', '.join(_ROUND)})")
    flags = []
    for key, default in (("signed", 1), ("narrow", 0)):
        v = int(a.get(key, default))
        if v not in (0, 1):
            raise ValueError(f"{where}: attribute {key} = {v} is not 0 or 1")
        flags.append(bool(v))
    z = np.broadcast_to(z, s.shape).astype(np.float64) if s.shape else z.reshape(s.shape)
    return s, z, int(b.ravel()[0]), flags[0], flags[1], rnd


def constant(v, nd, a, consts, where):
    """A Quant of the constant ``v``: ``("codes", q, scale, zeropt, axis, type, qmin)``
    (q int64, scale/zeropt flat per ``axis`` or scalar) at up to 8 bits, else
    ``("real", values)``."""
    s, z, bits, signed, narrow, rnd = params(nd, a, consts, where)
    v = np.asarray(v, np.float64)
    lo, hi = code_range(bits, signed, narrow)
    if bits == 1 and signed:
        raise ValueError(f"{where}: a 1-bit signed (bipolar) Quant is not supported")
    if s.size == 1:
        axis, s, z = 0, s.reshape(()), z.reshape(())
    else:
        chan = [k for k, d in enumerate(s.shape) if d != 1]
        if s.ndim != v.ndim or len(chan) != 1 or s.shape[chan[0]] != v.shape[chan[0]]:
            raise ValueError(f"{where}: scale shape {s.shape} is neither one scale nor one "
                             f"per channel of an axis of the constant's {v.shape}")
        axis = chan[0]
    y = np.clip(v / s + z, lo, hi)
    q = _ROUND[rnd](y)
    if bits > MAX_WEIGHT_BITS:
        return ("real", (q - z) * s)
    # b < 8 bits: the codes of the 8-bit master whose nested view at b they are, (q - lo)
    # 2^(8-b) with scale s 2^-(8-b) (the same real values; the view at b gives q - lo
    # back under both view roundings)
    k = float(1 << (MAX_WEIGHT_BITS - bits))
    q, s, z = lo + (q - lo) * k, s / k, lo + (z - lo) * k
    return ("codes", q.astype(np.int64), s.reshape(-1) if s.ndim else s, z.reshape(-1) if
            z.ndim else z, axis,
            "int8" if signed else "uint8", lo)


VIEW_ROUNDINGS = {"HALF_UP": "half_up", "FLOOR": "floor"}
VIEW_TOL = 1e-6
"""Relative agreement (float32 scales) of a view's scale and zero point with the master
quantization's times 2^(n - b) and divided by it."""


def view(nd, a, consts, where, scale, zeropt, qmin, bits):
    """(b, view rounding) where the Quant ``nd`` of a tensor quantized at ``bits`` bits
    (unsigned, lowest code ``qmin`` = 0) with ``scale`` and ``zeropt`` (scalars or one per
    channel) is its nested view at b < bits bits, as ``dqt-hw export --mix`` writes it:
    unsigned, not narrow, scale ``scale 2^(bits - b)``, zero point ``zeropt / 2^(bits - b)``,
    rounding ``HALF_UP`` (the paper's Eq. 4) or ``FLOOR`` (the shift); else None."""
    s, z, b, signed, narrow, rnd = params(nd, a, consts, where)
    if signed or narrow or qmin != 0 or not 1 <= b < bits or rnd not in VIEW_ROUNDINGS:
        return None
    k = float(1 << (bits - b))
    s0 = np.asarray(scale, np.float64).reshape(-1)
    z0 = np.broadcast_to(np.asarray(zeropt, np.float64).reshape(-1), s0.shape)
    sv, zv = s.reshape(-1), z.reshape(-1)
    if sv.size != s0.size and sv.size != 1:
        return None
    sv, zv = np.broadcast_to(sv, s0.shape), np.broadcast_to(zv, s0.shape)
    ok = (np.all(np.abs(sv - s0 * k) <= VIEW_TOL * s0 * k)
          and np.all(np.abs(zv - z0 / k) <= VIEW_TOL * (np.abs(z0) / k + 1.0)))
    return (b, VIEW_ROUNDINGS[rnd]) if ok else None


def activation(nd, a, consts, where, *, is_output: bool):
    """(scale, zeropt, type, qmin, bits) of a Quant of an activation, checked."""
    s, z, bits, signed, narrow, rnd = params(nd, a, consts, where)
    if s.size != 1:
        raise ValueError(f"{where}: activation {nd.input[0]!r} is quantized per channel "
                         f"({s.size} scales); dqt_hw needs one scale per activation tensor")
    top = MAX_OUTPUT_BITS if is_output else ACT_BITS
    if not (bits == ACT_BITS or (is_output and 2 <= bits <= top)):
        hint = ("; a nested view of an 8-bit activation needs HALF_UP or FLOOR rounding, "
                "scale 2^(8 - b) times and zero point 2^-(8 - b) times the activation's"
                if nd.name.endswith(".input_view") else "")
        raise ValueError(f"{where}: activation bitwidth {bits} is not supported (dqt_hw "
                         f"imports activations at its master width n = {ACT_BITS}; the graph "
                         f"output at 2 to {MAX_OUTPUT_BITS} bits{hint})")
    if narrow:
        raise ValueError(f"{where}: attribute narrow = 1 on an activation is not supported "
                         f"(the clamp at the narrowed range has no field in the network format)")
    if rnd not in ("ROUND", "HALF_EVEN"):
        raise ValueError(f"{where}: attribute rounding_mode = {rnd!r} on an activation is not "
                         f"supported (the requantization rounds half to even: ROUND)")
    lo, _ = code_range(bits, signed, narrow)
    return (float(s.ravel()[0]), float(z.ravel()[0]), "int8" if signed else "uint8", lo, bits)
