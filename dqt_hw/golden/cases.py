"""Golden cases: how each kind of case is computed by the reference model, and the
canonical set checked in under golden/.

A case is (kind, params, inputs); ``compute`` derives every output from the inputs with
``dqt_hw.model``, so a reader can re-derive and compare (``verify_case``).
"""

from __future__ import annotations

import numpy as np

from .. import model, spec
from .io import GoldenArray, GoldenCase, write_case

KINDS = ("nested_view", "gemm", "dense_layer", "conv_layer")
SUM_BITS = 32  # side sums in hex files: signed 32 bits
SHIFT_BITS = 16  # E and S in hex files: signed 16 bits


def _fmt(p: dict, key: str) -> spec.Format:
    f = p[key]
    return spec.Format(int(f["n"]), signed=bool(f["signed"]))


def _requant_from_arrays(K, S, bits, rounding, b_out, signed, clamp=None):
    C = K.shape[1]
    consts = tuple(
        tuple(spec.Constant(int(K[t, c]), int(S[t, c]), bits) for t in range(4)) for c in range(C)
    )
    return model.Requant(consts, rounding, b_out, signed, clamp)


def compute(kind: str, params: dict, inputs: dict) -> tuple[dict, dict]:
    """(outputs, stats) of a case: outputs maps names to ``GoldenArray``s."""
    p = params
    if kind == "nested_view":
        n, signed = int(p["n"]), bool(p["signed"])
        q = inputs["q"]
        v = np.stack([
            model.nested_view(q, n=n, b=b, rounding=p["rounding"], signed=signed)
            for b in p["widths"]
        ])
        return {"v": GoldenArray(v, n, signed)}, {}
    if kind == "gemm":
        acc, st = model.gemm(inputs["a"], inputs["w"], acc_bits=p["acc_bits"],
                             overflow=p["overflow"], stats=True)
        return {"acc": GoldenArray(acc, p["acc_bits"], True)}, _stats(st)
    if kind in ("dense_layer", "conv_layer"):
        af, wf = _fmt(p, "a_format"), _fmt(p, "w_format")
        b_a, b_w = af.check_width(p["b_a"]), wf.check_width(p["b_w"])
        rq = _requant_from_arrays(inputs["K"], inputs["S"], int(p["const_bits"]),
                                  p["rounding"], int(p["b_out"]), bool(p["out_signed"]))
        a_name = "a" if kind == "dense_layer" else "x"
        av = model.nested_view(inputs[a_name], n=af.n, b=b_a, rounding=p["view_rounding"],
                               signed=af.signed)
        wv = model.nested_view(inputs["w"], n=wf.n, b=b_w, rounding=p["view_rounding"],
                               signed=wf.signed)
        common = dict(a_fmt=af, w_fmt=wf, b_a=b_a, b_w=b_w, view_rounding=p["view_rounding"],
                      acc_bits=p["acc_bits"], overflow=p["overflow"], requant=rq, stats=True)
        if kind == "dense_layer":
            out, st = model.dense_layer(inputs["a"], inputs["w"], **common)
            acc = model.gemm(av, wv, acc_bits=p["acc_bits"], overflow=p["overflow"])
            sa, sw = model.side_sums_gemm(av, wv)
        else:
            geo = dict(stride=p["stride"], padding=p["padding"], groups=p["groups"],
                       pad_code=p["pad_code"])
            out, st = model.conv_layer(inputs["x"], inputs["w"], **common, **geo)
            acc = model.conv2d(av, wv, acc_bits=p["acc_bits"], overflow=p["overflow"], **geo)
            sa, sw = model.side_sums_conv2d(av, wv, **geo)
        Kc, Ec, Sc = rq.arrays()
        outs = {
            f"{a_name}_view": GoldenArray(av, b_a, af.signed),
            "w_view": GoldenArray(wv, b_w, wf.signed),
            "acc": GoldenArray(acc, p["acc_bits"], True),
            "sum_a": GoldenArray(sa, SUM_BITS, True),
            "sum_w": GoldenArray(sw, SUM_BITS, True),
            "rq_K": GoldenArray(Kc, int(p["const_bits"]), True),
            "rq_E": GoldenArray(Ec, SHIFT_BITS, True),
            "rq_S": GoldenArray(Sc, SHIFT_BITS, True),
            "out": GoldenArray(out, int(p["b_out"]), bool(p["out_signed"])),
        }
        return outs, _stats(st)
    raise ValueError(f"unknown golden case kind {kind!r} (known: {KINDS})")


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
    if kind == "nested_view":
        return {"q": (params["n"], params["signed"])}
    if kind == "gemm":
        return {k: (params[f"{k}_bits"], params[f"{k}_signed"]) for k in ("a", "w")}
    a = "a" if kind == "dense_layer" else "x"
    return {
        a: (params["a_format"]["n"], params["a_format"]["signed"]),
        "w": (params["w_format"]["n"], params["w_format"]["signed"]),
        "K": (params["const_bits"], True),
        "S": (SHIFT_BITS, True),
    }


def make_case(root, name, kind, params, inputs):
    """Compute a case's outputs and write it (atomically) under ``root``."""
    bits = input_bits(kind, params)
    arrays = {k: GoldenArray(np.asarray(v, np.int64), *bits[k]) for k, v in inputs.items()}
    outs, stats = compute(kind, params, inputs)
    arrays.update(outs)
    return write_case(root, name, kind=kind, params=params, arrays=arrays,
                      extra={"stats": stats} if stats else None)


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
    if stats and case.manifest.get("extra", {}).get("stats") != stats:
        bad.append("stats")
    return bad


# ----------------------------------------------------------------------------- layers


def layer_inputs(rng, *, C, O, H, Wd, kh, kw, n=8, w_signed=False, const_bits=32,
                 b_a=8, b_w=8, b_out=8, groups=1, batch=1, taps=None):
    """A realistic layer: ReLU-like activations quantized per tensor, He-initialized
    weights quantized per output channel, a bias, constants from the formats at
    (b_a, b_w, b_out). Returns (x codes, w codes, K (4, O), S (4, O), formats dict)."""
    xf = np.maximum(rng.normal(0.0, 1.0, (batch, C, H, Wd)), 0.0)
    fan_in = (C // groups) * kh * kw
    wfl = rng.normal(0.0, np.sqrt(2.0 / fan_in), (O, C // groups, kh, kw))
    bias = rng.normal(0.0, 0.1, O)
    a_fmt = spec.fit_format(0.0, float(np.quantile(xf, 0.999)) or 1.0, n)
    x = spec.quantize(xf, a_fmt)
    w, w_fmts = spec.quantize_per_channel(wfl, n, axis=0, signed=w_signed)
    # output range from a float reference of the layer
    out_fmt = spec.fit_format(0.0, float(fan_in) ** 0.5 * 0.6, n)
    rq = model.Requant.from_formats(
        a_fmt=a_fmt, b_a=b_a, w_fmts=w_fmts, b_w=b_w, out_fmt=out_fmt, b_out=b_out,
        taps=taps if taps is not None else fan_in, rounding="half_even", bias=bias,
        bits=const_bits)
    K = np.array([[k.K for k in ch] for ch in rq.constants], np.int64).T.copy()
    S = np.array([[k.S for k in ch] for ch in rq.constants], np.int64).T.copy()
    return x, w, K, S, dict(a=a_fmt, w=w_fmts, out=out_fmt, float_x=xf, float_w=wfl, bias=bias)


def conv_params(*, n=8, w_signed=False, b_a, b_w, b_out=8, acc_bits, overflow,
                view_rounding="floor", rounding="half_even", stride=1, padding=1, groups=1,
                pad_code=0, const_bits=32, seed):
    return {
        "a_format": {"n": n, "signed": False},
        "w_format": {"n": n, "signed": w_signed},
        "b_a": b_a, "b_w": b_w, "b_out": b_out, "out_signed": False,
        "acc_bits": acc_bits, "overflow": overflow, "view_rounding": view_rounding,
        "rounding": rounding, "stride": stride, "padding": padding, "groups": groups,
        "pad_code": pad_code, "const_bits": const_bits, "seed": seed,
    }


# ----------------------------------------------------------------------------- canonical


def write_canonical(root) -> list:
    """Write the canonical golden set (small; checked in under golden/)."""
    written = []
    q = np.arange(256, dtype=np.int64)
    for r in ("floor", "half_up"):
        written.append(make_case(root, f"view_n8_{r}", "nested_view",
                                 {"n": 8, "signed": False, "rounding": r,
                                  "widths": list(range(1, 9))}, {"q": q}))
    written.append(make_case(root, "view_n8_signed_floor", "nested_view",
                             {"n": 8, "signed": True, "rounding": "floor",
                              "widths": list(range(2, 9))}, {"q": q - 128}))
    rng = np.random.default_rng(101)
    a = rng.integers(0, 256, (8, 64))
    w = rng.integers(0, 256, (64, 8))
    gp = {"a_bits": 8, "a_signed": False, "w_bits": 8, "w_signed": False, "seed": 101}
    written.append(make_case(root, "gemm_8x64x8_w32_wrap", "gemm",
                             {**gp, "acc_bits": 32, "overflow": "wrap"}, {"a": a, "w": w}))
    written.append(make_case(root, "gemm_8x64x8_w20_wrap", "gemm",
                             {**gp, "acc_bits": 20, "overflow": "wrap"}, {"a": a, "w": w}))
    rng = np.random.default_rng(102)
    a = rng.integers(128, 256, (8, 48))  # large activations, signed weights: saturation
    w = rng.integers(-128, 128, (48, 8))
    w[:, :4] = np.minimum(np.abs(w[:, :4]), 127)  # half the columns climb to +max, the rest wander
    gp = {"a_bits": 8, "a_signed": False, "w_bits": 8, "w_signed": True, "seed": 102}
    written.append(make_case(root, "gemm_8x48x8_w18_saturate", "gemm",
                             {**gp, "acc_bits": 18, "overflow": "saturate"}, {"a": a, "w": w}))
    rng = np.random.default_rng(103)
    x, w, K, S, _ = layer_inputs(rng, C=8, O=8, H=6, Wd=6, kh=3, kw=3, b_a=4, b_w=4)
    written.append(make_case(
        root, "conv_8x6x6_k3_b4x4_w32", "conv_layer",
        conv_params(b_a=4, b_w=4, acc_bits=32, overflow="wrap", seed=103),
        {"x": x, "w": w, "K": K, "S": S}))
    rng = np.random.default_rng(104)
    x, w, K, S, _ = layer_inputs(rng, C=16, O=8, H=1, Wd=1, kh=1, kw=1, batch=4, b_a=8, b_w=6)
    written.append(make_case(
        root, "dense_4x16x8_b8x6_w18_sat", "dense_layer",
        {**conv_params(b_a=8, b_w=6, acc_bits=18, overflow="saturate",
                       view_rounding="half_up", rounding="half_away", seed=104),
         "stride": None, "padding": None, "groups": None, "pad_code": None},
        {"a": x.reshape(4, 16), "w": w.reshape(8, 16).T.copy(), "K": K, "S": S}))
    return written
