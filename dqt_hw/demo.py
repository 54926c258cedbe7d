"""``dqt-hw demo``: the main job end to end on a built-in default.

Quantizes a ResNet-18 CIFAR-10 conv layer (layer1.0.conv1: 64 -> 64 channels, 3x3, pad 1,
on a 32x32 input), runs it bit-exactly at several (b_a, b_w) width pairs — every pair
from the 8-bit master codes by a shift, its constants by a change of S alone — and at
several accumulator widths, prints what an architect reads (bits needed, overflow events,
codes changed against a wide accumulator, error against float), and writes golden vectors
(``make demo`` then generates the default tile's Verilog, runs those vectors on it in cocotb,
and prints the cost report and the shipped network's results).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEFAULT_PAIRS = ((8, 8), (8, 4), (6, 6), (4, 8), (4, 4), (3, 3), (2, 2))
DEFAULT_ACC = (32, 20, 18, 16)
LAYER = dict(C=64, O=64, H=32, Wd=32, kh=3, kw=3)
SEED = 2026


def register(sub):
    p = sub.add_parser("demo", help="run the main job on the built-in default layer")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the layer's data")
    p.set_defaults(func=run)


def _float_reference(f, b_out_fmt):
    """The layer in float on the unquantized data, ReLU-clamped to the output range."""
    x, w, bias = f["float_x"], f["float_w"], f["bias"]
    N, C, H, W = x.shape
    O = w.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, ky:ky + H, kx:kx + W] for ky in range(3) for kx in range(3)], 2)
    y = np.einsum("nckhw,ock->nohw", cols, w.reshape(O, C, 9)) + bias[None, :, None, None]
    lo = b_out_fmt.m
    hi = b_out_fmt.m + b_out_fmt.delta * ((1 << b_out_fmt.n) - 1)
    return np.clip(y, lo, hi)


def run(args) -> int:
    from . import model, spec
    from .golden.cases import conv_params, layer_inputs, make_case

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    x, w, K, S, f = layer_inputs(rng, **LAYER, b_a=8, b_w=8, b_out=8)
    a_fmt, w_fmts, out_fmt = f["a"], f["w"], f["out"]
    master = model.Requant.from_formats(
        a_fmt=a_fmt, b_a=8, w_fmts=w_fmts, b_w=8, out_fmt=out_fmt, b_out=8, taps=576,
        rounding="half_even", bias=f["bias"])
    ref = _float_reference(f, out_fmt)
    macs = LAYER["O"] * LAYER["H"] * LAYER["Wd"] * LAYER["C"] * 9
    print(f"ResNet-18 CIFAR-10 layer1.0.conv1: x 1x64x32x32, w 64x64x3x3, pad 1, "
          f"{macs / 1e6:.1f} M MACs; 8-bit master codes, per-channel weight formats, seed {args.seed}")
    print(f"rounding: views half_up (Eq. 4), requantization half_even; overflow mode saturate\n")
    hdr = (f"{'b_a':>3} {'b_w':>3} {'W':>3} | {'bound':>5} {'needed':>6} {'events':>8} "
           f"{'outputs hit':>11} {'codes != W32':>12} | {'mean |err| LSB':>14}")
    print(hdr)
    print("-" * len(hdr))
    wf = spec.Format(8)
    rows = []
    for b_a, b_w in DEFAULT_PAIRS:
        rq = master.switched(d_a=8 - b_a, d_w=8 - b_w, d_out=0)
        args_l = dict(a_fmt=spec.Format(8), w_fmt=wf, b_a=b_a, b_w=b_w, view_rounding="half_up",
                      requant=rq, padding=1)
        wide = None
        bound = b_a + b_w + 1 + int(np.ceil(np.log2(576)))
        for W in DEFAULT_ACC:
            if W < b_a + b_w + 1:
                continue
            codes, st = model.conv_layer(x, w, acc_bits=W, overflow="saturate", stats=True,
                                         **args_l)
            if wide is None:
                wide = codes
            changed = int(np.count_nonzero(codes != wide))
            err = np.abs(out_fmt.real(codes) - ref).mean() / out_fmt.delta
            rows.append((b_a, b_w, W, st, changed))
            print(f"{b_a:>3} {b_w:>3} {W:>3} | {bound:>5} {st.bits_needed:>6} {st.events:>8} "
                  f"{st.outputs_affected:>11} {changed:>12} | {err:>14.2f}")
        if (b_a, b_w) in ((8, 8), (4, 4)):
            for W, ov in ((32, "wrap"), (18, "saturate")):
                make_case(out / "golden", f"resnet18_l1c1_b{b_a}x{b_w}_w{W}_{ov}", "conv_layer",
                          conv_params(b_a=b_a, b_w=b_w, acc_bits=W, overflow=ov,
                                      view_rounding="half_up", seed=args.seed),
                          {"x": x, "w": w, "K": K, "S": S})
    print(f"\n'bound' = b_a + b_w + 1 + ceil(log2 576), the width that can never overflow; "
          f"'needed' = the narrowest accumulator this data needs.")
    print(f"Constants at every width pair are the 8/8 constants with S shifted (no K recomputed).")
    print(f"golden vectors: {out / 'golden'} (4 cases; verify with `dqt-hw golden verify {out / 'golden'}`)")
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0
