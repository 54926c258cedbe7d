"""The network file format: round trip, and every bad input refused with a clear error
naming the layer and the values."""

import hashlib
import io
import json

import numpy as np
import pytest

from dqt_hw.net import network as nw
from dqt_hw.net.executor import execute
from dqt_hw.net.graph import resnet_tiny


@pytest.fixture(scope="module")
def tiny():
    return nw.random_network(resnet_tiny(), seed=3)


@pytest.fixture
def saved(tiny, tmp_path):
    return tiny.save(tmp_path / "tiny.json")


def _edit_json(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _edit_npz(path, fn):
    npz = path.with_suffix(".npz")
    arrays = dict(np.load(npz))
    fn(arrays)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    npz.write_bytes(buf.getvalue())
    _edit_json(path, lambda d: d["tensors"].__setitem__(
        "sha256", hashlib.sha256(buf.getvalue()).hexdigest()))


def test_round_trip_is_bit_exact(tiny, saved, rng):
    net = nw.load(saved)
    x = rng.integers(0, 256, (5, 1, 8, 8))
    for w in (8, 4, 2, {nm: (6, 4) for nm in tiny.compute_layers()}):
        assert np.array_equal(execute(net, x, widths=w).codes, execute(tiny, x, widths=w).codes)
    for name, L in tiny.layers.items():
        M = net.layers[name]
        assert M.fmt == L.fmt and M.widths == L.widths
        for key in ("w", "K", "S"):
            a, b = getattr(L, key), getattr(M, key)
            assert (a is None and b is None) or np.array_equal(a, b)
    assert "layer2.0.downsample" in net.summary()


def test_unknown_format_version(saved):
    _edit_json(saved, lambda d: d.__setitem__("version", 7))
    with pytest.raises(ValueError, match=r"format version 7 is not supported \(this dqt_hw "
                                         r"reads versions 1 and 2\)$"):
        nw.load(saved)
    _edit_json(saved, lambda d: d.__setitem__("format", "onnx"))
    with pytest.raises(ValueError, match=r"format tag 'onnx' is not 'dqt_hw.net'$"):
        nw.load(saved)


def test_dangling_edge(saved):
    def fn(d):
        d["nodes"][2]["inputs"] = ["nowhere"]
    _edit_json(saved, fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'layer1.0.conv1': input 'nowhere' is not a "
                                         r"layer defined before it \(dangling edge\)$"):
        nw.load(saved)


def test_shape_mismatch(saved):
    def graph_fn(d):  # the stem now has 8 channels: the residual add of layer1.0 breaks
        d["nodes"][1]["attrs"]["out_channels"] = 8
    _edit_json(saved, graph_fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'layer1.0.add': "
                                         r"shape mismatch: "
                                         r"'layer1.0.conv2' is \(16, 8, 8\), 'conv1' is "
                                         r"\(8, 8, 8\)$"):
        nw.load(saved)


def test_weight_shape_mismatch_in_npz(saved):
    _edit_npz(saved, lambda a: a.__setitem__("conv1/w", a["conv1/w"][:, :, :2, :]))
    with pytest.raises(ValueError, match=r"^network tensors '.*tiny\.npz': tensor 'conv1/w' has "
                                         r"shape \(16, 1, 2, 3\), the graph needs "
                                         r"\(16, 1, 3, 3\)$"):
        nw.load(saved)


def test_add_shape_mismatch(saved):
    def fn(d):
        for nd in d["nodes"]:
            if nd["name"] == "layer2.0.add":
                nd["inputs"] = ["layer2.0.conv2", "layer1.0.add"]
    _edit_json(saved, fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'layer2.0.add': "
                                         r"shape mismatch: "
                                         r"'layer2.0.conv2' is \(32, 4, 4\), 'layer1.0.add' is "
                                         r"\(16, 8, 8\)$"):
        nw.load(saved)


def test_width_outside_candidate_set(tiny, saved, rng):
    x = rng.integers(0, 256, (1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"^layer 'conv1': width 5 is not in its candidate "
                                         r"widths \(2, 4, 6, 8\)$"):
        execute(tiny, x, widths=5)
    mix = {nm: 8 for nm in tiny.compute_layers()}
    mix["fc"] = (8, 3)
    with pytest.raises(ValueError, match=r"^layer 'fc': width 3 is not in its candidate "
                                         r"widths \(2, 4, 6, 8\)$"):
        execute(tiny, x, widths=mix)
    del mix["fc"]
    with pytest.raises(ValueError, match=r"^width mix gives no width for layers \['fc'\]$"):
        execute(tiny, x, widths=mix)

    def fn(d):
        d["nodes"][1]["widths"] = [2, 4, 9]
    _edit_json(saved, fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'conv1': "
                                         r"candidate width 9 is outside \[1, 8\] \(master "
                                         r"width n = 8\)$"):
        nw.load(saved)


def test_constant_that_does_not_fit_its_width(saved):
    def fn(a):
        K = a["layer1.0.conv2/K"].copy()
        K[2, 5] = 1 << 31
        a["layer1.0.conv2/K"] = K
    _edit_npz(saved, fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'layer1.0.conv2': "
                                         r"constant K3 of channel 5 = "
                                         r"2147483648 does not fit its declared width of 32 "
                                         r"bits \(\[-2147483648, 2147483647\]\)$"):
        nw.load(saved)


def test_weight_code_out_of_range(saved):
    def fn(a):
        w = a["fc/w"].astype(np.int32)
        w[0, 0] = 300
        a["fc/w"] = w
    _edit_npz(saved, fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'fc': weight code 300 is outside the 8-bit "
                                         r"range \[0, 255\]$"):
        nw.load(saved)


def test_truncated_npz(saved):
    """A truncated .npz fails its checksum before it is parsed; one truncated and then
    recorded is not a valid archive."""
    npz = saved.with_suffix(".npz")
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"^network tensors '.*tiny\.npz': SHA-256 [0-9a-f]{16}"
                                         r"\.\.\. does not match the [0-9a-f]{16}\.\.\. recorded "
                                         rf"in the JSON \(truncated or replaced file, "
                                         rf"{len(data) // 2} bytes\)$"):
        nw.load(saved)
    _edit_json(saved, lambda d: d["tensors"].__setitem__(
        "sha256", hashlib.sha256(data[: len(data) // 2]).hexdigest()))
    with pytest.raises(ValueError, match=r"^network tensors '.*tiny\.npz': truncated or not a "
                                         rf"valid \.npz \({len(data) // 2} bytes; "):
        nw.load(saved)


def test_missing_tensor_and_replaced_npz(saved):
    _edit_npz(saved, lambda a: a.pop("layer2.0.add/K"))
    with pytest.raises(ValueError, match=r"^network tensors '.*tiny\.npz': tensor "
                                         r"'layer2\.0\.add/K' is missing \(truncated, or from "
                                         r"another network\)$"):
        nw.load(saved)


def test_sha_mismatch(saved):
    def fn(d):
        d["tensors"]["sha256"] = "0" * 64
    _edit_json(saved, fn)
    with pytest.raises(ValueError, match=r"SHA-256 .* does not match the 0000000000000000\.\.\. "
                                         r"recorded in the JSON"):
        nw.load(saved)


def test_relu_layer_needs_m_zero(saved):
    def fn(d):
        d["nodes"][1]["format"]["m"] = -0.5
    _edit_json(saved, fn)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': layer 'conv1': a ReLU layer's output format must "
                                         r"have m = 0 \(ReLU is the clamp at code 0\), not "
                                         r"m = -0.5$"):
        nw.load(saved)


def test_controlled_layer_before_its_features_node(tiny):
    """The controller chooses widths from its features node's codes: a layer it controls
    must come after that node."""
    import dataclasses

    net = nw.random_controller(tiny, seed=1)
    c = net.controller
    bad = dataclasses.replace(c, features="layer1.0.conv1",
                              static_widths={"conv1": 8, "layer1.0.conv1": 8})
    # layer1.0.conv1 is still controlled: the features node itself
    with pytest.raises(ValueError, match=r"^controller: controlled layer 'layer1.0.conv1' "
                                         r"does not come after the features node "
                                         r"'layer1.0.conv1' \(its widths are chosen from "
                                         r"that node's codes; it needs a static width\)$"):
        nw.Network(net.graph, net.arith, net.layers, bad)


@pytest.mark.parametrize("entry, message", [
    ({"file": "/etc/passwd"}, r"tensors\.file: must name a file beside the network file, "
                              r"not '/etc/passwd'"),
    ({"file": "../tiny.npz"}, r"tensors\.file: must name a file beside the network file, "
                              r"not '\.\./tiny\.npz'"),
    ({"file": "sub/tiny.npz"}, r"tensors\.file: must name a file beside"),
    ({"file": ".."}, r"tensors\.file: must name a file beside"),
    ({"sha256": None}, r"tensors\.sha256: input should be a valid string, not None$"),
    ({"sha256": "abc"}, r"tensors\.sha256: must be the tensors' SHA-256 \(64 lowercase hex "
                        r"digits\), not 'abc'$"),
])
def test_tensors_confined_and_checksummed(saved, entry, message):
    """A network file names only a file beside it, and always its checksum."""
    _edit_json(saved, lambda d: d["tensors"].update(entry))
    with pytest.raises(ValueError, match=message):
        nw.load(saved)


def test_tensors_link_out_of_the_directory_refused(saved, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    npz = saved.with_suffix(".npz")
    (other / "t.npz").write_bytes(npz.read_bytes())
    (saved.parent / "link.npz").symlink_to(other / "t.npz")
    _edit_json(saved, lambda d: d["tensors"].update({"file": "link.npz"}))
    with pytest.raises(ValueError, match=r"tensors\.file 'link\.npz' leads out of the network "
                                         r"file's directory"):
        nw.load(saved)


def test_tensors_without_entry_refused(saved):
    _edit_json(saved, lambda d: d.pop("tensors"))
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': lacks the required "
                                         r"keys \['tensors'\]$"):
        nw.load(saved)


# ------------------------------------------------------------------ the JSON, by its schema


def _conv1(d):
    return next(nd for nd in d["nodes"] if nd["name"] == "conv1")


@pytest.mark.parametrize("edit, message", [
    # an attribute the op does not have, and a misspelt one, with the nearest suggested
    (lambda d: _conv1(d)["attrs"].update(dilation=2),
     r"layer 'conv1': unknown key 'dilation' in attrs; known keys: out_channels, kernel, "
     r"stride, padding, groups, relu$"),
    (lambda d: _conv1(d)["attrs"].update(kernal=3),
     r"layer 'conv1': unknown key 'kernal' in attrs \(did you mean 'kernel'\?\)"),
    (lambda d: d.update(controler=None),
     r"unknown key 'controler' \(did you mean 'controller'\?\); known keys: format, "),
    (lambda d: d["arith"].update(acc_bits=32),
     r"unknown key 'acc_bits' in arith \(did you mean 'acc_width'\?\)"),
    # strict types
    (lambda d: _conv1(d)["attrs"].update(kernel=3.0),
     r"layer 'conv1': attrs\.kernel: input should be a valid integer, not 3\.0$"),
    (lambda d: _conv1(d)["attrs"].update(relu="true"),
     r"layer 'conv1': attrs\.relu: input should be a valid boolean, not 'true'$"),
    (lambda d: _conv1(d).update(widths=[2, 4.0]),
     r"layer 'conv1': widths\[1\]: input should be a valid integer, not 4\.0$"),
    (lambda d: d["arith"].update(n="8"), r"arith\.n: input should be a valid integer, not '8'$"),
    (lambda d: d["arith"].update(acc_width=49),
     r"arith\.acc_width: input should be less than or equal to 48, not 49$"),
    # ranges: nothing huge described, padding below the kernel
    (lambda d: _conv1(d)["attrs"].update(out_channels=10**9),
     r"layer 'conv1': attrs\.out_channels: input should be less than or equal to 65536, "
     r"not 1000000000$"),
    (lambda d: _conv1(d)["attrs"].update(padding=3),
     r"layer 'conv1': padding 3 must be less than the kernel 3$"),
    (lambda d: d["nodes"][0]["attrs"].update(shape=[64, 8192, 8192]),
     r"layer 'input': output \(64, 8192, 8192\) holds 4294967296 elements, more than the "
     r"16777216 a node may$"),
    (lambda d: d["nodes"][0]["attrs"].update(shape=[1, 8, 10**6]),
     r"layer 'input': attrs\.shape\[2\]: input should be less than or equal to 8192, not "
     r"1000000$"),
    (lambda d: d["nodes"].extend([d["nodes"][-1]] * 5000),
     r"nodes: list should have at most 4096 items after validation, not 50\d\d \(value "),
    (lambda d: _conv1(d)["format"].update(delta=0),
     r"layer 'conv1': format\.delta: input should be greater than 0, not 0$"),
    (lambda d: _conv1(d).update(op="deconv"),
     r"layer 'conv1': op: 'deconv' is not an op \(did you mean 'conv'\?\); ops: input, "),
    (lambda d: _conv1(d).pop("widths"), r"layer 'conv1': lacks the required keys \['widths'\]$"),
])
def test_network_json_is_checked_by_its_schema(saved, edit, message):
    _edit_json(saved, edit)
    with pytest.raises(ValueError, match=r"^network file '.*tiny\.json': " + message):
        nw.load(saved)


def test_version_1_names_the_accumulator_acc_bits(saved, tiny, rng):
    def v1(d):
        d["version"] = 1
        d["arith"]["acc_bits"] = d["arith"].pop("acc_width")
    _edit_json(saved, v1)
    net = nw.load(saved)
    x = rng.integers(0, 256, (2, 1, 8, 8))
    assert np.array_equal(execute(net, x, widths=4).codes, execute(tiny, x, widths=4).codes)
    _edit_json(saved, lambda d: d["arith"].update(acc_width=32))
    with pytest.raises(ValueError, match=r"unknown key 'acc_width' in arith \(did you mean "
                                         r"'acc_bits'\?\)"):
        nw.load(saved)


def test_controller_entries_checked(tiny, tmp_path):
    path = nw.random_controller(tiny, seed=1).save(tmp_path / "c.json")
    _edit_json(path, lambda d: d["controller"]["static_widths"].update(conv1=[8, 8.5]))
    with pytest.raises(ValueError, match=r"controller\.static_widths\.conv1: must be a width "
                                         r"in \[1, 16\] or a pair \[b_a, b_w\] of them, not "
                                         r"\[8, 8\.5\]$"):
        nw.load(path)
    _edit_json(path, lambda d: d["controller"]["static_widths"].update(conv1=8))
    _edit_json(path, lambda d: d["controller"]["fc2"].update(name="conv1"))
    with pytest.raises(ValueError, match=r"controller\.fc2\.name: 'conv1' names another "
                                         r"layer"):
        nw.load(path)
