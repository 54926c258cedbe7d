"""Golden cases: how each kind of case is computed by the reference model, and the
canonical set checked in under golden/.

A case is (kind, params, inputs); ``compute`` derives every output from the inputs with
``dqt_hw.model``, so a reader can re-derive and compare (``verify_case``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import model, spec
from ..design import Design
from ..design.reference import reference
from .io import GoldenArray, GoldenCase, write_case
from .schema import KINDS, array_widths, code_inputs, input_names, planes_name


def _fmt(p: dict, key: str) -> spec.Format:
    f = p[key]
    return spec.Format(int(f["n"]), signed=bool(f["signed"]))


def requant_from_arrays(K, S, bits, rounding, b_out, signed, clamp=None):
    """The ``model.Requant`` of (4, C) constant arrays K, S of ``bits``-bit mantissas."""
    C = K.shape[1]
    consts = tuple(
        tuple(spec.Constant(int(K[t, c]), int(S[t, c]), bits) for t in range(4)) for c in range(C)
    )
    return model.Requant(consts, rounding, b_out, signed, clamp)


def compute(kind: str, params: dict, inputs: dict) -> tuple[dict, dict]:
    """(outputs, stats) of a case: outputs maps names to ``GoldenArray``s (at the widths
    of ``dqt_hw.golden.schema.array_widths``); with the param ``planes``, the bit-plane
    form of each code input (``<input>_planes``, ``model.to_planes``) is an output too."""
    outs, stats = _compute(kind, params, inputs)
    if params.get("planes"):
        bits = array_widths(kind, params)
        for k in code_inputs(kind):
            n, signed = bits[k]
            outs[planes_name(k)] = GoldenArray(model.to_planes(inputs[k], n=n, signed=signed),
                                               *bits[planes_name(k)])
    return outs, stats


def _compute(kind: str, params: dict, inputs: dict) -> tuple[dict, dict]:
    p = params
    if kind not in KINDS:
        raise ValueError(f"unknown golden case kind {kind!r} (known: {KINDS})")
    bits = array_widths(kind, p)
    if kind == "nested_view":
        n, signed = int(p["n"]), bool(p["signed"])
        q = inputs["q"]
        v = np.stack([
            model.nested_view(q, n=n, b=b, rounding=p["rounding"], signed=signed)
            for b in p["widths"]
        ])
        return {"v": GoldenArray(v, *bits["v"])}, {}
    if kind == "gemm":
        acc, st = model.gemm(inputs["a"], inputs["w"], acc_width=p["acc_width"],
                             overflow=p["overflow"], stats=True)
        return {"acc": GoldenArray(acc, *bits["acc"])}, _stats(st)
    af, wf = _fmt(p, "a_format"), _fmt(p, "w_format")
    b_a, b_w = af.check_width(p["b_a"]), wf.check_width(p["b_w"])
    rq = requant_from_arrays(inputs["K"], inputs["S"], int(p["const_bits"]),
                             p["rounding"], int(p["b_out"]), bool(p["out_signed"]))
    a_name = "a" if kind == "dense_layer" else "x"
    av = model.nested_view(inputs[a_name], n=af.n, b=b_a, rounding=p["view_rounding"],
                           signed=af.signed)
    wv = model.nested_view(inputs["w"], n=wf.n, b=b_w, rounding=p["view_rounding"],
                           signed=wf.signed)
    common = dict(a_fmt=af, w_fmt=wf, b_a=b_a, b_w=b_w, view_rounding=p["view_rounding"],
                  acc_width=p["acc_width"], overflow=p["overflow"], requant=rq, stats=True)
    if kind == "dense_layer":
        out, st = model.dense_layer(inputs["a"], inputs["w"], **common)
        acc = model.gemm(av, wv, acc_width=p["acc_width"], overflow=p["overflow"])
        sa, sw = model.side_sums_gemm(av, wv)
    else:
        geo = model.ConvGeometry(p["stride"], p["padding"], p["groups"], p["pad_code"])
        out, st = model.conv_layer(inputs["x"], inputs["w"], **common, geometry=geo)
        acc = model.conv2d(av, wv, acc_width=p["acc_width"], overflow=p["overflow"],
                           **geo._asdict())
        sa, sw = model.side_sums_conv2d(av, wv, **geo._asdict())
    Kc, Ec, Sc = rq.arrays()
    values = {f"{a_name}_view": av, "w_view": wv, "acc": acc, "sum_a": sa, "sum_w": sw,
              "rq_K": Kc, "rq_E": Ec, "rq_S": Sc, "out": out}
    return {k: GoldenArray(v, *bits[k]) for k, v in values.items()}, _stats(st)


def _stats(st) -> dict:
    return {
        "max_abs_partial": st.max_abs_partial,
        "bits_needed": st.bits_needed,
        "events": st.events,
        "outputs_affected": st.outputs_affected,
        "outputs": st.outputs,
    }


def input_bits(kind: str, params: dict) -> dict:
    """(bits, signed) of each input array, for its hex file."""
    bits = array_widths(kind, params)
    return {k: bits[k] for k in input_names(kind)}


@dataclass(frozen=True)
class CaseData:
    """A computed case before it is written: its name, kind, params, every array (inputs
    and outputs, as ``GoldenArray``) and the extra (statistics). ``case()`` is the same
    case as a ``GoldenCase`` in memory, for :func:`~dqt_hw.golden.fit.fits` and
    :func:`~dqt_hw.golden.fit.degenerate`."""

    name: str
    kind: str
    params: dict
    arrays: dict
    extra: dict | None

    def case(self) -> GoldenCase:
        manifest = {"case": self.name, "kind": self.kind, "params": self.params}
        if self.extra:
            manifest["extra"] = self.extra
        return GoldenCase(None, manifest, {k: ga.data for k, ga in self.arrays.items()})

    def write(self, root) -> Path:
        """Write the case (atomically) under ``root``; returns its directory."""
        return write_case(root, self.name, kind=self.kind, params=self.params,
                          arrays=self.arrays, extra=self.extra)


def build_case(name, kind, params, inputs) -> CaseData:
    """Compute a case's outputs from its inputs with the reference model."""
    bits = input_bits(kind, params)
    arrays = {k: GoldenArray(np.asarray(v, np.int64), *bits[k]) for k, v in inputs.items()}
    outs, stats = compute(kind, params, inputs)
    arrays.update(outs)
    return CaseData(name, kind, params, arrays, {"stats": stats} if stats else None)


def make_case(root, name, kind, params, inputs):
    """Compute a case's outputs and write it (atomically) under ``root``."""
    return build_case(name, kind, params, inputs).write(root)


def verify_case(case: GoldenCase) -> list[str]:
    """Recompute a case's outputs from its inputs; return the names that differ."""
    bits = input_bits(case.kind, case.params)
    missing = [k for k in bits if k not in case.arrays]
    if missing:
        raise ValueError(f"{case.path}: inputs {missing} missing for kind {case.kind!r}")
    outs, stats = compute(case.kind, case.params, {k: case[k] for k in bits})
    bad = [k for k, ga in outs.items()
           if k not in case.arrays or case[k].shape != ga.data.shape
           or not np.array_equal(case[k], ga.data)]
    if stats and (case.manifest.get("extra") or {}).get("stats") != stats:
        bad.append("stats")
    return bad


# ----------------------------------------------------------------------------- layers


def constant_arrays(rq: model.Requant) -> tuple[np.ndarray, np.ndarray]:
    """(K (4, C), S (4, C)) int64 arrays of a requantization's (unaligned) constants:
    the ``K``, ``S`` inputs of a layer case."""
    K = np.array([[k.K for k in ch] for ch in rq.constants], np.int64).T.copy()
    S = np.array([[k.S for k in ch] for ch in rq.constants], np.int64).T.copy()
    return K, S


@dataclass(frozen=True)
class LayerShape:
    """The shape of one conv or fc layer (fc: a dense layer over ``batch`` inputs)."""

    label: str
    kind: str  # conv_layer | dense_layer
    C: int
    O: int
    H: int = 1
    W: int = 1
    k: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch: int = 1


_DEFAULT = Design()


def layer_inputs(rng, shape: LayerShape, *, n=_DEFAULT.n, const_bits=_DEFAULT.kbits,
                 w_signed=False, a_signed=False, widths=None, taps=None):
    """A realistic layer of ``shape``: ReLU-like activations quantized per tensor,
    He-initialized weights quantized per output channel, a bias, constants from the
    formats at ``widths`` = (b_a, b_w, b_out) (default n, n, n). ``a_signed``: activation
    and output codes in the signed (symmetric) form. Returns (x codes, w codes, K (4, O),
    S (4, O), formats dict)."""
    C, O, H, Wd, groups, batch = shape.C, shape.O, shape.H, shape.W, shape.groups, shape.batch
    kh = kw = shape.k
    b_a, b_w, b_out = widths if widths is not None else (n, n, n)
    xf = np.maximum(rng.normal(0.0, 1.0, (batch, C, H, Wd)), 0.0)
    fan_in = (C // groups) * kh * kw
    wfl = rng.normal(0.0, np.sqrt(2.0 / fan_in), (O, C // groups, kh, kw))
    bias = rng.normal(0.0, 0.1, O)
    a_fmt = spec.fit_format(0.0, float(np.quantile(xf, 0.999)) or 1.0, n, signed=a_signed)
    x = spec.quantize(xf, a_fmt)
    w, w_fmts = spec.quantize_per_channel(wfl, n, axis=0, signed=w_signed)
    # output range from a float reference of the layer
    out_fmt = spec.fit_format(0.0, float(fan_in) ** 0.5 * 0.6, n, signed=a_signed)
    rq = model.Requant.from_formats(
        a_fmt=a_fmt, b_a=b_a, w_fmts=w_fmts, b_w=b_w, out_fmt=out_fmt, b_out=b_out,
        taps=taps if taps is not None else fan_in, rounding="half_even", bias=bias,
        bits=const_bits)
    K, S = constant_arrays(rq)
    return x, w, K, S, dict(a=a_fmt, w=w_fmts, out=out_fmt, float_x=xf, float_w=wfl, bias=bias)


def layer_params(design, *, kind: str, b_a: int, b_w: int, b_out: int, rounding: str,
                 seed: int, stride=1, padding=0, groups=1, pad_code=0, planes=False) -> dict:
    """The params of a dense or conv layer case for ``design`` (a
    ``dqt_hw.design.Design``): the formats' n and signedness, the accumulator, the view
    rounding and the constant width are the design's. ``planes``: the case also holds
    the bit-plane form of x (or a) and w (the key is written only when true)."""
    d = design
    p = {
        "a_format": {"n": d.n, "signed": d.signed},
        "w_format": {"n": d.n, "signed": d.signed},
        "b_a": b_a, "b_w": b_w, "b_out": b_out, "out_signed": d.signed,
        "acc_width": d.acc_width, "overflow": d.overflow, "view_rounding": d.view_rounding,
        "rounding": rounding, "const_bits": d.kbits, "seed": seed,
    }
    if kind == "conv_layer":
        p.update(stride=stride, padding=padding, groups=groups, pad_code=pad_code)
    else:
        p.update(stride=None, padding=None, groups=None, pad_code=None)
    if planes:
        p["planes"] = True
    return p


def offset_layer(rng, *, M, C, O, H=1, Wd=1, k=1, n=_DEFAULT.n, const_bits=_DEFAULT.kbits,
                 rounding="half_even", ramp=(1.0, 1.0)):
    """Layer data where every requantization term matters: uniform random master codes
    (scaled per image column by a ramp from ``ramp[0]`` to ``ramp[1]``, so that the
    accumulators grow across the image), activations with a negative minimum (k3 != 0),
    per-channel unsigned weight formats (k2 != 0), a bias and an output format fitted to
    the float layer (k4 != 0). Unsigned codes. Returns (x (M, C, H, Wd), w (O, C, k, k),
    master Requant at n/n -> n)."""
    hi = (1 << n) - 1
    scale = np.linspace(ramp[0], ramp[1], Wd)[None, None, None, :]
    x = np.rint(rng.integers(0, hi + 1, (M, C, H, Wd)) * scale).astype(np.int64)
    w = rng.integers(0, hi + 1, (O, C, k, k)).astype(np.int64)
    a_fmt = spec.Format(n, m=-0.25, delta=1.0 / hi)
    spans = rng.uniform(0.5, 2.0, O)
    w_fmts = [spec.Format(n, m=-0.6 * s, delta=s / hi) for s in spans]
    bias = rng.normal(0.0, 0.5, O)
    xr = a_fmt.m + a_fmt.delta * x
    wr = np.stack([f.m + f.delta * w[o] for o, f in enumerate(w_fmts)])
    pad = k // 2
    xp = np.pad(xr, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=a_fmt.m)
    y = np.zeros((M, O, H, Wd))
    for dy in range(k):
        for dx in range(k):
            y += np.einsum("nchw,oc->nohw", xp[:, :, dy:dy + H, dx:dx + Wd], wr[:, :, dy, dx])
    y += bias[None, :, None, None]
    out_fmt = spec.fit_format(float(np.quantile(y, 0.02)), float(np.quantile(y, 0.98)), n)
    rq = model.Requant.from_formats(a_fmt=a_fmt, b_a=n, w_fmts=w_fmts, b_w=n, out_fmt=out_fmt,
                                    b_out=n, taps=C * k * k, rounding=rounding, bias=bias,
                                    bits=const_bits)
    return x, w, rq


# ----------------------------------------------------------------------------- canonical


def _switched_case(design, name, kind, x, w, master, *, b_a, b_w, seed, rounding, **geo):
    n = design.n
    rq = master.switched(d_a=n - b_a, d_w=n - b_w, d_out=0)
    K, S = constant_arrays(rq)
    params = layer_params(design, kind=kind, b_a=b_a, b_w=b_w, b_out=rq.b_out,
                          rounding=rounding, seed=seed, **geo)
    key = "x" if kind == "conv_layer" else "a"
    return build_case(name, kind, params, {key: x, "w": w, "K": K, "S": S})


def canonical_cases() -> list[CaseData]:
    """The canonical golden cases (small; checked in under golden/, README there)."""
    cases = []
    q = np.arange(256, dtype=np.int64)
    for stem in ("dqt_view_floor", "dqt_view"):
        d = reference(stem)
        cases.append(build_case(f"view_n{d.n}_{d.view_rounding}", "nested_view",
                                {"n": d.n, "signed": d.signed, "rounding": d.view_rounding,
                                 "widths": list(d.widths), "planes": True}, {"q": q}))
    cases.append(build_case("view_n8_signed_floor", "nested_view",
                            {"n": 8, "signed": True, "rounding": "floor",
                             "widths": list(range(2, 9)), "planes": True}, {"q": q - 128}))
    rng = np.random.default_rng(101)
    a = rng.integers(0, 256, (8, 64))
    w = rng.integers(0, 256, (64, 8))
    gp = {"a_bits": 8, "a_signed": False, "w_bits": 8, "w_signed": False, "seed": 101}
    cases.append(build_case("gemm_8x64x8_w32_wrap", "gemm",
                            {**gp, "acc_width": 32, "overflow": "wrap"}, {"a": a, "w": w}))
    cases.append(build_case("gemm_8x64x8_w20_wrap", "gemm",
                            {**gp, "acc_width": 20, "overflow": "wrap"}, {"a": a, "w": w}))
    rng = np.random.default_rng(102)
    a = rng.integers(128, 256, (8, 48))  # large activations, signed weights: saturation
    w = rng.integers(-128, 128, (48, 8))
    w[:, :4] = np.minimum(np.abs(w[:, :4]), 127)  # half the columns climb to +max, the rest wander
    gp = {"a_bits": 8, "a_signed": False, "w_bits": 8, "w_signed": True, "seed": 102}
    cases.append(build_case("gemm_8x48x8_w18_saturate", "gemm",
                            {**gp, "acc_width": 18, "overflow": "saturate"}, {"a": a, "w": w}))
    w32 = reference("dqt_tile8x8_w32")
    rng = np.random.default_rng(103)
    x, w, K, S, _ = layer_inputs(rng, LayerShape("conv", "conv_layer", 8, 8, 6, 6, 3),
                                 widths=(4, 4, 8))
    cases.append(build_case(
        "conv_8x6x6_k3_b4x4_w32", "conv_layer",
        layer_params(w32, kind="conv_layer", b_a=4, b_w=4, b_out=8, rounding="half_even",
                     seed=103, padding=1),
        {"x": x, "w": w, "K": K, "S": S}))
    rng = np.random.default_rng(104)
    x, w, K, S, _ = layer_inputs(rng, LayerShape("dense", "dense_layer", 16, 8, batch=4),
                                 widths=(8, 6, 8))
    dense = Design(rows=4, cols=4, acc_width=18, overflow="saturate", view_rounding="half_up")
    cases.append(build_case(
        "dense_4x16x8_b8x6_w18_sat", "dense_layer",
        layer_params(dense, kind="dense_layer", b_a=8, b_w=6, b_out=8, rounding="half_away",
                     seed=104),
        {"a": x.reshape(4, 16), "w": w.reshape(8, 16).T.copy(), "K": K, "S": S}))
    # every requantization term nonzero and each changing the codes, for the reference
    # tiles: the wrapping W = 32 tiles at 8/8, 4/4 and 2/2 (pack factors 1, 2, 4 of
    # dqt_tile4x4_pack4), the W = 18 saturating tile at 8/8 with some accumulators
    # saturated and others not (the codes shrink to the left of the image by a ramp)
    rng = np.random.default_rng(105)
    x, w, master = offset_layer(rng, M=1, C=16, O=8, H=6, Wd=6, k=3, rounding="half_even")
    for b in (8, 4, 2):
        cases.append(_switched_case(w32, f"conv_16x6x6_k3_b{b}x{b}_w32_wrap", "conv_layer", x,
                                    w, master, b_a=b, b_w=b, seed=105, rounding="half_even",
                                    padding=1))
    sat = reference("dqt_tile8x8_w18_sat")
    rng = np.random.default_rng(106)
    x, w, master = offset_layer(rng, M=1, C=16, O=8, H=6, Wd=6, k=3, rounding="half_away",
                                ramp=(0.0, 0.3))
    cases.append(_switched_case(sat, "conv_16x6x6_k3_b8x8_w18_sat", "conv_layer", x, w,
                                master, b_a=8, b_w=8, seed=106, rounding="half_away",
                                padding=1))
    return cases


def write_canonical(root) -> list:
    """Write the canonical golden set (small; checked in under golden/); every case must
    be meaningful (``fit.check_meaningful``)."""
    from .fit import check_meaningful
    from .io import update_set

    cases = canonical_cases()
    for c in cases:
        check_meaningful(c.case())
    return update_set(root, cases, source={"command": "dqt-hw golden canonical"})
