"""The activity energy model (dqt_hw/cost/activity.py): SAIF reading on hand-made and
Verilator-written files with counts worked out by hand, the signal classes, the energy
formula, the calibration and the tech table's toggle_pj."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dqt_hw.cost import activity as act
from dqt_hw.cost.tech import TechTable, load_tech

HAND_SAIF = r"""// a hand-written SAIF file
(SAIFILE
(SAIFVERSION "2.0")
(DIRECTION "backward")
(DESIGN )
(DIVIDER / )
(TIMESCALE 1 ns)
(DURATION 30)
(INSTANCE TOP
  (NET (clk (T0 15) (T1 15) (TC 6)) (start (T0 0) (T1 30) (TX 0) (TC 1)))
  (INSTANCE dut
    (NET
      (x\[0\] (T0 10) (T1 20) (TC 5))
      (x\[1\] (T0 30) (T1 0) (TC 0))
      (mem[2]\[3\] (T0 1) (T1 29) (TC 2))
    )
    (INSTANCE pe_0_1
      (NET (a\[0\] (TC 7)) (a\[1\] (TC 1)) (w\[0\] (TC 2)) (clk (TC 6)) (first (TC 3))
           ($2\[0\] (TC 4)) ($2\[1\] (TC 1)) ($2\[2\] (TC 1)) ($2\[3\] (TC 1))
           (acc\[0\] (TC 9)) (acc\[1\] (TC 2)) (acc\[2\] (TC 0)))
    )
    (INSTANCE sum_a0 (NET (total\[0\] (TC 11))))
    (INSTANCE view_w1 (NET (v\[0\] (TC 13))))
    (INSTANCE lane3 (NET (code\[0\] (TC 17))))
  )
)
)
"""


def test_parse_hand_saif():
    nets = act.parse_saif(HAND_SAIF)
    got = {("/".join(s.path), s.name, s.bit): s.tc for s in nets}
    assert got[("TOP", "clk", None)] == 6
    assert got[("TOP", "start", None)] == 1
    assert got[("TOP/dut", "x", 0)] == 5
    assert got[("TOP/dut", "x", 1)] == 0
    assert got[("TOP/dut", "mem[2]", 3)] == 2
    assert got[("TOP/dut/pe_0_1", "$2", 3)] == 1
    assert got[("TOP/dut/lane3", "code", 0)] == 17
    assert len(nets) == 2 + 3 + 12 + 3


def test_classify_hand_saif():
    # n = 2: the product $2 is 2n = 4 bits wide; a, w operands; first is a 1-bit control;
    # acc (3 bits) the accumulator; clk left out; x and mem are tile-level registers
    nets = act.parse_saif(HAND_SAIF)
    got = act.classify(nets, tile_path=("TOP", "dut"), n=2)
    assert got == {"multiplier": 7 + 1 + 2 + (4 + 1 + 1 + 1), "accumulator": 9 + 2 + 0,
                   "side_sums": 11, "views": 13, "requantizer": 17,
                   "registers": 5 + 0 + 2 + 3}
    # nothing outside the tile's instance counts (TOP's start)
    assert act.classify(nets, tile_path=("TOP", "nope"), n=2) == dict.fromkeys(act.CLASSES, 0)


@pytest.mark.parametrize("text, match", [
    ("(SAIFILE (INSTANCE TOP (NET (a (T0 1)))))", r"net 'a' of instance 'TOP' has no toggle"),
    ("(SAIFILE (INSTANCE TOP (NET (a (TC 1))))", r"SAIF ends inside 1 open"),
    ("(SAIFILE))", r"unbalanced '\)'"),
    ("(NOTSAIF)", r"not a SAIF file"),
])
def test_bad_saif_refused(text, match):
    with pytest.raises(ValueError, match=match):
        act.parse_saif(text)


def test_toggle_energy_formula():
    # C V^2 / 2: 10 fF at 1 V is 5 fJ = 0.005 pJ; 20 fF at 0.5 V is 2.5 fJ. Energies are
    # floats (not codes): the tolerance is only float rounding against the decimal values
    # float reference (decimal energies), the tolerance is float rounding only
    assert act.toggle_energy_pj(10.0, 1.0) == pytest.approx(0.005, rel=1e-12)  # float reference
    assert act.toggle_energy_pj(20.0, 0.5) == pytest.approx(0.0025, rel=1e-12)  # float reference
    assert act.capacitance_ff(0.0025, 0.5) == pytest.approx(20.0, rel=1e-12)  # float reference
    with pytest.raises(ValueError, match=r"voltage > 0 V, not 10.0 fF, 0.0 V"):
        act.toggle_energy_pj(10.0, 0.0)
    e = act.activity_energy({"multiplier": 10, "registers": 4},
                            dict.fromkeys(act.CLASSES, 0.5) | {"registers": 0.25})
    assert e["multiplier"] == 5.0 and e["registers"] == 1.0 and e["views"] == 0.0
    assert e["total"] == 6.0
    with pytest.raises(ValueError, match=r"lack the classes \['registers'\]"):
        act.activity_energy({}, dict.fromkeys(act.CLASSES[:-1], 1.0))


def _tile():
    from dqt_hw.design import Design

    return Design(component="tile", name="t", rows=2, cols=2, n=8, acc_width=32)


def test_calibration_matches_op_model_on_the_calibration_run():
    tile = _tile()
    counts = act.Counts(macs=1000, steps=250, rows=8)
    toggles = {"multiplier": 4000, "accumulator": 2000, "side_sums": 500, "views": 800,
               "requantizer": 300, "registers": 99}
    e_t = act.calibrate(toggles, tile, counts)
    tech = load_tech()
    # by hand from the table: 8x8 multiply 0.2 pJ, 32-bit add 0.1 pJ per MAC slot (float
    # energies: the tolerance is float rounding only)
    assert e_t["multiplier"] == pytest.approx(1000 * 0.2 / 4000, rel=1e-12)  # float energies
    assert e_t["accumulator"] == pytest.approx(1000 * 0.1 / 2000, rel=1e-12)  # float energies
    assert e_t["registers"] == pytest.approx(2 * 0.0015, rel=1e-12)  # float energies
    e = act.activity_energy(toggles, e_t)
    ops = act.op_energy_pj(tile, counts, tech)
    for c in act.CLASSES[:-1]:
        assert e[c] == pytest.approx(ops[c], rel=1e-12)  # float energies
    with pytest.raises(ValueError, match=r"class 'views' has no toggles"):
        act.calibrate(dict(toggles, views=0), tile, counts)


def test_tech_table_toggle_pj_replaces_calibration():
    data = json.loads(json.dumps(load_tech().data))
    data["toggle_pj"] = {"multiplier": 0.01, "registers": 0.002}
    t = TechTable("custom", data)
    e_t = act.calibrate({c: 10 for c in act.CLASSES}, _tile(), act.Counts(10, 5, 2), t)
    assert e_t["multiplier"] == 0.01 and e_t["registers"] == 0.002
    bad = dict(data, toggle_pj={"adder": 0.01})
    with pytest.raises(ValueError, match=r"toggle_pj"):
        TechTable("bad", bad)


TINY_V = """module tiny (input wire clk, output reg [1:0] q);
  initial q = 2'd0;
  wire [1:0] nxt = q + 2'd1;
  always @(posedge clk) q <= nxt;
endmodule
"""

TINY_CPP = r"""#include <memory>
#include "verilated.h"
#include "verilated_saif_c.h"
#include "Vtiny.h"
int main() {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->traceEverOn(true);
    auto top = std::make_unique<Vtiny>(ctx.get());
    top->clk = 0;
    top->eval();
    auto tfp = std::make_unique<VerilatedSaifC>();
    top->trace(tfp.get(), 99);
    tfp->open("dump.saif");
    tfp->dump(ctx->time());
    for (int i = 0; i < 3; ++i) {
        ctx->timeInc(5); top->clk = 1; top->eval(); tfp->dump(ctx->time());
        ctx->timeInc(5); top->clk = 0; top->eval(); tfp->dump(ctx->time());
    }
    tfp->close();
    top->final();
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_verilator_saif_of_a_3_cycle_counter(tmp_path):
    """A 2-bit counter over 3 clock cycles, counted by hand: q goes 0, 1, 2, 3, so q[0]
    toggles 3 times and q[1] once; nxt = q + 1 goes 1, 2, 3, 0: nxt[1] toggles twice and
    nxt[0] three times, plus one for its first value 1 (the SAIF's counts start from 0);
    clk: 6 edges."""
    from sim.runner import _put_verilator_on_path

    _put_verilator_on_path()
    (tmp_path / "tiny.v").write_text(TINY_V)
    (tmp_path / "main.cpp").write_text(TINY_CPP)
    env = dict(os.environ, MAKEFLAGS="CFG_CXXFLAGS_PCH_I=-include")
    subprocess.run(["verilator", "--cc", "--exe", "--build", "-O0", "--trace-saif",
                    "-Wno-fatal", "--top-module", "tiny", "-Mdir", "obj", "-o", "Vtiny",
                    "tiny.v", "main.cpp"], cwd=tmp_path, check=True, capture_output=True,
                   env=env)
    subprocess.run([str(tmp_path / "obj" / "Vtiny")], cwd=tmp_path, check=True)
    nets = act.read_saif(tmp_path / "dump.saif")
    got = {(s.name, s.bit): s.tc for s in nets if s.path == ("TOP", "tiny")}
    assert got == {("clk", None): 6, ("q", 0): 3, ("q", 1): 1, ("nxt", 0): 4, ("nxt", 1): 2}


@pytest.mark.parametrize("argv, match", [
    (["--sources", "bogus"], r"--sources must name some of resnet18, shipped, not 'bogus'"),
    (["--max-macs", "0"], r"--max-macs and --inputs must be >= 1, not 0 and 2"),
    (["--pairs", "8by8"], r"width pairs are B_AxB_W"),
])
def test_power_cli_refuses_bad_options(tmp_path, capsys, argv, match):
    import re

    from dqt_hw.cli import EXIT_BAD_INPUT, main

    assert main(["power", "--out", str(tmp_path), *argv]) == EXIT_BAD_INPUT
    assert re.search(match, capsys.readouterr().err)


def test_plain_array_stimulus_and_expected_rows():
    """The plain array's run (sim/plain_activity.py): one word per step {last, first,
    valid, w, a} with zero padding, an idle step where two last steps would come closer
    than max(R, C), the drain; R rows per job of exact sums wrapped to W (worked by hand)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dqt_hw.hw.reference import LaneConstants, TileJob
    from sim.plain_activity import expected_rows, step_words

    lane = LaneConstants((1, 0, 0, 0), (0, 0, 0, 0), 0)
    a = TileJob(a=[[3], [5]], w=[[7, 1]], b_a=4, b_w=4, b_out=4, rounding="floor",
                lanes=[lane, lane])
    b = TileJob(a=[[2]], w=[[4]], b_a=4, b_w=4, b_out=4, rounding="floor", lanes=[lane])
    assert step_words([a, b], 2, 2, 4) == [0x71753, 0, 0x70402] + [0] * 6
    assert expected_rows([a, b], 2, 2, 6) == [[21, 3], [35 - 64, 5], [8, 0], [0, 0]]
