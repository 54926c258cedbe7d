"""``dqt-hw cost`` and ``dqt-hw sweep`` end to end (in process), and their clear errors."""

from __future__ import annotations

import csv
import json

import pytest

from dqt_hw.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_cost_resnet18_writes_table_and_plots(tmp_path, capsys):
    out = tmp_path / "cost"
    assert main(["cost", "--net", "resnet18_cifar10", "--widths", "4x4", "--rows", "8",
                 "--cols", "8", "--acc-width", "24", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layer4.1.conv2" in text and "G BitOPs" in text and "uJ per inference" in text
    with (out / "layers.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 21
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bitops"] == 555_422_720 * 16
    for name in ("energy_breakdown.png", "bitops_vs_mix.png", "area_vs_widths.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_cost_per_input_widths(tmp_path, capsys):
    import numpy as np

    w = np.full((3, 21, 2), 4)
    w[0] = 8
    np.save(tmp_path / "w.npy", w)
    assert main(["cost", "--per-input", str(tmp_path / "w.npy"), "--no-plots",
                 "--out", str(tmp_path / "o")]) == 0
    d = json.loads((tmp_path / "o" / "summary.json").read_text())["dynamic_bitops"]
    assert d["inputs"] == 3
    assert d["bitops_mean"] == pytest.approx(555_422_720 * (64 + 16 + 16) / 3)  # float


@pytest.mark.parametrize("args, message", [
    (["--net", "vgg99"], "unknown network 'vgg99'"),
    (["--widths", "4y4"], "cannot read the width pair '4y4'"),
    (["--tech", "tsmc3"], "unknown technology table 'tsmc3'"),
    (["--acc-width", "12"], "accumulator width W = 12 is narrower than one product"),
    (["--widths", "3x3", "--supported", "2,4,8"], "b_a = 3 is not a width the tile supports"),
])
def test_cost_errors(tmp_path, capsys, args, message):
    assert main(["cost", "--no-plots", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_sweep_command(tmp_path, capsys):
    net = tmp_path / "tiny.json"
    net.write_text(json.dumps({"name": "tiny", "nodes": [
        {"name": "input", "op": "input", "shape": [4, 5, 5]},
        {"name": "c1", "op": "conv", "inputs": ["input"], "out_channels": 4, "kernel": 3,
         "padding": 1}]}))
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"network": [str(net)], "layer": ["c1"], "acc_width": [17, 20],
                                "overflow": ["saturate"], "mix": ["8x8", "4x4"],
                                "rows": [2], "cols": [2], "tech": ["horowitz45"]}))
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid", str(grid), "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "<- chosen" in text and "accumulator sizing" in text
    for name in ("sweep.csv", "sweep.parquet", "accsize.json", "summary.json"):
        assert (out / name).exists()
    for name in ("pareto_energy_overflow.png", "pareto_energy_bitops.png"):
        assert (out / name).read_bytes()[:8] == PNG
    chosen = json.loads((out / "summary.json").read_text())["chosen"]
    assert chosen["overflow_rate"] == 0.0
