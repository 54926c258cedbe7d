"""Verified MAC/s of the cocotb regression on an 8x8 tile against the bare ceiling.

Side by side in one run, on the same Verilated tile (rtl/dqt_tile8x8_w32 by default):

0. **bare C++ loop** (the simulator's ceiling): the bulk wrapper with ``clk`` as a port
   (sim/bulk.py, ``hdl_clock=False``), built without --timing, the clock toggled by a
   C++ loop; once at Verilator's default C++ level (OPT_FAST = -Os) and once with
   ``-O3 -march=native``.
1. **C++ harness**: the bulk wrapper (sim/bulk.py: stimulus in
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
checked work: MAC/s = MACs / (simulation seconds + check seconds); the C++ timers start
after the first eval (the $readmemh stimulus load). Model time (Numba, computed once for
all) is reported apart.

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

OPT_NATIVE = "-O3 -march=native"
"""The C++ compiler flags of the optimized builds (Verilator's own default is -Os)."""


def build_cpp(design: runner.RtlFiles, wrapper: Path, top: str, *, harness: str,
              timing: bool = True, opt_fast: str | None = None) -> Path:
    """verilator --build of the wrapper with a C++ main (cached like the runner).
    ``timing``: --timing (the HDL clock of the bulk wrapper); ``opt_fast``: C++ compiler
    flags that override Verilator's default level (OPT_FAST = -Os)."""
    args = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal"]
    if timing:
        args += ["--timing", "-CFLAGS", "-std=gnu++20 -fcoroutines"]
    if opt_fast:  # -CFLAGS come after OPT_FAST on the compiler's command line
        args += ["-CFLAGS", opt_fast]
    return runner.build_cpp(design, wrapper, top, harness=harness, args=args)


def run_cpp(exe: Path, cdir: Path, sc: dict, expected, repeat: int = 1
            ) -> tuple[float, float, float]:
    """(simulation seconds, check seconds, wall seconds of the whole process) of a C++
    run in ``cdir`` (its stimulus written there), the fastest of ``repeat``; every run's
    out.hex is checked."""
    best = None
    for _ in range(repeat):
        (cdir / "out.hex").unlink(missing_ok=True)
        t0 = time.perf_counter()
        out = subprocess.run([str(exe)], cwd=cdir, check=True, capture_output=True,
                             text=True).stdout
        wall = time.perf_counter() - t0
        sim_s = float(re.search(r"seconds=([0-9.]+)", out).group(1))
        t0 = time.perf_counter()
        bulk.check_out(cdir, sc, expected)
        run = (sim_s, time.perf_counter() - t0, wall)
        best = run if best is None or run[0] < best[0] else best
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", default="dqt_tile8x8_w32", help="checked-in tile under rtl/")
    ap.add_argument("--tiles", type=int, default=3000, help="tiles in the bulk runs")
    ap.add_argument("--k", type=int, default=64, help="depth K of every tile")
    ap.add_argument("--per-cycle-tiles", type=int, default=60,
                    help="tiles in the cocotb per-cycle run (0: skip)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each C++ executable; the fastest is reported")
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

    # --- C++ harness (HDL clock, --timing) and the bare ceiling (clock from a C++ loop)
    t0 = time.perf_counter()
    exe = build_cpp(design, wrapper, top, harness=bulk.HARNESS_CPP)
    t_build_cpp = time.perf_counter() - t0
    cdir = runner.SIM_BUILD / "run" / "bench-cpp"
    counts = bulk.write_stimulus(cdir, sc, jobs, rng)
    cpp_sim, cpp_check, cpp_wall = run_cpp(exe, cdir, sc, expected, args.repeat)
    _, bare_wrapper = bulk.bulk_design(design, sc, jobs=len(jobs), steps=len(jobs) * args.k,
                                       rows=len(expected), hdl_clock=False)
    bare_top = f"{sc['module']}_bare"
    bare = {}
    for label, opt in (("bare C++ loop", None), (f"bare C++ loop, {OPT_NATIVE}", OPT_NATIVE)):
        t0 = time.perf_counter()
        exe_b = build_cpp(design, bare_wrapper, bare_top, harness=bulk.HARNESS_BARE_CPP,
                          timing=False, opt_fast=opt)
        t_b = time.perf_counter() - t0
        bare[label] = (*run_cpp(exe_b, cdir, sc, expected, args.repeat), t_b)

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
    # the same at the C++ level of the optimized bare loop: like against like
    opt = ["-CFLAGS", OPT_NATIVE]
    t0 = time.perf_counter()
    runner.build(d_bulk, timing=True, waves=False, public_flat_rw=not lean, build_args=opt)
    t_build_coco_opt = time.perf_counter() - t0
    res = runner.run(d_bulk, "sim.tb.tb_bulk", node=node, timing=True, waves=False,
                     seed=args.seed, public_flat_rw=not lean, build_args=opt)
    coco_opt = (res.summary["sim_seconds"], res.summary["check_seconds"])

    rows = [(label, b[0], b[1]) for label, b in bare.items()] + [
        ("C++ harness (bulk)", cpp_sim, cpp_check),
        ("cocotb bulk path", coco_sim, coco_check),
        (f"cocotb bulk path, {OPT_NATIVE}", *coco_opt),
    ]
    # --- cocotb per-cycle path (every stream driven from Python every cycle)
    if args.per_cycle_tiles:
        res_pc = runner.run(design, "sim.tb.tb_tile", node="bench-per-cycle", seed=args.seed,
                            testcase="test_random", waves=False,
                            params=dict(jobs=args.per_cycle_tiles, p_idle=0.0, p_stall=0.0))
        s = res_pc.summary
        rows.append(("cocotb per-cycle path", s.get("test_seconds", res_pc.seconds), 0.0))
        pc_macs = s["macs"]
    print(f"  builds: C++ harness {t_build_cpp:.0f} s, "
          + ", ".join(f"{k} {b[3]:.0f} s" for k, b in bare.items())
          + f", cocotb bulk {t_build_coco:.0f} s, with {OPT_NATIVE} {t_build_coco_opt:.0f} s "
          f"(cached after the first run); cocotb bulk build "
          f"{'with' if not lean else 'without'} --public-flat-rw")
    print(f"  {'path':<36} {'sim s':>8} {'check s':>8} {'M MAC/s (sim)':>14} "
          f"{'M MAC/s verified':>17}")
    figures = {}
    for name, sim_s, chk_s in rows:
        n = pc_macs if name.startswith("cocotb per-cycle") else macs
        r_sim, r_ver = n / sim_s / 1e6, n / (sim_s + chk_s) / 1e6
        figures[name] = {"macs": n, "sim_seconds": sim_s, "check_seconds": chk_s,
                         "mmacs_sim": r_sim, "mmacs_verified": r_ver}
        print(f"  {name:<36} {sim_s:8.2f} {chk_s:8.2f} {r_sim:14.1f} {r_ver:17.1f}")
    ceiling = figures["bare C++ loop"]["mmacs_verified"]
    ceiling_opt = figures[f"bare C++ loop, {OPT_NATIVE}"]["mmacs_verified"]
    cpp_v = figures["C++ harness (bulk)"]["mmacs_verified"]
    coco_v = figures["cocotb bulk path"]["mmacs_verified"]
    coco_opt_v = figures[f"cocotb bulk path, {OPT_NATIVE}"]["mmacs_verified"]
    ratio, ratio_opt = ceiling / coco_v, ceiling_opt / coco_opt_v
    for what, r in (("Verilator's default C++ level", ratio), (OPT_NATIVE, ratio_opt)):
        print(f"  ratio bare ceiling / cocotb bulk, both at {what} (verified): {r:.2f}x "
              f"(goal: within 2x) -> {'MET' if r <= 2 else 'NOT MET'}")
    print(f"  ratio bare ceiling / C++ harness (HDL clock, --timing): {ceiling / cpp_v:.2f}x; "
          f"{OPT_NATIVE} over the default level: bare {ceiling_opt / ceiling:.2f}x, "
          f"cocotb bulk {coco_opt_v / coco_v:.2f}x")
    print(f"  stimulus load ($readmemh, outside every timer): C++ harness process "
          f"{cpp_wall:.2f} s wall against {cpp_sim:.2f} s timed")
    if args.per_cycle_tiles:
        pc = figures["cocotb per-cycle path"]["mmacs_verified"]
        print(f"  ratio bare ceiling / cocotb per-cycle: {ceiling / pc:.1f}x")
    print(f"  all {counts['rows']} rows of every path equal the model")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "ratio": ratio,
                                         "ratio_opt": ratio_opt}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
