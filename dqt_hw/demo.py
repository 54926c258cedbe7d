"""``dqt-hw demo``: the main job end to end on one design.

Quantizes a ResNet-18 CIFAR-10 conv layer (the built-in layer ``resnet18_l1c1``:
layer1.0.conv1, 64 -> 64 channels, 3x3, pad 1, on a 32x32 input), runs it bit-exactly at
several (b_a, b_w) width pairs — every pair from the 8-bit master codes by a shift, its
constants by a change of S alone — and at several accumulator widths (the design's among
them) with the design's overflow mode and view rounding, prints what an architect reads
(bits needed, overflow events, codes changed against a wide accumulator, error against
float), and writes the golden sets for the design (``dqt_hw.golden.writer``: several width
pairs, 8/8 and 4/4 among them, switched constants). ``make demo`` then runs those sets on
the design's generated tile (``dqt-hw sim``), writes its Verilog and its cost report, and
runs the shipped network, all from ``designs/demo.toml``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEFAULT_PAIRS = ((8, 8), (8, 4), (6, 6), (4, 8), (4, 4), (3, 3), (2, 2))
"""Width pairs of the printed table (those the design builds)."""
TABLE_ACC = (32, 20, 18, 16)
"""Accumulator widths of the printed table, besides the design's own."""
BUILTIN = "resnet18_l1c1"


def register(sub):
    from .design.cli import add_design_args
    from .golden.writer import BUILTINS

    p = sub.add_parser("demo", help="run the main job on the built-in demo layer for a design")
    add_design_args(p)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument("--seed", type=int, default=BUILTINS[BUILTIN].seed,
                   help="seed of the layer's data")
    p.set_defaults(func=run)


def _float_reference(f, out_fmt, padding):
    """The layer in float on the unquantized data, clamped to the output range."""
    x, w, bias = f["float_x"], f["float_w"], f["bias"]
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    p = padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.stack([xp[:, :, ky:ky + H, kx:kx + W] for ky in range(kh) for kx in range(kw)], 2)
    y = np.einsum("nckhw,ock->nohw", cols, w.reshape(O, C, kh * kw)) + bias[None, :, None, None]
    lo = out_fmt.m
    hi = out_fmt.m + out_fmt.delta * ((1 << out_fmt.n) - 1)
    return np.clip(y, lo, hi)


def run(args) -> int:
    from . import model, spec
    from .design.cli import design_from_args
    from .golden.fit import summary
    from .golden.writer import builtin_source, layer_data, write_design_set

    d = design_from_args(args, component="tile")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    src = builtin_source(BUILTIN, seed=args.seed)
    s = src.shape
    t0 = time.perf_counter()
    x, w, master, f = layer_data(src, d)
    n = d.n
    ref = _float_reference(f, f["out"], s.padding)
    taps = s.C * s.k * s.k
    macs = s.O * s.H * s.W * taps
    print(f"ResNet-18 CIFAR-10 layer1.0.conv1: x 1x{s.C}x{s.H}x{s.W}, w {s.O}x{s.C}x{s.k}x{s.k}, "
          f"pad {s.padding}, {macs / 1e6:.1f} M MACs; {n}-bit master codes, per-channel weight "
          f"formats, seed {src.seed}")
    print(f"design {d.name}: W = {d.acc_width} {d.overflow}, views {d.view_rounding}; "
          f"requantization {master.rounding}; the table runs every W with the design's "
          f"overflow mode\n")
    accs = sorted({d.acc_width, *TABLE_ACC}, reverse=True)
    hdr = (f"{'b_a':>3} {'b_w':>3} {'W':>3} | {'bound':>5} {'needed':>6} {'events':>8} "
           f"{'outputs hit':>11} {f'codes != W{accs[0]}':>12} | {'mean |err| LSB':>14}")
    print(hdr)
    print("-" * len(hdr))
    fmt = spec.Format(n, signed=d.signed)
    for b_a, b_w in DEFAULT_PAIRS:
        if b_a not in d.widths or b_w not in d.widths:
            continue
        rq = master.switched(d_a=n - b_a, d_w=n - b_w, d_out=0)
        args_l = dict(a_fmt=fmt, w_fmt=fmt, b_a=b_a, b_w=b_w, view_rounding=d.view_rounding,
                      requant=rq, geometry=model.ConvGeometry(s.stride, s.padding))
        wide = None
        bound = b_a + b_w + 1 + int(np.ceil(np.log2(taps)))
        for W in accs:
            if W < b_a + b_w + 1 or W > model.MAX_MODEL_ACC_WIDTH:
                continue
            codes, st = model.conv_layer(x, w, acc_width=W, overflow=d.overflow, stats=True,
                                         **args_l)
            if wide is None:
                wide = codes
            changed = int(np.count_nonzero(codes != wide))
            err = np.abs(f["out"].real(codes) - ref).mean() / f["out"].delta
            mark = " <- design" if W == d.acc_width else ""
            print(f"{b_a:>3} {b_w:>3} {W:>3} | {bound:>5} {st.bits_needed:>6} {st.events:>8} "
                  f"{st.outputs_affected:>11} {changed:>12} | {err:>14.2f}{mark}")
    print(f"\n'bound' = b_a + b_w + 1 + ceil(log2 {taps}), the width that can never overflow; "
          f"'needed' = the narrowest accumulator this data needs.")
    print("Constants at every width pair are the 8/8 constants with S shifted (no K recomputed).")
    path, cases = write_design_set(d, out / "golden", src)
    print(f"\ngolden sets for {d.name}: {path}")
    for c in cases:
        print(f"  {summary(c.case())}")
    print(f"verify with `dqt-hw golden verify {path}`; run on the tile with "
          f"`dqt-hw sim --design ... --golden {path}`")
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return 0
