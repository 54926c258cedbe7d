"""Verified MAC/s of the cocotb regression on an 8x8 tile against a plain C++ harness.

Side by side in one run, on the same Verilated tile (rtl/dqt_tile8x8_w32 by default):

1. **C++ harness** (the simulator's ceiling): the bulk wrapper (sim/bulk.py: stimulus in
   HDL memories loaded with $readmemh, streamed by a small state machine, clock in the HDL,
   built with --timing) driven by a ~20-line main(); the rows it wrote are then checked
   against the reference model in bulk.
2. **cocotb bulk path**: the same wrapper under cocotb's runner (--vpi; built with the
   same flags as the C++ harness: without the --public-flat-rw that cocotb's runner
   always adds, only the wrapper's ``start``/``done`` are public; ``--public-flat-rw``
   to compare); Python sets ``start``, waits for ``done`` and checks ``out.hex`` in bulk.
3. **cocotb per-cycle path** (for reference): sim/tb/tb_tile.py's bench, which drives and
   monitors every stream every cycle (what stalls and back-pressure need).

MACs are R * C * K per tile (all outputs used); "verified" counts only simulated and
checked work: MAC/s = MACs / (simulation seconds + check seconds). Model time (Numba,
computed once for both) is reported apart.

    .venv/bin/python bench/bench_sim.py [--tiles 3000] [--k 64] [--rtl dqt_tile8x8_w32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the model's parallel kernels: thread start-up per call dominates on a shared machine
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from sim import bulk, models, runner  # noqa: E402


def build_cpp(design: runner.RtlFiles, wrapper: Path, top: str) -> Path:
    """verilator --build of the wrapper with the C++ harness (cached like the runner)."""
    runner._put_verilator_on_path()
    args = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal", "--timing",
            "-CFLAGS", "-std=gnu++20 -fcoroutines"]
    d = runner.RtlFiles(design.verilog, design.sidecar_path, (wrapper,), top)
    bdir = runner.SIM_BUILD / "build" / f"cpp-{top}-{d.digest(args + ['harness'])}"
    exe = bdir / f"V{top}"
    with runner._locked(bdir):
        if exe.exists():
            return exe
        main = bdir / "harness.cpp"
        main.write_text(bulk.HARNESS_CPP.replace("VTOP", f"V{top}"))
        env = dict(os.environ)
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", os.environ.get("SIM_BUILD_JOBS", "1"),
               "--top-module", top, "-Mdir", str(bdir), "-o", exe.name, *args,
               str(runner._waives()), str(design.verilog), str(wrapper), str(main)]
        with open(bdir / "build.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    return exe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", default="dqt_tile8x8_w32", help="checked-in tile under rtl/")
    ap.add_argument("--tiles", type=int, default=3000, help="tiles in the bulk runs")
    ap.add_argument("--k", type=int, default=64, help="depth K of every tile")
    ap.add_argument("--per-cycle-tiles", type=int, default=60,
                    help="tiles in the cocotb per-cycle run (0: skip)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--public-flat-rw", action="store_true",
                    help="build the cocotb bulk model with cocotb's default --public-flat-rw "
                         "(default: without it, like the C++ harness; only the wrapper's "
                         "start/done are public)")
    args = ap.parse_args(argv)

    design = runner.rtl_design(args.rtl)
    sc = design.sidecar
    hw = sc["parameters"]
    R, C = hw["rows"], hw["cols"]
    top = f"{sc['module']}_bulk"
    rng = np.random.default_rng(args.seed)
    jobs = bulk.random_jobs(hw, rng, args.tiles, k=args.k)
    macs = R * C * args.k * len(jobs)

    t0 = time.perf_counter()
    tmodel = models.TileModel(hw["n"], hw["signed"], hw["acc_width"], hw["overflow"],
                              hw["view_rounding"], hw["kbits"])
    expected = bulk.expected_rows(jobs, tmodel, C)
    t_model = time.perf_counter() - t0

    d_bulk, wrapper = bulk.bulk_design(design, sc, jobs=len(jobs), steps=len(jobs) * args.k,
                                       rows=len(expected))

    print(f"bench_sim: {args.rtl} ({R}x{C}, W={hw['acc_width']} {hw['overflow']}), "
          f"{len(jobs)} tiles of K={args.k}, {macs / 1e6:.1f} M MACs, seed {args.seed}")
    print(f"  model (dqt_hw.model, expected rows): {t_model:.2f} s")

    # --- C++ harness
    t0 = time.perf_counter()
    exe = build_cpp(design, wrapper, top)
    t_build_cpp = time.perf_counter() - t0
    cdir = runner.SIM_BUILD / "run" / "bench-cpp"
    counts = bulk.write_stimulus(cdir, sc, jobs, rng)
    out = subprocess.run([str(exe)], cwd=cdir, check=True, capture_output=True, text=True).stdout
    m = re.search(r"seconds=([0-9.]+)", out)
    cpp_sim = float(m.group(1))
    t0 = time.perf_counter()
    bulk.check_out(cdir, sc, expected)
    cpp_check = time.perf_counter() - t0

    # --- cocotb bulk path
    node = "bench-bulk-cocotb"
    tdir = runner.SIM_BUILD / "run" / node
    bulk.write_stimulus(tdir, sc, jobs, rng)
    (tdir / "expected.json").write_text(json.dumps(expected))
    t0 = time.perf_counter()
    lean = not args.public_flat_rw
    runner.build(d_bulk, timing=True, waves=False, public_flat_rw=not lean)
    t_build_coco = time.perf_counter() - t0
    res = runner.run(d_bulk, "sim.tb.tb_bulk", node=node, timing=True, waves=False, seed=args.seed,
                     public_flat_rw=not lean)
    coco_sim, coco_check = res.summary["sim_seconds"], res.summary["check_seconds"]

    rows = [
        ("C++ harness (bulk)", cpp_sim, cpp_check),
        ("cocotb bulk path", coco_sim, coco_check),
    ]
    # --- cocotb per-cycle path (every stream driven from Python every cycle)
    if args.per_cycle_tiles:
        res_pc = runner.run(design, "sim.tb.tb_tile", node="bench-per-cycle", seed=args.seed,
                            testcase="test_random", waves=False,
                            params=dict(jobs=args.per_cycle_tiles, p_idle=0.0, p_stall=0.0))
        s = res_pc.summary
        rows.append(("cocotb per-cycle path", s.get("test_seconds", res_pc.seconds), 0.0))
        pc_macs = s["macs"]
    print(f"  builds: C++ harness {t_build_cpp:.0f} s, cocotb bulk {t_build_coco:.0f} s "
          f"(cached after the first run); cocotb bulk build "
          f"{'with' if not lean else 'without'} --public-flat-rw")
    print(f"  {'path':<24} {'sim s':>8} {'check s':>8} {'M MAC/s (sim)':>14} "
          f"{'M MAC/s verified':>17}")
    figures = {}
    for name, sim_s, chk_s in rows:
        n = pc_macs if name.startswith("cocotb per-cycle") else macs
        r_sim, r_ver = n / sim_s / 1e6, n / (sim_s + chk_s) / 1e6
        figures[name] = {"macs": n, "sim_seconds": sim_s, "check_seconds": chk_s,
                         "mmacs_sim": r_sim, "mmacs_verified": r_ver}
        print(f"  {name:<24} {sim_s:8.2f} {chk_s:8.2f} {r_sim:14.1f} {r_ver:17.1f}")
    cpp_v = figures["C++ harness (bulk)"]["mmacs_verified"]
    coco_v = figures["cocotb bulk path"]["mmacs_verified"]
    ratio = cpp_v / coco_v
    print(f"  ratio C++ / cocotb bulk (verified): {ratio:.2f}x "
          f"(target: within 4x) -> {'MET' if ratio <= 4 else 'NOT MET'}")
    if args.per_cycle_tiles:
        pc = figures["cocotb per-cycle path"]["mmacs_verified"]
        print(f"  ratio C++ / cocotb per-cycle: {cpp_v / pc:.1f}x")
    print(f"  all {counts['rows']} rows of every path equal the model")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
