"""dqt_hw's depthwise convs against onnxruntime's ConvInteger and PyTorch's quantized
Conv2d, side by side, in one run.

    .venv/bin/python bench/bench_depthwise.py             # full run (make bench)
    .venv/bin/python bench/bench_depthwise.py --quick     # smoke run (batch 1, 3 repeats)

Shapes: the 3x3 depthwise layers of MobileNetV2 at 224x224 input (channels x input size,
stride 1 or 2, pad 1), batch 1 and 16; 8-bit codes (uint8 activations, int8 weights).
Each row times, in alternating blocks of calls after a pause (as bench/bench_conv.py):

- ``conv2d``: ``dqt_hw.model.conv2d(..., groups=C)``, NCHW codes in, int64 accumulators
  out (W = 32 wrap), checked equal (==) to ConvInteger's on the same arrays;
- ``layer``: the fused layer ``FusedConv.run_nhwc`` (8/8, W = 32, requantized to uint8
  codes, channels-last in and out), checked equal to the layer-by-layer model and spread
  over the code range;
- ``before``: ``conv2d`` by the group-by-group GEMM path every depthwise conv took before
  ``model/depthwise.py`` (the same codes; timed fewer times: it is slow);
- peers: onnxruntime's ``ConvInteger`` (u8s8, ``group`` = C) and, where torch imports,
  PyTorch's quantized ``Conv2d`` (x86 backend, ``groups`` = C, channels-last; it
  requantizes in float, so its outputs are not compared).

Ratios are dqt_hw / peer (above 1: dqt_hw is faster). A mismatch fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_conv import BLOCK, PAUSE, THREADS, environment_notes, load_average, timed  # noqa: E402

SHAPES = [(32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1),
          (192, 28, 2), (384, 14, 1), (576, 14, 1), (576, 14, 2), (960, 7, 1)]
"""MobileNetV2's depthwise layers: (channels, input size, stride)."""


def _fused(C, stride, rng):
    """The fused 8/8 depthwise layer (``FusedConv``, W = 32, requantized to uint8)."""
    from dqt_hw import model, spec
    from dqt_hw.model.layer import FusedConv

    w = rng.integers(-128, 128, (C, 1, 3, 3)).astype(np.int64)
    S = 36  # int8 weights against uint8 codes, 9 taps: the outputs spread over 0..255
    consts = tuple((spec.Constant(int(rng.integers(1 << 29, 1 << 30)), S),
                    spec.Constant(-int(rng.integers(1 << 26, 1 << 27)), S),
                    spec.Constant(int(rng.integers(-(1 << 20), 1 << 20)), S),
                    spec.Constant(int(rng.integers(112, 144)) << 20, 20))  # about 128
                   for _ in range(C))
    rq = model.Requant(consts, "half_even", 8)
    fc = FusedConv(w, model.ConvArgs(stride, 1, C, 0, 32), a_fmt=spec.Format(8), b_a=8,
                   view_rounding="floor", mode=spec.OVERFLOW_CODES["wrap"], rq=rq,
                   out_dtype=np.uint8)
    assert fc.ok and fc.dw is not None
    return fc


def _median_rate(runs, repeats, mac):
    """Time the callables of ``runs`` ({name: (fn, repeats)}) in alternating blocks:
    {name: G multiply-adds per second (median)}."""
    times = {k: [] for k in runs}
    done = 0
    while done < repeats:
        for name, (fn, reps) in runs.items():
            k = min(BLOCK, reps - len(times[name]))
            if k <= 0:
                continue
            time.sleep(PAUSE)
            for _ in range(k):
                times[name].append(timed(fn)[0])
        done += BLOCK
    return {k: mac / statistics.median(v) / 1e9 for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: batch 1, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per row (20)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (1,16)")
    ap.add_argument("--out", default="out/bench", help="folder for depthwise.md")
    ap.add_argument("--seed", type=int, default=20261207)
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 20)
    batches = [int(b) for b in args.batches.split(",")] if args.batches else (
        [1] if args.quick else [1, 16])

    import numba
    import onnxruntime as ort

    from dqt_hw import model
    from dqt_hw.model import depthwise
    from dqt_hw.peers import conv_integer_session

    import torch_peers

    use_torch = torch_peers.available()
    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(args.seed)
    rows, failures = [], []
    load0 = load_average()
    t0 = time.perf_counter()
    for C, H, s in SHAPES:
        for Nb in batches:
            x = rng.integers(0, 256, (Nb, C, H, H)).astype(np.uint8)
            w = rng.integers(-128, 128, (C, 1, 3, 3)).astype(np.int8)
            Ho = (H - 1) // s + 1
            mac = Nb * C * Ho * Ho * 9
            sess = conv_integer_session(x.shape, w, stride=s, padding=1, threads=THREADS,
                                        w_dtype=np.int8, groups=C)
            ort_run = lambda: sess.run(None, {"x": x})[0]  # noqa: E731
            ours = lambda: model.conv2d(x, w, stride=s, padding=1, groups=C,  # noqa: E731
                                        acc_width=32, overflow="wrap")
            fc = _fused(C, s, rng)
            xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            layer = lambda: fc.run_nhwc(xl, True)  # noqa: E731
            ok = bool(np.array_equal(ours(), ort_run().astype(np.int64)))
            got = layer()
            ok_l = bool(np.array_equal(got, fc.run(x).transpose(0, 2, 3, 1)))
            ok_l = ok_l and len(np.unique(got)) > 64
            orig = depthwise.applies
            depthwise.applies = lambda w, groups: False
            try:
                ok_b = bool(np.array_equal(ours(), ort_run().astype(np.int64)))
                before = _median_rate({"before": (ours, max(1, repeats // 4))},
                                      max(1, repeats // 4), mac)["before"]
            finally:
                depthwise.applies = orig
            runs = {"conv2d": (ours, repeats), "fused": (layer, repeats),
                    "ort": (ort_run, repeats)}
            if use_torch:
                qconv = torch_peers.qconv_x86(x, w, padding=1, threads=THREADS, stride=s,
                                              groups=C)
                qconv()
                runs["qconv"] = (qconv, repeats)
            g = _median_rate(runs, repeats, mac)
            row = dict(layer=f"{C}x{H}x{H} s{s}", batch=Nb, before=before, **g,
                       check="ok" if ok and ok_l and ok_b else "MISMATCH")
            if row["check"] != "ok":
                failures.append(f"{row['layer']} N={Nb}")
            rows.append(row)
            print(_fmt(row), flush=True)
    notes = environment_notes(repeats, ort.__version__, numba.__version__,
                              time.perf_counter() - t0, load0, load_average())
    if use_torch:
        import torch

        notes += (f"- torch {torch.__version__}, quantized engine "
                  f"{torch.backends.quantized.engine}, {torch.get_num_threads()} threads\n")
    table = _markdown(rows, notes, use_torch)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "depthwise.md").write_text(table)
    print()
    print(table)
    print(f"written: {out / 'depthwise.md'}")
    if failures:
        print("MISMATCH in: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def _fmt(r) -> str:
    q = f", qconv {r['qconv']:.1f}" if "qconv" in r else ""
    return (f"{r['layer']} N={r['batch']}: conv2d {r['conv2d']:.1f} G (before "
            f"{r['before']:.2f}), ConvInteger {r['ort']:.1f}{q}, fused layer "
            f"{r['fused']:.1f} [{r['check']}]")


def _markdown(rows, notes, use_torch) -> str:
    head = ("| layer | batch | conv2d G | before G | ConvInteger G | conv2d / ConvInteger |"
            + (" qconv G | conv2d / qconv | fused layer G | layer / qconv |" if use_torch
               else " fused layer G |") + " check |\n")
    head += "|---|---:|---:|---:|---:|---:|" + ("---:|" * (4 if use_torch else 1)) + "---|\n"
    body = ""
    for r in rows:
        body += (f"| {r['layer']} | {r['batch']} | {r['conv2d']:.1f} | {r['before']:.2f} | "
                 f"{r['ort']:.1f} | {r['conv2d'] / r['ort']:.2f} |")
        if use_torch:
            body += (f" {r['qconv']:.1f} | {r['conv2d'] / r['qconv']:.2f} | "
                     f"{r['fused']:.1f} | {r['fused'] / r['qconv']:.2f} |")
        else:
            body += f" {r['fused']:.1f} |"
        body += f" {r['check']} |\n"
    return ("# Depthwise 3x3 convs: dqt_hw vs onnxruntime ConvInteger and PyTorch "
            "(G multiply-adds/s, medians)\n\n" + head + body + "\n" + notes)


if __name__ == "__main__":
    sys.exit(main())
