"""Hardened inputs (issue: no file can run code): CIFAR-10 batches go through a restricted
unpickler, and a network file cannot make `dqt-hw run` read a pickle on its own."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from dqt_hw.cli import main
from dqt_hw.train import data as data_mod


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling calls os.system: what must never happen
        return (os.system, (f"touch {self.marker}",))


def _batch(n, rng):
    return {b"batch_label": b"x", b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"f%d" % i for i in range(n)]}


def _cifar_folder(root, rng, evil=None):
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = _batch(4, rng)
        if evil is not None and name == "data_batch_3":
            obj = {b"data": evil, b"labels": [0]}
        (root / name).write_bytes(pickle.dumps(obj, protocol=2))
    return root


def test_cifar10_layout_loads(tmp_path):
    rng = np.random.default_rng(0)
    ds = data_mod.load(f"cifar10:{_cifar_folder(tmp_path / 'c', rng)}")
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_malicious_cifar10_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    folder = _cifar_folder(tmp_path / "c", np.random.default_rng(0), evil=_Evil(marker))
    with pytest.raises(ValueError, match=r"data_batch_3' is not a valid CIFAR-10 pickle: "
                                         r"global posix\.system is not allowed"):
        data_mod.load(f"cifar10:{folder}")
    assert not marker.exists()


def test_run_does_not_read_the_data_a_network_file_names(tmp_path, capsys):
    from dqt_hw.net import network as nw

    src = nw.default_path()
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".npz"), dst.with_suffix(".npz"))
    doc = json.loads(dst.read_text())
    doc["provenance"]["data"] = f"cifar10:{tmp_path / 'c'}"
    dst.write_text(json.dumps(doc))
    marker = tmp_path / "pwned"
    _cifar_folder(tmp_path / "c", np.random.default_rng(0), evil=_Evil(marker))
    assert main(["run", "--net", str(dst), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "trained on 'cifar10:" in err and "pass --data" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_per_input_widths_never_unpickle(tmp_path):
    from dqt_hw.cost.workload import DynamicWidths, load_network

    g = load_network("resnet18_cifar10")
    bad = tmp_path / "w.npy"
    np.save(bad, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"w\.npy' is not a plain integer array: "
                                         r".*allow_pickle=False"):
        DynamicWidths.load(bad, g)
