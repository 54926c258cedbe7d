"""dqt_hw's bit-exact conv2d against onnxruntime's ConvInteger and PyTorch's int8 kernels,
side by side, in one run.

    .venv/bin/python bench/bench_conv.py              # full run (make bench)
    .venv/bin/python bench/bench_conv.py --quick      # short smoke run (batch 1, 3 repeats)
    .venv/bin/python bench/bench_conv.py --repeats 40 --out out/bench

Shapes: the four ResNet-18 CIFAR-10 3x3 layers (C = O = 64 at 32x32, 128 at 16x16, 256 at
8x8, 512 at 4x4; stride 1, pad 1), batch 1 and 16. Cases:

- ``8/8 u W32``: activation and weight codes 0..255 (uint8), W = 32 wrap (no overflow is
  possible); peer ConvInteger u8u8 on the same arrays.
- ``8/8 s W32``: weights as int8 (-128..127); peer ConvInteger u8s8.
- ``4/4 u W32`` / ``4/4 s W32``: 4-bit views (floor) of 8-bit master codes: activations
  0..15, weights 0..15 (u) or -8..7 (s).
- ``8/8 s W18 sat``: codes as ``8/8 s``, W = 18 saturating: saturation really happens (the
  table gives the share of outputs it changed). ConvInteger does not saturate, so this row
  is checked against the model's sequential clamp-every-addition path (``stats=True``,
  the oracle-equivalent kernel) instead.

Each row times dqt_hw.model.conv2d (NCHW uint8/int8 codes in, int64 accumulators out) and
ConvInteger (2 intra-op threads) in alternating blocks of 5 calls (each block after a
50 ms pause, so that thread pools still spinning from the other side's block do not
steal its cores), and reports medians as
GMAC/s (N*O*C*9*H*W multiply-accumulates per call). ``ratio`` is dqt_hw / ConvInteger u8u8
on the same shape and batch, the figure the targets are stated in (issue 3: W = 32 at
least 0.5x at 8/8 and 0.75x at 4/4; saturating W = 18 at least 0.15x). Every dqt_hw
output is checked equal (==) to its reference; a mismatch fails the run (exit status 1).

Where torch imports (the pinned ``train`` extra), two PyTorch peers join the same
alternating blocks on each shape's ``8/8 s W32`` row (their speed does not depend on the
width, so the other rows repeat their figures; ``bench/torch_peers.py``):

- ``torch qconv``: PyTorch's quantized ``Conv2d`` on the x86 backend, channels-last (a
  throughput peer: it requantizes in float, so its outputs are not compared);
- ``torch _int_mm``: the exact int8 GEMM ``torch._int_mm`` on the im2col shapes (the GEMM
  alone); its int32 result is checked equal to dqt_hw's on codes shifted to int8.

Each row also names the kernel that computed its sums (``vpdpbusd``, ``vpmaddwd``, or the
narrow kernel with its int16 chunk, ``dqt_hw.model.plan.kernel_of``), its rate as a
fraction of that kernel's own limit measured in the same run (operands in L1, the same
threads: ``bench/kernel_limit.py``), and for the 4/4 rows the rate over the 8/8 row of
the same weights (where lower widths buy speed: the narrow kernel's levels).

With torch, each shape and batch also times dqt_hw's requantized layer against the quantized
``Conv2d`` like for like (a table of its own): ``FusedConv.run_nhwc``, 8/8 codes, W = 32,
uint8 codes channels-last in and out, its output checked equal to the layer-by-layer
model and spread over the code range.

``vs qconv`` and ``vs _int_mm`` are dqt_hw / peer (issue 15's targets, 0.5x and 1.0x at
batch 16, are stated for a CPU with AMX, whose tile unit these peers use).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SHAPES = [(64, 32), (128, 16), (256, 8), (512, 4)]
TARGETS = {"8/8 u W32": 0.5, "8/8 s W32": 0.5, "4/4 u W32": 0.75, "4/4 s W32": 0.75,
           "8/8 s W18 sat": 0.15}
THREADS = 2
BLOCK = 5  # timed calls in a row of one implementation
PAUSE = 0.05  # seconds of rest before each block


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(f):
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run: batch 1, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per row (20)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (1,16)")
    ap.add_argument("--out", default="out/bench", help="folder for conv.md and conv.csv")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--no-torch", action="store_true",
                    help="leave out the PyTorch peers (quantized Conv2d, _int_mm)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 20)
    batches = [int(b) for b in args.batches.split(",")] if args.batches else (
        [1] if args.quick else [1, 16])

    import numba
    import onnxruntime as ort

    from dqt_hw import model
    from dqt_hw.model.plan import kernel_of, plan_conv
    from dqt_hw.peers import conv_integer_session

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch_peers

    use_torch = torch_peers.available() and not args.no_torch
    import kernel_limit

    # the kernel's own rate with its operands in L1, one core's times the benchmark's
    # threads (two threads measured together move with the machine's other load): the
    # int32 kernel, and the narrow one where this level has it
    limits = {"int32": THREADS * kernel_limit.l1_rate(1)}
    if plan_conv(64, 3, 3, 0, 15, -8, 7).l16:
        limits["narrow"] = THREADS * kernel_limit.l1_rate(1, l16=64)

    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(args.seed)

    rows = []
    fused_rows = []
    failures = []
    load0 = load_average()
    t_start = time.perf_counter()
    for C, H in SHAPES:
        for Nb in batches:
            mac = Nb * C * C * 9 * H * H
            x8 = rng.integers(0, 256, (Nb, C, H, H)).astype(np.uint8)
            w8u = rng.integers(0, 256, (C, C, 3, 3)).astype(np.uint8)
            w8s = rng.integers(-128, 128, (C, C, 3, 3)).astype(np.int8)
            x4 = model.nested_view(x8, n=8, b=4, rounding="floor").astype(np.uint8)
            w4u = model.nested_view(w8u, n=8, b=4, rounding="floor").astype(np.uint8)
            w4s = model.nested_view(w8s, n=8, b=4, rounding="floor",
                                    signed=True).astype(np.int8)
            cases = [
                ("8/8 u W32", x8, w8u, 32, "wrap"),
                ("8/8 s W32", x8, w8s, 32, "wrap"),
                ("4/4 u W32", x4, w4u, 32, "wrap"),
                ("4/4 s W32", x4, w4s, 32, "wrap"),
                ("8/8 s W18 sat", x8, w8s, 18, "saturate"),
            ]
            sessions = {}
            tpeer = {}  # the PyTorch peers' GMAC/s on this shape and batch
            if use_torch:
                x8s = (x8.astype(np.int16) - 128).astype(np.int8)
                qconv = torch_peers.qconv_x86(x8, w8s, padding=1, threads=THREADS)
                mm, mm_nchw = torch_peers.int_mm(x8s, w8s, padding=1, threads=THREADS)
                want_mm = model.conv2d(x8s, w8s, padding=1, acc_width=32, overflow="wrap")
                if not np.array_equal(mm_nchw(mm()), want_mm):
                    failures.append(f"torch._int_mm C={C} H={H} N={Nb} (vs dqt_hw)")
                qconv()

            def peer(x, w):
                key = (id(x), id(w))
                if key not in sessions:
                    sessions[key] = conv_integer_session(x.shape, w, padding=1,
                                                         threads=THREADS, w_dtype=w.dtype)
                s = sessions[key]
                return lambda: s.run(None, {"x": x})[0]

            # the u8u8 peer on the 8-bit codes is every row's yardstick
            for name, x, w, W, ovf in cases:
                ours = lambda x=x, w=w, W=W, ovf=ovf: model.conv2d(  # noqa: E731
                    x, w, padding=1, acc_width=W, overflow=ovf)
                base = peer(x, w8u if w.dtype == np.int8 else w)
                same = peer(x, w)
                # warm-up (compiles Numba kernels once) and the equality check
                got = ours()
                if ovf == "saturate":
                    want, st = model.conv2d(x, w, padding=1, acc_width=W, overflow=ovf,
                                            stats=True)
                    sat = st.outputs_affected / st.outputs
                else:
                    want = same().astype(np.int64)
                    sat = None
                ok = got.shape == want.shape and bool(np.array_equal(got, want))
                if not ok:
                    failures.append(f"{name} C={C} H={H} N={Nb}")
                base()
                same()
                t_ours, t_base, t_same = [], [], []
                runs = [(base, t_base), (ours, t_ours)]
                if w.dtype == np.int8:
                    runs.append((same, t_same))
                t_q, t_m = [], []
                if use_torch and name == "8/8 s W32":
                    runs += [(qconv, t_q), (mm, t_m)]
                # blocks of BLOCK calls, alternating between the implementations, with a
                # pause before each block so that no thread pool still spinning from
                # the previous block (onnxruntime's do) competes with the next one
                done = 0
                while done < repeats:
                    k = min(BLOCK, repeats - done)
                    for fn, ts in runs:
                        time.sleep(PAUSE)
                        for _ in range(k):
                            dt, r = timed(fn)
                            ts.append(dt)
                            if fn is ours:
                                got = r
                    done += k
                ok = ok and bool(np.array_equal(got, want))
                g_ours = mac / statistics.median(t_ours) / 1e9
                g_base = mac / statistics.median(t_base) / 1e9
                g_same = mac / statistics.median(t_same) / 1e9 if t_same else g_base
                ratio = g_ours / g_base
                if t_q:
                    tpeer = dict(qconv=mac / statistics.median(t_q) / 1e9,
                                 int_mm=mac / statistics.median(t_m) / 1e9)
                target = TARGETS[name]
                lo, hi = min(int(x.min()), 0), max(int(x.max()), 0)  # pad code 0
                kern = kernel_of(plan_conv(C, 3, 3, lo, hi, int(w.min()), int(w.max())))
                if ovf == "saturate":
                    kern = "saturating (float lanes)"
                lim = None if ovf == "saturate" else limits[
                    "narrow" if kern.startswith("narrow") else "int32"]
                row = dict(layer=f"{C}x{H}x{H}", batch=Nb, case=name, kernel=kern,
                           of_limit=None if lim is None else g_ours / lim,
                           peer_u8u8=g_base, peer_same=g_same,
                           peer_kind="u8s8" if w.dtype == np.int8 else "u8u8",
                           dqt=g_ours, ratio=ratio, target=target,
                           met=ratio >= target, check="ok" if ok else "MISMATCH",
                           reference="sequential" if ovf == "saturate" else "ConvInteger",
                           saturated=sat)
                rows.append(row)
            if use_torch:
                # the requantized layer, channels-last uint8 in and out: what the quantized
                # Conv2d computes (dqt_hw exactly, PyTorch in float), timed side by side
                fused_rows.append(_fused_row(C, H, Nb, x8, w8s, qconv, mac, repeats, limits))
                fused_rows[-1]["vs_int_mm"] = fused_rows[-1]["dqt"] / tpeer["int_mm"]
                print(_format_fused(fused_rows[-1]), flush=True)
                if fused_rows[-1]["check"] != "ok":
                    failures.append(f"fused layer C={C} H={H} N={Nb}")
            mine = {r["case"]: r["dqt"] for r in rows[-len(cases):]}
            for row in rows[-len(cases):]:  # the PyTorch peers' figures on every row
                row.update(torch_qconv=tpeer.get("qconv"), torch_int_mm=tpeer.get("int_mm"))
                # lower widths buying speed: a 4/4 row's rate over its 8/8 row's
                eight = row["case"].replace("4/4", "8/8")
                row["vs_8_8"] = (row["dqt"] / mine[eight] if row["case"].startswith("4/4")
                                 else None)
                for k in ("qconv", "int_mm"):
                    row[f"vs_{k}"] = row["dqt"] / tpeer[k] if k in tpeer else None
                print(format_row(row), flush=True)
    elapsed = time.perf_counter() - t_start

    notes = environment_notes(repeats, ort.__version__, numba.__version__, elapsed,
                              load0, load_average())
    notes += ("- the kernel's limit (its rate with operands in L1 on one core, times "
              f"{THREADS} threads, bench/kernel_limit.py): "
              + ", ".join(f"{k} {v:.0f} GMAC/s" for k, v in limits.items())
              + "; \"of limit\" is a row's rate over its kernel's\n")
    if use_torch:
        import torch

        notes += (f"- torch {torch.__version__}, quantized engine "
                  f"{torch.backends.quantized.engine}, {torch.get_num_threads()} threads\n")
    table = markdown(rows, notes) + fused_markdown(fused_rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "conv.md").write_text(table)
    with open(out / "conv.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        for r in rows:
            wr.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
    print()
    print(table)
    print(f"written: {out / 'conv.md'}, {out / 'conv.csv'}")
    missed = [r for r in rows if not r["met"]]
    print(f"targets met: {len(rows) - len(missed)} of {len(rows)} rows")
    if failures:
        print("MISMATCH in: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def _fused_row(C, H, Nb, x8, w8s, qconv, mac, repeats, limits):
    """dqt_hw's fused layer (``model.FusedConv``: the 8/8 conv, W = 32, requantized to
    uint8 codes, channels-last in and out) and PyTorch's quantized Conv2d on the same
    codes, in alternating blocks: (row dict)."""
    from dqt_hw import model, spec
    from dqt_hw.model.layer import FusedConv

    rng = np.random.default_rng(C)
    S = 41  # int8 weights against uint8 codes: the outputs spread over the code range
    consts = tuple((spec.Constant(int(rng.integers(1 << 29, 1 << 30)), S),
                    spec.Constant(-int(rng.integers(1 << 20, 1 << 22)), S),
                    spec.Constant(int(rng.integers(-(1 << 20), 1 << 20)), S),
                    spec.Constant(int(rng.integers(1 << 29, 1 << 30)), S))
                   for _ in range(C))
    rq = model.Requant(consts, "half_even", 8)
    fc = FusedConv(w8s.astype(np.int64), model.ConvArgs(1, 1, 1, 0, 32), a_fmt=spec.Format(8),
                   b_a=8, view_rounding="floor", mode=spec.OVERFLOW_CODES["wrap"], rq=rq,
                   out_dtype=np.uint8)
    xl = np.ascontiguousarray(x8.transpose(0, 2, 3, 1))
    ours = lambda: fc.run_nhwc(xl, True)  # noqa: E731
    got = ours()
    want = fc.run(x8).transpose(0, 2, 3, 1)  # the layer-by-layer model, channels-first
    ok = bool(np.array_equal(got, want)) and got.min() < got.max()
    t_ours, t_q = [], []
    done = 0
    while done < repeats:
        for fn, ts in ((ours, t_ours), (qconv, t_q)):
            time.sleep(PAUSE)
            for _ in range(min(BLOCK, repeats - done)):
                ts.append(timed(fn)[0])
        done += BLOCK
    g_ours = mac / statistics.median(t_ours) / 1e9
    g_q = mac / statistics.median(t_q) / 1e9
    return dict(layer=f"{C}x{H}x{H}", batch=Nb, dqt=g_ours, qconv=g_q, vs_qconv=g_ours / g_q,
                of_limit=g_ours / limits["int32"], check="ok" if ok else "MISMATCH")


def _format_fused(r) -> str:
    return (f"{r['layer']:>10} N={r['batch']:<2} fused 8/8 -> u8 NHWC dqt_hw {r['dqt']:6.1f} "
            f"GMAC/s ({r['of_limit']:.0%} of the limit)  torch qconv {r['qconv']:.1f}  "
            f"x{r['vs_qconv']:.2f}  {r['check']}")


def _int_mm_col(r) -> str:
    return _fmt(r.get("vs_int_mm"), ".2f")


def fused_markdown(rows) -> str:
    if not rows:
        return ""
    body = "".join(f"| {r['layer']} | {r['batch']} | {r['dqt']:.1f} | "
                   f"{100 * r['of_limit']:.0f} % | {r['qconv']:.1f} | {r['vs_qconv']:.2f} | "
                   f"{_int_mm_col(r)} | {r['check']} |\n" for r in rows)
    return ("\n## The requantized layer against PyTorch's quantized Conv2d (GMAC/s, medians)\n\n"
            "8/8 codes, W = 32, uint8 codes channels-last in and out on both sides "
            "(dqt_hw `FusedConv.run_nhwc`, exact, checked equal to the layer-by-layer "
            "model; PyTorch requantizes in float).\n\n"
            "| layer | N | dqt_hw fused | of limit | torch qconv | vs qconv | vs _int_mm (GEMM "
            "alone) | check |\n|---|---|---|---|---|---|---|---|\n" + body)


def format_row(r) -> str:
    sat = f"  saturated {r['saturated']:.0%}" if r["saturated"] is not None else ""
    return (f"{r['layer']:>10} N={r['batch']:<2} {r['case']:<14} ConvInteger u8u8 "
            f"{r['peer_u8u8']:6.1f}  {r['peer_kind']} {r['peer_same']:6.1f}  dqt_hw "
            f"{r['dqt']:6.1f} GMAC/s  ratio {r['ratio']:.2f} (target {r['target']})  "
            f"{r['check']}{sat}{_torch_cols(r)}{_width_col(r)}  [{r['kernel']}"
            f"{_limit_col(r)}]")


def _limit_col(r) -> str:
    return "" if r.get("of_limit") is None else f", {r['of_limit']:.0%} of its limit"


def _width_col(r) -> str:
    return "" if r.get("vs_8_8") is None else f"  x{r['vs_8_8']:.2f} of 8/8"


def _torch_cols(r) -> str:
    if r.get("torch_qconv") is None:
        return ""
    return (f"  torch qconv {r['torch_qconv']:.1f} (x{r['vs_qconv']:.2f}), _int_mm "
            f"{r['torch_int_mm']:.1f} (x{r['vs_int_mm']:.2f})")


def _fmt(v, spec=".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def markdown(rows, notes) -> str:
    head = ("| layer | N | case | ConvInteger u8u8 | ConvInteger same dtypes | torch qconv | "
            "torch _int_mm | dqt_hw | kernel | of limit | 4/4 vs 8/8 | ratio vs u8u8 | target | "
            "vs qconv | vs _int_mm | check |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = ""
    for r in rows:
        chk = f"{r['check']} vs {r['reference']}"
        if r["saturated"] is not None:
            chk += f" ({r['saturated']:.0%} of outputs saturated)"
        body += (f"| {r['layer']} | {r['batch']} | {r['case']} | {r['peer_u8u8']:.1f} | "
                 f"{r['peer_kind']} {r['peer_same']:.1f} | {_fmt(r['torch_qconv'])} | "
                 f"{_fmt(r['torch_int_mm'])} | {r['dqt']:.1f} | {r['kernel']} | "
                 f"{_fmt(None if r['of_limit'] is None else 100 * r['of_limit'], '.0f')}"
                 f"{'' if r['of_limit'] is None else ' %'} | "
                 f"{_fmt(r['vs_8_8'], '.2f')} | "
                 f"{r['ratio']:.2f} | {'>=' + str(r['target'])} "
                 f"{'met' if r['met'] else 'MISSED'} | {_fmt(r['vs_qconv'], '.2f')} | "
                 f"{_fmt(r['vs_int_mm'], '.2f')} | {chk} |\n")
    return ("# conv2d: dqt_hw vs onnxruntime ConvInteger and PyTorch (GMAC/s, medians)\n\n"
            + head + body + "\n" + notes)


def load_average() -> str:
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def environment_notes(repeats, ort_version, numba_version, elapsed, load0, load1) -> str:
    core = os.environ.get("OPENBLAS_CORETYPE")
    from dqt_hw.model import _simd

    kern = _simd.describe()
    return (
        f"- CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; {THREADS} threads for both "
        f"(onnxruntime intra-op, Numba; NumPy's OpenBLAS at its default)\n"
        f"- dqt_hw's exact sums: {kern}\n"
        f"- OPENBLAS_CORETYPE={core if core is not None else '(unset)'}\n"
        f"- numpy {np.__version__}, numba {numba_version}, onnxruntime {ort_version}, "
        f"Python {platform.python_version()}\n"
        f"- {repeats} timed repeats per row, in alternating blocks of {BLOCK}; run took "
        f"{elapsed:.0f} s\n"
        f"- system load average (1/5/15 min) at start {load0}, at end {load1}: other work on\n"
        f"  the {os.cpu_count()} CPUs skews both sides, most the shortest (batch 1) calls\n")


if __name__ == "__main__":
    sys.exit(main())
