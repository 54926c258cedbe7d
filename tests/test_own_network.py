"""Everything on an imported network (docs/networks.md, "Your own model", and README):
``dqt-hw run`` on the user's own data (.npz with x/y, or .npy with --labels), ``dqt-hw
cost``, ``dqt-hw sweep`` with a grid naming the network file, ``dqt-hw golden write
--trained --data`` on one of its layers, and that set through the generated tile in
cocotb on Verilator (``dqt-hw sim``)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import onnx
import pytest

import onnx_models as om
from dqt_hw.cli import main
from dqt_hw.net import network as nw
from dqt_hw.net.executor import execute, input_codes
from dqt_hw.train import data as data_mod

LAYER = "conv12"  # the resnet_like stem's block conv: 8 -> 8, 3x3, after a ReLU


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """(network file, .npz data, .npy inputs, .npy labels, labels) of an imported QDQ
    model with labels of its own 8/8 predictions on half the inputs, so that accuracies
    differ between widths."""
    d = tmp_path_factory.mktemp("own")
    cal = om.inputs(1, 64)
    f = d / "resnet.onnx"
    onnx.save(om.centered(om.resnet_like(seed=0), cal), f)
    q = om.quantize_qdq(f, d / "resnet_qdq.onnx", cal)
    assert main(["import", str(q), "-o", str(d / "net.json"), "--widths", "2,4,8"]) == 0
    net = nw.load(d / "net.json")
    x = om.inputs(2, 40)
    pred = execute(net, input_codes(net, x), widths=8).pred
    y = np.where(np.arange(40) % 2 == 0, pred, (pred + 1) % 10).astype(np.int64)
    np.savez(d / "data.npz", x=x, y=y, x_cal=om.inputs(3, 16), y_cal=np.arange(16) % 10)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    return d / "net.json", d / "data.npz", d / "x.npy", d / "y.npy", y


def test_run_on_own_data_npz_and_npy_with_labels(own, tmp_path):
    path, npz, xs, ys, y = own
    assert main(["run", "--net", str(path), "--data", str(npz), "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 0
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    net = nw.load(path)
    x = np.load(xs)
    for row in res["static"]:
        r = execute(net, input_codes(net, x), widths=row["width"])
        assert row["accuracy"] == float(np.mean(r.pred == y))
        assert row["mean_bitops"] == float(r.bitops.mean())
    assert [r["width"] for r in res["static"]] == [2, 4, 8]
    assert res["static"][-1]["accuracy"] == 0.5  # labels: the 8/8 predictions on half
    assert res["knapsack"]  # x_cal/y_cal give the layer sensitivities
    assert main(["run", "--net", str(path), "--data", str(xs), "--labels", str(ys),
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    res_b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert res_b["static"] == res["static"]
    assert not res_b["knapsack"]  # no calibration inputs: no knapsack mixes


def _bad(tmp_path, name, **arrays):
    p = tmp_path / name
    if name.endswith(".npz"):
        np.savez(p, **arrays)
    else:
        np.save(p, arrays["a"])
    return p


def test_own_data_is_checked(tmp_path):
    x = np.zeros((4, 3, 8, 8), np.float32)
    y = np.arange(4)
    cases = [
        (_bad(tmp_path, "noy.npz", x=x), None, r"noy.npz' has no array 'y'"),
        (_bad(tmp_path, "extra.npz", x=x, y=y, z=y), None, r"unknown array 'z'"),
        (_bad(tmp_path, "cal.npz", x=x, y=y, x_cal=x), None, r"'x_cal' and 'y_cal' go together"),
        (_bad(tmp_path, "shape.npz", x=x[:, :1], y=y), None,
         r"array 'x': shape \(4, 1, 8, 8\) is not \(N >= 1, 3, 8, 8\)"),
        (_bad(tmp_path, "ylen.npz", x=x, y=y[:3]), None, r"array 'y': shape \(3,\) is not \(4,\)"),
        (_bad(tmp_path, "yfloat.npz", x=x, y=y * 1.0), None, r"dtype float64 is not an integer"),
        (_bad(tmp_path, "yneg.npz", x=x, y=y - 1), None, r"label -1 is negative"),
        (_bad(tmp_path, "nan.npz", x=np.full_like(x, np.nan), y=y), None,
         r"value at \(0, 0, 0, 0\) is nan, not finite"),
        (_bad(tmp_path, "x.npy", a=x), None, r"holds inputs only: pass their labels with --labels"),
        (_bad(tmp_path, "x.npy", a=x), _bad(tmp_path, "l.npy", a=y[:2]),
         r"labels file '.*l.npy': shape \(2,\) is not \(4,\)"),
        (_bad(tmp_path, "ok.npz", x=x, y=y), tmp_path / "l.npy", r"--labels does not apply"),
        (tmp_path / "missing.npz", None, r"data file '.*missing.npz' does not exist"),
    ]
    (tmp_path / "text.npy").write_text("not numpy")
    cases.append((tmp_path / "text.npy", None, r"text.npy' is not a .npy or .npz array file"))
    for p, labels, match in cases:
        with pytest.raises(ValueError, match=match):
            data_mod.load_arrays(p, labels, shape=(3, 8, 8))


def test_run_refusals_are_one_line(own, tmp_path, capsys):
    path, npz, xs, ys, _ = own
    assert main(["run", "--net", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "records no data set (provenance.data); pass --data DATA.npz" in err
    assert err.count("\n") == 1
    assert main(["run", "--net", str(path), "--data", "digits", "--labels", str(ys),
                 "--out", str(tmp_path)]) == 2
    assert "--labels goes with --data X.npy" in capsys.readouterr().err


def test_cost_on_imported_network(own, tmp_path):
    path = own[0]
    assert main(["cost", "--net", str(path), "--widths", "4x8", "--out", str(tmp_path),
                 "--no-plots"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    net = nw.load(path)
    table = net.graph.layer_table()
    assert s["macs"] == net.graph.total_macs()
    assert s["bitops"] == sum(r["macs"] for r in table if r["op"] in ("conv", "fc")) * 4 * 8


def test_sweep_with_a_grid_naming_the_network_file(own, tmp_path):
    path = own[0]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"network": [str(path)], "layer": [LAYER], "acc_width": [32],
                                "overflow": ["wrap"], "mix": ["8x8", "2x4"], "rows": [8],
                                "cols": [8], "tech": ["horowitz45"]}))
    assert main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "sw"), "--workers", "1",
                 "--no-progress", "--no-accsize"]) == 0
    with open(tmp_path / "sw" / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    macs = nw.load(path).graph.total_macs()  # the network's BitOPs at the point's mix
    assert sorted(int(r["bitops"]) for r in rows) == [macs * 2 * 4, macs * 8 * 8]
    assert {r["layer"] for r in rows} == {LAYER} and all(r["valid"] == "True" for r in rows)
    assert {r["network"] for r in rows} == {str(path)}


DESIGN = dict(rows=2, cols=2, acc_width=20, overflow="saturate", view_rounding="half_up",
              max_pack=2, name="sim_quick_tile2x2")  # tests/test_sim_quick.py's tile


def _golden(own, tmp_path, capsys):
    from dqt_hw.design import Design

    path, _, xs, _, _ = own
    toml = tmp_path / "tile.toml"
    toml.write_text(Design(**DESIGN).to_toml())
    out = tmp_path / "set"
    assert main(["golden", "write", "--design", str(toml), "--out", str(out), "--net", str(path),
                 "--layer", LAYER, "--trained", "--data", str(xs), "--pairs", "8x8,4x4"]) == 0
    capsys.readouterr()
    return toml, out


def test_golden_set_of_an_imported_layer(own, tmp_path, capsys):
    from dqt_hw.golden import read_case
    from dqt_hw.net.tiles import layer_io

    toml, out = _golden(own, tmp_path, capsys)
    assert main(["golden", "verify", str(out), "--design", str(toml)]) == 0
    net = nw.load(own[0])
    codes = input_codes(net, np.load(own[2])[:1])
    x, _ = layer_io(net, LAYER, codes, np.full((1, len(net.compute_layers()), 2), 8))
    case = read_case(next(p for p in out.iterdir() if p.name.endswith("b8x8_w20_saturate")))
    np.testing.assert_array_equal(case.arrays["x"], x)  # the layer's real input codes
    np.testing.assert_array_equal(case.arrays["w"], net.layers[LAYER].w)
    np.testing.assert_array_equal(case.arrays["K"], net.layers[LAYER].K)
    np.testing.assert_array_equal(case.arrays["S"], net.layers[LAYER].S)


def test_golden_trained_refusals(own, tmp_path, capsys):
    path, npz, xs, _, _ = own
    assert main(["golden", "write", "--out", str(tmp_path / "s"), "--net", str(path),
                 "--layer", LAYER, "--trained"]) == 2
    assert "records no data set: give its inputs with --data X.npy" in capsys.readouterr().err
    assert main(["golden", "write", "--out", str(tmp_path / "s"), "--net", str(path),
                 "--layer", LAYER, "--data", str(xs)]) == 2
    assert "--data gives the inputs of --trained" in capsys.readouterr().err
    assert main(["golden", "write", "--out", str(tmp_path / "s"), "--net", str(path),
                 "--layer", LAYER, "--trained", "--data", str(npz), "--inputs", "64"]) == 2
    assert "has 40 inputs, fewer than --inputs 64" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.skipif(shutil.which("verilator") is None, reason="Verilator is not on PATH")
def test_imported_layer_through_the_tile_in_cocotb(own, tmp_path, capsys):
    toml, out = _golden(own, tmp_path, capsys)
    assert main(["sim", "--design", str(toml), "--golden", str(out), "--blocks", "1"]) == 0
    text = capsys.readouterr().out
    assert "dqt-hw sim: PASS: 2 of 2 golden case(s) passed on sim_quick_tile2x2" in text
