"""Cost models on hand-checked small cases and the published totals.

The tiny network (``TINY``) is small enough to count by hand:

- c1: conv 4 -> 8 channels, 3x3, stride 1, pad 1 on 6x6: taps 4*9 = 36, 36 outputs per
  channel, MACs 8*36*36 = 10368, weights 8*36 = 288, input 4*6*6 = 144;
- c2: conv 8 -> 8, 3x3, stride 2, pad 1 on 6x6 -> 3x3: taps 72, MACs 8*9*72 = 5184,
  weights 576, input 288;
- fc: 8 -> 10 after a 3x3 average pool: MACs 80, weights 80, input 8.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dqt_hw.cost import (DynamicWidths, WidthMix, dynamic_bitops, layer_cycles, load_network,
                         load_tech, paper_comparison, static_bitops, switch_cost,
                         switch_energy_pj)
from dqt_hw.cost.energy import MemoryConfig, layer_energy
from dqt_hw.design import Design

TINY = {"name": "tiny", "nodes": [
    {"name": "input", "op": "input", "shape": [4, 6, 6]},
    {"name": "c1", "op": "conv", "inputs": ["input"], "out_channels": 8, "kernel": 3,
     "stride": 1, "padding": 1},
    {"name": "c2", "op": "conv", "inputs": ["c1"], "out_channels": 8, "kernel": 3,
     "stride": 2, "padding": 1},
    {"name": "pool", "op": "avgpool", "inputs": ["c2"], "kernel": 3},
    {"name": "flat", "op": "flatten", "inputs": ["pool"]},
    {"name": "fc", "op": "fc", "inputs": ["flat"], "out_features": 10},
]}


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(TINY))
    return str(p)


# ------------------------------------------------------------------ workloads, BitOPs


def test_network_file_and_published_totals(tiny):
    g = load_network(tiny)
    assert [r["macs"] for r in g.layer_table()] == [10368, 5184, 80]
    # attributes may also sit under "attrs" (dqt_hw.net.graph.graph_to_dicts form)
    nested = {"name": "t2", "nodes": [
        {"name": n["name"], "op": n["op"], "inputs": n.get("inputs", []),
         "attrs": {k: v for k, v in n.items() if k not in ("name", "op", "inputs")}}
        for n in TINY["nodes"]]}
    p2 = Path(tiny).with_name("nested.json")
    p2.write_text(json.dumps(nested))
    assert load_network(str(p2)).total_macs() == 10368 + 5184 + 80
    assert abs(load_network("resnet50_imagenet").total_macs() / 1e9 - 4.09) < 0.01
    assert abs(load_network("resnet18_cifar10").total_macs() / 1e9 - 0.556) < 0.01


def test_static_bitops_by_hand(tiny):
    rows, total = static_bitops(tiny, {"*": "4x8", "c1": "8x8"})
    assert [r["bitops"] for r in rows] == [10368 * 64, 5184 * 32, 80 * 32]
    assert total == 663552 + 165888 + 2560
    _, t8 = static_bitops("resnet18_cifar10", "8x8")
    assert t8 == 555_422_720 * 64


def test_dynamic_bitops_mean_and_spread(tiny):
    g = load_network(tiny)
    w = np.array([[[8, 8], [4, 4], [4, 4]],    # 663552 + 82944 + 1280 = 747776
                  [[4, 4], [4, 4], [8, 8]]])   # 165888 + 82944 + 5120 = 253952
    d = dynamic_bitops(g, DynamicWidths(("c1", "c2", "fc"), w))
    assert d.per_input.tolist() == [747776, 253952]
    assert d.mean == (747776 + 253952) / 2
    assert d.std == abs(747776 - 253952) / 2
    assert d.min == 253952 and d.max == 747776


def test_dynamic_widths_from_csv(tiny, tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("input,layer,b_a,b_w\n0,c1,4,4\n1,c2,2,2\n")
    d = DynamicWidths.load(p, load_network(tiny))
    assert d.widths.tolist() == [[[4, 4], [8, 8], [8, 8]], [[8, 8], [2, 2], [8, 8]]]


def test_width_mix_errors(tiny):
    with pytest.raises(ValueError, match=r"cannot read the width pair 'four'"):
        WidthMix.parse("four")
    with pytest.raises(ValueError, match=r"b_a must be a width in \[1, 16\], not 17"):
        WidthMix.parse("17x4")
    with pytest.raises(ValueError, match=r"^width mix: 'nope': tiny has no conv/fc layer "
                                         r"'nope'$"):
        static_bitops(tiny, {"nope": "4x4"})
    with pytest.raises(ValueError, match=r"unknown network 'resnet99'"):
        load_network("resnet99")


# ------------------------------------------------------------------ switch cost


def test_switch_cost_by_hand(tiny):
    rows, tot = switch_cost(tiny)
    assert [r["shifts"] for r in rows] == [288 + 144, 576 + 288, 80 + 8]
    assert tot["shifts"] == 1384 and tot["fp_macs"] == 2 * 1384 and tot["int_macs"] == 1384
    _, w = switch_cost(tiny, tensors="weights")
    assert w["shifts"] == 288 + 576 + 80
    with pytest.raises(ValueError, match=r"subset of \('weights', 'activations', 'outputs'\)"):
        switch_cost(tiny, tensors=("biases",))


def test_switch_cost_resnet50_against_paper():
    """Paper: 28.3 M shifts, 56.6 M FP MACs (2 per element). Weights alone give 25.50 M
    (90 %); weights + layer inputs 36.17 M (128 %). The 2x ratio is exact."""
    cmp = {c["tensors"]: c for c in paper_comparison()}
    w = cmp["weights"]
    assert w["shifts"] == 25_502_912
    assert 0.89 < w["shifts_vs_paper"] < 0.91
    assert w["fp_macs"] == 2 * w["shifts"]
    wa = cmp["weights+activations"]
    assert wa["shifts"] == 25_502_912 + 10_664_448
    for c in cmp.values():
        assert c["fp_macs_vs_paper"] == pytest.approx(c["shifts_vs_paper"])  # float ratios


# ------------------------------------------------------------------ technology, energy


def test_scaling_laws_by_hand():
    # energies are float pJ figures: compared with a float tolerance, not bit-exactly
    t = load_tech()
    assert t.add_pj(8) == pytest.approx(0.03) and t.add_pj(32) == pytest.approx(0.1)  # float
    assert t.add_pj(20) == pytest.approx(0.03 + 12 * 0.07 / 24)  # float, linear in width
    assert t.mul_pj(8, 8) == pytest.approx(0.2) and t.mul_pj(32) == pytest.approx(3.1)  # float
    assert t.mul_pj(4, 4) == pytest.approx(0.2 - 48 * 2.9 / 960)  # float, linear in b_a b_w
    assert t.mul_pj(4, 16) == pytest.approx(t.mul_pj(8, 8))  # float
    assert t.sram_pj_per_bit(8) == pytest.approx(10 / 64)  # float
    assert t.sram_pj_per_bit(1024) == pytest.approx(100 / 64)  # float
    assert t.sram_pj_per_bit(16) == pytest.approx(10 * math.sqrt(2) / 64)  # float; log-log midpoint
    assert t.dram_pj_per_bit() == pytest.approx(1300 / 64)  # float
    assert t.dram_pj_per_bit("high") == pytest.approx(2600 / 64)  # float
    assert t.fp_mac_pj() == pytest.approx(3.7 + 0.9)  # float


def test_switch_energy_by_hand():
    assert switch_energy_pj("shift", design=Design()) == pytest.approx(8 * 3 * 0.0015)   # float; 8 widths: 3 stages
    assert switch_energy_pj("shift", design=Design(widths=(4, 8))) == pytest.approx(8 * 1 * 0.0015)  # float
    assert switch_energy_pj("float") == pytest.approx(2 * (3.7 + 0.9))
    rescale = (0.2 + 64 * 2.9 / 960) + (0.03 + 18 * 0.07 / 24) + 26 * 5 * 0.0015
    assert switch_energy_pj("int_rescale", design=Design(component="rescale", mult_bits=16, sbits=5)) == pytest.approx(rescale)  # float
    with pytest.raises(ValueError, match="switch method must be one of"):
        switch_energy_pj("magic")


def test_tech_table_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown technology table 'tsmc3'"):
        load_tech("tsmc3")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "bad", "int_add_pj": {"8": 0.03}}))
    with pytest.raises(ValueError, match=r"bad\.json.: lacks the required keys \[.int_mul_pj."):
        load_tech(str(bad))


def test_layer_energy_fc_by_hand(tiny):
    g = load_network(tiny)
    tile = Design(rows=2, cols=2, acc_width=32, depth_bits=13)
    e = layer_energy(g.layer_info(g["fc"]), tile, b_a=8, b_w=8, memory=MemoryConfig())
    assert e["compute_pj"] == pytest.approx(80 * (0.2 + 0.1))  # float
    # 5 column folds x 1 row x 8 taps activations, 1 row fold x 10 x 8 weights
    assert e["sram_reads"] == 40 + 80
    assert e["dram_bits"] == (80 + 8 + 10) * 8
    assert e["dram_pj"] == pytest.approx(784 * 1300 / 64)  # float
    packed = layer_energy(g.layer_info(g["fc"]), tile, b_a=4, b_w=4,
                          memory=MemoryConfig(storage="packed"))
    assert packed["dram_bits"] == 80 * 4 + 8 * 4 + 10 * 8
    with pytest.raises(ValueError, match=r"b_a = 3 is not a width the tile supports \(4, 8\)"):
        layer_energy(g.layer_info(g["fc"]), Design(rows=2, cols=2, widths=(4, 8)), b_a=3)


# ------------------------------------------------------------------ cycles


def test_cycles_by_hand(tiny):
    g = load_network(tiny)
    tile = Design(rows=2, cols=2, depth_bits=13)
    c1 = layer_cycles(g.layer_info(g["c1"]), tile)
    # 18 row folds x 4 column folds = 72 tiles of 36 steps, last tile 2 rows:
    # 71 * 36 + 36 + (C + 1 + 2)
    assert c1["Total Cycles"] == 71 * 36 + 36 + 5
    assert c1["Mapping Efficiency %"] == pytest.approx(100.0)  # float
    assert c1["Overall Util %"] == pytest.approx(100 * 10368 / (4 * 2597))  # float
    fc = layer_cycles(g.layer_info(g["fc"]), tile)
    assert fc["Total Cycles"] == 4 * 8 + 8 + 4
    assert fc["Mapping Efficiency %"] == pytest.approx(100 * 10 / 20)  # float
    assert c1["Stall Cycles"] == 0
    # a tile shorter than max(R, C) is padded: K = 1 on 3x4 -> period 4
    short = {"name": "s", "groups": 1, "out_shape": (8, 1, 3), "taps": 1, "macs": 24}
    assert layer_cycles(short, Design(rows=3, cols=4))["Total Cycles"] == 4 + 1 + 4 + 1 + 3


def test_cycles_bit_serial_and_stalls(tiny):
    g = load_network(tiny)
    tile = Design(rows=2, cols=2, depth_bits=13)
    info = g.layer_info(g["fc"])
    bs = layer_cycles(info, tile, b_a=4, b_w=8, pe_mode="bit_serial")
    assert bs["steps_per_tile"] == 32 and bs["Total Cycles"] == 4 * 32 + 32 + 4
    st = layer_cycles(info, tile, dram_bits=10_000, dram_bits_per_cycle=100)
    assert st["Stall Cycles"] == 100 - 44
    # the generator's scalable PE packs 4 products per step at <= 2 bits, 2 at <= 4 bits
    sc = layer_cycles(info, tile, b_a=4, b_w=4, pe_mode="scalable", max_pack=4)
    assert sc["steps_per_tile"] == 4 and sc["Total Cycles"] == 4 * 4 + 4 + 4
    assert layer_cycles(info, tile, b_a=2, b_w=2, pe_mode="scalable")["steps_per_tile"] == 2
    assert layer_cycles(info, tile, b_a=5, b_w=2, pe_mode="scalable")["steps_per_tile"] == 8
    with pytest.raises(ValueError, match="PE mode must be one of"):
        layer_cycles(info, tile, pe_mode="quantum")
