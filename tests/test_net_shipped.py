"""The shipped, trained demo network (dqt_hw/net/data/): it loads, and the integer
executor reproduces, bit for bit, the logit codes and accuracies recorded at export; the
``dqt-hw run`` and ``dqt-hw net summary`` commands work on it."""

import json

import numpy as np
import pytest

from dqt_hw.cli import main
from dqt_hw.net import network as nw
from dqt_hw.net.executor import codes_digest, execute, input_codes
from dqt_hw.train.data import load


@pytest.fixture(scope="module")
def shipped():
    return nw.load(nw.default_path())


def test_shipped_network_reproduces_its_recorded_runs(shipped):
    prov = shipped.provenance
    assert prov["command"].startswith("dqt-hw train") and "seed" in prov
    ds = load(prov["data"])
    xq = input_codes(shipped, ds.x_test)
    for key, digest in prov["integer_logit_codes_sha256"].items():
        w = "dynamic" if key == "dynamic" else int(key.split("_")[1])
        r = execute(shipped, xq, widths=w)
        assert codes_digest(r.codes) == digest, key
        assert r.accuracy(ds.y_test) == prov["integer_test_accuracy"][key]
    assert prov["integer_test_accuracy"]["static_8"] >= 0.95


def test_shipped_controller_is_input_dependent(shipped):
    """The controller's per-input widths on the test set (computed, not recorded): more
    than one width mix, consecutive inputs that switch, and at least the accuracy of the
    cheapest static width that costs more BitOPs than the dynamic run."""
    ds = load(shipped.provenance["data"])
    xq = input_codes(shipped, ds.x_test)
    r = execute(shipped, xq, widths="dynamic")
    mixes, counts = np.unique(r.widths.reshape(len(xq), -1), axis=0, return_counts=True)
    assert len(mixes) >= 2 and counts.min() >= 0.05 * len(xq), counts
    assert (r.switches() > 0).sum() >= 0.05 * len(xq)
    costlier = [b for b in shipped.controller.widths
                if execute(shipped, xq[:1], widths=b).bitops[0] > r.bitops.mean()]
    s = execute(shipped, xq, widths=min(costlier))
    assert r.accuracy(ds.y_test) >= s.accuracy(ds.y_test)


def test_run_command_writes_results_and_plots(tmp_path, capsys):
    rc = main(["run", "--out", str(tmp_path), "--limit", "64", "--calibration", "40",
               "--no-progress"])
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert [s["width"] for s in res["static"]] == [2, 4, 6, 8]
    assert res["dynamic"]["accuracy"] > 0.9
    assert res["own_mix"] is None  # trained here: no imported per-layer widths
    assert len(res["dynamic"]["switches_per_input"]["per_input"]) == 64
    assert all(k["mean_bitops"] <= k["budget_bitops"] for k in res["knapsack"])
    for png in ("accuracy_vs_bitops.png", "width_histogram.png", "switches.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "static 8/8: accuracy" in out and "knapsack mix within" in out
    from dqt_hw.model import _simd

    assert f"exact sums by the {_simd.describe()}" in out  # which kernel level ran


def test_summary_command(capsys):
    assert main(["net", "summary"]) == 0
    out = capsys.readouterr().out
    assert "controller: features = GAP(conv1), hidden 64" in out
    assert main(["net", "summary", "resnet18_cifar10"]) == 0
    assert "0.555 G MACs" in capsys.readouterr().out
