"""``--storage planes`` (docs/cost.md): SRAM and DRAM traffic count the planes a view reads
(tests/naive.py's planes_read, the oracle of spec.planes_read), outputs written as n planes,
each plane of N elements ceil(N / W) words; static mixes, per-input widths, the sweep's
storage axis. Energies are floats: the tolerances are their rounding, never codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import naive
from dqt_hw.cli import main
from dqt_hw.cost.energy import MemoryConfig, dynamic_energy, layer_energy, network_energy
from dqt_hw.cost.tech import load_tech
from dqt_hw.cost.workload import DynamicWidths, WidthMix, load_network
from dqt_hw.design import Design

TECH = load_tech("horowitz45")
FLOOR = Design()  # 8x8, n = 8, floor views
HALF_UP = Design(view_rounding="half_up")


def _dram_bits(info, tile, b_a, b_w, W=64):
    """The planes' DRAM bits by hand: each tensor's planes of ceil(N / W) words."""
    n, r = tile.n, tile.view_rounding

    def bits(elements, planes):
        return planes * math.ceil(elements / W) * W

    return (bits(info["weights"], naive.planes_read(n, b_w, r))
            + bits(info["in_activations"], naive.planes_read(n, b_a, r))
            + bits(info["out_activations"], n))


@pytest.mark.parametrize("tile", [FLOOR, HALF_UP], ids=["floor", "half_up"])
@pytest.mark.parametrize("b_a, b_w", [(8, 8), (6, 6), (4, 8), (4, 4), (2, 2), (1, 3), (7, 7)])
def test_planes_traffic_counts_the_planes_read(tile, b_a, b_w):
    g = load_network("resnet18_cifar10")
    for name in ("conv1", "layer2.0.conv1", "fc"):  # fc: 10 outputs, one padded word
        info = g.layer_info(g[name])
        for W in (64, 8):
            mem = MemoryConfig(storage="planes", plane_word_bits=W)
            e = layer_energy(info, tile, b_a=b_a, b_w=b_w, memory=mem)
            want = _dram_bits(info, tile, b_a, b_w, W)
            assert e["dram_bits"] == pytest.approx(want, rel=1e-12)  # float quantities, not codes
            assert e["dram_pj"] == pytest.approx(want * TECH.dram_pj_per_bit(None), rel=1e-12)  # float quantities, not codes


def test_planes_against_master_and_packed():
    """A layer whose tensors fill whole words: floor planes move exactly the packed bits;
    at 8/8 every storage moves n bits an element; half_up planes one plane more."""
    g = load_network("resnet18_cifar10")
    info = g.layer_info(g["layer1.0.conv1"])  # 64x32x32 in/out, 36864 weights
    assert all(info[k] % 64 == 0 for k in ("weights", "in_activations", "out_activations"))
    e = {s: layer_energy(info, FLOOR, b_a=4, b_w=4, memory=MemoryConfig(storage=s))
         for s in ("master", "packed", "planes")}
    assert e["planes"]["dram_bits"] == e["packed"]["dram_bits"] == \
        (info["weights"] + info["in_activations"]) * 4 + info["out_activations"] * 8
    assert e["planes"]["sram_pj"] == pytest.approx(e["packed"]["sram_pj"], rel=1e-12)  # float quantities, not codes
    assert e["master"]["dram_bits"] == (info["weights"] + info["in_activations"]
                                        + info["out_activations"]) * 8
    hu = layer_energy(info, HALF_UP, b_a=4, b_w=4, memory=MemoryConfig(storage="planes"))
    assert hu["dram_bits"] == (info["weights"] + info["in_activations"]) * 5 \
        + info["out_activations"] * 8
    full = {s: layer_energy(info, FLOOR, b_a=8, b_w=8, memory=MemoryConfig(storage=s))
            for s in ("master", "planes")}
    assert full["planes"]["dram_bits"] == full["master"]["dram_bits"]
    assert full["planes"]["total_pj"] == pytest.approx(full["master"]["total_pj"], rel=1e-12)  # float quantities, not codes


def test_memory_config_refusals():
    with pytest.raises(ValueError, match=r"^storage must be one of \('master', 'packed', "
                                         r"'planes'\), not 'bits'$"):
        MemoryConfig(storage="bits")
    with pytest.raises(ValueError, match=r"^plane_word_bits must be an integer >= 1, not 0$"):
        MemoryConfig(storage="planes", plane_word_bits=0)


def _dyn(g, pairs_per_input):
    layers = tuple(nd.name for nd in g.compute_layers())
    w = np.array([[p] * len(layers) for p in pairs_per_input], np.int64)
    return DynamicWidths(layers, w)


def test_dynamic_energy_is_the_mean_of_each_inputs_static_energy():
    g = load_network("resnet8_digits")
    mem = MemoryConfig(storage="planes")
    stat = {p: network_energy(g, FLOOR, WidthMix.parse(f"{p[0]}x{p[1]}").check(g),
                              memory=mem)[1]["total_pj"] for p in ((8, 8), (4, 4), (2, 4))}
    d = dynamic_energy(g, FLOOR, _dyn(g, [(8, 8), (4, 4), (4, 4), (2, 4)]), memory=mem)
    assert d["inputs"] == 4
    np.testing.assert_allclose(d["per_input_pj"], [stat[(8, 8)], stat[(4, 4)], stat[(4, 4)],  # float
                                                   stat[(2, 4)]], rtol=1e-12)
    assert d["mean_pj"] == pytest.approx((stat[(8, 8)] + 2 * stat[(4, 4)] + stat[(2, 4)]) / 4,  # float quantities, not codes
                                         rel=1e-12)
    assert d["min_pj"] == pytest.approx(stat[(2, 4)], rel=1e-12)  # float quantities, not codes
    # a layer-by-layer mix per input: the layers' own pairs
    layers = tuple(nd.name for nd in g.compute_layers())
    w = np.full((1, len(layers), 2), 8)
    w[0, 0] = (2, 2)
    one = dynamic_energy(g, FLOOR, DynamicWidths(layers, w), memory=mem)["mean_pj"]
    mix = WidthMix.parse({"*": "8x8", layers[0]: "2x2"}).check(g)
    assert one == pytest.approx(network_energy(g, FLOOR, mix, memory=mem)[1]["total_pj"],  # float quantities, not codes
                                rel=1e-12)


def test_cost_cli_planes_with_per_input_widths(tmp_path, capsys):
    w = np.full((3, 21, 2), 4)
    w[0] = 8
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "o"
    assert main(["cost", "--storage", "planes", "--per-input", str(tmp_path / "w.npy"),
                 "--no-plots", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "storage planes, 64-bit words" in text and "per-input widths:" in text
    s = json.loads((out / "summary.json").read_text())
    assert s["storage"] == "planes" and s["plane_word_bits"] == 64
    g = load_network("resnet18_cifar10")
    e = {b: network_energy(g, FLOOR, WidthMix.parse(f"{b}x{b}").check(g),
                           memory=MemoryConfig(storage="planes"))[1]["total_pj"]
         for b in (8, 4)}
    assert s["dynamic_energy"]["mean_pj"] == pytest.approx((e[8] + 2 * e[4]) / 3, rel=1e-12)  # float quantities, not codes
    assert main(["cost", "--storage", "packed", "--plane-word-bits", "32", "--no-plots",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--plane-word-bits sizes the words of --storage planes" in capsys.readouterr().err


def test_sweep_storage_axis(tmp_path):
    from dqt_hw.sweep.grid import check_grid
    from dqt_hw.sweep.points import evaluate, expand_grid

    net = tmp_path / "tiny.json"
    net.write_text(json.dumps({"name": "tiny", "nodes": [
        {"name": "input", "op": "input", "shape": [4, 8, 8]},
        {"name": "c1", "op": "conv", "inputs": ["input"], "out_channels": 8, "kernel": 3,
         "padding": 1}]}))
    grid = {"network": [str(net)], "layer": ["c1"], "acc_width": [24], "overflow": ["wrap"],
            "mix": ["4x4"], "rows": [2], "cols": [2], "tech": ["horowitz45"],
            "storage": ["master", "planes"]}
    pts = expand_grid(grid)
    assert [p["storage"] for p in pts] == ["master", "planes"]
    rows = [evaluate(p) for p in pts]
    assert rows[1]["energy_pj"] < rows[0]["energy_pj"]
    assert rows[1]["energy_compute_pj"] == rows[0]["energy_compute_pj"]
    assert rows[1]["overflow_rate"] == rows[0]["overflow_rate"]
    with pytest.raises(ValueError, match=r"^sweep grid: storage\[0\]: input should be 'master', "
                                         r"'packed' or 'planes', not 'bits'$"):
        check_grid({**grid, "storage": ["bits"]})


def test_sweep_cli_storage_option(tmp_path, capsys):
    assert main(["sweep", "--show-grid", "--storage", "master,planes"]) == 0
    assert json.loads(capsys.readouterr().out)["storage"] == ["master", "planes"]
    assert main(["sweep", "--show-grid", "--storage", "planes,flat"]) == 2
    assert "with --storage: storage[1]: input should be 'master', 'packed' or 'planes', not 'flat'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the report


def test_planes_report_table(tmp_path, capsys):
    from dqt_hw.cost.planes_report import STORAGES, markdown_table, static_table

    rows = static_table(nets=("resnet18_cifar10",))
    assert [r["widths"] for r in rows] == ["8/8", "6/6", "4/4", "2/2"]
    g = load_network("resnet18_cifar10")
    for r in rows:
        b = int(r["widths"][0])
        mix = WidthMix.parse(f"{b}x{b}").check(g)
        for col, (storage, rounding) in STORAGES.items():
            tile = Design(view_rounding=rounding)
            want = network_energy(g, tile, mix, memory=MemoryConfig(storage=storage))[1]
            assert r[col] == pytest.approx(want["total_pj"] / 1e6, rel=1e-12)  # float quantities, not codes
        if b < 8:  # a view reads fewer planes than the master codes' bits
            assert r["planes"] < r["planes, half_up views"] < r["master"]
    text = markdown_table(rows, None)
    assert text.splitlines()[0] == ("| network | widths | master | packed | planes | "
                                    "planes, half_up views |")
    assert "| resnet18_cifar10 | 4/4 | 2,608.52 | 1,407.72 | 1,407.73 | 1,712.10 |" in text
    out = tmp_path / "p"
    assert main(["cost-planes", "--no-shipped", "--out", str(out)]) == 0
    assert (out / "energy_table.md").read_text() in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["files"][-1].endswith("summary.json")


def test_planes_report_shipped_points_and_plot(tmp_path):
    from dqt_hw.cost.planes_report import markdown_table, plot_energy_accuracy, shipped_points

    sh = shipped_points(limit=16, calibration=32, log=lambda *a: None)
    kinds = [p["kind"] for p in sh["points"]]
    assert kinds[:4] == ["static"] * 4 and kinds[-1] == "controller" and "knapsack" in kinds
    static = {p["label"]: p for p in sh["points"] if p["kind"] == "static"}
    assert list(static) == ["2/2", "4/4", "6/6", "8/8"]
    ctl = sh["points"][-1]
    assert static["2/2"]["planes"] <= ctl["planes"] <= static["8/8"]["planes"]
    assert 0.0 <= ctl["accuracy"] <= 1.0 and sh["test_inputs"] == 16
    # master storage: the widths move only the compute energy (under 1 % here)
    assert static["2/2"]["master"] > 0.99 * static["8/8"]["master"]
    assert "(shipped) | controller (mean of 16 inputs)" in markdown_table([], sh)
    p = plot_energy_accuracy(sh, tmp_path / "e.png")
    assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_plot_shows_the_storage_axis(tmp_path):
    from dqt_hw.sweep.pareto import plot_pareto

    rows = [{"storage": s, "mix": "4x4", "acc_width": 20, "overflow": "wrap", "rows": 2,
             "cols": 2, "overflow_rate": 0.0, "energy_pj": e, "bitops": 1e9, "area_um2": 1.0,
             "valid": True} for s, e in (("master", 3e6), ("planes", 1e6))]
    p = plot_pareto(rows, tmp_path / "p.png", chosen=rows[1])
    assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
