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


# ------------------------------------------------------------------ network tensors (.npz)


@pytest.fixture
def net_file(tmp_path):
    from dqt_hw.net import network as nw
    from dqt_hw.net.graph import resnet_tiny

    net = nw.random_controller(nw.random_network(resnet_tiny(), seed=3), seed=1)
    return net.save(tmp_path / "tiny.json")


def _rewrite_npz(path, fn, *, pickle_ok=False):
    """The network's .npz with ``fn`` applied to its arrays, its checksum recorded."""
    import hashlib
    import io

    npz = path.with_suffix(".npz")
    arrays = dict(np.load(npz))
    fn(arrays)
    buf = io.BytesIO()
    if pickle_ok:  # np.savez pickles object arrays
        np.savez(buf, **arrays)
    else:
        np.savez_compressed(buf, **arrays)
    npz.write_bytes(buf.getvalue())
    doc = json.loads(path.read_text())
    doc["tensors"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, message", [
    # objects are never unpickled
    (lambda a: a.__setitem__("conv1/bias", np.array([{"x": 1}] * 16, dtype=object)),
     r"tensor 'conv1/bias' is not a plain array: it holds Python objects, which are never "
     r"unpickled \(allow_pickle=False\)$"),
    # a uint64 constant 2^64 - 1 would become -1 as int64: its dtype is refused
    (lambda a: a.__setitem__("conv1/K", np.full((4, 16), 2**64 - 1, np.uint64)),
     r"tensor 'conv1/K' has dtype uint64, not one of int8, int16, int32, int64, uint8, "
     r"uint16, uint32$"),
    (lambda a: a.__setitem__("fc/w", a["fc/w"].astype(np.float64)),
     r"tensor 'fc/w' has dtype float64, not one of int8, "),
    (lambda a: a.__setitem__("conv1/w_m", a["conv1/w_m"].astype(np.int32)),
     r"tensor 'conv1/w_m' has dtype int32, not one of float32, float64$"),
    # shapes as the graph declares them
    (lambda a: a.__setitem__("layer1.0.add/S", np.zeros((4,), np.int64)),
     r"tensor 'layer1\.0\.add/S' has shape \(4,\), the graph needs \(3,\)$"),
    (lambda a: a.__setitem__("controller.fc1/w", np.zeros((70000, 16), np.uint8)),
     r"tensor 'controller\.fc1/w' has shape \(70000, 16\): more than 65536 channels$"),
    # a tensor no layer reads: from another network
    (lambda a: a.__setitem__("conv9/w", a["conv1/w"]),
     r"tensor 'conv9/w' belongs to no layer of the network \(did you mean 'conv1/w'\?\)$"),
])
def test_network_tensors_checked_before_they_load(net_file, edit, message):
    from dqt_hw.net import network as nw

    _rewrite_npz(net_file, edit, pickle_ok=True)
    with pytest.raises(ValueError, match=r"^network tensors '.*tiny\.npz': " + message):
        nw.load(net_file)


@pytest.mark.parametrize("key, index, value, message", [
    # S's range: the shifts of the arithmetic (docs/arithmetic.md, section 3)
    ("conv1/S", (1, 3), 10**15, r"layer 'conv1': shift S2 of channel 3 = 10000000000000\d\d "
                                r"\(tensor 'conv1/S'\) is outside \[-4064, 4064\]"),
    ("layer2.0.add/S", (0,), -5000, r"layer 'layer2\.0\.add': shift S1 = -5000 \(tensor "
                                    r"'layer2\.0\.add/S'\) is outside \[-4064, 4064\]"),
    # K's bits (const_bits = 32)
    ("fc/K", (0, 2), 2**40, r"layer 'fc': constant K1 of channel 2 = 1099511627776 does not "
                            r"fit its declared width of 32 bits"),
    # codes within n bits
    ("conv1/w", (0, 0, 0, 0), 256, r"layer 'conv1': weight code 256 is outside the 8-bit "
                                   r"range \[0, 255\]"),
])
def test_network_constants_range_checked(net_file, key, index, value, message):
    from dqt_hw.net import network as nw

    def edit(a):
        v = a[key].astype(np.int64)
        v[index] = v[index] + value if key.endswith("/S") and value > 0 else value
        a[key] = v
    _rewrite_npz(net_file, edit)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': " + message):
        nw.load(net_file)


def test_network_tensor_with_lying_header_refused(net_file):
    """A member whose header promises more data than it holds is refused, not padded."""
    import hashlib
    import io
    import zipfile

    from dqt_hw.net import network as nw

    npz = net_file.with_suffix(".npz")
    src = zipfile.ZipFile(io.BytesIO(npz.read_bytes()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in src.namelist():
            data = src.read(name)
            z.writestr(name, data[:-8] if name == "conv1/K.npy" else data)
    npz.write_bytes(buf.getvalue())
    doc = json.loads(net_file.read_text())
    doc["tensors"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    net_file.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"^network tensors '.*tiny\.npz': tensor 'conv1/K' "
                                         r"is truncated or corrupt \("):
        nw.load(net_file)
