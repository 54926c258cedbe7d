"""The demo's cocotb regression: the default 8x8 tile against the demo's golden vectors.

``dqt-hw demo --out out/demo`` writes conv_layer golden cases of ResNet-18 CIFAR-10
layer1.0.conv1 under ``out/demo/golden`` (``resnet18_l1c1_b{8x8,4x4}_w{32_wrap,18_saturate}``).
This runs every case that fits the tile (same n, signedness, W and overflow mode; the view
rounding only where a width is below n), as the im2col GEMM of the layer
(1024 x 576 @ 576 x 64) cut into 8 x 8 output blocks of K = 576:

1. **bulk path** (sim/bulk.py, cocotb on Verilator): every block of the layer streamed from
   HDL memories, every output code compared with the golden codes;
2. **per-cycle path** (sim/tb/tb_tile.py ``test_golden``): the first ``--blocks`` blocks
   through Python drivers with random idle cycles on every input stream and random
   back-pressure on the output, checked against the same golden codes.

Prints the verdict of each, the verified MAC/s, and exits 1 on any mismatch (or when no
case fits the tile).

    python -m sim.demo --golden out/demo/golden [--rtl dqt_tile8x8_w32] [--blocks 16]

The default tile is ``rtl/dqt_tile8x8_w32``: the configuration the demo generates as
``out/demo/rtl/dqt_tile_demo`` (8 x 8, n = 8, W = 32 wrap, defaults), whose Verilated
builds ``make bench-sim`` shares; ``--rtl-file out/demo/rtl/dqt_tile_demo`` runs the
demo's own file instead (one more build, minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from . import bulk, runner  # noqa: E402


def _case_fits(hw: dict, p: dict) -> str | None:
    af, wf = p["a_format"], p["w_format"]
    why = []
    if af["signed"] != wf["signed"] or af["n"] != wf["n"]:
        return "mixed formats"
    if (af["n"], af["signed"], p["acc_bits"], p["overflow"]) != (
            hw["n"], hw["signed"], hw["acc_width"], hw["overflow"]):
        why.append(f"needs n={af['n']} signed={af['signed']} W={p['acc_bits']} {p['overflow']}")
    full = p["b_a"] == af["n"] and p["b_w"] == wf["n"]
    if not full and p["view_rounding"] != hw["view_rounding"]:
        why.append(f"needs {p['view_rounding']} views")
    if p.get("groups", 1) != 1:
        why.append("grouped conv")
    return "; ".join(why) or None


def layer_jobs(case, hw: dict):
    """(jobs, expected rows): every R x C block of the case's im2col GEMM, lanes from the
    case's constants (``dqt_hw.hw.reference.lane_constants``), expected = golden codes."""
    from dqt_hw import spec
    from dqt_hw.hw.reference import TileJob, lane_constants

    from .tb.tb_tile import blocks, im2col

    p = case.params
    x, wc = case["x"], case["w"]
    a, (N, Ho, Wo) = im2col(x, wc.shape[2], wc.shape[3], p["stride"], p["padding"],
                            p["pad_code"])
    w = wc.reshape(wc.shape[0], -1).T.copy()
    out = case["out"].transpose(0, 2, 3, 1).reshape(N * Ho * Wo, -1)
    K, S = case["K"], case["S"]
    lanes = [lane_constants([spec.Constant(int(K[t, j]), int(S[t, j]), 32) for t in range(4)],
                            kbits=hw["kbits"], ebits=hw["ebits"], sbits=hw["sbits"])
             for j in range(out.shape[1])]
    R, C = hw["rows"], hw["cols"]
    jobs, expected = [], []
    for i0, i1, j0, j1 in blocks(out.shape[0], out.shape[1], R, C):
        jobs.append(TileJob(a=a[i0:i1].tolist(), w=w[:, j0:j1].tolist(), b_a=p["b_a"],
                            b_w=p["b_w"], b_out=p["b_out"], rounding=p["rounding"],
                            lanes=lanes[j0:j1]))
        for i, row in enumerate(out[i0:i1].tolist()):
            codes = row[j0:j1] + [0] * (C - (j1 - j0))
            expected.append((tuple(codes), i, int(i == i1 - i0 - 1)))
    return jobs, expected, a.shape[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--golden", type=Path, default=Path("out/demo/golden"))
    ap.add_argument("--rtl", default="dqt_tile8x8_w32", help="checked-in tile under rtl/")
    ap.add_argument("--rtl-file", type=Path,
                    help="a tile's Verilog stem (PATH.v + PATH.json) instead of --rtl")
    ap.add_argument("--blocks", type=int, default=16,
                    help="blocks of the per-cycle run (0: skip it)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)

    from dqt_hw.golden import read_case

    if args.rtl_file:
        stem = args.rtl_file.with_suffix("")
        design = runner.RtlFiles(stem.with_suffix(".v"), stem.with_suffix(".json"))
    else:
        design = runner.rtl_design(args.rtl)
    sc = design.sidecar
    hw = sc["parameters"]
    R, C = hw["rows"], hw["cols"]
    names = []
    if args.golden.is_dir():
        names = sorted(p.name for p in args.golden.glob("resnet18_l1c1_*") if p.is_dir()) \
            or sorted(p.name for p in args.golden.iterdir() if p.is_dir())
    if not names:
        print(f"sim.demo: no golden cases under {args.golden} (run `dqt-hw demo` first)")
        return 1
    print(f"sim.demo: cocotb on Verilator, tile {sc['module']} ({R}x{C}, n={hw['n']}, "
          f"W={hw['acc_width']} {hw['overflow']}, {hw['view_rounding']} views), "
          f"golden {args.golden}")
    ok = True
    ran = []
    for name in names:
        case = read_case(args.golden / name)
        if case.kind != "conv_layer":
            print(f"  {name}: skipped (kind {case.kind})")
            continue
        why = _case_fits(hw, case.params)
        if why:
            print(f"  {name}: skipped ({why})")
            continue
        jobs, expected, Kd = layer_jobs(case, hw)
        macs = R * C * Kd * len(jobs)
        d_bulk, _ = bulk.bulk_design(design, sc, jobs=len(jobs), steps=len(jobs) * Kd,
                                     rows=len(expected))
        node = f"demo-bulk-{name}"
        tdir = runner.SIM_BUILD / "run" / node
        rng = np.random.default_rng(args.seed)
        bulk.write_stimulus(tdir, sc, jobs, rng)
        (tdir / "expected.json").write_text(json.dumps(expected))
        t0 = time.perf_counter()
        try:
            res = runner.run(d_bulk, "sim.tb.tb_bulk", node=node, timing=True, waves=False,
                             seed=args.seed, public_flat_rw=False)
            s = res.summary
            secs = s["sim_seconds"] + s["check_seconds"]
            print(f"  {name}: bulk path, all {len(jobs)} blocks (K = {Kd}), {len(expected)} "
                  f"rows = {len(expected) * C} codes equal the golden codes: PASS; "
                  f"{macs / 1e6:.1f} M MACs verified in {secs:.2f} s = "
                  f"{macs / secs / 1e6:.1f} M MAC/s (wall incl. start-up "
                  f"{time.perf_counter() - t0:.1f} s)")
        except runner.SimFailure as e:
            ok = False
            print(f"  {name}: bulk path FAIL\n{e}")
        if args.blocks:
            node = f"demo-per-cycle-{name}"
            t0 = time.perf_counter()
            try:
                res = runner.run(design, "sim.tb.tb_tile", node=node, testcase="test_golden",
                                 seed=args.seed, waves=False,
                                 params=dict(golden=[name], golden_dir=str(args.golden.resolve()),
                                             golden_blocks=args.blocks, golden_required=True,
                                             p_idle=0.15, p_stall=0.2))
                s = res.summary
                secs = s.get("test_seconds", res.seconds)
                print(f"  {name}: per-cycle path (random idle cycles on cmd/act/wgt/rq, "
                      f"back-pressure on out), {args.blocks} blocks, {s.get('checks', 0)} rows "
                      f"equal the golden codes: PASS; {s.get('macs', 0) / 1e6:.2f} M MACs in "
                      f"{secs:.1f} s = {s.get('macs', 0) / secs / 1e6:.2f} M MAC/s")
            except runner.SimFailure as e:
                ok = False
                print(f"  {name}: per-cycle path FAIL\n{e}")
        ran.append(name)
    if not ran:
        print("sim.demo: no golden case fits this tile: FAIL")
        return 1
    print(f"sim.demo: {'PASS' if ok else 'FAIL'} ({len(ran)} case(s) run: {', '.join(ran)})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
