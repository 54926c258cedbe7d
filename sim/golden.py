"""Golden sets on a tile design: the cocotb regression behind ``dqt-hw sim``.

``run_set(design, golden_dir)`` checks that every case of the set fits the design
(``dqt_hw.golden.fits``: a case that does not fit is an error listing the reasons, never
a silent skip), generates the design's Verilog (``sim.runner.generated``), builds its two
Verilated models (the bulk wrapper and the bare tile, in parallel) and runs every case
through two paths:

1. **bulk path** (sim/bulk.py, cocotb on Verilator): every job of the case streamed from
   HDL memories, every output code compared with the golden codes;
2. **per-cycle path** (sim/tb/tb_tile.py ``test_golden``): the first ``blocks`` jobs
   through Python drivers with random idle cycles on every input stream and random
   back-pressure on the output, checked against the same golden codes.

How a case becomes tile jobs (:func:`case_jobs`): a ``dense_layer`` or ``conv_layer``
case is its im2col GEMM (a conv's padding applied to the master codes) cut into R x C
output blocks of depth K, its constants as lane fields
(``dqt_hw.hw.reference.lane_constants``); a ``gemm`` case runs one job per output row and
block of C columns with "window" lanes K1 = 1, K4 = c - e (``dqt_hw.golden.fit.
gemm_window_k4``): the code is the middle code c exactly when the accumulator equals the
golden e, so the output pins every accumulator bit for bit.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# no NUMBA_NUM_THREADS here: this module is imported in-process by dqt-hw sim (and its
# tests); the simulations get one Numba thread from sim.runner.run's environment

__all__ = ["blocks", "case_jobs", "layer_lanes", "run_set"]


def blocks(M, N, R, C):
    """(i0, i1, j0, j1) of every R x C block of an M x N output, row blocks outer."""
    for i0 in range(0, M, R):
        for j0 in range(0, N, C):
            yield i0, min(i0 + R, M), j0, min(j0 + C, N)


def layer_lanes(design, K, S, j0, j1, bits):
    """Lane fields of output channels j0..j1-1 from the (4, O) constant arrays of
    ``bits``-bit mantissas (``dqt_hw.hw.reference.lane_constants``)."""
    from dqt_hw import spec
    from dqt_hw.hw.reference import lane_constants

    return [lane_constants([spec.Constant(int(K[t, j]), int(S[t, j]), bits) for t in range(4)],
                           kbits=design.kbits, ebits=design.ebits, sbits=design.sbits)
            for j in range(j0, j1)]


def layer_gemm_jobs(design, a, w, out, K, S, *, b_a, b_w, b_out, rounding, bits, limit=None):
    """A layer as GEMM a (M, Kd) @ w (Kd, N) with output codes out (M, N): one
    (job, expected rows) per R x C block (all blocks, or the first ``limit``)."""
    from dqt_hw.hw.reference import TileJob

    M, N = out.shape
    jobs = []
    for count, (i0, i1, j0, j1) in enumerate(blocks(M, N, design.rows, design.cols)):
        if limit is not None and count >= limit:
            break
        jobs.append((TileJob(a=a[i0:i1].tolist(), w=w[:, j0:j1].tolist(), b_a=b_a, b_w=b_w,
                             b_out=b_out, rounding=rounding,
                             lanes=layer_lanes(design, K, S, j0, j1, bits)),
                     out[i0:i1, j0:j1].tolist()))
    return jobs


def _gemm_jobs(design, case, limit):
    from dqt_hw.golden.fit import gemm_window_k4
    from dqt_hw.hw.reference import LaneConstants, TileJob

    a, w, acc = case["a"], case["w"], case["acc"]
    n, signed = design.n, design.signed
    k4 = gemm_window_k4(acc, n, signed)
    c = int(k4[0, 0] + acc[0, 0])  # the window's code: the middle of the code range
    M, N = acc.shape
    jobs = []
    for i in range(M):
        for _, _, j0, j1 in blocks(1, N, 1, design.cols):
            if limit is not None and len(jobs) >= limit:
                return jobs
            lanes = [LaneConstants((1, 0, 0, int(k4[i, j])), (0, 0, 0, 0), 0)
                     for j in range(j0, j1)]
            jobs.append((TileJob(a=[a[i].tolist()], w=w[:, j0:j1].tolist(), b_a=n, b_w=n,
                                 b_out=n, rounding="floor", lanes=lanes),
                         [[c] * (j1 - j0)]))
    return jobs


def case_jobs(design, case, limit=None):
    """[(TileJob, expected output rows)] of a golden case on ``design`` (the first
    ``limit`` jobs, or all); ValueError listing the reasons when the case does not fit."""
    from dqt_hw.golden import fits

    why = fits(design, case)
    if why:
        raise ValueError(f"golden case {case.manifest['case']!r} does not fit design "
                         f"{design.name!r}: {'; '.join(why)}")
    p = case.params
    if case.kind == "gemm":
        return _gemm_jobs(design, case, limit)
    if case.kind == "dense_layer":
        a, w, out = case["a"], case["w"], case["out"]
    else:
        from dqt_hw.net.tiles import im2col

        x, wc = case["x"], case["w"]
        if wc.shape[2] != wc.shape[3]:
            raise ValueError(f"golden case {case.manifest['case']!r}: a {wc.shape[2]}x"
                             f"{wc.shape[3]} kernel; the im2col mapping takes square kernels")
        a, _ = im2col(x, wc.shape[2], p["stride"], p["padding"], p["pad_code"])
        w = wc.reshape(wc.shape[0], -1).T.copy()
        out = case["out"].transpose(0, 2, 3, 1).reshape(a.shape[0], -1)
    return layer_gemm_jobs(design, a, w, out, case["K"], case["S"], b_a=p["b_a"], b_w=p["b_w"],
                           b_out=p["b_out"], rounding=p["rounding"],
                           bits=int(p["const_bits"]), limit=limit)


# ----------------------------------------------------------------------------- the run


def _expected_rows(jobs, C):
    rows = []
    for job, out in jobs:
        for i, row in enumerate(out):
            rows.append((list(row) + [0] * (C - job.ncols), i, int(i == job.m - 1)))
    return rows


def _macs(m: int) -> str:
    return f"{m / 1e6:.1f} M MACs" if m >= 100_000 else f"{m:,} MACs"


def _say(msg: str) -> None:
    print(msg, flush=True)


def _path(say, label, done, rtl, module, **kw) -> bool:
    """Run one path (``sim.runner.run``); say its verdict (``done(summary)`` + the wall
    time) or its failure; True when it passed."""
    from . import runner

    t0 = time.perf_counter()
    try:
        res = runner.run(rtl, module, **kw)
    except runner.SimFailure as e:
        say(f"      {label}: FAIL\n{e}")
        return False
    say(f"      {label}: {done(res.summary)} ({time.perf_counter() - t0:.1f} s wall)")
    return True


def run_set(design, golden_dir, *, blocks: int = 4, seed: int = 2026, p_idle: float = 0.15,
            p_stall: float = 0.2, say=_say, rerun: str | None = None) -> int:
    """Run every case of ``golden_dir`` on ``design`` (a tile ``dqt_hw.design.Design``);
    prints a verdict per case and a summary; returns the exit status (0: every case
    passed both paths; 1: a case did not fit, or a mismatch). ``rerun``: the command a
    failure names to reproduce it."""
    from dqt_hw.golden import fits, read_case, read_set

    from . import bulk, runner

    if design.component != "tile":
        raise ValueError(f"dqt-hw sim runs golden sets on a tile design, not a "
                         f"{design.component}")
    golden_dir = Path(golden_dir)
    single = (golden_dir / "manifest.json").exists()
    cases = [read_case(golden_dir)] if single else read_set(golden_dir)
    if not cases:
        raise ValueError(f"{golden_dir}: no golden cases found")
    set_dir = golden_dir.parent if single else golden_dir
    d = design
    say(f"dqt-hw sim: design {d.name} ({d.rows}x{d.cols}, n={d.n}, "
        f"{'signed' if d.signed else 'unsigned'}, W={d.acc_width} {d.overflow}, "
        f"{d.view_rounding} views), {len(cases)} golden case(s) from {golden_dir}")
    unfit = {c.manifest["case"]: fits(d, c) for c in cases}
    unfit = {k: v for k, v in unfit.items() if v}
    if unfit:
        for name, why in unfit.items():
            say(f"  {name}: does not fit: {'; '.join(why)}")
        say(f"dqt-hw sim: FAIL: {len(unfit)} of {len(cases)} case(s) do not fit design "
            f"{d.name} (write a set for it with `dqt-hw golden write --design ...`)")
        return 1
    t0 = time.perf_counter()
    rtl = runner.generated(d)
    sc = rtl.sidecar
    d_bulk, _ = bulk.bulk_design(rtl, sc)
    say(f"  Verilog {rtl.verilog}; building the Verilated models (bulk wrapper and tile; "
        f"minutes the first time, cached under {runner.SIM_BUILD / 'build'})")
    with ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(runner.build, d_bulk, waves=False, timing=True, public_flat_rw=False),
                ex.submit(runner.build, rtl, waves=False)]
        for f in futs:
            f.result()
    say(f"  models ready after {time.perf_counter() - t0:.0f} s")
    C = d.cols
    again = f"cd {Path.cwd()} && {rerun}" if rerun else None
    failed, total_macs = [], 0
    for idx, case in enumerate(cases, 1):
        name = case.manifest["case"]
        jobs = case_jobs(d, case)
        kd = jobs[0][0].k
        macs = sum(j.m * j.ncols * j.k for j, _ in jobs)
        expected = _expected_rows(jobs, C)
        say(f"  [{idx}/{len(cases)}] {name}: {len(jobs)} jobs (K = {kd}), {_macs(macs)}")
        node = f"sim-bulk-{d.name}-{name}"
        tdir = runner.SIM_BUILD / "run" / node
        bulk.write_stimulus(tdir, sc, [j for j, _ in jobs], np.random.default_rng(seed))
        (tdir / "expected.json").write_text(json.dumps(expected))

        def bulk_done(s):
            secs = s["sim_seconds"] + s["check_seconds"]
            return (f"all {len(jobs)} jobs, {len(expected)} rows = {len(expected) * C} codes "
                    f"equal the golden codes: PASS, {macs / secs / 1e6:.1f} M MAC/s")

        ok = _path(say, "bulk path", bulk_done, d_bulk, "sim.tb.tb_bulk", node=node,
                   timing=True, waves=False, seed=seed, public_flat_rw=False, reproduce=again)
        if blocks:
            nb = min(blocks, len(jobs))

            def cycles_done(s):
                return (f"{nb} jobs with random idle cycles on cmd/act/wgt/rq and "
                        f"back-pressure on out, {s.get('checks', 0)} rows equal the golden "
                        f"codes: PASS")

            ok &= _path(say, "per-cycle path", cycles_done, rtl, "sim.tb.tb_tile",
                        node=f"sim-per-cycle-{d.name}-{name}", testcase="test_golden",
                        seed=seed, waves=False, reproduce=again,
                        params=dict(golden=[name], golden_dir=str(set_dir.resolve()),
                                    golden_blocks=nb, golden_strict=True, p_idle=p_idle,
                                    p_stall=p_stall))
        total_macs += macs
        say(f"  {name}: {'PASS' if ok else 'FAIL'}")
        if not ok:
            failed.append(name)
    verdict = "PASS" if not failed else "FAIL"
    say(f"dqt-hw sim: {verdict}: {len(cases) - len(failed)} of {len(cases)} golden case(s) "
        f"passed on {d.name} ({_macs(total_macs)} in the bulk path, "
        f"{time.perf_counter() - t0:.0f} s)" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 0 if not failed else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run golden sets with `dqt-hw sim --design D.toml --golden DIR`")
